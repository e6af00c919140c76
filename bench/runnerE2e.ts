// The `runner.e2e_requests_per_second` figure of bench/run.ts: paid requests
// end to end through one runner on the embedded chain (@ton/sandbox), one
// after another, and where their time goes.
//
// A market as tests/helpers/market.ts builds it (runner/localnet.ts): a
// Registry, one runner (runner/node.ts) serving the reference model over its
// HTTP API, and a client SDK (sdk/client.ts). Each request is one
// `sdk.request`: the client opens an escrow on-chain (the sandbox runs the
// whole OpenEscrow → EngageJob → JobEngaged chain in the send), POSTs the
// sealed request; the runner reads the escrow, decrypts, runs the model,
// signs, records the receipt in SQLite and answers; the client verifies the
// answer. Every TICK_EVERY requests the runner's job loop runs once
// (`node.tick()`), submitting the receipts signed since; at the end the clock
// moves past the dispute window and the loop releases every escrow. All of
// that is in the wall time the figure is computed from.
//
// Where the time goes is measured two ways, both in wall time
// (process.hrtime.bigint): the bench marks which phase it is in (open, serve,
// verify, submit, release), and the objects handed to the runner and the SDK
// are wrapped with timers — the chain backend (sends by message, getters by
// name, account reads), the runner's job store (every SQLite call), the
// enclave's ECDH and signing, the model, the runner's serve() and the
// client's fetch. What no wrapper sees (envelopes, receipt cells, JSON, the
// client's own crypto and cell building) is the "other" of its phase.
//
// The attestation is issued for three days (the default verifier's one day
// would lapse with the first dispute window): the warm-up and the measured
// run each wait out one dispute window.
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { Address, beginCell, Cell, ContractProvider, StateInit, toNano, Transaction } from '@ton/core';
import pino from 'pino';
import { ChainBackend, ChainWallet, OutgoingMessage, SendReport } from '../runner/chain';
import { allowlistRunner, createLocalNet, labelKey, registerProvider, VerifierService } from '../runner/localnet';
import { InferenceRequest, InferenceResult, ModelSet, ReferenceModel } from '../runner/models';
import { RunnerNode } from '../runner/node';
import { RunnerStore, TickReport } from '../runner/runner';
import { JobStore } from '../runner/store';
import { ChrysalisClient, ProviderHandle } from '../sdk/client';
import { PRICES } from '../demo/marketplace';
import { storeOpenEscrow, storeRelease, storeSubmitReceipt } from '../wrappers/Registry';

/** The phases one request's time is split into; every nanosecond of the measured run is in exactly one. */
export const PHASES = ['open', 'serve', 'verify', 'submit', 'release', 'bench'] as const;
export type Phase = (typeof PHASES)[number];

/** What each phase covers, for the printed table. */
export const PHASE_LABELS: Readonly<Record<Phase, string>> = {
    open: 'client escrow open (chain)',
    serve: 'runner serve (HTTP round trip)',
    verify: 'client verification',
    submit: 'receipt submission (tick)',
    release: 'release (tick)',
    bench: 'bench loop itself',
};

/** Where the time inside a phase goes: each timed operation belongs to one group. */
export const GROUPS = ['chain send', 'chain getter', 'chain read', 'SQLite store', 'enclave crypto', 'model', 'HTTP + JSON', 'other'] as const;
export type Group = (typeof GROUPS)[number];

export const GROUP_LABELS: Readonly<Record<Group, string>> = {
    'chain send': 'chain sends (sandbox runs the message chain)',
    'chain getter': 'chain getters (TVM get methods)',
    'chain read': 'chain reads (isDeployed, now, transactionsSince)',
    'SQLite store': 'SQLite job store (recordSigned re-verifies the signature)',
    'enclave crypto': 'enclave ECDH + ed25519 sign',
    model: 'model (reference)',
    'HTTP + JSON': 'HTTP + JSON (fetch, server, bodies)',
    other: 'other (not wrapped: envelopes, cells, hashes, JSON, logging)',
};

interface Stat {
    ns: bigint;
    count: number;
}

