// A whole Chrysalis deployment on the embedded chain, for the demo, the
// end-to-end tests and `chrysalis-runner start` with a sandbox chain:
// governance deploys a Registry, allowlists a verifier key, an enclave image
// and models (waiting out the timelock), and a verifier service turns a
// runner's evidence into the on-chain attestation statement it registers with.
import { createHash, randomBytes } from 'crypto';
import { Address, beginCell, toNano } from '@ton/core';
import { ALLOWLIST_MEASUREMENT, ALLOWLIST_MODEL, ALLOWLIST_VERIFIER, Params, Registry, storeAllowlistAdd, storeDeployRegistry, storeReattest, storeRegisterProvider } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { defaultParams } from '../wrappers/params';
import { reattestMessage, registerProviderMessage, SignedStatement } from '../wrappers/attestation';
import { Ed25519KeyPair, keyPairFromSeed } from '../wrappers/ed25519';
import { ChainWallet, SandboxChain, SendReport } from './chain';
import { AttestationEvidence, issueCertificate, SimulatedQuoteVerifier, statementForEvidence, verifyEvidence } from './evidence';
import { SimulatedPlatform, TeeBackend } from './tee';

/** A key derived from a label: the same label gives the same key on every run. */
export function labelKey(label: string): Ed25519KeyPair {
    return keyPairFromSeed(createHash('sha256').update(`chrysalis-localnet:${label}`).digest());
}

/** The simulated TEE vendor: a root key, a platform key it certifies, and the verifier that pins the root. */
export function simulatedVendor(label = 'vendor'): { platform: SimulatedPlatform; quoteVerifier: SimulatedQuoteVerifier; rootName: string; rootKey: Buffer } {
    const root = labelKey(`${label}:root`);
    const platformKey = labelKey(`${label}:platform`);
    const rootName = 'Simulated TDX Root CA';
    const certificate = issueCertificate('Simulated TDX Platform', platformKey.publicKey, rootName, root);
    return {
        platform: { key: platformKey, certChain: [certificate] },
        quoteVerifier: new SimulatedQuoteVerifier(rootName, root.publicKey),
        rootName,
        rootKey: root.publicKey,
    };
}

export interface LocalNet {
    chain: SandboxChain;
    governance: ChainWallet;
    treasury: ChainWallet;
    registry: Address;
    params: Params;
    arbiters: Ed25519KeyPair[];
    vendor: ReturnType<typeof simulatedVendor>;
    verifier: VerifierService;
}

/**
 * Deploys a Registry with default parameters and `arbiterCount` arbiters
 * (quorum: a majority), allowlists the verifier key, and waits out the
 * timelock. Measurements and models are added with `allowlist`.
 */
export async function createLocalNet(opts: { now?: number; arbiterCount?: number; label?: string } = {}): Promise<LocalNet> {
    const label = opts.label ?? 'localnet';
    const chain = await SandboxChain.create({ now: opts.now ?? Math.floor(Date.now() / 1000) });
    const governance = await chain.wallet(`${label}:governance`, toNano('1000'));
    const treasury = await chain.wallet(`${label}:treasury`, toNano('1'));
    const arbiters = Array.from({ length: opts.arbiterCount ?? 3 }, (_, i) => labelKey(`${label}:arbiter${i}`));
    const params = defaultParams(treasury.address, arbiters.map((k) => k.publicKeyInt));
    const registry = await Registry.fromInit(governance.address, params, 0n);
    await sendOk(chain, governance, {
        to: registry.address,
        value: toNano('0.5'),
        body: beginCell().store(storeDeployRegistry({ $$type: 'DeployRegistry', queryId: 0n })).endCell(),
        init: registry.init!,
    }, 'deploy the Registry');
    const vendor = simulatedVendor(`${label}:vendor`);
    const verifierKey = labelKey(`${label}:verifier`);
    const net: LocalNet = { chain, governance, treasury, registry: registry.address, params, arbiters, vendor, verifier: new VerifierService(chain, registry.address, verifierKey, vendor.quoteVerifier) };
    await allowlist(net, [[ALLOWLIST_VERIFIER, verifierKey.publicKeyInt]]);
    return net;
}

