// Governance of a Registry: parameters (timelocked), allowlists, jailing,
// ownership and surplus. The Registry is --registry <addr> or asked.
//
//   npx blueprint run governance --testnet -- <subcommand> [args] --registry <addr>
//
//   show                                       parameters, pending change, owner, counts
//   propose-params <params.json>               propose new parameters (executable after the timelock)
//   execute-params                             apply the pending parameters (anyone, after the timelock)
//   cancel-params                              drop the pending parameters
//   allow  <measurement|model|verifier> <hex32>  add an entry (active after the timelock)
//   revoke <measurement|model|verifier> <hex32>  remove an entry at once
//   jail <providerOwner> [reason]              jail that owner's Provider (reason 0-255, default 1)
//   propose-owner <addr>                       propose a new owner
//   accept-owner                               the proposed owner takes over
//   sweep <to>                                 send everything above the storage reserve to <to>
//
// Owner messages carry getAdminFee() (getJailFee() for jail) plus a small
// margin; the Registry returns what is not used.
import type { NetworkProvider } from '@ton/blueprint';
import { Address, OpenedContract } from '@ton/core';
import {
    JAIL_GOVERNANCE,
    Registry,
    REGISTRY_STORAGE_RESERVE,
    STATUS_ACTIVE,
    STATUS_JAILED,
    STATUS_UNBONDING,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { paramsToJson } from '../wrappers/params';
import { ALLOWLISTS, AllowlistName, statusName } from '../wrappers/chrysalis';
import {
    addressOrAsk,
    argOrAsk,
    choiceOrAsk,
    FEE_MARGIN,
    formatAddress,
    formatParams,
    formatTime,
    formatTon,
    hex256,
    jailReasonName,
    loadParamsFile,
    newQueryId,
    noMoreArgs,
    openRegistry,
    parseArgs,
    parseHex256,
    parseUint,
    sendAndCheck,
    senderAddress,
    StateError,
    requireBasechain,
} from './lib/cli';

const SUBCOMMANDS = [
    'show',
    'propose-params',
    'execute-params',
    'cancel-params',
    'allow',
    'revoke',
    'jail',
    'propose-owner',
    'accept-owner',
    'sweep',
] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];
const LIST_NAMES = Object.keys(ALLOWLISTS) as AllowlistName[];

const USAGE = `governance <${SUBCOMMANDS.join('|')}> [args] [--registry <addr>]`;

/** How many positional arguments (after the subcommand) each subcommand takes at most. */
const ARITY: Record<Subcommand, number> = {
    show: 0,
    'propose-params': 1,
    'execute-params': 0,
    'cancel-params': 0,
    allow: 2,
    revoke: 2,
    jail: 2,
    'propose-owner': 1,
    'accept-owner': 0,
    sweep: 1,
};

interface Ctx {
    provider: NetworkProvider;
    registry: OpenedContract<Registry>;
    args: string[];
}

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, { options: ['registry'] }, USAGE);
    const sub = await choiceOrAsk(ui, a.positional[0], SUBCOMMANDS, 'Governance action:', 'subcommand', USAGE);
    const rest = a.positional.slice(1);
    noMoreArgs(rest, ARITY[sub], USAGE);
    const registryAddress = await addressOrAsk(ui, a.options.get('registry'), 'Registry address:', 'registry');
    const registry = await openRegistry(provider, registryAddress);
    const ctx: Ctx = { provider, registry, args: rest };
    switch (sub) {
        case 'show':
            return show(ctx);
        case 'propose-params':
            return proposeParams(ctx);
        case 'execute-params':
            return executeParams(ctx);
        case 'cancel-params':
            return cancelParams(ctx);
        case 'allow':
        case 'revoke':
            return allowlist(ctx, sub);
        case 'jail':
            return jail(ctx);
        case 'propose-owner':
            return proposeOwner(ctx);
        case 'accept-owner':
            return acceptOwner(ctx);
        case 'sweep':
            return sweep(ctx);
    }
}

async function requireOwner({ provider, registry }: Ctx, action: string): Promise<void> {
    const owner = await registry.getOwner();
    const wallet = senderAddress(provider);
    if (!owner.equals(wallet)) {
        throw new StateError(
            `only the Registry owner ${formatAddress(provider, owner)} can ${action}; the wallet is ${formatAddress(provider, wallet)}`,
        );
    }
}

async function adminValue({ registry }: Ctx): Promise<bigint> {
    return (await registry.getAdminFee()) + FEE_MARGIN;
}

