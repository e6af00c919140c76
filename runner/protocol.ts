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
//
// Payment channels use the same envelopes, bound to the channel's address
// (context = jobContext(channel)), with a one-time client key per request.
// Nothing is committed on-chain per request: the step the enclave chains into
// the cumulative receipt carries requestHash and responseHash instead.
//
//   closeContext  = "chrysalis-close-v1" ‖ channel workchain (int8) ‖ channel hash (32)
//   sealedClose   = seal(X25519(the one-time key of a request served in this opening, enclave), 'request',
//                        closeContext, JSON {close: channel raw address, openId: decimal})
//
// Only the client holds the private half of a key it used for a request, so
// a close sealed under one proves the client asked (anyone can read the
// channel's address on-chain, and a final receipt ends the channel at once).
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { bufferToBigInt } from '../wrappers/ed25519';
import { SignedReceiptJson } from '../wrappers/receipt';
import { ChannelStepFields, SignedChannelReceiptJson } from '../wrappers/channelReceipt';
import { AttestationEvidence, Certificate } from './evidence';

const CONTEXT_TAG = Buffer.from('chrysalis-job-v1');
const REQUEST_TAG = Buffer.from('chrysalis-request-v1');
const CLOSE_TAG = Buffer.from('chrysalis-close-v1');

/** Associated data and key-derivation context of one job's envelopes: binds them to the escrow. */
export function jobContext(escrow: Address): Buffer {
    const workchain = Buffer.alloc(1);
    workchain.writeInt8(escrow.workChain);
    return Buffer.concat([CONTEXT_TAG, workchain, escrow.hash]);
}

/** Associated data and key-derivation context of a channel's close request: distinct from jobContext, so a sealed request never opens as a close. */
export function closeContext(channel: Address): Buffer {
    const workchain = Buffer.alloc(1);
    workchain.writeInt8(channel.workChain);
    return Buffer.concat([CLOSE_TAG, workchain, channel.hash]);
}

/** The plaintext of a close request for one opening of a channel. */
export function closeCommand(channel: Address, openId: bigint): Buffer {
    return Buffer.from(JSON.stringify({ close: channel.toRawString(), openId: openId.toString() }));
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

// ---------------- payment channels: HTTP bodies ----------------

/** POST /v1/channels/<channel>/requests */
export interface ChannelRequestJson {
    /** The client's one-time X25519 public key for this request, hex (32 bytes). */
    clientKey: string;
    /** base64, sealed with context = jobContext(channel) */
    sealedRequest: string;
}

/** One request as the running root chains it (ChannelStep), as decimal strings. */
export interface ChannelStepJson {
    prev: string;
    requestHash: string;
    responseHash: string;
    /** nanoton this request cost */
    amount: string;
}

/** 200 answer of POST /v1/channels/<channel>/requests: the response and the cumulative receipt signed right after it. */
export interface ChannelAnswerJson {
    channel: string;
    openId: string;
    /** base64; decrypt with the request's one-time key */
    sealedResponse: string;
    step: ChannelStepJson;
    receipt: SignedChannelReceiptJson;
    inputUnits: string;
    outputUnits: string;
}

/** 200 answer of GET /v1/channels/<channel>: the latest opening's last answer and its final receipt, if signed. */
export interface ChannelStateJson {
    channel: string;
    openId: string;
    /** The answer to the last request served (null before any). */
    latest: ChannelAnswerJson | null;
    /** The final receipt, once the runner signed it (nothing more is signed for this opening). */
    final: SignedChannelReceiptJson | null;
}

/** POST /v1/channels/<channel>/close */
export interface ChannelCloseRequestJson {
    /** The one-time key of a request already served in this opening, hex (32 bytes). */
    clientKey: string;
    /** base64: closeCommand(channel, openId) sealed with closeContext(channel) under that key */
    sealedClose: string;
}

/** 200 answer of POST /v1/channels/<channel>/close */
export interface ChannelCloseAnswerJson {
    channel: string;
    openId: string;
    /** The final receipt: the last cumulative amount, seqno + 1, final. */
    receipt: SignedChannelReceiptJson;
    /** Whether the runner saw its claim of it close the channel. */
    claimed: boolean;
}

export function channelStepToJson(s: ChannelStepFields): ChannelStepJson {
    return { prev: s.prev.toString(), requestHash: s.requestHash.toString(), responseHash: s.responseHash.toString(), amount: s.amount.toString() };
}

/** Parses a step; shape errors are ProtocolErrors. */
export function channelStepFromJson(j: unknown): ChannelStepFields {
    const o = object(j, 'step');
    return { prev: decimal78(o.prev, 'step.prev'), requestHash: decimal78(o.requestHash, 'step.requestHash'), responseHash: decimal78(o.responseHash, 'step.responseHash'), amount: decimal(o.amount, 'step.amount') };
}

/** Parses a POST /v1/channels/<channel>/requests body. */
export function channelRequestFromJson(j: unknown): { clientKey: Buffer; sealedRequest: Buffer } {
    const o = object(j, 'channel request');
    return { clientKey: hex(o.clientKey, 'clientKey', 32), sealedRequest: base64(o.sealedRequest, 'sealedRequest') };
}

/** Parses a POST /v1/channels/<channel>/close body. */
export function channelCloseRequestFromJson(j: unknown): { clientKey: Buffer; sealedClose: Buffer } {
    const o = object(j, 'close request');
    return { clientKey: hex(o.clientKey, 'clientKey', 32), sealedClose: base64(o.sealedClose, 'sealedClose') };
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
    | 'unavailable'
    // payment channels
    | 'channel-not-found'
    | 'channel-not-active'
    | 'channel-closing'
    | 'deposit-exhausted'
    | 'channel-busy'
    | 'close-unauthorized';

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
    'channel-not-found': 404,
    'channel-not-active': 409,
    'channel-closing': 410,
    'deposit-exhausted': 402,
    // Retryable: another request's receipt was recorded first; this one's signature was discarded.
    'channel-busy': 503,
    'close-unauthorized': 403,
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

/** A decimal string up to 2^256 (hashes). */
function decimal78(value: unknown, what: string): bigint {
    const s = text(value, what);
    if (!/^[0-9]{1,78}$/.test(s)) throw new ProtocolError(`${what} must be a decimal integer string`);
    const v = BigInt(s);
    if (v >= 1n << 256n) throw new ProtocolError(`${what} is above 2^256`);
    return v;
}

/** Parses a POST /v1/jobs body. */
export function jobSubmissionFromJson(j: unknown): { escrow: Address; clientKey: Buffer; sealedRequest: Buffer } {
    const o = object(j, 'job');
    return { escrow: address(o.escrow, 'escrow'), clientKey: hex(o.clientKey, 'clientKey', 32), sealedRequest: base64(o.sealedRequest, 'sealedRequest') };
}
