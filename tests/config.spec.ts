// The runner's config file: defaults, every refusal (each naming its field),
// reading from disk and the sealing key from the environment.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { Address } from '@ton/core';
import { ConfigError, loadRunnerConfig, parseRunnerConfig, RunnerConfig, sealingKeyFrom } from '../runner/config';

const REGISTRY = 'EQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG';
const OWNER = Address.parse('0:' + '12'.repeat(32)).toString();

/** The smallest valid sandbox config: only what has no default. */
function minimal(): Record<string, unknown> {
    return { chain: { kind: 'sandbox' }, models: [{ kind: 'reference' }], prices: { perInputUnit: '100000', perOutputUnit: '400000' } };
}

function parse(raw: unknown, baseDir = '/srv/runner'): RunnerConfig {
    return parseRunnerConfig(raw, baseDir);
}

/** parseRunnerConfig throws a ConfigError whose message contains `message`. */
function refuses(raw: unknown, message: string | RegExp): void {
    let thrown: unknown;
    try {
        parse(raw);
    } catch (e) {
        thrown = e;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).name).toBe('ConfigError');
    if (typeof message === 'string') expect((thrown as ConfigError).message).toContain(message);
    else expect((thrown as ConfigError).message).toMatch(message);
}

describe('parseRunnerConfig: defaults', () => {
    it('fills every optional field, resolving dataDir against the base directory', () => {
        const config = parse(minimal());
        expect(config).toEqual({
            chain: { kind: 'sandbox' },
            registry: undefined,
            owner: undefined,
            wallet: { mnemonicEnv: 'CHRYSALIS_RUNNER_MNEMONIC', version: 'v4' },
            dataDir: path.resolve('/srv/runner', 'runner-data'),
            sealingKeyEnv: 'CHRYSALIS_SEALING_KEY',
            platform: { kind: 'simulated', vendor: 'vendor' },
            models: [{ kind: 'reference' }],
            prices: { perInputUnit: 100000n, perOutputUnit: 400000n },
            http: { host: '127.0.0.1', port: 8787 },
            pollSeconds: 5,
        });
    });

    it('keeps what is given: relative and absolute dataDir, http, pollSeconds, wallet, platform vendor', () => {
        const config = parse({
            ...minimal(),
            dataDir: '../state/r1',
            http: { host: '0.0.0.0', port: 0 },
            pollSeconds: 0.5,
            wallet: { mnemonicEnv: 'MY_WORDS', version: 'v5r1' },
            sealingKeyEnv: 'MY_SEAL',
            platform: { kind: 'simulated', vendor: 'acme' },
        });
        expect(config.dataDir).toBe(path.resolve('/srv/state/r1'));
        expect(config.http).toEqual({ host: '0.0.0.0', port: 0 });
        expect(config.pollSeconds).toBe(0.5);
        expect(config.wallet).toEqual({ mnemonicEnv: 'MY_WORDS', version: 'v5r1' });
        expect(config.sealingKeyEnv).toBe('MY_SEAL');
        expect(config.platform).toEqual({ kind: 'simulated', vendor: 'acme' });
        expect(parse({ ...minimal(), dataDir: '/var/lib/chrysalis' }).dataDir).toBe('/var/lib/chrysalis');
    });

    it('fills the parts of partly given objects', () => {
        const config = parse({ ...minimal(), wallet: { version: 'v5r1' }, http: { port: 9000 }, platform: { kind: 'simulated' } });
        expect(config.wallet).toEqual({ mnemonicEnv: 'CHRYSALIS_RUNNER_MNEMONIC', version: 'v5r1' });
        expect(config.http).toEqual({ host: '127.0.0.1', port: 9000 });
        expect(config.platform.vendor).toBe('vendor');
        expect(parse({ ...minimal(), wallet: { mnemonicEnv: 'W' } }).wallet).toEqual({ mnemonicEnv: 'W', version: 'v4' });
    });

    it('accepts a real chain with registry and owner, parsed as addresses', () => {
        const config = parse({ ...minimal(), chain: { kind: 'ton', network: 'testnet', endpoint: 'https://example.org/jsonRPC', apiKey: 'k' }, registry: REGISTRY, owner: OWNER });
        expect(config.chain).toEqual({ kind: 'ton', network: 'testnet', endpoint: 'https://example.org/jsonRPC', apiKey: 'k' });
        expect(config.registry!.equals(Address.parse(REGISTRY))).toBe(true);
        expect(config.owner!.equals(Address.parse(OWNER))).toBe(true);
        const mainnet = parse({ ...minimal(), chain: { kind: 'ton', network: 'mainnet' }, registry: REGISTRY, owner: '0:' + '12'.repeat(32) });
        expect(mainnet.chain).toEqual({ kind: 'ton', network: 'mainnet', endpoint: undefined, apiKey: undefined });
        expect(mainnet.owner!.equals(Address.parse(OWNER))).toBe(true);
    });

    it('takes large prices exactly (no float rounding)', () => {
        const config = parse({ ...minimal(), prices: { perInputUnit: '0', perOutputUnit: '123456789012345678901234567890' } });
        expect(config.prices).toEqual({ perInputUnit: 0n, perOutputUnit: 123456789012345678901234567890n });
    });

    it('parses the shipped example config', () => {
        const file = path.join(__dirname, '..', 'runner', 'runner.example.json');
        const config = loadRunnerConfig(file);
        expect(config.chain).toEqual({ kind: 'sandbox' });
        expect(config.dataDir).toBe(path.join(__dirname, '..', 'runner', 'runner-data'));
        expect(config.http.port).toBe(8787);
    });
});

