// Deploys a Chrysalis Registry.
//
//   npx blueprint run deployRegistry --testnet -- [params.json] [--defaults] [--treasury <addr>]
//       [--owner <addr>] [--salt <n>] [--value <TON>]
//
// Parameters come from a ParamsJson file (see scripts/params.example.json), or
// are the defaults of wrappers/params.ts with a treasury (--defaults). Without
// either, the script asks. The owner is the sending wallet unless --owner.
import type { NetworkProvider } from '@ton/blueprint';
import { Address, toNano } from '@ton/core';
import { Params, Registry, REGISTRY_STORAGE_RESERVE } from '../wrappers/Registry';
import { defaultParams, paramsToJson } from '../wrappers/params';
import {
    addressOrAsk,
    argOrAsk,
    assertValidParams,
    choiceOrAsk,
    formatAddress,
    formatParams,
    formatTon,
    InputError,
    loadParamsFile,
    newQueryId,
    noMoreArgs,
    parseAddress,
    parseArgs,
    parseTon,
    parseUint,
    requireBasechain,
    sendAndCheck,
    senderAddress,
    StateError,
    usageError,
} from './lib/cli';

const USAGE =
    'deployRegistry [params.json] [--defaults] [--treasury <addr>] [--owner <addr>] [--salt <n>] [--value <TON, default 0.5>]';

/** Default value sent with DeployRegistry; the Registry keeps its storage reserve and returns the rest. */
export const DEFAULT_DEPLOY_VALUE = toNano('0.5');
/** The least value accepted: the storage reserve plus room for the deploy's fees. */
export const MIN_DEPLOY_VALUE = REGISTRY_STORAGE_RESERVE + toNano('0.05');

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, { options: ['owner', 'salt', 'value', 'treasury'], flags: ['defaults'] }, USAGE);
    noMoreArgs(a.positional, 1, USAGE);
    const file = a.positional[0];
    const treasuryArg = a.options.get('treasury');
    if (file !== undefined && a.flags.has('defaults')) throw usageError('give a params file or --defaults, not both', USAGE);
    if (file !== undefined && treasuryArg !== undefined) {
        throw usageError('--treasury goes with --defaults (a params file names its own treasury)', USAGE);
    }

    const wallet = senderAddress(provider);
    const owner = requireBasechain(a.options.has('owner') ? parseAddress(a.options.get('owner')!, 'owner') : wallet, 'owner');
    const salt = parseUint(a.options.get('salt') ?? '0', 'salt', 64);
    const value = a.options.has('value') ? parseTon(a.options.get('value')!, 'value') : DEFAULT_DEPLOY_VALUE;
    if (value < MIN_DEPLOY_VALUE) {
        throw new InputError(`value must be at least ${formatTon(MIN_DEPLOY_VALUE)}: the Registry keeps ${formatTon(REGISTRY_STORAGE_RESERVE)}`);
    }

    let params: Params;
    let source: string;
    let mode: 'file' | 'defaults';
    if (file !== undefined) mode = 'file';
    else if (a.flags.has('defaults') || treasuryArg !== undefined) mode = 'defaults';
    else mode = await choiceOrAsk(ui, undefined, ['file', 'defaults'] as const, 'Registry parameters from', 'source', USAGE);
    if (mode === 'file') {
        const path = await argOrAsk(ui, file, 'Path to the params JSON file:', 'params file');
        params = await loadParamsFile(path);
        source = path;
    } else {
        const treasury = await addressOrAsk(ui, treasuryArg, 'Treasury address (receives protocol fees):', 'treasury', wallet);
        params = defaultParams(requireBasechain(treasury, 'treasury'));
        assertValidParams(params, 'default parameters');
        source = 'defaults';
    }
    if (params.treasury.equals(new Address(0, Buffer.alloc(32)))) {
        ui.write('Warning: the treasury is the zero address; protocol fees sent there are lost.');
    }

    const registry = provider.open(await Registry.fromInit(owner, params, salt));
    const shown = formatAddress(provider, registry.address);
    if (await provider.isContractDeployed(registry.address)) {
        throw new StateError(`a Registry with these parameters, owner and salt is already deployed at ${shown}`);
    }
    ui.write(`Deploying the Registry at ${shown}`);
    ui.write(`  owner: ${formatAddress(provider, owner)}, salt: ${salt}, value: ${formatTon(value)}, parameters: ${source}`);
    await sendAndCheck(provider, 'DeployRegistry', () =>
        registry.send(provider.sender(), { value }, { $$type: 'DeployRegistry', queryId: newQueryId() }),
    );
    await provider.waitForDeploy(registry.address);

    const onChain = await registry.getParams();
    if (JSON.stringify(paramsToJson(onChain)) !== JSON.stringify(paramsToJson(params))) {
        throw new StateError(`the Registry at ${shown} holds other parameters than were sent`);
    }
    const state = await provider.getContractState(registry.address);
    ui.write(`Registry deployed at ${shown}`);
    ui.write(`  owner:   ${formatAddress(provider, await registry.getOwner())}`);
    ui.write(`  salt:    ${await registry.getSalt()}`);
    ui.write(`  balance: ${formatTon(state.balance)}`);
    ui.write('  parameters:');
    for (const line of formatParams(onChain)) ui.write(line);
    const fees = [
        `attestation ${formatTon(await registry.getAttestationFee())}`,
        `admin ${formatTon(await registry.getAdminFee())}`,
        `jail ${formatTon(await registry.getJailFee())}`,
    ];
    ui.write(`  fees:    ${fees.join(', ')}`);
}
