// Threats of docs/THREAT-MODEL.md that no other suite covers on its own:
// spoofed engagement answers to an opened escrow or channel, an escrow whose
// Provider never answers, an engaged escrow's terms outliving a key rotation,
// a parameter change and a jail, governance and the stake, a Provider
// deployed early by an outsider, enclave-signed cells of another kind at an
// escrow, the hard bounds on governance, and the SDK's check of an answer.
// docs/THREAT-MODEL.md names each test by its title (tests/threatModel.spec.ts
// checks that): rename one there too.
import '@ton/test-utils';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { internal, SandboxContract, TreasuryContract } from '@ton/sandbox';
import { executeFrom, executeTill, flattenTransaction } from '@ton/test-utils';
import {
    ALLOWLIST_MEASUREMENT,
    ATTESTATION_TAG,
    CHANNEL_ACTIVE,
    CHANNEL_OPENED,
    CHANNEL_RECEIPT_TAG,
    ERR_BAD_ARBITERS,
    ERR_BAD_PARAM,
    ERR_BAD_PROTOCOL_FEE,
    ERR_BAD_RECEIPT_SIGNATURE,
    ERR_BAD_TIMELOCK,
    ERR_BAD_UNBONDING,
    ERR_DEADLINE_NOT_PASSED,
    ERR_NOT_REGISTERED,
    ERR_RECEIPT_MISMATCH,
    ERR_WRONG_SENDER,
    ESCROW_CLOSED_EXPIRED,
    ESCROW_CLOSED_RELEASED,
    ESCROW_ENGAGED,
    ESCROW_OPENED,
    JAIL_GOVERNANCE,
    loadEscrowClosed,
    loadStakeWithdrawn,
    MAX_ARBITERS,
    MAX_PROTOCOL_FEE_BPS,
    MAX_REPORTER_REWARD_BPS,
    MAX_SLASH_BPS,
    MIN_TIMELOCK,
    Params,
    PROVIDER_STORAGE_RESERVE,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
    storeCompletionReceipt,
    storeEngagement,
    storeJobEngaged,
    storeJobRefused,
    storeOpenChannel,
    storeOpenEscrow,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Channel } from '../wrappers/Channel';
import { Provider } from '../wrappers/Provider';
import { reattestMessage } from '../wrappers/attestation';
import { arbiterDictionary } from '../wrappers/params';
import { signReceipt, signedReceiptToJson, submitReceiptMessage } from '../wrappers/receipt';
import { signChannelReceipt } from '../wrappers/channelReceipt';
import { signHash } from '../wrappers/ed25519';
import { clientSharedSecret, requestKeyPair, seal } from '../runner/envelope';
import { JobAnswerJson, jobContext, priceOf, responseHashOf } from '../runner/protocol';
import { InferenceResult } from '../runner/models';
import { ChrysalisClient, ClientError, ClientOptions, JobTicket, ProviderHandle } from '../sdk';
import { deployFixture, Fixture, MODEL_A, openEscrow, registerProvider, sendRegister, signedFor, testEnclave, testKey } from './helpers/fixture';
import { receiptFields, REQUEST } from './helpers/dispute';
import { messagesBetween } from './helpers/tx';

const code = (c: bigint) => Number(c);
const OWNER_VALUE = toNano('0.05');

/** The one EscrowClosed `escrow` sent `client` in the transactions given: its outcome and value. */
function escrowClosed(transactions: Parameters<typeof messagesBetween>[0], escrow: Address, client: Address) {
    const closed = messagesBetween(transactions, escrow, client).filter((m) => m.body.beginParse().loadUint(32) === 0x30000006);
    expect(closed).toHaveLength(1);
    return { outcome: loadEscrowClosed(closed[0].body.beginParse()).outcome, value: closed[0].value };
}

