// The runner's durable memory: jobs with their signed receipts, watcher
// cursors and escrows seen engaged, in one SQLite file (better-sqlite3).
//
// The guarantee the runner builds on: at most one receipt per job
// (escrow, engageId) ever leaves the process. The runner signs in memory,
// then calls recordSigned(); the first receipt committed for a job is the one
// kept for good, and every later call gets that one back to answer with. A
// second, different receipt for one request would be slashable equivocation,
// so nothing here ever replaces or deletes a stored receipt.
//
// Every write is one transaction, committed with synchronous=FULL in WAL
// mode: once a method returns, its effect survives a kill of the process (and
// a power cut, as far as the disk honours fsync). Bigints are stored as
// canonical decimal TEXT (coins go up to 2^120, hashes to 2^256), addresses as
// raw strings ('0:hex'), cells as BOC blobs.
import { createHash } from 'crypto';
import Database from 'better-sqlite3';
import { Address, Cell } from '@ton/core';
import { parseReceipt, receiptHash } from '../wrappers/receipt';
import { verifyHash } from '../wrappers/ed25519';

/** Where a job stands: signed (receipt stored), submitted (the Escrow accepted it), released (paid), closed (ended otherwise). */
export type JobStatus = 'signed' | 'submitted' | 'released' | 'closed';

/** Every status, in lifecycle order. */
export const JOB_STATUSES: readonly JobStatus[] = ['signed', 'submitted', 'released', 'closed'];

/** The schema version this code reads and writes; a store with another version is refused. */
export const STORE_SCHEMA_VERSION = 1;

/** A finished job with its signed receipt, as the runner hands it to recordSigned(). */
export interface SignedJob {
    escrow: Address;
    engageId: bigint;
    requestHash: bigint;
    modelHash: bigint;
    /** The client's X25519 request key (32 bytes). */
    clientKey: Buffer;
    /** The encrypted response exactly as answered (the receipt's responseHash is its sha256). */
    sealedResponse: Buffer;
    receipt: Cell;
    /** ed25519 by the enclave over the receipt's cell hash (64 bytes). */
    signature: Buffer;
    amount: bigint;
    inputUnits: bigint;
    outputUnits: bigint;
    /** Unix seconds, as in the receipt. */
    finishedAt: number;
}

/** A stored job: the signed job plus where it stands. Times are unix seconds as the caller passed them. */
export interface JobRecord extends SignedJob {
    status: JobStatus;
    /** How many times the runner noted it was about to send SubmitReceipt. */
    submitAttempts: number;
    lastSubmitAt: number | null;
    /** When the escrow can be released (end of the dispute window), once submitted. */
    releaseAt: number | null;
    /** Why a closed job closed (refunded, disputed-lost, ...); null otherwise. */
    outcome: string | null;
    createdAt: number;
    updatedAt: number;
}

/** An escrow seen engaged to this provider on chain and not yet served. */
export interface EngagedEscrow {
    escrow: Address;
    engageId: bigint;
    seenAt: number;
}

/** What went wrong, for callers that act on it. */
export type StoreErrorCode = 'invalid-argument' | 'not-found' | 'bad-transition' | 'wrong-key' | 'schema' | 'closed' | 'sqlite';

/** Every failure of the store: bad input, a refused transition, a foreign or unknown store, or SQLite itself (with the SqliteError as cause). */
export class StoreError extends Error {
    /** The kind of failure. */
    readonly code: StoreErrorCode;

    constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
        super(message, options);
        this.name = 'StoreError';
        this.code = code;
    }
}

const UINT64_LIMIT = 1n << 64n;
const UINT256_LIMIT = 1n << 256n;
const COINS_LIMIT = 1n << 120n;
const BUSY_TIMEOUT_MS = 5000;

