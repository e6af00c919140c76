// The runner's side of payment channels (contracts/channel.tact): it serves
// a client's encrypted requests inside an engaged channel, signs the next
// cumulative receipt after each one, keeps it durably before anyone sees it,
// and claims the latest receipt when enough is unclaimed, when the client asked
// to close, or before the channel's time runs out. A client-authenticated
// close gets a final receipt, claimed at once (the cooperative close).
//
// Never-two-receipts rule, cumulative form: requests on one channel run one
// at a time in this process, and each receipt is recorded with
// JobStore.recordChannelReceipt, a compare-and-swap that stores it only as the
// next link of the chain (seqno + 1, from the latest root and amount). Only
// recorded receipts are answered or claimed. A receipt whose record fails was
// never seen outside the process: it is dropped and the request refused with
// a retryable error. So no crash, restart or race can put two receipts with
// one seqno, or a lower amount after a higher one, under the enclave's key
// (the Provider slashes either: ProveChannelEquivocation).
import { Address, beginCell, Transaction } from '@ton/core';
import type { Logger } from 'pino';
import { Channel } from '../wrappers/Channel';
import {
    CHANNEL_ACTIVE,
    CHANNEL_CLOSING,
    ChannelInfo,
    ESCROW_CLOSED_RELEASED,
    loadChannelEnded,
    loadEngageChannel,
    loadOpenChannel,
    storeClaimChannel,
} from '../wrappers/Registry';
import { buildChannelReceipt, ChannelReceiptFields, channelReceiptHash, ChannelStepFields, claimChannelMessage, nextRoot, SignedChannelReceipt, signedChannelReceiptToJson } from '../wrappers/channelReceipt';
import { bufferToBigInt } from '../wrappers/ed25519';
import { ChainBackend, ChainWallet } from './chain';
import { open, seal } from './envelope';
import { ModelSet } from './models';
import { openRequest, runMetered } from './requests';
import {
    ChannelAnswerJson,
    ChannelCloseAnswerJson,
    channelStepToJson,
    ChannelStateJson,
    closeCommand,
    closeContext,
    JobError,
    jobContext,
    Prices,
    requestHashOf,
    responseHashOf,
} from './protocol';
import { ChannelReceiptRecord, ChannelRecord, JobStore, StoreError } from './store';
import { TeeBackend } from './tee';

/** What the channel service needs of its store (the real JobStore: its compare-and-swap is the guarantee). */
export type ChannelStore = Pick<
    JobStore,
    | 'noteChannel'
    | 'getChannel'
    | 'latestOpening'
    | 'openChannels'
    | 'recordChannelReceipt'
    | 'latestChannelReceipt'
    | 'channelReceiptAt'
    | 'channelReceiptByRequest'
    | 'channelReceiptByClientKey'
    | 'noteClaimAttempt'
    | 'markChannelEnded'
    | 'markChannelAddressEnded'
    | 'channelCounts'
>;

/** Default `channelClaimThreshold`: 1 TON unclaimed. A claim costs about 0.01 TON (sandbox config), so about 1% overhead at worst. */
export const DEFAULT_CHANNEL_CLAIM_THRESHOLD = 1_000_000_000n;

export interface ChannelServiceOptions {
    chain: ChainBackend;
    /** Pays for ClaimChannel. */
    wallet: ChainWallet;
    tee: TeeBackend;
    store: ChannelStore;
    models: ModelSet;
    provider: Address;
    prices: Prices;
    logger: Logger;
    /** No request is served this close to the channel's expiry (or closeBy), and its last receipt is claimed from then on. */
    deadlineMarginSeconds: number;
    /** A claim not seen on-chain after this long is sent again. */
    resendAfterSeconds: number;
    maxRequestBytes: number;
    /** Nanoton unclaimed at which the job loop claims the latest receipt. */
    claimThreshold: bigint;
    /** Test hook: after the receipt is signed, before it is recorded. Throwing simulates a crash there. */
    beforeRecord?: (channel: Address, seqno: bigint) => void;
    /** Test hook: after the receipt is recorded, before it is answered. Throwing simulates a crash there (the answer is lost). */
    afterRecord?: (channel: Address, seqno: bigint) => void;
}

/** What one pass of the loop did with channels. */
export interface ChannelTickReport {
    /** Channel openings newly seen engaged. */
    channelsEngaged: number;
    /** ClaimChannel messages sent, and claims then seen on-chain. */
    claimsSent: number;
    claimed: number;
    /** Channel openings seen ended. */
    channelsEnded: number;
}