/** Wall-time accounts: time per phase, and per (phase, operation) for the wrapped calls. */
export class PhaseClock {
    private current: Phase | null = null;
    private since = 0n;
    readonly phaseNs = new Map<Phase, bigint>();
    /** phase → operation → time and calls; each operation name maps to one group. */
    readonly ops = new Map<Phase, Map<string, Stat>>();
    readonly groupOf = new Map<string, Group>();
    /** Spans that contain timed operations (runner.serve inside the fetch): kept apart from the groups. */
    readonly spans = new Map<Phase, Map<string, Stat>>();

    /** Moves to `phase` (null: stop counting), charging the time since the last move to the phase left. */
    enter(phase: Phase | null): void {
        const now = process.hrtime.bigint();
        if (this.current !== null) this.phaseNs.set(this.current, (this.phaseNs.get(this.current) ?? 0n) + now - this.since);
        this.current = phase;
        this.since = now;
    }

    get phase(): Phase | null {
        return this.current;
    }

    reset(): void {
        this.enter(null);
        this.phaseNs.clear();
        this.ops.clear();
        this.spans.clear();
    }

    private add(table: Map<Phase, Map<string, Stat>>, phase: Phase | null, name: string, ns: bigint): void {
        if (phase === null) return;
        let byName = table.get(phase);
        if (!byName) table.set(phase, (byName = new Map<string, Stat>()));
        const stat = byName.get(name) ?? { ns: 0n, count: 0 };
        stat.ns += ns;
        stat.count++;
        byName.set(name, stat);
    }

    /** Times an operation of group `group`; it counts in the phase it started in. */
    async time<T>(name: string, group: Group, f: () => Promise<T>): Promise<T> {
        this.groupOf.set(name, group);
        const phase = this.current;
        const t0 = process.hrtime.bigint();
        try {
            return await f();
        } finally {
            this.add(this.ops, phase, name, process.hrtime.bigint() - t0);
        }
    }

    timeSync<T>(name: string, group: Group, f: () => T): T {
        this.groupOf.set(name, group);
        const phase = this.current;
        const t0 = process.hrtime.bigint();
        try {
            return f();
        } finally {
            this.add(this.ops, phase, name, process.hrtime.bigint() - t0);
        }
    }

    /** Times a span that contains timed operations (kept out of the groups); it counts in the phase it started in. */
    async span<T>(name: string, f: () => Promise<T>): Promise<T> {
        const phase = this.current;
        const t0 = process.hrtime.bigint();
        try {
            return await f();
        } finally {
            this.add(this.spans, phase, name, process.hrtime.bigint() - t0);
        }
    }

    spanNs(phase: Phase, name: string): bigint {
        return this.spans.get(phase)?.get(name)?.ns ?? 0n;
    }

    /** Time of the timed operations of `phase` by group; `other` is what is left of the phase. */
    groups(phase: Phase): Map<Group, bigint> {
        const out = new Map<Group, bigint>(GROUPS.map((g) => [g, 0n]));
        let timed = 0n;
        for (const [name, stat] of this.ops.get(phase) ?? []) {
            const group = this.groupOf.get(name) ?? 'other';
            out.set(group, out.get(group)! + stat.ns);
            timed += stat.ns;
        }
        if (phase === 'serve') {
            // The fetch round trip minus the runner's serve() is the HTTP stack and JSON on both sides.
            const http = this.spanNs('serve', 'client fetch') - this.spanNs('serve', 'runner.serve');
            out.set('HTTP + JSON', http > 0n ? http : 0n);
            timed += out.get('HTTP + JSON')!;
        }
        const rest = (this.phaseNs.get(phase) ?? 0n) - timed;
        out.set('other', out.get('other')! + (rest > 0n ? rest : 0n));
        return out;
    }
}

// ---------------------------------------------------------------------------
// Timing wrappers for what the runner and the SDK are given

function opcodeOf(body: Cell): number | undefined {
    const s = body.beginParse();
    return s.remainingBits >= 32 ? s.preloadUint(32) : undefined;
}

