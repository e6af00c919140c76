// The one module that owns the completion receipt layout: build, hash, sign,
// parse and verify. The Escrow checks the same layout (contracts/messages.tact,
// struct CompletionReceipt); tests/receipt.spec.ts proves the two agree, and
// tests/receiptHash.spec.ts that the fast hash (receiptHashOf) is the cell's.
import { createHash, hash as oneShotHash } from 'crypto';
import { Address, beginCell, Cell } from '@ton/core';
import {
    CompletionReceipt,
    loadCompletionReceipt,
    loadSubmitReceipt,
    ProveEquivocation,
    ProveInvalidReceipt,
    RECEIPT_TAG,
    storeCompletionReceipt,
    storeSignedReceipt,
    SubmitReceipt,
    EscrowInfo,
} from './Registry';
import { Ed25519KeyPair, signHash, verifyHash } from './ed25519';

/** The receipt's 32-bit tag ('rcpt'), first field of every CompletionReceipt. */
export { RECEIPT_TAG };

/** What an enclave attests about one finished job. */
export interface ReceiptFields {
    escrow: Address;
    /** The escrow's engageId (EscrowInfo.engageId): one opening of that address. */
    engageId: bigint;
    requestHash: bigint;
    /** sha256 of the encrypted response the client received. */
    responseHash: bigint;
    modelHash: bigint;
    inputUnits: bigint;
    outputUnits: bigint;
    /** Nanoton charged; at most the escrow's maxAmount. */
    amount: bigint;
    /** Unix seconds; at most the escrow's deadline. */
    finishedAt: number;
}

/** A receipt cell with the enclave's signature over its representation hash. */
export interface SignedReceipt {
    receipt: Cell;
    signature: Buffer;
}

/** A receipt that cannot be built, parsed or accepted; the message says why. */
export class ReceiptError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ReceiptError';
    }
}

/**
 * The receipt cell, through the generated storer: the layout's one definition,
 * and what goes on-chain. Throws ReceiptError for a field out of its range.
 */
export function buildReceipt(fields: ReceiptFields): Cell {
    // Same checks as the fast path, so both throw ReceiptError rather than the builder's untyped Error.
    checkRanges(fields);
    const receipt: CompletionReceipt = {
        $$type: 'CompletionReceipt',
        tag: RECEIPT_TAG,
        escrow: fields.escrow,
        engageId: fields.engageId,
        requestHash: fields.requestHash,
        responseHash: fields.responseHash,
        modelHash: fields.modelHash,
        inputUnits: fields.inputUnits,
        outputUnits: fields.outputUnits,
        amount: fields.amount,
        finishedAt: BigInt(fields.finishedAt),
    };
    return beginCell().store(storeCompletionReceipt(receipt)).endCell();
}

/** The 32 bytes the enclave signs and the Escrow checks: the cell's representation hash. */
export function receiptHash(receipt: Cell): Buffer {
    return receipt.hash();
}

/** Builds the receipt cell and signs its hash: what a provider submits. Use signReceiptHash on a hot path. */
export function signReceipt(fields: ReceiptFields, enclave: Ed25519KeyPair): SignedReceipt {
    const receipt = buildReceipt(fields);
    return { receipt, signature: signHash(receiptHash(receipt), enclave) };
}

// ---------------------------------------------------------------------------
// Fast path: the receipt's representation hash straight from the fields.
//
// Building the cell with @ton/core costs about as much as the ed25519
// signature itself, so the runner's hot path writes the two cells'
// representations (TVM cell serialisation, standard cells, level 0) into
// preallocated buffers and hashes them. This is a second spelling of
// storeCompletionReceipt, not a second layout: tests/receiptHash.spec.ts
// proves receiptHashOf(f) equals buildReceipt(f).hash() for every field range.
//
// Root cell (875 bits, one ref):
//   tag:uint32 | escrow: 10 0 int8 wc, 256-bit hash | engageId:uint64 | requestHash:uint256 | responseHash:uint256 | ^child
// Child cell (420 + 8*L bits, no refs), L = the amount's length in bytes (0..15):
//   modelHash:uint256 | inputUnits:uint64 | outputUnits:uint64 | amount: L:uint4, L bytes | finishedAt:uint32
// Representation = d1 (refs) | d2 (floor(bits/8) + ceil(bits/8)) | data, padded
// with a 1 bit then 0s to a whole byte | each child's depth (2 bytes) | each child's hash.
// ---------------------------------------------------------------------------

const UINT32_MAX = 0xffffffff;
const UINT64_LIMIT = 1n << 64n;
const UINT256_LIMIT = 1n << 256n;
/** Coins are VarUInteger 16: a 4-bit byte length, so at most 15 bytes. */
const COINS_LIMIT = 1n << 120n;
// COINS_BYTE_LIMITS[k] = 2^(8k): an amount below it fits in k bytes.
const COINS_BYTE_LIMITS: readonly bigint[] = Array.from({ length: 16 }, (_, k) => 1n << BigInt(8 * k));

