// Misbehaving providers for the demo and the end-to-end tests. The simulated
// TEE gives the host its keys, so a "compromised enclave" is just a runner
// assembled with one of these parts. Real enclaves would need their image
// changed, which the measurement and allowlist catch; these show what the
// contracts do when that line of defence is assumed broken.
import { Address } from '@ton/core';
import { InferenceRequest, InferenceResult, Model, ReferenceModel } from '../runner/models';
import { JobRecord, SignedJob } from '../runner/store';
import { RunnerStore } from '../runner/runner';
import { buildReceipt, receiptHash, ReceiptFields, SignedReceipt } from '../wrappers/receipt';
import { TeeBackend } from '../runner/tee';

/**
 * Claims to be the reference model but does not run it: a short canned
 * answer, billed as if the full answer had been produced.
 */
export class LazyModel implements Model {
    private readonly real = new ReferenceModel();
    readonly name = this.real.name;
    readonly modelHash = this.real.modelHash;

    async complete(request: InferenceRequest): Promise<InferenceResult> {
        const honest = await this.real.complete(request);
        return { ...honest, text: 'As an AI model I cannot answer that.' };
    }
}

/**
 * A store that forgets what it signed: a retried request is served afresh,
 * so the enclave signs a second, different receipt for the same job
 * (equivocation). Everything else goes to the real store.
 */
export function forgetfulStore(store: RunnerStore): RunnerStore {
    const latest = new Map<string, JobRecord>();
    return {
        ...bindAll(store),
        get: () => undefined,
        recordSigned: (job: SignedJob, now: number) => {
            // Keep the newest in memory for submission; the real store keeps the first.
            const { record } = store.recordSigned(job, now);
            const mine: JobRecord = { ...record, ...job };
            latest.set(`${job.escrow.toRawString()}/${job.engageId}`, mine);
            return { record: mine, inserted: true };
        },
        latestFor: (escrow: Address) => [...latest.values()].filter((r) => r.escrow.equals(escrow)).pop() ?? store.latestFor(escrow),
    };
}

function bindAll(store: RunnerStore): RunnerStore {
    return {
        recordSigned: store.recordSigned.bind(store),
        get: store.get.bind(store),
        latestFor: store.latestFor.bind(store),
        withStatus: store.withStatus.bind(store),
        releasableBy: store.releasableBy.bind(store),
        noteSubmitAttempt: store.noteSubmitAttempt.bind(store),
        markSubmitted: store.markSubmitted.bind(store),
        markReleased: store.markReleased.bind(store),
        markClosed: store.markClosed.bind(store),
        counts: store.counts.bind(store),
        getCursor: store.getCursor.bind(store),
        setCursor: store.setCursor.bind(store),
        noteEngaged: store.noteEngaged.bind(store),
        engagedAwaiting: store.engagedAwaiting.bind(store),
        forgetEngaged: store.forgetEngaged.bind(store),
    };
}

/**
 * A receipt the enclave signs for a model its provider is not attested for
 * (a cheaper model substituted for the one paid for, honestly labelled).
 * The escrow will not accept it, but it is a provable fault at the Provider.
 */
export function substitutedModelReceipt(tee: TeeBackend, fields: ReceiptFields, servedModelHash: bigint): SignedReceipt {
    const receipt = buildReceipt({ ...fields, modelHash: servedModelHash });
    return { receipt, signature: tee.sign(receiptHash(receipt)) };
}
