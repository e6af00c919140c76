// Invariants across contracts (issue 7): fast-check drives one deployment
// (Registry, three staked Providers and one address with no Provider, two
// clients, an outsider) through random sequences of operations, and a
// reference model predicts each one's outcome: accepted, or refused with the
// exit code named here. Operations: escrows opened (sometimes underpaid, too
// long, or to the Provider-less address, whose bounce closes them), receipts
// (honest, forged, over the amount, late), releases, refunds, cancels,
// disputes and verdicts (either side, with or without quorum), equivocation
// proofs, registrations (also underpaid, understaked, of a live Provider, or
// with a burned key) and re-attestations (with the same or a new enclave key;
// one re-attesting a jailed Provider with enough stake reactivates it),
// stake top-ups, unbonding and withdrawals, channels opened, served
// off-chain, claimed (latest, stale, final), closed and settled, time jumps,
// and messages from senders that must be refused (spoofed JobEnded,
// SlashProvider, ChannelEnded, JobEngaged; a stranger's cancel, dispute,
// unbond or close).
//
// After every step:
// - conservation: the balances of every account the step touched moved by
//   exactly minus the network fees it recorded (every nanoton sent in is in
//   an account, paid out, or spent on recorded fees);
// - each Provider's stake, status, open jobs, completed and refunded jobs and
//   lost disputes are the model's (so reputation counters equal the outcomes
//   that happened, a slash takes min(amount, stake) and never drives the
//   stake negative, and a Jailed, Unbonding or Exited Provider gains no job);
//   its balance covers its stake;
// - each open escrow is in the model's state and holds at least its maxAmount;
//   each closed one is gone, and closed with the model's outcome, paying
//   the provider side (payout and treasury) exactly the receipt's amount once
//   (plus the bond's shares on a ProviderWins verdict) and returning to the
//   client at least what it deposited less that amount;
// - each channel is in the model's state; its payments so far equal what it
//   settled, never more than the deposit or the highest amount the enclave
//   signed; it holds at least deposit - settled, and returns at least that
//   to the client when it closes.
// At the end, by time alone: with nothing from the clients or providers,
// an outsider closes every escrow and channel (Release, Refund, Settle once
// their windows pass); every Provider's open-job count is back to 0; every
// owner unbonds and withdraws, leaving each Provider at most its storage
// reserve (and the rest of messages that reply with nothing); every stake
// left whole for its owner, less only the rent its Provider owed;
// no escrow or channel holds anything.
//
// CHRYSALIS_FUZZ_RUNS / CHRYSALIS_FUZZ_SEED: see tests/helpers/fuzz.ts
// (`npm run fuzz` runs 200 sequences with a random seed).
import '@ton/test-utils';
import fc from 'fast-check';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { Blockchain, BlockchainSnapshot, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import {
    ERR_ALREADY_PROVEN,
    ERR_BAD_RECEIPT_SIGNATURE,
    ERR_BAD_STATE,
    ERR_BAD_STATUS,
    ERR_CHANNEL_EXPIRED,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_WINDOW_CLOSED,
    ERR_DISPUTE_WINDOW_OPEN,
    ERR_INSUFFICIENT_VALUE,
    ERR_JOBS_OPEN,
    ERR_NO_QUORUM,
    ERR_NOT_CLIENT,
    ERR_NOT_OWNER,
    ERR_NOT_REGISTERED,
    ERR_NOT_SETTLEABLE,
    ERR_OVER_DEPOSIT,
    ERR_RECEIPT_AMOUNT,
    ERR_RECEIPT_TIME,
    ERR_STAKE_TOO_LOW,
    ERR_STALE_SEQNO,
    ERR_UNBONDING_NOT_OVER,
    ERR_VERDICT_LATE,
    ERR_WRONG_SENDER,
    ESCROW_CLOSED_CLIENT_WON,
    ESCROW_CLOSED_EXPIRED,
    ESCROW_CLOSED_REFUSED,
    ESCROW_CLOSED_RELEASED,
    ESCROW_CLOSED_UNRESOLVED,
    JAIL_PROVEN_FAULT,
    JAIL_STAKE_BELOW_MINIMUM,
    loadChannelClosed,
    loadEscrowClosed,
    loadRegistrationRefused,
    loadStakeWithdrawn,
    REFUSED_JOB_ATTESTATION_EXPIRED,
    REFUSED_JOB_DEADLINE,
    REFUSED_JOB_NOT_ACTIVE,
    REFUSED_ALREADY_REGISTERED,
    REFUSED_JOB_STAKE,
    REFUSED_KEY_BURNED,
    REFUSED_NOT_REGISTERED,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { Escrow } from '../wrappers/Escrow';
import { Channel } from '../wrappers/Channel';
import { proveEquivocationMessage, signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { claimChannelMessage, parseChannelReceipt, SignedChannelReceipt } from '../wrappers/channelReceipt';
import { buildVerdict, signVerdict, submitVerdictMessage } from '../wrappers/verdict';
import { Ed25519KeyPair } from '../wrappers/ed25519';
import { Fixture, MODEL_A, sendRegister, signedFor, testEnclave, testKey } from './helpers/fixture';
import { reattestMessage, registerProviderMessage } from '../wrappers/attestation';
import { ARBITER_SET, ARBITERS, deployDisputeFixture } from './helpers/dispute';
import { ReceiptChain } from './helpers/channel';
import { networkFees } from './helpers/tx';
import { fuzzSettings } from './helpers/fuzz';

const DAY = 86400;
const OP_ESCROW_PAYMENT = 0x30000007;
const OP_ESCROW_CLOSED = 0x30000006;
const OP_CHANNEL_PAYMENT = 0x4000000b;
const OP_CHANNEL_CLOSED = 0x4000000a;
const OP_REGISTRATION_REFUSED = 0x20000020;
const OP_EXCESSES = 0xd53276db;
const OP_JOB_ENDED = 0x20000033;
const OP_STAKE_WITHDRAWN = 0x20000021;
const OP_CHANNEL_ENDED = 0x20000051;
/** contracts/constants.tact PROVIDER_STORAGE_RESERVE: what a Provider keeps once its stake has left. */
const PROVIDER_STORAGE_RESERVE = toNano('0.02');

// ---------------- the operations ----------------

const CLIENTS = 2;
const PROVIDERS = 3; // index PROVIDERS is the address with no Provider deployed
const MAX_AMOUNTS = [toNano('0.5'), toNano('2'), toNano('7')];
/** Job lengths: two within maxJobDuration (a day), one beyond it. */
const JOB_LENGTHS = [600, 6 * 3600, 2 * DAY];
const DEPOSITS = [toNano('3'), toNano('10')];
const PRICES = [toNano('0.1'), toNano('0.7'), toNano('1.3')];
const SLASHES = [toNano('0.5'), toNano('30'), toNano('500')];
const TOP_UPS = [toNano('1'), toNano('50')];
/** Shrinks toward the short ones; the long ones pass deadlines, windows and the unbonding period. */
const TIME_JUMPS = [30, 600, 3600, 6 * 3600, DAY + 1, 3 * DAY + 1, 8 * DAY];
const STAKES = [toNano('150'), toNano('100'), toNano('120')];

/** Who sends a message anyone may send: a client, an owner, or the outsider. */
const actor = fc.integer({ min: 0, max: 3 });
/** True one time in five; shrinks to false. */
const rare = fc.nat({ max: 4 }).map((n) => n === 4);
const index = fc.nat({ max: 40 });
/** An index meaning the escrow opened last (for the steps of a 'job'). */
const NEWEST = -1;
/** A registered Provider six times in seven; else the address with none. */
const providerIndex = fc.oneof({ arbitrary: fc.nat({ max: PROVIDERS - 1 }), weight: 6 }, { arbitrary: fc.constant(PROVIDERS), weight: 1 });
/** A job length within maxJobDuration five times in six. */
const jobLength = fc.oneof({ arbitrary: fc.nat({ max: 1 }), weight: 5 }, { arbitrary: fc.constant(2), weight: 1 });
/** Mostly short jumps (which leave jobs running), sometimes past deadlines and windows. */
const timeJump = fc.oneof({ arbitrary: fc.nat({ max: 3 }), weight: 4 }, { arbitrary: fc.integer({ min: 4, max: TIME_JUMPS.length - 1 }), weight: 1 });

type Op =
    | { k: 'open'; client: number; provider: number; amount: number; length: number; underpay: boolean }
    | { k: 'job'; client: number; provider: number; amount: number; pct: number; dispute: 'none' | 'providerWins' | 'clientWins'; slash: number }
    | { k: 'receipt'; e: number; pct: number; forged: boolean; by: number }
    | { k: 'release'; e: number; by: number }
    | { k: 'refund'; e: number; by: number }
    | { k: 'cancel'; e: number }
    | { k: 'dispute'; e: number; stranger: boolean; underpay: boolean }
    | { k: 'verdict'; e: number; clientWins: boolean; slash: number; quorum: boolean }
    | { k: 'equivocate'; p: number }
    | { k: 'register'; p: number; lowStake: boolean; underpay: boolean }
    | { k: 'reattest'; p: number; newKey: boolean; stake: number }
    | { k: 'topUp'; p: number; amount: number; by: number; underpay: boolean }
    | { k: 'unbond'; p: number; stranger: boolean }
    | { k: 'withdraw'; p: number }
    | { k: 'chOpen'; client: number; provider: number; deposit: number; length: number }
    | { k: 'chServe'; c: number; n: number; price: number }
    | { k: 'chTopUp'; c: number; amount: number }
    | { k: 'chClaim'; c: number; which: 'latest' | 'stale' | 'final'; by: number }
    | { k: 'chClose'; c: number; stranger: boolean }
    | { k: 'chSettle'; c: number; by: number }
    | { k: 'afterClose'; channel: boolean; what: 'claim' | 'settle'; i: number; by: number }
    | { k: 'time'; jump: number }
    | { k: 'spoof'; what: 'jobEnded' | 'slash' | 'channelEnded' | 'jobEngaged'; target: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
    { arbitrary: fc.record({ k: fc.constant('open' as const), client: fc.nat({ max: CLIENTS - 1 }), provider: providerIndex, amount: fc.nat({ max: 2 }), length: jobLength, underpay: rare }), weight: 6 },
    {
        // A whole job at once (open, receipt, and maybe a dispute and its verdict), so that deep paths come up in every run.
        arbitrary: fc.record({
            k: fc.constant('job' as const),
            client: fc.nat({ max: CLIENTS - 1 }),
            provider: fc.nat({ max: PROVIDERS - 1 }),
            amount: fc.nat({ max: 2 }),
            pct: fc.integer({ min: 0, max: 100 }),
            dispute: fc.constantFrom('none' as const, 'providerWins' as const, 'clientWins' as const),
            slash: fc.nat({ max: 2 }),
        }),
        weight: 3,
    },
    { arbitrary: fc.record({ k: fc.constant('receipt' as const), e: index, pct: fc.integer({ min: 0, max: 120 }), forged: rare, by: actor }), weight: 8 },
    { arbitrary: fc.record({ k: fc.constant('release' as const), e: index, by: actor }), weight: 3 },
    { arbitrary: fc.record({ k: fc.constant('refund' as const), e: index, by: actor }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('cancel' as const), e: index }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('dispute' as const), e: index, stranger: rare, underpay: rare }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('verdict' as const), e: index, clientWins: fc.boolean(), slash: fc.nat({ max: 2 }), quorum: fc.nat({ max: 5 }).map((n) => n !== 5) }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('equivocate' as const), p: fc.nat({ max: PROVIDERS }) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('register' as const), p: fc.nat({ max: PROVIDERS }), lowStake: rare, underpay: rare }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('reattest' as const), p: fc.nat({ max: PROVIDERS }), newKey: fc.boolean(), stake: fc.nat({ max: 1 }) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('topUp' as const), p: fc.nat({ max: PROVIDERS }), amount: fc.nat({ max: 1 }), by: actor, underpay: rare }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('unbond' as const), p: fc.nat({ max: PROVIDERS - 1 }), stranger: rare }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('withdraw' as const), p: fc.nat({ max: PROVIDERS - 1 }) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('chOpen' as const), client: fc.nat({ max: CLIENTS - 1 }), provider: providerIndex, deposit: fc.nat({ max: 1 }), length: jobLength }), weight: 3 },
    { arbitrary: fc.record({ k: fc.constant('chServe' as const), c: index, n: fc.integer({ min: 1, max: 4 }), price: fc.nat({ max: 2 }) }), weight: 5 },
    { arbitrary: fc.record({ k: fc.constant('chTopUp' as const), c: index, amount: fc.nat({ max: 1 }) }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('chClaim' as const), c: index, which: fc.constantFrom('latest' as const, 'latest' as const, 'stale' as const, 'final' as const), by: actor }), weight: 6 },
    { arbitrary: fc.record({ k: fc.constant('chClose' as const), c: index, stranger: rare }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('chSettle' as const), c: index, by: actor }), weight: 2 },
    { arbitrary: fc.record({ k: fc.constant('afterClose' as const), channel: fc.boolean(), what: fc.constantFrom('claim' as const, 'settle' as const), i: index, by: actor }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('time' as const), jump: timeJump }), weight: 4 },
    { arbitrary: fc.record({ k: fc.constant('spoof' as const), what: fc.constantFrom('jobEnded' as const, 'slash' as const, 'channelEnded' as const, 'jobEngaged' as const), target: index }), weight: 1 },
);