const ROOT_BITS = 32 + 267 + 64 + 256 + 256; // 875
const ROOT_DATA_BYTES = Math.ceil(ROOT_BITS / 8); // 110
const ROOT_REPR_BYTES = 2 + ROOT_DATA_BYTES + 2 + 32; // 146
const CHILD_FIXED_BITS = 256 + 64 + 64 + 4 + 32; // 420, plus 8 per amount byte
const CHILD_REPR_MAX_BYTES = 2 + Math.ceil((CHILD_FIXED_BITS + 8 * 15) / 8); // 70

// Preallocated once: a call writes every byte it hashes, so nothing leaks between calls
// (JavaScript runs one call at a time; none of them yields).
const rootRepr = Buffer.alloc(ROOT_REPR_BYTES);
const childRepr = Buffer.alloc(CHILD_REPR_MAX_BYTES);
// The root's fields after the address's 3 tag bits, byte-aligned, before the 3-bit shift:
// wc (1) | address hash (32) | engageId (8) | requestHash (32) | responseHash (32) = 105 bytes.
const rootTail = Buffer.alloc(105);
// amount as 16 bytes big-endian, then finishedAt: the child's nibble-shifted tail is its last L + 4 bytes.
const childTail = Buffer.alloc(20);
const rootTailView = new DataView(rootTail.buffer, rootTail.byteOffset, rootTail.byteLength);
const childReprView = new DataView(childRepr.buffer, childRepr.byteOffset, childRepr.byteLength);
const childTailView = new DataView(childTail.buffer, childTail.byteOffset, childTail.byteLength);
// One view per amount length, so hashing allocates no subarray per call.
const childReprByLength: readonly Buffer[] = Array.from({ length: 16 }, (_, l) => childRepr.subarray(0, 2 + 53 + l));

rootRepr[0] = 1; // d1: one ref, ordinary, level 0
rootRepr[1] = Math.floor(ROOT_BITS / 8) + ROOT_DATA_BYTES; // d2 = 219
rootRepr.writeUInt32BE(Number(RECEIPT_TAG), 2);
// Bytes 112..113 stay 0: the child is a leaf, depth 0.
childRepr[0] = 0; // d1: no refs

// crypto.hash (Node 20.12+) skips the Hash object; createHash keeps older Node 20 working.
const sha256: (data: Buffer) => Buffer =
    typeof oneShotHash === 'function' ? (data) => oneShotHash('sha256', data, 'buffer') : (data) => createHash('sha256').update(data).digest();

function checkUint(name: string, value: bigint, limit: bigint, type: string): void {
    if (typeof value !== 'bigint' || value < 0n || value >= limit) throw new ReceiptError(`${name} must be a ${type}, got ${String(value)}`);
}

/** Every field within the range its slot in the layout holds (the escrow is checked where it is written). */
function checkRanges(f: ReceiptFields): void {
    checkUint('engageId', f.engageId, UINT64_LIMIT, 'uint64');
    checkUint('requestHash', f.requestHash, UINT256_LIMIT, 'uint256');
    checkUint('responseHash', f.responseHash, UINT256_LIMIT, 'uint256');
    checkUint('modelHash', f.modelHash, UINT256_LIMIT, 'uint256');
    checkUint('inputUnits', f.inputUnits, UINT64_LIMIT, 'uint64');
    checkUint('outputUnits', f.outputUnits, UINT64_LIMIT, 'uint64');
    checkUint('amount', f.amount, COINS_LIMIT, 'coins value below 2^120');
    if (!Number.isInteger(f.finishedAt) || f.finishedAt < 0 || f.finishedAt > UINT32_MAX) {
        throw new ReceiptError(`finishedAt must be a uint32, got ${String(f.finishedAt)}`);
    }
}

// Big-endian uint256 at offset; the value is already range-checked.
function writeUint256(view: DataView, offset: number, value: bigint): void {
    view.setBigUint64(offset + 24, value); // setBigUint64 keeps the low 64 bits
    view.setBigUint64(offset + 16, value >> 64n);
    view.setBigUint64(offset + 8, value >> 128n);
    view.setBigUint64(offset, value >> 192n);
}

/**
 * The representation hash of the receipt cell for these fields, without
 * building the cell: equal to receiptHash(buildReceipt(fields)), at a
 * fraction of the cost. Throws ReceiptError for a field out of range or an
 * escrow that is not a std address in workchain 0 or -1.
 */
