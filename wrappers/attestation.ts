// The one module that owns the attestation statement layout: build, hash,
// sign, parse and verify. The Registry checks the same layout
// (contracts/messages.tact, struct AttestationStatement); tests/attestation.spec.ts
// proves the two agree.
import { createHash } from 'crypto';
import { Address, beginCell, Cell, Dictionary } from '@ton/core';
import {
    ATTESTATION_TAG,
    AttestationStatement,
    EnclaveIdentity,
    loadAttestationStatement,
    Reattest,
    RegisterProvider,
    storeAttestationStatement,
} from './Registry';
import { Ed25519KeyPair, signHash, verifyHash } from './ed25519';

export { ATTESTATION_TAG };
export type { EnclaveIdentity };

/** What a verifier vouches for, in plain TypeScript types. */
export interface AttestationClaims {
    registry: Address;
    providerOwner: Address;
    /** Unix seconds. */
    issuedAt: number;
    /** Unix seconds; must be after issuedAt and within the Registry's attestationMaxAge. */
    validUntil: number;
    /** Model hashes served (see modelHash). */
    models: bigint[];
    enclave: Omit<EnclaveIdentity, '$$type'>;
}

/** A statement and the verifier's signature over its cell hash. */
export interface SignedStatement {
    statement: Cell;
    signature: Buffer;
    verifierKey: bigint;
}

export class AttestationError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'AttestationError';
    }
}

/** sha256("name@revision:weights-hash") as a uint256, the model allowlist key. */
export function modelHash(name: string, revision: string, weightsHash: string): bigint {
    return sha256Int(`${name}@${revision}:${weightsHash}`);
}

/** The image hash: sha256 over the TDX MRTD followed by the RTMRs (report data excluded). */
export function measurementHash(mrtd: Buffer, rtmrs: Buffer[]): bigint {
    return sha256Int(Buffer.concat([mrtd, ...rtmrs]));
}

export function sha256Int(data: string | Buffer): bigint {
    return BigInt('0x' + createHash('sha256').update(data).digest('hex'));
}

export function buildStatement(claims: AttestationClaims): Cell {
    if (claims.models.length === 0) throw new AttestationError('a statement must list at least one model');
    if (claims.validUntil <= claims.issuedAt) throw new AttestationError('validUntil must be after issuedAt');
    const models = Dictionary.empty(Dictionary.Keys.BigUint(256), Dictionary.Values.Bool());
    for (const model of claims.models) models.set(model, true);
    const statement: AttestationStatement = {
        $$type: 'AttestationStatement',
        tag: ATTESTATION_TAG,
        registry: claims.registry,
        providerOwner: claims.providerOwner,
        issuedAt: BigInt(claims.issuedAt),
        validUntil: BigInt(claims.validUntil),
        models,
        enclave: { $$type: 'EnclaveIdentity', ...claims.enclave },
    };
    return beginCell().store(storeAttestationStatement(statement)).endCell();
}

/** The 32 bytes the verifier signs and the Registry checks: the cell's representation hash. */
export function statementHash(statement: Cell): Buffer {
    return statement.hash();
}

export function signStatement(claims: AttestationClaims, verifier: Ed25519KeyPair): SignedStatement {
    const statement = buildStatement(claims);
    return { statement, signature: signHash(statementHash(statement), verifier), verifierKey: verifier.publicKeyInt };
}

export function parseStatement(statement: Cell): AttestationStatement {
    const parsed = loadAttestationStatement(statement.beginParse());
    if (parsed.tag !== ATTESTATION_TAG) throw new AttestationError(`not an attestation statement (tag ${parsed.tag})`);
    return parsed;
}

/**
 * The checks the Registry makes that need no chain state: signature, tag,
 * registry and owner binding, and freshness at `now`.
 */
export function verifyStatement(
    signed: SignedStatement,
    expected: { registry: Address; providerOwner: Address; now: number; maxAge: number },
): AttestationStatement {
    if (!verifyHash(statementHash(signed.statement), signed.signature, signed.verifierKey)) {
        throw new AttestationError('bad verifier signature');
    }
    const st = parseStatement(signed.statement);
    if (!st.registry.equals(expected.registry)) throw new AttestationError('statement is for another Registry');
    if (!st.providerOwner.equals(expected.providerOwner)) throw new AttestationError('statement is for another owner');
    if (st.validUntil <= BigInt(expected.now)) throw new AttestationError('statement expired');
    if (st.issuedAt > BigInt(expected.now) || st.validUntil - st.issuedAt > BigInt(expected.maxAge)) {
        throw new AttestationError('statement not fresh');
    }
    return st;
}

/** JSON form for files passed between a verifier and a provider's operator. */
export interface SignedStatementJson {
    statement: string; // BOC, base64
    signature: string; // hex
    verifierKey: string; // hex, 32 bytes
}

export function signedStatementToJson(s: SignedStatement): SignedStatementJson {
    return {
        statement: s.statement.toBoc().toString('base64'),
        signature: s.signature.toString('hex'),
        verifierKey: s.verifierKey.toString(16).padStart(64, '0'),
    };
}

export function signedStatementFromJson(j: SignedStatementJson): SignedStatement {
    if (!/^[0-9a-fA-F]{128}$/.test(j.signature)) throw new AttestationError('signature must be 64 bytes of hex');
    if (!/^[0-9a-fA-F]{64}$/.test(j.verifierKey)) throw new AttestationError('verifierKey must be 32 bytes of hex');
    return {
        statement: Cell.fromBase64(j.statement),
        signature: Buffer.from(j.signature, 'hex'),
        verifierKey: BigInt('0x' + j.verifierKey),
    };
}

/** The body of RegisterProvider for a signed statement. */
export function registerProviderMessage(
    signed: SignedStatement,
    stake: bigint,
    opts: { payout?: Address | null; queryId?: bigint } = {},
): RegisterProvider {
    return {
        $$type: 'RegisterProvider',
        queryId: opts.queryId ?? 0n,
        stake,
        payout: opts.payout ?? null,
        verifierKey: signed.verifierKey,
        signature: signed.signature,
        statement: signed.statement,
    };
}

/** The body of Reattest for a signed statement (stake: optional extra stake). */
export function reattestMessage(signed: SignedStatement, stake = 0n, queryId = 0n): Reattest {
    return {
        $$type: 'Reattest',
        queryId,
        stake,
        verifierKey: signed.verifierKey,
        signature: signed.signature,
        statement: signed.statement,
    };
}
