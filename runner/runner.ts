// The job loop of a provider's runner. It serves a client's encrypted request
// for an engaged escrow, signs one completion receipt per job and keeps it
// durably before anyone sees it, submits the receipt on-chain and releases
// the escrow after its dispute window. It watches its Provider contract for
// escrows being engaged and closed.
//
// Never-two-receipts rule: a receipt is signed in memory, then recorded in the
// JobStore, which keeps the first receipt ever recorded for (escrow,
// engageId). Only the stored receipt is ever answered or submitted, so a crash
// at any moment cannot make the enclave's key sign two receipts that both
// leave the process (which the Provider would slash as equivocation).
import { Address, beginCell, Transaction } from '@ton/core';
import type { Logger } from 'pino';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import {
    ESCROW_CLOSED_CANCELLED,
    ESCROW_CLOSED_CLIENT_WON,
    ESCROW_CLOSED_EXPIRED,
    ESCROW_CLOSED_REFUSED,
    ESCROW_CLOSED_RELEASED,
    ESCROW_CLOSED_UNRESOLVED,
    ESCROW_DISPUTED,
    ESCROW_ENGAGED,
    ESCROW_RECEIPTED,
    EscrowInfo,
    loadEngageJob,
    loadJobEnded,
    storeRelease,
    storeSubmitReceipt,
} from '../wrappers/Registry';
import { buildReceipt, receiptHash, signedReceiptToJson, submitReceiptMessage } from '../wrappers/receipt';
import { bufferToBigInt } from '../wrappers/ed25519';
import { ChainBackend, ChainWallet } from './chain';
import { seal } from './envelope';
import { ModelSet } from './models';
import { openRequest, runMetered } from './requests';
import { ChannelAnswerJson, ChannelCloseAnswerJson, ChannelStateJson, JobError, JobAnswerJson, jobContext, Prices, requestHashOf, responseHashOf } from './protocol';
import { JobRecord, JobStore } from './store';
import { TeeBackend } from './tee';
import { ChannelService, ChannelStore, ChannelTickReport, DEFAULT_CHANNEL_CLAIM_THRESHOLD } from './channels';

/** What an escrow's closing outcome (EscrowClosed / JobEnded) is called in logs and the store. */
export const OUTCOME_NAMES: Readonly<Record<number, string>> = Object.freeze({
    [Number(ESCROW_CLOSED_RELEASED)]: 'released',
    [Number(ESCROW_CLOSED_EXPIRED)]: 'expired',
    [Number(ESCROW_CLOSED_REFUSED)]: 'refused',
    [Number(ESCROW_CLOSED_CANCELLED)]: 'cancelled',
    [Number(ESCROW_CLOSED_CLIENT_WON)]: 'client-won',
    [Number(ESCROW_CLOSED_UNRESOLVED)]: 'unresolved',
});

/** What the job loop needs of its store (JobStore; a test adversary may wrap it). */
export type RunnerStore = Pick<
    JobStore,
    | 'recordSigned'
    | 'get'
    | 'latestFor'
    | 'withStatus'
    | 'releasableBy'
    | 'noteSubmitAttempt'
    | 'markSubmitted'
    | 'markReleased'
    | 'markClosed'
    | 'counts'
    | 'getCursor'
    | 'setCursor'
    | 'noteEngaged'
    | 'engagedAwaiting'
    | 'forgetEngaged'
>;

export interface RunnerOptions {
    chain: ChainBackend;
    /** Pays for SubmitReceipt and Release (the provider's hot wallet). */
    wallet: ChainWallet;
    tee: TeeBackend;
    store: RunnerStore;
    models: ModelSet;
    /** This runner's Provider contract. */
    provider: Address;
    prices: Prices;
    logger: Logger;
    /** A job is refused when less than this is left before its deadline: the receipt must still land in time. Default 60 s. */
    deadlineMarginSeconds?: number;
    /** A SubmitReceipt or Release not seen on-chain after this long is sent again. Default 120 s. */
    resendAfterSeconds?: number;
    /** Largest sealed request accepted, bytes. Default 256 KiB. */
    maxRequestBytes?: number;
    /** Test hook: called after the model ran and the receipt was signed, before it is recorded. Throwing simulates a crash there. */
    beforeRecord?: (escrow: Address) => void;
    /**
     * The store of channel receipts: the real JobStore, whose compare-and-swap
     * is the no-equivocation guarantee. Defaults to `store` when that is a
     * JobStore; without one, channel requests are refused.
     */
    channelStore?: ChannelStore;
    /** Nanoton unclaimed in a channel at which the loop claims its latest receipt. Default 1 TON. */
    channelClaimThreshold?: bigint;
    /** Test hooks: a channel receipt signed and not yet recorded / recorded and not yet answered. Throwing simulates a crash there. */
    beforeChannelRecord?: (channel: Address, seqno: bigint) => void;
    afterChannelRecord?: (channel: Address, seqno: bigint) => void;
}

