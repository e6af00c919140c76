// Payment channel, property test (issue 6): random sequences of requests
// served, claims (latest, stale, forged, underpaid, final), top-ups, disputes
// with their verdicts or expiry, close requests, time jumps and settlements,
// driven by fast-check against the sandbox. A reference model predicts every
// outcome (accepted, or the exit code of the rejection) and every payout; the
// invariants below are checked after every step, and the money is accounted
// for to the nanoton when the channel closes.
//
// After every step:
// - the contract's deposit, settled, seqno and dispute state are the model's;
//   settled <= deposit, and seqno never decreases;
// - the provider's payout and the treasury got exactly what the model says a
//   claim owes (each cumulative amount is paid once: a claim pays the
//   receipt's amount less what was already settled, less a pending dispute's
//   amount, which a ProviderWins verdict then pays), so paid + refunds =
//   settled, and paid <= the highest cumulative amount claimed less the
//   refunds decided before the last payment;
// - a refunded request (ClientWins, or no verdict by verdictBy) comes back to
//   the client whole: the part claims had not paid from the deposit
//   (ChannelRefund, with the bond), the part they had paid before the dispute
//   from the stake (RestituteFromChannel to the Provider, which returns
//   min(that, stake) to the client with the rest of its budget: the budget
//   less the Provider's compute, action and forward fees); an expiry's caller
//   pays for the restitution, not the channel's funds; the Provider's stake,
//   disputesLost and status are the model's;
// - strict: the provider's net payment (paid less what the stake returned)
//   is at most the highest cumulative amount the enclave signed less every
//   refund (from the deposit and from the stake);
// - the channel holds at least deposit - settled (+ the bond of a pending
//   dispute);
// - the channel's balance moved by exactly what came in, less what went out,
//   less the network fees of its transactions.
// At the end (the run finishes with a verdict for any pending dispute, a
// close request, the challenge period, and a settlement):
// - every nanoton that reached the channel left it, by category: deposit +
//   top-ups + bonds + fee money = paid + bond shares + refunds (with bonds) +
//   what closed to the client + fee money spent (messages, network fees);
// - the fee money was enough: the client got back at least deposit +
//   top-ups + bonds - paid - forfeited bonds, so the client never lost more
//   than the provider was paid;
// - the provider was never paid more than the highest cumulative amount its
//   enclave signed (less refunds decided before its last paying claim), and
//   its net payment no more than that less every refund (the strict
//   invariant);
// - the client lost no more than the provider's net payment, and got back at
//   least what the stake returned;
// - the Provider's open-job count is back where it was.
//
// 30 sequences with a fixed seed by default; CHRYSALIS_FUZZ_RUNS and
// CHRYSALIS_FUZZ_SEED as in tests/helpers/fuzz.ts (`npm run fuzz` runs 200
// with a random seed). fast-check prints the seed and the shrunk sequence of
// any failure. CHRYSALIS_FUZZ_STATS=1 prints how often each path ran.
import '@ton/test-utils';
import fc from 'fast-check';
import { Address, Cell, toNano } from '@ton/core';
import { Blockchain, BlockchainSnapshot, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { Channel } from '../wrappers/Channel';
import {
    CHANNEL_ACTIVE,
    CHANNEL_CLOSING,
    ERR_BAD_RECEIPT_SIGNATURE,
    ERR_BAD_STATE,
    ERR_CHANNEL_EXPIRED,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_ORDER,
    ERR_DISPUTE_PENDING,
    ERR_INSUFFICIENT_VALUE,
    ERR_NO_DISPUTE,
    ERR_NO_QUORUM,
    ERR_NOT_SETTLEABLE,
    ERR_OVER_DEPOSIT,
    ERR_RECEIPT_MISMATCH,
    ERR_STALE_SEQNO,
    ERR_VERDICT_LATE,
    Engagement,
    JAIL_STAKE_BELOW_MINIMUM,
    STATUS_ACTIVE,
    STATUS_JAILED,
} from '../wrappers/Registry';
import {
    claimChannelMessage,
    disputeChannelRequestMessage,
    parseChannelReceipt,
    signChannelReceipt,
    SignedChannelReceipt,
} from '../wrappers/channelReceipt';
import { buildChannelVerdict, signVerdict, submitChannelVerdictMessage, VERDICT_CLIENT_WINS, VERDICT_PROVIDER_WINS } from '../wrappers/verdict';
import {
    basechainFees,
    ChannelFixture,
    deployChannelFixture,
    OP_RESTITUTE_FROM_CHANNEL,
    OP_SLASH_FROM_CHANNEL,
    openChannel,
    ReceiptChain,
    restitutionIn,
} from './helpers/channel';
import { messagesBetween } from './helpers/tx';
import { ARBITER_SET, ARBITERS } from './helpers/dispute';
import { testKey } from './helpers/fixture';
import { fuzzSettings } from './helpers/fuzz';

const BPS = 10_000n;
const FRAC = 1_000_000;
const OP_CHANNEL_CLOSED = 0x4000000a;
const OP_CHANNEL_PAYMENT = 0x4000000b;
const OP_CHANNEL_REFUND = 0x4000000c;
const OP_EXCESSES = 0xd53276db;

// ---------------- actions ----------------

type Scale = 'tiny' | 'small' | 'large';
type ClaimKind = 'latest' | 'fresh' | 'stale' | 'final' | 'otherKey' | 'otherChannel' | 'otherOpening' | 'underpaid';
type VerdictKind = 'client' | 'provider' | 'expire' | 'expireEarly' | 'expireUnderpaid' | 'noQuorum';
type Wait = 'minute' | 'hour' | 'day' | 'closeBy' | 'justBeforeCloseBy';

type Action =
    | { kind: 'serve'; count: number; scale: Scale; frac: number; beyondDeposit: boolean }
    | { kind: 'claim'; which: ClaimKind; pick: number; byStranger: boolean; extra: boolean }
    | { kind: 'topUp'; scale: Scale; frac: number; extra: boolean }
    /** Which request: any; one after the last disputed (in order); or one of those that claims already paid. */
    | { kind: 'dispute'; pick: number; target: 'any' | 'inOrder' | 'paid' }
    | { kind: 'verdict'; outcome: VerdictKind; slashTon: number }
    | { kind: 'requestClose' }
    | { kind: 'wait'; by: Wait }
    | { kind: 'settle'; byStranger: boolean };

interface RunSpec {
    deposit: bigint;
    expiresIn: number;
    actions: Action[];
    /** Before the end: the provider claims its latest receipt within the challenge period. */
    lastClaim: boolean;
    /** How a dispute still pending at the end is resolved. */
    lastVerdict: 'client' | 'provider' | 'expire';
}

const weighted = <T>(...items: [number, T][]) => fc.oneof(...items.map(([weight, v]) => ({ weight, arbitrary: fc.constant(v) })));
const scaleArb = fc.constantFrom<Scale>('tiny', 'small', 'large');
const fracArb = fc.integer({ min: 0, max: FRAC });
const rarely = fc.integer({ min: 0, max: 7 }).map((x) => x === 0);

const actionArb: fc.Arbitrary<Action> = fc.oneof(
    {
        weight: 6,
        arbitrary: fc.record({ kind: fc.constant('serve' as const), count: fc.integer({ min: 1, max: 3 }), scale: scaleArb, frac: fracArb, beyondDeposit: rarely }),
    },
    {
        weight: 5,
        arbitrary: fc.record({
            kind: fc.constant('claim' as const),
            which: weighted<ClaimKind>(
                [8, 'latest'],
                [2, 'fresh'],
                [3, 'stale'],
                [1, 'final'],
                [1, 'otherKey'],
                [1, 'otherChannel'],
                [1, 'otherOpening'],
                [1, 'underpaid'],
            ),
            pick: fc.nat(),
            byStranger: rarely,
            extra: rarely,
        }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('topUp' as const), scale: scaleArb, frac: fracArb, extra: rarely }) },
    {
        weight: 4,
        arbitrary: fc.record({ kind: fc.constant('dispute' as const), pick: fc.nat(), target: weighted<'any' | 'inOrder' | 'paid'>([1, 'any'], [2, 'inOrder'], [2, 'paid']) }),
    },
    {
        weight: 3,
        arbitrary: fc.record({
            kind: fc.constant('verdict' as const),
            outcome: weighted<VerdictKind>([4, 'client'], [4, 'provider'], [2, 'expire'], [1, 'expireEarly'], [1, 'expireUnderpaid'], [1, 'noQuorum']),
            slashTon: fc.integer({ min: 0, max: 5 }),
        }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'requestClose' as const }) },
    {
        weight: 2,
        arbitrary: fc.record({
            kind: fc.constant('wait' as const),
            by: weighted<Wait>([3, 'minute'], [3, 'hour'], [1, 'day'], [1, 'closeBy'], [1, 'justBeforeCloseBy']),
        }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('settle' as const), byStranger: fc.boolean() }) },
);