describe('threats', () => {
    let fx: Fixture;
    let client: SandboxContract<TreasuryContract>;
    let stranger: SandboxContract<TreasuryContract>;

    beforeEach(async () => {
        fx = await deployFixture();
        client = await fx.blockchain.treasury('client');
        stranger = await fx.blockchain.treasury('stranger');
    });

    const now = () => fx.blockchain.now!;
    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;

    it('a spoofed JobEngaged or JobRefused neither engages nor closes an opened escrow or channel', async () => {
        const { provider, enclave } = await registerProvider(fx, 'alice');
        const mallory = await fx.blockchain.treasury('mallory');
        // Mallory's terms: her own key and payout, so that she could sign the receipt and take maxAmount.
        const engagement = beginCell()
            .store(
                storeEngagement({
                    $$type: 'Engagement',
                    enclaveKey: testKey('mallory').publicKeyInt,
                    payout: mallory.address,
                    protocolFeeBps: 0n,
                    treasury: mallory.address,
                    disputeWindow: 1n,
                    verdictWindow: 1n,
                    disputeBond: 1n,
                    arbiterQuorum: 0n,
                    arbitersHash: 0n,
                    arbiterFeeBps: 0n,
                }),
            )
            .endCell();
        const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, 1n));
        const channel = fx.blockchain.openContract(await Channel.fromInit(client.address, provider.address, 1n));
        const openEscrowBody = beginCell()
            .store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('2'), deadline: BigInt(now() + 3600) }))
            .endCell();
        const openChannelBody = beginCell()
            .store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: MODEL_A, deposit: toNano('2'), expiresAt: BigInt(now() + 3600) }))
            .endCell();
        const targets = [
            { contract: escrow, value: toNano('2') + (await provider.getEscrowOpenFee()), body: openEscrowBody, init: escrow.init, opened: ESCROW_OPENED, engaged: ESCROW_ENGAGED },
            { contract: channel, value: toNano('2') + (await provider.getChannelOpenFee()), body: openChannelBody, init: channel.init, opened: CHANNEL_OPENED, engaged: CHANNEL_ACTIVE },
        ];
        for (const t of targets) {
            const opening = await fx.blockchain.sendMessageIter(internal({ from: client.address, to: t.contract.address, value: t.value, stateInit: t.init, body: t.body }), {
                allowParallel: true,
            });
            // Opened, its EngageJob (or EngageChannel) on the way to the Provider.
            await executeTill(opening, { to: t.contract.address, success: true });
            expect(await t.contract.getState()).toBe(t.opened);
            const info = await t.contract.getInfo();
            const openingId = 'engageId' in info ? info.engageId : info.openId;
            // Mallory answers first, with the right queryId.
            for (const body of [
                beginCell().store(storeJobEngaged({ $$type: 'JobEngaged', queryId: openingId, engagement })).endCell(),
                beginCell().store(storeJobRefused({ $$type: 'JobRefused', queryId: openingId, reason: 1n })).endCell(),
            ]) {
                const spoof = await executeFrom(
                    await fx.blockchain.sendMessageIter(internal({ from: mallory.address, to: t.contract.address, value: toNano('0.1'), body }), { allowParallel: true }),
                );
                expect(flattenTransaction(spoof[0]).exitCode).toBe(code(ERR_WRONG_SENDER));
                expect(await t.contract.getState()).toBe(t.opened);
            }
            // The Provider's answer still engages it, under the Provider's enclave key.
            await executeFrom(opening);
            const engaged = await t.contract.getInfo();
            expect(engaged.state).toBe(t.engaged);
            expect(engaged.engagement!.enclaveKey).toBe(enclave.signing.publicKeyInt);
            expect(engaged.engagement!.payout.equals(mallory.address)).toBe(false);
        }
        expect((await provider.getInfo()).openJobs).toBe(2n);
    });

    it('an escrow whose Provider never answers is refunded by anyone after its deadline', async () => {
        // A wallet at the provider address: it takes EngageJob and answers nothing.
        const silent = await fx.blockchain.treasury('silent');
        const deadline = now() + 600;
        const maxAmount = toNano('2');
        const { escrow } = await openEscrow(fx, client, silent.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount, deadline, value: maxAmount + toNano('0.5') });
        expect(await escrow.getState()).toBe(ESCROW_OPENED);
        const refund = () => escrow.send(stranger.getSender(), { value: toNano('0.05') }, { $$type: 'Refund', queryId: 1n });
        fx.blockchain.now = deadline;
        let r = await refund();
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DEADLINE_NOT_PASSED) });
        fx.blockchain.now = deadline + 1;
        const held = await balanceOf(escrow.address);
        r = await refund();
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        const closed = escrowClosed(r, escrow.address, client.address);
        expect(closed.outcome).toBe(ESCROW_CLOSED_EXPIRED);
        expect(closed.value).toBeGreaterThan(maxAmount);
        expect(closed.value).toBeLessThanOrEqual(held);
        // Never engaged: no JobEnded to the silent address, and nothing left behind.
        expect(messagesBetween(r, escrow.address, silent.address)).toHaveLength(0);
        expect((await fx.blockchain.getContract(escrow.address)).accountState).toBeUndefined();
    });

    it('an engaged escrow keeps its key and terms through a key rotation, a parameter change and a jail', async () => {
        const { owner, provider, enclave } = await registerProvider(fx, 'alice');
        const runner = await fx.blockchain.treasury('runner');
        // Governance proposes a 5 % protocol fee; a job is engaged just before it takes effect.
        await fx.registry.send(fx.governance.getSender(), { value: OWNER_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: { ...fx.params, protocolFeeBps: 500n } });
        const executableAt = now() + Number(fx.params.timelock);
        fx.blockchain.now = executableAt - 600;
        await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave)));
        const { escrow } = await openEscrow(fx, client, provider.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('2'), deadline: now() + 3600 });
        const before = (await escrow.getInfo()).engagement!;
        expect([before.enclaveKey, before.protocolFeeBps]).toEqual([enclave.signing.publicKeyInt, 100n]);
        // The fee rises, the provider re-attests with a new key (taking the new fee), governance revokes its image and jails it.
        fx.blockchain.now = executableAt;
        await fx.registry.send(stranger.getSender(), { value: OWNER_VALUE }, { $$type: 'ExecuteParams', queryId: 2n });
        const rotated = testEnclave('alice-rotated');
        await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, rotated)));
        await fx.registry.send(fx.governance.getSender(), { value: OWNER_VALUE }, { $$type: 'AllowlistRevoke', queryId: 3n, list: ALLOWLIST_MEASUREMENT, entry: rotated.measurement });
        await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, { $$type: 'JailProvider', queryId: 4n, providerOwner: owner.address, reason: JAIL_GOVERNANCE });
        const p = await provider.getInfo();
        expect([p.status, p.enclave.signingKey, p.snapshot!.protocolFeeBps]).toEqual([STATUS_JAILED, rotated.signing.publicKeyInt, 500n]);
        // The escrow still holds the terms it was engaged with.
        const after = (await escrow.getInfo()).engagement!;
        expect([after.enclaveKey, after.protocolFeeBps, after.payout.toString(), after.treasury.toString()]).toEqual([
            before.enclaveKey,
            before.protocolFeeBps,
            before.payout.toString(),
            before.treasury.toString(),
        ]);
        // The new key cannot sign for the old job; the engaged key can.
        const fields = receiptFields(escrow.address, (await escrow.getInfo()).engageId, fx);
        let r = await escrow.send(runner.getSender(), { value: toNano('0.05') }, submitReceiptMessage(signReceipt(fields, rotated.signing)));
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_RECEIPT_SIGNATURE) });
        r = await escrow.send(runner.getSender(), { value: toNano('0.05') }, submitReceiptMessage(signReceipt(fields, enclave.signing)));
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
        // Released at the engaged fee (1 %), not the new one (5 %).
        fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
        r = await escrow.send(runner.getSender(), { value: toNano('0.05') }, { $$type: 'Release', queryId: 5n });
        const fee = (fields.amount * 100n) / 10000n;
        expect(messagesBetween(r, escrow.address, owner.address).map((m) => m.value)).toEqual([fields.amount - fee]);
        expect(messagesBetween(r, escrow.address, fx.treasury.address).map((m) => m.value)).toEqual([fee]);
        expect(escrowClosed(r, escrow.address, client.address).outcome).toBe(ESCROW_CLOSED_RELEASED);
        expect((await provider.getInfo()).completedJobs).toBe(1n);
    });

    it("governance cannot take a Provider's stake: jailed, its image revoked, the owner still unbonds and withdraws all of it", async () => {
        const { owner, provider, enclave } = await registerProvider(fx, 'alice');
        const stake = await provider.getStake();
        const jail = { $$type: 'JailProvider' as const, queryId: 1n, providerOwner: owner.address, reason: JAIL_GOVERNANCE };
        await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, jail);
        await fx.registry.send(fx.governance.getSender(), { value: OWNER_VALUE }, { $$type: 'AllowlistRevoke', queryId: 2n, list: ALLOWLIST_MEASUREMENT, entry: enclave.measurement });
        expect([await provider.getStatus(), await provider.getStake()]).toEqual([STATUS_JAILED, stake]);
        await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 3n });
        // Jailed again while unbonding: the reason is recorded, the unbonding goes on.
        await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, jail);
        const info = await provider.getInfo();
        expect([info.status, info.stake]).toEqual([STATUS_UNBONDING, stake]);
        fx.blockchain.now = Number(info.withdrawableAt);
        const r = await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'WithdrawStake', queryId: 4n });
        const paid = messagesBetween(r, provider.address, owner.address);
        expect(paid).toHaveLength(1);
        expect(loadStakeWithdrawn(paid[0].body.beginParse()).amount).toBe(stake);
        expect(paid[0].value).toBeGreaterThan(stake);
        expect([await provider.getStatus(), await balanceOf(provider.address)]).toEqual([STATUS_EXITED, PROVIDER_STORAGE_RESERVE]);
    });

    it('a Provider deployed by an outsider before registration does not stop its owner from registering', async () => {
        const owner = await fx.blockchain.treasury('alice');
        const early = fx.blockchain.openContract(await Provider.fromInit(fx.registry.address, owner.address));
        expect(early.address.equals(await fx.registry.getProviderAddress(owner.address))).toBe(true);
        // The outsider's TopUpStake carries the StateInit: the account is deployed, the value bounces.
        const r = await early.send(stranger.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') });
        expect(r.transactions).toHaveTransaction({ to: early.address, deploy: true, success: false, exitCode: code(ERR_NOT_REGISTERED) });
        expect(await early.getStatus()).toBe(STATUS_NONE);
        const registered = await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice')));
        expect(registered.transactions).toHaveTransaction({ from: fx.registry.address, to: early.address, success: true });
        const info = await early.getInfo();
        expect([info.status, info.stake, info.owner.toString()]).toEqual([STATUS_ACTIVE, fx.params.minProviderStake, owner.address.toString()]);
        expect(await early.getAcceptsJobs()).toBe(true);
    });

    it('an escrow refuses cells of another kind signed by its enclave key: a receipt layout under another tag, a channel receipt', async () => {
        const { provider, enclave } = await registerProvider(fx, 'alice');
        const runner = await fx.blockchain.treasury('runner');
        const { escrow } = await openEscrow(fx, client, provider.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('2'), deadline: now() + 3600 });
        const engageId = (await escrow.getInfo()).engageId;
        const fields = receiptFields(escrow.address, engageId, fx);
        const submit = (receipt: Cell) =>
            escrow.send(runner.getSender(), { value: toNano('0.05') }, submitReceiptMessage({ receipt, signature: signHash(receipt.hash(), enclave.signing) }));
        for (const tag of [ATTESTATION_TAG, CHANNEL_RECEIPT_TAG]) {
            const cell = beginCell()
                .store(storeCompletionReceipt({ $$type: 'CompletionReceipt', tag, ...fields, finishedAt: BigInt(fields.finishedAt) }))
                .endCell();
            const r = await submit(cell);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_RECEIPT_MISMATCH) });
        }
        // A channel receipt naming this escrow, for more than the job: not a completion receipt.
        const channelReceipt = signChannelReceipt({ channel: escrow.address, openId: engageId, seqno: 1n, amount: toNano('2'), requests: 1n, root: 1n, final: true }, enclave.signing);
        const r = await submit(channelReceipt.receipt);
        expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false });
        expect([await escrow.getState(), (await escrow.getInfo()).amount]).toEqual([ESCROW_ENGAGED, 0n]);
    });

    it('governance cannot cross the hard bounds: a minority quorum, a reporter reward above half, a slash above the stake, a fee above 10 %, a timelock under a day, an unbonding period inside the job windows, too many arbiters', async () => {
        const keys = Array.from({ length: Number(MAX_ARBITERS) + 1 }, (_, i) => testKey(`arbiter${i}`).publicKeyInt);
        const p = fx.params;
        const cases: [string, Params, bigint][] = [
            ['minority quorum', { ...p, arbiters: arbiterDictionary(keys.slice(0, 4)), arbiterQuorum: 2n }, ERR_BAD_ARBITERS],
            ['reporter reward above half', { ...p, reporterRewardBps: MAX_REPORTER_REWARD_BPS + 1n }, ERR_BAD_PARAM],
            ['slash above the stake', { ...p, slashBps: MAX_SLASH_BPS + 1n }, ERR_BAD_PARAM],
            ['client compensation above the slash', { ...p, clientCompensationBps: 10001n }, ERR_BAD_PARAM],
            ['protocol fee above 10 %', { ...p, protocolFeeBps: MAX_PROTOCOL_FEE_BPS + 1n }, ERR_BAD_PROTOCOL_FEE],
            ['timelock under a day', { ...p, timelock: MIN_TIMELOCK - 1n }, ERR_BAD_TIMELOCK],
            ['unbonding inside the job windows', { ...p, unbondingPeriod: p.maxJobDuration + p.disputeWindow + p.verdictWindow }, ERR_BAD_UNBONDING],
            ['too many arbiters', { ...p, arbiters: arbiterDictionary(keys), arbiterQuorum: 9n }, ERR_BAD_ARBITERS],
        ];
        for (const [name, params, exit] of cases) {
            const r = await fx.registry.send(fx.governance.getSender(), { value: OWNER_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params });
            const tx = r.transactions.find((t) => t.inMessage?.info.dest instanceof Address && t.inMessage.info.dest.equals(fx.registry.address));
            expect({ name, exit: flattenTransaction(tx!).exitCode }).toEqual({ name, exit: code(exit) });
            expect(await fx.registry.getPendingParams()).toBeNull();
        }
    });
});

