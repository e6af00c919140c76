// The runner's configuration file (JSON), checked field by field so a typo is
// a clear error at start rather than a surprise at the first job. Secrets
// (wallet mnemonic, sealing key, model API key) come from the environment,
// never from the file. See runner/runner.example.json.
import { readFileSync } from 'fs';
import path from 'path';
import { Address } from '@ton/core';
import { ChainConfig } from './chain';
import { ModelConfig } from './models';
import { Prices } from './protocol';

export interface RunnerConfig {
    chain: ChainConfig;
    /** The Registry (required on a real chain; the sandbox deploys its own). */
    registry?: Address;
    /** The provider owner's address (required on a real chain): the Provider is derived from it and the Registry. */
    owner?: Address;
    /** The runner's hot wallet: pays SubmitReceipt and Release. */
    wallet: { mnemonicEnv: string; version: 'v4' | 'v5r1' };
    /** Holds enclave.sealed and jobs.sqlite; relative to the config file. */
    dataDir: string;
    /** Environment variable with the 32-byte sealing key, hex. */
    sealingKeyEnv: string;
    /** The simulated TEE vendor's label (its root key is derived from it). */
    platform: { kind: 'simulated'; vendor: string };
    models: ModelConfig[];
    prices: Prices;
    http: { host: string; port: number };
    /** Seconds between passes of the job loop. */
    pollSeconds: number;
    /** Nanoton unclaimed in a payment channel at which the loop claims its latest receipt (undefined: the runner's default, 1 TON). */
    channelClaimThreshold?: bigint;
}

export class ConfigError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ConfigError';
    }
}

const KNOWN = new Set(['chain', 'registry', 'owner', 'wallet', 'dataDir', 'sealingKeyEnv', 'platform', 'models', 'prices', 'http', 'pollSeconds', 'channelClaimThreshold']);

/** Reads and checks a config file. */
export function loadRunnerConfig(file: string): RunnerConfig {
    let raw: unknown;
    try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
        throw new ConfigError(`cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`);
    }
    return parseRunnerConfig(raw, path.dirname(path.resolve(file)));
}

/** Checks a parsed config; relative paths resolve against `baseDir`. */
export function parseRunnerConfig(raw: unknown, baseDir: string): RunnerConfig {
    const o = obj(raw, 'config');
    for (const k of Object.keys(o)) if (!KNOWN.has(k)) throw new ConfigError(`unknown field "${k}"`);
    const chainRaw = obj(o.chain, 'chain');
    onlyKeys(chainRaw, 'chain', ['kind', 'network', 'endpoint', 'apiKey']);
    let chain: ChainConfig;
    if (chainRaw.kind === 'sandbox') chain = { kind: 'sandbox' };
    else if (chainRaw.kind === 'ton') {
        if (chainRaw.network !== 'testnet' && chainRaw.network !== 'mainnet') throw new ConfigError('chain.network must be "testnet" or "mainnet"');
        chain = { kind: 'ton', network: chainRaw.network, endpoint: optString(chainRaw.endpoint, 'chain.endpoint'), apiKey: optString(chainRaw.apiKey, 'chain.apiKey') };
    } else throw new ConfigError('chain.kind must be "sandbox" or "ton"');
    const registry = o.registry === undefined ? undefined : addr(o.registry, 'registry');
    const owner = o.owner === undefined ? undefined : addr(o.owner, 'owner');
    if (chain.kind === 'ton' && (!registry || !owner)) throw new ConfigError('on a real chain, "registry" and "owner" are required');
    const wallet = obj(o.wallet ?? { mnemonicEnv: 'CHRYSALIS_RUNNER_MNEMONIC', version: 'v4' }, 'wallet');
    onlyKeys(wallet, 'wallet', ['mnemonicEnv', 'version']);
    const version = wallet.version ?? 'v4';
    if (version !== 'v4' && version !== 'v5r1') throw new ConfigError('wallet.version must be "v4" or "v5r1"');
    const prices = obj(o.prices, 'prices');
    onlyKeys(prices, 'prices', ['perInputUnit', 'perOutputUnit']);
    const http = obj(o.http ?? {}, 'http');
    onlyKeys(http, 'http', ['host', 'port']);
    const port = http.port ?? 8787;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError('http.port must be 0..65535');
    const pollSeconds = o.pollSeconds ?? 5;
    // Above an hour a job could miss its deadline between passes (and setTimeout overflows past 24.8 days).
    if (typeof pollSeconds !== 'number' || !(pollSeconds > 0) || pollSeconds > 3600) throw new ConfigError('pollSeconds must be a number of seconds in (0, 3600]');
    if (!Array.isArray(o.models) || o.models.length === 0) throw new ConfigError('models must be a non-empty array');
    const platform = obj(o.platform ?? { kind: 'simulated', vendor: 'vendor' }, 'platform');
    onlyKeys(platform, 'platform', ['kind', 'vendor']);
    if (platform.kind !== 'simulated') throw new ConfigError('platform.kind must be "simulated" (the only backend so far)');
    return {
        chain,
        registry,
        owner,
        wallet: { mnemonicEnv: str(wallet.mnemonicEnv ?? 'CHRYSALIS_RUNNER_MNEMONIC', 'wallet.mnemonicEnv'), version },
        dataDir: path.resolve(baseDir, str(o.dataDir ?? './runner-data', 'dataDir')),
        sealingKeyEnv: str(o.sealingKeyEnv ?? 'CHRYSALIS_SEALING_KEY', 'sealingKeyEnv'),
        platform: { kind: 'simulated', vendor: str(platform.vendor ?? 'vendor', 'platform.vendor') },
        models: o.models as ModelConfig[],
        prices: { perInputUnit: nano(prices.perInputUnit, 'prices.perInputUnit'), perOutputUnit: nano(prices.perOutputUnit, 'prices.perOutputUnit') },
        http: { host: str(http.host ?? '127.0.0.1', 'http.host'), port },
        pollSeconds,
        channelClaimThreshold: o.channelClaimThreshold === undefined ? undefined : nano(o.channelClaimThreshold, 'channelClaimThreshold'),
    };
}

/** The sealing key from the environment: 64 hex characters. */
export function sealingKeyFrom(env: NodeJS.ProcessEnv, name: string): Buffer {
    const value = env[name];
    if (!value || !/^[0-9a-fA-F]{64}$/.test(value)) throw new ConfigError(`set ${name} to the 32-byte sealing key in hex (64 characters)`);
    return Buffer.from(value, 'hex');
}

/** A typo in a nested object is an error too, not a silently ignored key. */
function onlyKeys(o: Record<string, unknown>, what: string, known: string[]): void {
    for (const k of Object.keys(o)) if (!known.includes(k)) throw new ConfigError(`unknown field "${what}.${k}"`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`${what} must be an object`);
    return v as Record<string, unknown>;
}

function str(v: unknown, what: string): string {
    if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${what} must be a non-empty string`);
    return v;
}

function optString(v: unknown, what: string): string | undefined {
    return v === undefined ? undefined : str(v, what);
}

function addr(v: unknown, what: string): Address {
    try {
        return Address.parse(str(v, what));
    } catch (e) {
        if (e instanceof ConfigError) throw e;
        throw new ConfigError(`${what} is not a TON address`);
    }
}

function nano(v: unknown, what: string): bigint {
    if (typeof v !== 'string' || !/^[0-9]{1,30}$/.test(v)) throw new ConfigError(`${what} must be nanoton as a decimal string`);
    return BigInt(v);
}
