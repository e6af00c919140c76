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
// Payment channels get the same guarantee in a cumulative form: one receipt
// per (channel, openId, seqno), and each one chains from the one before
// (seqno + 1, the same running root as its step's prev, the amount grown by
// exactly the step's amount). recordChannelReceipt() checks that against the
// latest stored receipt and inserts in ONE transaction (a compare-and-swap),
// so two racing requests, two processes or a restart can never leave two
// receipts with one seqno, nor a later receipt with a lower amount: either
// would be slashable (Provider ProveChannelEquivocation).
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
import { ChannelReceiptFields, ChannelStepFields, channelReceiptHash, nextRoot, parseChannelReceipt, SignedChannelReceipt } from '../wrappers/channelReceipt';
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

/** A channel opening this runner serves: noted from its EngageChannel before any receipt. */
export interface ChannelOpening {
    channel: Address;
    /** ChannelInfo.openId (the OpenChannel transaction's lt). */
    openId: bigint;
    /** The model the client opened the channel for (OpenChannel.modelHash). */
    modelHash: bigint;
    /** OpenChannel.expiresAt: the runner serves until then. */
    expiresAt: number;
    seenAt: number;
}

/** Where a channel opening stands: open (serving and claiming) or ended (the channel closed or was opened again). */
export type ChannelStatus = 'open' | 'ended';

/** A stored channel opening. */
export interface ChannelRecord extends ChannelOpening {
    status: ChannelStatus;
    /** Why it ended (released, expired, ...); null while open. */
    outcome: string | null;
    claimAttempts: number;
    /** The seqno and time of the last ClaimChannel the runner sent (null before any). */
    lastClaimSeqno: bigint | null;
    lastClaimAt: number | null;
    createdAt: number;
    updatedAt: number;
}

/** The request a channel receipt was signed right after, as the runner answered it. */
export interface ChannelServed {
    step: ChannelStepFields;
    /** The request's one-time X25519 key (32 bytes): the client proves a close with it. */
    clientKey: Buffer;
    /** The encrypted response exactly as answered (step.responseHash is its sha256). */
    sealedResponse: Buffer;
    inputUnits: bigint;
    outputUnits: bigint;
}

/** A channel receipt the runner signed, as it hands it to recordChannelReceipt(). */
export interface SignedChannelEntry {
    channel: Address;
    openId: bigint;
    receipt: Cell;
    /** ed25519 by the enclave over the receipt's cell hash (64 bytes). */
    signature: Buffer;
    /** The request served; absent for a final receipt (which serves none). */
    served?: ChannelServed;
}

/** A stored channel receipt with its fields (wrappers/channelReceipt.ts owns both shapes). */
export interface ChannelReceiptRecord extends ChannelReceiptFields, SignedChannelReceipt {
    served: ChannelServed | null;
    createdAt: number;
}

/** What went wrong, for callers that act on it. 'conflict': a channel receipt that does not chain from the latest stored one. */
export type StoreErrorCode = 'invalid-argument' | 'not-found' | 'bad-transition' | 'wrong-key' | 'schema' | 'closed' | 'sqlite' | 'conflict';

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

