// The client disputes a receipted Escrow during its dispute window: the
// release is held until the arbiters' verdict (submitVerdict) or, failing one,
// the verdict deadline (after it, anyone's Refund returns everything to the
// client, bond included).
//
//   npx blueprint run disputeEscrow --testnet -- <escrow> <reason 0..255> <evidence-file>
//
// The evidence file is whatever the client gives the arbiters; the message
// carries its sha256 (evidenceHash, over the file's bytes) and the reason (an
// off-chain code, 0 = unspecified). Only the escrow's client may dispute. The
// message carries engagement.disputeBond + the Escrow's getDisputeFee(): the
// bond comes back if the client wins or no verdict comes; if the provider
// wins, it pays the arbiters' fee and the rest goes to the provider. Whether
// the window is still open is the chain's to judge (its clock, not this
// computer's): the script warns when the local clock says it has closed.
import type { NetworkProvider } from '@ton/blueprint';
import { ESCROW_DISPUTED, ESCROW_ENGAGED, ESCROW_OPENED, ESCROW_RECEIPTED } from '../wrappers/Registry';
import {
    argOrAsk,
    escrowFromArgs,
    escrowStateLabel,
    formatAddress,
    formatDuration,
    formatTime,
    formatTon,
    hex256,
    localNow,
    newQueryId,
    parseUint,
    readFileSha256,
    sendAndCheck,
    senderAddress,
    StateError,
} from './lib/cli';

const USAGE = 'disputeEscrow <escrow> <reason 0..255> <evidence-file>';

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const { escrow, info, address, positional } = await escrowFromArgs(provider, args, 3, USAGE);
    const [, reasonArg, fileArg] = positional;
    const reason = parseUint(await argOrAsk(ui, reasonArg, 'Reason code (0..255, 0 = unspecified):', 'reason'), 'reason', 8);
    const path = await argOrAsk(ui, fileArg, 'Path to the evidence file (its sha256 goes on-chain):', 'evidence file');
    const evidence = await readFileSha256(path, 'evidence file');

    if (info.state === ESCROW_DISPUTED) {
        throw new StateError(`the escrow is already disputed; the verdict is due by ${formatTime(info.verdictBy)} (submitVerdict)`);
    }
    if (info.state === ESCROW_OPENED || info.state === ESCROW_ENGAGED) {
        throw new StateError('the escrow has no receipt yet: there is nothing to dispute (refundEscrow returns the payment after the deadline)');
    }
    if (info.state !== ESCROW_RECEIPTED || info.engagement === null) {
        throw new StateError(`the escrow is ${escrowStateLabel(info.state)}; only a Receipted escrow can be disputed`);
    }
    const sender = senderAddress(provider);
    if (!sender.equals(info.client)) {
        throw new StateError(
            `only the escrow's client ${formatAddress(provider, info.client)} may dispute it; this wallet is ${formatAddress(provider, sender)}`,
        );
    }
    const terms = info.engagement;
    if (terms.arbiterQuorum === 0n) {
        throw new StateError('the deployment had no arbiters when the Provider engaged this escrow: it cannot be disputed (the Escrow refuses with ERR_NO_ARBITERS)');
    }
    if (BigInt(localNow()) >= info.releaseAt) {
        ui.write(`Warning: by this computer's clock the dispute window closed at ${formatTime(info.releaseAt)}; the Escrow refuses a dispute after it.`);
    }

    const fee = await escrow.getDisputeFee();
    const value = terms.disputeBond + fee;
    ui.write(`Disputing the escrow ${formatAddress(provider, address)} (receipt of ${formatTon(info.amount)}; dispute window until ${formatTime(info.releaseAt)})`);
    ui.write(`  reason: ${reason}`);
    ui.write(`  evidence: ${path}, ${evidence.size} bytes; evidenceHash = sha256 of the file's bytes = ${hex256(evidence.sha256)}`);
    ui.write(`  arbiters: quorum ${terms.arbiterQuorum}, set hash ${hex256(terms.arbitersHash)}; they rule within ${formatDuration(terms.verdictWindow)}`);
    ui.write(`  attached: bond ${formatTon(terms.disputeBond)} + dispute fee ${formatTon(fee)} = ${formatTon(value)}`);
    await sendAndCheck(
        provider,
        'Dispute',
        () => escrow.send(provider.sender(), { value }, { $$type: 'Dispute', queryId: newQueryId(), reason, evidenceHash: evidence.sha256 }),
        {
            effect: 'the escrow disputed',
            holds: async () => (await provider.isContractDeployed(address)) && (await escrow.getState()) === ESCROW_DISPUTED,
        },
    );

    const after = await escrow.getInfo();
    ui.write(`Disputed: the release of ${formatTon(after.amount)} is held; the arbiters' verdict is due by ${formatTime(after.verdictBy)}.`);
    ui.write(`  Give the arbiters the evidence file; its sha256 ${hex256(evidence.sha256)} is on-chain (the DisputeOpened log).`);
    ui.write(
        `  The bond ${formatTon(terms.disputeBond)} comes back if the client wins (or if no verdict comes by then: a Refund after it returns everything); if the provider wins, ` +
            `it pays the arbiters' fee (${terms.arbiterFeeBps} bps) and the rest goes to the provider.`,
    );
    ui.write('Next: submitVerdict with the arbiters\' signed verdict.');
}
