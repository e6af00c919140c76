// Registers the sending wallet as a provider of a Registry, or re-attests it.
//
//   npx blueprint run registerProvider --testnet -- <registry> <statement.json> <stake TON> [payout]
//   npx blueprint run registerProvider --testnet -- --reattest <registry> <statement.json> [extra stake TON]
//
// The statement file is the SignedStatementJson a verifier produced for this
// wallet and this Registry (wrappers/attestation.ts). The script attaches the
// stake plus the Registry's getAttestationFee(); the unused part comes back.
import type { NetworkProvider } from '@ton/blueprint';
import { Address } from '@ton/core';
import {
    ALLOWLIST_MEASUREMENT,
    ALLOWLIST_MODEL,
    ALLOWLIST_VERIFIER,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { parseStatement, reattestMessage, registerProviderMessage, statementHash } from '../wrappers/attestation';
import { statusName } from '../wrappers/chrysalis';
import { verifyHash } from '../wrappers/ed25519';
import {
    addressOrAsk,
    argOrAsk,
    formatAddress,
    formatProviderInfo,
    formatTime,
    formatTon,
    hex256,
    InputError,
    loadStatementFile,
    newQueryId,
    noMoreArgs,
    openRegistry,
    parseAddress,
    parseArgs,
    parseTon,
    requireBasechain,
    sendAndCheck,
    senderAddress,
    StateError,
    usageError,
} from './lib/cli';

const USAGE =
    'registerProvider <registry> <statement.json> <stake TON> [payout]  |  registerProvider --reattest <registry> <statement.json> [extra stake TON]';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, { flags: ['reattest'] }, USAGE);
    const reattest = a.flags.has('reattest');
    noMoreArgs(a.positional, reattest ? 3 : 4, USAGE);
    const [registryArg, fileArg, stakeArg, payoutArg] = a.positional;
    const owner = senderAddress(provider);

    const registryAddress = await addressOrAsk(ui, registryArg, 'Registry address:', 'registry');
    const registry = await openRegistry(provider, registryAddress);
    const path = await argOrAsk(ui, fileArg, 'Path to the signed statement JSON file:', 'statement file');
    const signed = await loadStatementFile(path);
    const st = parseStatement(signed.statement);

    // The checks the Registry makes that cannot depend on its clock.
    if (!st.registry.equals(registryAddress)) {
        throw new InputError(`statement file ${path}: it is for the Registry ${formatAddress(provider, st.registry)}, not this one`);
    }
    if (!st.providerOwner.equals(owner)) {
        throw new InputError(
            `statement file ${path}: it names the owner ${formatAddress(provider, st.providerOwner)}, but the wallet is ${formatAddress(provider, owner)}`,
        );
    }
    if (!verifyHash(statementHash(signed.statement), signed.signature, signed.verifierKey)) {
        throw new InputError(`statement file ${path}: the verifier signature does not verify`);
    }
    if (!(await registry.getIsAllowed(ALLOWLIST_VERIFIER, signed.verifierKey))) {
        throw new StateError(`the verifier key ${hex256(signed.verifierKey)} is not an active verifier of this Registry`);
    }
    if (!(await registry.getIsAllowed(ALLOWLIST_MEASUREMENT, st.enclave.measurement))) {
        throw new StateError(`the measurement ${hex256(st.enclave.measurement)} is not allowed (or not active yet) on this Registry`);
    }
    for (const model of st.models.keys()) {
        if (!(await registry.getIsAllowed(ALLOWLIST_MODEL, model))) {
            throw new StateError(`the model ${hex256(model)} is not allowed (or not active yet) on this Registry`);
        }
    }

    const params = await registry.getParams();
    let stake: bigint;
    if (reattest) {
        const text = await argOrAsk(ui, stakeArg, 'Extra stake in TON (0 for none):', 'extra stake');
        stake = parseTon(text, 'extra stake', { allowZero: true });
    } else {
        stake = parseTon(await argOrAsk(ui, stakeArg, 'Stake in TON:', 'stake'), 'stake');
        if (stake < params.minProviderStake) {
            throw new InputError(`stake ${formatTon(stake)} is below the Registry's minimum of ${formatTon(params.minProviderStake)}`);
        }
    }
    let payout: Address | null = null;
    if (payoutArg !== undefined) {
        if (reattest) throw usageError('a re-attestation keeps the payout address (change it with providerStake payout)', USAGE);
        payout = requireBasechain(parseAddress(payoutArg, 'payout'), 'payout');
    }

    const providerAddress = await registry.getProviderAddress(owner);
    const opened = provider.open(Provider.fromAddress(providerAddress));
    const deployed = await provider.isContractDeployed(providerAddress);
    const before = deployed ? await opened.getInfo() : undefined;
    const status = before?.status ?? STATUS_NONE;
    const registered = status === STATUS_ACTIVE || status === STATUS_UNBONDING || status === STATUS_JAILED;
    if (!reattest && registered) {
        throw new StateError(`this wallet is already registered (status ${statusName(status)}); use --reattest to renew the attestation`);
    }
    if (reattest && !registered) {
        throw new StateError(`this wallet has no registered provider (status ${statusName(status)}); register first`);
    }
    if (status === STATUS_EXITED) ui.write('The provider had exited: registering it again.');

    const fee = await registry.getAttestationFee();
    const value = stake + fee;
    const what = reattest ? 'Reattest' : 'RegisterProvider';
    ui.write(`${what} for ${formatAddress(provider, owner)} at ${formatAddress(provider, registryAddress)}`);
    ui.write(`  stake ${formatTon(stake)} + fee ${formatTon(fee)} = ${formatTon(value)}; attestation valid until ${formatTime(st.validUntil)}`);
    const body = reattest
        ? reattestMessage(signed, stake, newQueryId())
        : registerProviderMessage(signed, stake, { payout, queryId: newQueryId() });
    const stakeBefore = before?.stake ?? 0n;
    await sendAndCheck(provider, what, () => registry.send(provider.sender(), { value }, body), {
        effect: reattest ? 'the new attestation' : 'the registration',
        holds: async () => {
            if (!(await provider.isContractDeployed(providerAddress))) return false;
            const info = await opened.getInfo();
            return (
                info.attestationValidUntil === st.validUntil &&
                info.enclave.signingKey === st.enclave.signingKey &&
                info.stake === stakeBefore + stake &&
                (reattest || info.status === STATUS_ACTIVE)
            );
        },
    });

    ui.write(`Provider ${reattest ? 're-attested' : 'registered'}: ${formatAddress(provider, providerAddress)}`);
    for (const line of formatProviderInfo(provider, await opened.getInfo())) ui.write(line);
    ui.write(`  accepts jobs: ${(await opened.getAcceptsJobs()) ? 'yes' : 'no'}`);
}
