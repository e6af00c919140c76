// The Chrysalis client SDK: find a provider in the Registry, check its enclave
// before paying, pay through an escrow, send the encrypted request, and check
// what comes back — the enclave's signature, the response hash, the metering —
// and dispute or prove a fault when it does not hold.
import { createHash, KeyObject, randomBytes } from 'crypto';
import { Address, beginCell, Dictionary } from '@ton/core';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import {
    ALLOWLIST_MEASUREMENT,
    CompletionReceipt,
    ESCROW_DISPUTED,
    ESCROW_ENGAGED,
    ESCROW_OPENED,
    ESCROW_RECEIPTED,
    EscrowInfo,
    ProviderInfo,
    Registry,
    STATUS_ACTIVE,
    storeDispute,
    storeOpenEscrow,
    storeProveEquivocation,
    storeProveInvalidReceipt,
    storeRefund,
    storeSubmitReceipt,
    storeSubmitVerdict,
} from '../wrappers/Registry';
import { SignedVerdict, submitVerdictMessage } from '../wrappers/verdict';
import {
    parseReceipt,
    proveEquivocationMessage,
    proveInvalidReceiptMessage,
    receiptHash,
    ReceiptError,
    SignedReceipt,
    signedReceiptFromJson,
    submitReceiptMessage,
    verifyReceipt,
} from '../wrappers/receipt';
import { bufferToBigInt } from '../wrappers/ed25519';
import { ChainBackend, ChainWallet, SendReport } from '../runner/chain';
import { clientSharedSecret, open, requestKeyPair, seal } from '../runner/envelope';
import { EvidenceError, QuoteVerifier, verifyEvidence } from '../runner/evidence';
import { InferenceRequest, InferenceResult } from '../runner/models';
import {
    AttestationAnswerJson,
    base64,
    decimal,
    evidenceFromJson,
    isJobErrorCode,
    JobAnswerJson,
    jobContext,
    JobErrorCode,
    JobSubmissionJson,
    object,
    Prices,
    priceOf,
    ProtocolError,
    requestHashOf,
    responseHashOf,
    text,
} from '../runner/protocol';

/** Why the SDK stopped. `disputable` errors come with a receipt the client can dispute on-chain. */
export type ClientErrorCode =
    | 'provider-not-active'
    | 'attestation-invalid'
    | 'keys-mismatch'
    | 'measurement-not-allowed'
    | 'model-not-offered'
    | 'runner-unreachable'
    | 'runner-refused'
    | 'escrow-in-use'
    | 'escrow-not-engaged'
    | 'bad-receipt'
    | 'response-mismatch'
    | 'undecryptable-response'
    | 'metering-mismatch'
    | 'not-disputable'
    | 'send-failed';

/** A typed failure of the SDK. */
export class ClientError extends Error {
    constructor(
        readonly code: ClientErrorCode,
        message: string,
        /** Set when a job exists on-chain for this error (an escrow to dispute, refund or prove from). */
        readonly job?: JobTicket,
        /** With runner-refused: the runner's own code. */
        readonly runnerCode?: JobErrorCode,
    ) {
        super(message);
        this.name = 'ClientError';
    }
}

/** Dispute reasons the SDK sends (Dispute.reason; an off-chain taxonomy for arbiters). */
export const DISPUTE_REASONS = Object.freeze({
    unspecified: 0,
    responseMismatch: 1,
    undecryptableResponse: 2,
    meteringMismatch: 3,
    wrongOutput: 4,
});

/** A provider checked by `discover`: on-chain state, a fresh attestation, and its runner's offer. */
export interface ProviderHandle {
    owner: Address;
    provider: Address;
    runnerUrl: string;
    signingKey: Buffer;
    encryptionKey: Buffer;
    measurement: bigint;
    attestationValidUntil: number;
    models: { name: string; modelHash: bigint }[];
    prices: Prices;
    info: ProviderInfo;
}

/** One job: what the client needs to follow it up (dispute, refund, proofs, evidence for arbiters). */
export interface JobTicket {
    escrow: Address;
    provider: Address;
    nonce: bigint;
    engageId: bigint;
    requestHash: bigint;
    modelHash: bigint;
    maxAmount: bigint;
    deadline: number;
    /** The client's one-time X25519 key for this job; revealing it discloses this job only. */
    clientKey: { publicKey: Buffer; privateKey: KeyObject };
    sealedRequest: Buffer;
    /** What the runner answered, once it did. */
    answer?: JobAnswerJson;
}

