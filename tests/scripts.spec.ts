// The operations scripts in scripts/, run through their `run()` against the
// sandbox with a NetworkProvider backed by it and scripted answers.
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Address, toNano } from '@ton/core';
import { Blockchain, SandboxContract, TreasuryContract } from '@ton/sandbox';
import {
    ALLOWLIST_MODEL,
    ERR_ATTESTATION_EXPIRED,
    ERR_NO_SURPLUS,
    ERR_TIMELOCK_ACTIVE,
    ERR_UNBONDING_NOT_OVER,
    JAIL_GOVERNANCE,
    Params,
    Registry,
    REGISTRY_STORAGE_RESERVE,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_UNBONDING,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { defaultParams, ParamsJson, paramsFromJson, paramsToJson } from '../wrappers/params';
import { modelHash, SignedStatement, signedStatementToJson } from '../wrappers/attestation';
import { exitCodeName } from '../wrappers/chrysalis';
import { deployFixture, Fixture, registerProvider, sendRegister, signedFor, T0, testEnclave, MODEL_A } from './helpers/fixture';
import { SandboxNetworkProvider, ScriptedAnswer, ScriptedUIError, runScript, expectFailure } from './helpers/sandboxNetworkProvider';
import { FEE_MARGIN, InputError, StateError, TransactionFailedError, UsageError } from '../scripts/lib/cli';
import { run as deployRegistry } from '../scripts/deployRegistry';
import { run as registerProviderScript } from '../scripts/registerProvider';
import { run as governance } from '../scripts/governance';
import { run as providerStake } from '../scripts/providerStake';
import exampleParams from '../scripts/params.example.json';


let dir: string;
let fileCount = 0;

beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chrysalis-scripts-'));
});

afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
});

function writeJson(name: string, value: unknown): string {
    const path = join(dir, `${++fileCount}-${name}`);
    writeFileSync(path, JSON.stringify(value, null, 2));
    return path;
}

function writeStatement(signed: SignedStatement): string {
    return writeJson('statement.json', signedStatementToJson(signed));
}

function paramsFile(params: Params, overrides: Partial<ParamsJson> = {}): string {
    return writeJson('params.json', { ...paramsToJson(params), ...overrides });
}

async function balanceOf(blockchain: Blockchain, address: Address): Promise<bigint> {
    return (await blockchain.getContract(address)).balance;
}

function sameParams(a: Params, b: Params): void {
    expect(paramsToJson(a)).toEqual(paramsToJson(b));
}

// ===================================================================== deployRegistry