async function show({ provider, registry }: Ctx): Promise<void> {
    const ui = provider.ui();
    const pendingOwner = await registry.getPendingOwner();
    const counts = await registry.getCounts();
    const state = await provider.getContractState(registry.address);
    ui.write(`Registry ${formatAddress(provider, registry.address)}`);
    ui.write(`  owner:         ${formatAddress(provider, await registry.getOwner())}`);
    ui.write(`  pending owner: ${pendingOwner === null ? 'none' : formatAddress(provider, pendingOwner)}`);
    ui.write(`  salt:          ${await registry.getSalt()}`);
    ui.write(`  balance:       ${formatTon(state.balance)} (storage reserve ${formatTon(REGISTRY_STORAGE_RESERVE)})`);
    ui.write(`  allowlists:    ${counts.measurements} measurements, ${counts.models} models, ${counts.verifiers} verifiers`);
    ui.write('  parameters:');
    for (const line of formatParams(await registry.getParams())) ui.write(line);
    await showPending({ provider, registry, args: [] });
    ui.write(
        `  fees:          admin ${formatTon(await registry.getAdminFee())}, jail ${formatTon(await registry.getJailFee())}, attestation ${formatTon(await registry.getAttestationFee())}`,
    );
}

async function showPending({ provider, registry }: Ctx): Promise<void> {
    const ui = provider.ui();
    const pending = await registry.getPendingParams();
    if (pending === null) {
        ui.write('  pending parameters: none');
        return;
    }
    ui.write(`  pending parameters, executable at ${formatTime(await registry.getPendingExecutableAt())}:`);
    for (const line of formatParams(pending)) ui.write(line);
}

async function proposeParams(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const path = await argOrAsk(provider.ui(), ctx.args[0], 'Path to the new params JSON file:', 'params file');
    const params = await loadParamsFile(path);
    await requireOwner(ctx, 'propose parameters');
    if ((await registry.getPendingParams()) !== null) {
        const at = await registry.getPendingExecutableAt();
        throw new StateError(`a proposal is already pending (executable at ${formatTime(at)}); cancel-params first`);
    }
    const wanted = JSON.stringify(paramsToJson(params));
    await sendAndCheck(
        provider,
        'ProposeParams',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'ProposeParams', queryId: newQueryId(), params }),
        {
            effect: 'the pending proposal',
            holds: async () => {
                const p = await registry.getPendingParams();
                return p !== null && JSON.stringify(paramsToJson(p)) === wanted;
            },
        },
    );
    provider.ui().write('Parameters proposed.');
    await showPending(ctx);
}

async function executeParams(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const pending = await registry.getPendingParams();
    if (pending === null) throw new StateError('there is no pending parameter proposal to execute');
    const wanted = JSON.stringify(paramsToJson(pending));
    provider.ui().write(`Executing the proposal executable at ${formatTime(await registry.getPendingExecutableAt())}`);
    await sendAndCheck(
        provider,
        'ExecuteParams',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'ExecuteParams', queryId: newQueryId() }),
        {
            effect: 'the new parameters',
            holds: async () => JSON.stringify(paramsToJson(await registry.getParams())) === wanted,
        },
    );
    provider.ui().write('Parameters in force:');
    for (const line of formatParams(await registry.getParams(), '  ')) provider.ui().write(line);
}

async function cancelParams(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    await requireOwner(ctx, 'cancel a proposal');
    if ((await registry.getPendingParams()) === null) throw new StateError('there is no pending parameter proposal to cancel');
    await sendAndCheck(
        provider,
        'CancelParams',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'CancelParams', queryId: newQueryId() }),
        { effect: 'the cancellation', holds: async () => (await registry.getPendingParams()) === null },
    );
    provider.ui().write('Pending parameters cancelled.');
    await showPending(ctx);
}

async function allowlist(ctx: Ctx, sub: 'allow' | 'revoke'): Promise<void> {
    const { provider, registry } = ctx;
    const ui = provider.ui();
    const name = await choiceOrAsk(ui, ctx.args[0], LIST_NAMES, 'Allowlist:', 'allowlist', USAGE);
    const list = ALLOWLISTS[name];
    const entry = parseHex256(await argOrAsk(ui, ctx.args[1], `${name} (32 bytes of hex):`, name), name);
    await requireOwner(ctx, `${sub} allowlist entries`);
    const current = await registry.getAllowlistEntry(list, entry);
    if (sub === 'allow' && current !== null) {
        throw new StateError(`${name} ${hex256(entry)} is already listed (active from ${formatTime(current)})`);
    }
    if (sub === 'revoke' && current === null) throw new StateError(`${name} ${hex256(entry)} is not listed`);
    const what = sub === 'allow' ? 'AllowlistAdd' : 'AllowlistRevoke';
    await sendAndCheck(
        provider,
        what,
        async () =>
            registry.send(
                provider.sender(),
                { value: await adminValue(ctx) },
                sub === 'allow'
                    ? { $$type: 'AllowlistAdd', queryId: newQueryId(), list, entry }
                    : { $$type: 'AllowlistRevoke', queryId: newQueryId(), list, entry },
            ),
        {
            effect: sub === 'allow' ? 'the new entry' : 'the removal',
            holds: async () => ((await registry.getAllowlistEntry(list, entry)) === null) === (sub === 'revoke'),
        },
    );
    const activeFrom = await registry.getAllowlistEntry(list, entry);
    ui.write(
        activeFrom === null ? `${name} ${hex256(entry)} revoked.` : `${name} ${hex256(entry)} listed, active from ${formatTime(activeFrom)}.`,
    );
    const counts = await registry.getCounts();
    ui.write(`  allowlists: ${counts.measurements} measurements, ${counts.models} models, ${counts.verifiers} verifiers`);
}

