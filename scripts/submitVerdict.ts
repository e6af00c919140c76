// Submits the arbiters' signed verdict on a disputed Escrow (anyone may); it
// decides the dispute at once. ProviderWins releases the escrow as if it had
// not been disputed and pays the client's bond to the provider, less the
// arbiters' fee. ClientWins returns everything in the escrow to the client,
// bond included, and has the Provider slash its stake (the arbiters' fee
// first, then the client's compensation, the rest to the treasury).
//
//   npx blueprint run submitVerdict --testnet -- <escrow> <verdict.json> [more-signatures.json ...] [--arbiters <file>]
//
// Verdict files are SignedVerdictJson (wrappers/verdict.ts):
// {"verdict": "<BOC, base64>", "signatures": {"<arbiter index>": "<64 bytes of hex>"}}.
// The first file holds the verdict; further files add signatures of the same
// verdict (arbiters may sign separately). Every signature is checked, as the
// Escrow checks it, against the arbiter set the escrow was engaged with: the
// Registry's current set (found through the escrow's Provider) or, when
// governance has changed the arbiters since, the set given with --arbiters (a
// JSON list of the arbiters' hex keys in index order, or a params file).
// The message carries the Escrow's getVerdictFee(); what the Escrow does not
// charge (a ProviderWins verdict sends no slash) comes back. Whether the verdict is on time (its own deadline and the escrow's
// verdict deadline) is the chain's to judge: the script warns when the local
// clock says it is late.
import type { NetworkProvider } from '@ton/blueprint';
import { Dictionary } from '@ton/core';
import { ESCROW_DISPUTED, ESCROW_ENGAGED, ESCROW_OPENED, ESCROW_RECEIPTED, JAIL_STAKE_BELOW_MINIMUM, STATUS_JAILED, Verdict } from '../wrappers/Registry';
import { parseVerdict, SignedVerdict, submitVerdictMessage, VERDICT_CLIENT_WINS, VERDICT_PROVIDER_WINS, VerdictError, verdictHash, verifyVerdict } from '../wrappers/verdict';
import { verifyHash } from '../wrappers/ed25519';
import {
    addressOrAsk,
    arbitersHashOf,
    argOrAsk,
    escrowStateLabel,
    formatAddress,
    formatTime,
    formatTon,
    hex256,
    InputError,
    loadArbitersFile,
    loadVerdictFile,
    localNow,
    newQueryId,
    openEscrowAt,
    openProvider,
    openRegistry,
    parseArgs,
    protocolFee,
    sendAndCheck,
    StateError,
    verdictOutcomeName,
} from './lib/cli';

const USAGE = 'submitVerdict <escrow> <verdict.json> [more-signatures.json ...] [--arbiters <file>]';
const BPS = 10000n;
const min = (a: bigint, b: bigint) => (a < b ? a : b);

/** The verdict of the first file with the signatures of all of them; `from` names the file of each signature. */
async function loadVerdictFiles(paths: readonly string[]): Promise<{ signed: SignedVerdict; from: Map<number, string> }> {
    const first = await loadVerdictFile(paths[0]);
    const signatures = new Map<number, Buffer>();
    const from = new Map<number, string>();
    const summary = (v: Verdict) => `${verdictOutcomeName(v.outcome)}, slash ${formatTon(v.slashAmount)}, deadline ${v.deadline}`;
    for (const [i, path] of paths.entries()) {
        const s = i === 0 ? first : await loadVerdictFile(path);
        if (!verdictHash(s.verdict).equals(verdictHash(first.verdict))) {
            throw new InputError(
                `verdict file ${path}: its verdict (${summary(parseVerdict(s.verdict))}) is not the one in ${paths[0]} ` +
                    `(${summary(parseVerdict(first.verdict))}); every file must sign the same verdict`,
            );
        }
        for (const [index, signature] of s.signatures) {
            const known = signatures.get(index);
            if (known !== undefined && !known.equals(signature)) {
                throw new InputError(`verdict files ${from.get(index)} and ${path} give different signatures for arbiter ${index}`);
            }
            signatures.set(index, signature);
            if (!from.has(index)) from.set(index, path);
        }
    }
    return { signed: { verdict: first.verdict, signatures }, from };
}

