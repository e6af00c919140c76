// The runner's job store: every method and status transition (refusals
// included), exact bigints, reopening, identity and schema checks, and a crash
// test in which child processes recording jobs (two of them racing with
// different receipts for the same jobs) are SIGKILLed at random moments: no
// acknowledged receipt is lost, no job ever holds two receipts, and the
// receipt kept is always the first one recorded.
import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join, relative, resolve } from 'path';
import Database from 'better-sqlite3';
import * as ts from 'typescript';
import { Address, beginCell, Cell } from '@ton/core';
import { Ed25519KeyPair, keyPairFromSeed, verifyHash } from '../wrappers/ed25519';
import { ReceiptFields, signReceipt } from '../wrappers/receipt';
import { JobStore, SignedJob, StoreError, StoreErrorCode } from '../runner/store';
import { crashJob, crashJobKey, CrashVariant } from './helpers/storeCrashChild';

const sha = (label: string): Buffer => createHash('sha256').update(`chrysalis-store-test:${label}`).digest();
const hashInt = (label: string): bigint => BigInt('0x' + sha(label).toString('hex'));
const enclave = keyPairFromSeed(sha('enclave'));
const other = keyPairFromSeed(sha('other enclave'));
const NOW = 1_800_000_000;
const MAX_COINS = (1n << 120n) - 1n;
const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_UINT256 = (1n << 256n) - 1n;

const escrowA = new Address(0, sha('escrow A'));
const escrowB = new Address(-1, sha('escrow B'));

/** A consistent signed job; `over` changes receipt fields, `response` the sealed response. */
function makeJob(over: Partial<ReceiptFields> = {}, opts: { response?: string; key?: Ed25519KeyPair } = {}): SignedJob {
    const sealedResponse = Buffer.from(opts.response ?? 'sealed response bytes');
    const fields: ReceiptFields = {
        escrow: escrowA,
        engageId: 7n,
        requestHash: hashInt('request'),
        responseHash: BigInt('0x' + createHash('sha256').update(sealedResponse).digest('hex')),
        modelHash: hashInt('model'),
        inputUnits: 12n,
        outputUnits: 34n,
        amount: 1_000_000n,
        finishedAt: NOW,
        ...over,
    };
    const { receipt, signature } = signReceipt(fields, opts.key ?? enclave);
    return {
        escrow: fields.escrow,
        engageId: fields.engageId,
        requestHash: fields.requestHash,
        modelHash: fields.modelHash,
        clientKey: sha('client key'),
        sealedResponse,
        receipt,
        signature,
        amount: fields.amount,
        inputUnits: fields.inputUnits,
        outputUnits: fields.outputUnits,
        finishedAt: fields.finishedAt,
    };
}

function expectStoreError(fn: () => unknown, code: StoreErrorCode, message?: RegExp): void {
    let caught: unknown;
    try {
        fn();
    } catch (e) {
        caught = e;
    }
    expect(caught).toBeInstanceOf(StoreError);
    const err = caught as StoreError;
    expect(err.name).toBe('StoreError');
    expect(err.code).toBe(code);
    if (message) expect(err.message).toMatch(message);
}

/**
 * A job or record in a form deep equality can compare: Address and Cell carry
 * per-instance closures, so they go to their raw string and BOC.
 */
function plain<T extends object>(value: T | undefined): Record<string, unknown> | undefined {
    if (value === undefined) return undefined;
    return Object.fromEntries(
        Object.entries(value).map(([k, v]) => {
            if (v instanceof Address) return [k, v.toRawString()];
            if (v instanceof Cell) return [k, v.toBoc().toString('hex')];
            return [k, Buffer.isBuffer(v) ? v.toString('hex') : v];
        }),
    );
}

/** The store's own connection, to check settings that only exist per connection. */
const connectionOf = (store: JobStore): Database.Database => (store as unknown as { db: Database.Database }).db;

