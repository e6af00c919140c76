// wrappers/attestation.ts and the Registry must agree on the statement layout:
// whatever TypeScript signs for this Registry, the Registry accepts, and any
// change to a signed statement makes the Registry refuse it.
import '@ton/test-utils';
import fc from 'fast-check';
import { Address, beginCell, Cell } from '@ton/core';
import { ERR_BAD_SIGNATURE, STATUS_ACTIVE } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import {
    AttestationClaims,
    AttestationError,
    buildStatement,
    parseStatement,
    signedStatementFromJson,
    signedStatementToJson,
    signStatement,
    verifyStatement,
} from '../wrappers/attestation';
import { keyPairFromSeed, randomKeyPair, signHash, verifyHash } from '../wrappers/ed25519';
import { deployFixture, Fixture, MEASUREMENT, MODEL_A, MODEL_B, sendRegister, testKey } from './helpers/fixture';

const uint256 = fc.bigInt({ min: 0n, max: (1n << 256n) - 1n });

describe('attestation statement', () => {
    let fx: Fixture;
    beforeAll(async () => {
        fx = await deployFixture();
    });

    const byValue = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
    const claimsArb = (owner: Address, now: number) =>
        fc.record({
            age: fc.integer({ min: 0, max: 3600 }),
            validFor: fc.integer({ min: 1, max: 86400 }),
            models: fc.subarray([MODEL_A, MODEL_B], { minLength: 1 }),
            signingKey: uint256,
            encryptionKey: uint256,
            reportHash: uint256,
        }).map(
            (r): AttestationClaims => ({
                registry: fx.registry.address,
                providerOwner: owner,
                issuedAt: now - r.age,
                validUntil: now + r.validFor, // in the future; validUntil - issuedAt stays under the 7-day maximum age
                models: r.models,
                enclave: { signingKey: r.signingKey, encryptionKey: r.encryptionKey, measurement: MEASUREMENT, reportHash: r.reportHash },
            }),
        );

    it('round-trips through the generated layout', () => {
        fc.assert(
            fc.property(claimsArb(testAddress(1), 1_900_000_000), (claims) => {
                const parsed = parseStatement(buildStatement(claims));
                expect(parsed.providerOwner.equals(claims.providerOwner)).toBe(true);
                expect(parsed.issuedAt).toBe(BigInt(claims.issuedAt));
                expect(parsed.validUntil).toBe(BigInt(claims.validUntil));
                expect(parsed.enclave.signingKey).toBe(claims.enclave.signingKey);
                expect(parsed.enclave.reportHash).toBe(claims.enclave.reportHash);
                expect([...parsed.models.keys()].sort(byValue)).toEqual([...claims.models].sort(byValue));
            }),
            { numRuns: 200 },
        );
    });

    it('the Registry accepts every statement TypeScript signs, and TypeScript verifies it the same way', async () => {
        let n = 0;
        await fc.assert(
            fc.asyncProperty(fc.integer({ min: 0, max: 1 << 30 }), async (seed) => {
                const owner = await fx.blockchain.treasury(`owner-${n++}-${seed}`);
                const claims = fc.sample(claimsArb(owner.address, fx.blockchain.now!), { numRuns: 1, seed })[0];
                const signed = signStatement(claims, fx.verifier);
                const st = verifyStatement(signed, {
                    registry: fx.registry.address,
                    providerOwner: owner.address,
                    now: fx.blockchain.now!,
                    maxAge: Number(fx.params.attestationMaxAge),
                });
                expect(st.enclave.signingKey).toBe(claims.enclave.signingKey);
                const r = await sendRegister(fx, owner, signed);
                expect(r.transactions).toHaveTransaction({ from: fx.registry.address, deploy: true, success: true });
                const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
                const info = await provider.getInfo();
                expect(info.status).toBe(STATUS_ACTIVE);
                expect(info.enclave.encryptionKey).toBe(claims.enclave.encryptionKey);
            }),
            { numRuns: 15 },
        );
    });

    it('changing any bit of a signed statement makes both TypeScript and the Registry refuse it', async () => {
        let n = 0;
        await fc.assert(
            fc.asyncProperty(fc.nat(), fc.nat(), async (cellPick, bitPick) => {
                const owner = await fx.blockchain.treasury(`mutant-${n++}`);
                const claims: AttestationClaims = {
                    registry: fx.registry.address,
                    providerOwner: owner.address,
                    issuedAt: fx.blockchain.now! - 10,
                    validUntil: fx.blockchain.now! + 3600,
                    models: [MODEL_A],
                    enclave: { signingKey: 1n, encryptionKey: 2n, measurement: MEASUREMENT, reportHash: 3n },
                };
                const signed = signStatement(claims, fx.verifier);
                const mutated = flipBit(signed.statement, cellPick, bitPick);
                expect(verifyHash(mutated.hash(), signed.signature, signed.verifierKey)).toBe(false);
                expect(() =>
                    verifyStatement(
                        { ...signed, statement: mutated },
                        { registry: fx.registry.address, providerOwner: owner.address, now: fx.blockchain.now!, maxAge: 86400 * 7 },
                    ),
                ).toThrow(AttestationError);
                const r = await sendRegister(fx, owner, { ...signed, statement: mutated });
                expect(r.transactions).toHaveTransaction({ to: fx.registry.address, success: false, exitCode: Number(ERR_BAD_SIGNATURE) });
            }),
            { numRuns: 15 },
        );
    });

    it('survives its JSON file form and rejects malformed files', () => {
        const signed = signStatement(
            {
                registry: testAddress(1),
                providerOwner: testAddress(2),
                issuedAt: 100,
                validUntil: 200,
                models: [MODEL_A],
                enclave: { signingKey: 1n, encryptionKey: 2n, measurement: 3n, reportHash: 4n },
            },
            testKey('verifier'),
        );
        const back = signedStatementFromJson(signedStatementToJson(signed));
        expect(back.statement.equals(signed.statement)).toBe(true);
        expect(back.signature.equals(signed.signature)).toBe(true);
        expect(back.verifierKey).toBe(signed.verifierKey);
        expect(() => signedStatementFromJson({ ...signedStatementToJson(signed), signature: 'zz' })).toThrow(AttestationError);
        expect(() => signedStatementFromJson({ ...signedStatementToJson(signed), verifierKey: '00' })).toThrow(AttestationError);
        expect(() => buildStatement({ ...sampleClaims(), models: [] })).toThrow(AttestationError);
        expect(() => buildStatement({ ...sampleClaims(), validUntil: 100 })).toThrow(AttestationError);
    });

    it('Node ed25519 keys match the TVM convention (public key as uint256, signature over the hash)', () => {
        const kp = keyPairFromSeed(Buffer.alloc(32, 9));
        const again = keyPairFromSeed(Buffer.alloc(32, 9));
        expect(kp.publicKey.equals(again.publicKey)).toBe(true);
        expect(kp.publicKeyInt).toBe(BigInt('0x' + kp.publicKey.toString('hex')));
        const hash = Buffer.alloc(32, 1);
        const sig = signHash(hash, kp);
        expect(verifyHash(hash, sig, kp.publicKeyInt)).toBe(true);
        expect(verifyHash(hash, sig, randomKeyPair().publicKey)).toBe(false);
        // Cross-check with @ton/crypto's tweetnacl implementation.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const tc = require('@ton/crypto') as typeof import('@ton/crypto');
        const nacl = tc.keyPairFromSeed(Buffer.alloc(32, 9));
        expect(Buffer.from(nacl.publicKey).equals(kp.publicKey)).toBe(true);
        expect(tc.signVerify(hash, sig, nacl.publicKey)).toBe(true);
    });
});

function sampleClaims(): AttestationClaims {
    return {
        registry: testAddress(1),
        providerOwner: testAddress(2),
        issuedAt: 100,
        validUntil: 200,
        models: [MODEL_A],
        enclave: { signingKey: 1n, encryptionKey: 2n, measurement: 3n, reportHash: 4n },
    };
}

function testAddress(n: number): Address {
    return new Address(0, Buffer.alloc(32, n));
}

/** Flips one data bit in one cell of the tree (cells picked in depth-first order). */
function flipBit(root: Cell, cellPick: number, bitPick: number): Cell {
    const cells: Cell[] = [];
    const walk = (c: Cell) => {
        if (c.bits.length > 0) cells.push(c);
        c.refs.forEach(walk);
    };
    walk(root);
    const target = cells[cellPick % cells.length];
    const rebuild = (c: Cell): Cell => {
        const refs = c.refs.map(rebuild);
        const bitIndex = c === target ? bitPick % c.bits.length : -1;
        const b = beginCell();
        for (let i = 0; i < c.bits.length; i++) b.storeBit(i === bitIndex ? !c.bits.at(i) : c.bits.at(i));
        refs.forEach((r) => b.storeRef(r));
        return b.endCell();
    };
    return rebuild(root);
}
