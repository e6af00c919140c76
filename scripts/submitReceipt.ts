// Submits an enclave-signed completion receipt to an engaged Escrow (anyone
// may; normally the provider's runner). The receipt is checked off-chain first,
// as the Escrow would check it, and refused here if the Escrow would refuse it.
//
//   npx blueprint run submitReceipt --testnet -- <escrow> <receipt.json>
//
// The receipt file is a SignedReceiptJson (wrappers/receipt.ts):
// {"receipt": "<BOC, base64>", "signature": "<64 bytes of hex>"}. The message
// carries the Escrow's getTriggerFee(); the unused part comes back.
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_ENGAGED, ESCROW_OPENED, ESCROW_RECEIPTED } from '../wrappers/Registry';
import { receiptExpectationOf, ReceiptError, submitReceiptMessage, verifyReceipt } from '../wrappers/receipt';
import {
    argOrAsk,
    escrowFromArgs,
    escrowStateName,
    formatAddress,
    formatEscrowInfo,
    formatTime,
    formatTon,
    InputError,
    loadReceiptFile,
    newQueryId,
    sendAndCheck,
    StateError,
} from './lib/cli';

const USAGE = 'submitReceipt <escrow> <receipt.json>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const { escrow, info, address, positional } = await escrowFromArgs(provider, args, 2, USAGE);
    const fileArg = positional[1];
    const path = await argOrAsk(ui, fileArg, 'Path to the signed receipt JSON file:', 'receipt file');
    const signed = await loadReceiptFile(path);

    if (info.state === ESCROW_RECEIPTED) {
        throw new StateError(`the escrow already holds a receipt (${formatTon(info.amount)}, releasable at ${formatTime(info.releaseAt)})`);
    }
    if (info.state === ESCROW_OPENED) throw new StateError('the Provider has not engaged this escrow yet');
    if (info.state !== ESCROW_ENGAGED || info.engagement === null) {
        throw new StateError(`the escrow is ${escrowStateName(info.state)}; a receipt needs an Engaged escrow`);
    }

    // The Escrow's checks that need no clock; "finished in the past" and
    // "submitted by the deadline" are the chain's to judge.
    let receipt;
    try {
        receipt = verifyReceipt(signed, receiptExpectationOf(address, info));
    } catch (e) {
        if (!(e instanceof ReceiptError)) throw e;
        throw new InputError(`receipt file ${path}: the Escrow would refuse it: ${e.message}`);
    }

    const value = await escrow.getTriggerFee();
    ui.write(`Submitting a receipt to the escrow ${formatAddress(provider, address)}`);
    ui.write(
        `  amount ${formatTon(receipt.amount)} of at most ${formatTon(info.maxAmount)}, finished at ${formatTime(receipt.finishedAt)}; deadline ${formatTime(info.deadline)}`,
    );
    ui.write(`  attached: trigger fee ${formatTon(value)}`);
    await sendAndCheck(provider, 'SubmitReceipt', () => escrow.send(provider.sender(), { value }, submitReceiptMessage(signed, newQueryId())), {
        effect: 'the accepted receipt',
        holds: async () => (await provider.isContractDeployed(address)) && (await escrow.getState()) === ESCROW_RECEIPTED,
    });

    const after = await escrow.getInfo();
    ui.write(`Receipt accepted: ${formatTon(after.amount)} releasable at ${formatTime(after.releaseAt)} (run releaseEscrow then).`);
    for (const line of formatEscrowInfo(provider, after)) ui.write(line);
}