const SCHEMA = `
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        escrow TEXT NOT NULL,
        engage_id TEXT NOT NULL CHECK (engage_id GLOB '[0-9]*'),
        request_hash TEXT NOT NULL,
        model_hash TEXT NOT NULL,
        client_key BLOB NOT NULL CHECK (length(client_key) = 32),
        sealed_response BLOB NOT NULL,
        receipt BLOB NOT NULL,
        receipt_hash BLOB NOT NULL CHECK (length(receipt_hash) = 32),
        signature BLOB NOT NULL CHECK (length(signature) = 64),
        amount TEXT NOT NULL,
        input_units TEXT NOT NULL,
        output_units TEXT NOT NULL,
        finished_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('signed', 'submitted', 'released', 'closed')),
        submit_attempts INTEGER NOT NULL DEFAULT 0,
        last_submit_at INTEGER,
        release_at INTEGER,
        outcome TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (escrow, engage_id)
    ) STRICT;
    CREATE INDEX jobs_by_status ON jobs (status, created_at, id);
    CREATE INDEX jobs_by_release ON jobs (status, release_at);
    CREATE TABLE engaged (
        escrow TEXT NOT NULL,
        engage_id TEXT NOT NULL CHECK (engage_id GLOB '[0-9]*'),
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (escrow, engage_id)
    ) STRICT;
    CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
`;

interface JobRow {
    escrow: string;
    engage_id: string;
    request_hash: string;
    model_hash: string;
    client_key: Buffer;
    sealed_response: Buffer;
    receipt: Buffer;
    signature: Buffer;
    amount: string;
    input_units: string;
    output_units: string;
    finished_at: number;
    status: JobStatus;
    submit_attempts: number;
    last_submit_at: number | null;
    release_at: number | null;
    outcome: string | null;
    created_at: number;
    updated_at: number;
}

interface EngagedRow {
    escrow: string;
    engage_id: string;
    seen_at: number;
}

type Key = { escrow: string; engageId: string };

/** The named parameters of the job insert. */
type InsertParams = Record<string, string | number | Buffer>;

function describeError(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}

function checkUint(name: string, value: bigint, limit: bigint): string {
    if (typeof value !== 'bigint' || value < 0n || value >= limit) throw new StoreError('invalid-argument', `${name} must be a bigint in [0, ${limit})`);
    return value.toString();
}

function checkTime(name: string, value: number): number {
    if (!Number.isSafeInteger(value) || value < 0) throw new StoreError('invalid-argument', `${name} must be a non-negative integer (unix seconds), got ${value}`);
    return value;
}

function checkBytes(name: string, value: Buffer, length?: number): Buffer {
    if (!Buffer.isBuffer(value)) throw new StoreError('invalid-argument', `${name} must be a Buffer`);
    if (length !== undefined && value.length !== length) throw new StoreError('invalid-argument', `${name} must be ${length} bytes, got ${value.length}`);
    return value;
}

function rawAddress(escrow: Address): string {
    if (!(escrow instanceof Address)) throw new StoreError('invalid-argument', 'escrow must be an Address');
    return escrow.toRawString();
}

function keyOf(escrow: Address, engageId: bigint): Key {
    return { escrow: rawAddress(escrow), engageId: checkUint('engageId', engageId, UINT64_LIMIT) };
}

function jobName(key: Key): string {
    return `job ${key.escrow}#${key.engageId}`;
}

function rowToRecord(row: JobRow): JobRecord {
    return {
        escrow: Address.parseRaw(row.escrow),
        engageId: BigInt(row.engage_id),
        requestHash: BigInt(row.request_hash),
        modelHash: BigInt(row.model_hash),
        clientKey: row.client_key,
        sealedResponse: row.sealed_response,
        receipt: Cell.fromBoc(row.receipt)[0],
        signature: row.signature,
        amount: BigInt(row.amount),
        inputUnits: BigInt(row.input_units),
        outputUnits: BigInt(row.output_units),
        finishedAt: row.finished_at,
        status: row.status,
        submitAttempts: row.submit_attempts,
        lastSubmitAt: row.last_submit_at,
        releaseAt: row.release_at,
        outcome: row.outcome,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
    };
}

