// A running marketplace for the end-to-end suites: a local Chrysalis
// deployment (runner/localnet.ts), runners registered through the verifier
// service, and a client SDK — all on one embedded chain.
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import path from 'path';
import { Address, Transaction, toNano } from '@ton/core';
import pino from 'pino';
import { modelHash } from '../../wrappers/attestation';
import { ChainWallet, SandboxChain } from '../../runner/chain';
import { allowlist, allowlistRunner, createLocalNet, labelKey, LocalNet, registerProvider } from '../../runner/localnet';
import { Model, ModelSet, ReferenceModel } from '../../runner/models';
import { RunnerNode, RunnerNodeOptions } from '../../runner/node';
import { ChrysalisClient } from '../../sdk/client';
import { ChannelClient } from '../../sdk/channel';
import { PRICES } from '../../demo/marketplace';
import { ALLOWLIST_MODEL } from '../../wrappers/Registry';

export const T0 = 1_800_000_000;
export const STAKE = toNano('150');
export const REFERENCE = new ReferenceModel();
/** Allowlisted and attested with every provider, but served by no runner. */
export const UNSERVED_MODEL = modelHash('attested-but-unserved', 'v1', 'c'.repeat(64));
export const silent = pino({ level: 'silent' });

export interface Market {
    net: LocalNet;
    chain: SandboxChain;
    client: ChainWallet;
    sdk: ChrysalisClient;
    /** The same client's payment channels. */
    channels: ChannelClient;
    dataRoot: string;
    providers: Record<string, { owner: ChainWallet; hot: ChainWallet; node: RunnerNode; provider: Address }>;
    /** A runner node for `name` over the same data directory (a restart). */
    restart(name: string, extra?: Partial<RunnerNodeOptions>): Promise<RunnerNode>;
    close(): Promise<void>;
}

export interface MarketProvider {
    name: string;
    models?: Model[];
    node?: Partial<RunnerNodeOptions>;
}

/** Deploys, allowlists one runner image and the models, and registers each provider with a running runner. */
export async function startMarket(specs: MarketProvider[]): Promise<Market> {
    const net = await createLocalNet({ now: T0, label: 'e2e' });
    const { chain } = net;
    const dataRoot = mkdtempSync(path.join(tmpdir(), 'chrysalis-e2e-'));
    const nodeOptions = (name: string, hot: ChainWallet, models: Model[], extra: Partial<RunnerNodeOptions> = {}): RunnerNodeOptions => ({
        chain,
        wallet: hot,
        dataDir: path.join(dataRoot, name),
        sealingKey: labelKey(`e2e:${name}:sealing`).seed,
        platform: net.vendor.platform,
        models: new ModelSet(models),
        prices: PRICES,
        logger: silent,
        ...extra,
    });
    const providers: Market['providers'] = {};
    const pending: { spec: MarketProvider; owner: ChainWallet; hot: ChainWallet; node: RunnerNode }[] = [];
    for (const spec of specs) {
        const owner = await chain.wallet(`e2e:${spec.name}:owner`, toNano('1000'));
        const hot = await chain.wallet(`e2e:${spec.name}:hot`, toNano('100'));
        pending.push({ spec, owner, hot, node: new RunnerNode(nodeOptions(spec.name, hot, spec.models ?? [REFERENCE], spec.node)) });
    }
    const images = [...new Set(pending.map((p) => p.node.measurement.toString('hex')))];
    const servedModels = (spec: MarketProvider) => (spec.models ?? [REFERENCE]).map((m) => m.modelHash);
    const allModels = [...new Set(pending.flatMap((p) => servedModels(p.spec)))];
    await allowlist(net, [[ALLOWLIST_MODEL, UNSERVED_MODEL], ...allModels.map((m): [bigint, bigint] => [ALLOWLIST_MODEL, m])]);
    for (const image of images) await allowlistRunner(net, BigInt('0x' + image), []);
    for (const { spec, owner, hot, node } of pending) {
        const { statement } = await net.verifier.attest(node.tee, owner.address, [...servedModels(spec), UNSERVED_MODEL]);
        const { provider } = await registerProvider(net, owner, statement, STAKE);
        await node.attach(provider);
        providers[spec.name] = { owner, hot, node, provider };
    }
    const client = await chain.wallet('e2e:client', toNano('1000'));
    const sdk = new ChrysalisClient({ chain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier });
    const channels = new ChannelClient({ chain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier });
    return {
        net,
        chain,
        client,
        sdk,
        channels,
        dataRoot,
        providers,
        async restart(name, extra = {}) {
            const p = providers[name];
            const spec = specs.find((s) => s.name === name)!;
            const node = new RunnerNode(nodeOptions(name, p.hot, spec.models ?? [REFERENCE], { ...spec.node, ...extra }));
            await node.attach(p.provider);
            p.node = node;
            return node;
        },
        async close() {
            for (const p of Object.values(providers)) await p.node.close().catch(() => undefined);
            rmSync(dataRoot, { recursive: true, force: true });
        },
    };
}

/** The request every test asks unless it needs another. */
export function question(content = 'What does an escrow do?', maxOutputTokens = 32) {
    return { model: REFERENCE.name, messages: [{ role: 'user' as const, content }], maxOutputTokens };
}

/** Transactions at `escrow` whose inbound message has opcode `op` and succeeded. */
export async function successfulCalls(chain: SandboxChain, escrow: Address, op: number): Promise<Transaction[]> {
    const txs = await chain.transactionsSince(escrow, 0n, 1000);
    return txs.filter((tx) => {
        const body = tx.inMessage?.body.beginParse();
        if (!body || body.remainingBits < 32 || body.preloadUint(32) !== op) return false;
        return tx.description.type === 'generic' && tx.description.computePhase.type === 'vm' && tx.description.computePhase.success;
    });
}

export const OP = { submitReceipt: 0x30000003, release: 0x30000004, faultReward: 0x20000042, claimChannel: 0x40000003, channelPayment: 0x4000000b, channelRefund: 0x4000000c, slashPayment: 0x20000043 };

