// The marketplace demo, end to end on the embedded chain (@ton/sandbox, no
// network): a Registry under governance; a verifier; four providers whose
// runners serve encrypted requests through escrows and a payment channel; a
// client that checks each provider before paying and each answer after; a
// channel serving many requests with one claim, its fee per request next to
// the escrow flow's; one dispute decided by the arbiters; one equivocation
// slashed by proof. Every step prints its fees, and the account at the end
// checks that every nanoton is accounted for. `runMarketplace` returns the
// account so tests can assert on it.
//
// Fees are at @ton/sandbox 0.41's default config (400 nanoton/gas on the
// basechain), dearer than mainnet's current one.
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { Address, fromNano, toNano } from '@ton/core';
import pino from 'pino';
import { Provider } from '../wrappers/Provider';
import { Registry } from '../wrappers/Registry';
import { arbiterDictionary } from '../wrappers/params';
import { statusName } from '../wrappers/chrysalis';
import { bufferToBigInt } from '../wrappers/ed25519';
import { ChainWallet, SendReport } from '../runner/chain';
import { allowlistRunner, createLocalNet, labelKey, registerProvider } from '../runner/localnet';
import { InferenceRequest, Model, ModelSet, ReferenceModel } from '../runner/models';
import { RunnerNode } from '../runner/node';
import { Prices } from '../runner/protocol';
import { DEFAULT_CHANNEL_CLAIM_THRESHOLD } from '../runner/channels';
import { ChrysalisClient, ClientError, DISPUTE_REASONS, JobResult, receiptOfAnswer } from '../sdk/client';
import { judgeDispute, signJudgement } from '../sdk/arbiter';
import { ChannelClient, ChannelError } from '../sdk/channel';
import { parseChannelReceipt } from '../wrappers/channelReceipt';
import { forgetfulStore, LazyModel } from './adversaries';

/** 2026-11-24 12:00 UTC: the demo's clock starts here. */
export const DEMO_START = Math.floor(Date.parse('2026-11-24T12:00:00Z') / 1000);
export const PRICES: Prices = { perInputUnit: toNano('0.0001'), perOutputUnit: toNano('0.0004') };
const STAKE = toNano('150');
const MAX_AMOUNT = toNano('0.05');
const VERDICT_SLASH = toNano('10');
/** The channel: one deposit for a chat session of many small requests. */
const CHANNEL_DEPOSIT = toNano('2');
const CHANNEL_REQUESTS = 100;
const CLAIM_CHANNEL_OP = 0x40000003;

/** What the demo did, for tests. */
export interface MarketplaceAccount {
    steps: { title: string; fees: bigint }[];
    balances: { name: string; before: bigint; after: bigint }[];
    totalFees: bigint;
    unaccounted: bigint;
    served: { provider: string; amount: bigint; text: string }[];
    providers: Record<string, { status: bigint; stake: bigint; completedJobs: bigint; disputesLost: bigint; keyBurned: boolean }>;
    dispute: { judgement: string; escrow: string };
    equivocation: { first: string; second: string };
    /** The payment channel's whole life (Carol with Dave), next to the escrow flow's fee per request. */
    channel: {
        address: string;
        provider: string;
        requests: number;
        /** Successful ClaimChannel transactions over the channel's life. */
        claims: number;
        deposit: bigint;
        /** The final receipt's cumulative amount: what the requests cost. */
        amount: bigint;
        /** What the provider's payout address and the treasury got from it (amount = payout + protocolFee). */
        payout: bigint;
        protocolFee: bigint;
        /** Network fees of the channel's steps: opening, the requests (none), the claim at close. */
        fees: { open: bigint; requests: bigint; close: bigint; total: bigint };
        feePerRequest: bigint;
        /** Network fees of Alice's escrow requests (open, submit, release) per request. */
        escrowFeePerRequest: bigint;
    };
}

export class DemoError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'DemoError';
    }
}

const ton = (n: bigint) => `${fromNano(n)} TON`;

const QUESTIONS: string[] = [
    'Summarise the TON whitepaper in one sentence.',
    'Translate "confidential inference" into French.',
    'What is a payment channel, in ten words?',
];

function ask(content: string): InferenceRequest {
    return { model: 'chrysalis-reference', messages: [{ role: 'user', content }], maxOutputTokens: 48 };
}

/** The providers: Alice (honest, escrows), Bob (a lazy model), Mallory (equivocates), Dave (honest, the payment channel). */
const PROVIDERS = ['alice', 'bob', 'mallory', 'dave'] as const;