const SEND_NAMES = new Map<number, string>(
    (
        [
            ['OpenEscrow', beginCell().store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash: 0n, modelHash: 0n, maxAmount: 0n, deadline: 0n }))],
            ['SubmitReceipt', beginCell().store(storeSubmitReceipt({ $$type: 'SubmitReceipt', queryId: 0n, signature: Buffer.alloc(64), receipt: Cell.EMPTY }))],
            ['Release', beginCell().store(storeRelease({ $$type: 'Release', queryId: 0n }))],
        ] as const
    ).map(([name, builder]) => [opcodeOf(builder.endCell())!, name]),
);

/** A ChainBackend that times every call into `clock`, naming sends by their message and getters by their method. */
export class TimedChain implements ChainBackend {
    readonly kind: ChainBackend['kind'];

    constructor(
        private readonly inner: ChainBackend,
        private readonly clock: PhaseClock,
    ) {
        this.kind = inner.kind;
    }

    now(): Promise<number> {
        return this.clock.time('chain.now', 'chain read', () => this.inner.now());
    }

    provider(address: Address, init?: StateInit | null): ContractProvider {
        const p = this.inner.provider(address, init);
        const get = p.get.bind(p);
        p.get = (name, args) => this.clock.time(`get ${String(name)}`, 'chain getter', () => get(name, args));
        return p;
    }

    balance(address: Address): Promise<bigint> {
        return this.clock.time('chain.balance', 'chain read', () => this.inner.balance(address));
    }

    isDeployed(address: Address): Promise<boolean> {
        return this.clock.time('chain.isDeployed', 'chain read', () => this.inner.isDeployed(address));
    }

    send(from: ChainWallet, message: OutgoingMessage): Promise<SendReport> {
        const op = opcodeOf(message.body);
        const name = op === undefined ? 'message' : (SEND_NAMES.get(op) ?? `op 0x${op.toString(16)}`);
        return this.clock.time(`send ${name}`, 'chain send', () => this.inner.send(from, message));
    }

    transactionsSince(address: Address, afterLt: bigint, limit?: number): Promise<Transaction[]> {
        return this.clock.time('chain.transactionsSince', 'chain read', () => this.inner.transactionsSince(address, afterLt, limit));
    }
}

/** Every method the runner uses of its store; the Record makes the compiler list them all. */
const STORE_METHODS: Record<keyof RunnerStore, true> = {
    recordSigned: true,
    get: true,
    latestFor: true,
    withStatus: true,
    releasableBy: true,
    noteSubmitAttempt: true,
    markSubmitted: true,
    markReleased: true,
    markClosed: true,
    counts: true,
    getCursor: true,
    setCursor: true,
    noteEngaged: true,
    engagedAwaiting: true,
    forgetEngaged: true,
};

/** The runner's store with every call timed (node.ts's wrapStore hook). */
export function timedStore(store: JobStore, clock: PhaseClock): RunnerStore {
    const wrapped: Partial<Record<keyof RunnerStore, unknown>> = {};
    for (const name of Object.keys(STORE_METHODS) as (keyof RunnerStore)[]) {
        const f = (store[name] as unknown as (...args: unknown[]) => unknown).bind(store);
        wrapped[name] = (...args: unknown[]) => clock.timeSync(`store.${name}`, 'SQLite store', () => f(...args));
    }
    return wrapped as RunnerStore;
}

// ---------------------------------------------------------------------------
// The measurement

export interface E2eOptions {
    /** Measured requests at most (default 200); fewer when the warm-up says they would take over budgetMs. */
    requests?: number;
    /** Wall time the measured requests should fit in, about (default 30 s; the warm-up's estimate runs high, so it is usually 20–25 s). */
    budgetMs?: number;
    /** Warm-up requests, one full cycle (default 10). */
    warmup?: number;
    /** node.tick() after every this many requests (default 10). */
    tickEvery?: number;
}

