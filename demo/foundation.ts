// `npm run demo`: Chrysalis on an embedded chain (@ton/sandbox, no network).
// Governance deploys a Registry and allowlists an enclave image, two models
// and a verifier key; a verifier signs an attestation statement; a provider
// registers with stake, is jailed when a model is revoked, re-attests, serves
// one paid request through an escrow, unbonds and withdraws. Every step prints its fees, and the run
// ends by checking that every nanoton is accounted for.
//
// Disputes, the enclave runner and channels join this demo as their
// issues land. Fees are at @ton/sandbox 0.41's default config (400 nanoton/gas
// on the basechain), which is dearer than mainnet's current one.
import { createHash } from 'crypto';
import { Address, fromNano, toNano } from '@ton/core';
import { Blockchain, SendMessageResult } from '@ton/sandbox';
import { ALLOWLIST_MEASUREMENT, ALLOWLIST_MODEL, ALLOWLIST_VERIFIER, JAIL_GOVERNANCE, Registry } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { Escrow } from '../wrappers/Escrow';
import { signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { defaultParams } from '../wrappers/params';
import { measurementHash, modelHash, reattestMessage, registerProviderMessage, signStatement } from '../wrappers/attestation';
import { keyPairFromSeed } from '../wrappers/ed25519';
import { exitCodeName, statusName } from '../wrappers/chrysalis';

const seed = (label: string) => keyPairFromSeed(createHash('sha256').update(`chrysalis-demo:${label}`).digest());
const ton = (n: bigint) => `${fromNano(n)} TON`;

class DemoError extends Error {}

async function main(): Promise<void> {
    const chain = await Blockchain.create();
    chain.now = Math.floor(Date.parse('2026-11-24T12:00:00Z') / 1000);
    const governance = await chain.treasury('governance');
    const treasury = await chain.treasury('treasury');
    const alice = await chain.treasury('alice (provider owner)');
    const everyone: { name: string; address: Address }[] = [
        { name: 'governance', address: governance.address },
        { name: 'treasury', address: treasury.address },
        { name: 'alice', address: alice.address },
    ];
    const balances = async () => {
        const out = new Map<string, bigint>();
        for (const a of everyone) out.set(a.name, (await chain.getContract(a.address)).balance);
        return out;
    };
    const start = await balances();
    /** Adds a party to the account, from its balance at this moment. */
    const join = async (name: string, address: Address) => {
        everyone.push({ name, address });
        start.set(name, (await chain.getContract(address)).balance);
    };
    let totalFees = 0n;

    /** Runs one step: prints what happened, its fees, and fails loudly if any transaction failed. */
    const step = async (title: string, send: () => Promise<SendMessageResult>, expectFailure?: bigint) => {
        const r = await send();
        let fees = 0n;
        for (const tx of r.transactions) {
            fees += tx.totalFees.coins;
            for (const m of tx.outMessages.values()) if (m.info.type === 'internal') fees += m.info.forwardFee;
        }
        totalFees += fees;
        const failed = r.transactions.find((tx) => tx.description.type === 'generic' && tx.description.aborted);
        const exit =
            failed && failed.description.type === 'generic' && failed.description.computePhase.type === 'vm'
                ? failed.description.computePhase.exitCode
                : undefined;
        if (expectFailure === undefined && failed) throw new DemoError(`${title}: failed with ${exitCodeName(exit ?? -1)}`);
        if (expectFailure !== undefined && exit !== Number(expectFailure)) {
            throw new DemoError(`${title}: expected ${exitCodeName(Number(expectFailure))}, got ${exit === undefined ? 'success' : exitCodeName(exit)}`);
        }
        const outcome = expectFailure !== undefined ? `  refused: ${exitCodeName(exit!)}, value bounced back` : '';
        console.log(`  ${title.padEnd(70)} fees ${ton(fees).padEnd(16)}${outcome}`);
    };

    console.log('Chrysalis foundation demo — embedded chain (@ton/sandbox), fees at the sandbox default config\n');

    // 1. Governance deploys the Registry.
    const verifier = seed('verifier');
    const params = defaultParams(treasury.address, [seed('arbiter0').publicKeyInt, seed('arbiter1').publicKeyInt, seed('arbiter2').publicKeyInt]);
    const registry = chain.openContract(await Registry.fromInit(governance.address, params, 0n));
    await join('registry', registry.address);
    console.log(`Registry ${registry.address.toString()}`);
    console.log(`  min stake ${ton(params.minProviderStake)}, unbonding ${Number(params.unbondingPeriod) / 86400} d, timelock ${Number(params.timelock) / 3600} h, 2-of-3 arbiters\n`);
    await step('governance deploys the Registry', () =>
        registry.send(governance.getSender(), { value: toNano('0.5') }, { $$type: 'DeployRegistry', queryId: 0n }),
    );

    await join('alice provider', await registry.getProviderAddress(alice.address));

    // 2. Allowlists: the runner's image, two models, the verifier's key. Additions wait out the timelock.
    const measurement = measurementHash(Buffer.alloc(48, 0xaa), [Buffer.alloc(48, 1), Buffer.alloc(48, 2), Buffer.alloc(48, 3), Buffer.alloc(48, 4)]);
    const llama = modelHash('llama-3.1-8b-instruct', '0e9e39f', 'f'.repeat(64));
    const qwen = modelHash('qwen2.5-7b-instruct', 'a09a354', 'e'.repeat(64));
    const admin = await registry.getAdminFee();
    for (const [name, list, entry] of [
        ['enclave image (measurement)', ALLOWLIST_MEASUREMENT, measurement],
        ['model llama-3.1-8b-instruct', ALLOWLIST_MODEL, llama],
        ['model qwen2.5-7b-instruct', ALLOWLIST_MODEL, qwen],
        ['attestation verifier key', ALLOWLIST_VERIFIER, verifier.publicKeyInt],
    ] as const) {
        await step(`governance allowlists the ${name}`, () =>
            registry.send(governance.getSender(), { value: admin }, { $$type: 'AllowlistAdd', queryId: 0n, list, entry }),
        );
    }
    chain.now += Number(params.timelock);
    console.log(`  … ${Number(params.timelock) / 3600} h later the additions are active\n`);

    // 3. The verifier checks Alice's enclave (off-chain) and signs a statement; Alice registers.
    const enclave = seed('alice-enclave');
    const claims = {
        registry: registry.address,
        providerOwner: alice.address,
        issuedAt: chain.now - 30,
        validUntil: chain.now + 86400,
        models: [llama, qwen],
        enclave: { signingKey: enclave.publicKeyInt, encryptionKey: seed('alice-x25519').publicKeyInt, measurement, reportHash: 0x5eedn },
    };
    const fee = await registry.getAttestationFee();
    const stake = toNano('150');
    const forged = signStatement(claims, seed('not-a-verifier'));
    await step('alice registers with a statement from an unknown key', () =>
        registry.send(alice.getSender(), { value: stake + fee }, registerProviderMessage(forged, stake)),
        1150n,
    );
    await step(`alice registers: ${ton(stake)} stake + ${ton(fee)} fee`, () =>
        registry.send(alice.getSender(), { value: stake + fee }, registerProviderMessage(signStatement(claims, verifier), stake)),
    );
    const provider = chain.openContract(Provider.fromAddress(await registry.getProviderAddress(alice.address)));
    const show = async (when: string) => {
        const info = await provider.getInfo();
        console.log(
            `  -> provider ${when}: ${statusName(info.status)}, stake ${ton(info.stake)}, ${info.modelCount} models, ` +
                `accepts jobs: ${await provider.getAcceptsJobs()}, completed jobs: ${info.completedJobs}\n`,
        );
    };
    await show('after registration');

    // 4. Governance revokes a model (at once) and jails Alice; she re-attests with what is still allowed.
    await step('governance revokes qwen2.5-7b-instruct', () =>
        registry.send(governance.getSender(), { value: admin }, { $$type: 'AllowlistRevoke', queryId: 0n, list: ALLOWLIST_MODEL, entry: qwen }),
    );
    await step('governance jails alice (she served the revoked model)', async () =>
        registry.send(governance.getSender(), { value: await registry.getJailFee() }, {
            $$type: 'JailProvider',
            queryId: 0n,
            providerOwner: alice.address,
            reason: JAIL_GOVERNANCE,
        }),
    );
    await show('after jailing');
    const renewed = signStatement({ ...claims, models: [llama], issuedAt: chain.now - 10, validUntil: chain.now + 86400 }, verifier);
    await step('alice re-attests serving llama only', () => registry.send(alice.getSender(), { value: fee }, reattestMessage(renewed)));
    await show('after re-attestation');

    // 5. A client pays for one request through an escrow; Alice's enclave signs the receipt.
    const client = await chain.treasury('client');
    await join('client', client.address);
    const escrow = chain.openContract(await Escrow.fromInit(client.address, provider.address, 1n));
    await join('escrow', escrow.address);
    const maxAmount = toNano('2');
    const requestHash = 0xc0ffeen;
    await step(`client opens an escrow: up to ${ton(maxAmount)} for one llama request`, async () =>
        escrow.send(client.getSender(), { value: maxAmount + (await provider.getEscrowOpenFee()) }, {
            $$type: 'OpenEscrow',
            queryId: 0n,
            requestHash,
            modelHash: llama,
            maxAmount,
            deadline: BigInt(chain.now! + 3600),
        }),
    );
    const charged = toNano('1.25');
    const receipt = signReceipt(
        { escrow: escrow.address, engageId: (await escrow.getInfo()).engageId, requestHash, responseHash: 0xfeedn, modelHash: llama, inputUnits: 512n, outputUnits: 2048n, amount: charged, finishedAt: chain.now },
        enclave,
    );
    const trigger = await escrow.getTriggerFee();
    await step(`alice's runner submits the enclave-signed receipt (${ton(charged)})`, () =>
        escrow.send(alice.getSender(), { value: trigger }, submitReceiptMessage(receipt)),
    );
    chain.now += Number(params.disputeWindow);
    console.log(`  … ${Number(params.disputeWindow) / 3600} h dispute window later`);
    await step('alice releases the escrow: payment, protocol fee, change to the client', () =>
        escrow.send(alice.getSender(), { value: trigger }, { $$type: 'Release', queryId: 0n }),
    );
    await show('after the job (its one-day attestation has now lapsed)');

    // 6. Alice leaves: unbond, wait the unbonding period, withdraw.
    const simple = await provider.getSimpleFee();
    await step('alice requests unbonding', () => provider.send(alice.getSender(), { value: simple }, { $$type: 'RequestUnbond', queryId: 0n }));
    await step('alice withdraws at once', () => provider.send(alice.getSender(), { value: simple }, { $$type: 'WithdrawStake', queryId: 0n }), 1202n);
    chain.now += Number(params.unbondingPeriod);
    console.log(`  … ${Number(params.unbondingPeriod) / 86400} days later`);
    await step('alice withdraws her stake', () => provider.send(alice.getSender(), { value: simple }, { $$type: 'WithdrawStake', queryId: 0n }));
    await show('after withdrawal');

    // 7. The account.
    const end = await balances();
    console.log('Balances (TON)                 before              after             change');
    let change = 0n;
    for (const a of everyone) {
        const before = start.get(a.name) ?? 0n;
        const after = end.get(a.name)!;
        change += after - before;
        console.log(`  ${a.name.padEnd(20)} ${fromNano(before).padStart(18)} ${fromNano(after).padStart(18)} ${fromNano(after - before).padStart(18)}`);
    }
    console.log(`  network fees ${ton(totalFees)}`);
    if (change + totalFees !== 0n) throw new DemoError(`unaccounted: ${change + totalFees} nanoton`);
    console.log('  every nanoton accounted for: balance changes + fees = 0');
}

main().catch((e: unknown) => {
    console.error(e instanceof DemoError ? `demo failed: ${e.message}` : e);
    process.exit(1);
});