export async function run(provider: NetworkProvider, args: string[]): Promise<void> {
    const ui = provider.ui();
    const a = parseArgs(args, { options: ['arbiters'] }, USAGE);
    const address = await addressOrAsk(ui, a.positional[0], 'Escrow address:', 'escrow');
    const { escrow, info } = await openEscrowAt(provider, address);
    const paths = a.positional.slice(1);
    if (paths.length === 0) paths.push(await argOrAsk(ui, undefined, 'Path to the signed verdict JSON file:', 'verdict file'));
    const { signed, from } = await loadVerdictFiles(paths);

    if (info.state === ESCROW_RECEIPTED) {
        throw new StateError(`the escrow is not disputed (Receipted, releasable at ${formatTime(info.releaseAt)}): there is no dispute to decide`);
    }
    if (info.state === ESCROW_OPENED || info.state === ESCROW_ENGAGED) {
        throw new StateError(`the escrow is ${escrowStateLabel(info.state)}: it has no receipt and no dispute to decide`);
    }
    if (info.state !== ESCROW_DISPUTED || info.engagement === null) {
        throw new StateError(`the escrow is ${escrowStateLabel(info.state)}; only a Disputed escrow takes a verdict`);
    }
    const terms = info.engagement;

    // The engaged arbiter set: the Registry's, unless governance has changed it since.
    const providerContract = await openProvider(provider, info.provider);
    const providerInfo = await providerContract.getInfo();
    let arbiters: Dictionary<number, bigint>;
    let arbitersSource: string;
    const arbitersFile = a.options.get('arbiters');
    if (arbitersFile !== undefined) {
        arbiters = await loadArbitersFile(arbitersFile);
        const hash = arbitersHashOf(arbiters);
        if (hash !== terms.arbitersHash) {
            throw new InputError(
                `arbiters file ${arbitersFile}: this set (hash ${hex256(hash)}) is not the one the escrow was engaged with (hash ${hex256(terms.arbitersHash)})`,
            );
        }
        arbitersSource = arbitersFile;
    } else {
        const registry = await openRegistry(provider, providerInfo.registry);
        arbiters = (await registry.getParams()).arbiters;
        const hash = arbitersHashOf(arbiters);
        if (hash !== terms.arbitersHash) {
            throw new StateError(
                `the Registry's current arbiter set (hash ${hex256(hash)}) is not the one this escrow was engaged with (hash ${hex256(terms.arbitersHash)}): ` +
                    'governance has changed the arbiters since the Provider engaged it, and the engaged set is no longer available from the Registry. ' +
                    'Pass the engaged set with --arbiters <file> (a JSON list of the arbiters\' hex keys, in index order).',
            );
        }
        arbitersSource = `the Registry ${formatAddress(provider, providerInfo.registry)}`;
    }

    // The Escrow's checks that need no clock, file by file for the signatures.
    const hash = verdictHash(signed.verdict);
    for (const [index, signature] of signed.signatures) {
        const key = arbiters.get(index);
        if (key === undefined) {
            throw new InputError(`verdict file ${from.get(index)}: arbiter ${index} is not in the engaged set (indexes 0..${arbiters.size - 1})`);
        }
        if (!verifyHash(hash, signature, key)) {
            throw new InputError(`verdict file ${from.get(index)}: the signature of arbiter ${index} does not verify under its key ${hex256(key)}`);
        }
    }
    if (BigInt(signed.signatures.size) < terms.arbiterQuorum) {
        throw new InputError(
            `${signed.signatures.size} arbiter signature(s) (${[...signed.signatures.keys()].sort((x, y) => x - y).join(', ') || 'none'}), ` +
                `the quorum is ${terms.arbiterQuorum} of ${arbiters.size}: add the signature files of more arbiters after the verdict file`,
        );
    }
    let verdict: Verdict;
    try {
        verdict = verifyVerdict(signed, { escrow: address, engageId: info.engageId, arbiters, quorum: terms.arbiterQuorum });
    } catch (e) {
        if (!(e instanceof VerdictError)) throw e;
        throw new InputError(`verdict file ${paths[0]}: the Escrow would refuse it: ${e.message}`);
    }
    if (verdict.outcome !== VERDICT_PROVIDER_WINS && verdict.outcome !== VERDICT_CLIENT_WINS) {
        throw new InputError(`verdict file ${paths[0]}: the Escrow would refuse it: ${verdictOutcomeName(verdict.outcome)}`);
    }
    const now = BigInt(localNow());
    if (now > verdict.deadline) {
        ui.write(`Warning: by this computer's clock the verdict's own deadline ${formatTime(verdict.deadline)} has passed; the Escrow refuses it then.`);
    }
    if (now > info.verdictBy) {
        ui.write(`Warning: by this computer's clock the escrow's verdict deadline ${formatTime(info.verdictBy)} has passed; the Escrow refuses any verdict then.`);
    }

    const value = await escrow.getVerdictFee();
    const clientWins = verdict.outcome === VERDICT_CLIENT_WINS;
    const balance = (await provider.getContractState(address)).balance;
    const indexes = [...signed.signatures.keys()].sort((x, y) => x - y);
    ui.write(`Submitting a verdict on the escrow ${formatAddress(provider, address)} (disputed; verdict due by ${formatTime(info.verdictBy)})`);
    ui.write(`  outcome: ${verdictOutcomeName(verdict.outcome)}${clientWins ? `, slash ${formatTon(verdict.slashAmount)}` : ''}`);
    ui.write(`  arbiters' fee to ${formatAddress(provider, verdict.feeTo)}; the verdict's deadline ${formatTime(verdict.deadline)}`);
    ui.write(`  signatures: arbiters ${indexes.join(', ')} (quorum ${terms.arbiterQuorum} of ${arbiters.size}), checked against the set of ${arbitersSource}`);
    ui.write(`  attached: verdict fee ${formatTon(value)} (what the Escrow does not charge comes back)`);
    const lostBefore = providerInfo.disputesLost;
    await sendAndCheck(
        provider,
        'SubmitVerdict',
        () => escrow.send(provider.sender(), { value }, submitVerdictMessage(signed, arbiters, newQueryId())),
        {
            effect: clientWins ? "the escrow closing and the Provider's slash" : 'the escrow closing',
            holds: async () =>
                !(await provider.isContractDeployed(address)) && (!clientWins || (await providerContract.getInfo()).disputesLost > lostBefore),
        },
    );

    const bond = terms.disputeBond;
    if (!clientWins) {
        const arbiterFee = (bond * terms.arbiterFeeBps) / BPS;
        const fee = protocolFee(info.amount, terms.protocolFeeBps);
        ui.write(`Verdict accepted: ProviderWins. The escrow released ${formatTon(info.amount)} as if undisputed and closed.`);
        ui.write(`  to the payout ${formatAddress(provider, terms.payout)}: ${formatTon(info.amount - fee)} for the job and ${formatTon(bond - arbiterFee)} of the bond`);
        ui.write(`  arbiters' fee (${terms.arbiterFeeBps} bps of the bond ${formatTon(bond)}) to ${formatAddress(provider, verdict.feeTo)}: ${formatTon(arbiterFee)}`);
        ui.write(`  protocol fee (${terms.protocolFeeBps} bps) to the treasury ${formatAddress(provider, terms.treasury)}: ${formatTon(fee)}`);
        ui.write(`  to the client ${formatAddress(provider, info.client)}: the rest of its ${formatTon(balance)}, less the closing messages' fees`);
        return;
    }
    const after = await providerContract.getInfo();
    const slashed = providerInfo.stake - after.stake;
    const s = providerInfo.snapshot;
    ui.write(`Verdict accepted: ClientWins. The escrow closed and returned everything (${formatTon(balance)}, bond included) to the client ${formatAddress(provider, info.client)}.`);
    ui.write(
        `  slash requested: ${formatTon(verdict.slashAmount)}; the Provider ${formatAddress(provider, info.provider)} slashed ${formatTon(slashed)}: ` +
            `stake ${formatTon(providerInfo.stake)} -> ${formatTon(after.stake)}`,
    );
    // As the Provider splits it: the arbiters' fee (the bond's share, as had the
    // provider won) first, then the client's share of the rest.
    const arbiterFee = min((bond * terms.arbiterFeeBps) / BPS, slashed);
    ui.write(`  arbiters' fee (${terms.arbiterFeeBps} bps of the bond ${formatTon(bond)}) to ${formatAddress(provider, verdict.feeTo)}: ${formatTon(arbiterFee)}`);
    if (s !== null) {
        const compensation = ((slashed - arbiterFee) * s.clientCompensationBps) / BPS;
        ui.write(`  compensation (${s.clientCompensationBps} bps of the rest) to the client: ${formatTon(compensation)}`);
        ui.write(`  to the treasury ${formatAddress(provider, s.treasury)}: ${formatTon(slashed - arbiterFee - compensation)}`);
    }
    if (after.status === STATUS_JAILED && after.jailReason === JAIL_STAKE_BELOW_MINIMUM && providerInfo.status !== STATUS_JAILED) {
        ui.write('  the Provider is now Jailed: its stake is below the minimum');
    }
}