async function jail(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const ui = provider.ui();
    const owner = await addressOrAsk(ui, ctx.args[0], 'Owner address of the provider to jail:', 'providerOwner');
    const reason = ctx.args[1] === undefined ? JAIL_GOVERNANCE : parseUint(ctx.args[1], 'reason', 8);
    await requireOwner(ctx, 'jail providers');
    const providerAddress = await registry.getProviderAddress(owner);
    if (!(await provider.isContractDeployed(providerAddress))) {
        throw new StateError(`${formatAddress(provider, owner)} has no Provider on this Registry: nothing to jail`);
    }
    const opened = provider.open(Provider.fromAddress(providerAddress));
    const status = (await opened.getInfo()).status;
    if (status !== STATUS_ACTIVE && status !== STATUS_JAILED && status !== STATUS_UNBONDING) {
        throw new StateError(`the Provider of ${formatAddress(provider, owner)} is ${statusName(status)}: nothing to jail`);
    }
    const expected = status === STATUS_ACTIVE ? STATUS_JAILED : status;
    const value = (await registry.getJailFee()) + FEE_MARGIN;
    await sendAndCheck(
        provider,
        'JailProvider',
        () => registry.send(provider.sender(), { value }, { $$type: 'JailProvider', queryId: newQueryId(), providerOwner: owner, reason }),
        {
            effect: 'the jailing',
            holds: async () => {
                const info = await opened.getInfo();
                return info.status === expected && info.jailReason === reason;
            },
        },
    );
    const info = await opened.getInfo();
    ui.write(`Provider ${formatAddress(provider, providerAddress)}: status ${statusName(info.status)}, jail reason ${jailReasonName(info.jailReason)}`);
}

async function proposeOwner(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const newOwner = requireBasechain(await addressOrAsk(provider.ui(), ctx.args[0], 'Proposed new owner:', 'new owner'), 'new owner');
    await requireOwner(ctx, 'propose a new owner');
    await sendAndCheck(
        provider,
        'ProposeOwner',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'ProposeOwner', queryId: newQueryId(), newOwner }),
        { effect: 'the pending owner', holds: async () => (await registry.getPendingOwner())?.equals(newOwner) ?? false },
    );
    provider.ui().write(`Proposed owner: ${formatAddress(provider, newOwner)} (it must run accept-owner).`);
}

async function acceptOwner(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const wallet = senderAddress(provider);
    const pending = await registry.getPendingOwner();
    if (pending === null || !pending.equals(wallet)) {
        throw new StateError(
            `the wallet ${formatAddress(provider, wallet)} is not the proposed owner (proposed: ${pending === null ? 'none' : formatAddress(provider, pending)})`,
        );
    }
    await sendAndCheck(
        provider,
        'AcceptOwnership',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'AcceptOwnership', queryId: newQueryId() }),
        { effect: 'the new owner', holds: async () => (await registry.getOwner()).equals(wallet) },
    );
    provider.ui().write(`The Registry's owner is now ${formatAddress(provider, wallet)}.`);
}

async function sweep(ctx: Ctx): Promise<void> {
    const { provider, registry } = ctx;
    const to: Address = await addressOrAsk(provider.ui(), ctx.args[0], 'Send the surplus to:', 'to');
    await requireOwner(ctx, 'sweep the surplus');
    const before = (await provider.getContractState(registry.address)).balance;
    provider.ui().write(`Registry balance ${formatTon(before)}; sweeping everything above ${formatTon(REGISTRY_STORAGE_RESERVE)}`);
    await sendAndCheck(
        provider,
        'SweepSurplus',
        async () => registry.send(provider.sender(), { value: await adminValue(ctx) }, { $$type: 'SweepSurplus', queryId: newQueryId(), to }),
        {
            effect: 'the sweep',
            holds: async () => (await provider.getContractState(registry.address)).balance <= REGISTRY_STORAGE_RESERVE,
        },
    );
    const after = (await provider.getContractState(registry.address)).balance;
    provider.ui().write(`Swept the surplus to ${formatAddress(provider, to)}; the Registry holds ${formatTon(after)}.`);
}
