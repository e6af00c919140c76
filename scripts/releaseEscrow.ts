// Pays out a receipted Escrow once its dispute window has passed (anyone may):
// the receipt's amount less the protocol fee to the provider's payout address,
// the fee to the treasury, and the rest of the escrow's balance to the client.
// The escrow then closes (it is destroyed).
//
//   npx blueprint run releaseEscrow --testnet -- <escrow>
//
// The message carries the Escrow's getTriggerFee(); the unused part comes back.
// Whether the dispute window has passed is the chain's to judge (its clock, not
// this computer's): the script warns when the local clock says it has not.
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_ENGAGED, ESCROW_RECEIPTED } from '../wrappers/Registry';
import {
    escrowFromArgs,
    escrowStateName,
    formatAddress,
    formatTime,
    formatTon,
    localNow,
    newQueryId,
    protocolFee,
    sendAndCheck,
    StateError,
} from './lib/cli';

const USAGE = 'releaseEscrow <escrow>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const { escrow, info, address } = await escrowFromArgs(provider, args, 1, USAGE);
    if (info.state === ESCROW_ENGAGED) {
        throw new StateError('the escrow has no receipt yet: submitReceipt first (or refundEscrow once the deadline has passed)');
    }
    if (info.state !== ESCROW_RECEIPTED || info.engagement === null) {
        throw new StateError(`the escrow is ${escrowStateName(info.state)}; only a Receipted escrow can be released`);
    }

    const terms = info.engagement;
    const amount = info.amount;
    const fee = protocolFee(amount, terms.protocolFeeBps);
    const balance = (await provider.getContractState(address)).balance;
    if (info.releaseAt > BigInt(localNow())) {
        ui.write(
            `Warning: by this computer's clock the dispute window is open until ${formatTime(info.releaseAt)}; the Escrow refuses a release before then.`,
        );
    }
    const value = await escrow.getTriggerFee();
    ui.write(`Releasing the escrow ${formatAddress(provider, address)}; its dispute window ends at ${formatTime(info.releaseAt)}`);
    ui.write(`  attached: trigger fee ${formatTon(value)}`);
    await sendAndCheck(provider, 'Release', () => escrow.send(provider.sender(), { value }, { $$type: 'Release', queryId: newQueryId() }), {
        effect: 'the escrow closing',
        holds: async () => !(await provider.isContractDeployed(address)),
    });

    ui.write(`Released: the escrow paid ${formatTon(amount)} and closed`);
    ui.write(`  to the payout ${formatAddress(provider, terms.payout)}: ${formatTon(amount - fee)}`);
    ui.write(`  protocol fee (${terms.protocolFeeBps} bps) to the treasury ${formatAddress(provider, terms.treasury)}: ${formatTon(fee)}`);
    ui.write(`  to the client ${formatAddress(provider, info.client)}: the rest of its ${formatTon(balance)}, less the closing messages' fees`);
}