// Payment channels, added after schema version 1 shipped: created on open if
// missing, so a version-1 store made before channels keeps its version.
const CHANNEL_SCHEMA = `
    CREATE TABLE IF NOT EXISTS channels (
        channel TEXT NOT NULL,
        open_id TEXT NOT NULL CHECK (open_id GLOB '[0-9]*'),
        model_hash TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        seen_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open', 'ended')),
        outcome TEXT,
        claim_attempts INTEGER NOT NULL DEFAULT 0,
        last_claim_seqno INTEGER,
        last_claim_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (channel, open_id)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS channels_by_status ON channels (status, created_at);
    CREATE TABLE IF NOT EXISTS channel_receipts (
        channel TEXT NOT NULL,
        open_id TEXT NOT NULL,
        seqno INTEGER NOT NULL CHECK (seqno >= 1),
        amount TEXT NOT NULL,
        requests TEXT NOT NULL,
        root TEXT NOT NULL,
        final INTEGER NOT NULL CHECK (final IN (0, 1)),
        receipt BLOB NOT NULL,
        receipt_hash BLOB NOT NULL CHECK (length(receipt_hash) = 32),
        signature BLOB NOT NULL CHECK (length(signature) = 64),
        step_prev TEXT,
        request_hash TEXT,
        response_hash TEXT,
        step_amount TEXT,
        client_key BLOB CHECK (client_key IS NULL OR length(client_key) = 32),
        sealed_response BLOB,
        input_units TEXT,
        output_units TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (channel, open_id, seqno),
        FOREIGN KEY (channel, open_id) REFERENCES channels (channel, open_id)
    ) STRICT;
    CREATE INDEX IF NOT EXISTS channel_receipts_by_request ON channel_receipts (channel, open_id, request_hash);
    CREATE INDEX IF NOT EXISTS channel_receipts_by_key ON channel_receipts (channel, open_id, client_key);
`;

interface ChannelRow {
    channel: string;
    open_id: string;
    model_hash: string;
    expires_at: number;
    seen_at: number;
    status: ChannelStatus;
    outcome: string | null;
    claim_attempts: number;
    last_claim_seqno: number | null;
    last_claim_at: number | null;
    created_at: number;
    updated_at: number;
}

interface ChannelReceiptRow {
    channel: string;
    open_id: string;
    seqno: number;
    amount: string;
    requests: string;
    root: string;
    final: number;
    receipt: Buffer;
    signature: Buffer;
    step_prev: string | null;
    request_hash: string | null;
    response_hash: string | null;
    step_amount: string | null;
    client_key: Buffer | null;
    sealed_response: Buffer | null;
    input_units: string | null;
    output_units: string | null;
    created_at: number;
}

/** The named parameters of a channel receipt insert, and the fields the compare-and-swap checks. */
interface ChannelInsert {
    params: Record<string, string | number | Buffer | null>;
    seqno: number;
    amount: bigint;
    requests: bigint;
    root: bigint;
    final: boolean;
    step: ChannelStepFields | null;
}

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

function prepareChannelStatements(db: Database.Database) {
    return {
        insertChannel: db.prepare(
            `INSERT INTO channels (channel, open_id, model_hash, expires_at, seen_at, status, created_at, updated_at)
             VALUES (@channel, @openId, @modelHash, @expiresAt, @seenAt, 'open', @seenAt, @seenAt)
             ON CONFLICT (channel, open_id) DO NOTHING`,
        ),
        getChannel: db.prepare<[string, string], ChannelRow>('SELECT * FROM channels WHERE channel = ? AND open_id = ?'),
        // open_id is canonical decimal: longer means larger, then text order is numeric order.
        latestOpening: db.prepare<[string], ChannelRow>('SELECT * FROM channels WHERE channel = ? ORDER BY length(open_id) DESC, open_id DESC LIMIT 1'),
        openChannels: db.prepare<[], ChannelRow>("SELECT * FROM channels WHERE status = 'open' ORDER BY created_at, channel, length(open_id), open_id"),
        openAt: db.prepare<[string], ChannelRow>("SELECT * FROM channels WHERE channel = ? AND status = 'open'"),
        noteClaim: db.prepare<[number, number, number, string, string]>(
            'UPDATE channels SET claim_attempts = claim_attempts + 1, last_claim_seqno = ?, last_claim_at = ?, updated_at = ? WHERE channel = ? AND open_id = ?',
        ),
        setEnded: db.prepare<[string, number, string, string]>("UPDATE channels SET status = 'ended', outcome = ?, updated_at = ? WHERE channel = ? AND open_id = ?"),
        channelCounts: db.prepare<[], { status: ChannelStatus; n: number }>('SELECT status, count(*) AS n FROM channels GROUP BY status'),
        insertReceipt: db.prepare(
            `INSERT INTO channel_receipts (channel, open_id, seqno, amount, requests, root, final, receipt, receipt_hash, signature,
                step_prev, request_hash, response_hash, step_amount, client_key, sealed_response, input_units, output_units, created_at)
             VALUES (@channel, @openId, @seqno, @amount, @requests, @root, @final, @receipt, @receiptHash, @signature,
                @stepPrev, @requestHash, @responseHash, @stepAmount, @clientKey, @sealedResponse, @inputUnits, @outputUnits, @now)`,
        ),
        latestReceipt: db.prepare<[string, string], ChannelReceiptRow>('SELECT * FROM channel_receipts WHERE channel = ? AND open_id = ? ORDER BY seqno DESC LIMIT 1'),
        receiptAt: db.prepare<[string, string, number], ChannelReceiptRow>('SELECT * FROM channel_receipts WHERE channel = ? AND open_id = ? AND seqno = ?'),
        receiptsOf: db.prepare<[string, string], ChannelReceiptRow>('SELECT * FROM channel_receipts WHERE channel = ? AND open_id = ? ORDER BY seqno'),
        receiptByRequest: db.prepare<[string, string, string], ChannelReceiptRow>(
            'SELECT * FROM channel_receipts WHERE channel = ? AND open_id = ? AND request_hash = ? ORDER BY seqno LIMIT 1',
        ),
        receiptByKey: db.prepare<[string, string, Buffer], ChannelReceiptRow>(
            'SELECT * FROM channel_receipts WHERE channel = ? AND open_id = ? AND client_key = ? ORDER BY seqno LIMIT 1',
        ),
    };
}