const CHAT = ['Translate "good morning" into German.', 'Summarise: the meeting moved to Friday.', 'Is 91 a prime number?', 'Give a synonym for "swift".'];

/** One small chat request of the channel's session. */
function chat(i: number): InferenceRequest {
    return { model: 'chrysalis-reference', messages: [{ role: 'user', content: `${CHAT[i % CHAT.length]} (#${i + 1})` }], maxOutputTokens: 8 };
}

/** Runs the demo; `print` gets each line of the readable account. */
export async function runMarketplace(print: (line: string) => void = console.log): Promise<MarketplaceAccount> {
    const dataRoot = mkdtempSync(path.join(tmpdir(), 'chrysalis-demo-'));
    const logger = pino({ level: 'silent' });
    const nodes: RunnerNode[] = [];
    try {
        print('Chrysalis marketplace demo — embedded chain (@ton/sandbox), fees at the sandbox default config\n');
        const net = await createLocalNet({ now: DEMO_START, arbiterCount: 3, label: 'demo' });
        const { chain } = net;
        print(`Registry ${net.registry.toString()} deployed by governance`);
        print(`  min stake ${ton(net.params.minProviderStake)}, dispute window ${Number(net.params.disputeWindow) / 3600} h, dispute bond ${ton(net.params.disputeBond)}, arbiters 2 of 3\n`);

        // ---- the ledger: every send's fees, per step ----
        const steps: { title: string; fees: bigint }[] = [];
        let current: { title: string; fees: bigint } | undefined;
        const send = chain.send.bind(chain);
        chain.send = async (from, message) => {
            const report: SendReport = await send(from, message);
            if (current) current.fees += report.fees ?? 0n;
            else throw new DemoError('a send outside any step would escape the account');
            return report;
        };
        const step = async <T>(title: string, action: () => Promise<T>): Promise<T> => {
            current = { title, fees: 0n };
            try {
                return await action();
            } finally {
                steps.push(current);
                print(`  ${title.padEnd(74)} fees ${ton(current.fees)}`);
                current = undefined;
            }
        };

        // ---- parties ----
        const wallet = (name: string) => chain.wallet(`demo:${name}`, toNano('1000'));
        const parties = new Map<string, Address>([
            ['governance', net.governance.address],
            ['treasury', net.treasury.address],
            ['registry', net.registry],
        ]);
        const owners: Record<string, ChainWallet> = {};
        const hot: Record<string, ChainWallet> = {};
        for (const name of PROVIDERS) {
            owners[name] = await wallet(`${name} (owner)`);
            hot[name] = await wallet(`${name} (runner wallet)`);
            parties.set(`${name} owner`, owners[name].address);
            parties.set(`${name} runner wallet`, hot[name].address);
        }
        const client = await wallet('carol (client)');
        const arbitersWallet = await wallet('arbiters');
        parties.set('carol (client)', client.address);
        parties.set('arbiters', arbitersWallet.address);
        const registry = Registry.fromAddress(net.registry);
        for (const name of PROVIDERS) {
            parties.set(`${name} provider`, await registry.getProviderAddress(chain.provider(net.registry), owners[name].address));
        }
        const escrows: Address[] = [];
        const channelAddresses: Address[] = [];
        const balances = async () => {
            const out = new Map<string, bigint>();
            for (const [name, a] of parties) out.set(name, await chain.balance(a));
            for (const e of escrows) out.set(`escrow ${e.toString().slice(-6)}`, await chain.balance(e));
            for (const c of channelAddresses) out.set(`channel ${c.toString().slice(-6)}`, await chain.balance(c));
            return out;
        };
        const before = await balances();

        // ---- runners: the same code and configuration, so one image ----
        const reference = new ReferenceModel();
        const modelsOf: Record<string, Model> = { alice: reference, bob: new LazyModel(), mallory: reference, dave: reference };
        for (const name of PROVIDERS) {
            const node = new RunnerNode({
                chain,
                wallet: hot[name],
                dataDir: path.join(dataRoot, name),
                sealingKey: labelKey(`demo:${name}:sealing`).seed,
                platform: net.vendor.platform,
                models: new ModelSet([modelsOf[name]]),
                prices: PRICES,
                logger,
                // Mallory's runner forgets what it signed: a retried request gets a second receipt.
                wrapStore: name === 'mallory' ? forgetfulStore : undefined,
            });
            nodes.push(node);
        }
        const measurement = bufferToBigInt(nodes[0].measurement);
        print('\nGovernance allowlists the runner image and the reference model; the timelock passes');
        await step(`governance allowlists image ${nodes[0].measurement.toString('hex').slice(0, 16)}… and model chrysalis-reference`, () =>
            allowlistRunner(net, measurement, [reference.modelHash]),
        );

        print('\nThe verifier challenges each enclave; each provider registers with its statement and stake');
        const providers: Record<string, Address> = {};
        for (const [i, name] of PROVIDERS.entries()) {
            const node = nodes[i];
            const { statement } = await net.verifier.attest(node.tee, owners[name].address, [reference.modelHash]);
            providers[name] = await step(`${name} registers: ${ton(STAKE)} stake, enclave ${node.tee.signingKey.toString('hex').slice(0, 12)}…`, async () => {
                const { provider } = await registerProvider(net, owners[name], statement, STAKE);
                return provider;
            });
            await node.attach(providers[name]);
        }
        const [alice, bob, mallory, dave] = nodes;

        const sdk = new ChrysalisClient({ chain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier });
        const served: MarketplaceAccount['served'] = [];
        const show = (who: string, r: JobResult) => {
            served.push({ provider: who, amount: r.fields.amount, text: r.result.text });
            print(`    answer: "${r.result.text.slice(0, 60)}…" — ${r.fields.inputUnits} in / ${r.fields.outputUnits} out units, ${ton(r.fields.amount)}`);
        };

        // ---- 1. paid requests to Alice ----
        print('\nCarol checks Alice before paying (registry, evidence for a fresh nonce, keys, allowlist)');
        const aliceHandle = await sdk.discover(owners.alice.address, alice.url);
        print(`  Alice's enclave verified: measurement allowlisted, keys match the chain, attestation valid until ${new Date(aliceHandle.attestationValidUntil * 1000).toISOString()}`);
        for (const q of QUESTIONS) {
            const result = await step(`carol pays up to ${ton(MAX_AMOUNT)} into an escrow and asks Alice: "${q.slice(0, 28)}…"`, () =>
                sdk.request(aliceHandle, ask(q), { maxAmount: MAX_AMOUNT }),
            );
            escrows.push(result.ticket.escrow);
            show('alice', result);
        }
        await step("alice's runner submits the three signed receipts", async () => expectCount(await alice.tick(), 'submitted', 3));

        // ---- 1b. a payment channel: many requests, one deposit, one claim ----
        print(`\nCarol opens a payment channel with Dave for a chat session: one deposit, ${CHANNEL_REQUESTS} small requests, one claim`);
        const channels = new ChannelClient({ chain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier });
        const daveHandle = await sdk.discover(owners.dave.address, dave.url);
        const channel = await step(`carol opens a channel with Dave: ${ton(CHANNEL_DEPOSIT)} deposit, one hour`, () =>
            channels.openChannel(daveHandle, { deposit: CHANNEL_DEPOSIT, expiresInSeconds: 3600 }),
        );
        channelAddresses.push(channel.address);
        await step(`carol sends ${CHANNEL_REQUESTS} requests off-chain; each answer brings the next receipt`, async () => {
            for (let i = 0; i < CHANNEL_REQUESTS; i++) {
                await channels.request(channel, chat(i));
            }
        });
        const latest = channel.latest!;
        print(`    every receipt checked: signed by Dave's enclave, seqno 1…${latest.seqno}, each chaining the last root; ${ton(channel.spent)} spent of ${ton(CHANNEL_DEPOSIT)}`);
        print(`    last answer: "${latest.result!.text.slice(0, 50)}…"`);
        await step(`dave's runner: ${ton(channel.spent)} unclaimed, under its ${ton(DEFAULT_CHANNEL_CLAIM_THRESHOLD)} claim threshold`, async () =>
            expectCount(await dave.tick(), 'claimsSent', 0),
        );
        const closed = await step("carol closes; dave's runner signs the final receipt and claims it, once", () => channels.close(channel));
        if (closed.kind !== 'closed') throw new DemoError(`the channel did not close cooperatively: ${closed.reason}`);
        await step("dave's runner sees the channel closed", async () => expectCount(await dave.tick(), 'channelsEnded', 1));
        const finalReceipt = parseChannelReceipt(closed.final.receipt);
        const claims = (await chain.transactionsSince(channel.address, 0n, 1000)).filter((tx) => {
            const body = tx.inMessage?.body.beginParse();
            const ok = tx.description.type === 'generic' && tx.description.computePhase.type === 'vm' && tx.description.computePhase.success && !tx.description.aborted;
            return ok && body !== undefined && body.remainingBits >= 32 && body.preloadUint(32) === CLAIM_CHANNEL_OP;
        }).length;
        const protocolFee = (finalReceipt.amount * net.params.protocolFeeBps) / 10000n;
        print(
            `  ${finalReceipt.requests} requests, ${claims} claim: dave's payout ${ton(finalReceipt.amount - protocolFee)}, treasury ${ton(protocolFee)}, ` +
                `the rest of the deposit back to carol`,
        );

        // ---- 2. a dispute: Bob's runner answers without running the model ----
        print('\nCarol asks Bob; his runner bills for an answer it did not compute');
        const bobHandle = await sdk.discover(owners.bob.address, bob.url);
        const bobJob = await step('carol opens an escrow with Bob and sends her request', () => sdk.request(bobHandle, ask(QUESTIONS[0]), { maxAmount: MAX_AMOUNT }));
        escrows.push(bobJob.ticket.escrow);
        show('bob', bobJob);
        await step("bob's runner submits its receipt", async () => expectCount(await bob.tick(), 'submitted', 1));
        const expected = await reference.complete({ ...ask(QUESTIONS[0]), maxOutputTokens: Math.min(48, bobJob.result.outputUnits) });
        if (expected.text === bobJob.result.text) throw new DemoError('the lazy model answered correctly');
        print('  carol re-runs the public reference model: the signed answer is not what it computes');
        const { evidence, evidenceHash } = await step(`carol disputes, posting the ${ton(net.params.disputeBond)} bond and hashing her evidence`, () =>
            sdk.dispute(bobJob.ticket, DISPUTE_REASONS.wrongOutput),
        );
        const judgement = await judgeDispute(chain, evidence, new ModelSet([reference]), { expectedEvidenceHash: evidenceHash });
        print(`  the arbiters open the job with Carol's one-time key and re-run the model: ${judgement.outcome} (${judgement.reason})`);
        const bobInfo = await sdk.escrowInfo(bobJob.ticket.escrow);
        const verdict = signJudgement(
            judgement,
            { escrow: bobJob.ticket.escrow, engageId: bobInfo.engageId, slashAmount: VERDICT_SLASH, deadline: Number(bobInfo.verdictBy), feeTo: arbitersWallet.address },
            new Map([
                [0, net.arbiters[0]],
                [2, net.arbiters[2]],
            ]),
        );
        await step(`carol submits the verdict signed by arbiters 0 and 2: Bob is slashed ${ton(VERDICT_SLASH)}`, () =>
            sdk.submitVerdict(bobJob.ticket.escrow, verdict, arbiterDictionary(net.arbiters.map((k) => k.publicKeyInt))),
        );
        await step("bob's runner sees the escrow closed", async () => bob.tick());

        // ---- 3. an equivocation: Mallory signs two receipts for one request ----
        print('\nCarol asks Mallory; the first answer is lost on the way, so she asks again');
        const malloryHandle = await sdk.discover(owners.mallory.address, mallory.url);
        const ticket = await step('carol opens an escrow with Mallory', () => sdk.open(malloryHandle, ask(QUESTIONS[1]), { maxAmount: MAX_AMOUNT }));
        escrows.push(ticket.escrow);
        await sdk.sendRequest(malloryHandle, ticket);
        const firstReceipt = receiptOfAnswer(ticket.answer!);
        const second = await sdk.sendRequest(malloryHandle, ticket);
        const secondReceipt = receiptOfAnswer(ticket.answer!);
        show('mallory', second);
        if (firstReceipt.hash.equals(secondReceipt.hash)) throw new DemoError('mallory did not equivocate');
        print('  two valid receipts, both signed by Mallory’s enclave, for the same request: equivocation');
        await step('carol proves the equivocation at Mallory’s Provider', () => sdk.proveEquivocation(providers.mallory, firstReceipt.signed, secondReceipt.signed));
        await step("mallory's runner submits its (first) receipt", async () => mallory.tick());

        // ---- 4. the dispute window passes: releases ----
        chain.blockchain.now! += Number(net.params.disputeWindow);
        print(`\n… ${Number(net.params.disputeWindow) / 3600} h later the dispute windows have passed`);
        await step("alice's runner releases her three escrows", async () => {
            await alice.tick();
            return alice.tick();
        });
        await step("mallory's runner releases hers", async () => {
            await mallory.tick();
            return mallory.tick();
        });

        // ---- fees per request: escrows next to the channel ----
        const feesOf = (prefix: string) => steps.filter((s) => s.title.startsWith(prefix)).reduce((sum, s) => sum + s.fees, 0n);
        const escrowFees = feesOf('carol pays up to') + feesOf("alice's runner submits") + feesOf("alice's runner releases");
        const escrowFeePerRequest = escrowFees / BigInt(QUESTIONS.length);
        const channelFees = {
            open: feesOf('carol opens a channel'),
            requests: feesOf(`carol sends ${CHANNEL_REQUESTS} requests`),
            close: feesOf("dave's runner: ") + feesOf('carol closes;') + feesOf("dave's runner sees"),
            total: 0n,
        };
        channelFees.total = channelFees.open + channelFees.requests + channelFees.close;
        const feePerRequest = channelFees.total / BigInt(CHANNEL_REQUESTS);
        print('\nNetwork fees per request');
        const ratio = Number((escrowFeePerRequest * 10n) / (feePerRequest === 0n ? 1n : feePerRequest)) / 10;
        print(`  ${'escrow: open, engage, submit the receipt, release'.padEnd(52)} ${ton(escrowFeePerRequest).padStart(18)}`);
        print(
            `  ${`channel: open, ${CHANNEL_REQUESTS} requests, one claim at close`.padEnd(52)} ${ton(feePerRequest).padStart(18)}` +
                `  (${ton(channelFees.total)} for the channel's whole life: ${ratio}× less per request)`,
        );

        // ---- the account ----
        const providersView: MarketplaceAccount['providers'] = {};
        print('\nProviders');
        for (const [i, name] of PROVIDERS.entries()) {
            const p = Provider.fromAddress(providers[name]);
            const info = await p.getInfo(chain.provider(providers[name]));
            const keyBurned = await p.getKeyBurned(chain.provider(providers[name]), bufferToBigInt(nodes[i].tee.signingKey));
            providersView[name] = { status: info.status, stake: info.stake, completedJobs: info.completedJobs, disputesLost: info.disputesLost, keyBurned };
            print(
                `  ${name.padEnd(8)} ${statusName(info.status).padEnd(8)} stake ${ton(info.stake).padEnd(12)} completed ${info.completedJobs}, disputes lost ${info.disputesLost}` +
                    (keyBurned ? ', enclave key burned' : ''),
            );
            print(`           jobs in its runner's store: ${JSON.stringify(nodes[i].store.counts())}`);
        }

        const after = await balances();
        const totalFees = steps.reduce((sum, s) => sum + s.fees, 0n);
        print(`\nBalances (TON)${' '.repeat(22)}before               after              change`);
        const rows: MarketplaceAccount['balances'] = [];
        let change = 0n;
        for (const [name, b] of before) rows.push({ name, before: b, after: after.get(name)! });
        for (const [name, a] of after) if (!before.has(name)) rows.push({ name, before: 0n, after: a });
        for (const r of rows) {
            change += r.after - r.before;
            print(`  ${r.name.padEnd(26)} ${fromNano(r.before).padStart(18)} ${fromNano(r.after).padStart(18)} ${fromNano(r.after - r.before).padStart(18)}`);
        }
        print(`  network fees ${ton(totalFees)}`);
        const unaccounted = change + totalFees;
        if (unaccounted !== 0n) throw new DemoError(`unaccounted: ${unaccounted} nanoton`);
        print('  every nanoton accounted for: balance changes + fees = 0');
        return {
            steps,
            balances: rows,
            totalFees,
            unaccounted,
            served,
            providers: providersView,
            dispute: { judgement: judgement.outcome, escrow: bobJob.ticket.escrow.toString() },
            equivocation: { first: firstReceipt.hash.toString('hex'), second: secondReceipt.hash.toString('hex') },
            channel: {
                address: channel.address.toString(),
                provider: 'dave',
                requests: Number(finalReceipt.requests),
                claims,
                deposit: CHANNEL_DEPOSIT,
                amount: finalReceipt.amount,
                payout: finalReceipt.amount - protocolFee,
                protocolFee,
                fees: channelFees,
                feePerRequest,
                escrowFeePerRequest,
            },
        };
    } catch (e) {
        if (e instanceof ClientError) throw new DemoError(`client: ${e.code}: ${e.message}`);
        if (e instanceof ChannelError) throw new DemoError(`channel: ${e.code}: ${e.message}`);
        throw e;
    } finally {
        for (const n of nodes) await n.close();
        rmSync(dataRoot, { recursive: true, force: true });
    }
}

function expectCount<T extends object>(report: T, key: keyof T, n: number): T {
    if (report[key] !== n) throw new DemoError(`expected ${String(key)} = ${n}, got ${JSON.stringify(report)}`);
    return report;
}

if (require.main === module) {
    runMarketplace().catch((e: unknown) => {
        console.error(e instanceof DemoError ? `demo failed: ${e.message}` : e);
        process.exit(1);
    });
}
