// A child process for the job store's crash test (tests/store.spec.ts). It
// opens the store and records a deterministic series of jobs, printing
// `ack <i> <inserted 0|1> <stored receipt hash hex>` only after recordSigned
// returned, until it is SIGKILLed or runs out of jobs. Two variants, A and B,
// sign DIFFERENT receipts for the same jobs, so a race between them shows
// whether the store ever keeps two receipts for one job or replaces one.
//
// Run: node -r ts-node/register/transpile-only storeCrashChild.ts DB SEED_HEX VARIANT FROM TO
// (the test runs a copy transpiled once, to start nine children quickly).
import { createHash } from 'crypto';
import { Address } from '@ton/core';
import { Ed25519KeyPair, keyPairFromSeed } from '../../wrappers/ed25519';
import { signReceipt } from '../../wrappers/receipt';
import { JobStore, SignedJob } from '../../runner/store';

/** Which of the two conflicting receipt series a child signs. */
export type CrashVariant = 'A' | 'B';

const sha = (label: string): Buffer => createHash('sha256').update(`chrysalis-store-crash:${label}`).digest();
const MODEL = BigInt('0x' + sha('model').toString('hex'));
const MAX_COINS = (1n << 120n) - 1n;

/** The escrow and engageId of crash job `i`: two openings per escrow, engageIds above 2^63 to exercise uint64. */
export function crashJobKey(i: number): { escrow: Address; engageId: bigint } {
    return { escrow: new Address(0, sha(`escrow-${Math.floor(i / 2)}`)), engageId: (1n << 63n) + BigInt(i) };
}

/** Job `i` as variant `variant` signs it: same job, different response and amount per variant, so a different receipt. */
export function crashJob(i: number, variant: CrashVariant, enclave: Ed25519KeyPair): SignedJob {
    const { escrow, engageId } = crashJobKey(i);
    const sealedResponse = Buffer.concat([sha(`response-${variant}-${i}`), sha(`response-tail-${i}`)]);
    const fields = {
        escrow,
        engageId,
        requestHash: BigInt('0x' + sha(`request-${i}`).toString('hex')),
        responseHash: BigInt('0x' + createHash('sha256').update(sealedResponse).digest('hex')),
        modelHash: MODEL,
        inputUnits: BigInt(i),
        outputUnits: BigInt(2 * i + 1),
        amount: variant === 'A' ? MAX_COINS - BigInt(i) : BigInt(i),
        finishedAt: 1_800_000_000 + i,
    };
    const { receipt, signature } = signReceipt(fields, enclave);
    return {
        escrow,
        engageId,
        requestHash: fields.requestHash,
        modelHash: MODEL,
        clientKey: sha(`client-${i}`),
        sealedResponse,
        receipt,
        signature,
        amount: fields.amount,
        inputUnits: fields.inputUnits,
        outputUnits: fields.outputUnits,
        finishedAt: fields.finishedAt,
    };
}

function main(argv: string[]): void {
    const [dbPath, seedHex, variant, fromText, toText] = argv;
    if (variant !== 'A' && variant !== 'B') throw new Error(`variant must be A or B, got ${variant}`);
    const enclave = keyPairFromSeed(Buffer.from(seedHex, 'hex'));
    const store = JobStore.open(dbPath, { enclaveKey: enclave.publicKey });
    // Writes to a pipe are synchronous on Linux: a line written is the parent's even if we die next.
    process.stdout.write('ready\n');
    for (let i = Number(fromText); i < Number(toText); i++) {
        const { record, inserted } = store.recordSigned(crashJob(i, variant, enclave), 1_800_000_000 + i);
        process.stdout.write(`ack ${i} ${inserted ? 1 : 0} ${record.receipt.hash().toString('hex')}\n`);
    }
    store.close();
    process.stdout.write('done\n');
}

if (require.main === module) main(process.argv.slice(2));