type ChannelStatements = ReturnType<typeof prepareChannelStatements>;

type ChannelKey = { channel: string; openId: string };

function channelKeyOf(channel: Address, openId: bigint): ChannelKey {
    if (!(channel instanceof Address)) throw new StoreError('invalid-argument', 'channel must be an Address');
    return { channel: channel.toRawString(), openId: checkUint('openId', openId, UINT64_LIMIT) };
}

function channelName(key: ChannelKey): string {
    return `channel ${key.channel}#${key.openId}`;
}

function rowToChannel(row: ChannelRow): ChannelRecord {
    return {
        channel: Address.parseRaw(row.channel),
        openId: BigInt(row.open_id),
        modelHash: BigInt(row.model_hash),
        expiresAt: row.expires_at,
        seenAt: row.seen_at,
        status: row.status,
        outcome: row.outcome,
        claimAttempts: row.claim_attempts,
        lastClaimSeqno: row.last_claim_seqno === null ? null : BigInt(row.last_claim_seqno),
        lastClaimAt: row.last_claim_at,
        createdAt: row.created_at,
        updatedAt: row.updated_at,
    };
}

function rowToChannelReceipt(row: ChannelReceiptRow): ChannelReceiptRecord {
    const served: ChannelServed | null =
        row.step_prev === null
            ? null
            : {
                  step: { prev: BigInt(row.step_prev), requestHash: BigInt(row.request_hash!), responseHash: BigInt(row.response_hash!), amount: BigInt(row.step_amount!) },
                  clientKey: row.client_key!,
                  sealedResponse: row.sealed_response!,
                  inputUnits: BigInt(row.input_units!),
                  outputUnits: BigInt(row.output_units!),
              };
    return {
        channel: Address.parseRaw(row.channel),
        openId: BigInt(row.open_id),
        seqno: BigInt(row.seqno),
        amount: BigInt(row.amount),
        requests: BigInt(row.requests),
        root: BigInt(row.root),
        final: row.final === 1,
        receipt: Cell.fromBoc(row.receipt)[0],
        signature: row.signature,
        served,
        createdAt: row.created_at,
    };
}

/** Seqnos are uint64 on-chain; the store keeps them as SQLite integers, so it takes those up to 2^53 (a request a microsecond for 285 years). */
const MAX_SEQNO = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The runner's job store. One instance per process and file; several
 * processes may open the same file (SQLite serialises their writes), which is
 * how the crash tests race two runners. Not for use after close().
 */