// ---------------- the reference model ----------------

interface ProviderModel {
    owner: SandboxContract<TreasuryContract>;
    contract: SandboxContract<Provider>;
    enclave: Ed25519KeyPair;
    payout: Address;
    status: bigint;
    jailReason: bigint;
    stake: bigint;
    openJobs: bigint;
    jobsSettleBy: number;
    withdrawableAt: number;
    validUntil: number;
    completed: bigint;
    refunded: bigint;
    disputesLost: bigint;
    /** Enclave signing keys proven to have signed a fault (hex of the public key). */
    burnedKeys: Set<string>;
    /** How many keys this owner's enclave has had (for fresh keys at re-attestation). */
    keys: number;
    /**
     * The value of messages that leave their rest above the Provider's
     * reserve until its next reply carries it out (SPEC §10): JobEnded and
     * ChannelEnded notices, which reply with nothing, and a withdrawal of no
     * stake whose reply the rent left too little value to pay for.
     */
    leftovers: bigint;
}

type EscrowState = 'engaged' | 'receipted' | 'disputed' | 'closed';

interface EscrowModel {
    contract: SandboxContract<Escrow>;
    client: SandboxContract<TreasuryContract>;
    provider: ProviderModel;
    /** The enclave key the Provider engaged it with (a later re-attestation does not change it). */
    enclave: Ed25519KeyPair;
    maxAmount: bigint;
    deadline: number;
    state: EscrowState;
    amount: bigint;
    releaseAt: number;
    verdictBy: number;
    /** EscrowPayment values seen leaving this escrow, by recipient, and what the model says it owes each. */
    paid: Payments;
    owed: Payments;
}

