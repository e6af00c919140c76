// chrysalis-runner, the provider's CLI: `start` as a real process on a sandbox
// chain (JSON logs on stdout, progress on stderr, the HTTP API, SIGTERM), and
// `attest` / `status` in-process through program(). Every sandbox run deploys
// its own local chain.
import { ChildProcessWithoutNullStreams, spawn } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { createInterface } from 'readline';
import { Address } from '@ton/core';
import { program } from '../runner/cli';
import { ConfigError } from '../runner/config';
import { AttestationEvidence, EvidenceError, parseQuote, verifyEvidence } from '../runner/evidence';
import { simulatedVendor } from '../runner/localnet';
import { AttestationAnswerJson, evidenceFromJson } from '../runner/protocol';
import { defaultParams } from '../wrappers/params';

jest.setTimeout(60_000);

const BIN = path.join(__dirname, '..', 'bin', 'chrysalis-runner');
const SEAL_ENV = 'CHRYSALIS_CLI_SPEC_SEALING_KEY';
const SEAL = '5e'.repeat(32);
const PRICES = { perInputUnit: '100000', perOutputUnit: '400000' };

let root: string;
beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'chrysalis-cli-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A sandbox config with its own data directory (relative to the file) and a free port. */
function sandboxConfig(name: string, extra: Record<string, unknown> = {}): string {
    const file = path.join(root, `${name}.json`);
    const config = { chain: { kind: 'sandbox' }, dataDir: `./${name}-data`, sealingKeyEnv: SEAL_ENV, models: [{ kind: 'reference' }], prices: PRICES, http: { port: 0 }, pollSeconds: 1, ...extra };
    writeFileSync(file, JSON.stringify(config));
    return file;
}

/** Checks evidence against the configured vendor's root, the nonce and the measurement; returns what it says. */
function verify(evidence: AttestationEvidence, nonce: Buffer, measurementHex: string, vendor = 'vendor') {
    const issuedAt = parseQuote(evidence.quote).issuedAt;
    return verifyEvidence(evidence, { verifier: simulatedVendor(vendor).quoteVerifier, allowedMeasurements: (m) => m === BigInt('0x' + measurementHex), maxAgeSeconds: 60, now: issuedAt, expectedNonce: nonce });
}

interface LogLine {
    level: number;
    msg: string;
    name?: string;
    [key: string]: unknown;
}

/** The JSON log lines of a child's stdout, and a wait for the first with a given message. */
class Logs {
    readonly lines: LogLine[] = [];
    readonly other: string[] = [];
    private waiters: { msg: string; resolve: (l: LogLine) => void }[] = [];

    constructor(child: ChildProcessWithoutNullStreams) {
        createInterface({ input: child.stdout }).on('line', (text) => {
            let line: LogLine;
            try {
                line = JSON.parse(text) as LogLine;
            } catch {
                this.other.push(text);
                return;
            }
            this.lines.push(line);
            for (const w of this.waiters.filter((w) => w.msg === line.msg)) w.resolve(line);
            this.waiters = this.waiters.filter((w) => w.msg !== line.msg);
        });
    }

    find(msg: string): LogLine | undefined {
        return this.lines.find((l) => l.msg === msg);
    }

