// The one module that owns the arbiter verdict layout: build, hash, sign,
// parse, verify, and the SubmitVerdict body with its signature map. The Escrow
// checks the same layout (contracts/messages.tact, struct Verdict);
// tests/dispute.spec.ts proves the two agree.
import { Address, beginCell, Cell, Dictionary } from '@ton/core';
import {
    ArbiterSignature,
    dictValueParserArbiterSignature,
    loadVerdict,
    storeVerdict,
    SubmitVerdict,
    Verdict,
    CHANNEL_VERDICT_TAG,
    ChannelVerdict,
    loadChannelVerdict,
    storeChannelVerdict,
    SubmitChannelVerdict,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
    VERDICT_TAG,
} from './Registry';
import { Ed25519KeyPair, signHash, verifyHash } from './ed25519';

export { VERDICT_CLIENT_WINS, VERDICT_PROVIDER_WINS, VERDICT_TAG };

/** What the arbiters decide about one dispute. */
export interface VerdictFields {
    escrow: Address;
    /** The escrow's engageId (EscrowInfo.engageId): one opening of that address. */
    engageId: bigint;
    /** VERDICT_PROVIDER_WINS or VERDICT_CLIENT_WINS. */
    outcome: bigint;
    /** With ClientWins: nanoton of stake to slash (the Provider caps it at its stake). */
    slashAmount: bigint;
    /** Unix seconds: the verdict must be submitted by then. */
    deadline: number;
    /** Receives the arbiters' fee. */
    feeTo: Address;
}

export class VerdictError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'VerdictError';
    }
}

export function buildVerdict(fields: VerdictFields): Cell {
    if (fields.outcome !== VERDICT_PROVIDER_WINS && fields.outcome !== VERDICT_CLIENT_WINS) {
        throw new VerdictError(`outcome must be ${VERDICT_PROVIDER_WINS} (provider wins) or ${VERDICT_CLIENT_WINS} (client wins)`);
    }
    if (fields.slashAmount < 0n) throw new VerdictError('slashAmount must not be negative');
    const verdict: Verdict = {
        $$type: 'Verdict',
        tag: VERDICT_TAG,
        escrow: fields.escrow,
        engageId: fields.engageId,
        outcome: fields.outcome,
        slashAmount: fields.slashAmount,
        deadline: BigInt(fields.deadline),
        feeTo: fields.feeTo,
    };
    return beginCell().store(storeVerdict(verdict)).endCell();
}

/** The 32 bytes each arbiter signs and the Escrow checks: the cell's representation hash. */
export function verdictHash(verdict: Cell): Buffer {
    return verdict.hash();
}

export function parseVerdict(verdict: Cell): Verdict {
    const parsed = loadVerdict(verdict.beginParse());
    if (parsed.tag !== VERDICT_TAG) throw new VerdictError(`not a verdict (tag ${parsed.tag})`);
    return parsed;
}

/** One arbiter's signature of a verdict cell. */
export function signVerdict(verdict: Cell, arbiter: Ed25519KeyPair): Buffer {
    return signHash(verdictHash(verdict), arbiter);
}

/** A verdict with signatures by arbiter index (index = position in the Registry's arbiter list). */
export interface SignedVerdict {
    verdict: Cell;
    signatures: Map<number, Buffer>;
}

/**
 * The Escrow's checks: every signature valid for the arbiter of its index,
 * at least `quorum` of them, and the verdict for this escrow and opening.
 * `arbiters` is the engaged set (index -> ed25519 public key).
 */
export function verifyVerdict(
    signed: SignedVerdict,
    expected: { escrow: Address; engageId: bigint; arbiters: Dictionary<number, bigint>; quorum: bigint },
): Verdict {
    const hash = verdictHash(signed.verdict);
    for (const [index, signature] of signed.signatures) {
        const key = expected.arbiters.get(index);
        if (key === undefined) throw new VerdictError(`no arbiter with index ${index}`);
        if (!verifyHash(hash, signature, key)) throw new VerdictError(`bad signature of arbiter ${index}`);
    }
    if (BigInt(signed.signatures.size) < expected.quorum) {
        throw new VerdictError(`${signed.signatures.size} signatures, the quorum is ${expected.quorum}`);
    }
    const v = parseVerdict(signed.verdict);
    if (v.outcome !== VERDICT_PROVIDER_WINS && v.outcome !== VERDICT_CLIENT_WINS) throw new VerdictError(`outcome ${v.outcome} is neither provider wins nor client wins`);
    if (!v.escrow.equals(expected.escrow)) throw new VerdictError('verdict is for another escrow');
    if (v.engageId !== expected.engageId) throw new VerdictError('verdict is for another opening of this escrow');
    return v;
}

