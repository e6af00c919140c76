// The wire protocol between a client (sdk/) and a provider's runner: how a
// request is bound to its escrow, the JSON bodies of the runner's HTTP API,
// and its error codes. Both sides import this one module.
//
//   context       = "chrysalis-job-v1" ‖ escrow workchain (int8) ‖ escrow hash (32)
//   sealedRequest = seal(X25519(client, enclave), 'request', context, JSON(InferenceRequest))
//   requestHash   = sha256("chrysalis-request-v1" ‖ clientKey(32) ‖ sealedRequest)   → OpenEscrow.requestHash
//   sealedResponse= seal(same secret, 'response', context, JSON(InferenceResult))
//   responseHash  = sha256(sealedResponse)                                           → CompletionReceipt.responseHash
//
// The client commits to its request on-chain before the provider sees it, so
// the enclave can prove which request it answered, and the client can prove
// which response it got: both hashes are in the signed receipt.
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { bufferToBigInt } from '../wrappers/ed25519';
import { SignedReceiptJson } from '../wrappers/receipt';
import { AttestationEvidence, Certificate } from './evidence';

const CONTEXT_TAG = Buffer.from('chrysalis-job-v1');
const REQUEST_TAG = Buffer.from('chrysalis-request-v1');

/** Associated data and key-derivation context of one job's envelopes: binds them to the escrow. */
export function jobContext(escrow: Address): Buffer {
    const workchain = Buffer.alloc(1);
    workchain.writeInt8(escrow.workChain);
    return Buffer.concat([CONTEXT_TAG, workchain, escrow.hash]);
}

/** The request commitment the client puts in OpenEscrow. */
export function requestHashOf(clientKey: Buffer, sealedRequest: Buffer): bigint {
    return bufferToBigInt(createHash('sha256').update(REQUEST_TAG).update(clientKey).update(sealedRequest).digest());
}

/** What the enclave's receipt commits to: the encrypted response exactly as sent. */
export function responseHashOf(sealedResponse: Buffer): bigint {
    return bufferToBigInt(createHash('sha256').update(sealedResponse).digest());
}

/** Nanoton per metered unit; a job costs input × perInputUnit + output × perOutputUnit, at most the escrow's maxAmount. */
export interface Prices {
    perInputUnit: bigint;
    perOutputUnit: bigint;
}

/** The price of a metered job. */
export function priceOf(prices: Prices, inputUnits: bigint, outputUnits: bigint): bigint {
    return inputUnits * prices.perInputUnit + outputUnits * prices.perOutputUnit;
}

// ---------------- HTTP bodies ----------------

/** POST /v1/jobs */
export interface JobSubmissionJson {
    /** The escrow address (any form @ton/core parses). */
    escrow: string;
    /** The client's one-time X25519 public key, hex (32 bytes). */
    clientKey: string;
    /** base64 */
    sealedRequest: string;
}

/** 200 answer of POST /v1/jobs and GET /v1/jobs/:escrow */
export interface JobAnswerJson {
    escrow: string;
    engageId: string;
    /** base64; decrypt with the client's key */
    sealedResponse: string;
    receipt: SignedReceiptJson;
    inputUnits: string;
    outputUnits: string;
    /** nanoton */
    amount: string;
    finishedAt: number;
}

/** GET /v1/attestation?nonce=<hex 32 bytes> */
export interface AttestationAnswerJson {
    provider: string;
    evidence: EvidenceJson;
    models: { name: string; modelHash: string }[];
    prices: { perInputUnit: string; perOutputUnit: string };
}

export interface EvidenceJson {
    version: 1;
    platform: 'simulated-tdx';
    quote: string;
    signature: string;
    certChain: { subject: string; publicKey: string; issuer: string; signature: string }[];
    signingKey: string;
    encryptionKey: string;
    nonce: string;
}

/** Why a runner refused a job. Nothing was signed for any of them. */
export type JobErrorCode =
    | 'malformed'
    | 'too-large'
    | 'escrow-not-found'
    | 'wrong-provider'
    | 'not-engaged'
    | 'wrong-enclave-key'
    | 'request-mismatch'
    | 'expired'
    | 'model-not-served'
    | 'undecryptable'
    | 'bad-request'
    | 'model-mismatch'
    | 'escrow-too-small'
    | 'model-failed'
    | 'not-found'
    | 'unavailable';