describe('deployRegistry', () => {
    let blockchain: Blockchain;
    let deployer: SandboxContract<TreasuryContract>;
    let treasury: SandboxContract<TreasuryContract>;

    beforeEach(async () => {
        blockchain = await Blockchain.create();
        blockchain.now = T0;
        deployer = await blockchain.treasury('deployer');
        treasury = await blockchain.treasury('treasury');
    });

    async function registryFor(owner: Address, params: Params, salt = 0n): Promise<SandboxContract<Registry>> {
        return blockchain.openContract(await Registry.fromInit(owner, params, salt));
    }

    it('deploys with the committed example params file, owned by the sender', async () => {
        const provider = await runScript(deployRegistry, blockchain, deployer, ['scripts/params.example.json']);
        const expected = paramsFromJson(exampleParams);
        const registry = await registryFor(deployer.address, expected);
        expect(await provider.isContractDeployed(registry.address)).toBe(true);
        sameParams(await registry.getParams(), expected);
        expect((await registry.getOwner()).equals(deployer.address)).toBe(true);
        expect(await registry.getSalt()).toBe(0n);
        // The Registry keeps its storage reserve and returns the rest of the 0.5 TON.
        const balance = await balanceOf(blockchain, registry.address);
        expect(balance).toBeLessThanOrEqual(REGISTRY_STORAGE_RESERVE);
        expect(balance).toBeGreaterThan(REGISTRY_STORAGE_RESERVE - toNano('0.001'));
        const out = provider.scriptedUI.text;
        expect(out).toContain(`Registry deployed at ${registry.address.toString()}`);
        expect(out).toContain('minProviderStake:  10 TON');
        expect(out).toContain('unbondingPeriod:   604800 s (7 d)');
        expect(out).toContain('Warning: the treasury is the zero address');
        expect(provider.scriptedUI.asked).toEqual([]);
    });

    it('takes --owner, --salt and --value', async () => {
        const owner = await blockchain.treasury('owner');
        const params = defaultParams(treasury.address);
        const file = paramsFile(params, { protocolFeeBps: 42 });
        const before = await balanceOf(blockchain, deployer.address);
        await runScript(deployRegistry, blockchain, deployer, [file, '--owner', owner.address.toString(), '--salt=7', '--value', '1']);
        const expected = { ...params, protocolFeeBps: 42n };
        const registry = await registryFor(owner.address, expected, 7n);
        sameParams(await registry.getParams(), expected);
        expect((await registry.getOwner()).equals(owner.address)).toBe(true);
        expect(await registry.getSalt()).toBe(7n);
        // 1 TON sent; all but the reserve and the deploy's fees came back. The fees
        // (~0.19 TON at the sandbox config since payment channels landed; 0.14
        // before) are mostly forwarding the Registry's code, which carries the
        // Provider's, which carries the Escrow's and the Channel's.
        expect(await balanceOf(blockchain, registry.address)).toBe(REGISTRY_STORAGE_RESERVE);
        const spent = before - (await balanceOf(blockchain, deployer.address));
        expect(spent).toBeGreaterThan(REGISTRY_STORAGE_RESERVE + toNano('0.15'));
        expect(spent).toBeLessThan(REGISTRY_STORAGE_RESERVE + toNano('0.21'));
    });

    it('asks for the parameter source and the treasury (defaults), asking again after an invalid address', async () => {
        const provider = await runScript(deployRegistry, blockchain, deployer, [], ['defaults', 'not-an-address', treasury.address]);
        const registry = await registryFor(deployer.address, defaultParams(treasury.address));
        expect(await provider.isContractDeployed(registry.address)).toBe(true);
        sameParams(await registry.getParams(), defaultParams(treasury.address));
        expect(provider.scriptedUI.text).toContain('not-an-address is not valid!');
        expect(provider.scriptedUI.asked.map((q) => q.kind)).toEqual(['choose', 'inputAddress', 'inputAddress']);
    });

    it('takes --defaults with --treasury without asking', async () => {
        await runScript(deployRegistry, blockchain, deployer, ['--defaults', '--treasury', treasury.address.toString()]);
        const registry = await registryFor(deployer.address, defaultParams(treasury.address));
        sameParams(await registry.getParams(), defaultParams(treasury.address));
    });

    it('asks for the params file path', async () => {
        const params = defaultParams(treasury.address);
        const file = paramsFile(params, { timelock: 2 * 86400 });
        await runScript(deployRegistry, blockchain, deployer, [], ['file', file]);
        const registry = await registryFor(deployer.address, { ...params, timelock: 2n * 86400n });
        expect(await registry.getParams().then((p) => p.timelock)).toBe(2n * 86400n);
    });

    it('refuses a params file whose unbonding period does not outlast the job windows, sending nothing', async () => {
        const file = paramsFile(defaultParams(treasury.address), { unbondingPeriod: 2 * 86400 });
        const { provider } = await expectFailure(
            deployRegistry,
            blockchain,
            deployer,
            [file],
            InputError,
            /unbondingPeriod \(172800\) must exceed maxJobDuration \+ disputeWindow \+ verdictWindow \(432000\)/,
        );
        expect(provider.lastResult).toBeUndefined();
    });

    it('lists every problem of a params file', async () => {
        const file = paramsFile(defaultParams(treasury.address), { timelock: 3600, protocolFeeBps: 5000, arbiterQuorum: 1 });
        const { error } = await expectFailure(deployRegistry, blockchain, deployer, [file], InputError, /timelock \(3600\) must be from 86400/);
        expect(error.message).toMatch(/protocolFeeBps \(5000\) must be at most 1000/);
        expect(error.message).toMatch(/arbiterQuorum \(1\) must be a strict majority of the 0 arbiters/);
    });

    it('refuses unreadable or malformed params files', async () => {
        const good = paramsToJson(defaultParams(treasury.address));
        await expectFailure(deployRegistry, blockchain, deployer, [join(dir, 'missing.json')], InputError, /cannot read .*missing\.json: no such file/);
        const notJson = join(dir, 'not.json');
        writeFileSync(notJson, '{ "timelock": ');
        await expectFailure(deployRegistry, blockchain, deployer, [notJson], InputError, /is not valid JSON/);
        const { timelock: _t, ...withoutTimelock } = good;
        await expectFailure(deployRegistry, blockchain, deployer, [writeJson('p.json', withoutTimelock)], InputError, /missing timelock/);
        await expectFailure(deployRegistry, blockchain, deployer, [writeJson('p.json', { ...good, timeLock: 1 })], InputError, /unknown field timeLock/);
        await expectFailure(
            deployRegistry,
            blockchain,
            deployer,
            [writeJson('p.json', { ...good, minProviderStake: 100 })],
            InputError,
            /minProviderStake must be nanoton as a decimal string/,
        );
        await expectFailure(deployRegistry, blockchain, deployer, [writeJson('p.json', { ...good, treasury: 'nowhere' })], InputError, /treasury must be a TON address/);
        await expectFailure(deployRegistry, blockchain, deployer, [writeJson('p.json', [good])], InputError, /must be a JSON object/);
    });

    it('refuses bad arguments with clear messages', async () => {
        const file = paramsFile(defaultParams(treasury.address));
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--owner', 'nonsense'], InputError, /owner: "nonsense" is not a TON address/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--bogus'], UsageError, /unknown option --bogus \(known: --owner, --salt, --value, --treasury, --defaults\)/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--salt', '-1'], InputError, /salt: "-1" is not an integer/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--salt'], UsageError, /option --salt needs a value/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--value', '0.05'], InputError, /value must be at least 0.15 TON/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--value', 'lots'], InputError, /value: "lots" is not an amount of TON/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, 'extra'], UsageError, /unexpected argument "extra"/);
        await expectFailure(deployRegistry, blockchain, deployer, [file, '--defaults'], UsageError, /not both/);
        await expectFailure(
            deployRegistry,
            blockchain,
            deployer,
            [file, '--owner', `-1:${'11'.repeat(32)}`],
            InputError,
            /owner: .* is in workchain -1, the contracts need workchain 0/,
        );
    });

    it('refuses to deploy the same Registry twice', async () => {
        const file = paramsFile(defaultParams(treasury.address));
        await runScript(deployRegistry, blockchain, deployer, [file]);
        await expectFailure(deployRegistry, blockchain, deployer, [file], StateError, /already deployed at/);
    });

    it('fails clearly when the script asks a question the test did not answer', async () => {
        await expectFailure(
            deployRegistry,
            blockchain,
            deployer,
            [],
            ScriptedUIError,
            /the script asked \(choose\) "Registry parameters from" but the test gave no answer/,
        );
        await expectFailure(deployRegistry, blockchain, deployer, [], ScriptedUIError, /"nowhere" is not one of "file", "defaults"/, ['nowhere']);
    });
});