/** A recorded receipt's answer, as the HTTP API returns it (a request's receipt only). */
export function channelAnswerOf(r: ChannelReceiptRecord): ChannelAnswerJson {
    if (!r.served) throw new Error('a final receipt answers no request');
    return {
        channel: r.channel.toString(),
        openId: r.openId.toString(),
        sealedResponse: r.served.sealedResponse.toString('base64'),
        step: channelStepToJson(r.served.step),
        receipt: signedChannelReceiptToJson({ receipt: r.receipt, signature: r.signature }),
        inputUnits: r.served.inputUnits.toString(),
        outputUnits: r.served.outputUnits.toString(),
    };
}

export class ChannelService {
    /** The tail of each channel's queue: requests, closes and claims of one channel run one at a time. */
    private readonly queues = new Map<string, Promise<void>>();
    /** Each opening's model and expiry, once read (they never change; its status here may be stale: the chain and the store decide). */
    private readonly openings = new Map<string, ChannelRecord>();

    constructor(private readonly o: ChannelServiceOptions) {}

    /** Serves one request in a channel; resolves with the recorded answer or rejects with a JobError. */
    serve(channel: Address, s: { clientKey: Buffer; sealedRequest: Buffer }): Promise<ChannelAnswerJson> {
        return this.serial(channel, () => this.serveOnce(channel, s));
    }

    /** The latest opening's last answer and final receipt (a client that lost an answer asks again). */
    state(channel: Address): ChannelStateJson {
        const opening = this.o.store.latestOpening(channel);
        if (!opening) throw new JobError('not-found', 'no request served in this channel');
        const latest = this.o.store.latestChannelReceipt(channel, opening.openId);
        if (!latest) throw new JobError('not-found', 'no request served in this channel');
        const lastServed = latest.final ? (latest.seqno > 1n ? this.o.store.channelReceiptAt(channel, opening.openId, latest.seqno - 1n) : undefined) : latest;
        return {
            channel: channel.toString(),
            openId: opening.openId.toString(),
            latest: lastServed ? channelAnswerOf(lastServed) : null,
            final: latest.final ? signedChannelReceiptToJson({ receipt: latest.receipt, signature: latest.signature }) : null,
        };
    }

    /**
     * The cooperative close, asked by the client: proven by sealing
     * closeCommand under the one-time key of a request served in this
     * opening. Signs the final receipt (once), records it, claims it.
     */
    close(channel: Address, c: { clientKey: Buffer; sealedClose: Buffer }): Promise<ChannelCloseAnswerJson> {
        return this.serial(channel, () => this.closeOnce(channel, c));
    }

    /** Runs `f` after every earlier task of the channel has finished. */
    private async serial<T>(channel: Address, f: () => Promise<T>): Promise<T> {
        const key = channel.toRawString();
        const before = this.queues.get(key) ?? Promise.resolve();
        let done!: () => void;
        const mine = new Promise<void>((resolve) => (done = resolve));
        const tail = before.then(() => mine);
        this.queues.set(key, tail);
        await before;
        try {
            return await f();
        } finally {
            done();
            if (this.queues.get(key) === tail) this.queues.delete(key);
        }
    }

    private async channelInfo(channel: Address): Promise<ChannelInfo> {
        return Channel.fromAddress(channel).getInfo(this.o.chain.provider(channel));
    }

    /** The channel on-chain, if it is ours. */
    private async ourChannel(channel: Address): Promise<ChannelInfo> {
        if (!(await this.o.chain.isDeployed(channel))) throw new JobError('channel-not-found', 'no channel at this address (never opened, or closed)');
        const info = await this.channelInfo(channel);
        if (!info.provider.equals(this.o.provider)) throw new JobError('wrong-provider', 'this channel is with another provider');
        return info;
    }

    /** Checks the channel can be served: active (not closing) and engaged with our key. */
    private checkServable(info: ChannelInfo): void {
        if (info.state === CHANNEL_CLOSING) throw new JobError('channel-closing', 'the client asked to close this channel');
        if (info.state !== CHANNEL_ACTIVE) throw new JobError('channel-not-active', `the channel is not engaged (state ${info.state})`);
        if (info.engagement === null || bufferToBigInt(this.o.tee.signingKey) !== info.engagement.enclaveKey) {
            throw new JobError('wrong-enclave-key', 'the channel was engaged under another enclave key');
        }
    }