const runArb: fc.Arbitrary<RunSpec> = fc.record({
    deposit: fc.constantFrom(toNano('0.05'), toNano('1'), toNano('10')),
    expiresIn: fc.constantFrom(3600, 86400),
    actions: fc.array(actionArb, { minLength: 5, maxLength: 25 }),
    lastClaim: fc.boolean(),
    lastVerdict: fc.constantFrom<'client' | 'provider' | 'expire'>('client', 'provider', 'expire'),
});

// ---------------- the model ----------------

interface Model {
    exists: boolean;
    state: bigint;
    closeBy: number;
    deposit: bigint;
    settled: bigint;
    seqno: bigint;
    dispute: DisputeState;
    /** Gross amount claims paid (provider's payout + treasury). */
    paid: bigint;
    /** Request amounts refunded to the client from the deposit by disputes (bonds excluded). */
    refunds: bigint;
    /** What the Provider's stake returned to the client for refunded requests claims had paid. */
    restituted: bigint;
    /** What reached the client with those returns (the returns and the rest of their budgets). */
    restitutionReceived: bigint;
    /** The Provider's stake, disputes lost and status (jailed once the stake is below the minimum). */
    stake: bigint;
    disputesLost: bigint;
    jailed: boolean;
    /** Highest cumulative amount of an accepted claim. */
    maxClaimed: bigint;
    /** Refunds decided before the last claim that paid something. */
    refundsAtLastPay: bigint;
}

/** Every nanoton in and out of the channel's account, by category. */
interface Ledger {
    depositIn: bigint; // OpenChannel's deposit and accepted top-ups
    bondsIn: bigint; // bonds of accepted disputes
    feeIn: bigint; // every other value that reached the channel
    paidOut: bigint; // ChannelPayment on claims
    bondSharesOut: bigint; // ChannelPayment on ProviderWins verdicts (payout and arbiters)
    refundsOut: bigint; // ChannelRefund (the request's amount and the bond)
    closedOut: bigint; // ChannelClosed
    feeOut: bigint; // every other message (excesses, bounces, EngageChannel, ChannelEnded, SlashFromChannel, RestituteFromChannel) and network fees
}

interface DisputeState {
    lastSeqno: bigint;
    lastRequests: bigint;
    pending: boolean;
    /** The disputed request's amount and the disputed receipt's cumulative amount: request k covers (cumulative - amount, cumulative]. */
    amount: bigint;
    cumulative: bigint;
    withheld: bigint;
    verdictBy: number;
    /**
     * What the deposit had paid of the disputed request when it was disputed:
     * settled covers [0, settled) of the cumulative amounts (claims, and the
     * refunds of earlier requests, which all lie below it). Claims during the
     * dispute hold the request back, so they never pay it.
     */
    paidBefore: bigint;
    /** Everything disputes refunded from the deposit so far (ChannelInfo.refundedAmount). */
    refunded: bigint;
}

const NO_DISPUTE = { pending: false, amount: 0n, cumulative: 0n, withheld: 0n, verdictBy: 0, paidBefore: 0n } as const;

type Outcome = { ok: true } | { ok: false; exit: bigint } | { ok: false; closed: true };
type ChannelBody = Parameters<Channel['send']>[3];

interface OutMsg {
    to: Address;
    value: bigint;
    op: number | null;
}

interface Fees {
    claim: bigint;
    trigger: bigint;
    expire: bigint;
    dispute: bigint;
    verdict: bigint;
    /** RestituteFromChannel's value. */
    restitutionBudget: bigint;
}

const min = (a: bigint, b: bigint) => (a < b ? a : b);
const max = (a: bigint, b: bigint) => (a > b ? a : b);

function opOf(body: Cell): number | null {
    const s = body.beginParse();
    return s.remainingBits >= 32 ? s.loadUint(32) : null;
}

function outcomeText(o: Outcome): string {
    if (o.ok) return 'accepted';
    return 'exit' in o ? `rejected with ${o.exit}` : 'sent to the closed channel';
}