// ===================================================================== registerProvider

describe('registerProvider', () => {
    let fx: Fixture;
    let alice: SandboxContract<TreasuryContract>;

    beforeEach(async () => {
        fx = await deployFixture();
        alice = await fx.blockchain.treasury('alice');
    });

    async function providerOf(owner: Address): Promise<SandboxContract<Provider>> {
        return fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner)));
    }

    it('registers with the stake and payout given and prints the provider', async () => {
        const payout = await fx.blockchain.treasury('alice-payout');
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        const before = await balanceOf(fx.blockchain, alice.address);
        const np = await runScript(registerProviderScript, fx.blockchain, alice, [
            fx.registry.address.toString(),
            file,
            '150',
            payout.address.toString(),
        ]);
        const provider = await providerOf(alice.address);
        const info = await provider.getInfo();
        expect(info.status).toBe(STATUS_ACTIVE);
        expect(info.stake).toBe(toNano('150'));
        expect(info.payout.equals(payout.address)).toBe(true);
        expect(info.enclave.signingKey).toBe(testEnclave('alice').signing.publicKeyInt);
        expect(await provider.getAcceptsJobs()).toBe(true);
        // Stake plus fees left the wallet; the unused part of the fee came back.
        const spent = before - (await balanceOf(fx.blockchain, alice.address));
        expect(spent).toBeGreaterThan(toNano('150'));
        expect(spent).toBeLessThan(toNano('150') + (await fx.registry.getAttestationFee()));
        const out = np.scriptedUI.text;
        expect(out).toContain(`Provider registered: ${provider.address.toString()}`);
        expect(out).toContain('status:      Active');
        expect(out).toContain('stake:       150 TON');
    });

    it('asks for the Registry, the statement file and the stake', async () => {
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        const np = await runScript(registerProviderScript, fx.blockchain, alice, [], [fx.registry.address, file, '100.5']);
        expect(np.scriptedUI.asked.map((q) => q.kind)).toEqual(['inputAddress', 'input', 'input']);
        const info = await (await providerOf(alice.address)).getInfo();
        expect(info.stake).toBe(toNano('100.5'));
        expect(info.payout.equals(alice.address)).toBe(true);
    });

    it('--reattest renews the attestation and adds the extra stake', async () => {
        await runScript(registerProviderScript, fx.blockchain, alice, [
            fx.registry.address.toString(),
            writeStatement(signedFor(fx, alice.address, testEnclave('alice'))),
            '100',
        ]);
        fx.blockchain.now = fx.blockchain.now! + 3600;
        const renewed = signedFor(fx, alice.address, testEnclave('alice-2'), { models: [MODEL_A] });
        const np = await runScript(registerProviderScript, fx.blockchain, alice, [
            '--reattest',
            fx.registry.address.toString(),
            writeStatement(renewed),
            '5',
        ]);
        const info = await (await providerOf(alice.address)).getInfo();
        expect(info.stake).toBe(toNano('105'));
        expect(info.attestationValidUntil).toBe(BigInt(fx.blockchain.now + 86400));
        expect(info.enclave.signingKey).toBe(testEnclave('alice-2').signing.publicKeyInt);
        expect(info.modelCount).toBe(1n);
        expect(np.scriptedUI.text).toContain('Provider re-attested');
    });

    it('--reattest asks for the extra stake, 0 allowed', async () => {
        await sendRegister(fx, alice, signedFor(fx, alice.address, testEnclave('alice')));
        fx.blockchain.now = fx.blockchain.now! + 60;
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        await runScript(registerProviderScript, fx.blockchain, alice, ['--reattest', fx.registry.address.toString(), file], ['0']);
        const info = await (await providerOf(alice.address)).getInfo();
        expect(info.stake).toBe(fx.params.minProviderStake);
        expect(info.attestationValidUntil).toBe(BigInt(fx.blockchain.now + 86400));
    });

    it('refuses statements that are not for this wallet and Registry, or badly signed', async () => {
        const bob = await fx.blockchain.treasury('bob');
        const registry = fx.registry.address.toString();
        const forAlice = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        await expectFailure(registerProviderScript, fx.blockchain, bob, [registry, forAlice, '100'], InputError, /it names the owner .* but the wallet is/);
        const elsewhere = writeStatement(signedFor(fx, alice.address, testEnclave('alice'), { registry: bob.address }));
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, elsewhere, '100'], InputError, /it is for the Registry .*, not this one/);
        const signed = signedFor(fx, alice.address, testEnclave('alice'));
        const forged = writeStatement({ ...signed, signature: Buffer.alloc(64, 7) });
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, forged, '100'], InputError, /signature does not verify/);
        const badJson = writeJson('statement.json', { statement: 'x', signature: 'zz', verifierKey: '00' });
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, badJson, '100'], InputError, /signature must be 64 bytes of hex/);
        const notStatement = writeJson('statement.json', { hello: 'world' });
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, notStatement, '100'], InputError, /needs "statement"/);
        const unknownModel = writeStatement(signedFor(fx, alice.address, testEnclave('alice'), { models: [modelHash('x', 'y', 'z')] }));
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, unknownModel, '100'], StateError, /the model [0-9a-f]{64} is not allowed/);
    });

    it('refuses bad stakes and addresses', async () => {
        const registry = fx.registry.address.toString();
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, file, '50'], InputError, /stake 50 TON is below the Registry's minimum of 100 TON/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, file, 'abc'], InputError, /stake: "abc" is not an amount of TON/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, file, '0'], InputError, /stake must be more than 0 TON/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, ['EQnope', file, '100'], InputError, /registry: "EQnope" is not a TON address/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, [alice.address.toString(), file, '100'], StateError, /is not a Chrysalis Registry/);
        const nowhere = (await fx.blockchain.treasury('nobody')).address;
        const undeployed = new Address(0, Buffer.from(nowhere.hash.map((b) => b ^ 0xff)));
        await expectFailure(registerProviderScript, fx.blockchain, alice, [undeployed.toString(), file, '100'], StateError, /no contract is deployed at/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, file, '100', 'payout?'], InputError, /payout: "payout\?" is not a TON address/);
        await expectFailure(registerProviderScript, fx.blockchain, alice, ['--reattest', registry, file, '1', alice.address.toString()], UsageError, /unexpected argument/);
    });

    it('refuses to register twice and to re-attest before registering', async () => {
        const registry = fx.registry.address.toString();
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice')));
        await expectFailure(registerProviderScript, fx.blockchain, alice, ['--reattest', registry, file, '0'], StateError, /no registered provider .* register first/);
        await runScript(registerProviderScript, fx.blockchain, alice, [registry, file, '100']);
        await expectFailure(registerProviderScript, fx.blockchain, alice, [registry, file, '100'], StateError, /already registered \(status Active\); use --reattest/);
    });

    it('reports the Registry exit code when the chain refuses (expired statement)', async () => {
        const file = writeStatement(signedFor(fx, alice.address, testEnclave('alice'), { validUntil: fx.blockchain.now! + 100 }));
        fx.blockchain.now = fx.blockchain.now! + 200;
        const { error } = await expectFailure(
            registerProviderScript,
            fx.blockchain,
            alice,
            [fx.registry.address.toString(), file, '100'],
            TransactionFailedError,
            new RegExp(`RegisterProvider failed: ${exitCodeName(Number(ERR_ATTESTATION_EXPIRED)).replace(/[()]/g, '\\$&')} at ${fx.registry.address.toString()}`),
        );
        expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_ATTESTATION_EXPIRED));
        const np = new SandboxNetworkProvider(fx.blockchain, alice);
        expect(await np.isContractDeployed(await fx.registry.getProviderAddress(alice.address))).toBe(false);
    });
});