/** What one pass of the loop did (channels: see ChannelTickReport). */
export interface TickReport extends ChannelTickReport {
    /** Escrows newly seen engaged. */
    engaged: number;
    /** Receipts seen accepted on-chain. */
    submitted: number;
    /** Release messages sent. */
    releasesSent: number;
    /** Escrows seen closed by a release (JobEnded), and by any other outcome. */
    released: number;
    closed: number;
    errors: string[];
}

/** A job's answer: the stored record, as the HTTP API returns it. */
export function answerOf(record: JobRecord): JobAnswerJson {
    return {
        escrow: record.escrow.toString(),
        engageId: record.engageId.toString(),
        sealedResponse: record.sealedResponse.toString('base64'),
        receipt: signedReceiptToJson({ receipt: record.receipt, signature: record.signature }),
        inputUnits: record.inputUnits.toString(),
        outputUnits: record.outputUnits.toString(),
        amount: record.amount.toString(),
        finishedAt: record.finishedAt,
    };
}

export class EnclaveRunner {
    private readonly deadlineMargin: number;
    private readonly resendAfter: number;
    readonly maxRequestBytes: number;
    /** One job at a time per escrow: a retried request waits for the first and gets its answer. */
    private readonly inFlight = new Map<string, Promise<JobAnswerJson>>();
    private readonly releaseSentAt = new Map<string, number>();
    /** Payment channels; undefined when no channel store was given. */
    readonly channels?: ChannelService;

    constructor(private readonly o: RunnerOptions) {
        this.deadlineMargin = o.deadlineMarginSeconds ?? 60;
        this.resendAfter = o.resendAfterSeconds ?? 120;
        this.maxRequestBytes = o.maxRequestBytes ?? 256 * 1024;
        const channelStore = o.channelStore ?? (o.store instanceof JobStore ? o.store : undefined);
        if (channelStore) {
            const threshold = o.channelClaimThreshold ?? DEFAULT_CHANNEL_CLAIM_THRESHOLD;
            if (threshold < 0n) throw new Error('channelClaimThreshold cannot be negative');
            this.channels = new ChannelService({
                chain: o.chain,
                wallet: o.wallet,
                tee: o.tee,
                store: channelStore,
                models: o.models,
                provider: o.provider,
                prices: o.prices,
                logger: o.logger,
                deadlineMarginSeconds: this.deadlineMargin,
                resendAfterSeconds: this.resendAfter,
                maxRequestBytes: this.maxRequestBytes,
                claimThreshold: threshold,
                beforeRecord: o.beforeChannelRecord,
                afterRecord: o.afterChannelRecord,
            });
        }
    }

    get provider(): Address {
        return this.o.provider;
    }

    get models(): ModelSet {
        return this.o.models;
    }

    get prices(): Prices {
        return this.o.prices;
    }

    get tee(): TeeBackend {
        return this.o.tee;
    }

    /** Serves one job; resolves with the (stored) answer or rejects with a JobError. */
    async serve(submission: { escrow: Address; clientKey: Buffer; sealedRequest: Buffer }): Promise<JobAnswerJson> {
        const key = submission.escrow.toRawString();
        const running = this.inFlight.get(key);
        if (running) {
            await running.catch(() => undefined);
            return this.serve(submission);
        }
        const job = this.serveOnce(submission);
        this.inFlight.set(key, job);
        try {
            return await job;
        } finally {
            this.inFlight.delete(key);
        }
    }

    /** The stored answer for the escrow's latest job (a client that lost the first answer asks again). */
    answerFor(escrow: Address): JobAnswerJson {
        const record = this.o.store.latestFor(escrow);
        if (!record) throw new JobError('not-found', 'no job served for this escrow');
        return answerOf(record);
    }

