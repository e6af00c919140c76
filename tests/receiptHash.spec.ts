// The fast receipt hash (wrappers/receipt.ts, receiptHashOf) writes the cell
// representation by hand; these properties prove it is the same hash as the
// cell built through the generated storer, that what it signs verifies as a
// signed receipt cell, and that both paths refuse the same out-of-range fields.
import fc from 'fast-check';
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { keyPairFromSeed, verifyHash } from '../wrappers/ed25519';
import {
    buildReceipt,
    receiptHashOf,
    ReceiptError,
    ReceiptFields,
    signReceipt,
    signReceiptHash,
    verifyReceipt,
    verifyReceiptSignature,
} from '../wrappers/receipt';

// Thousands of runs each: seconds on a quiet core, more on the shared CI cores.
jest.setTimeout(60_000);

const enclave = keyPairFromSeed(createHash('sha256').update('chrysalis-test:receipt-hash:enclave').digest());
const stranger = keyPairFromSeed(createHash('sha256').update('chrysalis-test:receipt-hash:stranger').digest());

const U32_MAX = 2 ** 32 - 1;
const U64_MAX = (1n << 64n) - 1n;
const U256_MAX = (1n << 256n) - 1n;
const COINS_MAX = (1n << 120n) - 1n;

/** Unsigned integers of `bits` bits, weighted towards the edges and spread over every bit length. */
const uint = (bits: number): fc.Arbitrary<bigint> => {
    const max = (1n << BigInt(bits)) - 1n;
    return fc.oneof(
        fc.constantFrom(0n, 1n, max - 1n, max),
        fc.bigInt({ min: 0n, max }),
        fc.integer({ min: 1, max: bits }).chain((b) => fc.bigInt({ min: 1n << BigInt(b - 1), max: (1n << BigInt(b)) - 1n })),
    );
};

/** Coins of every byte length 0..15, with each length's bounds. */
const coins: fc.Arbitrary<bigint> = fc.oneof(
    fc.constantFrom(0n, 1n, COINS_MAX),
    fc.integer({ min: 1, max: 15 }).chain((len) => {
        const lo = 1n << BigInt(8 * (len - 1));
        const hi = (1n << BigInt(8 * len)) - 1n;
        return fc.oneof(fc.constantFrom(lo, hi), fc.bigInt({ min: lo, max: hi }));
    }),
);

const address: fc.Arbitrary<Address> = fc
    .tuple(
        fc.constantFrom(0, -1),
        fc.oneof(fc.constantFrom(Buffer.alloc(32, 0), Buffer.alloc(32, 0xff)), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b))),
    )
    .map(([wc, hash]) => new Address(wc, hash));

const finishedAt: fc.Arbitrary<number> = fc.oneof(fc.constantFrom(0, 1, U32_MAX), fc.integer({ min: 0, max: U32_MAX }));

const fieldsArb: fc.Arbitrary<ReceiptFields> = fc.record({
    escrow: address,
    engageId: uint(64),
    requestHash: uint(256),
    responseHash: uint(256),
    modelHash: uint(256),
    inputUnits: uint(64),
    outputUnits: uint(64),
    amount: coins,
    finishedAt,
});

const ZERO: ReceiptFields = {
    escrow: new Address(0, Buffer.alloc(32, 0)),
    engageId: 0n,
    requestHash: 0n,
    responseHash: 0n,
    modelHash: 0n,
    inputUnits: 0n,
    outputUnits: 0n,
    amount: 0n,
    finishedAt: 0,
};

const MAX: ReceiptFields = {
    escrow: new Address(-1, Buffer.alloc(32, 0xff)),
    engageId: U64_MAX,
    requestHash: U256_MAX,
    responseHash: U256_MAX,
    modelHash: U256_MAX,
    inputUnits: U64_MAX,
    outputUnits: U64_MAX,
    amount: COINS_MAX,
    finishedAt: U32_MAX,
};

const bigintFields = ['engageId', 'requestHash', 'responseHash', 'modelHash', 'inputUnits', 'outputUnits'] as const;
const widths: Record<(typeof bigintFields)[number], number> = { engageId: 64, requestHash: 256, responseHash: 256, modelHash: 256, inputUnits: 64, outputUnits: 64 };
const fieldNames = ['escrow', ...bigintFields, 'amount', 'finishedAt'] as const;

