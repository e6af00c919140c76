// Attestation evidence: what a TEE backend produces and what clients and the
// verifier service check before they trust an enclave's keys.
//
// Format (version 1). `quote` is the platform-signed body; the rest is its
// parsed view plus the certificate chain that vouches for the platform key:
//   quote       = "CHRYSALIS-SIMTDX-QUOTE-V1" ‖ measurement(32) ‖ reportData(32) ‖ issuedAt(uint64 BE)
//   measurement = sha256(the runner's code bundle ‖ its static config)     (TDX: MRTD/RTMRs)
//   reportData  = sha256(signingKey(32) ‖ encryptionKey(32) ‖ nonce(32))  (binds the keys to the quote)
//   signature   = ed25519 by the platform key over sha256(quote)
//   certChain   = [platform certificate, …] up to a root the verifier pins; each
//                 certificate's signature is ed25519 by its issuer over
//                 sha256("CHRYSALIS-SIMCERT-V1" ‖ subject ‖ 0x00 ‖ publicKey(32) ‖ issuer)
// A real Intel TDX backend fits the same shape: its quote bytes go in, and a
// QuoteVerifier for TDX returns the measurement and report data out.
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { bufferToBigInt, Ed25519KeyPair, signHash, verifyHash } from '../wrappers/ed25519';
import { signStatement, SignedStatement } from '../wrappers/attestation';

export const QUOTE_PREFIX = Buffer.from('CHRYSALIS-SIMTDX-QUOTE-V1');
const CERT_PREFIX = Buffer.from('CHRYSALIS-SIMCERT-V1');

export interface Certificate {
    subject: string;
    /** ed25519 public key, 32 bytes. */
    publicKey: Buffer;
    issuer: string;
    /** ed25519 by the issuer's key over certificateHash(). */
    signature: Buffer;
}

export interface AttestationEvidence {
    version: 1;
    platform: 'simulated-tdx';
    quote: Buffer;
    signature: Buffer;
    certChain: Certificate[];
    /** The enclave's ed25519 receipt-signing key and X25519 request-encryption key, raw 32 bytes each. */
    signingKey: Buffer;
    encryptionKey: Buffer;
    /** The nonce the report data commits to (the verifier's challenge, or a fresh random one). */
    nonce: Buffer;
}

/** What a quote says once its platform signature and chain are checked. */
export interface QuoteBody {
    measurement: Buffer;
    reportData: Buffer;
    issuedAt: number;
}

export type EvidenceProblem =
    | 'malformed'
    | 'untrusted-chain'
    | 'bad-platform-signature'
    | 'report-data-mismatch'
    | 'measurement-not-allowed'
    | 'stale'
    | 'from-the-future';

export class EvidenceError extends Error {
    constructor(
        readonly problem: EvidenceProblem,
        message: string,
    ) {
        super(message);
        this.name = 'EvidenceError';
    }
}

const sha256 = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

export function certificateHash(subject: string, publicKey: Buffer, issuer: string): Buffer {
    return sha256(CERT_PREFIX, Buffer.from(subject), Buffer.from([0]), publicKey, Buffer.from(issuer));
}

export function issueCertificate(subject: string, publicKey: Buffer, issuer: string, issuerKey: Ed25519KeyPair): Certificate {
    return { subject, publicKey, issuer, signature: signHash(certificateHash(subject, publicKey, issuer), issuerKey) };
}

export function reportDataFor(signingKey: Buffer, encryptionKey: Buffer, nonce: Buffer): Buffer {
    return sha256(signingKey, encryptionKey, nonce);
}

export function buildQuote(body: QuoteBody): Buffer {
    const at = Buffer.alloc(8);
    at.writeBigUInt64BE(BigInt(body.issuedAt));
    return Buffer.concat([QUOTE_PREFIX, body.measurement, body.reportData, at]);
}

/** What the platform key signs: sha256 of the quote bytes. */
export function quoteHash(quote: Buffer): Buffer {
    return sha256(quote);
}

/** The platform's signature of a quote (the simulated platform's side of quoteHash). */
export function signQuote(quote: Buffer, platformKey: Ed25519KeyPair): Buffer {
    return signHash(quoteHash(quote), platformKey);
}

export function parseQuote(quote: Buffer): QuoteBody {
    if (quote.length !== QUOTE_PREFIX.length + 72 || !quote.subarray(0, QUOTE_PREFIX.length).equals(QUOTE_PREFIX)) {
        throw new EvidenceError('malformed', 'not a simulated-TDX quote (version 1)');
    }
    const rest = quote.subarray(QUOTE_PREFIX.length);
    return { measurement: rest.subarray(0, 32), reportData: rest.subarray(32, 64), issuedAt: Number(rest.readBigUInt64BE(64)) };
}