export class JobStore {
    private closed = false;
    private readonly stmt: Statements;
    private readonly cstmt: ChannelStatements;
    private readonly ctx: {
        noteChannel: (key: ChannelKey, o: ChannelOpening) => boolean;
        record: (key: ChannelKey, insert: ChannelInsert) => ChannelReceiptRecord;
        noteClaim: (key: ChannelKey, seqno: number, at: number) => ChannelRecord;
        markEnded: (key: ChannelKey, outcome: string, at: number) => void;
    };
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
        this.cstmt = prepareChannelStatements(db);
        this.ctx = {
            noteChannel: this.transaction((key: ChannelKey, o: ChannelOpening) => this.noteChannelInTx(key, o)),
            record: this.transaction((key: ChannelKey, insert: ChannelInsert) => this.recordChannelInTx(key, insert)),
            noteClaim: this.transaction((key: ChannelKey, seqno: number, at: number) => this.noteClaimInTx(key, seqno, at)),
            markEnded: this.transaction((key: ChannelKey, outcome: string, at: number) => this.markChannelEndedInTx(key, outcome, at)),
        };
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
            db.exec(CHANNEL_SCHEMA);
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
        // Stores made before this index and the channel tables existed get them on open.
        db.exec('CREATE INDEX IF NOT EXISTS jobs_by_release ON jobs (status, release_at)');
        db.exec(CHANNEL_SCHEMA);
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

    // ---------------- payment channels ----------------

    private noteChannelInTx(key: ChannelKey, o: ChannelOpening): boolean {
        return this.cstmt.insertChannel.run({ channel: key.channel, openId: key.openId, modelHash: o.modelHash.toString(), expiresAt: o.expiresAt, seenAt: o.seenAt }).changes === 1;
    }

    /**
     * Notes a channel opening this runner serves (from its EngageChannel), so
     * receipts can be recorded for it and the job loop claims them. Returns
     * true if new; false (changing nothing) if already noted.
     */
    noteChannel(o: ChannelOpening): boolean {
        checkUint('modelHash', o.modelHash, UINT256_LIMIT);
        checkTime('expiresAt', o.expiresAt);
        checkTime('seenAt', o.seenAt);
        return this.guard('noteChannel', () => this.ctx.noteChannel(channelKeyOf(o.channel, o.openId), o));
    }

    /** The opening (channel, openId), or undefined. */
    getChannel(channel: Address, openId: bigint): ChannelRecord | undefined {
        return this.guard('getChannel', () => {
            const key = channelKeyOf(channel, openId);
            const row = this.cstmt.getChannel.get(key.channel, key.openId);
            return row === undefined ? undefined : rowToChannel(row);
        });
    }

    /** The channel's opening with the highest openId (its latest), or undefined. */
    latestOpening(channel: Address): ChannelRecord | undefined {
        return this.guard('latestOpening', () => {
            const row = this.cstmt.latestOpening.get(channelKeyOf(channel, 0n).channel);
            return row === undefined ? undefined : rowToChannel(row);
        });
    }

    /** Every opening still open, oldest noted first. */
    openChannels(): ChannelRecord[] {
        return this.guard('openChannels', () => this.cstmt.openChannels.all().map(rowToChannel));
    }