// ===================================================================== governance

describe('governance', () => {
    let fx: Fixture;
    let registry: string;

    beforeEach(async () => {
        fx = await deployFixture();
        registry = fx.registry.address.toString();
    });

    const gov = (args: string[], answers: ScriptedAnswer[] = []) => runScript(governance, fx.blockchain, fx.governance, args, answers);

    it('show prints the owner, parameters, pending parameters and counts', async () => {
        const np = await gov(['show', '--registry', registry]);
        const out = np.scriptedUI.text;
        expect(out).toContain(`owner:         ${fx.governance.address.toString()}`);
        expect(out).toContain('pending owner: none');
        expect(out).toContain('allowlists:    1 measurements, 2 models, 1 verifiers');
        expect(out).toContain('minProviderStake:  100 TON');
        expect(out).toContain('pending parameters: none');
    });

    it('asks for the subcommand and the Registry', async () => {
        const np = await gov([], ['show', fx.registry.address]);
        expect(np.scriptedUI.asked.map((q) => q.kind)).toEqual(['choose', 'inputAddress']);
        expect(np.scriptedUI.text).toContain(`Registry ${registry}`);
    });

    it('propose-params, then execute-params once the timelock has passed', async () => {
        const file = paramsFile(fx.params, { protocolFeeBps: 250, minProviderStake: toNano('200').toString() });
        const proposedAt = fx.blockchain.now!;
        const np = await gov(['propose-params', file, '--registry', registry]);
        expect((await fx.registry.getPendingParams())?.protocolFeeBps).toBe(250n);
        expect(await fx.registry.getPendingExecutableAt()).toBe(BigInt(proposedAt) + fx.params.timelock);
        expect(np.scriptedUI.text).toContain('pending parameters, executable at');

        // Too early: the Registry refuses and the script names the exit code.
        const anyone = await fx.blockchain.treasury('anyone');
        const { error } = await expectFailure(
            governance,
            fx.blockchain,
            anyone,
            ['execute-params', '--registry', registry],
            TransactionFailedError,
            /ExecuteParams failed: ERR_TIMELOCK_ACTIVE \(1103\)/,
        );
        expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_TIMELOCK_ACTIVE));
        expect((await fx.registry.getParams()).protocolFeeBps).toBe(fx.params.protocolFeeBps);

        fx.blockchain.now = proposedAt + Number(fx.params.timelock) + 1;
        const executed = await runScript(governance, fx.blockchain, anyone, ['execute-params', '--registry', registry]);
        const params = await fx.registry.getParams();
        expect(params.protocolFeeBps).toBe(250n);
        expect(params.minProviderStake).toBe(toNano('200'));
        expect(await fx.registry.getPendingParams()).toBeNull();
        expect(executed.scriptedUI.text).toContain('minProviderStake:  200 TON');
    });

    it('cancel-params drops the proposal; a second proposal waits for it', async () => {
        const file = paramsFile(fx.params, { protocolFeeBps: 7 });
        await gov(['propose-params', file, '--registry', registry]);
        await expectFailure(governance, fx.blockchain, fx.governance, ['propose-params', file, '--registry', registry], StateError, /already pending .* cancel-params first/);
        await gov(['cancel-params', '--registry', registry]);
        expect(await fx.registry.getPendingParams()).toBeNull();
        await expectFailure(governance, fx.blockchain, fx.governance, ['cancel-params', '--registry', registry], StateError, /no pending parameter proposal to cancel/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['execute-params', '--registry', registry], StateError, /no pending parameter proposal to execute/);
    });

    it('propose-params refuses a file the Registry would reject', async () => {
        const file = paramsFile(fx.params, { verdictWindow: 7 * 86400 });
        const { provider } = await expectFailure(
            governance,
            fx.blockchain,
            fx.governance,
            ['propose-params', file, '--registry', registry],
            InputError,
            /unbondingPeriod \(604800\) must exceed maxJobDuration \+ disputeWindow \+ verdictWindow \(777600\)/,
        );
        expect(provider.lastResult).toBeUndefined();
        expect(await fx.registry.getPendingParams()).toBeNull();
    });

    it('allow adds an entry active after the timelock; revoke removes it at once', async () => {
        const model = modelHash('mistral-7b', 'v3', 'c'.repeat(64));
        const hex = model.toString(16).padStart(64, '0');
        const np = await gov(['allow', 'model', `0x${hex}`, '--registry', registry]);
        expect(await fx.registry.getAllowlistEntry(ALLOWLIST_MODEL, model)).toBe(BigInt(fx.blockchain.now!) + fx.params.timelock);
        expect(await fx.registry.getIsAllowed(ALLOWLIST_MODEL, model)).toBe(false);
        expect((await fx.registry.getCounts()).models).toBe(3n);
        expect(np.scriptedUI.text).toContain(`model ${hex} listed, active from`);
        fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
        expect(await fx.registry.getIsAllowed(ALLOWLIST_MODEL, model)).toBe(true);

        await expectFailure(governance, fx.blockchain, fx.governance, ['allow', 'model', hex, '--registry', registry], StateError, /is already listed/);
        await gov(['revoke', 'model', hex, '--registry', registry]);
        expect(await fx.registry.getAllowlistEntry(ALLOWLIST_MODEL, model)).toBeNull();
        expect((await fx.registry.getCounts()).models).toBe(2n);
        await expectFailure(governance, fx.blockchain, fx.governance, ['revoke', 'model', hex, '--registry', registry], StateError, /is not listed/);
    });

    it('allow asks for the list and the entry', async () => {
        const measurement = 0xabcdefn;
        await gov(['allow', '--registry', registry], ['measurement', measurement.toString(16).padStart(64, '0')]);
        expect((await fx.registry.getCounts()).measurements).toBe(2n);
    });

    it('refuses unknown allowlists, bad hex and unknown subcommands', async () => {
        await expectFailure(governance, fx.blockchain, fx.governance, ['allow', 'colour', 'ab', '--registry', registry], UsageError, /unknown allowlist "colour" \(one of: measurement, model, verifier\)/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['allow', 'model', 'abc', '--registry', registry], InputError, /model: "abc" is not 32 bytes of hex/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['frobnicate', '--registry', registry], UsageError, /unknown subcommand "frobnicate"/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['show', 'extra', '--registry', registry], UsageError, /unexpected argument "extra"/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['show', '--registry', 'bad'], InputError, /registry: "bad" is not a TON address/);
    });

    it('refuses owner actions from another wallet before sending', async () => {
        const mallory = await fx.blockchain.treasury('mallory');
        const { provider } = await expectFailure(
            governance,
            fx.blockchain,
            mallory,
            ['allow', 'model', '11'.repeat(32), '--registry', registry],
            StateError,
            /only the Registry owner .* can allow allowlist entries; the wallet is/,
        );
        expect(provider.lastResult).toBeUndefined();
    });

    it('jail jails a registered provider, with the default or a given reason', async () => {
        const { owner, provider } = await registerProvider(fx, 'alice');
        const np = await gov(['jail', owner.address.toString(), '--registry', registry]);
        let info = await provider.getInfo();
        expect(info.status).toBe(STATUS_JAILED);
        expect(info.jailReason).toBe(JAIL_GOVERNANCE);
        expect(np.scriptedUI.text).toContain('status Jailed, jail reason governance (1)');

        const bob = await registerProvider(fx, 'bob');
        await gov(['jail', bob.owner.address.toString(), '9', '--registry', registry]);
        info = await bob.provider.getInfo();
        expect(info.status).toBe(STATUS_JAILED);
        expect(info.jailReason).toBe(9n);

        const nobody = await fx.blockchain.treasury('nobody');
        await expectFailure(governance, fx.blockchain, fx.governance, ['jail', nobody.address.toString(), '--registry', registry], StateError, /has no Provider on this Registry/);
        await expectFailure(governance, fx.blockchain, fx.governance, ['jail', owner.address.toString(), '256', '--registry', registry], InputError, /reason: "256" is not an integer from 0 to 2\^8-1/);
    });

    it('propose-owner, then accept-owner by the proposed wallet', async () => {
        const carol = await fx.blockchain.treasury('carol');
        await gov(['propose-owner', carol.address.toString(), '--registry', registry]);
        expect((await fx.registry.getPendingOwner())?.equals(carol.address)).toBe(true);
        const mallory = await fx.blockchain.treasury('mallory');
        await expectFailure(governance, fx.blockchain, mallory, ['accept-owner', '--registry', registry], StateError, /is not the proposed owner/);
        const np = await runScript(governance, fx.blockchain, carol, ['accept-owner', '--registry', registry]);
        expect((await fx.registry.getOwner()).equals(carol.address)).toBe(true);
        expect(await fx.registry.getPendingOwner()).toBeNull();
        expect(np.scriptedUI.text).toContain(`owner is now ${carol.address.toString()}`);
        // The old owner is an ordinary wallet now.
        await expectFailure(governance, fx.blockchain, fx.governance, ['cancel-params', '--registry', registry], StateError, /only the Registry owner/);
    });

    it('sweep sends the surplus above the storage reserve; with none the Registry refuses', async () => {
        const registryContract = await fx.blockchain.getContract(fx.registry.address);
        registryContract.balance = REGISTRY_STORAGE_RESERVE + toNano('5');
        const dave = await fx.blockchain.treasury('dave');
        const before = await balanceOf(fx.blockchain, dave.address);
        const np = await gov(['sweep', dave.address.toString(), '--registry', registry]);
        const gained = (await balanceOf(fx.blockchain, dave.address)) - before;
        // The surplus plus what is left of the message's value (admin fee + margin).
        expect(gained).toBeGreaterThan(toNano('5'));
        expect(gained).toBeLessThanOrEqual(toNano('5') + (await fx.registry.getAdminFee()) + FEE_MARGIN);
        expect(await balanceOf(fx.blockchain, fx.registry.address)).toBeLessThanOrEqual(REGISTRY_STORAGE_RESERVE);
        expect(np.scriptedUI.text).toContain(`Swept the surplus to ${dave.address.toString()}`);

        const { error } = await expectFailure(
            governance,
            fx.blockchain,
            fx.governance,
            ['sweep', dave.address.toString(), '--registry', registry],
            TransactionFailedError,
            /SweepSurplus failed: ERR_NO_SURPLUS \(1110\)/,
        );
        expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_NO_SURPLUS));
    });
});

