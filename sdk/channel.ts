// The client side of payment channels (contracts/channel.tact): open a
// channel with a provider checked by `ChrysalisClient.discover`, send any
// number of encrypted requests through it, and check every cumulative receipt
// the enclave signs: its signature, that it chains from the one before
// (seqno + 1, the running root, the amount grown by exactly this request's
// price) and that it commits to what was sent and received. Every (step,
// receipt) pair is kept, so any single request can be disputed later; two
// signed receipts that cannot both be honest are kept as a slashing proof.
// Closing is cooperative (the runner signs a final receipt and claims it), or
// by time (RequestChannelClose, then SettleChannel after closeBy).
//
// The arbiters' side of a channel dispute is here too (judgeChannelDispute,
// signChannelJudgement), as sdk/arbiter.ts is for escrows.
import { createHash, createPrivateKey, diffieHellman, KeyObject, randomBytes } from 'crypto';
import { Address, beginCell, Dictionary } from '@ton/core';
import { Channel } from '../wrappers/Channel';
import { Provider } from '../wrappers/Provider';
import {
    CHANNEL_ACTIVE,
    CHANNEL_CLOSING,
    CHANNEL_OPENED,
    ChannelInfo,
    ChannelReceipt,
    storeClaimChannel,
    storeDisputeChannelRequest,
    storeExpireChannelDispute,
    storeOpenChannel,
    storeProveChannelEquivocation,
    storeRequestChannelClose,
    storeSettleChannel,
    storeSubmitChannelVerdict,
    storeTopUpChannel,
} from '../wrappers/Registry';
import {
    channelReceiptHash,
    ChannelReceiptError,
    channelReceiptsConflict,
    ChannelStepFields,
    claimChannelMessage,
    disputeChannelRequestMessage,
    nextRoot,
    parseChannelReceipt,
    proveChannelEquivocationMessage,
    SignedChannelReceipt,
    signedChannelReceiptFromJson,
    SignedChannelReceiptJson,
    verifyChannelReceipt,
} from '../wrappers/channelReceipt';
import { bigIntToBuffer32, bufferToBigInt, Ed25519KeyPair, verifyHash } from '../wrappers/ed25519';
import { buildChannelVerdict, SignedVerdict, submitChannelVerdictMessage } from '../wrappers/verdict';
import { ChainBackend, OutgoingMessage, SendReport } from '../runner/chain';
import { clientSharedSecret, open, requestKeyPair, seal, x25519PublicKey } from '../runner/envelope';
import { InferenceRequest, InferenceResult, ModelSet, parseInferenceRequest } from '../runner/models';
import {
    base64,
    ChannelAnswerJson,
    ChannelCloseAnswerJson,
    ChannelCloseRequestJson,
    ChannelRequestJson,
    channelStepFromJson,
    ChannelStateJson,
    closeCommand,
    closeContext,
    decimal,
    hex,
    isJobErrorCode,
    jobContext,
    JobErrorCode,
    object,
    Prices,
    priceOf,
    ProtocolError,
    requestHashOf,
    responseHashOf,
} from '../runner/protocol';
import type { ClientOptions, ProviderHandle } from './client';
import { signOutcome } from './arbiter';
import type { Judgement } from './arbiter';

/** Why a channel operation stopped. Disputable codes come with the `seqno` of a receipt that is kept and can be disputed. */
export type ChannelErrorCode =
    /** A deposit, top-up or seqno out of range. */
    | 'invalid-argument'
    /** The provider does not offer the model asked for. */
    | 'model-not-offered'
    /** A channel is already deployed at this (client, provider, nonce). */
    | 'channel-in-use'
    /** The Provider refused the channel, or did not engage it in time. */
    | 'channel-not-engaged'
    /** The channel was engaged under another enclave key than the one checked. */
    | 'keys-mismatch'
    | 'runner-unreachable'
    /** The runner answered with an error (its code in `runnerCode`). */
    | 'runner-refused'
    /** The receipt is not signed by the engaged key, is for another channel or opening, or does not chain from the last one: rejected. */
    | 'bad-receipt'
    /** Two signed receipts that cannot both be honest (kept in channel.conflicts): prove it with proveEquivocation. */
    | 'equivocation'
    /** Disputable: the response received is not the one the step commits to. */
    | 'response-mismatch'
    /** Disputable: the signed response does not decrypt to a result. */
    | 'undecryptable-response'
    /** Disputable: the units or the amount are not what the result and the advertised prices say. */
    | 'metering-mismatch'
    /** The deposit left cannot pay for another request. */
    | 'deposit-exhausted'
    /** The channel has a final receipt or has closed: nothing more is served. */
    | 'channel-closed'
    | 'not-disputable'
    | 'send-failed';

/** A typed failure of a channel operation. */
export class ChannelError extends Error {
    /** With a disputable code: the seqno of the kept receipt signed right after the request (for disputeRequest). */
    readonly seqno?: bigint;
    /** With runner-refused: the runner's own code. */
    readonly runnerCode?: JobErrorCode;
    /** With runner-refused: the HTTP status. */
    readonly status?: number;