// Prepared once per store; the return type names every statement.
function prepareStatements(db: Database.Database) {
    return {
        insertJob: db.prepare(
            `INSERT INTO jobs (escrow, engage_id, request_hash, model_hash, client_key, sealed_response, receipt, receipt_hash, signature,
                amount, input_units, output_units, finished_at, status, submit_attempts, created_at, updated_at)
             VALUES (@escrow, @engageId, @requestHash, @modelHash, @clientKey, @sealedResponse, @receipt, @receiptHash, @signature,
                @amount, @inputUnits, @outputUnits, @finishedAt, 'signed', 0, @now, @now)
             ON CONFLICT (escrow, engage_id) DO NOTHING`,
        ),
        getJob: db.prepare<[string, string], JobRow>('SELECT * FROM jobs WHERE escrow = ? AND engage_id = ?'),
        // engage_id is canonical decimal: longer means larger, then text order is numeric order.
        latestFor: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE escrow = ? ORDER BY length(engage_id) DESC, engage_id DESC LIMIT 1'),
        withStatus: db.prepare<[string], JobRow>('SELECT * FROM jobs WHERE status = ? ORDER BY created_at, id'),
        releasable: db.prepare<[number], JobRow>("SELECT * FROM jobs WHERE status = 'submitted' AND release_at <= ? ORDER BY release_at, id"),
        noteAttempt: db.prepare<[number, number, string, string]>(
            'UPDATE jobs SET submit_attempts = submit_attempts + 1, last_submit_at = ?, updated_at = ? WHERE escrow = ? AND engage_id = ?',
        ),
        setSubmitted: db.prepare<[number, number, string, string]>(
            "UPDATE jobs SET status = 'submitted', release_at = ?, updated_at = ? WHERE escrow = ? AND engage_id = ?",
        ),
        setReleased: db.prepare<[number, string, string]>("UPDATE jobs SET status = 'released', updated_at = ? WHERE escrow = ? AND engage_id = ?"),
        setClosed: db.prepare<[string, number, string, string]>("UPDATE jobs SET status = 'closed', outcome = ?, updated_at = ? WHERE escrow = ? AND engage_id = ?"),
        counts: db.prepare<[], { status: JobStatus; n: number }>('SELECT status, count(*) AS n FROM jobs GROUP BY status'),
        getCursor: db.prepare<[string], { value: string }>('SELECT value FROM cursors WHERE name = ?'),
        setCursor: db.prepare<[string, string]>('INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value'),
        hasJob: db.prepare<[string, string], { one: number }>('SELECT 1 AS one FROM jobs WHERE escrow = ? AND engage_id = ?'),
        insertEngaged: db.prepare<[string, string, number]>('INSERT INTO engaged (escrow, engage_id, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
        engagedAwaiting: db.prepare<[], EngagedRow>('SELECT escrow, engage_id, seen_at FROM engaged ORDER BY seen_at, escrow, length(engage_id), engage_id'),
        deleteEngaged: db.prepare<[string, string]>('DELETE FROM engaged WHERE escrow = ? AND engage_id = ?'),
    };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * The runner's job store. One instance per process and file; several
 * processes may open the same file (SQLite serialises their writes), which is
 * how the crash tests race two runners. Not for use after close().
 */
export class JobStore {
    private closed = false;
    private readonly stmt: Statements;
    private readonly tx: {
        record: (key: Key, params: InsertParams) => { record: JobRecord; inserted: boolean };
        noteAttempt: (key: Key, at: number) => JobRecord;
        markSubmitted: (key: Key, releaseAt: number, at: number) => void;
        markReleased: (key: Key, at: number) => void;
        markClosed: (key: Key, outcome: string, at: number) => void;
        noteEngaged: (key: Key, seenAt: number) => boolean;
    };

    private constructor(
        private readonly db: Database.Database,
        /** The enclave's ed25519 public key (32 bytes) every stored receipt is signed by. */
        readonly enclaveKey: Buffer,
    ) {
        this.stmt = prepareStatements(db);
        this.tx = {
            record: this.transaction((key: Key, params: InsertParams) => this.recordSignedInTx(key, params)),
            noteAttempt: this.transaction((key: Key, at: number) => this.noteAttemptInTx(key, at)),
            markSubmitted: this.transaction((key: Key, releaseAt: number, at: number) => this.markSubmittedInTx(key, releaseAt, at)),
            markReleased: this.transaction((key: Key, at: number) => this.markReleasedInTx(key, at)),
            markClosed: this.transaction((key: Key, outcome: string, at: number) => this.markClosedInTx(key, outcome, at)),
            noteEngaged: this.transaction((key: Key, seenAt: number) => this.noteEngagedInTx(key, seenAt)),
        };
    }

    /**
     * Opens (creating) the store at `path` (':memory:' allowed) for one
     * enclave signing key (ed25519, 32 bytes). Refuses (StoreError) a store
     * created for another key, so two identities never mix, a store of an
     * unknown schema version, and a SQLite file that is not a job store.
     */
    static open(path: string, opts: { enclaveKey: Buffer }): JobStore {
        const enclaveKey = Buffer.from(checkBytes('enclaveKey', opts.enclaveKey, 32));
        let db: Database.Database;
        try {
            db = new Database(path);
        } catch (e) {
            throw new StoreError('sqlite', `cannot open the job store at ${path}: ${describeError(e)}`, { cause: e });
        }
        try {
            // busy_timeout first: switching to WAL and the schema check below
            // must wait for another process holding the lock, not fail.
            db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
            const mode = db.pragma('journal_mode = WAL', { simple: true });
            if (mode !== 'wal' && mode !== 'memory') throw new StoreError('sqlite', `cannot switch ${path} to WAL (journal_mode is ${String(mode)})`);
            db.pragma('synchronous = FULL');
            db.pragma('foreign_keys = ON');
            db.transaction(() => JobStore.initOrCheck(db, path, enclaveKey)).immediate();
            return new JobStore(db, enclaveKey);
        } catch (e) {
            db.close();
            if (e instanceof StoreError) throw e;
            throw new StoreError('sqlite', `cannot open the job store at ${path}: ${describeError(e)}`, { cause: e });
        }
    }

    private static initOrCheck(db: Database.Database, path: string, enclaveKey: Buffer): void {
        const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name);
        if (tables.length === 0) {
            db.exec(SCHEMA);
            const put = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
            put.run('schema_version', String(STORE_SCHEMA_VERSION));
            put.run('enclave_key', enclaveKey.toString('hex'));
            return;
        }
        if (!tables.includes('meta')) throw new StoreError('schema', `${path} is a SQLite database but not a Chrysalis job store`);
        const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
        const version = meta.get('schema_version');
        if (version !== String(STORE_SCHEMA_VERSION)) {
            throw new StoreError('schema', `${path} has job store schema version ${version ?? '(none)'}; this runner reads version ${STORE_SCHEMA_VERSION} only`);
        }
        const stored = meta.get('enclave_key');
        if (stored !== enclaveKey.toString('hex')) {
            const want = enclaveKey.toString('hex');
            throw new StoreError('wrong-key', `${path} belongs to enclave key ${stored ?? '(none)'}, not ${want}: one store per enclave identity`);
        }
        // Stores made before this index existed get it on open.
        db.exec('CREATE INDEX IF NOT EXISTS jobs_by_release ON jobs (status, release_at)');
    }

    /** Runs `fn` as one IMMEDIATE transaction: it takes the write lock up front, so a read-then-write never races another process. */
    private transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
        const tx = this.db.transaction(fn);
        return (...args: A) => tx.immediate(...args);
    }

    /** Every public method goes through here: refuses a closed store and turns SQLite failures into StoreError. */
    private guard<R>(what: string, fn: () => R): R {
        if (this.closed) throw new StoreError('closed', `the job store is closed (${what})`);
        try {
            return fn();
        } catch (e) {
            if (e instanceof StoreError) throw e;
            throw new StoreError('sqlite', `${what} failed: ${describeError(e)}`, { cause: e });
        }
    }

    private mustGet(key: Key): JobRow {
        const row = this.stmt.getJob.get(key.escrow, key.engageId);
        if (row === undefined) throw new StoreError('not-found', `no ${jobName(key)} in the store`);
        return row;
    }

    /**
     * Checks that the job is what its receipt says and that the receipt is
     * signed by this store's enclave key: the store never holds a receipt the
     * Escrow would refuse or that another identity signed.
     */
    private validate(job: SignedJob, now: number): InsertParams {
        const key = keyOf(job.escrow, job.engageId);
        checkTime('now', now);
        checkTime('finishedAt', job.finishedAt);
        checkBytes('clientKey', job.clientKey, 32);
        checkBytes('sealedResponse', job.sealedResponse);
        checkBytes('signature', job.signature, 64);
        if (!(job.receipt instanceof Cell)) throw new StoreError('invalid-argument', 'receipt must be a Cell');
        const fields = {
            requestHash: checkUint('requestHash', job.requestHash, UINT256_LIMIT),
            modelHash: checkUint('modelHash', job.modelHash, UINT256_LIMIT),
            amount: checkUint('amount', job.amount, COINS_LIMIT),
            inputUnits: checkUint('inputUnits', job.inputUnits, UINT64_LIMIT),
            outputUnits: checkUint('outputUnits', job.outputUnits, UINT64_LIMIT),
        };
        let r: ReturnType<typeof parseReceipt>;
        try {
            r = parseReceipt(job.receipt);
        } catch (e) {
            throw new StoreError('invalid-argument', `${jobName(key)}: the receipt is not a completion receipt (${describeError(e)})`, { cause: e });
        }
        const mismatches: string[] = [];
        if (!r.escrow.equals(job.escrow)) mismatches.push('escrow');
        if (r.engageId !== job.engageId) mismatches.push('engageId');
        if (r.requestHash !== job.requestHash) mismatches.push('requestHash');
        if (r.modelHash !== job.modelHash) mismatches.push('modelHash');
        if (r.amount !== job.amount) mismatches.push('amount');
        if (r.inputUnits !== job.inputUnits) mismatches.push('inputUnits');
        if (r.outputUnits !== job.outputUnits) mismatches.push('outputUnits');
        if (r.finishedAt !== BigInt(job.finishedAt)) mismatches.push('finishedAt');
        const responseHash = BigInt('0x' + createHash('sha256').update(job.sealedResponse).digest('hex'));
        if (r.responseHash !== responseHash) mismatches.push('responseHash (sha256 of sealedResponse)');
        if (mismatches.length > 0) throw new StoreError('invalid-argument', `${jobName(key)}: the receipt disagrees with the job on ${mismatches.join(', ')}`);
        const hash = receiptHash(job.receipt);
        if (!verifyHash(hash, job.signature, this.enclaveKey)) {
            throw new StoreError('invalid-argument', `${jobName(key)}: the signature is not by this store's enclave key`);
        }
        return {
            escrow: key.escrow,
            engageId: key.engageId,
            ...fields,
            clientKey: job.clientKey,
            sealedResponse: job.sealedResponse,
            receipt: job.receipt.toBoc(),
            receiptHash: hash,
            signature: job.signature,
            finishedAt: job.finishedAt,
            now,
        };
    }

    private recordSignedInTx(key: Key, params: InsertParams): { record: JobRecord; inserted: boolean } {
        const inserted = this.stmt.insertJob.run(params).changes === 1;
        // Served now (or before): no longer awaiting.
        this.stmt.deleteEngaged.run(key.escrow, key.engageId);
        return { record: rowToRecord(this.mustGet(key)), inserted };
    }

    /**
     * Records a job's signed receipt, in one transaction, before anything of
     * it is published. If the job (escrow, engageId) has no receipt yet, stores
     * this one (status 'signed') and returns it with inserted: true. If it has
     * one, stores nothing and returns the stored record with inserted: false:
     * the caller discards its new receipt and answers with the stored one, so
     * one job never gets two receipts. The stored receipt is never replaced.
     * Also forgets the job from engagedAwaiting().
     *
     * Refuses (StoreError 'invalid-argument') a job whose fields disagree with
     * its receipt, whose sealedResponse does not hash to the receipt's
     * responseHash, or whose signature is not by this store's enclave key.
     */
    recordSigned(job: SignedJob, now: number): { record: JobRecord; inserted: boolean } {
        return this.guard('recordSigned', () => {
            // Checked before the write lock is taken: verifying a signature needs no lock.
            const params = this.validate(job, now);
            return this.tx.record(keyOf(job.escrow, job.engageId), params);
        });
    }

    /** The job (escrow, engageId), or undefined. */
    get(escrow: Address, engageId: bigint): JobRecord | undefined {
        return this.guard('get', () => {
            const key = keyOf(escrow, engageId);
            const row = this.stmt.getJob.get(key.escrow, key.engageId);
            return row === undefined ? undefined : rowToRecord(row);
        });
    }

    /** The job with the highest engageId at `escrow` (its latest opening), or undefined. */
    latestFor(escrow: Address): JobRecord | undefined {
        return this.guard('latestFor', () => {
            const row = this.stmt.latestFor.get(rawAddress(escrow));
            return row === undefined ? undefined : rowToRecord(row);
        });
    }

    /** Every job in `status`, oldest (by createdAt, then insertion) first. */
    /** Submitted jobs whose dispute window has passed by `now` (an index keeps this cheap with many jobs waiting). */
    releasableBy(now: number): JobRecord[] {
        return this.guard('releasableBy', () => this.stmt.releasable.all(now).map(rowToRecord));
    }

    withStatus(status: JobStatus): JobRecord[] {
        if (!JOB_STATUSES.includes(status)) throw new StoreError('invalid-argument', `unknown job status ${String(status)}`);
        return this.guard('withStatus', () => this.stmt.withStatus.all(status).map(rowToRecord));
    }

    private noteAttemptInTx(key: Key, at: number): JobRecord {
        const row = this.mustGet(key);
        if (row.status !== 'signed') {
            throw new StoreError('bad-transition', `${jobName(key)} is ${row.status}: its receipt is already on chain or settled and must not be sent again`);
        }
        this.stmt.noteAttempt.run(at, at, key.escrow, key.engageId);
        return rowToRecord(this.mustGet(key));
    }

    /**
     * Durably notes that SubmitReceipt is about to be sent for a 'signed' job
     * (submitAttempts + 1, lastSubmitAt = at); call it BEFORE sending. After a
     * restart, submitAttempts > 0 means the message may be on its way: check
     * the escrow on chain before sending again. Refuses (StoreError
     * 'bad-transition') a job that is no longer 'signed'. Returns the updated
     * record.
     */
    noteSubmitAttempt(escrow: Address, engageId: bigint, at: number): JobRecord {
        return this.guard('noteSubmitAttempt', () => this.tx.noteAttempt(keyOf(escrow, engageId), checkTime('at', at)));
    }

    private markSubmittedInTx(key: Key, releaseAt: number, at: number): void {
        const row = this.mustGet(key);
        if (row.status === 'submitted') {
            if (row.release_at === releaseAt) return;
            throw new StoreError('bad-transition', `${jobName(key)} is already submitted with releaseAt ${row.release_at}, not ${releaseAt}`);
        }
        if (row.status !== 'signed') throw new StoreError('bad-transition', `${jobName(key)} is ${row.status}: only a signed job can become submitted`);
        this.stmt.setSubmitted.run(releaseAt, at, key.escrow, key.engageId);
    }

    /**
     * The chain shows the Escrow accepted the receipt: 'signed' -> 'submitted',
     * releasable at `releaseAt`. Needs no noted attempt (anyone holding the
     * receipt, the client too, may submit it). Idempotent: repeating it with
     * the same releaseAt is a no-op; a different releaseAt, or a job that is
     * released or closed, is refused (StoreError 'bad-transition').
     */
    markSubmitted(escrow: Address, engageId: bigint, releaseAt: number, at: number): void {
        this.guard('markSubmitted', () => this.tx.markSubmitted(keyOf(escrow, engageId), checkTime('releaseAt', releaseAt), checkTime('at', at)));
    }

    private markReleasedInTx(key: Key, at: number): void {
        const row = this.mustGet(key);
        if (row.status === 'released') return;
        if (row.status !== 'submitted') throw new StoreError('bad-transition', `${jobName(key)} is ${row.status}: only a submitted job can be released`);
        this.stmt.setReleased.run(at, key.escrow, key.engageId);
    }

    /**
     * The chain shows the escrow paid out: 'submitted' -> 'released'.
     * Idempotent: on a released job it is a no-op. Refused (StoreError
     * 'bad-transition') from 'signed' or 'closed'.
     */
    markReleased(escrow: Address, engageId: bigint, at: number): void {
        this.guard('markReleased', () => this.tx.markReleased(keyOf(escrow, engageId), checkTime('at', at)));
    }

    private markClosedInTx(key: Key, outcome: string, at: number): void {
        const row = this.mustGet(key);
        if (row.status === 'closed') {
            if (row.outcome === outcome) return;
            throw new StoreError('bad-transition', `${jobName(key)} is already closed as ${row.outcome ?? '(none)'}, not ${outcome}`);
        }
        if (row.status === 'released') throw new StoreError('bad-transition', `${jobName(key)} is released: a paid job cannot close as ${outcome}`);
        this.stmt.setClosed.run(outcome, at, key.escrow, key.engageId);
    }

    /**
     * The job ended without payment to this provider (refunded,
     * disputed-lost, ...): 'signed' or 'submitted' -> 'closed' with `outcome`
     * (non-empty). Idempotent: repeating it with the same outcome is a no-op;
     * another outcome, or a released job, is refused (StoreError
     * 'bad-transition').
     */
    markClosed(escrow: Address, engageId: bigint, outcome: string, at: number): void {
        if (typeof outcome !== 'string' || outcome.length === 0) throw new StoreError('invalid-argument', 'outcome must be a non-empty string');
        this.guard('markClosed', () => this.tx.markClosed(keyOf(escrow, engageId), outcome, checkTime('at', at)));
    }

    /** How many jobs are in each status (zero included). */
    counts(): Record<JobStatus, number> {
        return this.guard('counts', () => {
            const out: Record<JobStatus, number> = { signed: 0, submitted: 0, released: 0, closed: 0 };
            for (const { status, n } of this.stmt.counts.all()) out[status] = n;
            return out;
        });
    }

    /** A watcher cursor (e.g. the last transaction lt seen at the Provider), or undefined if never set. */
    getCursor(name: string): bigint | undefined {
        return this.guard('getCursor', () => {
            const row = this.stmt.getCursor.get(name);
            return row === undefined ? undefined : BigInt(row.value);
        });
    }

    /** Sets a watcher cursor, durably. Any bigint; the store does not require it to grow (a watcher may rewind on purpose). */
    setCursor(name: string, value: bigint): void {
        if (typeof name !== 'string' || name.length === 0) throw new StoreError('invalid-argument', 'a cursor name must be a non-empty string');
        if (typeof value !== 'bigint') throw new StoreError('invalid-argument', 'a cursor value must be a bigint');
        this.guard('setCursor', () => this.stmt.setCursor.run(name, value.toString()));
    }

    private noteEngagedInTx(key: Key, seenAt: number): boolean {
        if (this.stmt.hasJob.get(key.escrow, key.engageId) !== undefined) return false;
        return this.stmt.insertEngaged.run(key.escrow, key.engageId, seenAt).changes === 1;
    }

    /**
     * Notes an escrow seen engaged on chain, to serve it after a restart.
     * Returns true if it is new; false (and stores nothing) if it is already
     * noted, keeping the first seenAt, or already has a receipt, so a
     * watcher's replay is harmless.
     */
    noteEngaged(e: EngagedEscrow): boolean {
        return this.guard('noteEngaged', () => this.tx.noteEngaged(keyOf(e.escrow, e.engageId), checkTime('seenAt', e.seenAt)));
    }

    /** Escrows noted engaged and not yet served (recordSigned) or forgotten, oldest seen first. */
    engagedAwaiting(): EngagedEscrow[] {
        return this.guard('engagedAwaiting', () =>
            this.stmt.engagedAwaiting.all().map((r) => ({ escrow: Address.parseRaw(r.escrow), engageId: BigInt(r.engage_id), seenAt: r.seen_at })),
        );
    }

    /** Stops awaiting an engaged escrow (refunded, expired, refused). Idempotent: forgetting one not noted is a no-op. */
    forgetEngaged(escrow: Address, engageId: bigint): void {
        this.guard('forgetEngaged', () => {
            const key = keyOf(escrow, engageId);
            this.stmt.deleteEngaged.run(key.escrow, key.engageId);
        });
    }

    /** Closes the database; every later call fails with StoreError 'closed'. Idempotent. */
    close(): void {
        if (this.closed) return;
        this.closed = true;
        this.db.close();
    }
}
