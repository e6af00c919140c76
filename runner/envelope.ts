// Request and response encryption between a client and an enclave: X25519
// key agreement, HKDF-SHA256, AES-256-GCM (all Node's crypto). A client makes
// a one-time X25519 key pair per request; the enclave answers under a key
// derived from the same shared secret with another label, so a request and
// its response never share a key. The escrow address and request hash go in
// as associated data, binding the ciphertext to its job.
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, KeyObject, randomBytes } from 'crypto';

/** DER prefix wrapping a raw 32-byte X25519 public key for Node's importers. */
export const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export class EnvelopeError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'EnvelopeError';
    }
}

/** An encrypted payload: IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes). */
export type Sealed = Buffer;

export function x25519PublicKey(raw: Buffer): KeyObject {
    if (raw.length !== 32) throw new EnvelopeError('an X25519 public key is 32 bytes');
    return createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** A fresh client key pair for one request. */
export function requestKeyPair(): { privateKey: KeyObject; publicKey: Buffer } {
    const pair = generateKeyPairSync('x25519');
    return { privateKey: pair.privateKey, publicKey: Buffer.from(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI_PREFIX.length)) };
}

export function clientSharedSecret(clientPrivateKey: KeyObject, enclaveEncryptionKey: Buffer): Buffer {
    return diffieHellman({ privateKey: clientPrivateKey, publicKey: x25519PublicKey(enclaveEncryptionKey) });
}

function directionKey(sharedSecret: Buffer, direction: 'request' | 'response', context: Buffer): Buffer {
    return Buffer.from(hkdfSync('sha256', sharedSecret, context, Buffer.from(`chrysalis-${direction}-v1`), 32));
}

export function seal(sharedSecret: Buffer, direction: 'request' | 'response', context: Buffer, plaintext: Buffer): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', directionKey(sharedSecret, direction, context), iv);
    cipher.setAAD(context);
    return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

export function open(sharedSecret: Buffer, direction: 'request' | 'response', context: Buffer, sealed: Sealed): Buffer {
    if (sealed.length < 28) throw new EnvelopeError('ciphertext too short');
    try {
        const decipher = createDecipheriv('aes-256-gcm', directionKey(sharedSecret, direction, context), sealed.subarray(0, 12));
        decipher.setAAD(context);
        decipher.setAuthTag(sealed.subarray(sealed.length - 16));
        return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    } catch {
        throw new EnvelopeError('cannot decrypt: wrong key, another job, or a tampered ciphertext');
    }
}