    /** Serves one request in a payment channel (see ChannelService.serve). */
    serveChannel(channel: Address, s: { clientKey: Buffer; sealedRequest: Buffer }): Promise<ChannelAnswerJson> {
        return this.channelService().serve(channel, s);
    }

    /** The channel's latest answer and final receipt (see ChannelService.state). */
    channelState(channel: Address): ChannelStateJson {
        return this.channelService().state(channel);
    }

    /** The client's cooperative close (see ChannelService.close). */
    closeChannel(channel: Address, c: { clientKey: Buffer; sealedClose: Buffer }): Promise<ChannelCloseAnswerJson> {
        return this.channelService().close(channel, c);
    }

    private channelService(): ChannelService {
        if (!this.channels) throw new JobError('not-found', 'this runner serves no payment channels');
        return this.channels;
    }

    private async serveOnce(s: { escrow: Address; clientKey: Buffer; sealedRequest: Buffer }): Promise<JobAnswerJson> {
        const { chain, store, tee, models, logger } = this.o;
        const log = logger.child({ escrow: s.escrow.toString() });
        if (s.sealedRequest.length > this.maxRequestBytes) throw new JobError('too-large', `the sealed request is over ${this.maxRequestBytes} bytes`);
        if (!(await chain.isDeployed(s.escrow))) throw new JobError('escrow-not-found', 'no escrow at this address');
        const info = await this.escrowInfo(s.escrow);
        if (!info.provider.equals(this.o.provider)) throw new JobError('wrong-provider', 'this escrow is for another provider');
        const requestHash = requestHashOf(s.clientKey, s.sealedRequest);

        // A retry of a job already answered gets the same answer: nothing new is signed.
        const stored = store.get(s.escrow, info.engageId);
        if (stored) {
            if (stored.requestHash !== requestHash) throw new JobError('request-mismatch', 'this escrow was served for another request');
            log.info({ engageId: info.engageId.toString() }, 'job answered again from the store');
            return answerOf(stored);
        }

        if (info.state !== ESCROW_ENGAGED) throw new JobError('not-engaged', `the escrow is not engaged (state ${info.state})`);
        if (info.engagement === null || bufferToBigInt(tee.signingKey) !== info.engagement.enclaveKey) {
            throw new JobError('wrong-enclave-key', 'the escrow was engaged under another enclave key');
        }
        if (requestHash !== info.requestHash) throw new JobError('request-mismatch', 'the request does not match the escrow’s requestHash');
        const now = await chain.now();
        if (now + this.deadlineMargin > Number(info.deadline)) throw new JobError('expired', 'too close to (or past) the escrow’s deadline');
        const model = models.byHash(info.modelHash);
        if (!model) throw new JobError('model-not-served', 'this runner does not serve the escrow’s model');

        const context = jobContext(s.escrow);
        const { secret, request } = openRequest(tee, context, s, model.name, 'escrow');

        // Cap the output so the price stays within maxAmount, at the worst case of the input's own count.
        const { prices } = this.o;
        const { result, inputUnits, outputUnits, amount } = await runMetered(
            model,
            request,
            prices,
            info.maxAmount,
            () => new JobError('escrow-too-small', `maxAmount ${info.maxAmount} does not pay for this input and one output unit`),
            log,
        );

        const sealedResponse = seal(secret, 'response', context, Buffer.from(JSON.stringify(result)));
        const finishedAt = Math.min(await chain.now(), Number(info.deadline));
        const receipt = buildReceipt({
            escrow: s.escrow,
            engageId: info.engageId,
            requestHash,
            responseHash: responseHashOf(sealedResponse),
            modelHash: info.modelHash,
            inputUnits,
            outputUnits,
            amount,
            finishedAt,
        });
        const signature = tee.sign(receiptHash(receipt));
        this.o.beforeRecord?.(s.escrow);
        const { record, inserted } = store.recordSigned(
            {
                escrow: s.escrow,
                engageId: info.engageId,
                requestHash,
                modelHash: info.modelHash,
                clientKey: s.clientKey,
                sealedResponse,
                receipt,
                signature,
                amount,
                inputUnits,
                outputUnits,
                finishedAt,
            },
            now,
        );
        store.forgetEngaged(s.escrow, info.engageId);
        log.info({ engageId: info.engageId.toString(), inputUnits: result.inputUnits, outputUnits: result.outputUnits, amount: amount.toString(), inserted }, 'job served');
        return answerOf(record);
    }