    /**
     * Checks a channel receipt on its own: its fields parse, are for this
     * (channel, openId), its signature is by this store's enclave key, a
     * served request's step hashes to the receipt's root and its sealed
     * response to the step's responseHash; a final receipt serves none.
     * What it must chain from is checked in the transaction.
     */
    private validateChannel(e: SignedChannelEntry, now: number): { key: ChannelKey; insert: ChannelInsert } {
        const key = channelKeyOf(e.channel, e.openId);
        const name = channelName(key);
        checkTime('now', now);
        checkBytes('signature', e.signature, 64);
        if (!(e.receipt instanceof Cell)) throw new StoreError('invalid-argument', 'receipt must be a Cell');
        let r: ReturnType<typeof parseChannelReceipt>;
        try {
            r = parseChannelReceipt(e.receipt);
        } catch (err) {
            throw new StoreError('invalid-argument', `${name}: not a channel receipt (${describeError(err)})`, { cause: err });
        }
        if (!r.channel.equals(e.channel) || r.openId !== e.openId) throw new StoreError('invalid-argument', `${name}: the receipt is for another channel or opening`);
        if (r.seqno < 1n || r.seqno > MAX_SEQNO) throw new StoreError('invalid-argument', `${name}: seqno ${r.seqno} is outside [1, 2^53)`);
        const hash = channelReceiptHash(e.receipt);
        if (!verifyHash(hash, e.signature, this.enclaveKey)) throw new StoreError('invalid-argument', `${name}: the signature is not by this store's enclave key`);
        let step: ChannelStepFields | null = null;
        let served: Record<string, string | Buffer | null> = {
            stepPrev: null,
            requestHash: null,
            responseHash: null,
            stepAmount: null,
            clientKey: null,
            sealedResponse: null,
            inputUnits: null,
            outputUnits: null,
        };
        if (e.served) {
            if (r.final) throw new StoreError('invalid-argument', `${name}: a final receipt serves no request`);
            step = e.served.step;
            checkUint('step.prev', step.prev, UINT256_LIMIT);
            checkUint('step.requestHash', step.requestHash, UINT256_LIMIT);
            checkUint('step.responseHash', step.responseHash, UINT256_LIMIT);
            checkUint('step.amount', step.amount, COINS_LIMIT);
            checkBytes('clientKey', e.served.clientKey, 32);
            checkBytes('sealedResponse', e.served.sealedResponse);
            if (nextRoot(step) !== r.root) throw new StoreError('invalid-argument', `${name}: the step does not hash to the receipt's root`);
            const responseHash = BigInt('0x' + createHash('sha256').update(e.served.sealedResponse).digest('hex'));
            if (step.responseHash !== responseHash) throw new StoreError('invalid-argument', `${name}: the step's responseHash is not sha256 of sealedResponse`);
            served = {
                stepPrev: step.prev.toString(),
                requestHash: step.requestHash.toString(),
                responseHash: step.responseHash.toString(),
                stepAmount: step.amount.toString(),
                clientKey: e.served.clientKey,
                sealedResponse: e.served.sealedResponse,
                inputUnits: checkUint('inputUnits', e.served.inputUnits, UINT64_LIMIT),
                outputUnits: checkUint('outputUnits', e.served.outputUnits, UINT64_LIMIT),
            };
        } else if (!r.final) throw new StoreError('invalid-argument', `${name}: a receipt that serves no request must be final`);
        return {
            key,
            insert: {
                params: {
                    channel: key.channel,
                    openId: key.openId,
                    seqno: Number(r.seqno),
                    amount: r.amount.toString(),
                    requests: r.requests.toString(),
                    root: r.root.toString(),
                    final: r.final ? 1 : 0,
                    receipt: e.receipt.toBoc(),
                    receiptHash: hash,
                    signature: e.signature,
                    ...served,
                    now,
                },
                seqno: Number(r.seqno),
                amount: r.amount,
                requests: r.requests,
                root: r.root,
                final: r.final,
                step,
            },
        };
    }