export function receiptHashOf(fields: ReceiptFields): Buffer {
    checkRanges(fields);
    const escrow = fields.escrow;
    if (!Address.isAddress(escrow) || (escrow.workChain !== 0 && escrow.workChain !== -1) || escrow.hash.length !== 32) {
        throw new ReceiptError('escrow must be a std address in workchain 0 or -1');
    }

    // Child cell first: the root carries its hash.
    const amount = fields.amount;
    let len = 0; // bytes the amount needs: 0 for 0, as the builder writes it; ends by 15 as amount < 2^120
    while (amount >= COINS_BYTE_LIMITS[len]) len++;
    childRepr[1] = 105 + 2 * len; // d2: 420 + 8L bits is 52 + L whole bytes and 53 + L started ones
    writeUint256(childReprView, 2, fields.modelHash);
    childReprView.setBigUint64(34, fields.inputUnits);
    childReprView.setBigUint64(42, fields.outputUnits);
    childTailView.setBigUint64(0, amount >> 64n);
    childTailView.setBigUint64(8, amount);
    childTailView.setUint32(16, fields.finishedAt);
    // Byte 50 on is shifted by the 4-bit length: L, then the amount's last L bytes and finishedAt.
    let src = 16 - len;
    childRepr[50] = (len << 4) | (childTail[src] >> 4);
    let dst = 51;
    for (; src < 19; src++, dst++) childRepr[dst] = ((childTail[src] << 4) | (childTail[src + 1] >> 4)) & 0xff;
    childRepr[dst] = ((childTail[19] << 4) & 0xff) | 0x08; // last 4 bits, then the padding 1
    const childHash = sha256(childReprByLength[len]);

    // Root: bytes 2..5 hold the tag (fixed); from byte 6 the address's 3-bit prefix 100 shifts the rest.
    rootTail[0] = escrow.workChain & 0xff;
    escrow.hash.copy(rootTail, 1);
    rootTailView.setBigUint64(33, fields.engageId);
    writeUint256(rootTailView, 41, fields.requestHash);
    writeUint256(rootTailView, 73, fields.responseHash);
    rootRepr[6] = 0x80 | (rootTail[0] >> 3);
    for (let i = 1; i < 105; i++) rootRepr[6 + i] = ((rootTail[i - 1] << 5) | (rootTail[i] >> 3)) & 0xff;
    rootRepr[111] = ((rootTail[104] << 5) & 0xff) | 0x10; // last 3 bits, then the padding 1
    childHash.copy(rootRepr, 114);
    return sha256(rootRepr);
}

/** A receipt hash and the enclave's signature over it, from signReceiptHash. */
export interface SignedReceiptHash {
    /** receiptHashOf(fields): the receipt cell's representation hash. */
    hash: Buffer;
    /** 64-byte ed25519 signature over hash; the same bytes signReceipt gives (ed25519 is deterministic). */
    signature: Buffer;
}

/**
 * Signs a receipt without building its cell: the runner's hot path. The
 * cell, needed only to submit on-chain, can be built later with
 * buildReceipt(fields) and paired with this signature.
 */
export function signReceiptHash(fields: ReceiptFields, enclave: Ed25519KeyPair): SignedReceiptHash {
    const hash = receiptHashOf(fields);
    return { hash, signature: signHash(hash, enclave) };
}

/**
 * Whether signature is the enclave's over the receipt for these fields,
 * without building the cell. Returns false for a bad signature; throws
 * ReceiptError only for fields no receipt can hold. Checks the signature
 * only: verifyReceipt also checks the fields against the escrow's terms.
 */
export function verifyReceiptSignature(fields: ReceiptFields, signature: Buffer, enclaveKey: Buffer | bigint): boolean {
    return verifyHash(receiptHashOf(fields), signature, enclaveKey);
}

/** Reads a receipt cell; throws ReceiptError if it is not tagged as a completion receipt. */
export function parseReceipt(receipt: Cell): CompletionReceipt {
    const parsed = loadCompletionReceipt(receipt.beginParse());
    if (parsed.tag !== RECEIPT_TAG) throw new ReceiptError(`not a completion receipt (tag ${parsed.tag})`);
    return parsed;
}

/**
 * The checks the Escrow makes: signature under the engaged enclave key, then
 * the receipt's escrow, request, model, amount bound and time bounds.
 */