/** Checks a quote's platform signature and chain; returns what the quote says. Real TDX gets its own. */
export interface QuoteVerifier {
    verifyQuote(evidence: AttestationEvidence): QuoteBody;
}

/** Verifies simulated quotes against a pinned root key (the simulated Intel root). */
export class SimulatedQuoteVerifier implements QuoteVerifier {
    constructor(
        private readonly rootName: string,
        private readonly rootKey: Buffer,
    ) {}

    verifyQuote(evidence: AttestationEvidence): QuoteBody {
        if (evidence.version !== 1 || evidence.platform !== 'simulated-tdx') throw new EvidenceError('malformed', 'unknown evidence version or platform');
        if (evidence.certChain.length === 0) throw new EvidenceError('untrusted-chain', 'no certificate chain');
        // Walk from the root down: each certificate must be issued by the key above it.
        let issuerName = this.rootName;
        let issuerKey = this.rootKey;
        for (const cert of [...evidence.certChain].reverse()) {
            if (cert.issuer !== issuerName || !verifyHash(certificateHash(cert.subject, cert.publicKey, cert.issuer), cert.signature, issuerKey)) {
                throw new EvidenceError('untrusted-chain', `certificate "${cert.subject}" is not signed by "${issuerName}"`);
            }
            issuerName = cert.subject;
            issuerKey = cert.publicKey;
        }
        if (!verifyHash(quoteHash(evidence.quote), evidence.signature, issuerKey)) {
            throw new EvidenceError('bad-platform-signature', 'the quote is not signed by the certified platform key');
        }
        return parseQuote(evidence.quote);
    }
}

export interface EvidencePolicy {
    verifier: QuoteVerifier;
    /** Measurements the Registry allowlists (active entries). */
    allowedMeasurements: (measurement: bigint) => boolean;
    /** Oldest acceptable quote, in seconds before `now`. */
    maxAgeSeconds: number;
    now: number;
    /** When set, the report data must commit to this nonce (the verifier's challenge). */
    expectedNonce?: Buffer;
}

export interface VerifiedEnclave {
    measurement: bigint;
    signingKey: bigint;
    encryptionKey: Buffer;
    issuedAt: number;
}

/**
 * Everything a client or the verifier service checks before trusting an
 * enclave: platform chain and signature, report data binding the keys (and
 * nonce), the measurement against the allowlist, and freshness.
 */
export function verifyEvidence(evidence: AttestationEvidence, policy: EvidencePolicy): VerifiedEnclave {
    const body = policy.verifier.verifyQuote(evidence);
    if (evidence.signingKey.length !== 32 || evidence.encryptionKey.length !== 32 || evidence.nonce.length !== 32) {
        throw new EvidenceError('malformed', 'keys and nonce must be 32 bytes each');
    }
    if (policy.expectedNonce && !evidence.nonce.equals(policy.expectedNonce)) {
        throw new EvidenceError('report-data-mismatch', 'the evidence answers another challenge');
    }
    if (!reportDataFor(evidence.signingKey, evidence.encryptionKey, evidence.nonce).equals(body.reportData)) {
        throw new EvidenceError('report-data-mismatch', 'the quote does not commit to these keys');
    }
    const measurement = bufferToBigInt(body.measurement);
    if (!policy.allowedMeasurements(measurement)) throw new EvidenceError('measurement-not-allowed', `measurement ${body.measurement.toString('hex')} is not allowlisted`);
    if (body.issuedAt > policy.now + 60) throw new EvidenceError('from-the-future', 'the quote is dated in the future');
    if (policy.now - body.issuedAt > policy.maxAgeSeconds) throw new EvidenceError('stale', `the quote is older than ${policy.maxAgeSeconds} s`);
    return { measurement, signingKey: bufferToBigInt(evidence.signingKey), encryptionKey: evidence.encryptionKey, issuedAt: body.issuedAt };
}


/**
 * The verifier service's role: after verifyEvidence accepted the evidence,
 * state on-chain what it saw. The statement (wrappers/attestation.ts owns its
 * layout) binds the enclave's keys, measurement and the hash of the quote to
 * one provider owner of one Registry, valid for `validFor` seconds.
 */
export function statementForEvidence(
    evidence: AttestationEvidence,
    verified: VerifiedEnclave,
    claims: { registry: Address; providerOwner: Address; models: bigint[]; now: number; validFor: number },
    verifierKey: Ed25519KeyPair,
): SignedStatement {
    return signStatement(
        {
            registry: claims.registry,
            providerOwner: claims.providerOwner,
            issuedAt: claims.now,
            validUntil: claims.now + claims.validFor,
            models: claims.models,
            enclave: {
                signingKey: verified.signingKey,
                encryptionKey: bufferToBigInt(verified.encryptionKey),
                measurement: verified.measurement,
                reportHash: bufferToBigInt(quoteHash(evidence.quote)),
            },
        },
        verifierKey,
    );
}