// ===================================================================== providerStake

describe('providerStake', () => {
    let fx: Fixture;
    let alice: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let address: string;

    beforeEach(async () => {
        fx = await deployFixture();
        const registered = await registerProvider(fx, 'alice');
        alice = registered.owner;
        provider = registered.provider;
        address = provider.address.toString();
    });

    it('show prints the provider with its status name', async () => {
        const np = await runScript(providerStake, fx.blockchain, alice, ['show', address]);
        const out = np.scriptedUI.text;
        expect(out).toContain(`Provider ${address}`);
        expect(out).toContain('status:      Active');
        expect(out).toContain('stake:       100 TON');
        expect(out).toContain('accepts jobs: yes');
    });

    it('asks for the subcommand and the provider', async () => {
        const np = await runScript(providerStake, fx.blockchain, alice, [], ['show', provider.address]);
        expect(np.scriptedUI.text).toContain('status:      Active');
    });

    it('topup adds to the stake, from any wallet', async () => {
        const bob = await fx.blockchain.treasury('bob');
        const np = await runScript(providerStake, fx.blockchain, bob, ['topup', address, '25']);
        expect(await provider.getStake()).toBe(toNano('125'));
        expect(np.scriptedUI.text).toContain('stake 100 TON -> 125 TON');
        await expectFailure(providerStake, fx.blockchain, bob, ['topup', address, '0'], InputError, /amount must be more than 0 TON/);
        await expectFailure(providerStake, fx.blockchain, bob, ['topup', address], InputError, /amount is required/, ['']);
    });

    it('unbond, withdraw refused until the unbonding period has passed, then withdraw', async () => {
        await runScript(providerStake, fx.blockchain, alice, ['unbond', address]);
        let info = await provider.getInfo();
        expect(info.status).toBe(STATUS_UNBONDING);
        expect(info.withdrawableAt).toBe(BigInt(fx.blockchain.now!) + fx.params.unbondingPeriod);

        const { error } = await expectFailure(
            providerStake,
            fx.blockchain,
            alice,
            ['withdraw', address],
            TransactionFailedError,
            /WithdrawStake failed: ERR_UNBONDING_NOT_OVER \(1202\)/,
        );
        expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_UNBONDING_NOT_OVER));
        expect(await provider.getStake()).toBe(toNano('100'));

        fx.blockchain.now = Number(info.withdrawableAt);
        const before = await balanceOf(fx.blockchain, alice.address);
        const np = await runScript(providerStake, fx.blockchain, alice, ['withdraw', address]);
        info = await provider.getInfo();
        expect(info.status).toBe(STATUS_EXITED);
        expect(info.stake).toBe(0n);
        const gained = (await balanceOf(fx.blockchain, alice.address)) - before;
        expect(gained).toBeGreaterThan(toNano('99.99'));
        expect(gained).toBeLessThanOrEqual(toNano('100'));
        expect(np.scriptedUI.text).toContain('Withdrew 100 TON');
        expect(np.scriptedUI.text).toContain('the provider is Exited');
    });

    it('payout changes where payments go', async () => {
        const payout = await fx.blockchain.treasury('payout');
        await runScript(providerStake, fx.blockchain, alice, ['payout', address, payout.address.toString()]);
        expect((await provider.getInfo()).payout.equals(payout.address)).toBe(true);
    });

    it('refuses owner actions from others and actions the status does not allow', async () => {
        const bob = await fx.blockchain.treasury('bob');
        for (const sub of ['unbond', 'withdraw']) {
            const { provider: np } = await expectFailure(providerStake, fx.blockchain, bob, [sub, address], StateError, /only the provider's owner/);
            expect(np.lastResult).toBeUndefined();
        }
        await expectFailure(providerStake, fx.blockchain, alice, ['withdraw', address], StateError, /cannot withdraw: the provider is Active \(needs Unbonding\)/);
        await expectFailure(providerStake, fx.blockchain, bob, ['payout', address, bob.address.toString()], StateError, /only the provider's owner/);
    });

    it('refuses what is not a deployed Provider and unknown subcommands', async () => {
        const nobody = await fx.blockchain.treasury('nobody');
        const undeployed = await fx.registry.getProviderAddress(nobody.address);
        await expectFailure(providerStake, fx.blockchain, alice, ['show', undeployed.toString()], StateError, /no Provider is deployed at .* \(has its owner registered\?\)/);
        await expectFailure(providerStake, fx.blockchain, alice, ['show', fx.registry.address.toString()], StateError, /is not a Chrysalis Provider/);
        await expectFailure(providerStake, fx.blockchain, alice, ['stake', address], UsageError, /unknown subcommand "stake" \(one of: show, topup, unbond, withdraw, payout\)/);
        await expectFailure(providerStake, fx.blockchain, alice, ['topup', address, '1', '2'], UsageError, /unexpected argument "2"/);
        await expectFailure(providerStake, fx.blockchain, alice, ['show', address, '--registry', 'x'], UsageError, /unknown option --registry \(known: none\)/);
    });
});

// ===================================================================== the provider itself

describe('SandboxNetworkProvider', () => {
    it('reports deploy state, contract state and config like a network', async () => {
        const fx = await deployFixture();
        const np = new SandboxNetworkProvider(fx.blockchain, fx.governance);
        expect(np.network()).toBe('custom');
        expect(np.sender().address.equals(fx.governance.address)).toBe(true);
        expect(await np.isContractDeployed(fx.registry.address)).toBe(true);
        expect((await np.getContractState(fx.registry.address)).balance).toBeGreaterThan(0n);
        expect((await np.getConfig()).globalVersion.version).toBeGreaterThan(0);
        expect(() => np.api()).toThrow(/not supported in sandbox/);
        await expect(np.waitForDeploy(Address.parse(`0:${'22'.repeat(32)}`))).rejects.toThrow(/was not deployed/);
    });
});
