// The simulated TEE backend and the attestation evidence checks: sealed keys
// survive a restart and nothing else, evidence binds the keys to the
// measurement under a certified platform key, and every check of
// verifyEvidence refuses what it must.
import '@ton/test-utils';
import { createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes } from 'crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { bufferToBigInt, keyPairFromSeed, verifyHash } from '../wrappers/ed25519';
import { toNano } from '@ton/core';
import { ALLOWLIST_MEASUREMENT } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { AttestationEvidence, EvidenceError, EvidencePolicy, issueCertificate, signQuote, SimulatedQuoteVerifier, statementForEvidence, verifyEvidence } from '../runner/evidence';
import { clientSharedSecret, EnvelopeError, open, requestKeyPair, seal } from '../runner/envelope';
import { deployFixture, MODEL_A, sendRegister } from './helpers/fixture';
import { measurementOf, SimulatedPlatform, SimulatedTee, TeeError } from '../runner/tee';

const seed = (label: string) => createHash('sha256').update(`chrysalis-tee-test:${label}`).digest();
const root = keyPairFromSeed(seed('root'));
const platformKey = keyPairFromSeed(seed('platform'));
const platform: SimulatedPlatform = { key: platformKey, certChain: [issueCertificate('sim-platform', platformKey.publicKey, 'sim-root', root)] };
const measurement = measurementOf(Buffer.from('runner bundle v1'), Buffer.from('{"model":"reference"}'));
const NOW = 1_800_000_000;

