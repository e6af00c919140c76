// chrysalis-runner: a provider's enclave runner.
//
//   chrysalis-runner start  --config FILE    serve jobs (API + job loop) until SIGINT/SIGTERM
//   chrysalis-runner attest --config FILE --nonce HEX [--out FILE]
//                                            evidence for a verifier's challenge
//   chrysalis-runner status --config FILE    the job store's counts (and the Provider on a real chain)
//
// With "chain": {"kind": "sandbox"} `start` runs a whole local deployment in
// the process: it deploys a Registry, allowlists its own image and models,
// attests through a local verifier and registers with the minimum stake, so
// the API can be tried with curl and the SDK. Logs are JSON lines (pino) on
// stdout; progress of long steps goes to stderr.
import { Command } from 'commander';
import pino, { Logger } from 'pino';
import { writeFileSync } from 'fs';
import { Address } from '@ton/core';
import { mnemonicValidate } from '@ton/crypto';
import { Registry } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { statusName } from '../wrappers/chrysalis';
import { ChainBackend, ChainWallet, openChain, SandboxChain, TonClientChain } from './chain';
import { ConfigError, loadRunnerConfig, RunnerConfig, sealingKeyFrom } from './config';
import { allowlistRunner, createLocalNet, registerProvider, simulatedVendor, VerifierService } from './localnet';
import { modelFromConfig, ModelSet } from './models';
import { RunnerNode } from './node';
import { evidenceToJson } from './protocol';

/** The default timelock (wrappers/params.ts defaultParams), which a sandbox bootstrap waits out twice. */
const BOOTSTRAP_TIMELOCK = 86400;

/** One line that rewrites itself on a terminal, or a line per step in a log. */
export class Progress {
    constructor(
        private readonly label: string,
        private readonly total: number,
        private readonly out: NodeJS.WriteStream = process.stderr,
    ) {}

    step(done: number, what: string): void {
        const line = `${this.label} [${done}/${this.total}] ${what}`;
        if (this.out.isTTY) this.out.write(`\r\x1b[2K${line}${done === this.total ? '\n' : ''}`);
        else this.out.write(`${line}\n`);
    }
}

interface Opened {
    config: RunnerConfig;
    node: RunnerNode;
    chain: ChainBackend;
    provider: Address;
}

/** Opens the chain, the wallet, the enclave and the store; on a sandbox chain also deploys and registers. */
async function openRunner(file: string, logger: Logger, opts: { serve: boolean }): Promise<Opened> {
    const config = loadRunnerConfig(file);
    const models = new ModelSet(config.models.map((m) => modelFromConfig(m)));
    const sealingKey = sealingKeyFrom(process.env, config.sealingKeyEnv);
    const base = { dataDir: config.dataDir, sealingKey, models, prices: config.prices, logger, http: config.http, runner: { channelClaimThreshold: config.channelClaimThreshold } };
    if (config.chain.kind === 'sandbox') {
        const progress = new Progress('local chain', 5);
        progress.step(1, 'deploying a Registry');
        // Two timelocks pass during bootstrap (the verifier's allowlisting, then
        // this runner's): start that much in the past, so the chain's clock is
        // the wall clock when serving starts (clients check evidence freshness).
        const net = await createLocalNet({ now: Math.floor(Date.now() / 1000) - 2 * BOOTSTRAP_TIMELOCK });
        const hot = await net.chain.wallet('runner wallet');
        const owner = await net.chain.wallet('provider owner');
        // The configured vendor, as on a real chain (clients verify evidence against its root); the local verifier pins that root.
        const vendor = simulatedVendor(config.platform.vendor);
        const node = new RunnerNode({ ...base, chain: net.chain, wallet: hot, platform: vendor.platform });
        progress.step(2, 'allowlisting this runner’s image and models (the timelock is skipped)');
        await allowlistRunner(net, BigInt('0x' + node.measurement.toString('hex')), models.hashes());
        progress.step(3, 'attesting through the local verifier');
        const verifier = new VerifierService(net.chain, net.registry, net.verifier.key, vendor.quoteVerifier);
        const { statement } = await verifier.attest(node.tee, owner.address, models.hashes());
        progress.step(4, 'registering with the minimum stake');
        const { provider } = await registerProvider(net, owner, statement, net.params.minProviderStake);
        progress.step(5, 'ready');
        logger.info({ registry: net.registry.toString(), provider: provider.toString() }, 'local deployment ready');
        if (opts.serve) await node.attach(provider);
        return { config, node, chain: net.chain, provider };
    }
    const chain = (await openChain(config.chain)) as TonClientChain;
    const words = (process.env[config.wallet.mnemonicEnv] ?? '').trim().split(/\s+/);
    if (!(await mnemonicValidate(words))) throw new ConfigError(`set ${config.wallet.mnemonicEnv} to the runner wallet's 24-word mnemonic`);
    const wallet: ChainWallet = await chain.walletFromMnemonic(words, { version: config.wallet.version, label: 'runner wallet' });
    const provider = await Registry.fromAddress(config.registry!).getProviderAddress(chain.provider(config.registry!), config.owner!);
    const node = new RunnerNode({ ...base, chain, wallet, platform: simulatedVendor(config.platform.vendor).platform, provider });
    if (opts.serve) await node.listen();
    return { config, node, chain, provider };
}

