// The one module that owns the completion receipt layout: build, hash, sign,
// parse and verify. The Escrow checks the same layout (contracts/messages.tact,
// struct CompletionReceipt); tests/receipt.spec.ts proves the two agree.
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
} from './Registry';
import { Ed25519KeyPair, signHash, verifyHash } from './ed25519';

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

export interface SignedReceipt {
    receipt: Cell;
    signature: Buffer;
}

export class ReceiptError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ReceiptError';
    }
}

export function buildReceipt(fields: ReceiptFields): Cell {
    if (fields.amount < 0n) throw new ReceiptError('amount must not be negative');
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

export function signReceipt(fields: ReceiptFields, enclave: Ed25519KeyPair): SignedReceipt {
    const receipt = buildReceipt(fields);
    return { receipt, signature: signHash(receiptHash(receipt), enclave) };
}

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

/** JSON form for files passed from a provider's runner to whoever submits the receipt. */
export interface SignedReceiptJson {
    receipt: string; // BOC, base64
    signature: string; // hex, 64 bytes
}

export function signedReceiptToJson(s: SignedReceipt): SignedReceiptJson {
    return {
        receipt: s.receipt.toBoc().toString('base64'),
        signature: s.signature.toString('hex'),
    };
}

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