describe('SimulatedTee', () => {
    let dir: string;
    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), 'chrysalis-tee-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    const open = (overrides: Partial<Parameters<typeof SimulatedTee.open>[0]> = {}) =>
        SimulatedTee.open({ sealedPath: join(dir, 'enclave.sealed'), sealingKey: seed('sealing'), measurement, platform, ...overrides });

    it('keeps its identity across a restart, and only with the same sealing key and measurement', () => {
        const first = open();
        const again = open();
        expect(again.signingKey.equals(first.signingKey)).toBe(true);
        expect(again.encryptionKey.equals(first.encryptionKey)).toBe(true);
        // The file holds no key in the clear.
        const sealed = readFileSync(join(dir, 'enclave.sealed'), 'utf8');
        expect(sealed).not.toContain(first.signingKey.toString('hex'));
        expect(() => open({ sealingKey: seed('another') })).toThrow(TeeError);
        expect(() => open({ measurement: measurementOf(Buffer.from('runner bundle v2'), Buffer.alloc(0)) })).toThrow(TeeError);
        writeFileSync(join(dir, 'enclave.sealed'), sealed.replace(/"tag":"(.)/, (_, c: string) => `"tag":"${c === '0' ? '1' : '0'}`));
        expect(() => open()).toThrow(/cannot unseal/);
        // Another file: another enclave.
        const other = open({ sealedPath: join(dir, 'other.sealed') });
        expect(other.signingKey.equals(first.signingKey)).toBe(false);
    });

    it('signs hashes with its key and agrees on X25519 secrets with a client', () => {
        const tee = open();
        const hash = randomBytes(32);
        expect(verifyHash(hash, tee.sign(hash), tee.signingKey)).toBe(true);
        expect(() => tee.sign(Buffer.alloc(31))).toThrow(TeeError);
        const client = generateKeyPairSync('x25519');
        const clientPublic = Buffer.from(client.publicKey.export({ format: 'der', type: 'spki' }).subarray(12));
        const enclavePublic = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b656e032100', 'hex'), tee.encryptionKey]), format: 'der', type: 'spki' });
        expect(tee.sharedSecret(clientPublic).equals(diffieHellman({ privateKey: client.privateKey, publicKey: enclavePublic }))).toBe(true);
    });
});

describe('verifyEvidence', () => {
    let dir: string;
    let tee: SimulatedTee;
    beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), 'chrysalis-evidence-'));
        tee = SimulatedTee.open({ sealedPath: join(dir, 'enclave.sealed'), sealingKey: seed('sealing'), measurement, platform });
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    const policy = (overrides: Partial<EvidencePolicy> = {}): EvidencePolicy => ({
        verifier: new SimulatedQuoteVerifier('sim-root', root.publicKey),
        allowedMeasurements: (m) => m === bufferToBigInt(measurement),
        maxAgeSeconds: 600,
        now: NOW,
        ...overrides,
    });
    const refused = (evidence: AttestationEvidence, problem: EvidenceError['problem'], p = policy()) => {
        let error: unknown;
        try {
            verifyEvidence(evidence, p);
        } catch (e) {
            error = e;
        }
        expect(error).toBeInstanceOf(EvidenceError);
        expect((error as EvidenceError).problem).toBe(problem);
    };

    it('accepts fresh evidence from an allowlisted measurement and returns the enclave keys', () => {
        const nonce = randomBytes(32);
        const verified = verifyEvidence(tee.attest(nonce, NOW - 10), policy({ expectedNonce: nonce }));
        expect(verified.measurement).toBe(bufferToBigInt(measurement));
        expect(verified.signingKey).toBe(bufferToBigInt(tee.signingKey));
        expect(verified.encryptionKey.equals(tee.encryptionKey)).toBe(true);
        expect(verified.issuedAt).toBe(NOW - 10);
    });

    it('refuses a foreign chain, a forged quote, swapped keys, another challenge, an unlisted measurement and stale or future quotes', () => {
        const nonce = randomBytes(32);
        const good = tee.attest(nonce, NOW);
        // A platform key certified by another root.
        const rogueRoot = keyPairFromSeed(seed('rogue-root'));
        refused({ ...good, certChain: [issueCertificate('sim-platform', platformKey.publicKey, 'sim-root', rogueRoot)] }, 'untrusted-chain');
        refused({ ...good, certChain: [] }, 'untrusted-chain');
        // A quote signed by an uncertified key.
        const rogue = SimulatedTee.open({
            sealedPath: join(dir, 'rogue.sealed'),
            sealingKey: seed('sealing'),
            measurement,
            platform: { key: keyPairFromSeed(seed('rogue-platform')), certChain: platform.certChain },
        });
        refused(rogue.attest(nonce, NOW), 'bad-platform-signature');
        // The quote's report data does not commit to other keys or another nonce.
        refused({ ...good, signingKey: randomBytes(32) }, 'report-data-mismatch');
        refused({ ...good, encryptionKey: randomBytes(32) }, 'report-data-mismatch');
        refused(good, 'report-data-mismatch', policy({ expectedNonce: randomBytes(32) }));
        refused(good, 'measurement-not-allowed', policy({ allowedMeasurements: () => false }));
        refused(tee.attest(nonce, NOW - 601), 'stale');
        refused(tee.attest(nonce, NOW + 3600), 'from-the-future');
        // A changed quote no longer carries the platform's signature; a signed quote of another format is malformed.
        refused({ ...good, quote: good.quote.subarray(1) }, 'bad-platform-signature');
        const garbage = Buffer.from('not a quote');
        refused({ ...good, quote: garbage, signature: signQuote(garbage, platformKey) }, 'malformed');
    });
});

describe('request envelopes', () => {
    it('a client and the enclave read each other, and nothing else does', () => {
        const dir = mkdtempSync(join(tmpdir(), 'chrysalis-envelope-'));
        try {
            const tee = SimulatedTee.open({ sealedPath: join(dir, 'e.sealed'), sealingKey: seed('sealing'), measurement, platform });
            const client = requestKeyPair();
            const job = Buffer.from('escrow EQ… request 0x1234');
            const clientSecret = clientSharedSecret(client.privateKey, tee.encryptionKey);
            const request = seal(clientSecret, 'request', job, Buffer.from('summarise this'));
            const enclaveSecret = tee.sharedSecret(client.publicKey);
            expect(open(enclaveSecret, 'request', job, request).toString()).toBe('summarise this');
            const response = seal(enclaveSecret, 'response', job, Buffer.from('a summary'));
            expect(open(clientSecret, 'response', job, response).toString()).toBe('a summary');
            // Another job, the other direction, a flipped bit, another client: refused.
            expect(() => open(enclaveSecret, 'request', Buffer.from('another job'), request)).toThrow(EnvelopeError);
            expect(() => open(enclaveSecret, 'response', job, request)).toThrow(EnvelopeError);
            const flipped = Buffer.from(request);
            flipped[20] ^= 1;
            expect(() => open(enclaveSecret, 'request', job, flipped)).toThrow(EnvelopeError);
            expect(() => open(tee.sharedSecret(requestKeyPair().publicKey), 'request', job, request)).toThrow(EnvelopeError);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});

describe('verifier service', () => {
    it('turns accepted evidence into a statement the Registry registers', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'chrysalis-verifier-'));
        try {
            const fx = await deployFixture();
            // Allowlist this runner's measurement (the fixture's timelock then passes).
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'AllowlistAdd', queryId: 0n, list: ALLOWLIST_MEASUREMENT, entry: bufferToBigInt(measurement) });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            const tee = SimulatedTee.open({ sealedPath: join(dir, 'e.sealed'), sealingKey: seed('sealing'), measurement, platform });
            const now = fx.blockchain.now;
            const nonce = randomBytes(32);
            const evidence = tee.attest(nonce, now);
            const verified = verifyEvidence(evidence, {
                verifier: new SimulatedQuoteVerifier('sim-root', root.publicKey),
                allowedMeasurements: (m) => m === bufferToBigInt(measurement),
                maxAgeSeconds: 600,
                now,
                expectedNonce: nonce,
            });
            const owner = await fx.blockchain.treasury('runner-owner');
            const signed = statementForEvidence(evidence, verified, { registry: fx.registry.address, providerOwner: owner.address, models: [MODEL_A], now, validFor: 86400 }, fx.verifier);
            const r = await sendRegister(fx, owner, signed);
            const providerAddress = await fx.registry.getProviderAddress(owner.address);
            expect(r.transactions).toHaveTransaction({ to: providerAddress, success: true });
            const provider = fx.blockchain.openContract(Provider.fromAddress(providerAddress));
            const info = await provider.getInfo();
            expect(info.enclave.signingKey).toBe(bufferToBigInt(tee.signingKey));
            expect(info.enclave.encryptionKey).toBe(bufferToBigInt(tee.encryptionKey));
            expect(info.enclave.measurement).toBe(bufferToBigInt(measurement));
            expect(await provider.getAcceptsJobs()).toBe(true);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    });
});
