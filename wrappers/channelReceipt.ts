// The one module that owns the cumulative channel receipt and the running
// root of its requests: build, hash, sign, parse, verify, and the bodies that
// carry them (claim, dispute, equivocation proof). The Channel and the
// Provider check the same layouts (contracts/messages.tact: ChannelReceipt,
// ChannelStep, SignedChannelReceipt); tests/channel.spec.ts proves they agree.
import { Address, beginCell, Cell } from '@ton/core';
import {
    CHANNEL_RECEIPT_TAG,
    ChannelReceipt,
    ChannelStep,
    ClaimChannel,
    DisputeChannelRequest,
    loadChannelReceipt,
    loadChannelStep,
    ProveChannelEquivocation,
    storeChannelReceipt,
    storeChannelStep,
    storeSignedChannelReceipt,
} from './Registry';
import { bufferToBigInt, Ed25519KeyPair, signHash, verifyHash } from './ed25519';

export { CHANNEL_RECEIPT_TAG };

/** What an enclave attests about a channel after a request. Amount and requests are cumulative since the opening. */
export interface ChannelReceiptFields {
    channel: Address;
    /** The channel's openId (ChannelInfo.openId): one opening of that address. */
    openId: bigint;
    /** Strictly increasing; a claim must raise it. */
    seqno: bigint;
    /** Cumulative nanoton charged; never decreasing, at most the deposit. */
    amount: bigint;
    /** Cumulative requests served. */
    requests: bigint;
    /** The running root after the last request (0 before any). */
    root: bigint;
    /** The enclave signs nothing more for this opening (claiming it closes the channel). */
    final: boolean;
}

/** One request as the running root chains it. */
export interface ChannelStepFields {
    /** The previous receipt's root (0 for the first request). */
    prev: bigint;
    requestHash: bigint;
    responseHash: bigint;
    /** What this request cost. */
    amount: bigint;
}

export interface SignedChannelReceipt {
    receipt: Cell;
    signature: Buffer;
}

export class ChannelReceiptError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ChannelReceiptError';
    }
}

export function buildChannelReceipt(f: ChannelReceiptFields): Cell {
    if (f.amount < 0n || f.seqno < 0n || f.requests < 0n) throw new ChannelReceiptError('amount, seqno and requests must not be negative');
    const r: ChannelReceipt = { $$type: 'ChannelReceipt', tag: CHANNEL_RECEIPT_TAG, channel: f.channel, openId: f.openId, seqno: f.seqno, amount: f.amount, requests: f.requests, root: f.root, final: f.final };
    return beginCell().store(storeChannelReceipt(r)).endCell();
}

/** The 32 bytes the enclave signs and the contracts check: the cell's representation hash. */
export function channelReceiptHash(receipt: Cell): Buffer {
    return receipt.hash();
}

export function signChannelReceipt(f: ChannelReceiptFields, enclave: Ed25519KeyPair): SignedChannelReceipt {
    const receipt = buildChannelReceipt(f);
    return { receipt, signature: signHash(channelReceiptHash(receipt), enclave) };
}

export function parseChannelReceipt(receipt: Cell): ChannelReceipt {
    const r = loadChannelReceipt(receipt.beginParse());
    if (r.tag !== CHANNEL_RECEIPT_TAG) throw new ChannelReceiptError(`not a channel receipt (tag ${r.tag})`);
    return r;
}

export function buildChannelStep(s: ChannelStepFields): Cell {
    const step: ChannelStep = { $$type: 'ChannelStep', prev: s.prev, requestHash: s.requestHash, responseHash: s.responseHash, amount: s.amount };
    return beginCell().store(storeChannelStep(step)).endCell();
}

export function parseChannelStep(step: Cell): ChannelStep {
    return loadChannelStep(step.beginParse());
}

/** The running root after `step`: the step cell's hash. */
export function nextRoot(step: ChannelStepFields): bigint {
    return bufferToBigInt(buildChannelStep(step).hash());
}

/**
 * The checks the Channel makes on a claim, and the ones a client makes on
 * every receipt: signed by the engaged key, for this channel and opening,
 * seqno above the last one seen, cumulative amount not below the last one
 * and at most the deposit. Returns the parsed receipt.
 */
