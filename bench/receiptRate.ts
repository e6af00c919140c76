// The `runner` receipt figures of bench/run.ts, measured on one core (this
// process): bare ed25519 sign and verify of a 32-byte hash, against receipts
// hashed and signed / hashed and verified through the fast path of
// wrappers/receipt.ts. Node's ed25519 speed varies with the machine and its
// load, so the figures that matter are the ratios to the bare operations.
// Against the noise of a shared machine: time is this process's CPU time
// (user + system), not wall time, so waiting for a core does not count; each
// round runs every workload in short chunks, interleaved, in alternating order;
// each figure is the median over the rounds (a ratio: the median of each
// round's own ratio, measured over the same stretch of time).
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { Ed25519KeyPair, keyPairFromSeed, signHash, verifyHash } from '../wrappers/ed25519';
import { buildReceipt, ReceiptFields, receiptHashOf, signReceipt, signReceiptHash, verifyReceiptSignature } from '../wrappers/receipt';

/** Medians over the rounds of one measureReceiptRates run. */
export interface ReceiptRates {
    /** Bare ed25519 signatures over a 32-byte hash per second (wrappers/ed25519.ts signHash). */
    ed25519SignPerSecond: number;
    /** Bare ed25519 verifications of a signature over a 32-byte hash per second (verifyHash). */
    ed25519VerifyPerSecond: number;
    /** Receipts hashed (receiptHashOf) and signed per second: signReceiptHash, fields new each time. */
    receiptsSignedPerSecond: number;
    /** Receipts hashed and their signatures verified per second: verifyReceiptSignature. */
    receiptsVerifiedPerSecond: number;
    /** Median of each round's receiptsSigned / ed25519Sign. */
    signedToBareSign: number;
    /** Median of each round's receiptsVerified / ed25519Verify. */
    verifiedToBareVerify: number;
    /** For comparison: signReceipt, which builds the cell with @ton/core, hashes and signs it. */
    genericSignedPerSecond: number;
    /** For comparison: buildReceipt(fields).hash() alone. */
    genericHashedPerSecond: number;
    /** For comparison: receiptHashOf(fields) alone. */
    fastHashedPerSecond: number;
    rounds: number;
    /** CPU time per workload per round, in chunks of CHUNK_MS. */
    sliceMs: number;
}

type Workload = (i: number) => void;

const POOL = 1024; // pre-signed inputs for the verify workloads, cycled
const CHUNK_MS = 25; // short enough that a burst of load elsewhere hits every workload alike

const seeded = (label: string): Ed25519KeyPair => keyPairFromSeed(createHash('sha256').update(`chrysalis-bench:${label}`).digest());

/** Receipt fields that differ in several fields for every i, as a runner's successive requests would. */
function fieldsFor(i: number, escrow: Address): ReceiptFields {
    const n = BigInt(i);
    return {
        escrow,
        engageId: 7n,
        requestHash: 0x5eed_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000n + n,
        responseHash: 0xa11ce_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000n ^ (n << 17n),
        modelHash: 0x30de1_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000n,
        inputUnits: BigInt(100 + (i & 0xfff)),
        outputUnits: BigInt(400 + (i & 0xffff)),
        amount: 1_000_000n + n * 997n, // crosses byte lengths as i grows
        finishedAt: 1_800_000_000 + (i & 0xffff),
    };
}

/** CPU time this process has used, in microseconds. */
function cpuMicros(): number {
    const u = process.cpuUsage();
    return u.user + u.system;
}

/** Runs `work` from index start for about ms of CPU time, in batches so the clock is read rarely: [operations, CPU microseconds]. */
function chunk(work: Workload, ms: number, start: number): [number, number] {
    const BATCH = 16;
    const t0 = cpuMicros();
    const limit = ms * 1000;
    let i = start;
    let used = 0;
    do {
        for (const end = i + BATCH; i < end; i++) work(i);
        used = cpuMicros() - t0;
    } while (used < limit);
    return [i - start, used];
}