describe('JobStore', () => {
    let dir: string;
    let path: string;
    const open: JobStore[] = [];
    const openStore = (p = path, key: Buffer = enclave.publicKey): JobStore => {
        const s = JobStore.open(p, { enclaveKey: key });
        open.push(s);
        return s;
    };

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), 'chrysalis-store-'));
        path = join(dir, 'jobs.db');
    });
    afterEach(() => {
        for (const s of open.splice(0)) s.close();
        rmSync(dir, { recursive: true, force: true });
    });

    describe('opening', () => {
        it('uses WAL, synchronous=FULL, foreign keys and a busy timeout, and records schema version 1 and the enclave key', () => {
            const db = connectionOf(openStore());
            expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
            expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
            expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
            expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(1000);
            const meta = Object.fromEntries((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
            expect(meta).toEqual({ schema_version: '1', enclave_key: enclave.publicKey.toString('hex') });
        });

        it('works in memory', () => {
            const s = openStore(':memory:');
            expect(s.recordSigned(makeJob(), NOW).inserted).toBe(true);
            expect(s.counts()).toEqual({ signed: 1, submitted: 0, released: 0, closed: 0 });
        });

        it('refuses a store created for another enclave key, and keeps it intact', () => {
            const s = openStore();
            s.recordSigned(makeJob(), NOW);
            s.close();
            expectStoreError(() => openStore(path, other.publicKey), 'wrong-key', /belongs to enclave key/);
            expect(openStore().get(escrowA, 7n)).toBeDefined();
        });

        it('refuses an enclave key that is not 32 bytes', () => {
            expectStoreError(() => openStore(path, Buffer.alloc(31)), 'invalid-argument', /32 bytes/);
        });

        it('refuses an unknown schema version, a SQLite file that is not a job store, and a file that is not SQLite', () => {
            openStore().close();
            const raw = new Database(path);
            raw.prepare("UPDATE meta SET value = '2' WHERE key = 'schema_version'").run();
            raw.close();
            expectStoreError(() => openStore(), 'schema', /version 2/);

            const foreign = join(dir, 'foreign.db');
            const f = new Database(foreign);
            f.exec('CREATE TABLE t (x INTEGER)');
            f.close();
            expectStoreError(() => openStore(foreign), 'schema', /not a Chrysalis job store/);

            const junk = join(dir, 'junk.db');
            writeFileSync(junk, Buffer.alloc(4096, 0x5a));
            expectStoreError(() => openStore(junk), 'sqlite');
        });

        it('keeps everything across close and reopen', () => {
            const s = openStore();
            const j1 = makeJob({ engageId: 1n });
            const j2 = makeJob({ escrow: escrowB, engageId: MAX_UINT64, amount: MAX_COINS, requestHash: MAX_UINT256 }, { response: 'second' });
            s.recordSigned(j1, NOW);
            s.recordSigned(j2, NOW + 1);
            s.noteSubmitAttempt(escrowA, 1n, NOW + 2);
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 3);
            s.setCursor('provider', 123_456_789_012_345_678_901n);
            s.noteEngaged({ escrow: escrowA, engageId: 99n, seenAt: NOW + 4 });
            const before = [s.get(escrowA, 1n), s.get(escrowB, MAX_UINT64)].map(plain);
            s.close();

            const again = openStore();
            const after = [again.get(escrowA, 1n), again.get(escrowB, MAX_UINT64)];
            expect(after.map(plain)).toEqual(before);
            expect(before[0]).toBeDefined();
            expect(after[0]!.receipt.hash().equals(j1.receipt.hash())).toBe(true);
            expect(after[0]).toMatchObject({ status: 'submitted', submitAttempts: 1, lastSubmitAt: NOW + 2, releaseAt: NOW + 100 });
            expect(after[0]).toMatchObject({ createdAt: NOW, updatedAt: NOW + 3 });
            expect(after[1]!.amount).toBe(MAX_COINS);
            expect(again.counts()).toEqual({ signed: 1, submitted: 1, released: 0, closed: 0 });
            expect(again.getCursor('provider')).toBe(123_456_789_012_345_678_901n);
            expect(again.engagedAwaiting().map(plain)).toEqual([plain({ escrow: escrowA, engageId: 99n, seenAt: NOW + 4 })]);
        });
    });

    describe('recordSigned', () => {
        it('stores the job with every field exact, as signed', () => {
            const s = openStore();
            const job = makeJob();
            const { record, inserted } = s.recordSigned(job, NOW + 5);
            expect(inserted).toBe(true);
            expect(plain(record)).toEqual(plain({
                ...job,
                status: 'signed',
                submitAttempts: 0,
                lastSubmitAt: null,
                releaseAt: null,
                outcome: null,
                createdAt: NOW + 5,
                updatedAt: NOW + 5,
            }));
            expect(record.escrow.equals(escrowA)).toBe(true);
            expect(record.receipt.hash().equals(job.receipt.hash())).toBe(true);
            expect(plain(s.get(escrowA, 7n))).toEqual(plain(record));
        });

        it('round-trips bigints at their limits exactly (coins to 2^120-1, uint64, uint256), stored as decimal text', () => {
            const s = openStore();
            const job = makeJob({
                engageId: MAX_UINT64,
                amount: MAX_COINS,
                inputUnits: MAX_UINT64,
                outputUnits: MAX_UINT64 - 1n,
                requestHash: MAX_UINT256,
                modelHash: MAX_UINT256 - 12345n,
            });
            s.recordSigned(job, NOW);
            const r = openStore().get(escrowA, MAX_UINT64)!;
            expect([r.engageId, r.amount, r.inputUnits, r.outputUnits, r.requestHash, r.modelHash]).toEqual([
                MAX_UINT64,
                MAX_COINS,
                MAX_UINT64,
                MAX_UINT64 - 1n,
                MAX_UINT256,
                MAX_UINT256 - 12345n,
            ]);
            const raw = connectionOf(s).prepare('SELECT amount, engage_id, request_hash FROM jobs').get() as Record<string, string>;
            expect(raw).toEqual({ amount: MAX_COINS.toString(), engage_id: MAX_UINT64.toString(), request_hash: MAX_UINT256.toString() });
        });

        it('keeps the first receipt for a job: a different one later is not stored, and the first comes back', () => {
            const s = openStore();
            const first = makeJob({ amount: 5n }, { response: 'first' });
            const second = makeJob({ amount: 6n }, { response: 'second' });
            expect(first.receipt.hash().equals(second.receipt.hash())).toBe(false);
            s.recordSigned(first, NOW);
            const again = s.recordSigned(second, NOW + 10);
            expect(again.inserted).toBe(false);
            expect(again.record.receipt.hash().equals(first.receipt.hash())).toBe(true);
            expect(again.record.signature.equals(first.signature)).toBe(true);
            expect(again.record.sealedResponse.toString()).toBe('first');
            expect(again.record.amount).toBe(5n);
            expect(again.record.createdAt).toBe(NOW);
            // Recording the same receipt again is just as harmless.
            expect(s.recordSigned(first, NOW + 11).inserted).toBe(false);
            expect(s.counts().signed).toBe(1);
        });

        it('keeps jobs of different escrows and different openings of one escrow apart', () => {
            const s = openStore();
            expect(s.recordSigned(makeJob({ engageId: 1n }), NOW).inserted).toBe(true);
            expect(s.recordSigned(makeJob({ engageId: 2n }), NOW).inserted).toBe(true);
            expect(s.recordSigned(makeJob({ escrow: escrowB, engageId: 1n }), NOW).inserted).toBe(true);
            expect(s.counts().signed).toBe(3);
        });

        it('refuses a job that disagrees with its receipt, or a receipt not signed by the enclave, and stores nothing', () => {
            const s = openStore();
            const good = makeJob();
            const cases: [string, SignedJob, RegExp][] = [
                ['escrow', { ...good, escrow: escrowB }, /escrow/],
                ['engageId', { ...good, engageId: 8n }, /engageId/],
                ['requestHash', { ...good, requestHash: good.requestHash + 1n }, /requestHash/],
                ['modelHash', { ...good, modelHash: 1n }, /modelHash/],
                ['amount', { ...good, amount: good.amount + 1n }, /amount/],
                ['inputUnits', { ...good, inputUnits: 0n }, /inputUnits/],
                ['outputUnits', { ...good, outputUnits: 0n }, /outputUnits/],
                ['finishedAt', { ...good, finishedAt: NOW - 1 }, /finishedAt/],
                ['sealedResponse', { ...good, sealedResponse: Buffer.from('another response') }, /responseHash/],
                ['signature by another key', { ...good, signature: makeJob({}, { key: other }).signature }, /enclave key/],
                ['signature of another receipt', { ...good, signature: makeJob({ amount: 1n }).signature }, /enclave key/],
                ['not a receipt', { ...good, receipt: beginCell().storeUint(0xdeadbeef, 32).endCell() }, /not a completion receipt/],
            ];
            for (const [, job, message] of cases) expectStoreError(() => s.recordSigned(job, NOW), 'invalid-argument', message);
            expect(s.counts()).toEqual({ signed: 0, submitted: 0, released: 0, closed: 0 });
            expect(s.recordSigned(good, NOW).inserted).toBe(true);
        });

        it('refuses malformed arguments', () => {
            const s = openStore();
            const good = makeJob();
            expectStoreError(() => s.recordSigned({ ...good, clientKey: Buffer.alloc(31) }, NOW), 'invalid-argument', /clientKey/);
            expectStoreError(() => s.recordSigned({ ...good, signature: Buffer.alloc(63) }, NOW), 'invalid-argument', /signature/);
            expectStoreError(() => s.recordSigned({ ...good, amount: 1n << 120n }, NOW), 'invalid-argument', /amount/);
            expectStoreError(() => s.recordSigned({ ...good, engageId: -1n }, NOW), 'invalid-argument', /engageId/);
            expectStoreError(() => s.recordSigned({ ...good, engageId: 1n << 64n }, NOW), 'invalid-argument', /engageId/);
            expectStoreError(() => s.recordSigned(good, -1), 'invalid-argument', /now/);
            expectStoreError(() => s.recordSigned(good, 1.5), 'invalid-argument', /now/);
            expect(s.get(escrowA, 7n)).toBeUndefined();
        });
    });

    describe('queries', () => {
        it('get returns undefined for an unknown job', () => {
            const s = openStore();
            s.recordSigned(makeJob({ engageId: 1n }), NOW);
            expect(s.get(escrowA, 2n)).toBeUndefined();
            expect(s.get(escrowB, 1n)).toBeUndefined();
        });

        it('latestFor picks the numerically highest engageId of that escrow only', () => {
            const s = openStore();
            expect(s.latestFor(escrowA)).toBeUndefined();
            // 9 > 10 and "9" > "18446744073709551615" as text: the order must be numeric.
            for (const id of [10n, 9n, 2n]) s.recordSigned(makeJob({ engageId: id }), NOW);
            expect(s.latestFor(escrowA)!.engageId).toBe(10n);
            s.recordSigned(makeJob({ engageId: MAX_UINT64 }), NOW);
            s.recordSigned(makeJob({ escrow: escrowB, engageId: 11n }), NOW);
            expect(s.latestFor(escrowA)!.engageId).toBe(MAX_UINT64);
            expect(s.latestFor(escrowB)!.engageId).toBe(11n);
        });

        it('withStatus lists oldest first, by createdAt then insertion order', () => {
            const s = openStore();
            s.recordSigned(makeJob({ engageId: 1n }), NOW + 20);
            s.recordSigned(makeJob({ engageId: 2n }), NOW + 10);
            s.recordSigned(makeJob({ engageId: 3n }), NOW + 20);
            s.recordSigned(makeJob({ engageId: 4n }), NOW + 5);
            expect(s.withStatus('signed').map((r) => r.engageId)).toEqual([4n, 2n, 1n, 3n]);
            s.markSubmitted(escrowA, 2n, NOW + 100, NOW + 30);
            expect(s.withStatus('signed').map((r) => r.engageId)).toEqual([4n, 1n, 3n]);
            expect(s.withStatus('submitted').map((r) => r.engageId)).toEqual([2n]);
            expect(s.withStatus('closed')).toEqual([]);
            expectStoreError(() => s.withStatus('lost' as 'closed'), 'invalid-argument', /unknown job status/);
        });

        it('releasableBy lists submitted jobs whose releaseAt has passed, earliest first, through an index', () => {
            const s = openStore();
            for (const id of [1n, 2n, 3n, 4n]) s.recordSigned(makeJob({ engageId: id }), NOW);
            s.markSubmitted(escrowA, 1n, NOW + 300, NOW);
            s.markSubmitted(escrowA, 2n, NOW + 100, NOW);
            s.markSubmitted(escrowA, 3n, NOW + 200, NOW);
            expect(s.releasableBy(NOW + 99)).toEqual([]);
            expect(s.releasableBy(NOW + 200).map((r) => r.engageId)).toEqual([2n, 3n]);
            s.markReleased(escrowA, 2n, NOW + 201);
            expect(s.releasableBy(NOW + 1000).map((r) => r.engageId)).toEqual([3n, 1n]);
            const plan = connectionOf(s).prepare("EXPLAIN QUERY PLAN SELECT * FROM jobs WHERE status = 'submitted' AND release_at <= 1").all() as { detail: string }[];
            expect(plan.map((p) => p.detail).join(' ')).toMatch(/jobs_by_release/);
        });

        it('counts every status, zeros included', () => {
            const s = openStore();
            expect(s.counts()).toEqual({ signed: 0, submitted: 0, released: 0, closed: 0 });
            for (const id of [1n, 2n, 3n, 4n, 5n]) s.recordSigned(makeJob({ engageId: id }), NOW);
            s.markSubmitted(escrowA, 2n, NOW, NOW);
            s.markSubmitted(escrowA, 3n, NOW, NOW);
            s.markReleased(escrowA, 3n, NOW);
            s.markClosed(escrowA, 4n, 'refunded', NOW);
            expect(s.counts()).toEqual({ signed: 2, submitted: 1, released: 1, closed: 1 });
        });
    });

    describe('status transitions', () => {
        let s: JobStore;
        beforeEach(() => {
            s = openStore();
            s.recordSigned(makeJob({ engageId: 1n }), NOW);
        });

        it('noteSubmitAttempt counts attempts on a signed job and returns the record', () => {
            const r1 = s.noteSubmitAttempt(escrowA, 1n, NOW + 1);
            expect(r1).toMatchObject({ status: 'signed', submitAttempts: 1, lastSubmitAt: NOW + 1, updatedAt: NOW + 1 });
            const r2 = s.noteSubmitAttempt(escrowA, 1n, NOW + 7);
            expect(r2).toMatchObject({ status: 'signed', submitAttempts: 2, lastSubmitAt: NOW + 7 });
            expect(plain(s.get(escrowA, 1n))).toEqual(plain(r2));
        });

        it('noteSubmitAttempt is refused once the receipt is on chain or the job settled', () => {
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 1);
            expectStoreError(() => s.noteSubmitAttempt(escrowA, 1n, NOW + 2), 'bad-transition', /is submitted.*must not be sent again/);
            s.markReleased(escrowA, 1n, NOW + 101);
            expectStoreError(() => s.noteSubmitAttempt(escrowA, 1n, NOW + 102), 'bad-transition', /is released/);
            s.recordSigned(makeJob({ engageId: 2n }), NOW);
            s.markClosed(escrowA, 2n, 'refunded', NOW + 1);
            expectStoreError(() => s.noteSubmitAttempt(escrowA, 2n, NOW + 2), 'bad-transition', /is closed/);
            expect(s.get(escrowA, 1n)!.submitAttempts).toBe(0);
        });

        it('signed -> submitted -> released, with repeats of the same step harmless', () => {
            s.noteSubmitAttempt(escrowA, 1n, NOW + 1);
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 2);
            expect(s.get(escrowA, 1n)).toMatchObject({ status: 'submitted', releaseAt: NOW + 100, submitAttempts: 1, updatedAt: NOW + 2 });
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 3); // a replayed confirmation: no-op
            expect(s.get(escrowA, 1n)!.updatedAt).toBe(NOW + 2);
            s.markReleased(escrowA, 1n, NOW + 101);
            expect(s.get(escrowA, 1n)).toMatchObject({ status: 'released', releaseAt: NOW + 100, updatedAt: NOW + 101, outcome: null });
            s.markReleased(escrowA, 1n, NOW + 102); // no-op
            expect(s.get(escrowA, 1n)!.updatedAt).toBe(NOW + 101);
        });

        it('markSubmitted needs no noted attempt (the client may submit the receipt itself)', () => {
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 2);
            expect(s.get(escrowA, 1n)).toMatchObject({ status: 'submitted', submitAttempts: 0 });
        });

        it('markSubmitted refuses another releaseAt and jobs already released or closed', () => {
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 2);
            expectStoreError(() => s.markSubmitted(escrowA, 1n, NOW + 200, NOW + 3), 'bad-transition', /already submitted with releaseAt/);
            expect(s.get(escrowA, 1n)!.releaseAt).toBe(NOW + 100);
            s.markReleased(escrowA, 1n, NOW + 101);
            expectStoreError(() => s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 103), 'bad-transition', /released: only a signed job/);
            s.recordSigned(makeJob({ engageId: 2n }), NOW);
            s.markClosed(escrowA, 2n, 'refunded', NOW + 1);
            expectStoreError(() => s.markSubmitted(escrowA, 2n, NOW + 100, NOW + 2), 'bad-transition', /closed: only a signed job/);
            expect(s.get(escrowA, 2n)!.status).toBe('closed');
        });

        it('markReleased only from submitted', () => {
            expectStoreError(() => s.markReleased(escrowA, 1n, NOW + 1), 'bad-transition', /is signed: only a submitted job can be released/);
            s.markClosed(escrowA, 1n, 'refunded', NOW + 2);
            expectStoreError(() => s.markReleased(escrowA, 1n, NOW + 3), 'bad-transition', /is closed/);
            expect(s.get(escrowA, 1n)!.status).toBe('closed');
        });

        it('markClosed from signed or submitted with an outcome; the same outcome again is harmless, another is refused', () => {
            s.markClosed(escrowA, 1n, 'refunded', NOW + 5);
            expect(s.get(escrowA, 1n)).toMatchObject({ status: 'closed', outcome: 'refunded', updatedAt: NOW + 5 });
            s.markClosed(escrowA, 1n, 'refunded', NOW + 6);
            expect(s.get(escrowA, 1n)!.updatedAt).toBe(NOW + 5);
            expectStoreError(() => s.markClosed(escrowA, 1n, 'disputed-lost', NOW + 7), 'bad-transition', /already closed as refunded/);

            s.recordSigned(makeJob({ engageId: 2n }), NOW);
            s.markSubmitted(escrowA, 2n, NOW + 100, NOW + 1);
            s.markClosed(escrowA, 2n, 'disputed-lost', NOW + 50);
            expect(s.get(escrowA, 2n)).toMatchObject({ status: 'closed', outcome: 'disputed-lost', releaseAt: NOW + 100 });
            expectStoreError(() => s.markClosed(escrowA, 2n, '', NOW + 51), 'invalid-argument', /outcome/);
        });

        it('markClosed refuses a released job', () => {
            s.markSubmitted(escrowA, 1n, NOW + 100, NOW + 1);
            s.markReleased(escrowA, 1n, NOW + 101);
            expectStoreError(() => s.markClosed(escrowA, 1n, 'refunded', NOW + 102), 'bad-transition', /released: a paid job cannot close/);
            expect(s.get(escrowA, 1n)!.status).toBe('released');
        });

        it('every transition refuses an unknown job and bad times', () => {
            expectStoreError(() => s.noteSubmitAttempt(escrowB, 1n, NOW), 'not-found', /no job -1:/);
            expectStoreError(() => s.markSubmitted(escrowA, 2n, NOW, NOW), 'not-found', /#2 in the store/);
            expectStoreError(() => s.markReleased(escrowA, 2n, NOW), 'not-found');
            expectStoreError(() => s.markClosed(escrowA, 2n, 'refunded', NOW), 'not-found');
            expectStoreError(() => s.markSubmitted(escrowA, 1n, -5, NOW), 'invalid-argument', /releaseAt/);
            expectStoreError(() => s.noteSubmitAttempt(escrowA, 1n, Number.NaN), 'invalid-argument', /at must be/);
            expect(s.get(escrowA, 1n)).toMatchObject({ status: 'signed', submitAttempts: 0 });
        });
    });

    describe('cursors', () => {
        it('are undefined until set, then exact (any bigint), overwritten, and durable', () => {
            const s = openStore();
            expect(s.getCursor('provider')).toBeUndefined();
            s.setCursor('provider', 1n << 70n);
            s.setCursor('registry', -3n);
            expect(s.getCursor('provider')).toBe(1n << 70n);
            s.setCursor('provider', 5n);
            s.close();
            const again = openStore();
            expect(again.getCursor('provider')).toBe(5n);
            expect(again.getCursor('registry')).toBe(-3n);
            expectStoreError(() => again.setCursor('', 1n), 'invalid-argument', /cursor name/);
        });
    });

    describe('engaged escrows', () => {
        it('noteEngaged is new once, keeps the first seenAt, and lists oldest seen first', () => {
            const s = openStore();
            expect(s.engagedAwaiting()).toEqual([]);
            expect(s.noteEngaged({ escrow: escrowA, engageId: 2n, seenAt: NOW + 10 })).toBe(true);
            expect(s.noteEngaged({ escrow: escrowB, engageId: 1n, seenAt: NOW + 5 })).toBe(true);
            expect(s.noteEngaged({ escrow: escrowA, engageId: 2n, seenAt: NOW + 20 })).toBe(false);
            expect(s.noteEngaged({ escrow: escrowA, engageId: 3n, seenAt: NOW + 10 })).toBe(true);
            expect(s.engagedAwaiting().map(plain)).toEqual(
                [
                    { escrow: escrowB, engageId: 1n, seenAt: NOW + 5 },
                    { escrow: escrowA, engageId: 2n, seenAt: NOW + 10 },
                    { escrow: escrowA, engageId: 3n, seenAt: NOW + 10 },
                ].map(plain),
            );
        });

        it('recording the receipt ends the wait, and a served job is never noted again', () => {
            const s = openStore();
            s.noteEngaged({ escrow: escrowA, engageId: 7n, seenAt: NOW });
            s.noteEngaged({ escrow: escrowA, engageId: 8n, seenAt: NOW });
            s.recordSigned(makeJob({ engageId: 7n }), NOW + 1);
            expect(s.engagedAwaiting().map((e) => e.engageId)).toEqual([8n]);
            expect(s.noteEngaged({ escrow: escrowA, engageId: 7n, seenAt: NOW + 2 })).toBe(false);
            expect(s.engagedAwaiting().map((e) => e.engageId)).toEqual([8n]);
        });

        it('forgetEngaged removes one entry and is harmless when repeated', () => {
            const s = openStore();
            s.noteEngaged({ escrow: escrowA, engageId: 1n, seenAt: NOW });
            s.noteEngaged({ escrow: escrowA, engageId: 2n, seenAt: NOW });
            s.forgetEngaged(escrowA, 1n);
            s.forgetEngaged(escrowA, 1n);
            s.forgetEngaged(escrowB, 9n);
            expect(s.engagedAwaiting().map(plain)).toEqual([plain({ escrow: escrowA, engageId: 2n, seenAt: NOW })]);
            expectStoreError(() => s.noteEngaged({ escrow: escrowA, engageId: 3n, seenAt: -1 }), 'invalid-argument', /seenAt/);
        });
    });

    it('refuses every call once closed; close is idempotent', () => {
        const s = openStore();
        s.recordSigned(makeJob(), NOW);
        s.close();
        s.close();
        const calls: (() => unknown)[] = [
            () => s.recordSigned(makeJob(), NOW),
            () => s.get(escrowA, 7n),
            () => s.latestFor(escrowA),
            () => s.withStatus('signed'),
            () => s.noteSubmitAttempt(escrowA, 7n, NOW),
            () => s.markSubmitted(escrowA, 7n, NOW, NOW),
            () => s.markReleased(escrowA, 7n, NOW),
            () => s.markClosed(escrowA, 7n, 'refunded', NOW),
            () => s.counts(),
            () => s.getCursor('x'),
            () => s.setCursor('x', 1n),
            () => s.noteEngaged({ escrow: escrowA, engageId: 1n, seenAt: NOW }),
            () => s.engagedAwaiting(),
            () => s.forgetEngaged(escrowA, 1n),
        ];
        for (const call of calls) expectStoreError(call, 'closed', /closed/);
    });
});