export interface E2eReport {
    requests: number;
    tickEvery: number;
    warmup: number;
    wallMs: number;
    /** This process's CPU time (user + system) over the run: well under wallMs means it waited (for a core, for fsync). */
    cpuMs: number;
    requestsPerSecond: number;
    /** ms per request (over the whole measured run) by phase. */
    phases: Record<Phase, number>;
    /** ms per request by phase and group. */
    groups: Record<Phase, Record<Group, number>>;
    /** Timed operations over the whole run, most time first: name, group, total ms, calls. */
    operations: { name: string; group: Group; ms: number; calls: number }[];
    /** open + serve + verify, ms per request, over the first and the last quarter of the requests (growth with the chain's history). */
    firstQuarterMs: number;
    lastQuarterMs: number;
    /** The job loop's pass that submits, ms: the first and the last (its scan of the submitted backlog grows). */
    firstSubmitTickMs: number;
    lastSubmitTickMs: number;
    releaseTicks: number;
}

const T0 = 1_800_000_000;
const STAKE = toNano('150');
const MAX_AMOUNT = toNano('0.05');
const ATTESTATION_VALID_FOR = 3 * 86400;

const ms = (ns: bigint) => Number(ns) / 1e6;

const MODEL_NAME = new ReferenceModel().name;

function question(i: number): InferenceRequest {
    return { model: MODEL_NAME, messages: [{ role: 'user', content: `Request ${i}: what does an escrow do?` }], maxOutputTokens: 32 };
}

function checkTick(report: TickReport, what: string): TickReport {
    if (report.errors.length > 0) throw new Error(`${what}: the job loop failed: ${report.errors.join('; ')}`);
    return report;
}

