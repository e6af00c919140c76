// The enclave side of a provider's runner. A TeeBackend holds the enclave's
// keys and never lets them out: it signs, derives shared secrets and produces
// attestation evidence. SimulatedTee is the one backend so far. It runs in
// this process and gives NO real confidentiality or integrity: the host can
// read its keys. It exists so the whole protocol can run end to end without
// TDX hardware; a TDX backend implements the same interface.
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, KeyObject, randomBytes } from 'crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'fs';
import { Ed25519KeyPair, keyPairFromSeed, signHash } from '../wrappers/ed25519';
import { AttestationEvidence, buildQuote, Certificate, reportDataFor, signQuote } from './evidence';
import { x25519PublicKey, X25519_SPKI_PREFIX } from './envelope';

export interface TeeBackend {
    readonly platform: string;
    /** The enclave's ed25519 receipt-signing public key, 32 bytes. */
    readonly signingKey: Buffer;
    /** The enclave's X25519 request-encryption public key, 32 bytes. */
    readonly encryptionKey: Buffer;
    /** Signs a 32-byte hash (a receipt's cell hash) with the enclave's key. */
    sign(hash: Buffer): Buffer;
    /** X25519 with a client's public key: the shared secret request keys are derived from. */
    sharedSecret(peerPublicKey: Buffer): Buffer;
    /** Evidence binding both keys and `nonce` to this enclave's measurement. */
    attest(nonce: Buffer, now: number): AttestationEvidence;
}

export class TeeError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'TeeError';
    }
}

/** The simulated platform: its key and the chain that certifies it. */
export interface SimulatedPlatform {
    key: Ed25519KeyPair;
    certChain: Certificate[];
}

const SEAL_INFO = Buffer.from('chrysalis-seal-v1');
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

interface SealedFile {
    version: 1;
    iv: string;
    tag: string;
    ciphertext: string;
}

/** sha256 of the runner's code bundle and static config: what a TDX measurement would be. */
export function measurementOf(codeBundle: Buffer, staticConfig: Buffer): Buffer {
    return createHash('sha256').update(codeBundle).update(staticConfig).digest();
}

export class SimulatedTee implements TeeBackend {
    readonly platform = 'simulated-tdx';
    readonly signingKey: Buffer;
    readonly encryptionKey: Buffer;
    private readonly signer: Ed25519KeyPair;
    private readonly decryptor: KeyObject;

    private constructor(
        private readonly measurement: Buffer,
        private readonly platformSigner: SimulatedPlatform,
        signingSeed: Buffer,
        x25519Secret: Buffer,
    ) {
        this.signer = keyPairFromSeed(signingSeed);
        this.signingKey = this.signer.publicKey;
        this.decryptor = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, x25519Secret]), format: 'der', type: 'pkcs8' });
        this.encryptionKey = Buffer.from(createPublicKey(this.decryptor).export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length));
    }

    /**
     * Opens the enclave whose keys are sealed at `sealedPath` under
     * `sealingKey` (32 bytes; a TDX enclave would derive it from the
     * platform), creating and sealing fresh keys the first time. A restart
     * with the same file and sealing key keeps the enclave's identity.
     */
    static open(opts: { sealedPath: string; sealingKey: Buffer; measurement: Buffer; platform: SimulatedPlatform }): SimulatedTee {
        if (opts.sealingKey.length !== 32) throw new TeeError('the sealing key must be 32 bytes');
        if (opts.measurement.length !== 32) throw new TeeError('the measurement must be 32 bytes');
        let secrets: Buffer;
        if (existsSync(opts.sealedPath)) {
            secrets = unseal(readFileSync(opts.sealedPath, 'utf8'), opts.sealingKey, opts.measurement);
        } else {
            const x25519 = generateKeyPairSync('x25519').privateKey.export({ format: 'der', type: 'pkcs8' });
            secrets = Buffer.concat([randomBytes(32), Buffer.from(x25519.subarray(X25519_PKCS8_PREFIX.length))]);
            // Write then rename: a crash never leaves a half-written identity.
            writeFileSync(opts.sealedPath + '.tmp', seal(secrets, opts.sealingKey, opts.measurement), { mode: 0o600 });
            renameSync(opts.sealedPath + '.tmp', opts.sealedPath);
        }
        if (secrets.length !== 64) throw new TeeError('sealed keys have the wrong length');
        return new SimulatedTee(opts.measurement, opts.platform, secrets.subarray(0, 32), secrets.subarray(32));
    }

    sign(hash: Buffer): Buffer {
        if (hash.length !== 32) throw new TeeError('the enclave signs 32-byte hashes only');
        return signHash(hash, this.signer);
    }

    sharedSecret(peerPublicKey: Buffer): Buffer {
        if (peerPublicKey.length !== 32) throw new TeeError('an X25519 public key is 32 bytes');
        return diffieHellman({ privateKey: this.decryptor, publicKey: x25519PublicKey(peerPublicKey) });
    }

    attest(nonce: Buffer, now: number): AttestationEvidence {
        if (nonce.length !== 32) throw new TeeError('the nonce must be 32 bytes');
        const quote = buildQuote({ measurement: this.measurement, reportData: reportDataFor(this.signingKey, this.encryptionKey, nonce), issuedAt: now });
        return {
            version: 1,
            platform: 'simulated-tdx',
            quote,
            signature: signQuote(quote, this.platformSigner.key),
            certChain: this.platformSigner.certChain,
            signingKey: this.signingKey,
            encryptionKey: this.encryptionKey,
            nonce,
        };
    }
}

/** The sealing key bound to the measurement: another build of the runner cannot unseal. */
function sealKey(sealingKey: Buffer, measurement: Buffer): Buffer {
    return Buffer.from(hkdfSync('sha256', sealingKey, measurement, SEAL_INFO, 32));
}

function seal(secrets: Buffer, sealingKey: Buffer, measurement: Buffer): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', sealKey(sealingKey, measurement), iv);
    const ciphertext = Buffer.concat([cipher.update(secrets), cipher.final()]);
    const file: SealedFile = { version: 1, iv: iv.toString('hex'), tag: cipher.getAuthTag().toString('hex'), ciphertext: ciphertext.toString('hex') };
    return JSON.stringify(file) + '\n';
}

function unseal(text: string, sealingKey: Buffer, measurement: Buffer): Buffer {
    let file: SealedFile;
    try {
        file = JSON.parse(text) as SealedFile;
    } catch {
        throw new TeeError('the sealed key file is not JSON');
    }
    if (file.version !== 1) throw new TeeError(`unknown sealed key file version ${String(file.version)}`);
    try {
        const decipher = createDecipheriv('aes-256-gcm', sealKey(sealingKey, measurement), Buffer.from(file.iv, 'hex'));
        decipher.setAuthTag(Buffer.from(file.tag, 'hex'));
        return Buffer.concat([decipher.update(Buffer.from(file.ciphertext, 'hex')), decipher.final()]);
    } catch {
        throw new TeeError('cannot unseal the enclave keys: wrong sealing key, another measurement, or a damaged file');
    }
}