    /**
     * The opening's model and expiry. The Channel keeps neither, so they come
     * from its EngageChannel (noted by the job loop) or, before the loop has
     * seen it, from the OpenChannel transaction itself: openId is its lt.
     */
    private async opening(channel: Address, openId: bigint): Promise<ChannelRecord> {
        const key = `${channel.toRawString()}/${openId}`;
        const known = this.openings.get(key) ?? this.o.store.getChannel(channel, openId);
        if (known) {
            this.openings.set(key, known);
            return known;
        }
        const [tx] = await this.o.chain.transactionsSince(channel, openId - 1n, 1);
        const body = tx?.lt === openId ? tx.inMessage?.body.beginParse() : undefined;
        if (!tx || !body || body.remainingBits < 32 || body.preloadUint(32) !== OPEN_CHANNEL_OP) {
            throw new JobError('unavailable', 'the channel’s opening transaction is not visible yet; try again');
        }
        const opened = loadOpenChannel(body);
        this.o.store.noteChannel({ channel, openId, modelHash: opened.modelHash, expiresAt: Number(opened.expiresAt), seenAt: tx.now });
        const noted = this.o.store.getChannel(channel, openId)!;
        this.openings.set(key, noted);
        return noted;
    }

    private async serveOnce(channel: Address, s: { clientKey: Buffer; sealedRequest: Buffer }): Promise<ChannelAnswerJson> {
        const { chain, store, tee, models, prices } = this.o;
        const log = this.o.logger.child({ channel: channel.toString() });
        if (s.sealedRequest.length > this.o.maxRequestBytes) throw new JobError('too-large', `the sealed request is over ${this.o.maxRequestBytes} bytes`);
        const info = await this.ourChannel(channel);
        const requestHash = requestHashOf(s.clientKey, s.sealedRequest);

        // A retry of a request already served gets the same answer, whatever the channel's state: nothing new is signed or charged.
        const stored = store.channelReceiptByRequest(channel, info.openId, requestHash);
        if (stored) {
            log.info({ seqno: stored.seqno.toString() }, 'channel request answered again from the store');
            return channelAnswerOf(stored);
        }
        this.checkServable(info);

        const opening = await this.opening(channel, info.openId);
        const now = await chain.now();
        if (now + this.o.deadlineMarginSeconds > Math.min(opening.expiresAt, Number(info.closeBy))) {
            throw new JobError('expired', 'too close to (or past) the channel’s expiry');
        }
        const model = models.byHash(opening.modelHash);
        if (!model) throw new JobError('model-not-served', 'this runner does not serve the channel’s model');
        const latest = store.latestChannelReceipt(channel, info.openId);
        if (latest?.final) throw new JobError('channel-closing', 'the final receipt is signed: nothing more is served in this opening');

        const context = jobContext(channel);
        const { secret, request } = openRequest(tee, context, s, model.name, 'channel');

        // What the deposit still pays for, and the output cap that keeps the new cumulative amount within it.
        const spent = latest?.amount ?? 0n;
        const left = info.deposit - spent;
        const { result, inputUnits, outputUnits, amount } = await runMetered(
            model,
            request,
            prices,
            left,
            () => new JobError('deposit-exhausted', `the deposit left (${left < 0n ? 0n : left} nanoton) does not pay for this input and one output unit`),
            log,
        );

        const sealedResponse = seal(secret, 'response', context, Buffer.from(JSON.stringify(result)));
        const step: ChannelStepFields = { prev: latest?.root ?? 0n, requestHash, responseHash: responseHashOf(sealedResponse), amount };
        const seqno = (latest?.seqno ?? 0n) + 1n;
        const signed = this.sign({ channel, openId: info.openId, seqno, amount: spent + amount, requests: (latest?.requests ?? 0n) + 1n, root: nextRoot(step), final: false });
        this.o.beforeRecord?.(channel, seqno);
        const record = this.record(() =>
            store.recordChannelReceipt(
                { channel, openId: info.openId, receipt: signed.receipt, signature: signed.signature, served: { step, clientKey: s.clientKey, sealedResponse, inputUnits, outputUnits } },
                now,
            ),
        );
        this.o.afterRecord?.(channel, seqno);
        log.info({ seqno: seqno.toString(), inputUnits: result.inputUnits, outputUnits: result.outputUnits, amount: amount.toString(), cumulative: record.amount.toString() }, 'channel request served');
        return channelAnswerOf(record);
    }