async function start(file: string): Promise<void> {
    const logger = pino({ name: 'chrysalis-runner' });
    const { config, node, chain } = await openRunner(file, logger, { serve: true });
    logger.info({ url: node.url, signingKey: node.tee.signingKey.toString('hex'), measurement: node.measurement.toString('hex') }, 'runner started');
    let lastWall = Date.now();
    node.loop(config.pollSeconds * 1000, (report) => {
        // The embedded chain's clock only moves when told: keep it in step with the wall clock.
        if (chain instanceof SandboxChain && chain.blockchain.now !== undefined) {
            const now = Date.now();
            chain.blockchain.now += Math.floor((now - lastWall) / 1000);
            lastWall += Math.floor((now - lastWall) / 1000) * 1000;
        }
        if (report.engaged + report.submitted + report.releasesSent + report.released + report.closed + report.errors.length > 0) logger.info(report, 'job loop pass');
    });
    const stop = async (signal: string) => {
        logger.info({ signal }, 'stopping');
        await node.close();
        process.exit(0);
    };
    process.once('SIGINT', () => void stop('SIGINT'));
    process.once('SIGTERM', () => void stop('SIGTERM'));
}

async function attest(file: string, nonceHex: string, out?: string): Promise<void> {
    if (!/^[0-9a-fA-F]{64}$/.test(nonceHex)) throw new ConfigError('--nonce must be 32 bytes of hex');
    const logger = pino({ level: 'warn' });
    const { node, chain } = await openRunner(file, logger, { serve: false });
    try {
        const evidence = node.tee.attest(Buffer.from(nonceHex, 'hex'), await chain.now());
        const text = JSON.stringify({ measurement: node.measurement.toString('hex'), evidence: evidenceToJson(evidence) }, null, 2) + '\n';
        if (out) writeFileSync(out, text);
        else process.stdout.write(text);
    } finally {
        await node.close();
    }
}

async function status(file: string): Promise<void> {
    const logger = pino({ level: 'warn' });
    const { node, chain, provider } = await openRunner(file, logger, { serve: false });
    try {
        const lines = [`provider ${provider.toString()}`, `enclave key ${node.tee.signingKey.toString('hex')}`, `jobs ${JSON.stringify(node.store.counts())}`];
        const p = Provider.fromAddress(provider);
        if (await chain.isDeployed(provider)) {
            const info = await p.getInfo(chain.provider(provider));
            lines.push(`on-chain: ${statusName(info.status)}, stake ${info.stake} nanoton, open jobs ${info.openJobs}, completed ${info.completedJobs}, attestation valid until ${info.attestationValidUntil}`);
        } else lines.push('on-chain: not registered');
        process.stdout.write(lines.join('\n') + '\n');
    } finally {
        await node.close();
    }
}

/** The CLI, for tests: parse `argv` (without node and script) and run. */
export function program(): Command {
    const cmd = new Command('chrysalis-runner').description('A Chrysalis provider’s enclave runner');
    cmd.command('start').description('serve jobs until stopped').requiredOption('--config <file>', 'runner config (JSON)').action((o: { config: string }) => start(o.config));
    cmd.command('attest')
        .description("print attestation evidence for a verifier's nonce")
        .requiredOption('--config <file>', 'runner config (JSON)')
        .requiredOption('--nonce <hex>', "the verifier's 32-byte challenge")
        .option('--out <file>', 'write the evidence here instead of stdout')
        .action((o: { config: string; nonce: string; out?: string }) => attest(o.config, o.nonce, o.out));
    cmd.command('status').description('job counts and the Provider on-chain').requiredOption('--config <file>', 'runner config (JSON)').action((o: { config: string }) => status(o.config));
    return cmd;
}

if (require.main === module) {
    program()
        .parseAsync(process.argv)
        .catch((e: unknown) => {
            process.stderr.write(`chrysalis-runner: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}\n`);
            process.exit(1);
        });
}