/** Runs the measurement; prints nothing (bench/run.ts prints the report). */
export async function measureRunnerEndToEnd(opts: E2eOptions = {}): Promise<E2eReport> {
    const maxRequests = opts.requests ?? 200;
    const budgetMs = opts.budgetMs ?? 30_000;
    const warmup = opts.warmup ?? 10;
    const tickEvery = opts.tickEvery ?? 10;
    const clock = new PhaseClock();
    const logger = pino({ level: 'silent' });
    const dataDir = mkdtempSync(path.join(tmpdir(), 'chrysalis-bench-e2e-'));
    let node: RunnerNode | undefined;
    try {
        // ---- the market: one provider, one runner on the reference model, one client ----
        const net = await createLocalNet({ now: T0, label: 'bench-e2e' });
        const { chain } = net;
        const timedChain = new TimedChain(chain, clock);
        const owner = await chain.wallet('bench-e2e:owner', toNano('1000'));
        const hot = await chain.wallet('bench-e2e:hot', toNano('1000'));
        const model = new ReferenceModel();
        const complete = model.complete.bind(model);
        model.complete = (request: InferenceRequest, signal?: AbortSignal): Promise<InferenceResult> => clock.time('model.complete', 'model', () => complete(request, signal));
        node = new RunnerNode({
            chain: timedChain,
            wallet: hot,
            dataDir,
            sealingKey: labelKey('bench-e2e:sealing').seed,
            platform: net.vendor.platform,
            models: new ModelSet([model]),
            prices: PRICES,
            logger,
            wrapStore: (store) => timedStore(store, clock),
        });
        const tee = node.tee;
        const sign = tee.sign.bind(tee);
        const sharedSecret = tee.sharedSecret.bind(tee);
        tee.sign = (hash: Buffer) => clock.timeSync('tee.sign', 'enclave crypto', () => sign(hash));
        tee.sharedSecret = (peer: Buffer) => clock.timeSync('tee.sharedSecret', 'enclave crypto', () => sharedSecret(peer));

        await allowlistRunner(net, BigInt('0x' + node.measurement.toString('hex')), [model.modelHash]);
        const verifier = new VerifierService(chain, net.registry, net.verifier.key, net.vendor.quoteVerifier, ATTESTATION_VALID_FOR);
        const { statement } = await verifier.attest(node.tee, owner.address, [model.modelHash]);
        const { provider } = await registerProvider(net, owner, statement, STAKE);
        const runner = await node.attach(provider);
        const serve = runner.serve.bind(runner);
        runner.serve = (submission) => clock.span('runner.serve', () => serve(submission));

        const client = await chain.wallet('bench-e2e:client', toNano('100000'));
        // The POST is the serve phase: from the request leaving the client to the whole answer having arrived.
        const timedFetch: typeof fetch = async (input, init) => {
            if (clock.phase === 'open') clock.enter('serve');
            const res = await clock.span('client fetch', async () => {
                const answer = await fetch(input, init);
                const body = await answer.arrayBuffer();
                return new Response(body, { status: answer.status, statusText: answer.statusText, headers: answer.headers });
            });
            if (clock.phase === 'serve') clock.enter('verify');
            return res;
        };
        const sdk = new ChrysalisClient({ chain: timedChain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier, fetch: timedFetch });
        const handle: ProviderHandle = await sdk.discover(owner.address, node.url);
        const live = node;
        let asked = 0;
        let released = live.store.counts().released;

        /** `count` requests, a tick every tickEvery, then the dispute window and release ticks until all are released. */
        const cycle = async (count: number): Promise<{ perRequestNs: bigint[]; submitTickNs: bigint[]; releaseTicks: number }> => {
            const perRequestNs: bigint[] = [];
            const submitTickNs: bigint[] = [];
            const submitTick = async () => {
                const t0 = process.hrtime.bigint();
                clock.enter('submit');
                const report = checkTick(await live.tick(), 'submit');
                clock.enter('bench');
                submitTickNs.push(process.hrtime.bigint() - t0);
                return report;
            };
            let pending = 0;
            for (let i = 0; i < count; i++) {
                const t0 = process.hrtime.bigint();
                clock.enter('open');
                const result = await sdk.request(handle, question(asked++), { maxAmount: MAX_AMOUNT });
                clock.enter('bench');
                perRequestNs.push(process.hrtime.bigint() - t0);
                if (result.fields.outputUnits <= 0n) throw new Error('the runner answered nothing');
                if (++pending === tickEvery || i === count - 1) {
                    const report = await submitTick();
                    if (report.submitted !== pending) throw new Error(`a tick submitted ${report.submitted} receipts, not ${pending}`);
                    pending = 0;
                }
            }
            clock.enter('release');
            chain.blockchain.now = (await chain.now()) + Number(net.params.disputeWindow) + 1;
            let releaseTicks = 0;
            const target = released + count;
            while (live.store.counts().released < target) {
                if (++releaseTicks > 10) throw new Error(`only ${live.store.counts().released - released} of ${count} escrows released after 10 ticks`);
                checkTick(await live.tick(), 'release');
            }
            released = target;
            clock.enter(null);
            return { perRequestNs, submitTickNs, releaseTicks };
        };

        // ---- warm-up: one whole cycle (JIT, the sandbox's executor, SQLite's pages) ----
        const w0 = process.hrtime.bigint();
        await cycle(warmup);
        const warmupPerRequestMs = ms(process.hrtime.bigint() - w0) / Math.max(warmup, 1);
        const fits = Math.floor(budgetMs / Math.max(warmupPerRequestMs, 0.001) / tickEvery) * tickEvery;
        const requests = Math.max(Math.min(maxRequests, fits), Math.min(maxRequests, 4 * tickEvery));
        clock.reset();

        // ---- the measured run ----
        const cpu0 = process.cpuUsage();
        const t0 = process.hrtime.bigint();
        const run = await cycle(requests);
        const wallNs = process.hrtime.bigint() - t0;
        const cpu = process.cpuUsage(cpu0);
        if (live.store.counts().signed !== 0 || live.store.counts().submitted !== 0) throw new Error('jobs left unsettled after the run');

        const perRequest = (ns: bigint) => Number((ms(ns) / requests).toFixed(4));
        const phases = Object.fromEntries(PHASES.map((p) => [p, perRequest(clock.phaseNs.get(p) ?? 0n)])) as Record<Phase, number>;
        const groups = Object.fromEntries(
            PHASES.map((p) => {
                const g = clock.groups(p);
                return [p, Object.fromEntries(GROUPS.map((name) => [name, perRequest(g.get(name)!)])) as Record<Group, number>];
            }),
        ) as Record<Phase, Record<Group, number>>;
        const totals = new Map<string, Stat>();
        for (const byName of clock.ops.values()) {
            for (const [name, stat] of byName) {
                const t = totals.get(name) ?? { ns: 0n, count: 0 };
                totals.set(name, { ns: t.ns + stat.ns, count: t.count + stat.count });
            }
        }
        const operations = [...totals]
            .sort((a, b) => (a[1].ns > b[1].ns ? -1 : a[1].ns < b[1].ns ? 1 : 0))
            .map(([name, stat]) => ({ name, group: clock.groupOf.get(name) ?? 'other', ms: ms(stat.ns), calls: stat.count }));
        const quarter = Math.max(1, Math.floor(requests / 4));
        const meanMs = (xs: bigint[]) => ms(xs.reduce((a, b) => a + b, 0n)) / xs.length;
        return {
            requests,
            tickEvery,
            warmup,
            wallMs: ms(wallNs),
            cpuMs: (cpu.user + cpu.system) / 1000,
            requestsPerSecond: requests / (Number(wallNs) / 1e9),
            phases,
            groups,
            operations,
            firstQuarterMs: meanMs(run.perRequestNs.slice(0, quarter)),
            lastQuarterMs: meanMs(run.perRequestNs.slice(-quarter)),
            firstSubmitTickMs: ms(run.submitTickNs[0]),
            lastSubmitTickMs: ms(run.submitTickNs[run.submitTickNs.length - 1]),
            releaseTicks: run.releaseTicks,
        };
    } finally {
        await node?.close().catch(() => undefined);
        rmSync(dataDir, { recursive: true, force: true });
    }
}