    private recordChannelInTx(key: ChannelKey, c: ChannelInsert): ChannelReceiptRecord {
        const name = channelName(key);
        const opening = this.cstmt.getChannel.get(key.channel, key.openId);
        if (opening === undefined) throw new StoreError('not-found', `${name} is not noted: noteChannel first`);
        if (opening.status !== 'open') throw new StoreError('conflict', `${name} has ended: nothing more is signed for it`);
        const latest = this.cstmt.latestReceipt.get(key.channel, key.openId);
        const last = latest
            ? { seqno: latest.seqno, amount: BigInt(latest.amount), requests: BigInt(latest.requests), root: BigInt(latest.root), final: latest.final === 1 }
            : { seqno: 0, amount: 0n, requests: 0n, root: 0n, final: false };
        if (last.final) throw new StoreError('conflict', `${name} has a final receipt (seqno ${last.seqno}): nothing more is signed for it`);
        if (c.seqno !== last.seqno + 1) throw new StoreError('conflict', `${name}: seqno ${c.seqno} does not follow the latest stored ${last.seqno}`);
        const broken: string[] = [];
        if (c.step) {
            if (c.step.prev !== last.root) broken.push('step.prev is not the latest root');
            if (c.amount !== last.amount + c.step.amount) broken.push(`amount ${c.amount} is not ${last.amount} + ${c.step.amount}`);
            if (c.requests !== last.requests + 1n) broken.push(`requests ${c.requests} is not ${last.requests} + 1`);
        } else {
            if (c.amount !== last.amount) broken.push(`the final amount ${c.amount} is not the latest ${last.amount}`);
            if (c.requests !== last.requests) broken.push('the final request count is not the latest');
            if (c.root !== last.root) broken.push('the final root is not the latest');
        }
        if (broken.length > 0) throw new StoreError('conflict', `${name} seqno ${c.seqno} does not chain from the latest stored receipt: ${broken.join('; ')}`);
        this.cstmt.insertReceipt.run(c.params);
        return rowToChannelReceipt(this.cstmt.receiptAt.get(key.channel, key.openId, c.seqno)!);
    }

    /**
     * Records a channel receipt before anything of it is published: a
     * compare-and-swap in one transaction. It is stored only if it is the
     * next one of its opening: seqno = latest + 1, and a served request's
     * step chains from the latest (prev = latest root, amount = latest +
     * step.amount, requests + 1), or a final receipt repeats the latest
     * amount, count and root. Otherwise StoreError 'conflict' and nothing is
     * stored: the caller discards the signature (it never left the
     * process). Nothing is recorded after a final receipt, or for an opening
     * that ended or was never noted ('not-found').
     *
     * Refuses (StoreError 'invalid-argument') a receipt not signed by this
     * store's enclave key, for another channel or opening, whose step does not
     * hash to its root or whose response does not hash to the step.
     */
    recordChannelReceipt(entry: SignedChannelEntry, now: number): ChannelReceiptRecord {
        return this.guard('recordChannelReceipt', () => {
            // Checked before the write lock is taken: verifying a signature needs no lock.
            const { key, insert } = this.validateChannel(entry, now);
            return this.ctx.record(key, insert);
        });
    }

    /** The opening's latest receipt (highest seqno), or undefined. */
    latestChannelReceipt(channel: Address, openId: bigint): ChannelReceiptRecord | undefined {
        return this.guard('latestChannelReceipt', () => {
            const key = channelKeyOf(channel, openId);
            const row = this.cstmt.latestReceipt.get(key.channel, key.openId);
            return row === undefined ? undefined : rowToChannelReceipt(row);
        });
    }

    /** The opening's receipt `seqno`, or undefined. */
    channelReceiptAt(channel: Address, openId: bigint, seqno: bigint): ChannelReceiptRecord | undefined {
        return this.guard('channelReceiptAt', () => {
            const key = channelKeyOf(channel, openId);
            if (typeof seqno !== 'bigint' || seqno < 1n || seqno > MAX_SEQNO) return undefined;
            const row = this.cstmt.receiptAt.get(key.channel, key.openId, Number(seqno));
            return row === undefined ? undefined : rowToChannelReceipt(row);
        });
    }

    /** Every receipt of the opening, by seqno. */
    channelReceipts(channel: Address, openId: bigint): ChannelReceiptRecord[] {
        return this.guard('channelReceipts', () => {
            const key = channelKeyOf(channel, openId);
            return this.cstmt.receiptsOf.all(key.channel, key.openId).map(rowToChannelReceipt);
        });
    }

    /** The receipt signed right after the request with this requestHash in the opening (a retry is answered from it), or undefined. */
    channelReceiptByRequest(channel: Address, openId: bigint, requestHash: bigint): ChannelReceiptRecord | undefined {
        return this.guard('channelReceiptByRequest', () => {
            const key = channelKeyOf(channel, openId);
            const row = this.cstmt.receiptByRequest.get(key.channel, key.openId, checkUint('requestHash', requestHash, UINT256_LIMIT));
            return row === undefined ? undefined : rowToChannelReceipt(row);
        });
    }