/** A job whose answer checked out. */
export interface JobResult {
    ticket: JobTicket;
    result: InferenceResult;
    receipt: SignedReceipt;
    fields: CompletionReceipt;
}

export interface ClientOptions {
    chain: ChainBackend;
    /** Pays escrows and fees. */
    wallet: ChainWallet;
    registry: Address;
    /** Checks the platform's quote (SimulatedQuoteVerifier for the simulated TEE). */
    quoteVerifier: QuoteVerifier;
    /** Oldest evidence accepted, seconds. Default 300. */
    maxEvidenceAgeSeconds?: number;
    /** How long to wait for an escrow to be engaged. Default 60 s (sandbox: at once). */
    engageTimeoutMs?: number;
    /** fetch, for tests. Default the global fetch. */
    fetch?: typeof fetch;
}

/** The client side of Chrysalis. */
export class ChrysalisClient {
    private readonly fetchImpl: typeof fetch;

    constructor(private readonly o: ClientOptions) {
        this.fetchImpl = o.fetch ?? fetch;
    }

    /**
     * Finds `owner`'s Provider in the Registry and checks it before any TON moves:
     * Active and taking jobs; its runner's evidence for a fresh nonce verifies
     * (platform chain, report data binding the keys, freshness); the keys and
     * measurement are the ones attested on-chain; the measurement is still
     * allowlisted. Throws ClientError otherwise.
     */
    async discover(owner: Address, runnerUrl: string): Promise<ProviderHandle> {
        const { chain } = this.o;
        const registry = Registry.fromAddress(this.o.registry);
        const providerAddress = await registry.getProviderAddress(chain.provider(this.o.registry), owner);
        if (!(await chain.isDeployed(providerAddress))) throw new ClientError('provider-not-active', 'no provider registered for this owner');
        const p = Provider.fromAddress(providerAddress);
        const cp = chain.provider(providerAddress);
        const info = await p.getInfo(cp);
        if (info.status !== STATUS_ACTIVE || !(await p.getAcceptsJobs(cp))) {
            throw new ClientError('provider-not-active', `the provider does not take jobs (status ${info.status}, attestation valid until ${info.attestationValidUntil})`);
        }
        const nonce = randomBytes(32);
        const answer = await this.getJson<AttestationAnswerJson>(`${runnerUrl}/v1/attestation?nonce=${nonce.toString('hex')}`);
        const allowed = await registry.getIsAllowed(chain.provider(this.o.registry), ALLOWLIST_MEASUREMENT, info.enclave.measurement);
        let verified;
        try {
            const evidence = evidenceFromJson(answer.evidence);
            verified = verifyEvidence(evidence, {
                verifier: this.o.quoteVerifier,
                allowedMeasurements: (m) => allowed && m === info.enclave.measurement,
                maxAgeSeconds: this.o.maxEvidenceAgeSeconds ?? 300,
                now: await chain.now(),
                expectedNonce: nonce,
            });
        } catch (e) {
            if (e instanceof EvidenceError && e.problem === 'measurement-not-allowed') {
                throw new ClientError('measurement-not-allowed', allowed ? 'the runner runs another image than the one attested on-chain' : 'the attested image is no longer allowlisted');
            }
            throw new ClientError('attestation-invalid', `the runner's evidence does not verify: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (verified.signingKey !== info.enclave.signingKey || bufferToBigInt(verified.encryptionKey) !== info.enclave.encryptionKey) {
            throw new ClientError('keys-mismatch', 'the runner’s enclave keys are not the ones attested on-chain');
        }
        let models: { name: string; modelHash: bigint }[];
        let prices: Prices;
        try {
            models = answer.models.map((m, i) => ({ name: text(m.name, `models[${i}].name`), modelHash: BigInt('0x' + text(m.modelHash, `models[${i}].modelHash`)) }));
            prices = { perInputUnit: decimal(answer.prices.perInputUnit, 'prices.perInputUnit'), perOutputUnit: decimal(answer.prices.perOutputUnit, 'prices.perOutputUnit') };
        } catch (e) {
            throw new ClientError('attestation-invalid', `the runner's offer is malformed: ${e instanceof Error ? e.message : String(e)}`);
        }
        return {
            owner,
            provider: providerAddress,
            runnerUrl,
            signingKey: evidenceFromJson(answer.evidence).signingKey,
            encryptionKey: verified.encryptionKey,
            measurement: verified.measurement,
            attestationValidUntil: Number(info.attestationValidUntil),
            models,
            prices,
            info,
        };
    }

    /**
     * Pays for one request: seals it to the enclave, commits to it in a new
     * escrow of `maxAmount` (plus the open fee), and waits until the Provider
     * engaged the escrow with the attested key.
     */
    async open(handle: ProviderHandle, request: InferenceRequest, opts: { maxAmount: bigint; deadlineSeconds?: number; nonce?: bigint }): Promise<JobTicket> {
        const { chain, wallet } = this.o;
        const model = handle.models.find((m) => m.name === request.model);
        if (!model) throw new ClientError('model-not-offered', `the provider does not offer ${request.model}`);
        const nonce = opts.nonce ?? randomBytes(8).readBigUInt64BE();
        const escrow = await Escrow.fromInit(wallet.address, handle.provider, nonce);
        if (await chain.isDeployed(escrow.address)) throw new ClientError('escrow-in-use', `escrow nonce ${nonce} is in use; pick another`);
        const clientKey = requestKeyPair();
        const secret = clientSharedSecret(clientKey.privateKey, handle.encryptionKey);
        const sealedRequest = seal(secret, 'request', jobContext(escrow.address), Buffer.from(JSON.stringify(request)));
        const requestHash = requestHashOf(clientKey.publicKey, sealedRequest);
        const deadline = (await chain.now()) + (opts.deadlineSeconds ?? 3600);
        const openFee = await Provider.fromAddress(handle.provider).getEscrowOpenFee(chain.provider(handle.provider));
        const body = beginCell()
            .store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash, modelHash: model.modelHash, maxAmount: opts.maxAmount, deadline: BigInt(deadline) }))
            .endCell();
        await this.send({ to: escrow.address, value: opts.maxAmount + openFee, body, init: escrow.init! }, 'OpenEscrow');
        const info = await this.waitEngaged(escrow.address);
        if (info.engagement === null || info.engagement.enclaveKey !== bufferToBigInt(handle.signingKey)) {
            throw new ClientError('keys-mismatch', 'the escrow was engaged under another enclave key than the one checked');
        }
        return {
            escrow: escrow.address,
            provider: handle.provider,
            nonce,
            engageId: info.engageId,
            requestHash,
            modelHash: model.modelHash,
            maxAmount: opts.maxAmount,
            deadline,
            clientKey,
            sealedRequest,
        };
    }

    /**
     * Sends the sealed request to the runner and checks the answer: the
     * receipt is signed by the engaged enclave key for this escrow, request,
     * model and opening; its responseHash is the hash of what arrived; the
     * response decrypts; the metered units and amount are what the receipt
     * says at the advertised prices. A failure after a valid signature is
     * disputable (ClientError with `job`).
     */
    async sendRequest(handle: ProviderHandle, ticket: JobTicket): Promise<JobResult> {
        const submission: JobSubmissionJson = {
            escrow: ticket.escrow.toString(),
            clientKey: ticket.clientKey.publicKey.toString('hex'),
            sealedRequest: ticket.sealedRequest.toString('base64'),
        };
        ticket.answer = await this.postJson<JobAnswerJson>(`${handle.runnerUrl}/v1/jobs`, submission, ticket);
        return this.check(handle, ticket, ticket.answer);
    }

    /** Opens an escrow, sends the request and checks the answer (open + sendRequest). */
    async request(handle: ProviderHandle, request: InferenceRequest, opts: { maxAmount: bigint; deadlineSeconds?: number; nonce?: bigint }): Promise<JobResult> {
        return this.sendRequest(handle, await this.open(handle, request, opts));
    }

    /** Checks an answer against the ticket (see sendRequest). */
    check(handle: ProviderHandle, ticket: JobTicket, answer: JobAnswerJson): JobResult {
        let signed: SignedReceipt;
        let fields: CompletionReceipt;
        let sealedResponse: Buffer;
        try {
            signed = signedReceiptFromJson(answer.receipt);
            sealedResponse = base64(answer.sealedResponse, 'sealedResponse');
            fields = verifyReceipt(signed, {
                enclaveKey: bufferToBigInt(handle.signingKey),
                escrow: ticket.escrow,
                engageId: ticket.engageId,
                requestHash: ticket.requestHash,
                modelHash: ticket.modelHash,
                maxAmount: ticket.maxAmount,
                deadline: ticket.deadline,
            });
        } catch (e) {
            if (e instanceof ReceiptError || e instanceof ProtocolError) throw new ClientError('bad-receipt', `the receipt does not hold: ${e.message}`, ticket);
            throw e;
        }
        if (fields.responseHash !== responseHashOf(sealedResponse)) {
            throw new ClientError('response-mismatch', 'the response received is not the one the receipt signs', ticket);
        }
        let result: InferenceResult;
        try {
            const secret = clientSharedSecret(ticket.clientKey.privateKey, handle.encryptionKey);
            result = JSON.parse(open(secret, 'response', jobContext(ticket.escrow), sealedResponse).toString('utf8')) as InferenceResult;
        } catch {
            throw new ClientError('undecryptable-response', 'the signed response does not decrypt to a result', ticket);
        }
        if (
            BigInt(result.inputUnits) !== fields.inputUnits ||
            BigInt(result.outputUnits) !== fields.outputUnits ||
            fields.amount > priceOf(handle.prices, fields.inputUnits, fields.outputUnits)
        ) {
            throw new ClientError('metering-mismatch', 'the receipt bills other units or more than the advertised prices', ticket);
        }
        return { ticket, result, receipt: signed, fields };
    }

    /**
     * Disputes a receipted job within its dispute window: submits the
     * runner's receipt first if it is not on-chain yet, then sends Dispute
     * with the bond. The evidence for the arbiters is `disputeEvidence(ticket)`;
     * its hash goes on-chain.
     */
    async dispute(ticket: JobTicket, reason: number): Promise<{ evidence: DisputeEvidence; evidenceHash: bigint }> {
        const { chain } = this.o;
        const escrow = Escrow.fromAddress(ticket.escrow);
        let info = await this.escrowInfo(ticket.escrow);
        if (info.engageId !== ticket.engageId) throw new ClientError('not-disputable', 'the escrow has been reopened since this job');
        if (info.state === ESCROW_ENGAGED && ticket.answer) {
            const signed = signedReceiptFromJson(ticket.answer.receipt);
            const fee = await escrow.getTriggerFee(chain.provider(ticket.escrow));
            await this.send({ to: ticket.escrow, value: fee, body: beginCell().store(storeSubmitReceipt(submitReceiptMessage(signed))).endCell() }, 'SubmitReceipt');
            info = await this.escrowInfo(ticket.escrow);
        }
        if (info.state !== ESCROW_RECEIPTED) throw new ClientError('not-disputable', `the escrow is not receipted (state ${info.state})`);
        const evidence = disputeEvidence(ticket);
        const evidenceHash = evidenceHashOf(evidence);
        const value = info.engagement!.disputeBond + (await escrow.getDisputeFee(chain.provider(ticket.escrow)));
        await this.send(
            { to: ticket.escrow, value, body: beginCell().store(storeDispute({ $$type: 'Dispute', queryId: 0n, reason: BigInt(reason), evidenceHash })).endCell() },
            'Dispute',
        );
        const after = await this.escrowInfo(ticket.escrow);
        if (after.state !== ESCROW_DISPUTED) throw new ClientError('send-failed', 'the Dispute was not accepted');
        return { evidence, evidenceHash };
    }

    /** Refunds an escrow with no receipt past its deadline, or a dispute past its verdict deadline. */
    async refund(escrow: Address): Promise<SendReport> {
        const body = beginCell().store(storeRefund({ $$type: 'Refund', queryId: 0n })).endCell();
        const fee = await Escrow.fromAddress(escrow).getTriggerFee(this.o.chain.provider(escrow));
        return this.send({ to: escrow, value: fee, body }, 'Refund');
    }

    /** Proves two different receipts signed for one job (a runner that equivocated): slashes the provider, pays the prover. */
    async proveEquivocation(provider: Address, first: SignedReceipt, second: SignedReceipt): Promise<SendReport> {
        const body = beginCell().store(storeProveEquivocation(proveEquivocationMessage(first, second))).endCell();
        const fee = await Provider.fromAddress(provider).getProofFee(this.o.chain.provider(provider));
        return this.send({ to: provider, value: fee, body }, 'ProveEquivocation');
    }

    /** Proves a receipt the provider's enclave should never have signed (a model it does not serve, or after its attestation lapsed). */
    async proveInvalidReceipt(provider: Address, signed: SignedReceipt): Promise<SendReport> {
        const body = beginCell().store(storeProveInvalidReceipt(proveInvalidReceiptMessage(signed))).endCell();
        const fee = await Provider.fromAddress(provider).getProofFee(this.o.chain.provider(provider));
        return this.send({ to: provider, value: fee, body }, 'ProveInvalidReceipt');
    }

    /**
     * Submits the arbiters' signed verdict for a disputed escrow (anyone may),
     * with the arbiter set the escrow was engaged with. Attaches the fee for
     * the verdict's outcome: a ClientWins verdict also pays for the slash.
     */
    async submitVerdict(escrow: Address, signed: SignedVerdict, arbiters: Dictionary<number, bigint>): Promise<SendReport> {
        const body = beginCell().store(storeSubmitVerdict(submitVerdictMessage(signed, arbiters))).endCell();
        const fee = await Escrow.fromAddress(escrow).getVerdictFee(this.o.chain.provider(escrow));
        return this.send({ to: escrow, value: fee, body }, 'SubmitVerdict');
    }

    /** The escrow's state, as its getter reports it. */
    async escrowInfo(escrow: Address): Promise<EscrowInfo> {
        return Escrow.fromAddress(escrow).getInfo(this.o.chain.provider(escrow));
    }

    private async waitEngaged(escrow: Address): Promise<EscrowInfo> {
        const { chain } = this.o;
        const until = Date.now() + (this.o.engageTimeoutMs ?? 60_000);
        for (;;) {
            if (!(await chain.isDeployed(escrow))) throw new ClientError('escrow-not-engaged', 'the escrow closed: the provider refused the job (the deposit came back)');
            const info = await this.escrowInfo(escrow);
            if (info.state === ESCROW_ENGAGED) return info;
            if (info.state !== ESCROW_OPENED || Date.now() > until) throw new ClientError('escrow-not-engaged', `the escrow was not engaged (state ${info.state})`);
            await new Promise((r) => setTimeout(r, 1000));
        }
    }

    private async send(message: Parameters<ChainBackend['send']>[1], what: string): Promise<SendReport> {
        const report = await this.o.chain.send(this.o.wallet, message);
        const failed = report.transactions?.find((tx) => tx.description.type === 'generic' && (tx.description.aborted || (tx.description.computePhase.type === 'vm' && !tx.description.computePhase.success)));
        if (failed && failed.description.type === 'generic' && failed.description.computePhase.type === 'vm') {
            throw new ClientError('send-failed', `${what} failed on-chain with exit code ${failed.description.computePhase.exitCode}`);
        }
        return report;
    }

    private async getJson<T>(url: string): Promise<T> {
        return this.http<T>(url, { method: 'GET' });
    }

    private async postJson<T>(url: string, body: unknown, job?: JobTicket): Promise<T> {
        return this.http<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, job);
    }

    private async http<T>(url: string, init: RequestInit, job?: JobTicket): Promise<T> {
        let res: Response;
        try {
            res = await this.fetchImpl(url, init);
        } catch (e) {
            throw new ClientError('runner-unreachable', `cannot reach the runner at ${url}: ${e instanceof Error ? e.message : String(e)}`, job);
        }
        let body: unknown;
        try {
            body = await res.json();
        } catch {
            throw new ClientError('runner-refused', `the runner answered ${res.status} without JSON`, job);
        }
        if (!res.ok) {
            const error = object(object(body, 'error body').error, 'error');
            const code = isJobErrorCode(error.code) ? error.code : undefined;
            throw new ClientError('runner-refused', `the runner refused (${res.status} ${String(error.code)}): ${String(error.message)}`, job, code);
        }
        return body as T;
    }
}