    private async escrowInfo(escrow: Address): Promise<EscrowInfo> {
        return Escrow.fromAddress(escrow).getInfo(this.o.chain.provider(escrow));
    }

    /** One pass: learn engagements and closures, submit signed receipts, release what is due. */
    async tick(): Promise<TickReport> {
        const report: TickReport = { engaged: 0, submitted: 0, releasesSent: 0, released: 0, closed: 0, errors: [], channelsEngaged: 0, claimsSent: 0, claimed: 0, channelsEnded: 0 };
        const step = async (what: string, f: () => Promise<void>) => {
            try {
                await f();
            } catch (e) {
                const message = `${what}: ${e instanceof Error ? e.message : String(e)}`;
                report.errors.push(message);
                this.o.logger.error({ err: message }, 'runner step failed');
            }
        };
        await step('watch', () => this.watch(report));
        // One clock reading and one fee lookup per pass: on a real chain each is a request.
        const now = await this.o.chain.now();
        const fees = new FeeCache();
        for (const job of this.o.store.withStatus('signed')) await step(`submit ${job.escrow.toString()}`, () => this.submit(job, now, fees, report));
        for (const job of this.o.store.releasableBy(now)) await step(`release ${job.escrow.toString()}`, () => this.release(job, now, fees, report));
        if (this.channels) await this.channels.claimDue(now, report, step);
        return report;
    }

    /** Reads the Provider's new transactions: EngageJob accepted (an escrow to serve), JobEnded (an escrow closed). */
    private async watch(report: TickReport): Promise<void> {
        const { chain, store, logger } = this.o;
        const cursor = store.getCursor('provider') ?? 0n;
        let last = cursor;
        for (;;) {
            const txs = await chain.transactionsSince(this.o.provider, last, 100);
            if (txs.length === 0) break;
            for (const tx of txs) {
                this.observe(tx, report);
                last = tx.lt;
            }
            store.setCursor('provider', last);
            if (txs.length < 100) break;
        }
        if (last !== cursor) logger.debug({ lt: last.toString() }, 'provider transactions read');
    }

    private observe(tx: Transaction, report: TickReport): void {
        const { store, logger } = this.o;
        const msg = tx.inMessage;
        if (!msg || msg.info.type !== 'internal' || tx.description.type !== 'generic') return;
        const compute = tx.description.computePhase;
        if (compute.type !== 'vm' || !compute.success || tx.description.aborted) return;
        const from = msg.info.src;
        const body = msg.body.beginParse();
        if (body.remainingBits < 32) return;
        const op = body.preloadUint(32);
        if (this.channels?.observe(tx, op, report)) return;
        if (op === ENGAGE_JOB_OP) {
            const engage = loadEngageJob(body);
            // The Provider answered JobEngaged (not JobRefused) when it took the job.
            const engaged = [...tx.outMessages.values()].some((m) => m.body.beginParse().remainingBits >= 32 && m.body.beginParse().preloadUint(32) === JOB_ENGAGED_OP);
            if (engaged && store.noteEngaged({ escrow: from, engageId: engage.queryId, seenAt: tx.now })) {
                report.engaged++;
                logger.info({ escrow: from.toString(), engageId: engage.queryId.toString() }, 'escrow engaged');
            }
        } else if (op === JOB_ENDED_OP || op === SLASH_PROVIDER_OP) {
            // The escrow closed: JobEnded says how; SlashProvider is a verdict the client won.
            // Both carry the closing message's queryId, not the engageId: an escrow
            // address holds one opening at a time, so its latest job is the one.
            const ended = op === JOB_ENDED_OP ? loadJobEnded(body) : { outcome: ESCROW_CLOSED_CLIENT_WON };
            const outcome = OUTCOME_NAMES[Number(ended.outcome)] ?? `outcome-${ended.outcome}`;
            for (const e of store.engagedAwaiting()) if (e.escrow.equals(from)) store.forgetEngaged(e.escrow, e.engageId);
            const job = store.latestFor(from);
            if (job && (job.status === 'signed' || job.status === 'submitted')) {
                if (ended.outcome === ESCROW_CLOSED_RELEASED) {
                    if (job.status === 'signed') store.markSubmitted(from, job.engageId, tx.now, tx.now);
                    store.markReleased(from, job.engageId, tx.now);
                    report.released++;
                } else {
                    store.markClosed(from, job.engageId, outcome, tx.now);
                    report.closed++;
                }
            }
            logger.info({ escrow: from.toString(), outcome }, 'escrow closed');
        }
    }