    constructor(
        readonly code: ChannelErrorCode,
        message: string,
        details: { seqno?: bigint; runnerCode?: JobErrorCode; status?: number } = {},
    ) {
        super(message);
        this.name = 'ChannelError';
        this.seqno = details.seqno;
        this.runnerCode = details.runnerCode;
        this.status = details.status;
    }
}

/** One request served in a channel, with everything needed to dispute it later. */
export interface ChannelRequestRecord {
    /** The seqno of the receipt signed right after it (request k has seqno k). */
    seqno: bigint;
    step: ChannelStepFields;
    receipt: SignedChannelReceipt;
    fields: ChannelReceipt;
    request: InferenceRequest;
    /** The request's one-time X25519 key; revealing it discloses this request only. */
    clientKey: { publicKey: Buffer; privateKey: KeyObject };
    sealedRequest: Buffer;
    answer: ChannelAnswerJson;
    /** The decrypted result; null when it did not decrypt. */
    result: InferenceResult | null;
}

/** Two receipts signed by the enclave for one opening that cannot both be honest. */
export interface ChannelConflict {
    first: SignedChannelReceipt;
    second: SignedChannelReceipt;
}

/** A request sent and not yet answered (kept so a lost answer can be recovered with `sync`). */
interface PendingRequest {
    request: InferenceRequest;
    clientKey: { publicKey: Buffer; privateKey: KeyObject };
    sealedRequest: Buffer;
    requestHash: bigint;
}

/** One opening of a payment channel, as the client tracks it. */
export class PaymentChannel {
    /** The runner's base URL; set it again if the runner moved (e.g. restarted on another port). */
    runnerUrl: string;
    /** The deposit as the client knows it (updated by topUp). */
    deposit: bigint;
    /** Every request served, by seqno (requests[k - 1] has seqno k). */
    readonly requests: ChannelRequestRecord[] = [];
    /** The final receipt, once the runner signed it. */
    final: SignedChannelReceipt | null = null;
    /** Pairs of signed receipts that cannot both be honest: a slashing proof each. */
    readonly conflicts: ChannelConflict[] = [];
    /** Receipts signed by the enclave that were refused (out of chain), with why. */
    readonly rejected: { signed: SignedChannelReceipt; reason: string }[] = [];
    /** @internal requests sent whose answer has not been accepted, by requestHash */
    readonly pending = new Map<bigint, PendingRequest>();

    constructor(
        /** The Channel contract. */
        readonly address: Address,
        /** The Provider contract. */
        readonly provider: Address,
        readonly nonce: bigint,
        /** ChannelInfo.openId: every receipt names it. */
        readonly openId: bigint,
        readonly model: { name: string; modelHash: bigint },
        /** The engaged enclave key (ed25519, 32 bytes): every receipt is checked against it. */
        readonly enclaveKey: Buffer,
        /** The enclave's X25519 key requests are sealed to. */
        readonly encryptionKey: Buffer,
        /** The advertised prices every request is checked against. */
        readonly prices: Prices,
        /** OpenChannel.expiresAt: the runner serves until then. */
        readonly expiresAt: number,
        runnerUrl: string,
        deposit: bigint,
    ) {
        this.runnerUrl = runnerUrl;
        this.deposit = deposit;
    }

    /** The last request served (its receipt is the latest cumulative one before a final). */
    get latest(): ChannelRequestRecord | undefined {
        return this.requests[this.requests.length - 1];
    }

    /** The cumulative amount charged so far. */
    get spent(): bigint {
        return this.latest?.fields.amount ?? 0n;
    }

    /** What the deposit still pays for. */
    get remaining(): bigint {
        return this.deposit - this.spent;
    }

    /** Every receipt kept (each request's, then the final one), by seqno. */
    receipts(): SignedChannelReceipt[] {
        return [...this.requests.map((r) => r.receipt), ...(this.final ? [this.final] : [])];
    }
}

/** What a request through a channel returns once its receipt and answer check out. */
export interface ChannelRequestResult {
    record: ChannelRequestRecord;
    result: InferenceResult;
}

/** How close() ended: closed at once by the final receipt, or closing by time (settle after `settleAfter`). */
export type ChannelCloseOutcome =
    | { kind: 'closed'; final: SignedChannelReceipt; amount: bigint; claimedBy: 'runner' | 'client' }
    | { kind: 'closing'; settleAfter: number; reason: string };

/** What a client gives the arbiters for one disputed request of a channel. */
export interface ChannelDisputeEvidence {
    channel: string;
    openId: string;
    seqno: string;
    /** The request's one-time X25519 private key (PKCS#8 DER, hex): it opens this request's envelopes only. */
    clientPrivateKey: string;
    clientKey: string;
    sealedRequest: string;
    answer: ChannelAnswerJson;
}

/** The evidence of request `record` of `channel`, as disputeRequest hashes it. */
export function channelDisputeEvidence(channel: PaymentChannel, record: ChannelRequestRecord): ChannelDisputeEvidence {
    return {
        channel: channel.address.toString(),
        openId: channel.openId.toString(),
        seqno: record.seqno.toString(),
        clientPrivateKey: record.clientKey.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('hex'),
        clientKey: record.clientKey.publicKey.toString('hex'),
        sealedRequest: record.sealedRequest.toString('base64'),
        answer: record.answer,
    };
}