    /** Signs in memory; nothing of it leaves the process until it is recorded. */
    private sign(fields: ChannelReceiptFields): SignedChannelReceipt {
        const receipt = buildChannelReceipt(fields);
        return { receipt, signature: this.o.tee.sign(channelReceiptHash(receipt)) };
    }

    /** Records through the compare-and-swap; a refused record is a retryable refusal, its signature dropped. */
    private record(f: () => ChannelReceiptRecord): ChannelReceiptRecord {
        try {
            return f();
        } catch (e) {
            if (e instanceof StoreError && e.code === 'conflict') {
                this.o.logger.warn({ err: e.message }, 'channel receipt not recorded: another one took its place');
                throw new JobError('channel-busy', 'another receipt of this channel was recorded first; send the request again');
            }
            throw e;
        }
    }

    private async closeOnce(channel: Address, c: { clientKey: Buffer; sealedClose: Buffer }): Promise<ChannelCloseAnswerJson> {
        const { chain, store, tee } = this.o;
        const deployed = await chain.isDeployed(channel);
        const info = deployed ? await this.channelInfo(channel) : undefined;
        if (info && !info.provider.equals(this.o.provider)) throw new JobError('wrong-provider', 'this channel is with another provider');
        // A closed channel (or a repeated close) is answered with its final receipt, if it has one.
        const openId = info?.openId ?? store.latestOpening(channel)?.openId;
        if (openId === undefined) throw new JobError('channel-not-found', 'no channel at this address (never opened, or closed)');
        const keyed = store.channelReceiptByClientKey(channel, openId, c.clientKey);
        let command: Buffer | undefined;
        try {
            command = keyed ? open(tee.sharedSecret(c.clientKey), 'request', closeContext(channel), c.sealedClose) : undefined;
        } catch {
            command = undefined;
        }
        if (!command || !command.equals(closeCommand(channel, openId))) {
            throw new JobError('close-unauthorized', 'a close must be sealed under the key of a request served in this opening');
        }
        const latest = store.latestChannelReceipt(channel, openId)!;
        let final = latest;
        if (!latest.final) {
            if (!info || info.openId !== openId || (info.state !== CHANNEL_ACTIVE && info.state !== CHANNEL_CLOSING)) {
                throw new JobError('channel-not-found', 'this opening of the channel has ended');
            }
            const signed = this.sign({ channel, openId, seqno: latest.seqno + 1n, amount: latest.amount, requests: latest.requests, root: latest.root, final: true });
            const now = await chain.now();
            final = this.record(() => store.recordChannelReceipt({ channel, openId, receipt: signed.receipt, signature: signed.signature }, now));
            this.o.logger.info({ channel: channel.toString(), seqno: final.seqno.toString(), amount: final.amount.toString() }, 'final channel receipt signed');
        }
        let claimed = !deployed;
        if (deployed) {
            try {
                claimed = await this.claim(final, await chain.now(), await Channel.fromAddress(channel).getClaimFee(chain.provider(channel)));
            } catch (e) {
                // The client holds the final receipt and may claim it itself.
                this.o.logger.error({ channel: channel.toString(), err: e instanceof Error ? e.message : String(e) }, 'claim of the final receipt failed');
            }
        }
        return { channel: channel.toString(), openId: openId.toString(), receipt: signedChannelReceiptToJson({ receipt: final.receipt, signature: final.signature }), claimed };
    }

    /** Sends ClaimChannel with `r` (noted first); true when the chain then shows it claimed (or the channel closed by it). */
    private async claim(r: ChannelReceiptRecord, now: number, fee: bigint): Promise<boolean> {
        const { chain, store, wallet, logger } = this.o;
        store.noteClaimAttempt(r.channel, r.openId, r.seqno, now);
        const body = beginCell().store(storeClaimChannel(claimChannelMessage({ receipt: r.receipt, signature: r.signature }))).endCell();
        await chain.send(wallet, { to: r.channel, value: fee, body });
        if (!(await chain.isDeployed(r.channel))) {
            logger.info({ channel: r.channel.toString(), seqno: r.seqno.toString() }, r.final ? 'final receipt claimed: channel closed' : 'channel closed');
            return r.final;
        }
        const after = await this.channelInfo(r.channel).catch(() => undefined);
        const claimed = after !== undefined && after.openId === r.openId && after.seqno >= r.seqno;
        if (claimed) logger.info({ channel: r.channel.toString(), seqno: r.seqno.toString(), settled: after.settled.toString() }, 'channel receipt claimed');
        return claimed;
    }

