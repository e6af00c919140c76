// A provider's stake and payout address. <provider> is the Provider contract
// address (registerProvider prints it).
//
//   npx blueprint run providerStake --testnet -- <subcommand> <provider> [args]
//
//   show     <provider>               status, stake, attestation, snapshot
//   topup    <provider> <amount TON>  add stake (anyone may)
//   unbond   <provider>               owner: stop taking jobs; stake withdrawable after the unbonding period
//   withdraw <provider>               owner: take the stake back once unbonded
//   payout   <provider> <addr>        owner: change where payments go
//
// Messages carry the Provider's getSimpleFee() (plus the amount for topup).
import type { NetworkProvider } from '@ton/blueprint';
import { OpenedContract } from '@ton/core';
import { Provider } from '../wrappers/Provider';
import { ProviderInfo, STATUS_ACTIVE, STATUS_EXITED, STATUS_JAILED, STATUS_UNBONDING } from '../wrappers/Registry';
import { statusName } from '../wrappers/chrysalis';
import {
    addressOrAsk,
    argOrAsk,
    choiceOrAsk,
    formatAddress,
    formatProviderInfo,
    formatTime,
    formatTon,
    newQueryId,
    noMoreArgs,
    openProvider,
    parseArgs,
    parseTon,
    requireBasechain,
    sendAndCheck,
    senderAddress,
    StateError,
} from './lib/cli';

const SUBCOMMANDS = ['show', 'topup', 'unbond', 'withdraw', 'payout'] as const;
type Subcommand = (typeof SUBCOMMANDS)[number];
const USAGE = `providerStake <${SUBCOMMANDS.join('|')}> <provider> [amount TON | payout address]`;
const ARITY: Record<Subcommand, number> = { show: 1, topup: 2, unbond: 1, withdraw: 1, payout: 2 };

interface Ctx {
    provider: NetworkProvider;
    contract: OpenedContract<Provider>;
    info: ProviderInfo;
    arg: string | undefined;
}

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, {}, USAGE);
    const sub = await choiceOrAsk(ui, a.positional[0], SUBCOMMANDS, 'Stake action:', 'subcommand', USAGE);
    const rest = a.positional.slice(1);
    noMoreArgs(rest, ARITY[sub], USAGE);
    const address = await addressOrAsk(ui, rest[0], 'Provider contract address:', 'provider');
    const contract = await openProvider(provider, address);
    const ctx: Ctx = { provider, contract, info: await contract.getInfo(), arg: rest[1] };
    switch (sub) {
        case 'show':
            return show(ctx);
        case 'topup':
            return topUp(ctx);
        case 'unbond':
            return unbond(ctx);
        case 'withdraw':
            return withdraw(ctx);
        case 'payout':
            return payout(ctx);
    }
}

function requireOwner({ provider, info }: Ctx, action: string): void {
    const wallet = senderAddress(provider);
    if (!info.owner.equals(wallet)) {
        throw new StateError(
            `only the provider's owner ${formatAddress(provider, info.owner)} can ${action}; the wallet is ${formatAddress(provider, wallet)}`,
        );
    }
}

function requireStatus({ info }: Ctx, allowed: bigint[], action: string): void {
    if (!allowed.includes(info.status)) {
        throw new StateError(`cannot ${action}: the provider is ${statusName(info.status)} (needs ${allowed.map(statusName).join(' or ')})`);
    }
}

async function show({ provider, contract }: Ctx): Promise<void> {
    const ui = provider.ui();
    ui.write(`Provider ${formatAddress(provider, contract.address)}`);
    for (const line of formatProviderInfo(provider, await contract.getInfo())) ui.write(line);
    ui.write(`  accepts jobs: ${(await contract.getAcceptsJobs()) ? 'yes' : 'no'}`);
    ui.write(`  balance:     ${formatTon((await provider.getContractState(contract.address)).balance)}`);
}

async function topUp(ctx: Ctx): Promise<void> {
    const { provider, contract, info } = ctx;
    const amount = parseTon(await argOrAsk(provider.ui(), ctx.arg, 'Amount to add to the stake, in TON:', 'amount'), 'amount');
    requireStatus(ctx, [STATUS_ACTIVE, STATUS_UNBONDING, STATUS_JAILED], 'top up');
    const value = amount + (await contract.getSimpleFee());
    await sendAndCheck(
        provider,
        'TopUpStake',
        () => contract.send(provider.sender(), { value }, { $$type: 'TopUpStake', queryId: newQueryId(), amount }),
        { effect: 'the new stake', holds: async () => (await contract.getStake()) >= info.stake + amount },
    );
    provider.ui().write(`Added ${formatTon(amount)}: stake ${formatTon(info.stake)} -> ${formatTon(await contract.getStake())}`);
}

async function unbond(ctx: Ctx): Promise<void> {
    const { provider, contract } = ctx;
    requireOwner(ctx, 'unbond');
    requireStatus(ctx, [STATUS_ACTIVE, STATUS_JAILED], 'unbond');
    await sendAndCheck(
        provider,
        'RequestUnbond',
        async () => contract.send(provider.sender(), { value: await contract.getSimpleFee() }, { $$type: 'RequestUnbond', queryId: newQueryId() }),
        { effect: 'the unbonding', holds: async () => (await contract.getStatus()) === STATUS_UNBONDING },
    );
    const info = await contract.getInfo();
    provider.ui().write(`Unbonding: ${formatTon(info.stake)} withdrawable at ${formatTime(info.withdrawableAt)} (run withdraw then).`);
}

async function withdraw(ctx: Ctx): Promise<void> {
    const { provider, contract, info } = ctx;
    requireOwner(ctx, 'withdraw the stake');
    requireStatus(ctx, [STATUS_UNBONDING], 'withdraw');
    provider.ui().write(`Withdrawing ${formatTon(info.stake)} (withdrawable from ${formatTime(info.withdrawableAt)})`);
    await sendAndCheck(
        provider,
        'WithdrawStake',
        async () => contract.send(provider.sender(), { value: await contract.getSimpleFee() }, { $$type: 'WithdrawStake', queryId: newQueryId() }),
        { effect: 'the withdrawal', holds: async () => (await contract.getStatus()) === STATUS_EXITED },
    );
    provider.ui().write(`Withdrew ${formatTon(info.stake)} to ${formatAddress(provider, info.owner)}; the provider is ${statusName(await contract.getStatus())}.`);
}

async function payout(ctx: Ctx): Promise<void> {
    const { provider, contract } = ctx;
    const to = requireBasechain(await addressOrAsk(provider.ui(), ctx.arg, 'New payout address:', 'payout'), 'payout');
    requireOwner(ctx, 'change the payout address');
    await sendAndCheck(
        provider,
        'SetPayoutAddress',
        async () =>
            contract.send(provider.sender(), { value: await contract.getSimpleFee() }, { $$type: 'SetPayoutAddress', queryId: newQueryId(), payout: to }),
        { effect: 'the new payout address', holds: async () => (await contract.getInfo()).payout.equals(to) },
    );
    provider.ui().write(`Payments now go to ${formatAddress(provider, to)}.`);
}
