// Shared pieces of the channel suites: a deployment with three arbiters
// (quorum 2) and a registered provider, channels opened and engaged, and the
// receipts an honest enclave signs request after request.
import '@ton/test-utils';
import { Address, beginCell, Cell, Dictionary, toNano } from '@ton/core';
import { Blockchain, BlockchainTransaction, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { configParseGasLimitsPrices, configParseMsgPrices, loadConfigParamsAsSlice } from '@ton/ton';
import { Channel } from '../../wrappers/Channel';
import { Provider } from '../../wrappers/Provider';
import {
    GAS_PROVIDER_RESTITUTE,
    loadChannelClosed,
    loadRestituteFromChannel,
    loadSlashPayment,
    SMALL_MESSAGE_BITS,
    SMALL_MESSAGE_CELLS,
} from '../../wrappers/Registry';
import {
    ChannelReceiptFields,
    ChannelStepFields,
    disputeChannelRequestMessage,
    nextRoot,
    signChannelReceipt,
    SignedChannelReceipt,
} from '../../wrappers/channelReceipt';
import { buildChannelVerdict, ChannelVerdictFields, signVerdict, SignedVerdict, submitChannelVerdictMessage } from '../../wrappers/verdict';
import { Ed25519KeyPair } from '../../wrappers/ed25519';
import { Fixture, MODEL_A, registerProvider } from './fixture';
import { ARBITER_SET, ARBITERS, deployDisputeFixture } from './dispute';
import { messagesBetween } from './tx';

export const DEPOSIT = toNano('10');

export interface ChannelFixture {
    fx: Fixture;
    client: SandboxContract<TreasuryContract>;
    owner: SandboxContract<TreasuryContract>;
    provider: SandboxContract<Provider>;
    enclave: Ed25519KeyPair;
}

/** A dispute-ready deployment with one registered provider and a funded client. */
export async function deployChannelFixture(): Promise<ChannelFixture> {
    const fx = await deployDisputeFixture();
    const { owner, enclave, provider } = await registerProvider(fx, 'channel-provider');
    const client = await fx.blockchain.treasury('channel-client');
    return { fx, client, owner, provider, enclave: enclave.signing };
}

/** Opens a channel of `deposit` from `client`, attaching deposit + openFee unless `value` is given. */
export async function openChannel(
    cf: ChannelFixture,
    nonce: bigint,
    opts: { deposit?: bigint; expiresIn?: number; value?: bigint; modelHash?: bigint; client?: SandboxContract<TreasuryContract>; provider?: Address } = {},
): Promise<{ channel: SandboxContract<Channel>; result: SendMessageResult }> {
    const client = opts.client ?? cf.client;
    const channel = cf.fx.blockchain.openContract(await Channel.fromInit(client.address, opts.provider ?? cf.provider.address, nonce));
    const deposit = opts.deposit ?? DEPOSIT;
    const value = opts.value ?? deposit + (await cf.provider.getChannelOpenFee());
    const result = await channel.send(client.getSender(), { value }, {
        $$type: 'OpenChannel',
        queryId: 0n,
        modelHash: opts.modelHash ?? MODEL_A,
        deposit,
        expiresAt: BigInt(cf.fx.blockchain.now! + (opts.expiresIn ?? 3600)),
    });
    return { channel, result };
}

/**
 * An honest enclave's side of a channel: after each request it extends the
 * running root and signs the next cumulative receipt.
 */
export class ReceiptChain {
    seqno = 0n;
    amount = 0n;
    requests = 0n;
    root = 0n;
    readonly steps: { step: ChannelStepFields; signed: SignedChannelReceipt }[] = [];

    constructor(
        readonly channel: Address,
        readonly openId: bigint,
        readonly enclave: Ed25519KeyPair,
    ) {}

    /** Serves one request costing `amount`; returns its step and the receipt signed right after it. */
    serve(amount: bigint, requestHash = BigInt(this.requests + 1n) * 0x1000n, responseHash = BigInt(this.requests + 1n) * 0x2000n) {
        const step: ChannelStepFields = { prev: this.root, requestHash, responseHash, amount };
        this.root = nextRoot(step);
        this.amount += amount;
        this.requests += 1n;
        this.seqno += 1n;
        const signed = signChannelReceipt(this.fields(), this.enclave);
        this.steps.push({ step, signed });
        return { step, signed };
    }

    /** The current state as receipt fields (seqno as is). */
    fields(overrides: Partial<ChannelReceiptFields> = {}): ChannelReceiptFields {
        return { channel: this.channel, openId: this.openId, seqno: this.seqno, amount: this.amount, requests: this.requests, root: this.root, final: false, ...overrides };
    }

    /** A receipt of the current state with the next seqno (e.g. a final one). */
    resign(overrides: Partial<ChannelReceiptFields> = {}): SignedChannelReceipt {
        this.seqno += 1n;
        return signChannelReceipt(this.fields(overrides), this.enclave);
    }
}

/** Opens and engages a channel and returns it with its receipt chain. */
export async function activeChannel(cf: ChannelFixture, nonce: bigint, opts: Parameters<typeof openChannel>[2] = {}) {
    const { channel, result } = await openChannel(cf, nonce, opts);
    expect(result.transactions).toHaveTransaction({ to: channel.address, success: true });
    const info = await channel.getInfo();
    expect(info.state).toBe(2n);
    return { channel, chain: new ReceiptChain(channel.address, info.openId, cf.enclave) };
}

/** Transactions run step by step (executeTill/executeFrom), as one result for the tx helpers. */
export const chainOf = (transactions: BlockchainTransaction[]): SendMessageResult => ({ transactions, events: [], externals: [] });

/** The one ChannelClosed `channel` sent `client` in `r`: its outcome, reason and value. */
export function closedWith(r: SendMessageResult, channel: Address, client: Address): { outcome: bigint; reason: bigint; queryId: bigint; value: bigint } {
    const msgs = messagesBetween(r, channel, client).filter((m) => m.body.beginParse().loadUint(32) === 0x4000000a);
    expect(msgs).toHaveLength(1);
    expect(msgs[0].bounce).toBe(false);
    const closed = loadChannelClosed(msgs[0].body.beginParse());
    return { outcome: closed.outcome, reason: closed.reason, queryId: closed.queryId, value: msgs[0].value };
}

/** The client disputes the request whose step is `step`, proven by `signed`, attaching bond + disputeFee unless `value` is given. */
export async function disputeRequest(
    channel: SandboxContract<Channel>,
    client: SandboxContract<TreasuryContract>,
    proof: { signed: SignedChannelReceipt; step: ChannelStepFields },
    opts: { value?: bigint; reason?: number; evidenceHash?: bigint; queryId?: bigint } = {},
): Promise<SendMessageResult> {
    const info = await channel.getInfo();
    const value = opts.value ?? info.engagement!.disputeBond + (await channel.getDisputeFee());
    return channel.send(
        client.getSender(),
        { value },
        disputeChannelRequestMessage(proof.signed, proof.step, opts.reason ?? 1, opts.evidenceHash ?? 0xe71den, opts.queryId ?? 0n),
    );
}

/** A verdict on `channel`'s open dispute (its current opening and disputed seqno), signed by the arbiters of `signers`. */
export async function channelVerdictFor(
    cf: ChannelFixture,
    channel: SandboxContract<Channel>,
    fields: Pick<ChannelVerdictFields, 'outcome' | 'slashAmount' | 'feeTo'> & Partial<ChannelVerdictFields>,
    signers: number[] = [0, 1],
): Promise<SignedVerdict> {
    const info = await channel.getInfo();
    const verdict = buildChannelVerdict({
        channel: channel.address,
        openId: info.openId,
        seqno: info.lastDisputedSeqno,
        deadline: cf.fx.blockchain.now! + 3600,
        ...fields,
    });
    return { verdict, signatures: new Map(signers.map((i) => [i, signVerdict(verdict, ARBITERS[i])])) };
}

/** Sends SubmitChannelVerdict with the engaged arbiter set (or `arbiters`), attaching the channel's verdictFee unless `value` is given. */
export async function submitChannelVerdict(
    channel: SandboxContract<Channel>,
    from: SandboxContract<TreasuryContract>,
    signed: SignedVerdict,
    opts: { value?: bigint; arbiters?: Dictionary<number, bigint>; queryId?: bigint } = {},
): Promise<SendMessageResult> {
    return channel.send(from.getSender(), { value: opts.value ?? (await channel.getVerdictFee()) }, submitChannelVerdictMessage(signed, opts.arbiters ?? ARBITER_SET, opts.queryId ?? 0n));
}

export const OP_SLASH_PAYMENT = 0x20000043;
export const OP_SLASH_FROM_CHANNEL = 0x20000052;
export const OP_RESTITUTE_FROM_CHANNEL = 0x20000054;

const opOf = (body: Cell): number | null => {
    const s = body.beginParse();
    return s.remainingBits >= 32 ? s.loadUint(32) : null;
};

/**
 * Basechain prices under `blockchain`'s config, as the contracts' getComputeFee
 * and getForwardFee(…, false) compute them (rounded up).
 */
export function basechainFees(blockchain: Blockchain) {
    const params = loadConfigParamsAsSlice(blockchain.configBase64);
    const gas = configParseGasLimitsPrices(params.get(21));
    const msg = configParseMsgPrices(params.get(25));
    const ceil16 = (x: bigint) => (x + 0xffffn) >> 16n;
    const compute = (gasUsed: bigint) => (gasUsed <= gas.flatLimit ? gas.flatGasPrice : gas.flatGasPrice + ceil16(gas.other.gasPrice * (gasUsed - gas.flatLimit)));
    const forward = (cells: bigint, bits: bigint) => msg.lumpPrice + ceil16(msg.bitPrice * bits + msg.cellPrice * cells);
    const small = forward(SMALL_MESSAGE_CELLS, SMALL_MESSAGE_BITS);
    return {
        compute,
        forward,
        /** A small message's forward fee (SMALL_MESSAGE_CELLS/BITS). */
        small,
        /** The value RestituteFromChannel carries: the Provider's compute and its payment to the client. */
        restitutionBudget: compute(GAS_PROVIDER_RESTITUTE) + small,
    };
}

/**
 * A RestituteFromChannel the channel sent in `r`, and what the Provider did
 * with it: the request (value, bounce flag, body), the Provider's
 * transaction, and its SlashPayment to the client with the rest of the
 * budget (what is left once the Provider's compute, action and forward fees
 * are paid).
 */
export function restitutionIn(r: SendMessageResult, channel: Address, provider: Address, client: Address) {
    const asked = messagesBetween(r, channel, provider).filter((m) => opOf(m.body) === OP_RESTITUTE_FROM_CHANNEL);
    const txs = r.transactions.filter(
        (tx) => tx.inMessage?.info.type === 'internal' && tx.inMessage.info.dest.equals(provider) && tx.inMessage.info.src.equals(channel) && opOf(tx.inMessage.body) === OP_RESTITUTE_FROM_CHANNEL,
    );
    return asked.map((m, i) => {
        const tx = txs[i];
        expect(tx).toBeDefined();
        const d = tx.description;
        if (d.type !== 'generic' || d.computePhase.type !== 'vm' || !d.actionPhase) throw new Error('RestituteFromChannel did not run');
        const outs = [...tx.outMessages.values()].filter((o) => o.info.type === 'internal');
        const payments = outs.flatMap((o) => (o.info.type === 'internal' && o.info.dest.equals(client) && opOf(o.body) === OP_SLASH_PAYMENT ? [o] : []));
        expect(payments).toHaveLength(outs.length);
        const payment = payments[0]?.info.type === 'internal' ? payments[0] : undefined;
        return {
            value: m.value,
            bounce: m.bounce,
            body: loadRestituteFromChannel(m.body.beginParse()),
            tx,
            success: d.computePhase.success && d.actionPhase.success,
            /** What the Provider's transaction cost the message: compute, actions and the payment's forward fee (not the rent). */
            costs: d.computePhase.gasFees + (d.actionPhase.totalActionFees ?? 0n) + (payment?.info.type === 'internal' ? payment.info.forwardFee : 0n),
            payment: payment?.info.type === 'internal' ? { value: payment.info.value.coins, bounce: payment.info.bounce, body: loadSlashPayment(payment.body.beginParse()) } : null,
        };
    });
}

export { beginCell };