describe('threats off-chain', () => {
    it('the SDK refuses an answer that bills above the advertised prices, bills other units than the result, or carries another response than the one signed', () => {
        const enclave = testKey('sdk-enclave');
        const enclaveBox = requestKeyPair();
        const clientKey = requestKeyPair();
        const escrow = new Address(0, Buffer.alloc(32, 7));
        const prices = { perInputUnit: 10n, perOutputUnit: 20n };
        const deadline = 1_900_000_000;
        const handle = { signingKey: enclave.publicKey, encryptionKey: enclaveBox.publicKey, prices } as ProviderHandle;
        const ticket: JobTicket = {
            escrow,
            provider: escrow,
            nonce: 1n,
            engageId: 5n,
            requestHash: 9n,
            modelHash: MODEL_A,
            maxAmount: toNano('1'),
            deadline,
            clientKey,
            sealedRequest: Buffer.alloc(0),
        };
        // The enclave's side: the result sealed to the client, and a receipt over it.
        const secret = clientSharedSecret(enclaveBox.privateKey, clientKey.publicKey);
        const answer = (result: InferenceResult, bill: { inputUnits: bigint; outputUnits: bigint; amount: bigint }, sealedResponse?: Buffer): JobAnswerJson => {
            const sealed = seal(secret, 'response', jobContext(escrow), Buffer.from(JSON.stringify(result)));
            const fields = { escrow, engageId: 5n, requestHash: 9n, responseHash: responseHashOf(sealed), modelHash: MODEL_A, finishedAt: deadline - 10, ...bill };
            return {
                escrow: escrow.toString(),
                engageId: '5',
                sealedResponse: (sealedResponse ?? sealed).toString('base64'),
                receipt: signedReceiptToJson(signReceipt(fields, enclave)),
                inputUnits: bill.inputUnits.toString(),
                outputUnits: bill.outputUnits.toString(),
                amount: bill.amount.toString(),
                finishedAt: fields.finishedAt,
            };
        };
        // check() reads nothing on-chain: the client needs no chain here.
        const sdk = new ChrysalisClient({} as ClientOptions);
        const result: InferenceResult = { text: 'an answer', inputUnits: 3, outputUnits: 4, finishReason: 'stop' };
        const fair = { inputUnits: 3n, outputUnits: 4n, amount: priceOf(prices, 3n, 4n) };
        expect(sdk.check(handle, ticket, answer(result, fair)).fields.amount).toBe(110n);
        const refusal = (a: JobAnswerJson) => {
            try {
                sdk.check(handle, ticket, a);
            } catch (e) {
                return e instanceof ClientError ? e.code : String(e);
            }
            return 'accepted';
        };
        expect(refusal(answer(result, { ...fair, amount: fair.amount + 1n }))).toBe('metering-mismatch');
        expect(refusal(answer(result, { inputUnits: 3n, outputUnits: 5n, amount: fair.amount }))).toBe('metering-mismatch');
        expect(refusal(answer(result, fair, seal(secret, 'response', jobContext(escrow), Buffer.from('{}'))))).toBe('response-mismatch');
    });
});