describe('Channel properties', () => {
    let cf: ChannelFixture;
    let blockchain: Blockchain;
    let stranger: SandboxContract<TreasuryContract>;
    let arbiterFees: SandboxContract<TreasuryContract>;
    let base: BlockchainSnapshot;
    let baseNow: number;
    const forger = testKey('channel-property:forger');
    /** How often each path ran (action and outcome), over all runs. */
    const seen = new Map<string, number>();
    const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

    beforeAll(async () => {
        cf = await deployChannelFixture();
        blockchain = cf.fx.blockchain;
        stranger = await blockchain.treasury('channel-property:stranger');
        arbiterFees = await blockchain.treasury('channel-property:arbiter-fees');
        baseNow = blockchain.now!;
        base = blockchain.snapshot();
    });

    /** One sequence on a fresh copy of the deployment; throws (a failed expect) on any violation. */
    async function runOne(spec: RunSpec, trace: string[]): Promise<void> {
        await blockchain.loadFrom(base);
        blockchain.now = baseNow;
        const openJobsBefore = (await cf.provider.getInfo()).openJobs;

        // ---- open and engage ----
        const opened = await openChannel(cf, 1n, { deposit: spec.deposit, expiresIn: spec.expiresIn });
        const address = opened.channel.address;
        const channel = blockchain.openContract(Channel.fromAddress(address)); // no StateInit: a closed channel stays closed
        const other = await Channel.fromInit(cf.client.address, cf.provider.address, 2n);
        const info0 = await channel.getInfo();
        expect(info0.state).toBe(CHANNEL_ACTIVE);
        const eng: Engagement = info0.engagement!;
        const prices = basechainFees(blockchain);
        const fees: Fees = {
            claim: await channel.getClaimFee(),
            trigger: await channel.getTriggerFee(),
            expire: await channel.getExpireFee(),
            dispute: await channel.getDisputeFee(),
            verdict: await channel.getVerdictFee(),
            restitutionBudget: prices.restitutionBudget,
        };
        // The expiry pays for the trigger, and for RestituteFromChannel with its budget.
        expect(fees.expire).toBe(fees.trigger + prices.small + fees.restitutionBudget);
        const provider0 = await cf.provider.getInfo();
        expect(provider0.status).toBe(STATUS_ACTIVE);
        const minStake = provider0.snapshot!.minProviderStake;
        const chain = new ReceiptChain(address, info0.openId, cf.enclave);
        const signed: SignedChannelReceipt[] = []; // every receipt the enclave signed, in order
        const m: Model = {
            exists: true,
            state: CHANNEL_ACTIVE,
            closeBy: Number(info0.closeBy),
            deposit: spec.deposit,
            settled: 0n,
            seqno: 0n,
            dispute: { lastSeqno: 0n, lastRequests: 0n, ...NO_DISPUTE, refunded: 0n },
            paid: 0n,
            refunds: 0n,
            restituted: 0n,
            restitutionReceived: 0n,
            stake: provider0.stake,
            disputesLost: provider0.disputesLost,
            jailed: false,
            maxClaimed: 0n,
            refundsAtLastPay: 0n,
        };
        expect(m.closeBy).toBe(baseNow + spec.expiresIn + Number(eng.disputeWindow));
        const L: Ledger = { depositIn: 0n, bondsIn: 0n, feeIn: 0n, paidOut: 0n, bondSharesOut: 0n, refundsOut: 0n, closedOut: 0n, feeOut: 0n };
        const openFlows = flowsAt(opened.result, address);
        L.feeIn += openFlows.in - spec.deposit;
        L.depositIn += spec.deposit;
        for (const o of openFlows.out) L.feeOut += o.value;
        L.feeOut += openFlows.fees;
        let balance = (await blockchain.getContract(address)).balance;
        expect(balance).toBe(openFlows.in - openFlows.out.reduce((s, o) => s + o.value, 0n) - openFlows.fees);
        let lastSeqno = 0n;

        const now = () => blockchain.now!;

        /** Every transaction the channel's account ran in this result: value in, messages out, network fees. */
        function flowsAt(r: SendMessageResult, at: Address): { in: bigint; out: OutMsg[]; fees: bigint } {
            let value = 0n;
            let feesPaid = 0n;
            const out: OutMsg[] = [];
            for (const tx of r.transactions) {
                const inMsg = tx.inMessage;
                if (!inMsg || inMsg.info.type !== 'internal' || !inMsg.info.dest.equals(at)) continue;
                value += inMsg.info.value.coins;
                feesPaid += tx.totalFees.coins;
                for (const msg of tx.outMessages.values()) {
                    if (msg.info.type !== 'internal') continue;
                    feesPaid += msg.info.forwardFee;
                    out.push({ to: msg.info.dest, value: msg.info.value.coins, op: opOf(msg.body) });
                }
            }
            return { in: value, out, fees: feesPaid };
        }

        /**
         * Sends `body` to the channel, checks the outcome the model predicted
         * and that nothing else in the chain failed, books the flows, and
         * checks the channel's balance moved by exactly in - out - fees.
         * Returns the channel's outgoing messages.
         */
        async function send(label: string, from: SandboxContract<TreasuryContract>, value: bigint, body: ChannelBody, expected: Outcome, payments: 'claim' | 'verdict' | 'none') {
            trace.push(`${label}: expect ${outcomeText(expected)}`);
            tally(`${label.split(' ').slice(0, 2).join(' ')}: ${expected.ok ? 'accepted' : 'exit' in expected ? `exit ${expected.exit}` : 'closed'}`);
            const before = (await blockchain.getContract(address)).balance;
            const r = await channel.send(from.getSender(), { value }, body);
            const mine = r.transactions.find(
                (tx) => tx.inMessage?.info.type === 'internal' && tx.inMessage.info.dest.equals(address) && tx.inMessage.info.src.equals(from.address),
            );
            expect(mine).toBeDefined();
            const d = mine!.description;
            if (d.type !== 'generic') throw new Error('not a generic transaction');
            if (expected.ok) {
                expect(r.transactions).toHaveTransaction({ from: from.address, to: address, success: true });
            } else if ('exit' in expected) {
                expect(r.transactions).toHaveTransaction({ from: from.address, to: address, success: false, exitCode: Number(expected.exit) });
            } else {
                expect(d.computePhase.type).toBe('skipped');
            }
            // Nothing else in the chain failed. (A payout of a few thousand nanoton cannot buy its
            // receiver's compute phase, which is skipped or runs out of gas: a payout is not
            // bounceable, so the value is credited all the same.)
            const failed: string[] = [];
            for (const tx of r.transactions) {
                const td = tx.description;
                if (tx === mine || td.type !== 'generic' || td.computePhase.type !== 'vm') continue;
                const nonBounceable = tx.inMessage?.info.type === 'internal' && !tx.inMessage.info.bounce;
                if (nonBounceable && td.computePhase.exitCode === -14) continue;
                if (!td.computePhase.success || (td.actionPhase && !td.actionPhase.success)) {
                    failed.push(`${tx.inMessage?.info.dest?.toString()} exit ${td.computePhase.exitCode}, action ${td.actionPhase?.resultCode}`);
                }
            }
            expect(failed).toEqual([]);
            const f = flowsAt(r, address);
            L.feeIn += f.in;
            L.feeOut += f.fees;
            for (const o of f.out) {
                if (o.op === OP_CHANNEL_PAYMENT && payments === 'claim') L.paidOut += o.value;
                else if (o.op === OP_CHANNEL_PAYMENT && payments === 'verdict') L.bondSharesOut += o.value;
                else if (o.op === OP_CHANNEL_REFUND) L.refundsOut += o.value;
                else if (o.op === OP_CHANNEL_CLOSED) L.closedOut += o.value;
                else L.feeOut += o.value;
            }
            const after = (await blockchain.getContract(address)).balance;
            expect(after - before).toBe(f.in - f.out.reduce((s, o) => s + o.value, 0n) - f.fees);
            balance = after;
            return Object.assign(f.out, { result: r });
        }

        const closed = (): Outcome => ({ ok: false, closed: true });
        const reject = (exit: bigint): Outcome => ({ ok: false, exit });

        function amountOf(scale: Scale, frac: number): bigint {
            const range = scale === 'tiny' ? 999n : scale === 'small' ? m.deposit / 100n : m.deposit / 3n;
            return 1n + (BigInt(frac) * range) / BigInt(FRAC);
        }

        // ---- claims ----
        function predictClaim(r: SignedChannelReceipt, value: bigint, forged: 'key' | 'mismatch' | null): { outcome: Outcome; due: bigint } {
            const p = parseChannelReceipt(r.receipt);
            const no = (o: Outcome) => ({ outcome: o, due: 0n });
            if (!m.exists) return no(closed());
            if (value < fees.claim) return no(reject(ERR_INSUFFICIENT_VALUE));
            if (m.state !== CHANNEL_ACTIVE && m.state !== CHANNEL_CLOSING) return no(reject(ERR_BAD_STATE));
            if (now() >= m.closeBy) return no(reject(ERR_CHANNEL_EXPIRED));
            if (forged === 'key') return no(reject(ERR_BAD_RECEIPT_SIGNATURE));
            if (forged === 'mismatch') return no(reject(ERR_RECEIPT_MISMATCH));
            if (p.seqno <= m.seqno) return no(reject(ERR_STALE_SEQNO));
            if (p.amount > m.deposit) return no(reject(ERR_OVER_DEPOSIT));
            if (p.final && m.dispute.pending) return no(reject(ERR_DISPUTE_PENDING));
            // What the receipt adds since the last settlement, less a pending dispute's amount (held back until its verdict).
            return { outcome: { ok: true }, due: max(p.amount - m.settled - (m.dispute.pending ? m.dispute.amount : 0n), 0n) };
        }

        /** What a claim of cumulative `amount` holds back for the pending dispute (the most any claim held is kept). */
        function holdBack(amount: bigint) {
            if (!m.dispute.pending) return;
            const held = min(m.dispute.amount, max(amount - m.settled, 0n));
            if (held > m.dispute.withheld) m.dispute.withheld = held;
        }

        async function claim(a: Extract<Action, { kind: 'claim' }>) {
            let r: SignedChannelReceipt;
            let forged: 'key' | 'mismatch' | null = null;
            const next = chain.seqno + 1n;
            switch (a.which) {
                case 'latest':
                    if (signed.length === 0) signed.push(chain.resign());
                    r = signed[signed.length - 1];
                    break;
                case 'fresh':
                    r = chain.resign();
                    signed.push(r);
                    break;
                case 'final':
                    r = chain.resign({ final: true });
                    signed.push(r);
                    break;
                case 'stale':
                    if (signed.length === 0) signed.push(chain.resign());
                    r = signed[a.pick % signed.length];
                    break;
                case 'otherKey':
                    r = signChannelReceipt(chain.fields({ seqno: next }), forger);
                    forged = 'key';
                    break;
                case 'otherChannel':
                    r = signChannelReceipt(chain.fields({ seqno: next, channel: other.address }), cf.enclave);
                    forged = 'mismatch';
                    break;
                case 'otherOpening':
                    r = signChannelReceipt(chain.fields({ seqno: next, openId: chain.openId + 1n }), cf.enclave);
                    forged = 'mismatch';
                    break;
                case 'underpaid':
                    if (signed.length === 0) signed.push(chain.resign());
                    r = signed[signed.length - 1];
                    break;
            }
            const value = a.which === 'underpaid' ? fees.claim - 1n : fees.claim + (a.extra ? toNano('0.5') : 0n);
            const p = parseChannelReceipt(r.receipt);
            const { outcome, due } = predictClaim(r, value, forged);
            const from = a.byStranger ? stranger : cf.owner;
            const settledBefore = m.settled;
            const out = await send(`claim ${a.which} seqno ${p.seqno} amount ${p.amount}${p.final ? ' final' : ''}`, from, value, claimChannelMessage(r), outcome, 'claim');
            const payments = out.filter((o) => o.op === OP_CHANNEL_PAYMENT);
            if (!outcome.ok) {
                expect(payments).toEqual([]);
                return;
            }
            // Exactly what the receipt adds since the last settlement, split by the protocol fee.
            const fee = (due * eng.protocolFeeBps) / BPS;
            const expectedPayments: { to: string; value: bigint }[] = [];
            if (due - fee > 0n) expectedPayments.push({ to: eng.payout.toString(), value: due - fee });
            if (fee > 0n) expectedPayments.push({ to: eng.treasury.toString(), value: fee });
            expect(payments.map((o) => ({ to: o.to.toString(), value: o.value }))).toEqual(expectedPayments);
            m.seqno = p.seqno;
            holdBack(p.amount);
            m.settled += due;
            m.paid += due;
            if (p.amount > m.maxClaimed) m.maxClaimed = p.amount;
            if (due > 0n) {
                tally('claim paid something');
                if (m.dispute.pending) tally('claim paid during a dispute');
                m.refundsAtLastPay = m.refunds;
                // No cumulative amount is paid twice: this claim paid [settledBefore, settledBefore + due), within the receipt.
                expect(settledBefore + due).toBeLessThanOrEqual(p.amount);
            }
            if (p.final) {
                expect(out.filter((o) => o.op === OP_CHANNEL_CLOSED)).toHaveLength(1);
                m.exists = false;
            }
        }

        // ---- disputes and verdicts ----
        async function dispute(a: Extract<Action, { kind: 'dispute' }>) {
            if (chain.steps.length === 0) return;
            const inOrder = chain.steps.filter((s) => parseChannelReceipt(s.signed.receipt).requests > m.dispute.lastRequests);
            const paid = inOrder.filter((s) => parseChannelReceipt(s.signed.receipt).amount - s.step.amount < m.settled);
            const preferred = a.target === 'paid' ? paid : a.target === 'inOrder' ? inOrder : chain.steps;
            const candidates = preferred.length > 0 ? preferred : chain.steps;
            const { step, signed: r } = candidates[a.pick % candidates.length];
            const p = parseChannelReceipt(r.receipt);
            let outcome: Outcome = { ok: true };
            if (!m.exists) outcome = closed();
            else if (m.state !== CHANNEL_ACTIVE && m.state !== CHANNEL_CLOSING) outcome = reject(ERR_BAD_STATE);
            else if (now() >= m.closeBy) outcome = reject(ERR_CHANNEL_EXPIRED);
            else if (m.dispute.pending) outcome = reject(ERR_DISPUTE_PENDING);
            else if (p.seqno <= m.dispute.lastSeqno || p.requests <= m.dispute.lastRequests) outcome = reject(ERR_DISPUTE_ORDER);
            const value = eng.disputeBond + fees.dispute;
            await send(`dispute request ${p.requests} (seqno ${p.seqno}, amount ${step.amount})`, cf.client, value, disputeChannelRequestMessage(r, step, 1, 0xe71den), outcome, 'none');
            if (!outcome.ok) return;
            L.feeIn -= eng.disputeBond;
            L.bondsIn += eng.disputeBond;
            m.dispute = {
                lastSeqno: p.seqno,
                lastRequests: p.requests,
                pending: true,
                amount: step.amount,
                cumulative: p.amount,
                withheld: 0n,
                verdictBy: now() + Number(eng.verdictWindow),
                paidBefore: min(max(m.settled - (p.amount - step.amount), 0n), step.amount),
                refunded: m.dispute.refunded,
            };
            if (m.dispute.paidBefore > 0n) tally(m.dispute.paidBefore === step.amount ? 'dispute of a request paid' : 'dispute of a request partly paid');
        }

        /**
         * The disputed request back to the client: the part claims had not paid
         * (within what the deposit still holds) from the deposit with the bond,
         * and the part they had paid from the stake: RestituteFromChannel to the
         * Provider, which returns min(that, stake) to the client with the rest of
         * its budget. Returns the ops the channel sent the Provider.
         */
        function expectRefund(out: OutMsg[] & { result: SendMessageResult }, queryId: bigint): number[] {
            const d = m.dispute;
            const alreadyPaid = d.paidBefore;
            const refund = min(d.amount - alreadyPaid, m.deposit - m.settled);
            expect(out.filter((o) => o.op === OP_CHANNEL_REFUND).map((o) => ({ to: o.to.toString(), value: o.value }))).toEqual([
                { to: cf.client.address.toString(), value: refund + eng.disputeBond },
            ]);
            const restitutions = restitutionIn(out.result, address, cf.provider.address, cf.client.address);
            if (alreadyPaid === 0n) {
                expect(restitutions).toEqual([]);
            } else {
                tally(refund > 0n ? 'refund: part from the deposit, part from the stake' : 'refund: all from the stake');
                const returned = min(alreadyPaid, m.stake);
                if (returned < alreadyPaid) tally('refund: restitution capped at the stake');
                expect(restitutions).toHaveLength(1);
                const x = restitutions[0];
                expect([x.value, x.bounce, x.success]).toEqual([fees.restitutionBudget, false, true]);
                expect([x.body.queryId, x.body.nonce, x.body.amount, x.body.client.toString()]).toEqual([queryId, 1n, alreadyPaid, cf.client.address.toString()]);
                // What the stake returns, whole, with the rest of the budget (the Provider's rent is its own).
                expect(x.payment).not.toBeNull();
                expect([x.payment!.value, x.payment!.bounce]).toEqual([returned + fees.restitutionBudget - x.costs, false]);
                expect(x.payment!.value).toBeGreaterThanOrEqual(returned);
                m.stake -= returned;
                m.restituted += returned;
                m.restitutionReceived += x.payment!.value;
                if (m.stake < minStake) m.jailed = true;
            }
            m.settled += refund;
            m.refunds += refund;
            m.dispute = { ...d, ...NO_DISPUTE, refunded: d.refunded + refund };
            return out.filter((o) => o.to.equals(cf.provider.address)).map((o) => o.op ?? -1);
        }

        async function verdict(a: Extract<Action, { kind: 'verdict' }>) {
            const d = m.dispute;
            if (a.outcome === 'expire' || a.outcome === 'expireEarly' || a.outcome === 'expireUnderpaid') {
                if (a.outcome !== 'expireEarly' && d.pending && now() <= d.verdictBy) blockchain.now = d.verdictBy + 1;
                // The expiry needs expireFee; the trigger fee alone is not enough.
                const value = a.outcome === 'expireUnderpaid' ? fees.expire - 1n : fees.expire;
                let outcome: Outcome = { ok: true };
                if (!m.exists) outcome = closed();
                else if (value < fees.expire) outcome = reject(ERR_INSUFFICIENT_VALUE);
                else if (!d.pending) outcome = reject(ERR_NO_DISPUTE);
                else if (now() <= d.verdictBy) outcome = reject(ERR_DEADLINE_NOT_PASSED);
                const out = await send(`expire dispute of seqno ${d.lastSeqno}`, cf.client, value, { $$type: 'ExpireChannelDispute', queryId: 0n }, outcome, 'none');
                if (!outcome.ok) {
                    expect(restitutionIn(out.result, address, cf.provider.address, cf.client.address)).toEqual([]);
                    return;
                }
                const restitution = d.paidBefore > 0n;
                // Nobody is slashed: the Provider gets RestituteFromChannel only, should claims have paid the request.
                expect(expectRefund(out, 0n)).toEqual(restitution ? [OP_RESTITUTE_FROM_CHANNEL] : []);
                if (restitution) {
                    // The caller pays for it: what it leaves in the channel covers RestituteFromChannel and its forward fee.
                    const back = out.filter((o) => o.op === OP_EXCESSES).reduce((sum, o) => sum + o.value, 0n);
                    expect(value - back).toBeGreaterThanOrEqual(fees.restitutionBudget + prices.small);
                }
                return;
            }
            const clientWins = a.outcome === 'client' || a.outcome === 'noQuorum';
            const v = buildChannelVerdict({
                channel: address,
                openId: chain.openId,
                seqno: d.lastSeqno,
                outcome: clientWins ? VERDICT_CLIENT_WINS : VERDICT_PROVIDER_WINS,
                slashAmount: toNano(a.slashTon),
                deadline: now() + 3600,
                feeTo: arbiterFees.address,
            });
            const signers = a.outcome === 'noQuorum' ? [0] : [0, 1];
            const signedVerdict = { verdict: v, signatures: new Map(signers.map((i) => [i, signVerdict(v, ARBITERS[i])])) };
            let outcome: Outcome = { ok: true };
            if (!m.exists) outcome = closed();
            else if (!d.pending) outcome = reject(ERR_NO_DISPUTE);
            else if (now() > d.verdictBy) outcome = reject(ERR_VERDICT_LATE);
            else if (a.outcome === 'noQuorum') outcome = reject(ERR_NO_QUORUM);
            const out = await send(
                `verdict ${a.outcome} on seqno ${d.lastSeqno}`,
                stranger,
                fees.verdict,
                submitChannelVerdictMessage(signedVerdict, ARBITER_SET),
                outcome,
                'verdict',
            );
            if (!outcome.ok) {
                expect(restitutionIn(out.result, address, cf.provider.address, cf.client.address)).toEqual([]);
                return;
            }
            if (clientWins) {
                const restitution = d.paidBefore > 0n;
                // The restitution first (should claims have paid the request), then the slash, counted once.
                expect(expectRefund(out, 0n)).toEqual(restitution ? [OP_RESTITUTE_FROM_CHANNEL, OP_SLASH_FROM_CHANNEL] : [OP_SLASH_FROM_CHANNEL]);
                const slashed = min(toNano(a.slashTon), m.stake);
                m.stake -= slashed;
                m.disputesLost += 1n;
                if (m.stake < minStake) m.jailed = true;
                return;
            }
            expect(out.filter((o) => o.to.equals(cf.provider.address))).toEqual([]);
            // The bond (the arbiters' fee, the rest to the provider) and what claims held back, paid now less the protocol fee.
            const arbiterFee = (eng.disputeBond * eng.arbiterFeeBps) / BPS;
            const withheld = d.withheld;
            const fee = (withheld * eng.protocolFeeBps) / BPS;
            const expected = [{ to: arbiterFees.address.toString(), value: arbiterFee }, { to: eng.payout.toString(), value: eng.disputeBond - arbiterFee + withheld - fee }];
            if (fee > 0n) expected.push({ to: eng.treasury.toString(), value: fee });
            const shares = out.filter((o) => o.op === OP_CHANNEL_PAYMENT).map((o) => ({ to: o.to.toString(), value: o.value }));
            expect(shares).toEqual(expected);
            L.bondSharesOut -= withheld;
            L.paidOut += withheld;
            m.settled += withheld;
            m.paid += withheld;
            if (withheld > 0n) {
                tally('provider wins: withheld paid');
                m.refundsAtLastPay = m.refunds;
            }
            m.dispute = { ...d, ...NO_DISPUTE };
        }

        // ---- the rest ----
        async function topUp(a: Extract<Action, { kind: 'topUp' }>) {
            const amount = amountOf(a.scale, a.frac);
            let outcome: Outcome = { ok: true };
            if (!m.exists) outcome = closed();
            else if (m.state !== CHANNEL_ACTIVE) outcome = reject(ERR_BAD_STATE);
            await send(`top up ${amount}`, cf.client, amount + fees.trigger + (a.extra ? toNano('0.3') : 0n), { $$type: 'TopUpChannel', queryId: 0n, amount }, outcome, 'none');
            if (!outcome.ok) return;
            L.feeIn -= amount;
            L.depositIn += amount;
            m.deposit += amount;
        }

        async function requestClose() {
            let outcome: Outcome = { ok: true };
            if (!m.exists) outcome = closed();
            else if (m.state !== CHANNEL_ACTIVE) outcome = reject(ERR_BAD_STATE);
            await send('request close', cf.client, fees.trigger, { $$type: 'RequestChannelClose', queryId: 0n }, outcome, 'none');
            if (!outcome.ok) return;
            m.state = CHANNEL_CLOSING;
            m.closeBy = Math.min(m.closeBy, now() + Number(eng.disputeWindow));
        }

        async function settle(byStranger: boolean) {
            let outcome: Outcome = { ok: true };
            if (!m.exists) outcome = closed();
            else if (now() < m.closeBy || m.dispute.pending) outcome = reject(ERR_NOT_SETTLEABLE);
            const out = await send('settle', byStranger ? stranger : cf.client, fees.trigger, { $$type: 'SettleChannel', queryId: 0n }, outcome, 'none');
            if (!outcome.ok) return;
            expect(out.filter((o) => o.op === OP_CHANNEL_CLOSED).map((o) => o.to.toString())).toEqual([cf.client.address.toString()]);
            m.exists = false;
        }

        function wait(by: Wait) {
            const before = now();
            if (by === 'minute') blockchain.now = before + 60;
            else if (by === 'hour') blockchain.now = before + 3600;
            else if (by === 'day') blockchain.now = before + 86400;
            else if (by === 'closeBy') blockchain.now = Math.max(before, m.closeBy);
            else blockchain.now = Math.max(before, m.closeBy - 1);
            trace.push(`wait ${by}: now = closeBy ${now() - m.closeBy >= 0 ? '+' : ''}${now() - m.closeBy}`);
        }

        function serve(a: Extract<Action, { kind: 'serve' }>) {
            for (let i = 0; i < a.count; i++) {
                let amount = amountOf(a.scale, a.frac);
                if (!a.beyondDeposit) amount = min(amount, m.deposit - chain.amount);
                if (amount <= 0n) return; // an honest enclave serves nothing the deposit cannot pay
                signed.push(chain.serve(amount).signed);
                trace.push(`serve ${amount}: cumulative ${chain.amount} (seqno ${chain.seqno})`);
            }
        }

        /** The invariants that hold after every step. */
        async function check() {
            // Observed payments are the model's: every claim paid exactly what it owed.
            expect(L.paidOut).toBe(m.paid);
            expect(m.paid + m.refunds).toBe(m.settled);
            expect(m.settled).toBeLessThanOrEqual(m.deposit);
            // The provider is never paid more than the highest cumulative amount claimed, less refunds decided before that claim.
            expect(m.paid).toBeLessThanOrEqual(m.maxClaimed - m.refundsAtLastPay);
            expect(m.maxClaimed).toBeLessThanOrEqual(chain.amount);
            // Strict: the provider's net payment (claims less what the stake returned) is at most what the enclave
            // signed less every refund, from the deposit and from the stake.
            expect(m.paid - m.restituted).toBeLessThanOrEqual(chain.amount - (m.refunds + m.restituted));
            expect(m.refunds).toBe(m.dispute.refunded);
            // The Provider: its stake less what restitutions returned and slashes took, disputes lost, jailed below the minimum.
            const p = await cf.provider.getInfo();
            expect([p.stake, p.disputesLost, p.status, p.jailReason]).toEqual([
                m.stake,
                m.disputesLost,
                m.jailed ? STATUS_JAILED : STATUS_ACTIVE,
                m.jailed ? JAIL_STAKE_BELOW_MINIMUM : 0n,
            ]);
            const state = (await blockchain.getContract(address)).accountState?.type;
            if (!m.exists) {
                expect(state === undefined || state !== 'active').toBe(true);
                expect(balance).toBe(0n);
                return;
            }
            expect(state).toBe('active');
            const info = await channel.getInfo();
            expect({
                state: info.state,
                closeBy: Number(info.closeBy),
                deposit: info.deposit,
                settled: info.settled,
                seqno: info.seqno,
                pending: info.disputePending,
                disputed: info.disputedAmount,
                withheld: info.withheldAmount,
                refunded: info.refundedAmount,
                verdictBy: Number(info.verdictBy),
                lastDisputed: info.lastDisputedSeqno,
                lastDisputedRequests: info.lastDisputedRequests,
            }).toEqual({
                state: m.state,
                closeBy: m.closeBy,
                deposit: m.deposit,
                settled: m.settled,
                seqno: m.seqno,
                pending: m.dispute.pending,
                disputed: m.dispute.amount,
                withheld: m.dispute.withheld,
                refunded: m.dispute.refunded,
                verdictBy: m.dispute.verdictBy,
                lastDisputed: m.dispute.lastSeqno,
                lastDisputedRequests: m.dispute.lastRequests,
            });
            expect(info.settled).toBeLessThanOrEqual(info.deposit);
            expect(info.seqno).toBeGreaterThanOrEqual(lastSeqno);
            lastSeqno = info.seqno;
            // What the deposit still owes (and a pending dispute's bond) is on the account.
            expect(balance).toBeGreaterThanOrEqual(info.deposit - info.settled + (info.disputePending ? eng.disputeBond : 0n));
        }

        async function act(a: Action) {
            switch (a.kind) {
                case 'serve':
                    return serve(a);
                case 'claim':
                    return claim(a);
                case 'topUp':
                    return topUp(a);
                case 'dispute':
                    return dispute(a);
                case 'verdict':
                    return verdict(a);
                case 'requestClose':
                    return requestClose();
                case 'wait':
                    return wait(a.by);
                case 'settle':
                    return settle(a.byStranger);
            }
        }

        await check();
        for (const a of spec.actions) {
            await act(a);
            await check();
        }

        // ---- the end: resolve, claim the last receipt, close, settle ----
        if (m.exists) {
            if (m.dispute.pending) {
                await verdict({ kind: 'verdict', outcome: now() > m.dispute.verdictBy ? 'expire' : spec.lastVerdict, slashTon: 1 });
                await check();
            }
            if (spec.lastClaim && signed.length > 0 && now() < m.closeBy) {
                await claim({ kind: 'claim', which: 'fresh', pick: 0, byStranger: false, extra: false });
                await check();
            }
            if (m.state === CHANNEL_ACTIVE) {
                await requestClose();
                await check();
            }
            wait('closeBy');
            await settle(false);
            await check();
        }
        expect(m.exists).toBe(false);

        // ---- the money, to the nanoton ----
        // Every nanoton that reached the channel left it (its account is gone, balance 0).
        expect(L.depositIn + L.bondsIn + L.feeIn).toBe(L.paidOut + L.bondSharesOut + L.refundsOut + L.closedOut + L.feeOut);
        const bondsForfeited = L.bondSharesOut;
        const bondsReturned = L.refundsOut - m.refunds;
        expect(bondsReturned + bondsForfeited).toBe(L.bondsIn);
        // The client got back its deposit and bonds less what the provider was paid and the bonds it lost,
        // plus what was left of the fee money: the fees never ate into the deposit.
        const clientBack = L.closedOut + L.refundsOut;
        const feeLeft = L.feeIn - L.feeOut;
        expect(clientBack).toBe(L.depositIn + L.bondsIn - m.paid - bondsForfeited + feeLeft);
        expect(feeLeft).toBeGreaterThanOrEqual(0n);
        const clientLoss = L.depositIn - (L.closedOut + m.refunds);
        expect(clientLoss).toBeLessThanOrEqual(m.paid);
        // The stake returned, whole, what claims had paid for refunded requests; so the client lost no more than
        // the provider's net payment (what claims paid less what the stake returned).
        expect(m.restitutionReceived).toBeGreaterThanOrEqual(m.restituted);
        expect(clientLoss - m.restitutionReceived).toBeLessThanOrEqual(m.paid - m.restituted);
        // The provider (payout + treasury) was paid no more than its enclave signed.
        expect(m.paid).toBeLessThanOrEqual(chain.amount - m.refundsAtLastPay);
        expect(m.paid).toBeLessThanOrEqual(m.maxClaimed - m.refundsAtLastPay);
        // Strict: its net payment is no more than that less every refund, from the deposit and from the stake.
        expect(m.paid - m.restituted).toBeLessThanOrEqual(chain.amount - (m.refunds + m.restituted));
        expect((await cf.provider.getInfo()).openJobs).toBe(openJobsBefore);
    }

    it('pays the provider no more than it signed and the client loses no more than that, whatever the sequence', async () => {
        let runs = 0;
        const settings = fuzzSettings('channel property', 30);
        await fc.assert(
            fc.asyncProperty(runArb, async (spec) => {
                const trace: string[] = [];
                try {
                    await runOne(spec, trace);
                } catch (e) {
                    throw new Error(`${e instanceof Error ? e.message : String(e)}\ntrace:\n  ${trace.join('\n  ')}`);
                }
                runs += 1;
            }),
            settings,
        );
        expect(runs).toBeGreaterThanOrEqual(settings.numRuns!);
        if (process.env.CHRYSALIS_FUZZ_STATS) console.log([...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${String(n).padStart(5)}  ${k}`).join('\n'));
        // The sequences reached the paths that move money.
        for (const path of ['claim latest: accepted', 'claim paid something', 'dispute request: accepted', 'settle: accepted', 'top up: accepted']) {
            expect(seen.get(path) ?? 0).toBeGreaterThan(0);
        }
    }, 600_000);

    /**
     * contracts/channel.tact's header: "the provider is never paid more than
     * its enclave signed, less what disputes refunded, and the client never
     * loses more than that either" (the property above requires it of every
     * sequence). Three requests of 0.1 TON, all claimed (the latest receipt),
     * request 2 disputed and refunded by a ClientWins verdict, the channel
     * closed: the provider keeps 0.2 TON, and the client gets request 2 back
     * whole, whenever the claim came.
     * - A claim during the dispute holds the disputed amount back, so it pays
     *   requests 1 and 3: the refund is request 2, from the deposit; the stake
     *   is not touched.
     * - A claim before the dispute already paid request 2: the refund from the
     *   deposit is the bond only, and RestituteFromChannel returns the 0.1 TON
     *   from the stake (the gap this closes: the refund used to come from what
     *   was left of the client's own deposit, so the provider kept 0.3 TON).
     */
    async function refundedAfterPayment(order: 'claim during the dispute' | 'claim before the dispute') {
        await blockchain.loadFrom(base);
        blockchain.now = baseNow;
        const deposit = toNano('1');
        const opened = await openChannel(cf, 1n, { deposit });
        const channel = blockchain.openContract(Channel.fromAddress(opened.channel.address));
        const info = await channel.getInfo();
        const eng = info.engagement!;
        const stakeBefore = await cf.provider.getStake();
        const chain = new ReceiptChain(channel.address, info.openId, cf.enclave);
        chain.serve(toNano('0.1'));
        const { step, signed: disputed } = chain.serve(toNano('0.1'));
        const { signed } = chain.serve(toNano('0.1'));
        const paidBy = (r: SendMessageResult) =>
            [eng.payout, eng.treasury]
                .flatMap((to) => messagesBetween(r, channel.address, to))
                .filter((msg) => opOf(msg.body) === OP_CHANNEL_PAYMENT)
                .reduce((sum, msg) => sum + msg.value, 0n);
        let paid = 0n;
        const claim = async () => {
            const r = await channel.send(cf.owner.getSender(), { value: await channel.getClaimFee() }, claimChannelMessage(signed));
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            paid += paidBy(r);
        };
        const dispute = async () => {
            const r = await channel.send(cf.client.getSender(), { value: eng.disputeBond + (await channel.getDisputeFee()) }, disputeChannelRequestMessage(disputed, step, 1, 0xe71den));
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
        };
        if (order === 'claim during the dispute') {
            await dispute();
            await claim();
            expect(paid).toBe(toNano('0.2'));
        } else {
            await claim();
            await dispute();
            expect(paid).toBe(toNano('0.3'));
        }
        const v = buildChannelVerdict({
            channel: channel.address,
            openId: info.openId,
            seqno: 2n,
            outcome: VERDICT_CLIENT_WINS,
            slashAmount: 0n,
            deadline: blockchain.now + 3600,
            feeTo: arbiterFees.address,
        });
        const verdictResult = await channel.send(
            stranger.getSender(),
            { value: await channel.getVerdictFee() },
            submitChannelVerdictMessage({ verdict: v, signatures: new Map([0, 1].map((i) => [i, signVerdict(v, ARBITERS[i])])) }, ARBITER_SET),
        );
        expect(verdictResult.transactions).not.toHaveTransaction({ success: false });
        const refunded = messagesBetween(verdictResult, channel.address, cf.client.address).filter((msg) => opOf(msg.body) === OP_CHANNEL_REFUND);
        expect(refunded).toHaveLength(1);
        const fromDeposit = refunded[0].value - eng.disputeBond;
        const restitutions = restitutionIn(verdictResult, channel.address, cf.provider.address, cf.client.address);
        const fromStake = restitutions.reduce((sum, x) => sum + x.body.amount, 0n);
        const restitutionReceived = restitutions.reduce((sum, x) => sum + (x.payment?.value ?? 0n), 0n);
        const returned = stakeBefore - (await cf.provider.getStake()); // the slash was 0
        const trigger = await channel.getTriggerFee();
        await channel.send(cf.client.getSender(), { value: trigger }, { $$type: 'RequestChannelClose', queryId: 0n });
        blockchain.now += Number(eng.disputeWindow);
        const settled = await channel.send(cf.client.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
        expect(settled.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
        expect(chain.amount).toBe(toNano('0.3'));
        return { paid, fromDeposit, fromStake, returned, restitutionReceived };
    }

    for (const order of ['claim during the dispute', 'claim before the dispute'] as const) {
        it(`the gap is closed (${order}): a request refunded by a ClientWins verdict is not paid to the provider too; it comes back to the client whole${order === 'claim before the dispute' ? ', from the stake' : ', from the deposit'}`, async () => {
            const r = await refundedAfterPayment(order);
            // Signed 0.3 TON, request 2 (0.1 TON) refunded: the provider keeps exactly the undisputed 0.2 TON.
            expect(r.paid - r.returned).toBe(toNano('0.2'));
            // The client gets the 0.1 TON back in full: from the deposit what claims had not paid, from the stake what they had.
            expect(r.fromDeposit + r.fromStake).toBe(toNano('0.1'));
            expect(r.returned).toBe(r.fromStake);
            expect(r.restitutionReceived).toBeGreaterThanOrEqual(r.returned);
            if (order === 'claim during the dispute') {
                expect([r.fromDeposit, r.fromStake]).toEqual([toNano('0.1'), 0n]);
            } else {
                expect([r.fromDeposit, r.fromStake]).toEqual([0n, toNano('0.1')]);
            }
        });
    }
});
