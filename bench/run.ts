// `npm run bench`: gas and fees of one whole escrow lifecycle (open, engage,
// receipt, release) on @ton/sandbox, printed as a table and written to
// bench/results.json as {name, value, unit, config} entries; then the gas
// and fee tables of README.md and docs/SPEC.md are rendered from it
// (bench/tables.ts, as `npm run tables` does).
//
// Configs: "sandbox" is @ton/sandbox 0.41's default (400 nanoton/gas on the
// basechain); "mainnet" is the config committed in bench/mainnet-config.json
// by `npm run bench:fetch-config`, set with blockchain.setConfig. Without that
// file only the sandbox entries are written, and the run says so.
//
// The `runner` section measures receipts signed and verified per second on one
// core (this process) through wrappers/receipt.ts's fast path, next to bare
// ed25519 on the same core; bench/receiptRate.ts says how. Config "one core".
// It also measures paid requests per second end to end through one runner on
// the sandbox, and where their time goes (bench/runnerE2e.ts). Config "sandbox".
//
// The `channel` section (issue 6) prices a payment channel per request for 1,
// 10, 100, 1,000 and 10,000 requests per claim at each config, next to the
// escrow lifecycle's fee (bench/channelFees.ts).
import { writeFileSync } from 'fs';
import path from 'path';
import { createHash } from 'crypto';
import { toNano } from '@ton/core';
import { Blockchain, SendMessageResult } from '@ton/sandbox';
import { Cell } from '@ton/core';
import { ALLOWLIST_MEASUREMENT, ALLOWLIST_MODEL, ALLOWLIST_VERIFIER, Registry } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { Escrow } from '../wrappers/Escrow';
import { defaultParams } from '../wrappers/params';
import { modelHash, registerProviderMessage, signStatement } from '../wrappers/attestation';
import { keyPairFromSeed } from '../wrappers/ed25519';
import { signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { basechainGasPrice, loadMainnetConfig } from './mainnetConfig';
import { measureReceiptRates } from './receiptRate';
import { formatE2eReport, measureRunnerEndToEnd } from './runnerE2e';
import { feePerRequest, formatChannelFees, gasPerRequest, measureChannelFees } from './channelFees';
import { updateDocuments } from './tables';

interface Result {
    name: string;
    value: number;
    unit: string;
    config: string;
}

const key = (label: string) => keyPairFromSeed(createHash('sha256').update(`chrysalis-bench:${label}`).digest());

function gasAndFees(r: SendMessageResult): { gas: bigint; fees: bigint } {
    let gas = 0n;
    let fees = 0n;
    // The first transaction is the sender's wallet: not part of the protocol's cost.
    for (const tx of r.transactions.slice(1)) {
        const d = tx.description;
        if (d.type === 'generic' && d.computePhase.type === 'vm') gas += d.computePhase.gasUsed;
        fees += tx.totalFees.coins;
    }
    for (const tx of r.transactions) {
        for (const m of tx.outMessages.values()) if (m.info.type === 'internal') fees += m.info.forwardFee;
    }
    return { gas, fees };
}

async function lifecycle(config: string, configCell?: Cell): Promise<Result[]> {
    const chain = await Blockchain.create();
    if (configCell !== undefined) chain.setConfig(configCell);
    chain.now = 1_800_000_000;
    const governance = await chain.treasury('governance');
    const owner = await chain.treasury('provider');
    const client = await chain.treasury('client');
    const params = defaultParams(governance.address);
    const registry = chain.openContract(await Registry.fromInit(governance.address, params, 0n));
    await registry.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
    const verifier = key('verifier');
    const model = modelHash('bench-model', 'v1', '0'.repeat(64));
    for (const [list, entry] of [
        [ALLOWLIST_VERIFIER, verifier.publicKeyInt],
        [ALLOWLIST_MEASUREMENT, 1n],
        [ALLOWLIST_MODEL, model],
    ] as const) {
        await registry.send(governance.getSender(), { value: toNano('0.1') }, { $$type: 'AllowlistAdd', queryId: 0n, list, entry });
    }
    chain.now += Number(params.timelock);
    const enclave = key('enclave');
    const statement = signStatement(
        {
            registry: registry.address,
            providerOwner: owner.address,
            issuedAt: chain.now - 1,
            validUntil: chain.now + 86400,
            models: [model],
            enclave: { signingKey: enclave.publicKeyInt, encryptionKey: 2n, measurement: 1n, reportHash: 3n },
        },
        verifier,
    );
    const stake = params.minProviderStake;
    await registry.send(owner.getSender(), { value: stake + (await registry.getAttestationFee()) }, registerProviderMessage(statement, stake));
    const provider = chain.openContract(Provider.fromAddress(await registry.getProviderAddress(owner.address)));

    const escrow = chain.openContract(await Escrow.fromInit(client.address, provider.address, 1n));
    const maxAmount = toNano('1');
    const steps: [string, SendMessageResult][] = [];
    steps.push([
        'open + engage',
        await escrow.send(client.getSender(), { value: maxAmount + (await provider.getEscrowOpenFee()) }, {
            $$type: 'OpenEscrow',
            queryId: 0n,
            requestHash: 1n,
            modelHash: model,
            maxAmount,
            deadline: BigInt(chain.now + 3600),
        }),
    ]);
    const trigger = await escrow.getTriggerFee();
    const receipt = signReceipt(
        { escrow: escrow.address, engageId: (await escrow.getInfo()).engageId, requestHash: 1n, responseHash: 2n, modelHash: model, inputUnits: 100n, outputUnits: 400n, amount: maxAmount, finishedAt: chain.now },
        enclave,
    );
    steps.push(['receipt', await escrow.send(owner.getSender(), { value: trigger }, submitReceiptMessage(receipt))]);
    chain.now += Number(params.disputeWindow);
    steps.push(['release', await escrow.send(owner.getSender(), { value: trigger }, { $$type: 'Release', queryId: 0n })]);

    let totalGas = 0n;
    let totalFees = 0n;
    console.log(`Escrow lifecycle (config: ${config}, basechain gas price ${basechainGasPrice(chain.config)} nanoton/gas)`);
    console.log('  step              gas       fees (TON)');
    for (const [name, r] of steps) {
        if (r.transactions.some((tx) => tx.description.type === 'generic' && tx.description.aborted)) throw new Error(`${name} failed`);
        const { gas, fees } = gasAndFees(r);
        totalGas += gas;
        totalFees += fees;
        console.log(`  ${name.padEnd(14)} ${gas.toString().padStart(7)}   ${(Number(fees) / 1e9).toFixed(6)}`);
    }
    console.log(`  ${'total'.padEnd(14)} ${totalGas.toString().padStart(7)}   ${(Number(totalFees) / 1e9).toFixed(6)}   (target: under 30,000 gas)\n`);
    return [
        { name: 'escrow.lifecycle.gas', value: Number(totalGas), unit: 'gas', config },
        { name: 'escrow.lifecycle.fee', value: Number(totalFees), unit: 'nanoton', config },
    ];
}

/** Goals from issue 5 ("Figures"): fast-path receipts against bare ed25519 on the same core. */
const SIGN_RATIO_GOAL = 0.7;
const VERIFY_RATIO_GOAL = 0.85;

function runnerReceipts(): Result[] {
    const r = measureReceiptRates();
    const perSecond = (v: number) => Math.round(v).toLocaleString('en-US').padStart(9);
    const verdict = (ratio: number, goal: number) => `${ratio.toFixed(3)} of bare (goal ${goal}: ${ratio >= goal ? 'met' : 'NOT met'})`;
    console.log(`Runner receipts (one core, Node ${process.version}, CPU time, median of ${r.rounds} rounds of ${r.sliceMs} ms per workload in interleaved chunks)`);
    console.log(`  ed25519 sign, bare                    ${perSecond(r.ed25519SignPerSecond)} /s`);
    console.log(`  receipts hashed + signed (fast path)  ${perSecond(r.receiptsSignedPerSecond)} /s   ${verdict(r.signedToBareSign, SIGN_RATIO_GOAL)}`);
    console.log(`  ed25519 verify, bare                  ${perSecond(r.ed25519VerifyPerSecond)} /s`);
    console.log(`  receipts hashed + verified (fast)     ${perSecond(r.receiptsVerifiedPerSecond)} /s   ${verdict(r.verifiedToBareVerify, VERIFY_RATIO_GOAL)}`);
    console.log('  for comparison, the generic cell builder (@ton/core):');
    console.log(`    built + hashed + signed (signReceipt) ${perSecond(r.genericSignedPerSecond)} /s   ${(r.genericSignedPerSecond / r.ed25519SignPerSecond).toFixed(3)} of bare sign`);
    console.log(`    built + hashed (buildReceipt().hash()) ${perSecond(r.genericHashedPerSecond)} /s   vs receiptHashOf ${perSecond(r.fastHashedPerSecond).trim()} /s\n`);
    const config = 'one core';
    return [
        { name: 'runner.receipts_signed_per_second', value: Math.round(r.receiptsSignedPerSecond), unit: 'per second', config },
        { name: 'runner.receipts_verified_per_second', value: Math.round(r.receiptsVerifiedPerSecond), unit: 'per second', config },
        { name: 'runner.ed25519_sign_per_second', value: Math.round(r.ed25519SignPerSecond), unit: 'per second', config },
        { name: 'runner.ed25519_verify_per_second', value: Math.round(r.ed25519VerifyPerSecond), unit: 'per second', config },
        { name: 'runner.receipts_signed_to_ed25519_sign', value: Number(r.signedToBareSign.toFixed(3)), unit: 'ratio', config },
        { name: 'runner.receipts_verified_to_ed25519_verify', value: Number(r.verifiedToBareVerify.toFixed(3)), unit: 'ratio', config },
    ];
}

// Issue 5 ("Figures"): end-to-end requests per second through one runner
// against the sandbox, with where the time goes; bench/runnerE2e.ts says how.
// Config "sandbox": wall time on this machine, the chain embedded in this process.
async function runnerEndToEnd(): Promise<Result[]> {
    const r = await measureRunnerEndToEnd();
    for (const line of formatE2eReport(r)) console.log(line);
    console.log('');
    const config = 'sandbox';
    const perPhase = (['open', 'serve', 'verify', 'submit', 'release'] as const).map(
        (p): Result => ({ name: `runner.e2e.${p}_ms_per_request`, value: Number(r.phases[p].toFixed(3)), unit: 'ms per request', config }),
    );
    return [{ name: 'runner.e2e_requests_per_second', value: Number(r.requestsPerSecond.toFixed(1)), unit: 'per second', config }, ...perPhase];
}

// Issue 6 ("Figures"): a payment channel's fees and gas per request for 1 to
// 10,000 requests per claim, next to the escrow lifecycle's (same config,
// same accounting: gasAndFees); bench/channelFees.ts says what is measured
// and how the per-request figure is amortised.
async function channelFees(config: string, results: Result[], configCell?: Cell): Promise<Result[]> {
    const escrowOf = (name: string) => results.find((e) => e.name === name && e.config === config)?.value;
    const escrowFee = escrowOf('escrow.lifecycle.fee');
    const escrowGas = escrowOf('escrow.lifecycle.gas');
    if (escrowFee === undefined || escrowGas === undefined) throw new Error(`no escrow lifecycle figures for config ${config}`);
    const r = await measureChannelFees(gasAndFees, configCell);
    for (const line of formatChannelFees(config, r, { fee: escrowFee, gas: escrowGas })) console.log(line);
    console.log('');
    return r.lives.flatMap((l): Result[] => [
        { name: `channel.fee_per_request.${l.perClaim}`, value: Number(feePerRequest(l)), unit: 'nanoton', config },
        { name: `channel.gas_per_request.${l.perClaim}`, value: gasPerRequest(l), unit: 'gas', config },
    ]);
}

async function main() {
    const results = await lifecycle('sandbox');
    const mainnet = loadMainnetConfig();
    if (mainnet === null) {
        console.log(
            'No mainnet config: bench/mainnet-config.json is missing. Run `npm run bench:fetch-config` where toncenter.com is reachable, then commit the file.',
        );
    } else {
        console.log(`Mainnet config fetched ${mainnet.stored.fetchedAt} from ${mainnet.stored.source}`);
        results.push(...(await lifecycle('mainnet', mainnet.cell)));
    }
    results.push(...(await channelFees('sandbox', results)));
    if (mainnet !== null) results.push(...(await channelFees('mainnet', results, mainnet.cell)));
    results.push(...runnerReceipts());
    results.push(...(await runnerEndToEnd()));
    const out = path.join(__dirname, 'results.json');
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
    // The gas and fee tables of README.md and docs/SPEC.md follow the new figures (bench/tables.ts).
    const rewritten = updateDocuments({ check: false });
    console.log(rewritten.length > 0 ? `rewrote the gas and fee tables in ${rewritten.join(', ')}` : 'gas and fee tables already up to date');
}

main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
});