/** The HTTP status of each refusal. */
export const JOB_ERROR_STATUS: Readonly<Record<JobErrorCode, number>> = Object.freeze({
    malformed: 400,
    'too-large': 413,
    'escrow-not-found': 404,
    'wrong-provider': 403,
    'not-engaged': 409,
    'wrong-enclave-key': 409,
    'request-mismatch': 409,
    expired: 410,
    'model-not-served': 422,
    undecryptable: 422,
    'bad-request': 422,
    'model-mismatch': 422,
    'escrow-too-small': 402,
    'model-failed': 502,
    'not-found': 404,
    unavailable: 503,
});

/** A refusal body: `{ error: { code, message } }`. */
export interface JobErrorJson {
    error: { code: JobErrorCode; message: string };
}

/** A job the runner refused, with the code and HTTP status the client sees. */
export class JobError extends Error {
    readonly status: number;
    constructor(
        readonly code: JobErrorCode,
        message: string,
    ) {
        super(message);
        this.name = 'JobError';
        this.status = JOB_ERROR_STATUS[code];
    }
}

export function isJobErrorCode(code: unknown): code is JobErrorCode {
    return typeof code === 'string' && Object.prototype.hasOwnProperty.call(JOB_ERROR_STATUS, code);
}

// ---------------- evidence as JSON ----------------

export function evidenceToJson(e: AttestationEvidence): EvidenceJson {
    return {
        version: e.version,
        platform: e.platform,
        quote: e.quote.toString('base64'),
        signature: e.signature.toString('hex'),
        certChain: e.certChain.map((c) => ({ subject: c.subject, publicKey: c.publicKey.toString('hex'), issuer: c.issuer, signature: c.signature.toString('hex') })),
        signingKey: e.signingKey.toString('hex'),
        encryptionKey: e.encryptionKey.toString('hex'),
        nonce: e.nonce.toString('hex'),
    };
}

/** Parses evidence JSON; shape errors are ProtocolErrors (the cryptographic checks are verifyEvidence's). */
export function evidenceFromJson(j: unknown): AttestationEvidence {
    const o = object(j, 'evidence');
    if (o.version !== 1 || o.platform !== 'simulated-tdx') throw new ProtocolError('evidence: unknown version or platform');
    if (!Array.isArray(o.certChain)) throw new ProtocolError('evidence.certChain must be an array');
    const certChain: Certificate[] = o.certChain.map((c: unknown, i: number) => {
        const cert = object(c, `evidence.certChain[${i}]`);
        return {
            subject: text(cert.subject, 'subject'),
            publicKey: hex(cert.publicKey, 'publicKey', 32),
            issuer: text(cert.issuer, 'issuer'),
            signature: hex(cert.signature, 'signature', 64),
        };
    });
    return {
        version: 1,
        platform: 'simulated-tdx',
        quote: base64(o.quote, 'evidence.quote'),
        signature: hex(o.signature, 'evidence.signature', 64),
        certChain,
        signingKey: hex(o.signingKey, 'evidence.signingKey', 32),
        encryptionKey: hex(o.encryptionKey, 'evidence.encryptionKey', 32),
        nonce: hex(o.nonce, 'evidence.nonce', 32),
    };
}

/** A body that is not what the protocol says. */
export class ProtocolError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ProtocolError';
    }
}

export function object(value: unknown, what: string): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError(`${what} must be a JSON object`);
    return value as Record<string, unknown>;
}

export function text(value: unknown, what: string): string {
    if (typeof value !== 'string') throw new ProtocolError(`${what} must be a string`);
    return value;
}

export function hex(value: unknown, what: string, bytes?: number): Buffer {
    const s = text(value, what);
    if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new ProtocolError(`${what} must be hex`);
    const b = Buffer.from(s, 'hex');
    if (bytes !== undefined && b.length !== bytes) throw new ProtocolError(`${what} must be ${bytes} bytes`);
    return b;
}

export function base64(value: unknown, what: string): Buffer {
    const s = text(value, what);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new ProtocolError(`${what} must be base64`);
    return Buffer.from(s, 'base64');
}

export function address(value: unknown, what: string): Address {
    try {
        return Address.parse(text(value, what));
    } catch (e) {
        if (e instanceof ProtocolError) throw e;
        throw new ProtocolError(`${what} is not a TON address`);
    }
}

export function decimal(value: unknown, what: string): bigint {
    const s = text(value, what);
    if (!/^[0-9]{1,40}$/.test(s)) throw new ProtocolError(`${what} must be a decimal integer string`);
    return BigInt(s);
}

/** Parses a POST /v1/jobs body. */
export function jobSubmissionFromJson(j: unknown): { escrow: Address; clientKey: Buffer; sealedRequest: Buffer } {
    const o = object(j, 'job');
    return { escrow: address(o.escrow, 'escrow'), clientKey: hex(o.clientKey, 'clientKey', 32), sealedRequest: base64(o.sealedRequest, 'sealedRequest') };
}