describe('parseRunnerConfig: refusals name the field', () => {
    it('is not an object', () => {
        for (const raw of [null, [], 'sandbox', 42]) refuses(raw, 'config must be an object');
    });

    it('unknown fields inside nested objects too', () => {
        refuses({ ...minimal(), http: { prot: 9000 } }, 'unknown field "http.prot"');
        refuses({ ...minimal(), chain: { kind: 'sandbox', netwrok: 'testnet' } }, 'unknown field "chain.netwrok"');
        refuses({ ...minimal(), wallet: { mnemonicEnv: 'X', versoin: 'v4' } }, 'unknown field "wallet.versoin"');
        refuses({ ...minimal(), prices: { perInputUnit: '1', perOutputUnit: '1', perRequest: '5' } }, 'unknown field "prices.perRequest"');
        refuses({ ...minimal(), platform: { kind: 'simulated', vendr: 'x' } }, 'unknown field "platform.vendr"');
    });

    it('unknown fields, so a typo is not silently ignored', () => {
        refuses({ ...minimal(), pollSecond: 5 }, 'unknown field "pollSecond"');
        refuses({ ...minimal(), mnemonic: 'abandon abandon' }, 'unknown field "mnemonic"');
    });

    it('chain: missing, wrong kind, wrong network', () => {
        refuses({ ...minimal(), chain: undefined }, 'chain must be an object');
        refuses({ ...minimal(), chain: 'sandbox' }, 'chain must be an object');
        refuses({ ...minimal(), chain: { kind: 'localnet' } }, 'chain.kind must be "sandbox" or "ton"');
        refuses({ ...minimal(), chain: {} }, 'chain.kind');
        refuses({ ...minimal(), chain: { kind: 'ton', network: 'devnet' }, registry: REGISTRY, owner: OWNER }, 'chain.network must be "testnet" or "mainnet"');
        refuses({ ...minimal(), chain: { kind: 'ton' }, registry: REGISTRY, owner: OWNER }, 'chain.network');
        refuses({ ...minimal(), chain: { kind: 'ton', network: 'testnet', endpoint: '' }, registry: REGISTRY, owner: OWNER }, 'chain.endpoint must be a non-empty string');
        refuses({ ...minimal(), chain: { kind: 'ton', network: 'testnet', apiKey: 7 }, registry: REGISTRY, owner: OWNER }, 'chain.apiKey must be a non-empty string');
    });

    it('a real chain without registry or owner', () => {
        const ton = { kind: 'ton', network: 'testnet' };
        refuses({ ...minimal(), chain: ton }, /"registry" and "owner" are required/);
        refuses({ ...minimal(), chain: ton, registry: REGISTRY }, /"owner" are required/);
        refuses({ ...minimal(), chain: ton, owner: OWNER }, /"registry" and/);
    });

    it('addresses that are not TON addresses', () => {
        refuses({ ...minimal(), registry: 'EQnot-an-address' }, 'registry is not a TON address');
        refuses({ ...minimal(), owner: '0:1234' }, 'owner is not a TON address');
        refuses({ ...minimal(), registry: 12 }, 'registry must be a non-empty string');
        refuses({ ...minimal(), owner: '' }, 'owner must be a non-empty string');
    });

    it('wallet: not an object, unknown version, empty mnemonicEnv', () => {
        refuses({ ...minimal(), wallet: 'v4' }, 'wallet must be an object');
        refuses({ ...minimal(), wallet: { version: 'v3r2' } }, 'wallet.version must be "v4" or "v5r1"');
        refuses({ ...minimal(), wallet: { mnemonicEnv: '' } }, 'wallet.mnemonicEnv must be a non-empty string');
    });

    it('prices that are not nanoton as decimal strings', () => {
        refuses({ ...minimal(), prices: undefined }, 'prices must be an object');
        const bad: unknown[] = [100000, '1e5', '-1', '0x10', '1.5', ' 1', '', '1'.repeat(31), undefined];
        for (const v of bad) {
            refuses({ ...minimal(), prices: { perInputUnit: v, perOutputUnit: '1' } }, 'prices.perInputUnit must be nanoton as a decimal string');
            refuses({ ...minimal(), prices: { perInputUnit: '1', perOutputUnit: v } }, 'prices.perOutputUnit must be nanoton as a decimal string');
        }
    });

    it('http: not an object, port out of range or not an integer, empty host', () => {
        refuses({ ...minimal(), http: 8787 }, 'http must be an object');
        for (const port of [-1, 65536, 80.5, '8787', true]) refuses({ ...minimal(), http: { port } }, 'http.port must be 0..65535');
        refuses({ ...minimal(), http: { host: '' } }, 'http.host must be a non-empty string');
        expect(parse({ ...minimal(), http: { port: 65535 } }).http.port).toBe(65535);
    });

    it('pollSeconds that is not a positive number of seconds up to an hour', () => {
        for (const pollSeconds of [0, -5, '5', false, 3601, 1e9]) refuses({ ...minimal(), pollSeconds }, 'pollSeconds must be a number of seconds in (0, 3600]');
    });

    it('models missing, not an array or empty', () => {
        refuses({ ...minimal(), models: undefined }, 'models must be a non-empty array');
        refuses({ ...minimal(), models: [] }, 'models must be a non-empty array');
        refuses({ ...minimal(), models: { kind: 'reference' } }, 'models must be a non-empty array');
    });

    it('a platform other than the simulated one', () => {
        refuses({ ...minimal(), platform: { kind: 'tdx' } }, 'platform.kind must be "simulated"');
        refuses({ ...minimal(), platform: { vendor: 'acme' } }, 'platform.kind');
        refuses({ ...minimal(), platform: 'simulated' }, 'platform must be an object');
        refuses({ ...minimal(), platform: { kind: 'simulated', vendor: '' } }, 'platform.vendor must be a non-empty string');
    });

    it('empty dataDir and sealingKeyEnv', () => {
        refuses({ ...minimal(), dataDir: '' }, 'dataDir must be a non-empty string');
        refuses({ ...minimal(), sealingKeyEnv: 7 }, 'sealingKeyEnv must be a non-empty string');
    });
});