type ChannelState = 'active' | 'closing' | 'closed';

interface ChannelModel {
    contract: SandboxContract<Channel>;
    client: SandboxContract<TreasuryContract>;
    provider: ProviderModel;
    chain: ReceiptChain;
    state: ChannelState;
    deposit: bigint;
    settled: bigint;
    seqno: bigint;
    closeBy: number;
    /** ChannelPayment values seen leaving this channel, by recipient, and what the model says its claims owe each. */
    paid: Payments;
    owed: Payments;
}

/** Nanoton by recipient (raw address). */
type Payments = Map<string, bigint>;
const credit = (to: Payments, address: Address, amount: bigint) => {
    if (amount > 0n) to.set(address.toRawString(), (to.get(address.toRawString()) ?? 0n) + amount);
};
const keyHex = (key: Ed25519KeyPair) => key.publicKeyInt.toString(16);
const total = (payments: Payments) => [...payments.values()].reduce((a, b) => a + b, 0n);

/** What a step is expected to do at its target: succeed, or fail with this exit code. */
type Expect = { ok: true } | { exit: bigint };
const OK: Expect = { ok: true };

describe('Invariants across contracts (fast-check)', () => {
    let fx: Fixture;
    let blockchain: Blockchain;
    let base: BlockchainSnapshot;
    let baseNow: number;
    let clients: SandboxContract<TreasuryContract>[];
    let outsider: SandboxContract<TreasuryContract>;
    let feeTo: SandboxContract<TreasuryContract>;
    let owners: SandboxContract<TreasuryContract>[];
    /** The owner who has not registered (its Provider address is the last of providerAddresses). */
    let ghost: SandboxContract<TreasuryContract>;
    let providerAddresses: Address[];
    const enclaves = Array.from({ length: PROVIDERS }, (_, i) => testEnclave(`fuzz-p${i}`));
    const forger = testKey('fuzz:forger');
    /** How often each operation ran, by outcome, over all runs (CHRYSALIS_FUZZ_STATS=1 prints it). */
    const seen = new Map<string, number>();

    beforeAll(async () => {
        fx = await deployDisputeFixture();
        blockchain = fx.blockchain;
        clients = [await blockchain.treasury('fuzz:client0'), await blockchain.treasury('fuzz:client1')];
        outsider = await blockchain.treasury('fuzz:outsider');
        feeTo = await blockchain.treasury('fuzz:arbiter-fees');
        owners = [];
        providerAddresses = [];
        for (let i = 0; i < PROVIDERS; i++) {
            const owner = await blockchain.treasury(`fuzz:owner${i}`);
            // Valid for six days (the most attestationMaxAge allows): long runs outlive it, and then jobs are refused.
            const signed = signedFor(fx, owner.address, enclaves[i], { validUntil: blockchain.now! + 6 * DAY });
            const r = await sendRegister(fx, owner, signed, { stake: STAKES[i] });
            const address = await fx.registry.getProviderAddress(owner.address);
            expect(r.transactions).toHaveTransaction({ to: address, success: true });
            owners.push(owner);
            providerAddresses.push(address);
        }
        // An owner who never registered: its Provider address has no contract, so what is sent there bounces.
        ghost = await blockchain.treasury('fuzz:ghost');
        providerAddresses.push(await fx.registry.getProviderAddress(ghost.address));
        baseNow = blockchain.now!;
        base = blockchain.snapshot();
    });

    afterAll(() => {
        if (process.env.CHRYSALIS_FUZZ_STATS) {
            process.stdout.write([...seen.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${String(n).padStart(6)}  ${k}`).join('\n') + '\n');
        }
    });

    /** One sequence on a fresh copy of the deployment; a failed expect anywhere is a counterexample. */
    async function runOne(ops: Op[]): Promise<void> {
        await blockchain.loadFrom(base);
        blockchain.now = baseNow;
        const params = fx.params;
        const minStake = params.minProviderStake;
        const bond = params.disputeBond;
        const arbiterFee = (bond * params.arbiterFeeBps) / 10000n;
        const protocolFee = (amount: bigint) => (amount * params.protocolFeeBps) / 10000n;

        // Balances as last seen, for conservation; an account first touched now had what the snapshot held (or nothing).
        const initial = new Map(base.contracts.map((c) => [c.address.toRawString(), c.account.account?.storage.balance.coins ?? 0n]));
        const balances = new Map<string, bigint>();

        /** A Provider as it is before any registration (status None, nothing staked). */
        const newProviderModel = (owner: SandboxContract<TreasuryContract>, contract: SandboxContract<Provider>, enclave: Ed25519KeyPair): ProviderModel => ({
            owner,
            contract,
            enclave,
            payout: owner.address,
            status: STATUS_NONE,
            jailReason: 0n,
            stake: 0n,
            openJobs: 0n,
            jobsSettleBy: 0,
            withdrawableAt: 0,
            validUntil: 0,
            completed: 0n,
            refunded: 0n,
            disputesLost: 0n,
            burnedKeys: new Set(),
            keys: 1,
            leftovers: 0n,
        });
        const providers: ProviderModel[] = [];
        for (let i = 0; i < PROVIDERS; i++) {
            const p = newProviderModel(owners[i], blockchain.openContract(Provider.fromAddress(providerAddresses[i])), enclaves[i].signing);
            p.status = STATUS_ACTIVE;
            p.stake = STAKES[i];
            p.validUntil = Number((await p.contract.getInfo()).attestationValidUntil);
            providers.push(p);
        }
        const escrows: EscrowModel[] = [];
        const channels: ChannelModel[] = [];
        let nonce = 0n;
        const now = () => blockchain.now!;
        const actors = () => [clients[0], clients[1], owners[0], outsider];
        const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);

        /** Conservation: the balances of the accounts `r` touched moved by exactly minus the fees it recorded. */
        async function expectConserved(r: SendMessageResult): Promise<void> {
            const touched = new Map<string, Address>();
            for (const tx of r.transactions) {
                const dest = tx.inMessage?.info.dest;
                if (dest instanceof Address) touched.set(dest.toRawString(), dest);
            }
            let delta = 0n;
            for (const [key, address] of touched) {
                const before = balances.get(key) ?? initial.get(key) ?? 0n;
                const after = (await blockchain.getContract(address)).balance;
                balances.set(key, after);
                delta += after - before;
            }
            expect(delta + networkFees(r)).toBe(0n);
        }

        /** Runs one message chain: checks the target's outcome, conservation, and the payments and closes it carried. */
        async function step(label: string, target: Address, expected: Expect, send: () => Promise<SendMessageResult>): Promise<SendMessageResult> {
            const r = await send();
            tally(`${label}: ${'ok' in expected ? 'ok' : `exit ${expected.exit}`}`);
            if ('ok' in expected) {
                expect(r.transactions).toHaveTransaction({ to: target, success: true });
            } else {
                expect(r.transactions).toHaveTransaction({ to: target, success: false, exitCode: Number(expected.exit) });
            }
            await expectConserved(r);
            // Payments by escrows and channels, and job-end notices to Providers, by opcode.
            for (const tx of r.transactions) {
                for (const msg of tx.outMessages.values()) {
                    if (msg.info.type !== 'internal') continue;
                    const body = msg.body.beginParse();
                    const op = body.remainingBits >= 32 ? body.loadUint(32) : -1;
                    const { src: from, dest: to } = msg.info;
                    if (op === OP_ESCROW_PAYMENT) {
                        const e = escrows.find((x) => x.contract.address.equals(from));
                        expect(e).toBeDefined();
                        credit(e!.paid, to, msg.info.value.coins);
                    } else if (op === OP_JOB_ENDED || op === OP_CHANNEL_ENDED) {
                        const p = providers.find((x) => x.contract.address.equals(to));
                        if (p) p.leftovers += msg.info.value.coins;
                    } else if (op === OP_CHANNEL_PAYMENT) {
                        const c = channels.find((x) => x.contract.address.equals(from));
                        expect(c).toBeDefined();
                        credit(c!.paid, to, msg.info.value.coins);
                    }
                }
            }
            return r;
        }

        /** The one close message (EscrowClosed or ChannelClosed, by `op`) `from` sent in `r`: to its client, with at least `atLeast`. */
        function closeMessage(r: SendMessageResult, from: Address, op: number, client: Address, atLeast: bigint): Cell {
            const closes = r.transactions.flatMap((tx) =>
                [...tx.outMessages.values()].flatMap((m) =>
                    m.info.type === 'internal' && m.info.src.equals(from) && m.body.beginParse().loadUint(32) === op ? [{ info: m.info, body: m.body }] : [],
                ),
            );
            expect(closes).toHaveLength(1);
            const [{ info, body }] = closes;
            expect(info.dest.equals(client)).toBe(true);
            expect(info.value.coins).toBeGreaterThanOrEqual(atLeast);
            return body;
        }

        /** `e` closed in `r` with this outcome, returning its client at least `atLeast`. */
        function expectEscrowClosed(r: SendMessageResult, e: EscrowModel, outcome: bigint, reason: bigint, atLeast: bigint) {
            const closed = loadEscrowClosed(closeMessage(r, e.contract.address, OP_ESCROW_CLOSED, e.client.address, atLeast).beginParse());
            expect([closed.outcome, closed.reason]).toEqual([outcome, reason]);
            e.state = 'closed';
        }

        /** `c` closed in `r` with this outcome, returning its client at least what it had not settled. */
        function expectChannelClosed(r: SendMessageResult, c: ChannelModel, outcome: bigint, reason: bigint) {
            const closed = loadChannelClosed(closeMessage(r, c.contract.address, OP_CHANNEL_CLOSED, c.client.address, c.deposit - c.settled).beginParse());
            expect([closed.outcome, closed.reason]).toEqual([outcome, reason]);
            c.state = 'closed';
        }

        /** The Provider's answer to a job ending at `deadline` (0: engaged), as its engage() decides. */
        function refusal(p: ProviderModel | undefined, deadline: number): bigint | null {
            if (!p) return null; // no Provider: the EngageJob bounces
            if (p.status !== STATUS_ACTIVE) return REFUSED_JOB_NOT_ACTIVE;
            if (p.stake < minStake) return REFUSED_JOB_STAKE;
            if (deadline <= now() || deadline > now() + Number(params.maxJobDuration)) return REFUSED_JOB_DEADLINE;
            if (p.validUntil < deadline) return REFUSED_JOB_ATTESTATION_EXPIRED;
            return 0n;
        }

        function engaged(p: ProviderModel, deadline: number) {
            p.openJobs += 1n;
            p.jobsSettleBy = Math.max(p.jobsSettleBy, deadline + Number(params.disputeWindow + params.verdictWindow) + 3600);
        }

        /** A slash of `amount` as the Provider's slash() takes it (the dispute is counted by the caller). */
        function slashStake(p: ProviderModel, amount: bigint) {
            p.stake -= amount < p.stake ? amount : p.stake;
            if (p.status === STATUS_ACTIVE && p.stake < minStake) {
                p.status = STATUS_JAILED;
                p.jailReason = JAIL_STAKE_BELOW_MINIMUM;
            }
        }

        /**
         * The escrow or channel an operation acts on: two times in three one
         * in a state the operation fits (so deep paths are reached), else any
         * that is still open (so wrong-state refusals are too).
         */
        const pick = <T extends { state: string }>(list: T[], i: number, fits: (x: T) => boolean = () => true): T | undefined => {
            if (i === NEWEST) return list.length === 0 || list[list.length - 1].state === 'closed' ? undefined : list[list.length - 1];
            const fitting = list.filter((x) => x.state !== 'closed' && fits(x));
            if (i % 3 !== 0 && fitting.length > 0) return fitting[i % fitting.length];
            const open = list.filter((x) => x.state !== 'closed');
            return open.length === 0 ? undefined : open[i % open.length];
        };
        const pickClosed = <T extends { state: string }>(list: T[], i: number): T | undefined => {
            const closed = list.filter((x) => x.state === 'closed');
            return closed.length === 0 ? undefined : closed[i % closed.length];
        };

        async function apply(op: Op): Promise<void> {
            switch (op.k) {
                case 'open': {
                    const client = clients[op.client];
                    const p = providers[op.provider] as ProviderModel | undefined;
                    const providerAddress = providerAddresses[op.provider];
                    const maxAmount = MAX_AMOUNTS[op.amount];
                    const deadline = now() + JOB_LENGTHS[op.length];
                    nonce += 1n;
                    const contract = blockchain.openContract(await Escrow.fromInit(client.address, providerAddress, nonce));
                    const openFee = await providers[0].contract.getEscrowOpenFee();
                    const value = maxAmount + openFee - (op.underpay ? 1n : 0n);
                    const body = { $$type: 'OpenEscrow' as const, queryId: 0n, requestHash: nonce, modelHash: MODEL_A, maxAmount, deadline: BigInt(deadline) };
                    if (op.underpay) {
                        await step('open underpaid', contract.address, { exit: ERR_INSUFFICIENT_VALUE }, () => contract.send(client.getSender(), { value }, body));
                        return;
                    }
                    const answer = refusal(p, deadline);
                    const r = await step(`open (refusal ${answer ?? 'bounce'})`, contract.address, OK, () => contract.send(client.getSender(), { value }, body));
                    const e: EscrowModel = {
                        contract: blockchain.openContract(Escrow.fromAddress(contract.address)), // no StateInit: a closed escrow stays closed
                        client,
                        provider: p ?? providers[0],
                        enclave: (p ?? providers[0]).enclave,
                        maxAmount,
                        deadline,
                        state: 'engaged',
                        amount: 0n,
                        releaseAt: 0,
                        verdictBy: 0,
                        paid: new Map(),
                        owed: new Map(),
                    };
                    escrows.push(e);
                    if (answer === 0n) {
                        engaged(p!, deadline);
                    } else {
                        // Refused (or bounced off the empty address): closed at once, everything back.
                        expectEscrowClosed(r, e, ESCROW_CLOSED_REFUSED, answer ?? 0n, maxAmount);
                    }
                    return;
                }
                case 'job': {
                    await apply({ k: 'open', client: op.client, provider: op.provider, amount: op.amount, length: 1, underpay: false });
                    await checkInvariants();
                    await apply({ k: 'receipt', e: NEWEST, pct: op.pct, forged: false, by: 3 });
                    if (op.dispute === 'none') return;
                    await checkInvariants();
                    await apply({ k: 'dispute', e: NEWEST, stranger: false, underpay: false });
                    await checkInvariants();
                    await apply({ k: 'verdict', e: NEWEST, clientWins: op.dispute === 'clientWins', slash: op.slash, quorum: true });
                    return;
                }
                case 'receipt': {
                    const e = pick(escrows, op.e, (x) => x.state === 'engaged');
                    if (!e) return;
                    const amount = (e.maxAmount * BigInt(op.pct)) / 100n;
                    const info = await e.contract.getInfo();
                    const fields = {
                        escrow: e.contract.address,
                        engageId: info.engageId,
                        requestHash: info.requestHash,
                        responseHash: BigInt(op.pct) + 1n,
                        modelHash: MODEL_A,
                        inputUnits: 10n,
                        outputUnits: 20n,
                        amount,
                        finishedAt: now(),
                    };
                    const signed = signReceipt(fields, op.forged ? forger : e.enclave);
                    const by = actors()[op.by];
                    let expected: Expect = OK;
                    if (e.state !== 'engaged') expected = { exit: ERR_BAD_STATE };
                    else if (now() > e.deadline) expected = { exit: ERR_RECEIPT_TIME };
                    else if (op.forged) expected = { exit: ERR_BAD_RECEIPT_SIGNATURE };
                    else if (amount > e.maxAmount) expected = { exit: ERR_RECEIPT_AMOUNT };
                    await step('receipt', e.contract.address, expected, async () =>
                        e.contract.send(by.getSender(), { value: await e.contract.getTriggerFee() }, submitReceiptMessage(signed)),
                    );
                    if ('ok' in expected) {
                        e.state = 'receipted';
                        e.amount = amount;
                        e.releaseAt = now() + Number(params.disputeWindow);
                    }
                    return;
                }
                case 'release': {
                    const e = pick(escrows, op.e, (x) => x.state === 'receipted');
                    if (!e) return;
                    const by = actors()[op.by];
                    let expected: Expect = OK;
                    if (e.state !== 'receipted') expected = { exit: ERR_BAD_STATE };
                    else if (now() < e.releaseAt) expected = { exit: ERR_DISPUTE_WINDOW_OPEN };
                    const r = await step('release', e.contract.address, expected, async () =>
                        e.contract.send(by.getSender(), { value: await e.contract.getTriggerFee() }, { $$type: 'Release', queryId: 0n }),
                    );
                    if ('ok' in expected) released(r, e);
                    return;
                }
                case 'refund': {
                    const e = pick(escrows, op.e, (x) => x.state === 'engaged' || x.state === 'disputed');
                    if (!e) return;
                    await refund(e, actors()[op.by]);
                    return;
                }
                case 'cancel': {
                    const e = pick(escrows, op.e);
                    if (!e) return;
                    // Engagement is immediate here, so an open escrow is never cancellable: only its client may try.
                    await step('cancel by stranger', e.contract.address, { exit: ERR_NOT_CLIENT }, async () =>
                        e.contract.send(outsider.getSender(), { value: await e.contract.getTriggerFee() }, { $$type: 'CancelEscrow', queryId: 0n }),
                    );
                    await step('cancel engaged', e.contract.address, { exit: ERR_BAD_STATE }, async () =>
                        e.contract.send(e.client.getSender(), { value: await e.contract.getTriggerFee() }, { $$type: 'CancelEscrow', queryId: 0n }),
                    );
                    return;
                }
                case 'dispute': {
                    const e = pick(escrows, op.e, (x) => x.state === 'receipted');
                    if (!e) return;
                    const from = op.stranger ? outsider : e.client;
                    let expected: Expect = OK;
                    if (op.stranger) expected = { exit: ERR_NOT_CLIENT };
                    else if (e.state !== 'receipted') expected = { exit: ERR_BAD_STATE };
                    else if (now() >= e.releaseAt) expected = { exit: ERR_DISPUTE_WINDOW_CLOSED };
                    else if (op.underpay) expected = { exit: ERR_INSUFFICIENT_VALUE };
                    const value = bond + (await e.contract.getDisputeFee()) - (op.underpay ? 1n : 0n);
                    await step('dispute', e.contract.address, expected, () =>
                        e.contract.send(from.getSender(), { value }, { $$type: 'Dispute', queryId: 0n, reason: 1n, evidenceHash: 0xe71den }),
                    );
                    if ('ok' in expected) {
                        e.state = 'disputed';
                        e.verdictBy = now() + Number(params.verdictWindow);
                    }
                    return;
                }
                case 'verdict': {
                    const e = pick(escrows, op.e, (x) => x.state === 'disputed');
                    if (!e) return;
                    const slashAmount = SLASHES[op.slash];
                    const verdict = buildVerdict({
                        escrow: e.contract.address,
                        engageId: (await e.contract.getInfo()).engageId,
                        outcome: op.clientWins ? VERDICT_CLIENT_WINS : VERDICT_PROVIDER_WINS,
                        slashAmount: op.clientWins ? slashAmount : 0n,
                        feeTo: feeTo.address,
                        deadline: now() + 3600,
                    });
                    const signers = op.quorum ? [0, 2] : [1];
                    const signatures = new Map(signers.map((i) => [i, signVerdict(verdict, ARBITERS[i])]));
                    let expected: Expect = OK;
                    if (e.state !== 'disputed') expected = { exit: ERR_BAD_STATE };
                    else if (now() > e.verdictBy) expected = { exit: ERR_VERDICT_LATE };
                    else if (!op.quorum) expected = { exit: ERR_NO_QUORUM };
                    const r = await step(`verdict ${op.clientWins ? 'client' : 'provider'} wins`, e.contract.address, expected, async () =>
                        e.contract.send(outsider.getSender(), { value: await e.contract.getVerdictFee() }, submitVerdictMessage({ verdict, signatures }, ARBITER_SET)),
                    );
                    if (!('ok' in expected)) return;
                    if (op.clientWins) {
                        const p = e.provider;
                        p.openJobs -= 1n;
                        p.disputesLost += 1n;
                        slashStake(p, slashAmount);
                        expectEscrowClosed(r, e, ESCROW_CLOSED_CLIENT_WON, 0n, e.maxAmount + bond);
                    } else {
                        // The bond's shares: the arbiters' fee, and the rest to the payout.
                        credit(e.owed, feeTo.address, arbiterFee);
                        credit(e.owed, e.provider.payout, bond - arbiterFee);
                        released(r, e);
                    }
                    return;
                }
                case 'equivocate': {
                    const p = providers[op.p] as ProviderModel | undefined;
                    const address = providerAddresses[op.p];
                    const contract = blockchain.openContract(Provider.fromAddress(address));
                    const key = p?.enclave ?? forger;
                    const fields = { escrow: outsider.address, engageId: 1n, requestHash: 7n, responseHash: 1n, modelHash: MODEL_A, inputUnits: 1n, outputUnits: 1n, amount: 1n, finishedAt: now() };
                    const message = proveEquivocationMessage(signReceipt(fields, key), signReceipt({ ...fields, responseHash: 2n }, key));
                    if (!p) { await sendToClosed('equivocate', address, () => contract.send(outsider.getSender(), { value: toNano('0.1') }, message)); return; }
                    let expected: Expect = OK;
                    if (p.status === STATUS_NONE || p.status === STATUS_EXITED) expected = { exit: ERR_NOT_REGISTERED };
                    else if (p.burnedKeys.has(keyHex(p.enclave))) expected = { exit: ERR_ALREADY_PROVEN };
                    await step('equivocation proof', address, expected, async () => contract.send(outsider.getSender(), { value: await contract.getProofFee() }, message));
                    if ('ok' in expected) {
                        p.stake -= (p.stake * params.slashBps) / 10000n;
                        p.status = STATUS_JAILED;
                        p.jailReason = JAIL_PROVEN_FAULT;
                        p.burnedKeys.add(keyHex(p.enclave));
                    }
                    return;
                }
                case 'register':
                case 'reattest': {
                    // The owner of Provider p (index PROVIDERS: the owner who never registered) with its enclave, or a new one.
                    let p = providers[op.p] as ProviderModel | undefined;
                    const owner = op.p < PROVIDERS ? owners[op.p] : ghost;
                    const rotate = op.k === 'reattest' && op.newKey;
                    const enclave = testEnclave(`fuzz-p${op.p}${rotate ? `-k${(p?.keys ?? 1) + 1}` : ''}`);
                    const signed = signedFor(fx, owner.address, enclave, { validUntil: now() + 6 * DAY });
                    const fee = await fx.registry.getAttestationFee();
                    const stake = op.k === 'register' ? minStake - (op.lowStake ? 1n : 0n) : TOP_UPS[op.stake];
                    const value = stake + fee - (op.k === 'register' && op.underpay ? 1n : 0n);
                    const message = op.k === 'register' ? registerProviderMessage(signed, stake) : reattestMessage(signed, stake);
                    let expected: Expect = OK;
                    if (op.k === 'register' && op.underpay) expected = { exit: ERR_INSUFFICIENT_VALUE };
                    else if (op.k === 'register' && op.lowStake) expected = { exit: ERR_STAKE_TOO_LOW };
                    const r = await step(op.k, fx.registry.address, expected, () => fx.registry.send(owner.getSender(), { value }, message));
                    if (!('ok' in expected)) return;
                    const registered = p !== undefined && p.status !== STATUS_NONE && p.status !== STATUS_EXITED;
                    const refused =
                        op.k === 'register' && registered
                            ? REFUSED_ALREADY_REGISTERED
                            : op.k === 'reattest' && !registered
                              ? REFUSED_NOT_REGISTERED
                              : p?.burnedKeys.has(keyHex(enclave.signing))
                                ? REFUSED_KEY_BURNED
                                : null;
                    const answers = r.transactions.flatMap((tx) =>
                        [...tx.outMessages.values()].filter((m) => m.info.type === 'internal' && m.info.src.equals(providerAddresses[op.p]) && m.info.dest.equals(owner.address)),
                    );
                    expect(answers).toHaveLength(1);
                    const answer = answers[0].body.beginParse();
                    if (!p) {
                        // The Registry deployed the Provider with this message, accepted or not: from now on it answers.
                        p = newProviderModel(owner, blockchain.openContract(Provider.fromAddress(providerAddresses[op.p])), enclave.signing);
                        providers.push(p);
                    }
                    if (refused !== null) {
                        expect(answer.loadUint(32)).toBe(OP_REGISTRATION_REFUSED);
                        expect(loadRegistrationRefused(answers[0].body.beginParse()).reason).toBe(refused);
                        return;
                    }
                    expect(answer.loadUint(32)).toBe(OP_EXCESSES);
                    p.stake += stake;
                    p.validUntil = now() + 6 * DAY;
                    if (rotate) p.keys += 1;
                    p.enclave = enclave.signing;
                    if (op.k === 'register') {
                        p.status = STATUS_ACTIVE;
                        p.jailReason = 0n;
                        p.withdrawableAt = 0;
                    } else if (p.status === STATUS_JAILED && p.stake >= minStake) {
                        p.status = STATUS_ACTIVE;
                        p.jailReason = 0n;
                    }
                    return;
                }
                case 'topUp': {
                    const p = providers[op.p] as ProviderModel | undefined;
                    const address = providerAddresses[op.p];
                    const contract = blockchain.openContract(Provider.fromAddress(address));
                    const amount = TOP_UPS[op.amount];
                    const by = actors()[op.by];
                    const message = { $$type: 'TopUpStake' as const, queryId: 0n, amount };
                    if (!p) { await sendToClosed('top up', address, () => contract.send(by.getSender(), { value: amount + toNano('0.05') }, message)); return; }
                    let expected: Expect = OK;
                    if (op.underpay) expected = { exit: ERR_INSUFFICIENT_VALUE };
                    else if (p.status === STATUS_NONE || p.status === STATUS_EXITED) expected = { exit: ERR_NOT_REGISTERED };
                    const value = amount + (await contract.getSimpleFee()) - (op.underpay ? 1n : 0n);
                    await step('top up', address, expected, () => contract.send(by.getSender(), { value }, message));
                    if ('ok' in expected) p.stake += amount;
                    return;
                }
                case 'unbond': {
                    const p = providers[op.p];
                    let expected: Expect = OK;
                    if (op.stranger) expected = { exit: ERR_NOT_OWNER };
                    else if (p.status !== STATUS_ACTIVE && p.status !== STATUS_JAILED) expected = { exit: ERR_BAD_STATUS };
                    await step('unbond', p.contract.address, expected, async () =>
                        p.contract.send((op.stranger ? outsider : p.owner).getSender(), { value: await p.contract.getSimpleFee() }, { $$type: 'RequestUnbond', queryId: 0n }),
                    );
                    if ('ok' in expected) {
                        p.status = STATUS_UNBONDING;
                        p.withdrawableAt = now() + Number(params.unbondingPeriod);
                    }
                    return;
                }
                case 'withdraw': {
                    await withdraw(providers[op.p]);
                    return;
                }
                case 'chOpen': {
                    const client = clients[op.client];
                    const p = providers[op.provider] as ProviderModel | undefined;
                    const providerAddress = providerAddresses[op.provider];
                    const deposit = DEPOSITS[op.deposit];
                    const expiresAt = now() + JOB_LENGTHS[op.length];
                    nonce += 1n;
                    const contract = blockchain.openContract(await Channel.fromInit(client.address, providerAddress, nonce));
                    const value = deposit + (await providers[0].contract.getChannelOpenFee());
                    const answer = refusal(p, expiresAt);
                    const r = await step(`channel open (refusal ${answer ?? 'bounce'})`, contract.address, OK, () =>
                        contract.send(client.getSender(), { value }, { $$type: 'OpenChannel', queryId: 0n, modelHash: MODEL_A, deposit, expiresAt: BigInt(expiresAt) }),
                    );
                    const opened = blockchain.openContract(Channel.fromAddress(contract.address));
                    const openId = answer === 0n ? (await opened.getInfo()).openId : 0n;
                    const c: ChannelModel = {
                        contract: opened,
                        client,
                        provider: p ?? providers[0],
                        chain: new ReceiptChain(contract.address, openId, (p ?? providers[0]).enclave),
                        state: 'active',
                        deposit,
                        settled: 0n,
                        seqno: 0n,
                        closeBy: expiresAt + Number(params.disputeWindow),
                        paid: new Map(),
                        owed: new Map(),
                    };
                    channels.push(c);
                    if (answer === 0n) engaged(p!, expiresAt);
                    else expectChannelClosed(r, c, ESCROW_CLOSED_REFUSED, answer ?? 0n);
                    return;
                }
                case 'chServe': {
                    // Off-chain: the enclave serves n requests and signs the cumulative receipt after each.
                    const c = pick(channels, op.c);
                    if (!c) return;
                    for (let i = 0; i < op.n; i++) c.chain.serve(PRICES[op.price]);
                    tally('channel serve (off-chain)');
                    return;
                }
                case 'chTopUp': {
                    const c = pick(channels, op.c);
                    if (!c) return;
                    const amount = TOP_UPS[op.amount];
                    const expected: Expect = c.state === 'active' ? OK : { exit: ERR_BAD_STATE };
                    await step('channel top up', c.contract.address, expected, async () =>
                        c.contract.send(c.client.getSender(), { value: amount + (await c.contract.getTriggerFee()) }, { $$type: 'TopUpChannel', queryId: 0n, amount }),
                    );
                    if ('ok' in expected) c.deposit += amount;
                    return;
                }
                case 'chClaim': {
                    const c = pick(channels, op.c, (x) => x.chain.steps.length > 0);
                    if (!c || c.chain.steps.length === 0) return;
                    const signed: SignedChannelReceipt =
                        op.which === 'final' ? c.chain.resign({ final: true }) : c.chain.steps[op.which === 'stale' ? 0 : c.chain.steps.length - 1].signed;
                    const { seqno, amount } = parseChannelReceipt(signed.receipt);
                    let expected: Expect = OK;
                    if (now() >= c.closeBy) expected = { exit: ERR_CHANNEL_EXPIRED };
                    else if (seqno <= c.seqno) expected = { exit: ERR_STALE_SEQNO };
                    else if (amount > c.deposit) expected = { exit: ERR_OVER_DEPOSIT };
                    const by = actors()[op.by];
                    const r = await step(`channel claim ${op.which}`, c.contract.address, expected, async () =>
                        c.contract.send(by.getSender(), { value: await c.contract.getClaimFee() }, claimChannelMessage(signed)),
                    );
                    if (!('ok' in expected)) return;
                    c.seqno = seqno;
                    // A claim pays what the receipt adds to what was settled: to the payout, less the protocol fee to the treasury.
                    const due = amount > c.settled ? amount - c.settled : 0n;
                    credit(c.owed, c.provider.payout, due - protocolFee(due));
                    credit(c.owed, params.treasury, protocolFee(due));
                    c.settled += due;
                    if (op.which === 'final') {
                        c.provider.openJobs -= 1n;
                        c.provider.completed += 1n;
                        expectChannelClosed(r, c, ESCROW_CLOSED_RELEASED, 0n);
                    }
                    return;
                }
                case 'chClose': {
                    const c = pick(channels, op.c, (x) => x.state === 'active');
                    if (!c) return;
                    let expected: Expect = OK;
                    if (op.stranger) expected = { exit: ERR_NOT_CLIENT };
                    else if (c.state !== 'active') expected = { exit: ERR_BAD_STATE };
                    await step('channel close request', c.contract.address, expected, async () =>
                        c.contract.send((op.stranger ? outsider : c.client).getSender(), { value: await c.contract.getTriggerFee() }, { $$type: 'RequestChannelClose', queryId: 0n }),
                    );
                    if ('ok' in expected) {
                        c.state = 'closing';
                        c.closeBy = Math.min(c.closeBy, now() + Number(params.disputeWindow));
                    }
                    return;
                }
                case 'chSettle': {
                    const c = pick(channels, op.c, (x) => now() >= x.closeBy);
                    if (!c) return;
                    await settle(c, actors()[op.by]);
                    return;
                }
                case 'afterClose': {
                    // Whatever reaches a closed escrow or channel finds no account: nothing runs, nothing is paid twice.
                    const by = actors()[op.by];
                    const value = toNano('0.05');
                    if (op.channel) {
                        const c = pickClosed(channels, op.i);
                        if (!c) return;
                        const last = c.chain.steps[c.chain.steps.length - 1];
                        if (op.what === 'claim' && last) await sendToClosed('claim after close', c.contract.address, () => c.contract.send(by.getSender(), { value }, claimChannelMessage(last.signed)));
                        else await sendToClosed('settle after close', c.contract.address, () => c.contract.send(by.getSender(), { value }, { $$type: 'SettleChannel', queryId: 0n }));
                        return;
                    }
                    const e = pickClosed(escrows, op.i);
                    if (!e) return;
                    const message = op.what === 'claim' ? ({ $$type: 'Release', queryId: 0n } as const) : ({ $$type: 'Refund', queryId: 0n } as const);
                    await sendToClosed(`${message.$$type} after close`, e.contract.address, () => e.contract.send(by.getSender(), { value }, message));
                    return;
                }
                case 'time': {
                    blockchain.now = now() + TIME_JUMPS[op.jump];
                    tally('time jump');
                    return;
                }
                case 'spoof': {
                    // Messages only an escrow, a channel or a Provider may send, from the outsider instead.
                    const client = clients[0].address;
                    if (op.what === 'jobEngaged') {
                        const e = pick(escrows, op.target);
                        if (!e) return;
                        await step('spoofed JobEngaged', e.contract.address, { exit: ERR_WRONG_SENDER }, () =>
                            e.contract.send(outsider.getSender(), { value: toNano('0.05') }, { $$type: 'JobEngaged', queryId: 0n, engagement: beginCell().endCell() }),
                        );
                        return;
                    }
                    const p = providers[op.target % PROVIDERS];
                    const message =
                        op.what === 'jobEnded'
                            ? { $$type: 'JobEnded' as const, queryId: 0n, client, nonce: 1n, outcome: ESCROW_CLOSED_RELEASED }
                            : op.what === 'channelEnded'
                              ? { $$type: 'ChannelEnded' as const, queryId: 0n, client, nonce: 1n, outcome: ESCROW_CLOSED_RELEASED }
                              : { $$type: 'SlashProvider' as const, queryId: 0n, client, nonce: 1n, amount: toNano('1000'), feeTo: outsider.address, arbiterFee: toNano('1000') };
                    await step(`spoofed ${message.$$type}`, p.contract.address, { exit: ERR_WRONG_SENDER }, () => p.contract.send(outsider.getSender(), { value: toNano('0.05') }, message));
                    return;
                }
            }
        }

        /** A message to a closed escrow or channel (or the empty Provider address): nothing there runs, the value bounces back. */
        async function sendToClosed(label: string, address: Address, send: () => Promise<SendMessageResult>) {
            const r = await send();
            tally(`${label}: to a closed account`);
            const there = r.transactions.filter((tx) => tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(address));
            expect(there).toHaveLength(1);
            const d = there[0].description;
            expect(d.type === 'generic' && d.computePhase.type).toBe('skipped');
            expect(d.type === 'generic' && d.aborted).toBe(true);
            await expectConserved(r); // (no payment can come from a closed account)
        }

        function released(r: SendMessageResult, e: EscrowModel) {
            credit(e.owed, e.provider.payout, e.amount - protocolFee(e.amount));
            credit(e.owed, params.treasury, protocolFee(e.amount));
            e.provider.openJobs -= 1n;
            e.provider.completed += 1n;
            expectEscrowClosed(r, e, ESCROW_CLOSED_RELEASED, 0n, e.maxAmount - e.amount);
        }

        async function refund(e: EscrowModel, by: SandboxContract<TreasuryContract>) {
            let expected: Expect = OK;
            if (e.state === 'disputed') {
                if (now() <= e.verdictBy) expected = { exit: ERR_DEADLINE_NOT_PASSED };
            } else if (e.state !== 'engaged') expected = { exit: ERR_BAD_STATE };
            else if (now() <= e.deadline) expected = { exit: ERR_DEADLINE_NOT_PASSED };
            const r = await step(`refund ${e.state}`, e.contract.address, expected, async () =>
                e.contract.send(by.getSender(), { value: await e.contract.getTriggerFee() }, { $$type: 'Refund', queryId: 0n }),
            );
            if (!('ok' in expected)) return;
            e.provider.openJobs -= 1n;
            if (e.state === 'disputed') {
                expectEscrowClosed(r, e, ESCROW_CLOSED_UNRESOLVED, 0n, e.maxAmount + bond);
            } else {
                e.provider.refunded += 1n;
                expectEscrowClosed(r, e, ESCROW_CLOSED_EXPIRED, 0n, e.maxAmount);
            }
        }

        async function settle(c: ChannelModel, by: SandboxContract<TreasuryContract>) {
            const expected: Expect = now() >= c.closeBy ? OK : { exit: ERR_NOT_SETTLEABLE };
            const r = await step('channel settle', c.contract.address, expected, async () =>
                c.contract.send(by.getSender(), { value: await c.contract.getTriggerFee() }, { $$type: 'SettleChannel', queryId: 0n }),
            );
            if (!('ok' in expected)) return;
            c.provider.openJobs -= 1n;
            if (c.seqno > 0n) c.provider.completed += 1n;
            else c.provider.refunded += 1n;
            expectChannelClosed(r, c, c.seqno > 0n ? ESCROW_CLOSED_RELEASED : ESCROW_CLOSED_EXPIRED, 0n);
        }

        async function withdraw(p: ProviderModel) {
            let expected: Expect = OK;
            if (p.status !== STATUS_UNBONDING) expected = { exit: ERR_BAD_STATUS };
            else if (now() < p.withdrawableAt) expected = { exit: ERR_UNBONDING_NOT_OVER };
            else if (p.openJobs > 0n && now() <= p.jobsSettleBy) expected = { exit: ERR_JOBS_OPEN };
            const value = await p.contract.getSimpleFee();
            const r = await step('withdraw', p.contract.address, expected, () => p.contract.send(p.owner.getSender(), { value }, { $$type: 'WithdrawStake', queryId: 0n }));
            if ('ok' in expected) {
                // The whole stake leaves for the owner; only the rent the Provider owed since its last message comes off it.
                const withdrawn = r.transactions
                    .filter((tx) => tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(p.contract.address))
                    .flatMap((tx) => [...tx.outMessages.values()].map((m) => ({ m, rent: tx.description.type === 'generic' ? (tx.description.storagePhase?.storageFeesCollected ?? 0n) : 0n })))
                    .filter(({ m }) => m.info.type === 'internal' && m.body.beginParse().loadUint(32) === OP_STAKE_WITHDRAWN);
                if (p.stake > 0n) {
                    expect(withdrawn).toHaveLength(1);
                    const { m, rent } = withdrawn[0];
                    expect(loadStakeWithdrawn(m.body.beginParse()).amount).toBe(p.stake);
                    expect(m.info.type === 'internal' && m.info.value.coins + rent).toBeGreaterThanOrEqual(p.stake);
                } else if (withdrawn.length === 0) {
                    // Nothing staked, and the rent left the message too little to pay for its reply: its rest stays above the reserve.
                    p.leftovers += value;
                }
                p.stake = 0n;
                p.status = STATUS_EXITED;
            }
        }

        /** Every invariant that must hold between steps. */
        async function checkInvariants(): Promise<void> {
            for (const p of providers) {
                const info = await p.contract.getInfo();
                expect({
                    status: info.status,
                    jailReason: info.jailReason,
                    stake: info.stake,
                    openJobs: info.openJobs,
                    completedJobs: info.completedJobs,
                    refundedJobs: info.refundedJobs,
                    disputesLost: info.disputesLost,
                }).toEqual({
                    status: p.status,
                    jailReason: p.jailReason,
                    stake: p.stake,
                    openJobs: p.openJobs,
                    completedJobs: p.completed,
                    refundedJobs: p.refunded,
                    disputesLost: p.disputesLost,
                });
                expect((await blockchain.getContract(p.contract.address)).balance).toBeGreaterThanOrEqual(p.stake);
            }
            for (const e of escrows) {
                const account = await blockchain.getContract(e.contract.address);
                if (e.state === 'closed') {
                    expect(account.balance).toBe(0n);
                    expect(account.accountState?.type).not.toBe('active');
                    // Paid exactly once: the receipt's amount (and a ProviderWins verdict's bond) or nothing.
                    expect(e.paid).toEqual(e.owed);
                    continue;
                }
                const state = { engaged: 2n, receipted: 3n, disputed: 4n }[e.state];
                expect(await e.contract.getState()).toBe(state);
                expect(account.balance).toBeGreaterThanOrEqual(e.maxAmount);
                expect(e.paid.size).toBe(0);
            }
            for (const c of channels) {
                const account = await blockchain.getContract(c.contract.address);
                expect(c.paid).toEqual(c.owed);
                expect(total(c.paid)).toBe(c.settled);
                expect(c.settled).toBeLessThanOrEqual(c.deposit);
                expect(c.settled).toBeLessThanOrEqual(c.chain.amount);
                if (c.state === 'closed') {
                    expect(account.balance).toBe(0n);
                    continue;
                }
                const info = await c.contract.getInfo();
                expect([info.state, info.deposit, info.settled, info.seqno]).toEqual([c.state === 'active' ? 2n : 3n, c.deposit, c.settled, c.seqno]);
                expect(account.balance).toBeGreaterThanOrEqual(c.deposit - c.settled);
            }
        }

        for (const op of ops) {
            await apply(op);
            await checkInvariants();
        }

        // ---- the exit by time alone: nobody but an outsider acts ----
        blockchain.now = now() + 10 * DAY;
        for (const e of escrows) {
            if (e.state === 'receipted') {
                const r = await step('release by time', e.contract.address, OK, async () =>
                    e.contract.send(outsider.getSender(), { value: await e.contract.getTriggerFee() }, { $$type: 'Release', queryId: 0n }),
                );
                released(r, e);
            } else if (e.state !== 'closed') {
                await refund(e, outsider);
            }
            expect(e.state).toBe('closed');
        }
        for (const c of channels) {
            if (c.state !== 'closed') await settle(c, outsider);
            expect(c.state).toBe('closed');
        }
        await checkInvariants();
        for (const p of providers) expect(p.openJobs).toBe(0n);
        // Every stake can leave: unbond (Active or Jailed), wait, withdraw.
        for (const p of providers) {
            if (p.status === STATUS_ACTIVE || p.status === STATUS_JAILED) await apply({ k: 'unbond', p: providers.indexOf(p), stranger: false });
        }
        blockchain.now = now() + Number(params.unbondingPeriod);
        for (const p of providers) {
            if (p.status !== STATUS_EXITED && p.status !== STATUS_NONE) await withdraw(p);
            expect([STATUS_EXITED, STATUS_NONE]).toContain(p.status);
            // No stake stays: at most the reserve, and what messages that reply with nothing left above it.
            expect((await blockchain.getContract(p.contract.address)).balance).toBeLessThanOrEqual(PROVIDER_STORAGE_RESERVE + p.leftovers);
        }
        await checkInvariants();
    }

    it('random operation sequences keep every invariant', async () => {
        await fc.assert(
            fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60, size: 'max' }), async (ops) => runOne(ops)),
            fuzzSettings('invariants', 12),
        );
    });
});