    /** Submits a signed receipt once; a send not yet seen on-chain is repeated only after resendAfter. */
    private async submit(job: JobRecord, now: number, fees: FeeCache, report: TickReport): Promise<void> {
        const { chain, store, wallet, logger } = this.o;
        if (!(await chain.isDeployed(job.escrow))) return; // closed: JobEnded tells how
        const info = await this.escrowInfo(job.escrow);
        if (info.engageId !== job.engageId) return;
        if (info.state === ESCROW_RECEIPTED || info.state === ESCROW_DISPUTED) {
            store.markSubmitted(job.escrow, job.engageId, Number(info.releaseAt), now);
            report.submitted++;
            return;
        }
        if (info.state !== ESCROW_ENGAGED) return;
        if (job.lastSubmitAt !== null && now - job.lastSubmitAt < this.resendAfter) return;
        if (now > Number(info.deadline)) {
            logger.error({ escrow: job.escrow.toString() }, 'the deadline passed before the receipt landed');
            return;
        }
        store.noteSubmitAttempt(job.escrow, job.engageId, now);
        const fee = await fees.triggerFee(chain, job.escrow);
        const body = beginCell().store(storeSubmitReceipt(submitReceiptMessage({ receipt: job.receipt, signature: job.signature }))).endCell();
        await chain.send(wallet, { to: job.escrow, value: fee, body });
        const after = await this.escrowInfo(job.escrow).catch(() => undefined);
        if (after && after.engageId === job.engageId && after.state === ESCROW_RECEIPTED) {
            store.markSubmitted(job.escrow, job.engageId, Number(after.releaseAt), now);
            report.submitted++;
            logger.info({ escrow: job.escrow.toString(), releaseAt: Number(after.releaseAt) }, 'receipt submitted');
        }
    }

    /** Sends Release once the dispute window has passed; a disputed escrow waits for its verdict. */
    private async release(job: JobRecord, now: number, fees: FeeCache, report: TickReport): Promise<void> {
        const { chain, wallet, logger } = this.o;
        if (!(await chain.isDeployed(job.escrow))) return;
        const info = await this.escrowInfo(job.escrow);
        if (info.engageId !== job.engageId || info.state !== ESCROW_RECEIPTED || now < Number(info.releaseAt)) return;
        const key = `${job.escrow.toRawString()}/${job.engageId}`;
        const sent = this.releaseSentAt.get(key);
        if (sent !== undefined && now - sent < this.resendAfter) return;
        this.releaseSentAt.set(key, now);
        const fee = await fees.triggerFee(chain, job.escrow);
        await chain.send(wallet, { to: job.escrow, value: fee, body: beginCell().store(storeRelease({ $$type: 'Release', queryId: 0n })).endCell() });
        logger.info({ escrow: job.escrow.toString() }, 'release sent');
        report.releasesSent++;
    }

    /** For `status`: the Provider's on-chain view and the store's counts. */
    async status(): Promise<{
        provider: string;
        onChain: { status: bigint; stake: bigint; acceptsJobs: boolean; openJobs: bigint; completedJobs: bigint };
        jobs: Record<string, number>;
        channels: Record<string, number>;
    }> {
        const p = Provider.fromAddress(this.o.provider);
        const cp = this.o.chain.provider(this.o.provider);
        const info = await p.getInfo(cp);
        return {
            provider: this.o.provider.toString(),
            onChain: { status: info.status, stake: info.stake, acceptsJobs: await p.getAcceptsJobs(cp), openJobs: info.openJobs, completedJobs: info.completedJobs },
            jobs: this.o.store.counts(),
            channels: this.channels?.counts() ?? {},
        };
    }
}

/**
 * An escrow's trigger fee depends only on the network config, so one pass
 * reads it once (from the first escrow it touches) instead of once per job.
 */
class FeeCache {
    private trigger?: bigint;

    async triggerFee(chain: ChainBackend, escrow: Address): Promise<bigint> {
        this.trigger ??= await Escrow.fromAddress(escrow).getTriggerFee(chain.provider(escrow));
        return this.trigger;
    }
}

const ENGAGE_JOB_OP = 0x20000030;
const JOB_ENGAGED_OP = 0x20000031;
const JOB_ENDED_OP = 0x20000033;
const SLASH_PROVIDER_OP = 0x20000034;