    /** The receipt of the request the client sent with this one-time key in the opening, or undefined. */
    channelReceiptByClientKey(channel: Address, openId: bigint, clientKey: Buffer): ChannelReceiptRecord | undefined {
        return this.guard('channelReceiptByClientKey', () => {
            const key = channelKeyOf(channel, openId);
            const row = this.cstmt.receiptByKey.get(key.channel, key.openId, checkBytes('clientKey', clientKey, 32));
            return row === undefined ? undefined : rowToChannelReceipt(row);
        });
    }

    private noteClaimInTx(key: ChannelKey, seqno: number, at: number): ChannelRecord {
        const row = this.cstmt.getChannel.get(key.channel, key.openId);
        if (row === undefined) throw new StoreError('not-found', `${channelName(key)} is not noted`);
        if (this.cstmt.receiptAt.get(key.channel, key.openId, seqno) === undefined) throw new StoreError('not-found', `${channelName(key)} has no receipt ${seqno}`);
        this.cstmt.noteClaim.run(seqno, at, at, key.channel, key.openId);
        return rowToChannel(this.cstmt.getChannel.get(key.channel, key.openId)!);
    }

    /**
     * Durably notes that ClaimChannel is about to be sent with receipt
     * `seqno`; call it BEFORE sending. After a restart, lastClaimSeqno and
     * lastClaimAt say a claim may be on its way. Returns the updated opening.
     */
    noteClaimAttempt(channel: Address, openId: bigint, seqno: bigint, at: number): ChannelRecord {
        if (typeof seqno !== 'bigint' || seqno < 1n || seqno > MAX_SEQNO) throw new StoreError('invalid-argument', 'seqno must be a bigint in [1, 2^53)');
        return this.guard('noteClaimAttempt', () => this.ctx.noteClaim(channelKeyOf(channel, openId), Number(seqno), checkTime('at', at)));
    }

    private markChannelEndedInTx(key: ChannelKey, outcome: string, at: number): void {
        const row = this.cstmt.getChannel.get(key.channel, key.openId);
        if (row === undefined) throw new StoreError('not-found', `${channelName(key)} is not noted`);
        if (row.status === 'ended') return;
        this.cstmt.setEnded.run(outcome, at, key.channel, key.openId);
    }

    /** The opening ended (closed on-chain, or the address was opened again): nothing more is signed or claimed for it. Idempotent (the first outcome stays). */
    markChannelEnded(channel: Address, openId: bigint, outcome: string, at: number): void {
        if (typeof outcome !== 'string' || outcome.length === 0) throw new StoreError('invalid-argument', 'outcome must be a non-empty string');
        this.guard('markChannelEnded', () => this.ctx.markEnded(channelKeyOf(channel, openId), outcome, checkTime('at', at)));
    }

    /** Marks every open opening at `channel` ended (ChannelEnded names the address, not the opening). Returns how many. */
    markChannelAddressEnded(channel: Address, outcome: string, at: number): number {
        if (typeof outcome !== 'string' || outcome.length === 0) throw new StoreError('invalid-argument', 'outcome must be a non-empty string');
        return this.guard('markChannelAddressEnded', () => {
            const rows = this.cstmt.openAt.all(channelKeyOf(channel, 0n).channel);
            for (const row of rows) this.ctx.markEnded({ channel: row.channel, openId: row.open_id }, outcome, checkTime('at', at));
            return rows.length;
        });
    }

    /** How many channel openings are open and ended. */
    channelCounts(): Record<ChannelStatus, number> {
        return this.guard('channelCounts', () => {
            const out: Record<ChannelStatus, number> = { open: 0, ended: 0 };
            for (const { status, n } of this.cstmt.channelCounts.all()) out[status] = n;
            return out;
        });
    }

    /** Closes the database; every later call fails with StoreError 'closed'. Idempotent. */
    close(): void {
        if (this.closed) return;
        this.closed = true;
        this.db.close();
    }
}