describe('fast receipt hash', () => {
    it('equals the hash of the cell the generated storer builds', () => {
        fc.assert(
            fc.property(fieldsArb, (f) => {
                expect(receiptHashOf(f).toString('hex')).toBe(buildReceipt(f).hash().toString('hex'));
            }),
            { numRuns: 5000 },
        );
    });

    it('equals it at every field at zero, at its maximum, and at every byte length of the amount', () => {
        const cases: ReceiptFields[] = [ZERO, MAX, { ...ZERO, escrow: MAX.escrow }, { ...MAX, escrow: ZERO.escrow }];
        for (const name of fieldNames) cases.push({ ...ZERO, [name]: MAX[name] }, { ...MAX, [name]: ZERO[name] });
        for (let len = 0; len <= 15; len++) {
            const top = (1n << BigInt(8 * len)) - 1n;
            cases.push({ ...ZERO, amount: top }, { ...MAX, amount: top }, { ...ZERO, amount: top + 1n > COINS_MAX ? top : top + 1n });
        }
        for (const f of cases) expect([f, receiptHashOf(f).toString('hex')]).toEqual([f, buildReceipt(f).hash().toString('hex')]);
    });

    it('leaves nothing behind in its buffers between calls', () => {
        // The child's length follows the amount's: a long amount, then a short one, then the long one again.
        const long: ReceiptFields = { ...MAX };
        const short: ReceiptFields = { ...ZERO, amount: 1n };
        const first = receiptHashOf(long);
        expect(receiptHashOf(short).equals(buildReceipt(short).hash())).toBe(true);
        expect(receiptHashOf(long).equals(first)).toBe(true);
        // The returned hash is the caller's: a later call does not overwrite it.
        expect(first.equals(buildReceipt(long).hash())).toBe(true);
    });

    it('signs what signReceipt signs, and the signature verifies over the cell', () => {
        fc.assert(
            fc.property(fieldsArb, (f) => {
                const fast = signReceiptHash(f, enclave);
                const cell = buildReceipt(f);
                expect(fast.hash.equals(cell.hash())).toBe(true);
                expect(verifyHash(cell.hash(), fast.signature, enclave.publicKey)).toBe(true);
                expect(fast.signature.equals(signReceipt(f, enclave).signature)).toBe(true);
                const r = verifyReceipt(
                    { receipt: cell, signature: fast.signature },
                    {
                        enclaveKey: enclave.publicKeyInt,
                        escrow: f.escrow,
                        engageId: f.engageId,
                        requestHash: f.requestHash,
                        modelHash: f.modelHash,
                        maxAmount: f.amount,
                        deadline: f.finishedAt,
                    },
                );
                expect([r.amount, r.responseHash, r.finishedAt]).toEqual([f.amount, f.responseHash, BigInt(f.finishedAt)]);
                expect(verifyReceiptSignature(f, fast.signature, enclave.publicKey)).toBe(true);
                expect(verifyReceiptSignature(f, fast.signature, enclave.publicKeyInt)).toBe(true);
            }),
            { numRuns: 300 },
        );
    });

    /** A field set to a value no slot of its type holds. */
    const outOfRange: fc.Arbitrary<[string, ReceiptFields]> = fc.tuple(fieldsArb, fc.boolean(), fc.bigInt({ min: 0n, max: 1n << 300n })).chain(([f, below, extra]) =>
        fc.constantFrom(...bigintFields, 'amount' as const, 'finishedAt' as const).map((name): [string, ReceiptFields] => {
            if (name === 'finishedAt') {
                const bad = below ? -1 - Number(extra % 1000n) : U32_MAX + 1 + Number(extra % 1000n);
                return [name, { ...f, finishedAt: bad }];
            }
            const limit = name === 'amount' ? 1n << 120n : 1n << BigInt(widths[name]);
            return [name, { ...f, [name]: below ? -1n - extra : limit + extra }];
        }),
    );

    it('refuses out-of-range fields with ReceiptError on both paths', () => {
        fc.assert(
            fc.property(outOfRange, ([, f]) => {
                expect(() => receiptHashOf(f)).toThrow(ReceiptError);
                expect(() => signReceiptHash(f, enclave)).toThrow(ReceiptError);
                expect(() => verifyReceiptSignature(f, Buffer.alloc(64), enclave.publicKey)).toThrow(ReceiptError);
                expect(() => buildReceipt(f)).toThrow(ReceiptError);
                expect(() => signReceipt(f, enclave)).toThrow(ReceiptError);
            }),
            { numRuns: 1000 },
        );
        for (const bad of [0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
            expect(() => receiptHashOf({ ...ZERO, finishedAt: bad })).toThrow(ReceiptError);
            expect(() => buildReceipt({ ...ZERO, finishedAt: bad })).toThrow(ReceiptError);
        }
    });

    it('refuses an escrow outside workchains 0 and -1', () => {
        for (const wc of [1, 5, 127, -2, -128]) {
            expect(() => receiptHashOf({ ...ZERO, escrow: new Address(wc, Buffer.alloc(32, 7)) })).toThrow(ReceiptError);
        }
    });

    /** The fields with one of them changed to another value of its type. */
    const changedOne: fc.Arbitrary<[ReceiptFields, string, ReceiptFields]> = fc
        .tuple(fieldsArb, fc.constantFrom(...fieldNames), fc.bigInt({ min: 1n, max: U256_MAX }), fc.integer({ min: 0, max: 255 }), coins)
        .map(([f, name, mask, bit, amount]): [ReceiptFields, string, ReceiptFields] => {
            const changed: ReceiptFields = { ...f };
            switch (name) {
                case 'escrow': {
                    // A bit of the hash, or (bit 255 standing in for it) the workchain.
                    if (bit === 255) {
                        changed.escrow = new Address(f.escrow.workChain === 0 ? -1 : 0, f.escrow.hash);
                    } else {
                        const hash = Buffer.from(f.escrow.hash);
                        hash[bit >> 3] ^= 0x80 >> (bit & 7);
                        changed.escrow = new Address(f.escrow.workChain, hash);
                    }
                    break;
                }
                case 'amount':
                    changed.amount = amount === f.amount ? (amount === 0n ? 1n : amount - 1n) : amount;
                    break;
                case 'finishedAt': {
                    const m = Number(mask & 0xffffffffn) || 1;
                    changed.finishedAt = (f.finishedAt ^ m) >>> 0;
                    break;
                }
                default: {
                    const m = mask & ((1n << BigInt(widths[name])) - 1n);
                    changed[name] = f[name] ^ (m === 0n ? 1n : m);
                }
            }
            return [f, name, changed];
        });

    it('verifyReceiptSignature rejects a signature once any field changes', () => {
        fc.assert(
            fc.property(changedOne, ([f, name, changed]) => {
                const { signature } = signReceiptHash(f, enclave);
                expect(verifyReceiptSignature(f, signature, enclave.publicKeyInt)).toBe(true);
                expect({ name, ok: verifyReceiptSignature(changed, signature, enclave.publicKeyInt) }).toEqual({ name, ok: false });
                expect({ name, ok: verifyReceiptSignature(changed, signature, enclave.publicKey) }).toEqual({ name, ok: false });
            }),
            { numRuns: 500 },
        );
    });

    it('verifyReceiptSignature rejects another key and a damaged signature without throwing', () => {
        fc.assert(
            fc.property(fieldsArb, fc.integer({ min: 0, max: 511 }), (f, bit) => {
                const { signature } = signReceiptHash(f, enclave);
                expect(verifyReceiptSignature(f, signature, stranger.publicKey)).toBe(false);
                const damaged = Buffer.from(signature);
                damaged[bit >> 3] ^= 0x80 >> (bit & 7);
                expect(verifyReceiptSignature(f, damaged, enclave.publicKey)).toBe(false);
                expect(verifyReceiptSignature(f, signature.subarray(0, 63), enclave.publicKey)).toBe(false);
            }),
            { numRuns: 200 },
        );
    });
});
