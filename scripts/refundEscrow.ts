// Refunds the client of an Escrow that has no receipt by its deadline (anyone
// may): the whole balance goes back to the client, the Provider (if it had
// engaged) is told the job ended unpaid, and the escrow closes.
//
//   npx blueprint run refundEscrow --testnet -- <escrow>
//
// The message carries the Escrow's getTriggerFee(); the unused part comes back.
// Whether the deadline has passed is the chain's to judge (its clock, not this
// computer's): the script warns when the local clock says it has not.
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_ENGAGED, ESCROW_OPENED, ESCROW_RECEIPTED } from '../wrappers/Registry';
import {
    escrowFromArgs,
    escrowStateName,
    formatAddress,
    formatTime,
    formatTon,
    localNow,
    newQueryId,
    sendAndCheck,
    StateError,
} from './lib/cli';

const USAGE = 'refundEscrow <escrow>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const { escrow, info, address } = await escrowFromArgs(provider, args, 1, USAGE);
    if (info.state === ESCROW_RECEIPTED) {
        throw new StateError(`the escrow holds a receipt (${formatTon(info.amount)}): it is released after the dispute window (releaseEscrow), not refunded`);
    }
    if (info.state !== ESCROW_OPENED && info.state !== ESCROW_ENGAGED) {
        throw new StateError(`the escrow is ${escrowStateName(info.state)}; only an Opened or Engaged escrow can be refunded`);
    }

    const balance = (await provider.getContractState(address)).balance;
    if (info.deadline >= BigInt(localNow())) {
        ui.write(`Warning: by this computer's clock the deadline ${formatTime(info.deadline)} has not passed; the Escrow refuses a refund until it has.`);
    }
    const value = await escrow.getTriggerFee();
    ui.write(`Refunding the escrow ${formatAddress(provider, address)} (${escrowStateName(info.state)}, deadline ${formatTime(info.deadline)})`);
    ui.write(`  attached: trigger fee ${formatTon(value)}`);
    await sendAndCheck(provider, 'Refund', () => escrow.send(provider.sender(), { value }, { $$type: 'Refund', queryId: newQueryId() }), {
        effect: 'the escrow closing',
        holds: async () => !(await provider.isContractDeployed(address)),
    });

    ui.write(`Refunded: the escrow closed (expired, no receipt by the deadline)`);
    ui.write(
        `  to the client ${formatAddress(provider, info.client)}: its balance of ${formatTon(balance)} (max amount ${formatTon(info.maxAmount)}), less the closing messages' fees`,
    );
    if (info.state === ESCROW_ENGAGED) ui.write(`  the Provider ${formatAddress(provider, info.provider)} was told the job ended unpaid`);
}