export function verifyReceipt(
    signed: SignedReceipt,
    expected: { enclaveKey: bigint; escrow: Address; engageId: bigint; requestHash: bigint; modelHash: bigint; maxAmount: bigint; deadline: number },
): CompletionReceipt {
    if (!verifyHash(receiptHash(signed.receipt), signed.signature, expected.enclaveKey)) throw new ReceiptError('bad enclave signature');
    const r = parseReceipt(signed.receipt);
    if (!r.escrow.equals(expected.escrow)) throw new ReceiptError('receipt is for another escrow');
    if (r.engageId !== expected.engageId) throw new ReceiptError('receipt is for another opening of this escrow');
    if (r.requestHash !== expected.requestHash) throw new ReceiptError('receipt is for another request');
    if (r.modelHash !== expected.modelHash) throw new ReceiptError('receipt is for another model');
    if (r.amount > expected.maxAmount) throw new ReceiptError('amount above maxAmount');
    if (r.finishedAt > BigInt(expected.deadline)) throw new ReceiptError('finished after the deadline');
    return r;
}

/** What verifyReceipt expects, as an Escrow's getter reports it (the engaged key, the terms, the opening). */
export function receiptExpectationOf(escrow: Address, info: EscrowInfo): Parameters<typeof verifyReceipt>[1] {
    if (info.engagement === null) throw new ReceiptError('the escrow is not engaged: no enclave key to check against');
    return {
        enclaveKey: info.engagement.enclaveKey,
        escrow,
        engageId: info.engageId,
        requestHash: info.requestHash,
        modelHash: info.modelHash,
        maxAmount: info.maxAmount,
        deadline: Number(info.deadline),
    };
}

/** JSON form for files passed from a provider's runner to whoever submits the receipt. */
export interface SignedReceiptJson {
    receipt: string; // BOC, base64
    signature: string; // hex, 64 bytes
}

/** The JSON form of a signed receipt. */
export function signedReceiptToJson(s: SignedReceipt): SignedReceiptJson {
    return {
        receipt: s.receipt.toBoc().toString('base64'),
        signature: s.signature.toString('hex'),
    };
}

/** Reads the JSON form; throws ReceiptError for a malformed signature or BOC (the signature is not checked here). */
export function signedReceiptFromJson(j: SignedReceiptJson): SignedReceipt {
    if (!/^[0-9a-fA-F]{128}$/.test(j.signature)) throw new ReceiptError('signature must be 64 bytes of hex');
    let receipt: Cell;
    try {
        receipt = Cell.fromBase64(j.receipt);
    } catch (e) {
        throw new ReceiptError(`receipt is not a BOC in base64 (${e instanceof Error ? e.message : String(e)})`);
    }
    return { receipt, signature: Buffer.from(j.signature, 'hex') };
}

/** The body of SubmitReceipt for a signed receipt. */
export function submitReceiptMessage(signed: SignedReceipt, queryId = 0n): SubmitReceipt {
    return { $$type: 'SubmitReceipt', queryId, signature: signed.signature, receipt: signed.receipt };
}

/**
 * The signed receipt inside a SubmitReceipt message body. An Escrow keeps
 * only the accepted receipt's amount; the receipt itself is read from the
 * SubmitReceipt it accepted (the inbound message of that transaction).
 */
export function receiptFromSubmitBody(body: Cell): SignedReceipt {
    let msg: SubmitReceipt;
    try {
        msg = loadSubmitReceipt(body.beginParse());
    } catch {
        throw new ReceiptError('not a SubmitReceipt message');
    }
    return { receipt: msg.receipt, signature: msg.signature };
}

/** A signed receipt as a fault proof carries it (struct SignedReceipt: signature, then ^receipt). */
export function signedReceiptCell(s: SignedReceipt): Cell {
    return beginCell().store(storeSignedReceipt({ $$type: 'SignedReceipt', signature: s.signature, receipt: s.receipt })).endCell();
}

/**
 * The body of ProveEquivocation: two different receipts for one request
 * (same escrow, engageId and requestHash), both signed by the Provider's
 * current enclave key. Checked here as the Provider would, so a proof that
 * cannot pay is refused before any TON is spent.
 */
export function proveEquivocationMessage(first: SignedReceipt, second: SignedReceipt, queryId = 0n): ProveEquivocation {
    const a = parseReceipt(first.receipt);
    const b = parseReceipt(second.receipt);
    if (!a.escrow.equals(b.escrow) || a.engageId !== b.engageId || a.requestHash !== b.requestHash) {
        throw new ReceiptError('the receipts are for different requests: no equivocation');
    }
    if (first.receipt.hash().equals(second.receipt.hash())) throw new ReceiptError('the receipts are the same: no equivocation');
    return { $$type: 'ProveEquivocation', queryId, first: signedReceiptCell(first), second: signedReceiptCell(second) };
}

/** The body of ProveInvalidReceipt for one signed receipt. */
export function proveInvalidReceiptMessage(signed: SignedReceipt, queryId = 0n): ProveInvalidReceipt {
    parseReceipt(signed.receipt);
    return { $$type: 'ProveInvalidReceipt', queryId, signed: signedReceiptCell(signed) };
}