// ---------------------------------------------------------------------------
// Crash test

const REPO = join(__dirname, '..');
const CHILD = join(__dirname, 'helpers', 'storeCrashChild.ts');
const JOBS = 2000;

/**
 * Transpiles the child and every module it reaches (relative imports) into
 * `outDir`, once, the way ts-node's transpile-only mode would. Each child then
 * starts in a fraction of a second instead of re-transpiling the Tact bindings
 * (~2 s of CPU) on every one of the test's nine starts. Returns the child's
 * entry point; run it with NODE_PATH at the repository's node_modules.
 */
function transpileChild(outDir: string): string {
    const queue = [CHILD];
    const seen = new Set<string>();
    while (queue.length > 0) {
        const file = queue.pop()!;
        if (seen.has(file)) continue;
        seen.add(file);
        const text = readFileSync(file, 'utf8');
        const js = ts.transpileModule(text, {
            fileName: file,
            compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
        }).outputText;
        const out = join(outDir, relative(REPO, file)).replace(/\.ts$/, '.js');
        mkdirSync(dirname(out), { recursive: true });
        writeFileSync(out, js);
        for (const imported of ts.preProcessFile(text, true, true).importedFiles) {
            if (!imported.fileName.startsWith('.')) continue;
            const base = resolve(dirname(file), imported.fileName);
            const found = [base + '.ts', join(base, 'index.ts')].find((f) => existsSync(f));
            if (found === undefined) throw new Error(`cannot resolve ${imported.fileName} from ${file}`);
            queue.push(found);
        }
    }
    return join(outDir, relative(REPO, CHILD)).replace(/\.ts$/, '.js');
}