describe('loadRunnerConfig', () => {
    let dir: string;
    beforeAll(() => {
        dir = mkdtempSync(path.join(tmpdir(), 'chrysalis-config-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('resolves dataDir against the config file’s directory, not the working directory', () => {
        const file = path.join(dir, 'nested', 'runner.json');
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, JSON.stringify({ ...minimal(), dataDir: './data' }));
        expect(loadRunnerConfig(file).dataDir).toBe(path.join(dir, 'nested', 'data'));
        writeFileSync(file, JSON.stringify(minimal()));
        expect(loadRunnerConfig(file).dataDir).toBe(path.join(dir, 'nested', 'runner-data'));
        // A relative path to the file itself works too.
        const relative = path.relative(process.cwd(), file);
        expect(loadRunnerConfig(relative).dataDir).toBe(path.join(dir, 'nested', 'runner-data'));
    });

    it('a missing file is a ConfigError naming it', () => {
        const file = path.join(dir, 'nope.json');
        expect(() => loadRunnerConfig(file)).toThrow(ConfigError);
        expect(() => loadRunnerConfig(file)).toThrow(new RegExp(`cannot read ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: .*ENOENT`));
    });

    it('a directory is a ConfigError', () => {
        expect(() => loadRunnerConfig(dir)).toThrow(ConfigError);
        expect(() => loadRunnerConfig(dir)).toThrow(/cannot read .*EISDIR/);
    });

    it('a file that is not JSON is a ConfigError naming it', () => {
        const file = path.join(dir, 'broken.json');
        writeFileSync(file, '{ "chain": { "kind": "sandbox" }, }');
        expect(() => loadRunnerConfig(file)).toThrow(ConfigError);
        expect(() => loadRunnerConfig(file)).toThrow(`cannot read ${file}: `);
        expect(() => loadRunnerConfig(file)).toThrow(/JSON/);
    });

    it('checks the content it read', () => {
        const file = path.join(dir, 'typo.json');
        writeFileSync(file, JSON.stringify({ ...minimal(), colour: 'blue' }));
        expect(() => loadRunnerConfig(file)).toThrow(new ConfigError('unknown field "colour"'));
    });
});

describe('sealingKeyFrom', () => {
    const KEY = '0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789';

    it('reads 64 hex characters (either case) as 32 bytes', () => {
        const key = sealingKeyFrom({ SEAL: KEY }, 'SEAL');
        expect(key).toHaveLength(32);
        expect(key.toString('hex')).toBe(KEY.toLowerCase());
    });

    it('refuses a missing, empty, short, long or non-hex key, naming the variable', () => {
        const bad: (string | undefined)[] = [undefined, '', KEY.slice(0, 62), KEY + '00', KEY.slice(0, 63) + 'g', ' ' + KEY.slice(1), '0x' + KEY.slice(2)];
        for (const value of bad) {
            expect(() => sealingKeyFrom({ SEAL: value }, 'SEAL')).toThrow(ConfigError);
            expect(() => sealingKeyFrom({ SEAL: value }, 'SEAL')).toThrow('set SEAL to the 32-byte sealing key in hex (64 characters)');
        }
        // Another variable holding a key does not count.
        expect(() => sealingKeyFrom({ OTHER: KEY }, 'SEAL')).toThrow(/set SEAL /);
    });
});