/** The readable table bench/run.ts prints. */
export function formatE2eReport(r: E2eReport): string[] {
    const total = PHASES.reduce((sum, p) => sum + r.phases[p], 0);
    const row = (label: string, perRequest: number, indent = '') =>
        `  ${(indent + label).padEnd(66)} ${(perRequest * r.requests).toFixed(1).padStart(9)} ${perRequest.toFixed(3).padStart(9)} ${((100 * perRequest) / total).toFixed(1).padStart(6)}`;
    const lines = [
        `Runner end to end (sandbox, one runner, reference model, ${r.requests} requests one after another after ${r.warmup} warm-up, tick every ${r.tickEvery}, ` +
            `release after the dispute window; wall time)`,
        `  ${'phase'.padEnd(66)} ${'total ms'.padStart(9)} ${'ms/req'.padStart(9)} ${'share %'.padStart(6)}`,
    ];
    for (const p of PHASES) {
        if (p === 'bench' && r.phases[p] * r.requests < 0.05) continue;
        lines.push(row(PHASE_LABELS[p], r.phases[p]));
        if (p === 'bench') continue;
        for (const g of GROUPS) if (r.groups[p][g] * r.requests >= 0.05) lines.push(row(GROUP_LABELS[g], r.groups[p][g], '    '));
    }
    lines.push(row('total', total));
    lines.push(`  => ${r.requestsPerSecond.toFixed(1)} requests/s (${r.wallMs.toFixed(0)} ms wall for ${r.requests}; this process used ${r.cpuMs.toFixed(0)} ms CPU meanwhile)`);
    lines.push(
        `  open + serve + verify per request: ${r.firstQuarterMs.toFixed(2)} ms over the first quarter, ${r.lastQuarterMs.toFixed(2)} ms over the last; ` +
            `submit tick ${r.firstSubmitTickMs.toFixed(1)} ms first, ${r.lastSubmitTickMs.toFixed(1)} ms last; ${r.releaseTicks} release ticks`,
    );
    lines.push('  heaviest timed operations (total ms, calls, ms per call):');
    for (const op of r.operations.slice(0, 12)) {
        lines.push(`    ${op.name.padEnd(30)} ${op.group.padEnd(15)} ${op.ms.toFixed(1).padStart(9)} ${String(op.calls).padStart(6)} ${(op.ms / op.calls).toFixed(3).padStart(8)}`);
    }
    return lines;
}