function median(values: number[]): number {
    const s = [...values].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Measures the receipt workloads: `rounds` rounds (after one warm-up round
 * that is discarded) of about sliceMs of CPU time per workload. Throws if any workload
 * produces a result that does not check out, so a broken fast path cannot
 * post a figure.
 */
export function measureReceiptRates(rounds = 7, sliceMs = 250): ReceiptRates {
    const enclave = seeded('runner-enclave');
    const escrow = new Address(0, createHash('sha256').update('chrysalis-bench:escrow').digest());

    // Inputs for the verify workloads: signed outside the timed loops.
    const hashes: Buffer[] = [];
    const hashSigs: Buffer[] = [];
    const receipts: ReceiptFields[] = [];
    const receiptSigs: Buffer[] = [];
    for (let k = 0; k < POOL; k++) {
        const h = createHash('sha256').update(`chrysalis-bench:hash:${k}`).digest();
        hashes.push(h);
        hashSigs.push(signHash(h, enclave));
        const f = fieldsFor(1_000_000 + k, escrow);
        receipts.push(f);
        receiptSigs.push(signReceiptHash(f, enclave).signature);
        if (!receiptHashOf(f).equals(buildReceipt(f).hash())) throw new Error('receiptHashOf disagrees with the cell hash');
    }

    // Results feed `sink` so no work is optimised away; `failures` counts verifications that did not pass.
    let sink = 0;
    let failures = 0;
    const toSign = Buffer.alloc(32);
    const workloads: Record<string, Workload> = {
        sign: (i) => {
            toSign.writeUInt32BE(i >>> 0, 0);
            sink ^= signHash(toSign, enclave)[0];
        },
        receiptSign: (i) => {
            sink ^= signReceiptHash(fieldsFor(i, escrow), enclave).signature[0];
        },
        verify: (i) => {
            const k = i & (POOL - 1);
            if (!verifyHash(hashes[k], hashSigs[k], enclave.publicKey)) failures++;
        },
        receiptVerify: (i) => {
            const k = i & (POOL - 1);
            if (!verifyReceiptSignature(receipts[k], receiptSigs[k], enclave.publicKey)) failures++;
        },
        genericSign: (i) => {
            sink ^= signReceipt(fieldsFor(i, escrow), enclave).signature[0];
        },
        genericHash: (i) => {
            sink ^= buildReceipt(fieldsFor(i, escrow)).hash()[0];
        },
        fastHash: (i) => {
            sink ^= receiptHashOf(fieldsFor(i, escrow))[0];
        },
    };
    const names = Object.keys(workloads);
    const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const reversed = [...names].reverse();
    const chunks = Math.max(1, Math.round(sliceMs / CHUNK_MS));
    let counter = 0;
    for (let round = -1; round < rounds; round++) {
        const ops: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
        const micros: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
        for (let c = 0; c < (round < 0 ? 2 : chunks); c++) {
            // Alternate the order so neither side of a ratio always runs first (or just after the same neighbour).
            for (const name of c % 2 === 0 ? names : reversed) {
                const [n, us] = chunk(workloads[name], CHUNK_MS, counter);
                counter += n; // fresh fields and hashes in every chunk
                ops[name] += n;
                micros[name] += us;
            }
        }
        if (round >= 0) for (const name of names) samples[name].push((ops[name] * 1e6) / micros[name]);
    }
    if (failures !== 0) throw new Error(`${failures} verifications failed in the bench`);
    if (sink < 0) console.log(sink); // never true (bytes XORed); keeps sink live

    const ratio = (a: string, b: string) => median(samples[a].map((v, k) => v / samples[b][k]));
    return {
        ed25519SignPerSecond: median(samples.sign),
        ed25519VerifyPerSecond: median(samples.verify),
        receiptsSignedPerSecond: median(samples.receiptSign),
        receiptsVerifiedPerSecond: median(samples.receiptVerify),
        signedToBareSign: ratio('receiptSign', 'sign'),
        verifiedToBareVerify: ratio('receiptVerify', 'verify'),
        genericSignedPerSecond: median(samples.genericSign),
        genericHashedPerSecond: median(samples.genericHash),
        fastHashedPerSecond: median(samples.fastHash),
        rounds,
        sliceMs,
    };
}
