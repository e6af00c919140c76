// Proves that a Provider's enclave key signed a receipt it must not have
// signed: one finished after the Provider's attestation expired, or one for a
// model outside its attested set. Anyone may. The Provider slashes slashBps of
// its stake, burns the key, is jailed, and pays this wallet reporterRewardBps
// of the slash (the rest goes to the treasury).
//
//   npx blueprint run proveInvalidReceipt --testnet -- <provider> <receipt.json>
//
// The receipt file is a SignedReceiptJson (wrappers/receipt.ts), as
// submitReceipt reads it, signed by the Provider's current enclave key. The
// script finds which fault it is and refuses a receipt that breaks neither
// rule. An unserved-model receipt counts only if it finished at or after the
// time from which the Provider judges receipts against its current model set
// (its last registration or re-attestation, later if jobs were open then); no
// getter exposes that time, so the chain judges it. The
// message carries the Provider's getProofFee(); the unused part comes back
// with the reward.
import type { NetworkProvider } from '@ton/blueprint';
import { ERR_NOT_A_FAULT, FAULT_AFTER_ATTESTATION, FAULT_UNSERVED_MODEL } from '../wrappers/Registry';
import { parseReceipt, proveInvalidReceiptMessage } from '../wrappers/receipt';
import { exitCodeName } from '../wrappers/chrysalis';
import {
    addressOrAsk,
    argOrAsk,
    formatAddress,
    formatTime,
    formatTon,
    hex256,
    InputError,
    loadReceiptFile,
    newQueryId,
    noMoreArgs,
    openProvider,
    parseArgs,
    requireEnclaveSignature,
    sendFaultProof,
    StateError,
    TransactionFailedError,
} from './lib/cli';

const USAGE = 'proveInvalidReceipt <provider> <receipt.json>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, {}, USAGE);
    noMoreArgs(a.positional, 2, USAGE);
    const [providerArg, fileArg] = a.positional;
    const address = await addressOrAsk(ui, providerArg, 'Provider contract address:', 'provider');
    const contract = await openProvider(provider, address);
    const path = await argOrAsk(ui, fileArg, 'Path to the signed receipt JSON file:', 'receipt file');
    const signed = await loadReceiptFile(path);

    const info = await contract.getInfo();
    if (info.snapshot === null) throw new StateError('the Provider has never registered: it has no enclave key to prove a fault against');
    requireEnclaveSignature(signed, info.enclave.signingKey, `receipt file ${path}`);
    const r = parseReceipt(signed.receipt);
    const served = await contract.getServesModel(r.modelHash);

    ui.write(`A receipt signed by the key ${hex256(info.enclave.signingKey)}:`);
    ui.write(`  escrow ${formatAddress(provider, r.escrow)}, opening ${r.engageId}, ${formatTon(r.amount)}`);
    ui.write(`  model ${hex256(r.modelHash)} (${served ? 'served' : 'not served'} by the Provider), finished at ${formatTime(r.finishedAt)}`);
    ui.write(`  the Provider's attestation is valid until ${formatTime(info.attestationValidUntil)}`);
    let fault: bigint;
    if (r.finishedAt > info.attestationValidUntil) {
        fault = FAULT_AFTER_ATTESTATION;
    } else if (!served) {
        fault = FAULT_UNSERVED_MODEL;
        ui.write(
            "Note: an unserved-model receipt is a fault only if it finished at or after the time from which the Provider judges receipts against its current model set " +
                '(its last registration or re-attestation, later if jobs were open then). No getter exposes that time: the chain judges it.',
        );
    } else {
        throw new InputError(
            `receipt file ${path}: the receipt breaks no rule the Provider can judge: it finished at ${formatTime(r.finishedAt)}, within the attestation ` +
                `(valid until ${formatTime(info.attestationValidUntil)}), for a model the Provider serves (the Provider would refuse it: ERR_NOT_A_FAULT)`,
        );
    }

    try {
        await sendFaultProof(provider, contract, info, fault, proveInvalidReceiptMessage(signed, newQueryId()));
    } catch (e) {
        if (e instanceof TransactionFailedError && e.exitCode === Number(ERR_NOT_A_FAULT) && fault === FAULT_UNSERVED_MODEL) {
            throw new TransactionFailedError(
                e.what,
                e.exitCode,
                `${exitCodeName(e.exitCode)}: the receipt finished before the time from which the Provider judges receipts against its current model set ` +
                    '(its last registration or re-attestation, later if jobs were open then): not a provable fault',
            );
        }
        throw e;
    }
}