/** A small seeded PRNG (mulberry32): the seed goes in the test name, so a failure can be replayed. */
function prng(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

interface Ack {
    variant: CrashVariant;
    i: number;
    inserted: boolean;
    hash: string;
}

interface ChildRun {
    acks: Ack[];
    /** Resolves when the child has exited: killed (signal) or finished (done). */
    exited: Promise<{ signal: NodeJS.Signals | null; code: number | null; done: boolean; stderr: string }>;
    ready: Promise<void>;
    kill(): void;
}

function runChild(entry: string, dbPath: string, seedHex: string, variant: CrashVariant, from: number, to: number): ChildRun {
    const child: ChildProcess = spawn(process.execPath, [entry, dbPath, seedHex, variant, String(from), String(to)], {
        cwd: REPO,
        env: { ...process.env, NODE_PATH: join(REPO, 'node_modules') },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acks: Ack[] = [];
    let pending = '';
    let stderr = '';
    let done = false;
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (onReady = resolve));
    child.stdout!.on('data', (chunk: Buffer) => {
        pending += chunk.toString();
        const lines = pending.split('\n');
        pending = lines.pop()!; // an unfinished line is not an acknowledgement
        for (const line of lines) {
            const m = /^ack (\d+) ([01]) ([0-9a-f]{64})$/.exec(line);
            if (m) acks.push({ variant, i: Number(m[1]), inserted: m[2] === '1', hash: m[3] });
            else if (line === 'ready') onReady();
            else if (line === 'done') done = true;
            else throw new Error(`unexpected line from the crash child: ${line}`);
        }
    });
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<{ signal: NodeJS.Signals | null; code: number | null; done: boolean; stderr: string }>((resolve) =>
        child.on('close', (code, signal) => {
            onReady(); // a child killed before it was ready must not hang the round
            resolve({ signal, code, done, stderr });
        }),
    );
    return { acks, exited, ready, kill: () => child.kill('SIGKILL') };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('JobStore crash safety', () => {
    const SEED = Date.now() % 1_000_000;

    it(`loses no acknowledged receipt and never replaces or doubles one, under SIGKILL at random moments (seed ${SEED})`, async () => {
        const random = prng(SEED);
        const dir = mkdtempSync(join(tmpdir(), 'chrysalis-store-crash-'));
        const dbPath = join(dir, 'jobs.db');
        const seed = sha('crash enclave');
        const key = keyPairFromSeed(seed);
        const acks: Ack[] = [];
        /** The receipt hash each job had when first seen in the store; it must never change. */
        const firstSeen = new Map<number, string>();
        let killedMidRun = 0;
        try {
            const entry = transpileChild(join(dir, 'js'));
            const snapshot = (): void => {
                const store = JobStore.open(dbPath, { enclaveKey: key.publicKey });
                try {
                    for (let i = 0; i < JOBS; i++) {
                        const { escrow, engageId } = crashJobKey(i);
                        const r = store.get(escrow, engageId);
                        if (r === undefined) {
                            expect(firstSeen.has(i)).toBe(false); // once there, a job never goes away
                            continue;
                        }
                        const hash = r.receipt.hash().toString('hex');
                        if (!firstSeen.has(i)) firstSeen.set(i, hash);
                        expect([i, hash]).toEqual([i, firstSeen.get(i)]);
                    }
                } finally {
                    store.close();
                }
            };
            const finish = async (run: ChildRun): Promise<void> => {
                const exit = await run.exited;
                if (exit.signal === 'SIGKILL') {
                    if (!exit.done) killedMidRun++;
                } else if (exit.code !== 0) {
                    throw new Error(`crash child failed (code ${exit.code}):\n${exit.stderr}`);
                }
                acks.push(...run.acks);
            };
            const killLater = async (run: ChildRun, afterReady: boolean, maxMs: number): Promise<void> => {
                if (afterReady) await run.ready;
                await sleep(Math.floor(random() * maxMs));
                run.kill();
            };
            const nextFrom = (): number => {
                const acked = acks.filter((a) => a.variant === 'A').map((a) => a.i);
                return Math.max(0, (acked.length ? Math.max(...acked) : 0) - 3);
            };

            // Round 0: one child alone, killed at any moment from its start (maybe while it creates the schema).
            const solo = runChild(entry, dbPath, seed.toString('hex'), 'A', 0, JOBS);
            await Promise.all([killLater(solo, false, 1500), finish(solo)]);
            snapshot();

            // Rounds 1-4: A continues a little behind where it was acknowledged; B, signing
            // different receipts, starts just ahead of A, so they race for the same jobs.
            for (let round = 1; round <= 4; round++) {
                const from = nextFrom();
                const a = runChild(entry, dbPath, seed.toString('hex'), 'A', from, JOBS);
                const b = runChild(entry, dbPath, seed.toString('hex'), 'B', from + 3, JOBS);
                await Promise.all([killLater(a, true, 1200), killLater(b, true, 1200), finish(a), finish(b)]);
                snapshot();
            }

            const raw = new Database(dbPath);
            try {
                expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
                expect(raw.prepare('SELECT escrow, engage_id, count(*) AS n FROM jobs GROUP BY escrow, engage_id HAVING n > 1').all()).toEqual([]);
                expect((raw.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n).toBe(firstSeen.size);
            } finally {
                raw.close();
            }

            const store = JobStore.open(dbPath, { enclaveKey: key.publicKey });
            try {
                const insertedBy = new Map<number, Ack[]>();
                for (const ack of acks) {
                    // Acknowledged means stored, and the receipt acknowledged is the one kept.
                    const { escrow, engageId } = crashJobKey(ack.i);
                    const r = store.get(escrow, engageId);
                    expect([ack.i, r?.receipt.hash().toString('hex')]).toEqual([ack.i, ack.hash]);
                    if (ack.inserted) insertedBy.set(ack.i, [...(insertedBy.get(ack.i) ?? []), ack]);
                }
                for (const [i, inserts] of insertedBy) {
                    expect([i, inserts.length]).toEqual([i, 1]); // a job is inserted once, ever
                    expect(firstSeen.get(i)).toBe(crashJob(i, inserts[0].variant, key).receipt.hash().toString('hex'));
                }
                for (const [i, hash] of firstSeen) {
                    const r = store.get(crashJobKey(i).escrow, crashJobKey(i).engageId)!;
                    expect(verifyHash(r.receipt.hash(), r.signature, key.publicKey)).toBe(true);
                    expect([crashJob(i, 'A', key), crashJob(i, 'B', key)].map((j) => j.receipt.hash().toString('hex'))).toContain(hash);
                    // Both variants recording again get the stored receipt back, unchanged.
                    for (const variant of ['A', 'B'] as const) {
                        const again = store.recordSigned(crashJob(i, variant, key), NOW);
                        expect([i, again.inserted, again.record.receipt.hash().toString('hex')]).toEqual([i, false, hash]);
                    }
                }
            } finally {
                store.close();
            }

            // The test exercised what it claims: children died mid-run with work acknowledged, and the
            // two variants met on the same jobs (one's receipt acknowledged to the other).
            expect(killedMidRun).toBeGreaterThanOrEqual(3);
            expect(acks.length).toBeGreaterThan(0);
            expect(acks.some((a) => !a.inserted && a.hash !== crashJob(a.i, a.variant, key).receipt.hash().toString('hex'))).toBe(true);
        } finally {
            rmSync(dir, { recursive: true, force: true });
        }
    }, 90_000);
});

// ---------------------------------------------------------------------------
// Payment channel receipts: the compare-and-swap

// (Imports are hoisted; kept here so this block is appended whole.)
import type { SignedChannelEntry } from '../runner/store';
import { ChannelReceiptFields, nextRoot, signChannelReceipt } from '../wrappers/channelReceipt';

describe('JobStore channel receipts', () => {
    let dir: string;
    let path: string;
    const opened: JobStore[] = [];
    const openStore = (p = path): JobStore => {
        const s = JobStore.open(p, { enclaveKey: enclave.publicKey });
        opened.push(s);
        return s;
    };
    const channel = new Address(0, sha('channel C'));
    const OPEN_ID = (1n << 63n) + 5n;
    const note = (s: JobStore, openId = OPEN_ID) => s.noteChannel({ channel, openId, modelHash: hashInt('model'), expiresAt: NOW + 3600, seenAt: NOW });

    /** The entry an honest enclave records for request `label` after `last` (undefined: the first). */
    function next(
        last: { seqno: bigint; amount: bigint; requests: bigint; root: bigint } | undefined,
        label: string,
        amount: bigint,
        over: Partial<ChannelReceiptFields> = {},
        opts: { key?: Ed25519KeyPair; prev?: bigint; response?: Buffer } = {},
    ): SignedChannelEntry {
        const sealedResponse = opts.response ?? sha(`response ${label}`);
        const step = { prev: opts.prev ?? last?.root ?? 0n, requestHash: hashInt(`request ${label}`), responseHash: BigInt('0x' + createHash('sha256').update(sealedResponse).digest('hex')), amount };
        const fields: ChannelReceiptFields = {
            channel,
            openId: OPEN_ID,
            seqno: (last?.seqno ?? 0n) + 1n,
            amount: (last?.amount ?? 0n) + amount,
            requests: (last?.requests ?? 0n) + 1n,
            root: nextRoot(step),
            final: false,
            ...over,
        };
        const signed = signChannelReceipt(fields, opts.key ?? enclave);
        return { channel: fields.channel, openId: fields.openId, ...signed, served: { step, clientKey: sha(`key ${label}`), sealedResponse, inputUnits: 3n, outputUnits: 4n } };
    }

    function finalAfter(last: { seqno: bigint; amount: bigint; requests: bigint; root: bigint }, over: Partial<ChannelReceiptFields> = {}): SignedChannelEntry {
        const signed = signChannelReceipt({ channel, openId: OPEN_ID, seqno: last.seqno + 1n, amount: last.amount, requests: last.requests, root: last.root, final: true, ...over }, enclave);
        return { channel, openId: OPEN_ID, ...signed };
    }

    beforeEach(() => {
        dir = mkdtempSync(join(tmpdir(), 'chrysalis-store-channel-'));
        path = join(dir, 'jobs.db');
    });
    afterEach(() => {
        for (const s of opened.splice(0)) s.close();
        rmSync(dir, { recursive: true, force: true });
    });

    it('records a chain of receipts, finds them by seqno, request and client key, and keeps them across a reopen', () => {
        const s = openStore();
        expect(note(s)).toBe(true);
        expect(note(s)).toBe(false);
        const r1 = s.recordChannelReceipt(next(undefined, 'a', 1000n), NOW);
        const r2 = s.recordChannelReceipt(next(r1, 'b', MAX_COINS - 1000n), NOW);
        expect([r1.seqno, r2.seqno]).toEqual([1n, 2n]);
        expect(r2).toMatchObject({ amount: MAX_COINS, requests: 2n, final: false, openId: OPEN_ID });
        expect(r2.served!.step).toEqual({ prev: r1.root, requestHash: hashInt('request b'), responseHash: r2.served!.step.responseHash, amount: MAX_COINS - 1000n });
        s.close();
        const again = openStore();
        expect(again.latestChannelReceipt(channel, OPEN_ID)!.receipt.hash()).toEqual(r2.receipt.hash());
        expect(again.channelReceiptAt(channel, OPEN_ID, 1n)!.receipt.hash()).toEqual(r1.receipt.hash());
        expect(again.channelReceiptAt(channel, OPEN_ID, 3n)).toBeUndefined();
        expect(again.channelReceiptByRequest(channel, OPEN_ID, hashInt('request b'))!.seqno).toBe(2n);
        expect(again.channelReceiptByClientKey(channel, OPEN_ID, sha('key a'))!.seqno).toBe(1n);
        expect(again.channelReceiptByClientKey(channel, OPEN_ID, sha('key z'))).toBeUndefined();
        expect(again.channelReceipts(channel, OPEN_ID).map((r) => r.seqno)).toEqual([1n, 2n]);
        expect(again.latestOpening(channel)).toMatchObject({ openId: OPEN_ID, status: 'open', modelHash: hashInt('model'), expiresAt: NOW + 3600 });
    });

    it('refuses out-of-order and repeated seqnos: one receipt per seqno, the first kept', () => {
        const s = openStore();
        note(s);
        const first = next(undefined, 'a', 10n);
        const second = next({ seqno: 1n, amount: 10n, requests: 1n, root: nextRoot(first.served!.step) }, 'b', 20n);
        expectStoreError(() => s.recordChannelReceipt(second, NOW), 'conflict', /seqno 2 does not follow the latest stored 0/);
        const r1 = s.recordChannelReceipt(first, NOW);
        // Another receipt for seqno 1 (a racing request, a restart that forgot): refused, the first stays.
        expectStoreError(() => s.recordChannelReceipt(next(undefined, 'a-bis', 11n), NOW), 'conflict', /seqno 1 does not follow the latest stored 1/);
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'c', 5n, { seqno: 3n }), NOW), 'conflict', /seqno 3 does not follow/);
        expect(s.recordChannelReceipt(second, NOW).seqno).toBe(2n);
        expect(s.channelReceipts(channel, OPEN_ID).map((r) => r.receipt.hash().toString('hex'))).toEqual([r1.receipt.hash().toString('hex'), second.receipt.hash().toString('hex')]);
    });

    it('refuses a receipt that does not chain from the latest: another prev, an amount not grown by the step (or lower), a request count off', () => {
        const s = openStore();
        note(s);
        const r1 = s.recordChannelReceipt(next(undefined, 'a', 100n), NOW);
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 5n, {}, { prev: 0n }), NOW), 'conflict', /step.prev is not the latest root/);
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 5n, { amount: 99n }), NOW), 'conflict', /amount 99 is not 100 \+ 5/);
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 5n, { amount: 106n }), NOW), 'conflict', /amount 106 is not 100 \+ 5/);
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 5n, { requests: 3n }), NOW), 'conflict', /requests 3 is not 1 \+ 1/);
        expect(s.channelReceipts(channel, OPEN_ID)).toHaveLength(1);
    });

    it('a final receipt repeats the latest and ends the chain: nothing is recorded after it', () => {
        const s = openStore();
        note(s);
        const r1 = s.recordChannelReceipt(next(undefined, 'a', 100n), NOW);
        expectStoreError(() => s.recordChannelReceipt(finalAfter(r1, { amount: 101n }), NOW), 'conflict', /final amount 101 is not the latest 100/);
        expectStoreError(() => s.recordChannelReceipt(finalAfter(r1, { root: 7n }), NOW), 'conflict', /final root/);
        const f = s.recordChannelReceipt(finalAfter(r1), NOW);
        expect(f).toMatchObject({ seqno: 2n, amount: 100n, final: true, served: null });
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 5n, { seqno: 3n }, { prev: r1.root }), NOW), 'conflict', /final receipt/);
        expectStoreError(() => s.recordChannelReceipt(finalAfter(f), NOW), 'conflict', /final receipt/);
        // A final receipt of an opening that served nothing: amount 0, seqno 1.
        note(s, OPEN_ID + 1n);
        const empty = signChannelReceipt({ channel, openId: OPEN_ID + 1n, seqno: 1n, amount: 0n, requests: 0n, root: 0n, final: true }, enclave);
        expect(s.recordChannelReceipt({ channel, openId: OPEN_ID + 1n, ...empty }, NOW).final).toBe(true);
    });

    it('records only for a noted, open opening', () => {
        const s = openStore();
        expectStoreError(() => s.recordChannelReceipt(next(undefined, 'a', 1n), NOW), 'not-found', /noteChannel first/);
        note(s);
        const r1 = s.recordChannelReceipt(next(undefined, 'a', 1n), NOW);
        expect(s.openChannels().map((c) => c.openId)).toEqual([OPEN_ID]);
        expect(s.markChannelAddressEnded(channel, 'released', NOW + 1)).toBe(1);
        expect(s.markChannelAddressEnded(channel, 'expired', NOW + 2)).toBe(0);
        expect(s.getChannel(channel, OPEN_ID)).toMatchObject({ status: 'ended', outcome: 'released' });
        expect(s.openChannels()).toEqual([]);
        expect(s.channelCounts()).toEqual({ open: 0, ended: 1 });
        expectStoreError(() => s.recordChannelReceipt(next(r1, 'b', 1n), NOW), 'conflict', /has ended/);
    });

    it('refuses receipts that do not hold on their own', () => {
        const s = openStore();
        note(s);
        expectStoreError(() => s.recordChannelReceipt(next(undefined, 'a', 1n, {}, { key: other }), NOW), 'invalid-argument', /not by this store's enclave key/);
        const good = next(undefined, 'a', 1n);
        expectStoreError(() => s.recordChannelReceipt({ ...good, served: { ...good.served!, sealedResponse: Buffer.from('other') } }, NOW), 'invalid-argument', /sha256 of sealedResponse/);
        expectStoreError(() => s.recordChannelReceipt({ ...good, served: { ...good.served!, step: { ...good.served!.step, amount: 2n } } }, NOW), 'invalid-argument', /does not hash to the receipt's root/);
        expectStoreError(() => s.recordChannelReceipt({ ...good, served: undefined }, NOW), 'invalid-argument', /must be final/);
        const elsewhere = next(undefined, 'a', 1n, { channel: escrowA });
        expectStoreError(() => s.recordChannelReceipt({ ...elsewhere, channel }, NOW), 'invalid-argument', /another channel or opening/);
        expectStoreError(() => s.recordChannelReceipt({ ...good, signature: Buffer.alloc(63) }, NOW), 'invalid-argument', /64 bytes/);
        expect(s.channelReceipts(channel, OPEN_ID)).toEqual([]);
        expect(s.recordChannelReceipt(good, NOW).seqno).toBe(1n);
    });

    it('two connections to one file: the one that read a stale latest is refused', () => {
        const a = openStore();
        const b = openStore();
        note(a);
        a.recordChannelReceipt(next(undefined, 'a', 1n), NOW);
        // Both read seqno 1 as the latest and sign seqno 2; B records first.
        const seenByA = a.latestChannelReceipt(channel, OPEN_ID)!;
        const seenByB = b.latestChannelReceipt(channel, OPEN_ID)!;
        expect(seenByA.seqno).toBe(seenByB.seqno);
        b.recordChannelReceipt(next(seenByB, 'from B', 2n), NOW);
        expectStoreError(() => a.recordChannelReceipt(next(seenByA, 'from A', 3n), NOW), 'conflict', /seqno 2 does not follow the latest stored 2/);
        expect(a.channelReceipts(channel, OPEN_ID).map((r) => r.served!.step.requestHash)).toEqual([hashInt('request a'), hashInt('request from B')]);
    });

    it('a store made before channels gets the tables on open and keeps schema version 1', () => {
        openStore().close();
        const raw = new Database(path);
        raw.exec('DROP TABLE channel_receipts; DROP TABLE channels;');
        raw.close();
        const s = openStore();
        note(s);
        expect(s.recordChannelReceipt(next(undefined, 'a', 1n), NOW).seqno).toBe(1n);
        expect(connectionOf(s).prepare("SELECT value FROM meta WHERE key = 'schema_version'").pluck().get()).toBe('1');
    });

    it('notes claim attempts durably, only for a stored receipt', () => {
        const s = openStore();
        note(s);
        s.recordChannelReceipt(next(undefined, 'a', 1n), NOW);
        expect(s.noteClaimAttempt(channel, OPEN_ID, 1n, NOW + 5)).toMatchObject({ claimAttempts: 1, lastClaimSeqno: 1n, lastClaimAt: NOW + 5 });
        expectStoreError(() => s.noteClaimAttempt(channel, OPEN_ID, 2n, NOW + 6), 'not-found', /no receipt 2/);
        expectStoreError(() => s.noteClaimAttempt(channel, OPEN_ID, 0n, NOW + 6), 'invalid-argument');
    });

    it('two processes racing to extend one chain: every seqno once, every receipt chained, the losers refused', async () => {
        openStore().close();
        const setup = openStore();
        note(setup);
        setup.close();
        const script = `
            const crypto = require('crypto');
            const { Address } = require('@ton/core');
            const { JobStore } = require(${JSON.stringify(join(REPO, 'runner', 'store'))});
            const { keyPairFromSeed } = require(${JSON.stringify(join(REPO, 'wrappers', 'ed25519'))});
            const cr = require(${JSON.stringify(join(REPO, 'wrappers', 'channelReceipt'))});
            const env = process.env;
            const key = keyPairFromSeed(Buffer.from(env.SEED, 'hex'));
            const store = JobStore.open(env.DB, { enclaveKey: key.publicKey });
            const channel = new Address(0, Buffer.from(env.CHANNEL, 'hex'));
            const openId = BigInt(env.OPEN_ID);
            const amount = env.VARIANT === 'A' ? 1n : 2n;
            let inserted = 0, conflicts = 0;
            process.stdout.write('ready\\n');
            process.stdin.once('data', () => {
                while (inserted < Number(env.COUNT)) {
                    const last = store.latestChannelReceipt(channel, openId);
                    const sealedResponse = crypto.randomBytes(40);
                    const step = { prev: last ? last.root : 0n, requestHash: BigInt('0x' + crypto.randomBytes(32).toString('hex')),
                        responseHash: BigInt('0x' + crypto.createHash('sha256').update(sealedResponse).digest('hex')), amount };
                    const signed = cr.signChannelReceipt({ channel, openId, seqno: (last ? last.seqno : 0n) + 1n, amount: (last ? last.amount : 0n) + amount,
                        requests: (last ? last.requests : 0n) + 1n, root: cr.nextRoot(step), final: false }, key);
                    // Widen the window between reading the latest and recording, as a model run would.
                    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
                    try {
                        store.recordChannelReceipt({ channel, openId, receipt: signed.receipt, signature: signed.signature,
                            served: { step, clientKey: crypto.randomBytes(32), sealedResponse, inputUnits: 1n, outputUnits: 1n } }, ${NOW});
                        inserted++;
                    } catch (e) {
                        if (e.code !== 'conflict') throw e;
                        conflicts++;
                    }
                }
                store.close();
                process.stdout.write('done ' + inserted + ' ' + conflicts + '\\n');
            });
        `;
        const COUNT = 60;
        const run = (variant: 'A' | 'B') => {
            const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', '-e', script], {
                cwd: REPO,
                env: { ...process.env, DB: path, SEED: sha('enclave').toString('hex'), CHANNEL: channel.hash.toString('hex'), OPEN_ID: OPEN_ID.toString(), VARIANT: variant, COUNT: String(COUNT) },
                stdio: ['pipe', 'pipe', 'pipe'],
            });
            let out = '';
            let err = '';
            child.stderr.on('data', (c: Buffer) => (err += c.toString()));
            const ready = new Promise<void>((resolve) => {
                child.stdout.on('data', (c: Buffer) => ((out += c.toString()), out.includes('ready') && resolve()));
                child.on('close', () => resolve()); // a child that died early must not hang the test
            });
            const done = new Promise<{ inserted: number; conflicts: number }>((resolve, reject) =>
                child.on('close', (code) => {
                    const m = /done (\d+) (\d+)/.exec(out);
                    if (code !== 0 || !m) reject(new Error(`child ${variant} exited ${code}: ${err}`));
                    else resolve({ inserted: Number(m[1]), conflicts: Number(m[2]) });
                }),
            );
            return { child, ready, done };
        };
        const a = run('A');
        const b = run('B');
        await Promise.all([a.ready, b.ready]);
        // Ending stdin starts both at once and lets them exit when done.
        a.child.stdin.end('go\n');
        b.child.stdin.end('go\n');
        const [ra, rb] = await Promise.all([a.done, b.done]);
        expect(ra.inserted + rb.inserted).toBe(2 * COUNT);
        // The race happened: some records were refused and retried.
        expect(ra.conflicts + rb.conflicts).toBeGreaterThan(0);

        const s = openStore();
        const stored = s.channelReceipts(channel, OPEN_ID);
        expect(stored.map((r) => r.seqno)).toEqual(Array.from({ length: 2 * COUNT }, (_, i) => BigInt(i + 1)));
        let amount = 0n;
        let root = 0n;
        for (const r of stored) {
            expect(r.served!.step.prev).toBe(root);
            amount += r.served!.step.amount;
            expect(r.amount).toBe(amount);
            root = r.root;
            expect(verifyHash(r.receipt.hash(), r.signature, enclave.publicKey)).toBe(true);
        }
        expect(amount).toBe(BigInt(COUNT) * 1n + BigInt(COUNT) * 2n);
    }, 60_000);
});