export function verifyChannelReceipt(
    signed: SignedChannelReceipt,
    expected: { enclaveKey: bigint | Buffer; channel: Address; openId: bigint; deposit: bigint; after?: { seqno: bigint; amount: bigint; requests: bigint } },
): ChannelReceipt {
    if (!verifyHash(channelReceiptHash(signed.receipt), signed.signature, expected.enclaveKey)) throw new ChannelReceiptError('bad enclave signature');
    const r = parseChannelReceipt(signed.receipt);
    if (!r.channel.equals(expected.channel)) throw new ChannelReceiptError('receipt is for another channel');
    if (r.openId !== expected.openId) throw new ChannelReceiptError('receipt is for another opening of this channel');
    if (r.amount > expected.deposit) throw new ChannelReceiptError('cumulative amount above the deposit');
    if (expected.after) {
        if (r.seqno <= expected.after.seqno) throw new ChannelReceiptError('seqno did not increase');
        if (r.amount < expected.after.amount) throw new ChannelReceiptError('cumulative amount decreased: equivocation');
        if (r.requests < expected.after.requests) throw new ChannelReceiptError('request count decreased');
    }
    return r;
}

/** A signed channel receipt as proofs carry it (struct SignedChannelReceipt). */
export function signedChannelReceiptCell(s: SignedChannelReceipt): Cell {
    return beginCell().store(storeSignedChannelReceipt({ $$type: 'SignedChannelReceipt', signature: s.signature, receipt: s.receipt })).endCell();
}

/** The body of ClaimChannel. */
export function claimChannelMessage(s: SignedChannelReceipt, queryId = 0n): ClaimChannel {
    return { $$type: 'ClaimChannel', queryId, signature: s.signature, receipt: s.receipt };
}

/** The body of DisputeChannelRequest: the receipt signed right after the request, and its step. */
export function disputeChannelRequestMessage(s: SignedChannelReceipt, step: ChannelStepFields, reason: number, evidenceHash: bigint, queryId = 0n): DisputeChannelRequest {
    const r = parseChannelReceipt(s.receipt);
    if (nextRoot(step) !== r.root) throw new ChannelReceiptError('the step does not hash to the receipt’s root');
    return { $$type: 'DisputeChannelRequest', queryId, signature: s.signature, receipt: s.receipt, step: buildChannelStep(step), reason: BigInt(reason), evidenceHash };
}

/**
 * Whether two receipts signed for one opening cannot both be honest: the
 * same seqno with different contents, or a higher seqno with a lower
 * cumulative amount (what the Provider slashes).
 */
export function channelReceiptsConflict(a: SignedChannelReceipt, b: SignedChannelReceipt): boolean {
    const x = parseChannelReceipt(a.receipt);
    const y = parseChannelReceipt(b.receipt);
    if (!x.channel.equals(y.channel) || x.openId !== y.openId) return false;
    if (x.seqno === y.seqno) return !a.receipt.hash().equals(b.receipt.hash());
    return (x.seqno > y.seqno && x.amount < y.amount) || (y.seqno > x.seqno && y.amount < x.amount);
}

/** The body of ProveChannelEquivocation; refused here unless the receipts conflict. */
export function proveChannelEquivocationMessage(a: SignedChannelReceipt, b: SignedChannelReceipt, queryId = 0n): ProveChannelEquivocation {
    if (!channelReceiptsConflict(a, b)) throw new ChannelReceiptError('these receipts do not conflict: no equivocation');
    return { $$type: 'ProveChannelEquivocation', queryId, first: signedChannelReceiptCell(a), second: signedChannelReceiptCell(b) };
}

/** JSON form for files and the runner's HTTP answers. */
export interface SignedChannelReceiptJson {
    receipt: string; // BOC, base64
    signature: string; // hex, 64 bytes
}

export function signedChannelReceiptToJson(s: SignedChannelReceipt): SignedChannelReceiptJson {
    return { receipt: s.receipt.toBoc().toString('base64'), signature: s.signature.toString('hex') };
}

export function signedChannelReceiptFromJson(j: SignedChannelReceiptJson): SignedChannelReceipt {
    if (typeof j.signature !== 'string' || !/^[0-9a-fA-F]{128}$/.test(j.signature)) throw new ChannelReceiptError('signature must be 64 bytes of hex');
    let receipt: Cell;
    try {
        receipt = Cell.fromBase64(j.receipt);
    } catch (e) {
        throw new ChannelReceiptError(`receipt is not a BOC in base64 (${e instanceof Error ? e.message : String(e)})`);
    }
    return { receipt, signature: Buffer.from(j.signature, 'hex') };
}