/** What a client gives the arbiters: enough to decrypt this one job and check the answer against the receipt. */
export interface DisputeEvidence {
    escrow: string;
    engageId: string;
    /** The client's one-time X25519 private key (PKCS#8 DER, hex): it opens this job's envelopes only. */
    clientPrivateKey: string;
    clientKey: string;
    sealedRequest: string;
    answer: JobAnswerJson | null;
}

/** The evidence of a ticket, as `dispute` hashes it. */
export function disputeEvidence(ticket: JobTicket): DisputeEvidence {
    return {
        escrow: ticket.escrow.toString(),
        engageId: ticket.engageId.toString(),
        clientPrivateKey: ticket.clientKey.privateKey.export({ format: 'der', type: 'pkcs8' }).toString('hex'),
        clientKey: ticket.clientKey.publicKey.toString('hex'),
        sealedRequest: ticket.sealedRequest.toString('base64'),
        answer: ticket.answer ?? null,
    };
}

/** sha256 of the evidence's canonical JSON (keys in the order above): Dispute.evidenceHash. */
export function evidenceHashOf(evidence: DisputeEvidence): bigint {
    return bufferToBigInt(createHash('sha256').update(JSON.stringify(evidence)).digest());
}

/** The receipt in a runner's answer, parsed (for proofs). */
export function receiptOfAnswer(answer: JobAnswerJson): { signed: SignedReceipt; fields: CompletionReceipt; hash: Buffer } {
    const signed = signedReceiptFromJson(answer.receipt);
    return { signed, fields: parseReceipt(signed.receipt), hash: receiptHash(signed.receipt) };
}
