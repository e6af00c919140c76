// Refunds the client of an Escrow that has no receipt by its deadline, or
// that was disputed and got no verdict by its verdict deadline (anyone may):
// the whole balance (with a dispute's bond) goes back to the client, the
// Provider (if it had engaged) is told the job ended unpaid, and the escrow
// closes. Nobody is slashed.
//
//   npx blueprint run refundEscrow --testnet -- <escrow>
//
// The message carries the Escrow's getTriggerFee(); the unused part comes back.
// Whether the deadline has passed is the chain's to judge (its clock, not this
// computer's): the script warns when the local clock says it has not.
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_DISPUTED, ESCROW_ENGAGED, ESCROW_OPENED, ESCROW_RECEIPTED } from '../wrappers/Registry';
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
    const disputed = info.state === ESCROW_DISPUTED;
    if (info.state !== ESCROW_OPENED && info.state !== ESCROW_ENGAGED && !disputed) {
        throw new StateError(`the escrow is ${escrowStateName(info.state)}; only an Opened, Engaged or (past its verdict deadline) Disputed escrow can be refunded`);
    }

    const balance = (await provider.getContractState(address)).balance;
    // A disputed escrow is refunded by time once its verdict deadline has passed with no verdict.
    const deadline = disputed ? info.verdictBy : info.deadline;
    if (deadline >= BigInt(localNow())) {
        ui.write(
            `Warning: by this computer's clock the ${disputed ? 'verdict deadline' : 'deadline'} ${formatTime(deadline)} has not passed; the Escrow refuses a refund until it has.`,
        );
    }
    const value = await escrow.getTriggerFee();
    ui.write(`Refunding the escrow ${formatAddress(provider, address)} (${escrowStateName(info.state)}, ${disputed ? 'verdict deadline' : 'deadline'} ${formatTime(deadline)})`);
    ui.write(`  attached: trigger fee ${formatTon(value)}`);
    await sendAndCheck(provider, 'Refund', () => escrow.send(provider.sender(), { value }, { $$type: 'Refund', queryId: newQueryId() }), {
        effect: 'the escrow closing',
        holds: async () => !(await provider.isContractDeployed(address)),
    });

    ui.write(
        disputed
            ? `Refunded: the escrow closed (unresolved: no verdict by the verdict deadline; the bond returned, nobody slashed)`
            : `Refunded: the escrow closed (expired, no receipt by the deadline)`,
    );
    ui.write(
        `  to the client ${formatAddress(provider, info.client)}: its balance of ${formatTon(balance)} (max amount ${formatTon(info.maxAmount)}), less the closing messages' fees`,
    );
    if (info.state !== ESCROW_OPENED) ui.write(`  the Provider ${formatAddress(provider, info.provider)} was told the job ended unpaid`);
}