function signatureDictionary(signatures: Map<number, Buffer>): Dictionary<number, ArbiterSignature> {
    const dict = Dictionary.empty(Dictionary.Keys.Uint(8), dictValueParserArbiterSignature());
    for (const [index, signature] of signatures) {
        if (signature.length !== 64) throw new VerdictError(`signature of arbiter ${index} must be 64 bytes`);
        dict.set(index, { $$type: 'ArbiterSignature', signature });
    }
    return dict;
}

/** The body of SubmitVerdict: the verdict, its signatures, and the engaged arbiter set. */
export function submitVerdictMessage(signed: SignedVerdict, arbiters: Dictionary<number, bigint>, queryId = 0n): SubmitVerdict {
    return {
        $$type: 'SubmitVerdict',
        queryId,
        verdict: signed.verdict,
        signatures: signatureDictionary(signed.signatures),
        arbiters,
    };
}

/** JSON form for files passed from the arbiters to whoever submits the verdict. */
export interface SignedVerdictJson {
    verdict: string; // BOC, base64
    /** arbiter index (decimal string) -> signature, hex, 64 bytes */
    signatures: Record<string, string>;
}

export function signedVerdictToJson(s: SignedVerdict): SignedVerdictJson {
    const signatures: Record<string, string> = {};
    for (const [index, signature] of s.signatures) signatures[String(index)] = signature.toString('hex');
    return { verdict: s.verdict.toBoc().toString('base64'), signatures };
}

export function signedVerdictFromJson(j: SignedVerdictJson): SignedVerdict {
    let verdict: Cell;
    try {
        verdict = Cell.fromBase64(j.verdict);
    } catch (e) {
        throw new VerdictError(`verdict is not a BOC in base64 (${e instanceof Error ? e.message : String(e)})`);
    }
    if (typeof j.signatures !== 'object' || j.signatures === null) throw new VerdictError('signatures must be an object of index -> hex');
    const signatures = new Map<number, Buffer>();
    for (const [index, hex] of Object.entries(j.signatures)) {
        if (!/^(0|[1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])$/.test(index)) throw new VerdictError(`arbiter index ${index} must be 0..255`);
        if (typeof hex !== 'string' || !/^[0-9a-fA-F]{128}$/.test(hex)) throw new VerdictError(`signature of arbiter ${index} must be 64 bytes of hex`);
        signatures.set(Number(index), Buffer.from(hex, 'hex'));
    }
    return { verdict, signatures };
}

// ---------------- channel verdicts ----------------

export { CHANNEL_VERDICT_TAG };

/** What the arbiters decide about one disputed request of a channel. */
export interface ChannelVerdictFields {
    channel: Address;
    /** The channel's openId. */
    openId: bigint;
    /** The disputed receipt's seqno (ChannelInfo.lastDisputedSeqno). */
    seqno: bigint;
    outcome: bigint;
    slashAmount: bigint;
    deadline: number;
    feeTo: Address;
}

export function buildChannelVerdict(f: ChannelVerdictFields): Cell {
    const v: ChannelVerdict = {
        $$type: 'ChannelVerdict',
        tag: CHANNEL_VERDICT_TAG,
        channel: f.channel,
        openId: f.openId,
        seqno: f.seqno,
        outcome: f.outcome,
        slashAmount: f.slashAmount,
        deadline: BigInt(f.deadline),
        feeTo: f.feeTo,
    };
    return beginCell().store(storeChannelVerdict(v)).endCell();
}

export function parseChannelVerdict(verdict: Cell): ChannelVerdict {
    const v = loadChannelVerdict(verdict.beginParse());
    if (v.tag !== CHANNEL_VERDICT_TAG) throw new VerdictError(`not a channel verdict (tag ${v.tag})`);
    return v;
}

/** The body of SubmitChannelVerdict (signatures by arbiter index, as for escrows). */
export function submitChannelVerdictMessage(signed: SignedVerdict, arbiters: Dictionary<number, bigint>, queryId = 0n): SubmitChannelVerdict {
    return { $$type: 'SubmitChannelVerdict', queryId, verdict: signed.verdict, signatures: signatureDictionary(signed.signatures), arbiters };
}
