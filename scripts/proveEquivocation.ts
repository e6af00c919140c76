// Proves that a Provider's enclave key signed two different receipts for one
// request (same escrow, opening and request hash): an honest enclave signs
// exactly one. Anyone may. The Provider slashes slashBps of its stake, burns
// the key, is jailed, and pays this wallet reporterRewardBps of the slash (the
// rest goes to the treasury).
//
//   npx blueprint run proveEquivocation --testnet -- <provider> <receipt-a.json> <receipt-b.json>
//
// Receipt files are SignedReceiptJson (wrappers/receipt.ts), as submitReceipt
// reads them. Both must be signed by the Provider's current enclave key (a key
// replaced by a re-attestation can no longer be proven against) and must
// conflict; both are checked here, as the Provider checks them, before
// anything is sent. The message carries the Provider's getProofFee(); the
// unused part comes back with the reward.
import type { NetworkProvider } from '@ton/blueprint';
import { FAULT_EQUIVOCATION } from '../wrappers/Registry';
import { parseReceipt, proveEquivocationMessage, ReceiptError } from '../wrappers/receipt';
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
} from './lib/cli';

const USAGE = 'proveEquivocation <provider> <receipt-a.json> <receipt-b.json>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, {}, USAGE);
    noMoreArgs(a.positional, 3, USAGE);
    const [providerArg, firstArg, secondArg] = a.positional;
    const address = await addressOrAsk(ui, providerArg, 'Provider contract address:', 'provider');
    const contract = await openProvider(provider, address);
    const firstPath = await argOrAsk(ui, firstArg, 'Path to the first signed receipt JSON file:', 'first receipt file');
    const secondPath = await argOrAsk(ui, secondArg, 'Path to the second signed receipt JSON file:', 'second receipt file');
    const first = await loadReceiptFile(firstPath);
    const second = await loadReceiptFile(secondPath);

    const info = await contract.getInfo();
    if (info.snapshot === null) throw new StateError('the Provider has never registered: it has no enclave key to prove a fault against');
    const key = info.enclave.signingKey;
    requireEnclaveSignature(first, key, `receipt file ${firstPath}`);
    requireEnclaveSignature(second, key, `receipt file ${secondPath}`);
    let body;
    try {
        body = proveEquivocationMessage(first, second, newQueryId());
    } catch (e) {
        if (!(e instanceof ReceiptError)) throw e;
        throw new InputError(`${firstPath} and ${secondPath} prove no equivocation (the Provider would refuse them: ERR_NOT_A_FAULT): ${e.message}`);
    }

    const r = parseReceipt(first.receipt);
    const s = parseReceipt(second.receipt);
    ui.write(`Two receipts signed by the key ${hex256(key)} for one request:`);
    ui.write(`  escrow ${formatAddress(provider, r.escrow)}, opening ${r.engageId}, request ${hex256(r.requestHash)}`);
    ui.write(`  ${firstPath}: ${formatTon(r.amount)}, response ${hex256(r.responseHash)}, finished at ${formatTime(r.finishedAt)}`);
    ui.write(`  ${secondPath}: ${formatTon(s.amount)}, response ${hex256(s.responseHash)}, finished at ${formatTime(s.finishedAt)}`);
    await sendFaultProof(provider, contract, info, FAULT_EQUIVOCATION, body);
}