    wait(msg: string, ms: number, exited: Promise<unknown>): Promise<LogLine> {
        const seen = this.find(msg);
        if (seen) return Promise.resolve(seen);
        return new Promise<LogLine>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no "${msg}" log line within ${ms} ms; got ${JSON.stringify(this.lines.map((l) => l.msg))}`)), ms);
            void exited.then(() => reject(new Error(`the runner exited before logging "${msg}"`)));
            this.waiters.push({ msg, resolve: (l) => (clearTimeout(timer), resolve(l)) });
        });
    }
}

function exitOf(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    // 'close', not 'exit': the child's stdout is drained by then, so its last log lines are read.
    return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

describe('chrysalis-runner start (a process on a sandbox chain)', () => {
    let child: ChildProcessWithoutNullStreams | undefined;
    afterEach(() => {
        if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('deploys, logs JSON, serves health and attestation, and stops cleanly on SIGTERM', async () => {
        const file = sandboxConfig('start');
        const proc = spawn(BIN, ['start', '--config', file], { env: { ...process.env, [SEAL_ENV]: SEAL }, cwd: tmpdir() });
        child = proc;
        let stderr = '';
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const exited = exitOf(proc);
        const logs = new Logs(proc);

        const listening = await logs.wait('runner API listening', 45_000, exited);
        const url = listening.url as string;
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(url).not.toMatch(/:0$/);
        const started = await logs.wait('runner started', 5_000, exited);
        const ready = logs.find('local deployment ready')!;
        expect(ready).toBeDefined();
        expect(started.url).toBe(url);
        expect(started.signingKey).toMatch(/^[0-9a-f]{64}$/);
        expect(started.measurement).toMatch(/^[0-9a-f]{64}$/);
        for (const l of [listening, started, ready]) {
            expect(l.level).toBe(30);
            expect(l.name).toBe('chrysalis-runner');
            expect(typeof l.time).toBe('number');
        }
        // The data directory is relative to the config file, not the working directory.
        expect(existsSync(path.join(root, 'start-data', 'enclave.sealed'))).toBe(true);
        expect(existsSync(path.join(root, 'start-data', 'jobs.sqlite'))).toBe(true);
        // Progress of the deployment went to stderr, a line per step (not a terminal), in order; nothing on stdout but JSON.
        const steps = stderr.split('\n').filter((l) => l.startsWith('local chain ['));
        expect(steps.map((l) => l.slice(0, 'local chain [1/5]'.length))).toEqual([1, 2, 3, 4, 5].map((i) => `local chain [${i}/5]`));
        expect(steps[4]).toBe('local chain [5/5] ready');
        expect(stderr).not.toContain('\r');
        expect(logs.other).toEqual([]);

        const health = (await (await fetch(`${url}/v1/health`)).json()) as { provider: string; signingKey: string; jobs: Record<string, number> };
        expect(Address.parse(health.provider).equals(Address.parse(ready.provider as string))).toBe(true);
        expect(health.signingKey).toBe(started.signingKey);
        expect(health.jobs).toEqual({ signed: 0, submitted: 0, released: 0, closed: 0 });

        const nonce = Buffer.from('c0ffee'.repeat(10) + 'abcd', 'hex');
        const res = await fetch(`${url}/v1/attestation?nonce=${nonce.toString('hex')}`);
        expect(res.status).toBe(200);
        const answer = (await res.json()) as AttestationAnswerJson;
        expect(answer.provider).toBe(health.provider);
        expect(answer.prices).toEqual(PRICES);
        const evidence = evidenceFromJson(answer.evidence);
        expect(evidence.nonce).toEqual(nonce);
        const verified = verify(evidence, nonce, started.measurement as string);
        expect(verified.signingKey).toBe(BigInt('0x' + (started.signingKey as string)));
        expect(verified.measurement).toBe(BigInt('0x' + (started.measurement as string)));
        expect(parseQuote(evidence.quote).issuedAt).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) - 60);
        // The sandbox chain's clock is the wall clock once serving starts, so outside clients can check freshness.
        expect(parseQuote(evidence.quote).issuedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 60);
        // The same evidence fails for another challenge, another vendor root, another image.
        expect(() => verify(evidence, Buffer.alloc(32, 1), started.measurement as string)).toThrow(EvidenceError);
        expect(() => verify(evidence, nonce, started.measurement as string, 'localnet:vendor')).toThrow(/not signed by/);
        expect(() => verify(evidence, nonce, '00'.repeat(32))).toThrow(/not allowlisted/);
        // A bad nonce is refused with the protocol's JSON error.
        const bad = await fetch(`${url}/v1/attestation?nonce=1234`);
        expect(bad.status).toBe(400);
        expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('malformed');

        proc.kill('SIGTERM');
        const exit = await within(exited, 5_000, 'exit after SIGTERM');
        expect(exit).toEqual({ code: 0, signal: null });
        expect(logs.find('stopping')).toMatchObject({ signal: 'SIGTERM' });
        await expect(fetch(`${url}/v1/health`)).rejects.toThrow();
    });

    it('exits 1 with the ConfigError on stderr for a bad config, before touching any chain', async () => {
        const file = sandboxConfig('typo', { colour: 'blue' });
        const proc = spawn(BIN, ['status', '--config', file], { env: { ...process.env, [SEAL_ENV]: SEAL } });
        child = proc;
        let stderr = '';
        let stdout = '';
        proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        const exit = await within(exitOf(proc), 30_000, 'exit on a bad config');
        expect(exit.code).toBe(1);
        expect(stderr).toBe('chrysalis-runner: ConfigError: unknown field "colour"\n');
        expect(stdout).toBe('');
        expect(existsSync(path.join(root, 'typo-data'))).toBe(false);
    });
});

describe('chrysalis-runner attest and status (in-process)', () => {
    let stderr: string[];
    let stderrSpy: jest.SpyInstance;
    beforeAll(() => {
        process.env[SEAL_ENV] = SEAL;
    });
    afterAll(() => {
        delete process.env[SEAL_ENV];
    });
    beforeEach(() => {
        stderr = [];
        stderrSpy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));
    });
    afterEach(() => stderrSpy.mockRestore());

    const run = (...args: string[]) => program().parseAsync(['node', 'chrysalis-runner', ...args]);

    /** Runs with process.stdout.write captured; returns what was written. */
    async function captured(...args: string[]): Promise<string> {
        const out: string[] = [];
        const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
        try {
            await run(...args);
        } finally {
            spy.mockRestore();
        }
        return out.join('');
    }

    it('attest writes evidence for the nonce; status then shows the same enclave, no jobs and an Active provider', async () => {
        const file = sandboxConfig('inproc');
        const out = path.join(root, 'evidence.json');
        const nonce = Buffer.from('ab'.repeat(16) + '01'.repeat(16), 'hex');
        await run('attest', '--config', file, '--nonce', nonce.toString('hex').toUpperCase(), '--out', out);
        expect(stderr.join('')).toContain('local chain [5/5] ready');

        const written = JSON.parse(readFileSync(out, 'utf8')) as { measurement: string; evidence: unknown };
        expect(written.measurement).toMatch(/^[0-9a-f]{64}$/);
        const evidence = evidenceFromJson(written.evidence);
        expect(evidence.nonce).toEqual(nonce);
        const verified = verify(evidence, nonce, written.measurement);
        expect(() => verify(evidence, Buffer.alloc(32), written.measurement)).toThrow(/another challenge/);

        const text = await captured('status', '--config', file);
        const lines = text.trimEnd().split('\n');
        expect(lines).toHaveLength(4);
        expect(lines[0]).toMatch(/^provider (EQ|UQ|kQ|0Q)[A-Za-z0-9_-]{46}$/);
        // The sealed identity survived between the two runs (same data directory, same sealing key).
        expect(lines[1]).toBe(`enclave key ${evidence.signingKey.toString('hex')}`);
        expect(BigInt('0x' + evidence.signingKey.toString('hex'))).toBe(verified.signingKey);
        expect(lines[2]).toBe('jobs {"signed":0,"submitted":0,"released":0,"closed":0}');
        const minStake = defaultParams(Address.parse('0:' + '00'.repeat(32))).minProviderStake;
        expect(lines[3]).toMatch(new RegExp(`^on-chain: Active, stake ${minStake} nanoton, open jobs 0, completed 0, attestation valid until \\d+$`));
    });

    it('attest prints to stdout without --out', async () => {
        const file = sandboxConfig('stdout');
        const nonce = Buffer.alloc(32, 0x42);
        const text = await captured('attest', '--config', file, '--nonce', nonce.toString('hex'));
        const printed = JSON.parse(text) as { measurement: string; evidence: unknown };
        expect(evidenceFromJson(printed.evidence).nonce).toEqual(nonce);
        verify(evidenceFromJson(printed.evidence), nonce, printed.measurement);
    });

    it('refuses a bad --nonce with a ConfigError before deploying anything', async () => {
        const file = sandboxConfig('badnonce');
        const out = path.join(root, 'never.json');
        for (const nonce of ['1234', 'zz'.repeat(32), '00'.repeat(33), '0x' + '00'.repeat(31)]) {
            await expect(run('attest', '--config', file, '--nonce', nonce, '--out', out)).rejects.toThrow(new ConfigError('--nonce must be 32 bytes of hex'));
        }
        expect(existsSync(out)).toBe(false);
        expect(existsSync(path.join(root, 'badnonce-data'))).toBe(false);
        expect(stderr.join('')).not.toContain('local chain');
    });

    it('refuses a missing config file, a bad config and a missing sealing key with ConfigErrors naming them', async () => {
        const missing = path.join(root, 'missing.json');
        await expect(run('status', '--config', missing)).rejects.toThrow(ConfigError);
        await expect(run('status', '--config', missing)).rejects.toThrow(`cannot read ${missing}`);
        await expect(run('status', '--config', sandboxConfig('badport', { http: { port: 70000 } }))).rejects.toThrow(new ConfigError('http.port must be 0..65535'));
        await expect(run('attest', '--config', sandboxConfig('nokey', { sealingKeyEnv: 'CHRYSALIS_CLI_SPEC_UNSET' }), '--nonce', '00'.repeat(32))).rejects.toThrow(
            new ConfigError('set CHRYSALIS_CLI_SPEC_UNSET to the 32-byte sealing key in hex (64 characters)'),
        );
        expect(stderr.join('')).not.toContain('local chain');
    });
});