    /**
     * One pass over the open channels: claims the latest receipt when its
     * unclaimed amount reaches the threshold, when it is final, when the
     * client asked to close, or when the channel serves no more (near its
     * expiry or closeBy). Reads the claim fee once per pass.
     */
    async claimDue(now: number, report: ChannelTickReport, step: (what: string, f: () => Promise<void>) => Promise<void>): Promise<void> {
        let fee: bigint | undefined;
        for (const opening of this.o.store.openChannels()) {
            await step(`claim ${opening.channel.toString()}`, () =>
                this.serial(opening.channel, async () => {
                    const latest = this.o.store.latestChannelReceipt(opening.channel, opening.openId);
                    if (!latest) return;
                    if (!(await this.o.chain.isDeployed(opening.channel))) return; // closed: ChannelEnded tells how
                    const info = await this.channelInfo(opening.channel);
                    if (info.openId !== opening.openId) {
                        this.o.store.markChannelEnded(opening.channel, opening.openId, 'reopened', now);
                        report.channelsEnded++;
                        return;
                    }
                    if (latest.seqno <= info.seqno || (info.state !== CHANNEL_ACTIVE && info.state !== CHANNEL_CLOSING) || now >= Number(info.closeBy)) return;
                    // A final receipt is refused while a dispute awaits its verdict: wait for it.
                    if (latest.final && info.disputePending) return;
                    const unclaimed = latest.amount - info.settled;
                    const servingOver = now + this.o.deadlineMarginSeconds >= Math.min(opening.expiresAt, Number(info.closeBy));
                    if (!(latest.final || info.state === CHANNEL_CLOSING || servingOver || unclaimed >= this.o.claimThreshold)) return;
                    if (opening.lastClaimSeqno === latest.seqno && opening.lastClaimAt !== null && now - opening.lastClaimAt < this.o.resendAfterSeconds) return;
                    fee ??= await Channel.fromAddress(opening.channel).getClaimFee(this.o.chain.provider(opening.channel));
                    report.claimsSent++;
                    if (await this.claim(latest, now, fee)) report.claimed++;
                }),
            );
        }
    }

    /**
     * A Provider transaction about channels: EngageChannel answered with
     * JobEngaged (an opening to serve), ChannelEnded (it closed),
     * SlashFromChannel (a dispute lost). Returns false for anything else.
     */
    observe(tx: Transaction, op: number, report: ChannelTickReport): boolean {
        const { store, logger } = this.o;
        const msg = tx.inMessage!;
        if (msg.info.type !== 'internal') return false;
        const from = msg.info.src;
        const body = msg.body.beginParse();
        if (op === ENGAGE_CHANNEL_OP) {
            const engage = loadEngageChannel(body);
            const engaged = [...tx.outMessages.values()].some((m) => {
                const s = m.body.beginParse();
                return s.remainingBits >= 32 && s.preloadUint(32) === JOB_ENGAGED_OP;
            });
            if (engaged && store.noteChannel({ channel: from, openId: engage.queryId, modelHash: engage.modelHash, expiresAt: Number(engage.expiresAt), seenAt: tx.now })) {
                report.channelsEngaged++;
                logger.info({ channel: from.toString(), openId: engage.queryId.toString() }, 'channel engaged');
            }
            return true;
        }
        if (op === CHANNEL_ENDED_OP) {
            const ended = loadChannelEnded(body);
            const outcome = ended.outcome === ESCROW_CLOSED_RELEASED ? 'released' : 'expired';
            report.channelsEnded += store.markChannelAddressEnded(from, outcome, tx.now);
            logger.info({ channel: from.toString(), outcome }, 'channel closed');
            return true;
        }
        if (op === SLASH_FROM_CHANNEL_OP) {
            logger.warn({ channel: from.toString() }, 'slashed: a dispute in this channel went to the client');
            return true;
        }
        return false;
    }

    /** Open and ended channel openings, for status. */
    counts(): Record<string, number> {
        return this.o.store.channelCounts();
    }
}

export const OPEN_CHANNEL_OP = 0x40000001;
export const ENGAGE_CHANNEL_OP = 0x20000050;
export const CHANNEL_ENDED_OP = 0x20000051;
export const SLASH_FROM_CHANNEL_OP = 0x20000052;
const JOB_ENGAGED_OP = 0x20000031;