/** Governance adds allowlist entries, then the clock moves past the timelock so they are active. */
export async function allowlist(net: LocalNet, entries: [bigint, bigint][]): Promise<SendReport[]> {
    const fee = await Registry.fromAddress(net.registry).getAdminFee(net.chain.provider(net.registry));
    const reports: SendReport[] = [];
    for (const [list, entry] of entries) {
        reports.push(
            await sendOk(net.chain, net.governance, { to: net.registry, value: fee, body: beginCell().store(storeAllowlistAdd({ $$type: 'AllowlistAdd', queryId: 0n, list, entry })).endCell() }, 'AllowlistAdd'),
        );
    }
    net.chain.blockchain.now = (net.chain.blockchain.now ?? Math.floor(Date.now() / 1000)) + Number(net.params.timelock);
    return reports;
}

/** Allowlists a runner's image and its models. */
export function allowlistRunner(net: LocalNet, measurement: bigint, models: bigint[]): Promise<SendReport[]> {
    return allowlist(net, [[ALLOWLIST_MEASUREMENT, measurement], ...models.map((m): [bigint, bigint] => [ALLOWLIST_MODEL, m])]);
}

/**
 * The attestation verifier service: challenges an enclave with a fresh
 * nonce, checks its evidence against the Registry's allowlist, and signs the
 * statement the provider registers with.
 */
export class VerifierService {
    constructor(
        private readonly chain: SandboxChain,
        private readonly registry: Address,
        readonly key: Ed25519KeyPair,
        private readonly quoteVerifier: SimulatedQuoteVerifier,
        private readonly validForSeconds = 86400,
    ) {}

    /** Challenges `tee`, verifies its answer and signs a statement for `owner` serving `models`. */
    async attest(tee: TeeBackend, owner: Address, models: bigint[]): Promise<{ evidence: AttestationEvidence; statement: SignedStatement }> {
        const now = await this.chain.now();
        const nonce = randomBytes(32);
        const evidence = tee.attest(nonce, now);
        const registry = Registry.fromAddress(this.registry);
        const body = this.quoteVerifier.verifyQuote(evidence);
        const allowed = await registry.getIsAllowed(this.chain.provider(this.registry), ALLOWLIST_MEASUREMENT, BigInt('0x' + body.measurement.toString('hex')));
        const verified = verifyEvidence(evidence, { verifier: this.quoteVerifier, allowedMeasurements: () => allowed, maxAgeSeconds: 300, now, expectedNonce: nonce });
        const statement = statementForEvidence(evidence, verified, { registry: this.registry, providerOwner: owner, models, now, validFor: this.validForSeconds }, this.key);
        return { evidence, statement };
    }
}

/** Registers `owner`'s Provider with `stake`, from a statement the verifier signed. */
export async function registerProvider(net: LocalNet, owner: ChainWallet, statement: SignedStatement, stake: bigint): Promise<{ provider: Address; report: SendReport }> {
    const registry = Registry.fromAddress(net.registry);
    const fee = await registry.getAttestationFee(net.chain.provider(net.registry));
    const body = beginCell().store(storeRegisterProvider(registerProviderMessage(statement, stake))).endCell();
    const report = await sendOk(net.chain, owner, { to: net.registry, value: stake + fee, body }, 'RegisterProvider');
    const provider = await registry.getProviderAddress(net.chain.provider(net.registry), owner.address);
    const status = await Provider.fromAddress(provider).getStatus(net.chain.provider(provider));
    if (status !== 1n) throw new Error(`registration did not make the provider active (status ${status})`);
    return { provider, report };
}

/** Renews `owner`'s attestation (a new statement, e.g. with a new key or model set). */
export async function reattest(net: LocalNet, owner: ChainWallet, statement: SignedStatement): Promise<SendReport> {
    const fee = await Registry.fromAddress(net.registry).getAttestationFee(net.chain.provider(net.registry));
    return sendOk(net.chain, owner, { to: net.registry, value: fee, body: beginCell().store(storeReattest(reattestMessage(statement))).endCell() }, 'Reattest');
}

/** Sends and fails loudly, naming the exit code, when any transaction of the chain failed. */
export async function sendOk(chain: SandboxChain, from: ChainWallet, message: Parameters<SandboxChain['send']>[1], what: string): Promise<SendReport> {
    const report = await chain.send(from, message);
    for (const tx of report.transactions ?? []) {
        if (tx.description.type !== 'generic') continue;
        const compute = tx.description.computePhase;
        if (tx.description.aborted || (compute.type === 'vm' && !compute.success)) {
            throw new Error(`${what}: a transaction failed (exit code ${compute.type === 'vm' ? compute.exitCode : 'skipped'})`);
        }
    }
    return report;
}