/** sha256 of the evidence's canonical JSON (keys in the order above): DisputeChannelRequest.evidenceHash. */
export function channelEvidenceHashOf(evidence: ChannelDisputeEvidence): bigint {
    return bufferToBigInt(createHash('sha256').update(JSON.stringify(evidence)).digest());
}

/** The client side of payment channels. Same options as ChrysalisClient (the wallet pays deposits and fees). */
export class ChannelClient {
    private readonly fetchImpl: typeof fetch;
    /** Each channel's requests and close run one after another: every receipt must chain from the one accepted before it. */
    private readonly queues = new WeakMap<PaymentChannel, Promise<void>>();

    constructor(private readonly o: ClientOptions) {
        this.fetchImpl = o.fetch ?? fetch;
    }

    /**
     * Opens a channel with a provider checked by `discover`: deploys it with
     * `deposit` + the Provider's channelOpenFee, waits until the Provider
     * engaged it, and checks the engaged enclave key is the one checked.
     * `model` defaults to the provider's first model.
     */
    async openChannel(handle: ProviderHandle, opts: { deposit: bigint; expiresInSeconds: number; nonce?: bigint; model?: string }): Promise<PaymentChannel> {
        const { chain, wallet } = this.o;
        const model = opts.model === undefined ? handle.models[0] : handle.models.find((m) => m.name === opts.model);
        if (!model) throw new ChannelError('model-not-offered', `the provider does not offer ${opts.model ?? 'any model'}`);
        if (opts.deposit <= 0n) throw new ChannelError('invalid-argument', 'the deposit must be positive');
        if (!Number.isSafeInteger(opts.expiresInSeconds) || opts.expiresInSeconds <= 0) throw new ChannelError('invalid-argument', 'expiresInSeconds must be a positive integer');
        const nonce = opts.nonce ?? randomBytes(8).readBigUInt64BE();
        const channel = await Channel.fromInit(wallet.address, handle.provider, nonce);
        if (await chain.isDeployed(channel.address)) throw new ChannelError('channel-in-use', `channel nonce ${nonce} is in use; pick another`);
        const fee = await Provider.fromAddress(handle.provider).getChannelOpenFee(chain.provider(handle.provider));
        const expiresAt = (await chain.now()) + opts.expiresInSeconds;
        const body = beginCell()
            .store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: model.modelHash, deposit: opts.deposit, expiresAt: BigInt(expiresAt) }))
            .endCell();
        await this.send({ to: channel.address, value: opts.deposit + fee, body, init: channel.init! }, 'OpenChannel');
        const info = await this.waitEngaged(channel.address);
        if (info.engagement === null || info.engagement.enclaveKey !== bufferToBigInt(handle.signingKey)) {
            throw new ChannelError('keys-mismatch', 'the channel was engaged under another enclave key than the one checked');
        }
        return new PaymentChannel(channel.address, handle.provider, nonce, info.openId, model, handle.signingKey, handle.encryptionKey, handle.prices, expiresAt, handle.runnerUrl, info.deposit);
    }

    /** Adds `amount` to the deposit (TopUpChannel with amount + triggerFee). */
    async topUp(channel: PaymentChannel, amount: bigint): Promise<SendReport> {
        if (amount <= 0n) throw new ChannelError('invalid-argument', 'a top-up must be positive');
        const c = Channel.fromAddress(channel.address);
        const fee = await c.getTriggerFee(this.o.chain.provider(channel.address));
        const body = beginCell().store(storeTopUpChannel({ $$type: 'TopUpChannel', queryId: 0n, amount })).endCell();
        const report = await this.send({ to: channel.address, value: amount + fee, body }, 'TopUpChannel');
        const info = await this.info(channel);
        if (info.openId !== channel.openId || info.deposit < channel.deposit + amount) throw new ChannelError('send-failed', 'the top-up was not accepted');
        channel.deposit = info.deposit;
        return report;
    }

    /**
     * Sends one request through the channel and checks the answer. The
     * receipt must be signed by the engaged key, for this channel and
     * opening, with seqno = last + 1, step.prev = the last root, nextRoot(step)
     * = its root, the step's requestHash what was sent, the amount grown by
     * exactly step.amount and at most the deposit ('bad-receipt'); a receipt
     * that conflicts with one kept is 'equivocation'. Once it chains, it is
     * kept; then the response must hash to the step, decrypt, and be billed
     * at most the advertised price of its units (disputable errors, with
     * `seqno`). A lost answer is recovered from the runner when it can be.
     */
    request(channel: PaymentChannel, request: InferenceRequest): Promise<ChannelRequestResult> {
        return this.serial(channel, () => this.requestOnce(channel, request));
    }

    private async requestOnce(channel: PaymentChannel, request: InferenceRequest): Promise<ChannelRequestResult> {
        if (channel.final) throw new ChannelError('channel-closed', 'the channel has a final receipt: nothing more is served');
        if (request.model !== channel.model.name) throw new ChannelError('model-not-offered', `the channel pays for ${channel.model.name}, not ${request.model}`);
        if (channel.remaining <= 0n) throw new ChannelError('deposit-exhausted', 'the deposit is spent; top it up');
        const clientKey = requestKeyPair();
        const secret = clientSharedSecret(clientKey.privateKey, channel.encryptionKey);
        const sealedRequest = seal(secret, 'request', jobContext(channel.address), Buffer.from(JSON.stringify(request)));
        const requestHash = requestHashOf(clientKey.publicKey, sealedRequest);
        const pending: PendingRequest = { request, clientKey, sealedRequest, requestHash };
        channel.pending.set(requestHash, pending);
        const body: ChannelRequestJson = { clientKey: clientKey.publicKey.toString('hex'), sealedRequest: sealedRequest.toString('base64') };
        let answer: ChannelAnswerJson;
        try {
            answer = await this.postJson<ChannelAnswerJson>(`${channel.runnerUrl}/v1/channels/${channel.address.toString()}/requests`, body);
        } catch (e) {
            // The runner may have recorded the receipt and lost the answer (a crash, a dropped connection): ask for it.
            const lost = e instanceof ChannelError && (e.code === 'runner-unreachable' || (e.status !== undefined && e.status >= 500 && e.runnerCode !== 'channel-busy'));
            const recovered = lost ? await this.fetchState(channel).catch(() => undefined) : undefined;
            if (!recovered?.latest || channelStepFromJson(recovered.latest.step).requestHash !== requestHash) {
                if (!lost) channel.pending.delete(requestHash);
                throw e;
            }
            answer = recovered.latest;
        }
        return this.accept(channel, answer, pending);
    }

    /**
     * Asks the runner for the channel's latest answer and final receipt and
     * takes what the client lacks: the answer to a request whose answer was
     * lost, and the final receipt. Each is checked as `request` and `close` do.
     * Returns the request accepted, if any.
     */
    async sync(channel: PaymentChannel): Promise<ChannelRequestResult | undefined> {
        const state = await this.fetchState(channel);
        let accepted: ChannelRequestResult | undefined;
        if (state.latest) {
            const step = channelStepFromJson(state.latest.step);
            const pending = channel.pending.get(step.requestHash);
            if (pending) accepted = this.accept(channel, state.latest, pending);
        }
        if (state.final && !channel.final) this.acceptFinal(channel, signedChannelReceiptFromJson(state.final));
        return accepted;
    }

    /**
     * The cooperative close. Asks the runner for the final receipt (proving
     * the client asks with the key of its last request), checks it (the last
     * amount, count and root, seqno + 1, final), and makes sure it is
     * claimed: the runner claims it; if the channel is still open, the client
     * claims it itself. If there is no request to prove the close with, or
     * the runner does not answer or answers wrongly, falls back to
     * RequestChannelClose: settle() after `settleAfter`.
     */
    close(channel: PaymentChannel): Promise<ChannelCloseOutcome> {
        return this.serial(channel, () => this.closeOnce(channel));
    }

    private async closeOnce(channel: PaymentChannel): Promise<ChannelCloseOutcome> {
        let reason = 'no request served: nothing to prove a close with';
        const last = channel.latest;
        if (last && !channel.final) {
            try {
                const secret = clientSharedSecret(last.clientKey.privateKey, channel.encryptionKey);
                const body: ChannelCloseRequestJson = {
                    clientKey: last.clientKey.publicKey.toString('hex'),
                    sealedClose: seal(secret, 'request', closeContext(channel.address), closeCommand(channel.address, channel.openId)).toString('base64'),
                };
                const answer = await this.postJson<ChannelCloseAnswerJson>(`${channel.runnerUrl}/v1/channels/${channel.address.toString()}/close`, body);
                this.acceptFinal(channel, signedChannelReceiptFromJson(answer.receipt));
            } catch (e) {
                if (!(e instanceof ChannelError || e instanceof ChannelReceiptError || e instanceof ProtocolError)) throw e;
                reason = `the runner did not close: ${e.message}`;
            }
        } else if (channel.final) reason = '';
        if (channel.final) {
            const amount = parseChannelReceipt(channel.final.receipt).amount;
            if (!(await this.isOpen(channel))) return { kind: 'closed', final: channel.final, amount, claimedBy: 'runner' };
            try {
                await this.claim(channel, channel.final);
            } catch (e) {
                if (!(e instanceof ChannelError)) throw e;
                reason = `the final receipt could not be claimed: ${e.message}`;
            }
            if (!(await this.isOpen(channel))) return { kind: 'closed', final: channel.final, amount, claimedBy: 'client' };
        }
        const info = await this.info(channel);
        if (info.state === CHANNEL_ACTIVE) return { kind: 'closing', settleAfter: await this.requestClose(channel), reason };
        return { kind: 'closing', settleAfter: Number(info.closeBy), reason };
    }

    /** Starts the challenge period (RequestChannelClose); returns closeBy, after which settle() returns the rest. */
    async requestClose(channel: PaymentChannel): Promise<number> {
        const fee = await Channel.fromAddress(channel.address).getTriggerFee(this.o.chain.provider(channel.address));
        await this.send({ to: channel.address, value: fee, body: beginCell().store(storeRequestChannelClose({ $$type: 'RequestChannelClose', queryId: 0n })).endCell() }, 'RequestChannelClose');
        const info = await this.info(channel);
        if (info.state !== CHANNEL_CLOSING) throw new ChannelError('send-failed', `the close request was not accepted (state ${info.state})`);
        return Number(info.closeBy);
    }

    /** After closeBy (and no dispute awaiting its verdict): SettleChannel returns what is left to the client. */
    async settle(channel: PaymentChannel): Promise<SendReport> {
        const fee = await Channel.fromAddress(channel.address).getTriggerFee(this.o.chain.provider(channel.address));
        const report = await this.send({ to: channel.address, value: fee, body: beginCell().store(storeSettleChannel({ $$type: 'SettleChannel', queryId: 0n })).endCell() }, 'SettleChannel');
        if (await this.isOpen(channel)) throw new ChannelError('send-failed', 'the channel did not settle (before closeBy, or a dispute awaits its verdict)');
        return report;
    }

    /** Claims `signed` (anyone may; the claimer pays the claim fee, the deposit pays the provider). */
    async claim(channel: PaymentChannel, signed: SignedChannelReceipt): Promise<SendReport> {
        const fee = await Channel.fromAddress(channel.address).getClaimFee(this.o.chain.provider(channel.address));
        return this.send({ to: channel.address, value: fee, body: beginCell().store(storeClaimChannel(claimChannelMessage(signed))).endCell() }, 'ClaimChannel');
    }

    /**
     * Disputes request `seqno` (the receipt signed right after it and its
     * step) with the bond: DisputeChannelRequest with engagement.disputeBond
     * + disputeFee. Disputes go in increasing seqno order, one at a time. The
     * evidence for the arbiters is returned; its hash goes on-chain.
     */
    async disputeRequest(channel: PaymentChannel, seqno: bigint, reason: number): Promise<{ evidence: ChannelDisputeEvidence; evidenceHash: bigint; verdictBy: number }> {
        const record = channel.requests.find((r) => r.seqno === seqno);
        if (!record) throw new ChannelError('not-disputable', `no request with seqno ${seqno} in this channel`);
        const info = await this.info(channel);
        if (info.openId !== channel.openId || (info.state !== CHANNEL_ACTIVE && info.state !== CHANNEL_CLOSING) || info.engagement === null) {
            throw new ChannelError('not-disputable', `the channel is not open (state ${info.state})`);
        }
        if (info.disputePending) throw new ChannelError('not-disputable', 'another dispute awaits its verdict');
        if (seqno <= info.lastDisputedSeqno) throw new ChannelError('not-disputable', `disputes go in seqno order: ${info.lastDisputedSeqno} was disputed already`);
        const evidence = channelDisputeEvidence(channel, record);
        const evidenceHash = channelEvidenceHashOf(evidence);
        const fee = await Channel.fromAddress(channel.address).getDisputeFee(this.o.chain.provider(channel.address));
        const body = beginCell().store(storeDisputeChannelRequest(disputeChannelRequestMessage(record.receipt, record.step, reason, evidenceHash))).endCell();
        await this.send({ to: channel.address, value: info.engagement.disputeBond + fee, body }, 'DisputeChannelRequest');
        const after = await this.info(channel);
        if (!after.disputePending || after.lastDisputedSeqno !== seqno) throw new ChannelError('send-failed', 'the dispute was not accepted');
        return { evidence, evidenceHash, verdictBy: Number(after.verdictBy) };
    }

    /**
     * No verdict came by verdictBy: ExpireChannelDispute refunds the disputed
     * request with the bond (from the deposit, and what claims had already
     * paid for it from the Provider's stake). Send it soon after verdictBy:
     * the stake can leave once the Provider's jobsSettleBy has passed (at
     * least JOB_SETTLE_GRACE, an hour, after the latest verdictBy), and a
     * later expiry finds less of it. The sender pays the expiry fee.
     */
    async expireDispute(channel: PaymentChannel): Promise<SendReport> {
        const info = await this.info(channel);
        if (info.openId !== channel.openId || !info.disputePending) throw new ChannelError('not-disputable', 'no dispute of this channel awaits its verdict');
        const now = await this.o.chain.now();
        if (now <= Number(info.verdictBy)) throw new ChannelError('not-disputable', `the dispute can be expired after ${info.verdictBy}, not at ${now}`);
        const fee = await Channel.fromAddress(channel.address).getExpireFee(this.o.chain.provider(channel.address));
        const report = await this.send({ to: channel.address, value: fee, body: beginCell().store(storeExpireChannelDispute({ $$type: 'ExpireChannelDispute', queryId: 0n })).endCell() }, 'ExpireChannelDispute');
        if ((await this.info(channel)).disputePending) throw new ChannelError('send-failed', 'the dispute was not expired');
        return report;
    }

    /** Submits the arbiters' signed verdict on the channel's open dispute, with the fee a ClientWins verdict needs. */
    async submitVerdict(channel: PaymentChannel, signed: SignedVerdict, arbiters: Dictionary<number, bigint>): Promise<SendReport> {
        const fee = await Channel.fromAddress(channel.address).getVerdictFee(this.o.chain.provider(channel.address));
        return this.send({ to: channel.address, value: fee, body: beginCell().store(storeSubmitChannelVerdict(submitChannelVerdictMessage(signed, arbiters))).endCell() }, 'SubmitChannelVerdict');
    }

    /** Proves two conflicting receipts (by default the first kept in channel.conflicts) at the Provider: it is slashed, the prover rewarded. */
    async proveEquivocation(channel: PaymentChannel, conflict: ChannelConflict | undefined = channel.conflicts[0]): Promise<SendReport> {
        if (!conflict) throw new ChannelError('not-disputable', 'no conflicting receipts kept for this channel');
        const fee = await Provider.fromAddress(channel.provider).getProofFee(this.o.chain.provider(channel.provider));
        const body = beginCell().store(storeProveChannelEquivocation(proveChannelEquivocationMessage(conflict.first, conflict.second))).endCell();
        return this.send({ to: channel.provider, value: fee, body }, 'ProveChannelEquivocation');
    }

    /** The channel's state, as its getter reports it. */
    async info(channel: PaymentChannel): Promise<ChannelInfo> {
        return Channel.fromAddress(channel.address).getInfo(this.o.chain.provider(channel.address));
    }

    // ---------------- checks ----------------

    /** Checks an answer against what was sent (see `request`); keeps its receipt once it chains. */
    private accept(channel: PaymentChannel, answer: ChannelAnswerJson, sent: PendingRequest): ChannelRequestResult {
        let signed: SignedChannelReceipt;
        let step: ChannelStepFields;
        let sealedResponse: Buffer;
        let units: { input: bigint; output: bigint };
        try {
            const o = object(answer, 'answer');
            signed = signedChannelReceiptFromJson(object(o.receipt, 'receipt') as unknown as SignedChannelReceiptJson);
            step = channelStepFromJson(o.step);
            sealedResponse = base64(o.sealedResponse, 'sealedResponse');
            units = { input: decimal(o.inputUnits, 'inputUnits'), output: decimal(o.outputUnits, 'outputUnits') };
        } catch (e) {
            if (e instanceof ProtocolError || e instanceof ChannelReceiptError) throw new ChannelError('bad-receipt', `the answer is malformed: ${e.message}`);
            throw e;
        }
        const fields = this.checkSigned(channel, signed);
        const last = channel.latest?.fields;
        const problems: string[] = [];
        try {
            verifyChannelReceipt(signed, { enclaveKey: channel.enclaveKey, channel: channel.address, openId: channel.openId, deposit: channel.deposit, after: last });
        } catch (e) {
            if (!(e instanceof ChannelReceiptError)) throw e;
            problems.push(e.message);
        }
        if (fields.final) problems.push('a final receipt answers no request');
        if (fields.seqno !== (last?.seqno ?? 0n) + 1n) problems.push(`seqno ${fields.seqno} is not ${(last?.seqno ?? 0n) + 1n}`);
        if (step.prev !== (last?.root ?? 0n)) problems.push('the step does not chain from the last root');
        if (nextRoot(step) !== fields.root) problems.push('the step does not hash to the receipt’s root');
        if (fields.amount !== (last?.amount ?? 0n) + step.amount) problems.push('the amount did not grow by exactly the step’s amount');
        if (fields.requests !== (last?.requests ?? 0n) + 1n) problems.push('the request count did not grow by one');
        if (step.requestHash !== sent.requestHash) problems.push('the step is for another request than the one sent');
        if (problems.length > 0) {
            channel.rejected.push({ signed, reason: problems.join('; ') });
            throw new ChannelError('bad-receipt', `the receipt does not hold: ${problems.join('; ')}`);
        }
        const record: ChannelRequestRecord = {
            seqno: fields.seqno,
            step,
            receipt: signed,
            fields,
            request: sent.request,
            clientKey: sent.clientKey,
            sealedRequest: sent.sealedRequest,
            answer,
            result: null,
        };
        channel.requests.push(record);
        channel.pending.delete(sent.requestHash);
        // From here on the receipt is kept: what fails is disputable with it.
        const seqno = fields.seqno;
        if (responseHashOf(sealedResponse) !== step.responseHash) throw new ChannelError('response-mismatch', 'the response received is not the one the receipt commits to', { seqno });
        let result: InferenceResult;
        try {
            const secret = clientSharedSecret(sent.clientKey.privateKey, channel.encryptionKey);
            result = JSON.parse(open(secret, 'response', jobContext(channel.address), sealedResponse).toString('utf8')) as InferenceResult;
        } catch {
            throw new ChannelError('undecryptable-response', 'the signed response does not decrypt to a result', { seqno });
        }
        record.result = result;
        if (BigInt(result.inputUnits) !== units.input || BigInt(result.outputUnits) !== units.output || step.amount > priceOf(channel.prices, units.input, units.output)) {
            throw new ChannelError('metering-mismatch', 'the request is billed for other units or above the advertised prices', { seqno });
        }
        return { record, result };
    }

    /** Checks a final receipt: the last request's amount, count and root with seqno + 1. */
    private acceptFinal(channel: PaymentChannel, signed: SignedChannelReceipt): void {
        const fields = this.checkSigned(channel, signed);
        const last = channel.latest?.fields;
        const holds =
            fields.final &&
            fields.seqno === (last?.seqno ?? 0n) + 1n &&
            fields.amount === (last?.amount ?? 0n) &&
            fields.requests === (last?.requests ?? 0n) &&
            fields.root === (last?.root ?? 0n);
        if (!holds) {
            channel.rejected.push({ signed, reason: 'not the final receipt of the last request' });
            throw new ChannelError('bad-receipt', 'the final receipt is not the last cumulative receipt closed');
        }
        channel.final = signed;
    }

    /** The enclave's signature, this channel and opening, and no conflict with a receipt kept. */
    private checkSigned(channel: PaymentChannel, signed: SignedChannelReceipt): ChannelReceipt {
        if (!verifyHash(channelReceiptHash(signed.receipt), signed.signature, channel.enclaveKey)) {
            throw new ChannelError('bad-receipt', 'the receipt is not signed by the engaged enclave key');
        }
        let fields: ChannelReceipt;
        try {
            fields = parseChannelReceipt(signed.receipt);
        } catch (e) {
            throw new ChannelError('bad-receipt', `the receipt does not parse: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (!fields.channel.equals(channel.address) || fields.openId !== channel.openId) throw new ChannelError('bad-receipt', 'the receipt is for another channel or opening');
        for (const kept of [...channel.receipts(), ...channel.rejected.map((r) => r.signed)]) {
            if (channelReceiptsConflict(kept, signed)) {
                channel.conflicts.push({ first: kept, second: signed });
                throw new ChannelError('equivocation', `the enclave signed two receipts that cannot both be honest (seqno ${fields.seqno}): proveEquivocation`, { seqno: fields.seqno });
            }
        }
        return fields;
    }

    // ---------------- plumbing ----------------

    private async serial<T>(channel: PaymentChannel, f: () => Promise<T>): Promise<T> {
        const before = this.queues.get(channel) ?? Promise.resolve();
        let done!: () => void;
        const mine = new Promise<void>((resolve) => (done = resolve));
        this.queues.set(channel, before.then(() => mine));
        await before;
        try {
            return await f();
        } finally {
            done();
        }
    }

    private async isOpen(channel: PaymentChannel): Promise<boolean> {
        if (!(await this.o.chain.isDeployed(channel.address))) return false;
        return (await this.info(channel)).openId === channel.openId;
    }

    private async waitEngaged(channel: Address): Promise<ChannelInfo> {
        const { chain } = this.o;
        const until = Date.now() + (this.o.engageTimeoutMs ?? 60_000);
        for (;;) {
            if (!(await chain.isDeployed(channel))) throw new ChannelError('channel-not-engaged', 'the channel closed: the provider refused it (the deposit came back)');
            const info = await Channel.fromAddress(channel).getInfo(chain.provider(channel));
            if (info.state === CHANNEL_ACTIVE) return info;
            if (info.state !== CHANNEL_OPENED || Date.now() > until) throw new ChannelError('channel-not-engaged', `the channel was not engaged (state ${info.state})`);
            await new Promise((r) => setTimeout(r, 1000));
        }
    }

    private async fetchState(channel: PaymentChannel): Promise<ChannelStateJson> {
        return this.http<ChannelStateJson>(`${channel.runnerUrl}/v1/channels/${channel.address.toString()}`, { method: 'GET' });
    }

    private async send(message: OutgoingMessage, what: string): Promise<SendReport> {
        const report = await this.o.chain.send(this.o.wallet, message);
        const failed = report.transactions?.find((tx) => tx.description.type === 'generic' && (tx.description.aborted || (tx.description.computePhase.type === 'vm' && !tx.description.computePhase.success)));
        if (failed && failed.description.type === 'generic' && failed.description.computePhase.type === 'vm') {
            throw new ChannelError('send-failed', `${what} failed on-chain with exit code ${failed.description.computePhase.exitCode}`);
        }
        return report;
    }

    private postJson<T>(url: string, body: unknown): Promise<T> {
        return this.http<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    }

    private async http<T>(url: string, init: RequestInit): Promise<T> {
        let res: Response;
        try {
            res = await this.fetchImpl(url, init);
        } catch (e) {
            throw new ChannelError('runner-unreachable', `cannot reach the runner at ${url}: ${e instanceof Error ? e.message : String(e)}`);
        }
        let body: unknown;
        try {
            body = await res.json();
        } catch {
            throw new ChannelError('runner-refused', `the runner answered ${res.status} without JSON`, { status: res.status });
        }
        if (!res.ok) {
            let code: JobErrorCode | undefined;
            let message = '';
            try {
                const error = object(object(body, 'error body').error, 'error');
                code = isJobErrorCode(error.code) ? error.code : undefined;
                message = `${String(error.code)}): ${String(error.message)}`;
            } catch {
                message = 'no error body)';
            }
            throw new ChannelError('runner-refused', `the runner refused (${res.status} ${message}`, { runnerCode: code, status: res.status });
        }
        return body as T;
    }
}

// ---------------- the arbiters' side ----------------

/**
 * Judges a disputed request of a channel from the client's evidence
 * (checked against the dispute's evidenceHash when given), as judgeDispute
 * does for escrows: provider wins when the evidence does not open the request
 * the step commits to, or the signed answer is what the model computes;
 * client wins when the signed response does not decrypt or differs from what
 * the (deterministic reference) model computes. Other models: undetermined.
 */
export async function judgeChannelDispute(
    chain: ChainBackend,
    evidence: ChannelDisputeEvidence,
    models: ModelSet,
    opts: { expectedEvidenceHash?: bigint } = {},
): Promise<Judgement> {
    if (opts.expectedEvidenceHash !== undefined && channelEvidenceHashOf(evidence) !== opts.expectedEvidenceHash) {
        return { outcome: 'provider-wins', reason: 'the evidence is not what the client committed to in its dispute' };
    }
    const channel = Address.parse(evidence.channel);
    if (!(await chain.isDeployed(channel))) return { outcome: 'undetermined', reason: 'the channel is closed' };
    const info = await Channel.fromAddress(channel).getInfo(chain.provider(channel));
    const seqno = BigInt(evidence.seqno);
    if (!info.disputePending || info.lastDisputedSeqno !== seqno || info.openId !== BigInt(evidence.openId) || info.engagement === null) {
        return { outcome: 'undetermined', reason: 'the channel is not in this dispute' };
    }
    let step: ChannelStepFields;
    let fields: ChannelReceipt;
    try {
        const signed = signedChannelReceiptFromJson(evidence.answer.receipt);
        fields = verifyChannelReceipt(signed, { enclaveKey: info.engagement.enclaveKey, channel, openId: info.openId, deposit: info.deposit });
        step = channelStepFromJson(evidence.answer.step);
    } catch (e) {
        return { outcome: 'undetermined', reason: `the answer's receipt is not the enclave's: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (fields.seqno !== seqno || nextRoot(step) !== fields.root) return { outcome: 'undetermined', reason: 'the receipt or step is not the one disputed' };
    const clientKey = hex(evidence.clientKey, 'clientKey', 32);
    const sealedRequest = base64(evidence.sealedRequest, 'sealedRequest');
    if (requestHashOf(clientKey, sealedRequest) !== step.requestHash) return { outcome: 'provider-wins', reason: 'the evidence is not the request the step commits to' };
    const provider = await Provider.fromAddress(info.provider).getInfo(chain.provider(info.provider));
    let secret: Buffer;
    let request: InferenceRequest;
    try {
        const privateKey = createPrivateKey({ key: hex(evidence.clientPrivateKey, 'clientPrivateKey'), format: 'der', type: 'pkcs8' });
        secret = diffieHellman({ privateKey, publicKey: x25519PublicKey(bigIntToBuffer32(provider.enclave.encryptionKey)) });
        request = parseInferenceRequest(JSON.parse(open(secret, 'request', jobContext(channel), sealedRequest).toString('utf8')) as unknown);
    } catch {
        return { outcome: 'provider-wins', reason: 'the revealed key does not open a valid request' };
    }
    const sealedResponse = base64(evidence.answer.sealedResponse, 'sealedResponse');
    if (responseHashOf(sealedResponse) !== step.responseHash) {
        return { outcome: 'undetermined', reason: 'the client shows another response than the one signed: ask the provider for the signed one' };
    }
    let answered: InferenceResult;
    try {
        answered = JSON.parse(open(secret, 'response', jobContext(channel), sealedResponse).toString('utf8')) as InferenceResult;
    } catch {
        return { outcome: 'client-wins', reason: 'the signed response does not decrypt to a result' };
    }
    const model = models.byName(request.model);
    if (!model || model.name !== 'chrysalis-reference') return { outcome: 'undetermined', reason: 'not a deterministic model: human review' };
    const expected = await model.complete({ ...request, maxOutputTokens: Math.min(request.maxOutputTokens, Math.max(answered.outputUnits, 1)) });
    if (expected.text !== answered.text || expected.finishReason !== answered.finishReason || expected.inputUnits !== answered.inputUnits || expected.outputUnits !== answered.outputUnits) {
        return { outcome: 'client-wins', reason: 'the signed answer is not what the model computes for this request' };
    }
    return { outcome: 'provider-wins', reason: 'the signed answer is what the model computes for this request' };
}

/** The channel verdict for a judgement, signed by each of `arbiters` (index → key). */
export function signChannelJudgement(
    judgement: Judgement,
    v: { channel: Address; openId: bigint; seqno: bigint; slashAmount: bigint; deadline: number; feeTo: Address },
    arbiters: Map<number, Ed25519KeyPair>,
): SignedVerdict {
    return signOutcome(judgement, v.slashAmount, arbiters, (outcome, slashAmount) =>
        buildChannelVerdict({ channel: v.channel, openId: v.openId, seqno: v.seqno, outcome, slashAmount, deadline: v.deadline, feeTo: v.feeTo }),
    );
}
