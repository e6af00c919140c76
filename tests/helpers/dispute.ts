// Shared pieces of the dispute and slashing suites: a deployment with three
// arbiters (quorum 2), a receipted escrow, and verdicts signed by arbiters.
import { Address, Dictionary, toNano } from '@ton/core';
import { SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { Escrow } from '../../wrappers/Escrow';
import { Provider } from '../../wrappers/Provider';
import { arbiterDictionary, defaultParams } from '../../wrappers/params';
import { ReceiptFields, signReceipt, submitReceiptMessage } from '../../wrappers/receipt';
import { buildVerdict, signVerdict, SignedVerdict, submitVerdictMessage, VerdictFields } from '../../wrappers/verdict';
import { Ed25519KeyPair } from '../../wrappers/ed25519';
import { deployFixture, Enclave, Fixture, MODEL_A, openEscrow, testKey } from './fixture';
import { loadEscrowClosed, ESCROW_CLOSED_CLIENT_WON } from '../../wrappers/Registry';
import { messagesBetween } from './tx';

export const ARBITERS: Ed25519KeyPair[] = [0, 1, 2].map((i) => testKey(`arbiter${i}`));
export const ARBITER_SET: Dictionary<number, bigint> = arbiterDictionary(ARBITERS.map((k) => k.publicKeyInt));
export const REQUEST = 0xd15_0001n;

/** A deployment whose parameters carry ARBITERS with quorum 2. */
export function deployDisputeFixture(): Promise<Fixture> {
    return deployFixture((treasury) => defaultParams(treasury, ARBITERS.map((k) => k.publicKeyInt)));
}

/** The receipt fields an honest enclave signs for `escrow`. */
export function receiptFields(escrow: Address, engageId: bigint, fx: Fixture, overrides: Partial<ReceiptFields> = {}): ReceiptFields {
    return {
        escrow,
        engageId,
        requestHash: REQUEST,
        responseHash: 0xbeefn,
        modelHash: MODEL_A,
        inputUnits: 100n,
        outputUnits: 400n,
        amount: toNano('1.5'),
        finishedAt: fx.blockchain.now!,
        ...overrides,
    };
}

/**
 * Opens an escrow of `maxAmount` (2 TON) from `client` with `provider`, lets
 * it engage, and submits a receipt for `amount` (1.5 TON) signed by
 * `enclave`: the escrow is Receipted and its dispute window open.
 */
export async function receiptedEscrow(
    fx: Fixture,
    client: SandboxContract<TreasuryContract>,
    provider: SandboxContract<Provider>,
    enclave: Enclave,
    nonce: bigint,
    overrides: Partial<ReceiptFields> = {},
): Promise<{ escrow: SandboxContract<Escrow>; fields: ReceiptFields; result: SendMessageResult }> {
    const { escrow } = await openEscrow(fx, client, provider.address, nonce, {
        requestHash: REQUEST,
        modelHash: MODEL_A,
        maxAmount: toNano('2'),
        deadline: fx.blockchain.now! + 3600,
    });
    const fields = receiptFields(escrow.address, (await escrow.getInfo()).engageId, fx, overrides);
    const result = await escrow.send(client.getSender(), { value: await escrow.getTriggerFee() }, submitReceiptMessage(signReceipt(fields, enclave.signing)));
    expect(result.transactions).toHaveTransaction({ to: escrow.address, success: true });
    return { escrow, fields, result };
}

/** The client disputes `escrow` (Receipted) with exactly its bond + disputeFee; asserts it was accepted. */
export async function openDispute(
    escrow: SandboxContract<Escrow>,
    client: SandboxContract<TreasuryContract>,
): Promise<{ bond: bigint; result: SendMessageResult }> {
    const bond = (await escrow.getInfo()).engagement!.disputeBond;
    const result = await escrow.send(client.getSender(), { value: bond + (await escrow.getDisputeFee()) }, {
        $$type: 'Dispute',
        queryId: 9n,
        reason: 1n,
        evidenceHash: 0xe71den,
    });
    expect(result.transactions).toHaveTransaction({ to: escrow.address, success: true });
    return { bond, result };
}

/** A verdict on `escrow`'s current opening, signed by the arbiters of `signers` (indexes into ARBITERS). */
export async function verdictFor(
    fx: Fixture,
    escrow: SandboxContract<Escrow>,
    fields: Omit<VerdictFields, 'escrow' | 'engageId' | 'deadline'> & Partial<Pick<VerdictFields, 'escrow' | 'engageId' | 'deadline'>>,
    signers: number[] = [0, 1],
): Promise<SignedVerdict> {
    const verdict = buildVerdict({
        escrow: escrow.address,
        engageId: (await escrow.getInfo()).engageId,
        deadline: fx.blockchain.now! + 3600,
        ...fields,
    });
    return { verdict, signatures: new Map(signers.map((i) => [i, signVerdict(verdict, ARBITERS[i])])) };
}

/** Sends SubmitVerdict for `signed` with the engaged arbiter set (or `arbiters`), attaching the escrow's verdictFee unless `value` is given. */
export async function submitVerdict(
    escrow: SandboxContract<Escrow>,
    from: SandboxContract<TreasuryContract>,
    signed: SignedVerdict,
    opts: { value?: bigint; arbiters?: Dictionary<number, bigint>; queryId?: bigint } = {},
): Promise<SendMessageResult> {
    return escrow.send(
        from.getSender(),
        { value: opts.value ?? (await escrow.getVerdictFee()) },
        submitVerdictMessage(signed, opts.arbiters ?? ARBITER_SET, opts.queryId ?? 0n),
    );
}

/**
 * What a ClientWins verdict slashing `slash` (below the stake) pays, checked
 * to the nanoton: the escrow closes to the client with everything it held
 * (less at most `slack` of forwarding), the arbiters get the bond's share
 * (what they would have had had the provider won), the client its share of the
 * rest of the slash, and the treasury what is left (plus the slash budget's
 * unspent part).
 */
export function expectClientWinsPayouts(
    fx: Fixture,
    r: SendMessageResult,
    parties: { escrow: Address; provider: Address; client: Address; feeTo: Address },
    slash: bigint,
    escrowBalance: bigint,
): void {
    const closed = messagesBetween(r, parties.escrow, parties.client);
    expect(closed).toHaveLength(1);
    expect(loadEscrowClosed(closed[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_CLIENT_WON);
    expect(closed[0].value).toBeGreaterThan(escrowBalance - toNano('0.01'));
    const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
    const compensation = ((slash - arbiterFee) * fx.params.clientCompensationBps) / 10000n;
    expect(messagesBetween(r, parties.provider, parties.client).map((m) => m.value)).toEqual([compensation]);
    expect(messagesBetween(r, parties.provider, parties.feeTo).map((m) => m.value)).toEqual([arbiterFee]);
    const toTreasury = messagesBetween(r, parties.provider, fx.treasury.address);
    expect(toTreasury).toHaveLength(1);
    expect(toTreasury[0].value).toBeGreaterThanOrEqual(slash - arbiterFee - compensation);
}
