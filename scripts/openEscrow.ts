// Opens an escrow for one inference request: deploys the Escrow derived from
// (the Provider's Registry, this wallet, the Provider, nonce) with maxAmount
// plus the Provider's getEscrowOpenFee() attached, and reports whether the
// Provider engaged or refused (a refused escrow closes and returns its balance).
//
//   npx blueprint run openEscrow --testnet -- <provider> <model hex32> <request hex32> <maxAmount TON> <deadline> [--nonce <n>]
//
// <deadline> is unix seconds, or +<seconds> from now by this computer's clock;
// the Escrow and the Provider judge it by the chain's clock (it must be in the
// future and within the Provider's maxJobDuration). The nonce is random unless
// --nonce is given; the escrow address is printed and is all the other escrow
// scripts need (submitReceipt, releaseEscrow, refundEscrow).
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_NEW, ESCROW_OPENED, ProviderInfo, STATUS_ACTIVE } from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { statusName } from '../wrappers/chrysalis';
import {
    addressOrAsk,
    argOrAsk,
    escrowStateName,
    formatAddress,
    formatEscrowInfo,
    formatTime,
    formatTon,
    hex256,
    localNow,
    newQueryId,
    noMoreArgs,
    openProvider,
    parseArgs,
    parseDeadline,
    parseHex256,
    parseTon,
    parseUint,
    randomNonce,
    sendAndCheck,
    senderAddress,
    StateError,
} from './lib/cli';

const USAGE = 'openEscrow <provider> <model hex32> <request hex32> <maxAmount TON> <deadline: unix seconds | +seconds> [--nonce <n>]';

/**
 * Why the Provider will refuse the job, for the reasons that do not depend on
 * the chain's clock (in the order the Provider checks them); undefined when none.
 */
export function refusalReason(info: ProviderInfo, servesModel: boolean, model: bigint, deadline: bigint): string | undefined {
    if (info.status !== STATUS_ACTIVE || info.snapshot === null) return `the Provider is ${statusName(info.status)}, not Active`;
    if (info.stake < info.snapshot.minProviderStake) {
        return `the Provider's stake ${formatTon(info.stake)} is below the minimum ${formatTon(info.snapshot.minProviderStake)}`;
    }
    if (!servesModel) return `the Provider does not serve the model ${hex256(model)}`;
    if (info.attestationValidUntil < deadline) {
        return `the Provider's attestation ends at ${formatTime(info.attestationValidUntil)}, before the deadline`;
    }
    return undefined;
}

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, { options: ['nonce'] }, USAGE);
    noMoreArgs(a.positional, 5, USAGE);
    const [providerArg, modelArg, requestArg, amountArg, deadlineArg] = a.positional;
    const client = senderAddress(provider);
    const nonceArg = a.options.get('nonce');
    const nonce = nonceArg !== undefined ? parseUint(nonceArg, 'nonce', 64) : randomNonce();

    const providerAddress = await addressOrAsk(ui, providerArg, 'Provider contract address:', 'provider');
    const contract = await openProvider(provider, providerAddress);
    const model = parseHex256(await argOrAsk(ui, modelArg, 'Model hash (32 bytes of hex):', 'model'), 'model');
    const request = parseHex256(await argOrAsk(ui, requestArg, 'Request hash (32 bytes of hex):', 'request'), 'request');
    const maxAmount = parseTon(await argOrAsk(ui, amountArg, 'The most the provider may be paid, in TON:', 'maxAmount'), 'maxAmount');
    const deadlineText = await argOrAsk(ui, deadlineArg, 'Deadline (unix seconds, or +seconds from now):', 'deadline');
    const deadline = parseDeadline(deadlineText, 'deadline', localNow());

    const info = await contract.getInfo();
    const escrow = provider.open(await Escrow.fromInit(client, providerAddress, nonce));
    const shown = formatAddress(provider, escrow.address);
    const derived = await contract.getEscrowFor(client, nonce);
    if (!derived.equals(escrow.address)) {
        throw new StateError(
            `the Provider derives the escrow ${formatAddress(provider, derived)}, these bindings ${shown}: its Escrow code is not this project's`,
        );
    }
    if (await provider.isContractDeployed(escrow.address)) {
        throw new StateError(`an escrow with nonce ${nonce} is already open at ${shown} (state ${escrowStateName(await escrow.getState())}); choose another --nonce`);
    }

    const refusal = refusalReason(info, await contract.getServesModel(model), model, deadline);
    if (refusal !== undefined) {
        ui.write(`Warning: ${refusal}; the Provider will refuse the job and the escrow will return the payment, less fees.`);
    }
    if (deadline <= BigInt(localNow())) {
        ui.write(`Warning: the deadline ${formatTime(deadline)} is not in the future by this computer's clock; the Escrow refuses a past deadline.`);
    }

    const fee = await contract.getEscrowOpenFee();
    const value = maxAmount + fee;
    ui.write(`Opening an escrow with the Provider ${formatAddress(provider, providerAddress)} at ${shown}`);
    ui.write(`  nonce ${nonce}, model ${hex256(model)}, request ${hex256(request)}`);
    ui.write(`  max amount ${formatTon(maxAmount)} + open fee ${formatTon(fee)} = ${formatTon(value)}; deadline ${formatTime(deadline)}`);
    const lastBefore = (await provider.getContractState(escrow.address)).last?.lt ?? 0n;
    await sendAndCheck(
        provider,
        'OpenEscrow',
        () =>
            escrow.send(
                provider.sender(),
                { value },
                { $$type: 'OpenEscrow', queryId: newQueryId(), requestHash: request, modelHash: model, maxAmount, deadline },
            ),
        {
            effect: "the Provider's answer",
            holds: async () => {
                const state = await provider.getContractState(escrow.address);
                if (state.state.type === 'active') {
                    const s = await escrow.getState();
                    return s !== ESCROW_NEW && s !== ESCROW_OPENED;
                }
                // Refused: the escrow ran and destroyed itself.
                return state.last !== null && state.last.lt !== lastBefore;
            },
        },
    );

    if (await provider.isContractDeployed(escrow.address)) {
        const after = await escrow.getInfo();
        ui.write(`Escrow ${shown} (nonce ${nonce}): ${escrowStateName(after.state)}`);
        for (const line of formatEscrowInfo(provider, after)) ui.write(line);
        ui.write('Next: the provider submits its receipt (submitReceipt); releaseEscrow pays it after the dispute window;');
        ui.write('refundEscrow returns the payment if no receipt has come by the deadline.');
    } else {
        ui.write(`Escrow ${shown} (nonce ${nonce}): refused: closed`);
        ui.write(`  The Provider did not take the job; the escrow returned its balance to ${formatAddress(provider, client)}.`);
        ui.write(
            `  reason: ${refusal ?? "not one visible here: the deadline is beyond the Provider's maxJobDuration from the chain's time, or the Provider changed meanwhile"}`,
        );
    }
}
