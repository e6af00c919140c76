// Issue 6 ("Figures"): what a payment channel costs per request, for 1, 10,
// 100, 1,000 and 10,000 requests per claim, next to the per-request escrow
// lifecycle (bench/run.ts, escrow.lifecycle.*).
//
// What is measured: one channel's whole life on @ton/sandbox, every
// transaction of it actually run:
//   open + engage   the client's OpenChannel, the Provider's engagement and
//                   its answer (one message chain);
//   claims          one ClaimChannel every N requests, sent by the provider's
//                   owner (the runner) with exactly claimFee, paying the payout
//                   address and the treasury;
//   close           the last claim carries the enclave's final receipt: it
//                   pays the last N requests and closes at once (ChannelEnded
//                   to the Provider, the rest to the client). This is the
//                   cooperative close, the channel's happy path as Release is
//                   the escrow's; the client-driven close (RequestChannelClose,
//                   then SettleChannel after the challenge period) is measured
//                   on a second channel and printed next to it.
// The channel lives a day (the longest a job may), its claims spread evenly
// over it, so storage rent is included as the escrow lifecycle includes its
// dispute window's.
//
// Per request: a channel serving M requests, claimed every N, costs
//   (open + engage + close) / M + claim / N
// per request. The claim term is what N buys; the fixed term depends on how
// long the channel lives, which N does not say. Here M = max(N, 1,000): every
// channel serves at least 1,000 requests (a modest life for the workload
// channels are for: many small requests between one client and one
// provider), and at N = 10,000 it serves 10,000, the least that holds one
// claim. So N = 1..1,000 compare claim intervals at one lifetime, and the
// figure is total / M with every transaction's cost in it, not a formula.
// The breakdown (fixed part, one claim) is printed so any other lifetime can
// be priced by the formula above.
//
// Accounting: the caller's `account` (bench/run.ts's gasAndFees), the same
// the escrow lifecycle uses, so the ratio compares like with like: each
// transaction's total fees (the sending wallet's own external transaction
// excepted, as in the lifecycle), plus the forwarding fee of every internal
// message, the wallets' included; gas is the compute gas of the same
// transactions.
//
// Price per request: 0.001 TON (about a third of a US cent), so the deposit
// covers M requests and the protocol fee (1%) is a real payment each claim.
import { createHash } from 'crypto';
import { Cell, toNano } from '@ton/core';
import { Blockchain, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { ALLOWLIST_MEASUREMENT, ALLOWLIST_MODEL, ALLOWLIST_VERIFIER, Registry } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { Channel } from '../wrappers/Channel';
import { defaultParams } from '../wrappers/params';
import { modelHash, registerProviderMessage, signStatement } from '../wrappers/attestation';
import { bufferToBigInt, Ed25519KeyPair, keyPairFromSeed } from '../wrappers/ed25519';
import { claimChannelMessage, signChannelReceipt } from '../wrappers/channelReceipt';
import { basechainGasPrice } from './mainnetConfig';

export const REQUESTS_PER_CLAIM = [1, 10, 100, 1_000, 10_000];
/** Every channel serves at least this many requests (see the header). */
export const MIN_LIFETIME = 1_000;
export const PRICE_PER_REQUEST = toNano('0.001');
const DAY = 86_400;

export type Account = (r: SendMessageResult) => { gas: bigint; fees: bigint };

export interface ChannelLife {
    perClaim: number;
    requests: number;
    claims: number;
    gas: bigint;
    fees: bigint;
    /** The claims that did not close (all but the last): fees min, max and mean (they differ by rent only), and mean gas. */
    claimFees: { min: bigint; max: bigint; mean: bigint; gas: bigint } | null;
}

export interface ChannelFeeReport {
    gasPrice: number;
    lives: ChannelLife[];
    open: { gas: bigint; fees: bigint };
    /** A claim of a final receipt: pays and closes. */
    finalClaim: { gas: bigint; fees: bigint };
    /** The client-driven close instead: RequestChannelClose, then SettleChannel (no claim in between). */
    requestedClose: { gas: bigint; fees: bigint };
}

const key = (label: string) => keyPairFromSeed(createHash('sha256').update(`chrysalis-bench:${label}`).digest());

function requireSuccess(r: SendMessageResult, at: SandboxContract<Channel>, what: string): void {
    for (const tx of r.transactions) {
        const d = tx.description;
        if (tx.inMessage?.info.type !== 'internal' || !tx.inMessage.info.dest.equals(at.address) || d.type !== 'generic') continue;
        if (d.aborted) throw new Error(`${what}: the channel's transaction failed`);
    }
}

interface Deployment {
    chain: Blockchain;
    client: SandboxContract<TreasuryContract>;
    owner: SandboxContract<TreasuryContract>;
    provider: SandboxContract<Provider>;
    enclave: Ed25519KeyPair;
    model: bigint;
}

/** A registry with one attested provider, as bench/run.ts's lifecycle() sets it up. */
async function deploy(configCell?: Cell): Promise<Deployment> {
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
            // As long as it may be: the five channels and the closing one live a day each, one after another.
            validUntil: chain.now - 1 + Number(params.attestationMaxAge),
            models: [model],
            enclave: { signingKey: enclave.publicKeyInt, encryptionKey: 2n, measurement: 1n, reportHash: 3n },
        },
        verifier,
    );
    const stake = params.minProviderStake;
    await registry.send(owner.getSender(), { value: stake + (await registry.getAttestationFee()) }, registerProviderMessage(statement, stake));
    const provider = chain.openContract(Provider.fromAddress(await registry.getProviderAddress(owner.address)));
    return { chain, client, owner, provider, enclave, model };
}

async function openChannel(dep: Deployment, nonce: bigint, deposit: bigint): Promise<{ channel: SandboxContract<Channel>; result: SendMessageResult; openId: bigint }> {
    const channel = dep.chain.openContract(await Channel.fromInit(dep.client.address, dep.provider.address, nonce));
    const result = await channel.send(dep.client.getSender(), { value: deposit + (await dep.provider.getChannelOpenFee()) }, {
        $$type: 'OpenChannel',
        queryId: 0n,
        modelHash: dep.model,
        deposit,
        expiresAt: BigInt(dep.chain.now! + DAY),
    });
    requireSuccess(result, channel, 'open');
    const info = await channel.getInfo();
    if (info.state !== 2n) throw new Error(`the channel did not engage (state ${info.state})`);
    return { channel, result, openId: info.openId };
}

/** The receipt the enclave signs after `requests` requests: cumulative amount and a running root (any 256 bits here). */
function receiptAfter(channel: SandboxContract<Channel>, openId: bigint, seqno: number, requests: number, enclave: Ed25519KeyPair, final: boolean) {
    const root = bufferToBigInt(createHash('sha256').update(`root:${requests}`).digest());
    return signChannelReceipt(
        { channel: channel.address, openId, seqno: BigInt(seqno), amount: BigInt(requests) * PRICE_PER_REQUEST, requests: BigInt(requests), root, final },
        enclave,
    );
}

async function life(dep: Deployment, nonce: bigint, perClaim: number, account: Account): Promise<{ life: ChannelLife; open: { gas: bigint; fees: bigint }; final: { gas: bigint; fees: bigint } }> {
    const requests = Math.max(perClaim, MIN_LIFETIME);
    const claims = requests / perClaim;
    const start = dep.chain.now!;
    const { channel, result, openId } = await openChannel(dep, nonce, BigInt(requests) * PRICE_PER_REQUEST);
    const open = account(result);
    let gas = open.gas;
    let fees = open.fees;
    const claimFee = await channel.getClaimFee();
    const plain: bigint[] = [];
    let plainGas = 0n;
    let final = { gas: 0n, fees: 0n };
    for (let c = 1; c <= claims; c++) {
        // Claims spread over the day the channel lives, the last one just before it expires.
        dep.chain.now = start + Math.floor(((DAY - 60) * c) / claims);
        const isFinal = c === claims;
        const receipt = receiptAfter(channel, openId, c, c * perClaim, dep.enclave, isFinal);
        const r = await channel.send(dep.owner.getSender(), { value: claimFee }, claimChannelMessage(receipt));
        requireSuccess(r, channel, `claim ${c}`);
        const a = account(r);
        gas += a.gas;
        fees += a.fees;
        if (isFinal) final = a;
        else {
            plain.push(a.fees);
            plainGas += a.gas;
        }
    }
    const state = (await dep.chain.getContract(channel.address)).accountState?.type;
    if (state === 'active') throw new Error('the final claim did not close the channel');
    const settled = (await dep.provider.getInfo()).openJobs;
    if (settled !== 0n) throw new Error(`the Provider still counts ${settled} open jobs`);
    const mean = plain.length === 0 ? null : plain.reduce((s, f) => s + f, 0n) / BigInt(plain.length);
    const claimFees =
        mean === null
            ? null
            : { min: plain.reduce((a, b) => (a < b ? a : b)), max: plain.reduce((a, b) => (a > b ? a : b)), mean, gas: plainGas / BigInt(plain.length) };
    return { life: { perClaim, requests, claims, gas, fees, claimFees }, open, final };
}

/** The client-driven close of an engaged channel nobody claimed: RequestChannelClose, the challenge period, SettleChannel. */
async function requestedClose(dep: Deployment, nonce: bigint, account: Account): Promise<{ gas: bigint; fees: bigint }> {
    const { channel } = await openChannel(dep, nonce, PRICE_PER_REQUEST);
    const trigger = await channel.getTriggerFee();
    const request = await channel.send(dep.client.getSender(), { value: trigger }, { $$type: 'RequestChannelClose', queryId: 0n });
    requireSuccess(request, channel, 'request close');
    dep.chain.now! += DAY + 1;
    const settle = await channel.send(dep.client.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
    requireSuccess(settle, channel, 'settle');
    const a = account(request);
    const b = account(settle);
    return { gas: a.gas + b.gas, fees: a.fees + b.fees };
}

export async function measureChannelFees(account: Account, configCell?: Cell): Promise<ChannelFeeReport> {
    const dep = await deploy(configCell);
    const lives: ChannelLife[] = [];
    let open = { gas: 0n, fees: 0n };
    let finalClaim = { gas: 0n, fees: 0n };
    let nonce = 1n;
    for (const n of REQUESTS_PER_CLAIM) {
        const r = await life(dep, nonce++, n, account);
        lives.push(r.life);
        if (n === 1_000) {
            open = r.open;
            finalClaim = r.final;
        }
    }
    return { gasPrice: basechainGasPrice(dep.chain.config), lives, open, finalClaim, requestedClose: await requestedClose(dep, nonce, account) };
}

/** Nanoton per request, rounded to the nanoton. */
export function feePerRequest(l: ChannelLife): bigint {
    return (l.fees + BigInt(l.requests) / 2n) / BigInt(l.requests);
}

/** Gas per request, to the hundredth. */
export function gasPerRequest(l: ChannelLife): number {
    return Math.round((Number(l.gas) * 100) / l.requests) / 100;
}

export const TARGET_PER_CLAIM = 1_000;
export const TARGET_RATIO = 100;

const ton = (n: bigint) => (Number(n) / 1e9).toFixed(9);

/** The table bench/run.ts prints, against the escrow lifecycle's fee and gas for one request. */
export function formatChannelFees(config: string, r: ChannelFeeReport, escrow: { fee: number; gas: number }): string[] {
    const lines = [
        `Payment channel, per request (config: ${config}, basechain gas price ${r.gasPrice} nanoton/gas): a channel serving max(N, ${MIN_LIFETIME.toLocaleString('en-US')}) requests at ${ton(PRICE_PER_REQUEST).replace(/0+$/, '')} TON,`,
        '  claimed every N, closed by the last claim (final receipt); every transaction run, fees as in the escrow lifecycle',
        '  N per claim   requests   claims   gas/request   fee/request (TON)   fee vs escrow lifecycle',
    ];
    for (const l of r.lives) {
        const fee = feePerRequest(l);
        const ratio = Number(fee) / escrow.fee;
        lines.push(
            `  ${l.perClaim.toLocaleString('en-US').padStart(11)}   ${l.requests.toLocaleString('en-US').padStart(8)}   ${l.claims.toLocaleString('en-US').padStart(6)}   ${gasPerRequest(l).toFixed(2).padStart(11)}   ${ton(fee).padStart(17)}   ${ratio.toFixed(5)} (1/${Math.round(1 / ratio).toLocaleString('en-US')})`,
        );
    }
    lines.push(`  escrow lifecycle, one request: ${escrow.gas.toLocaleString('en-US')} gas, ${ton(BigInt(escrow.fee))} TON`);
    const claim = r.lives.find((l) => l.claimFees !== null)?.claimFees;
    lines.push(
        `  breakdown: open + engage ${ton(r.open.fees)} TON (${r.open.gas} gas); a claim ${claim ? `${ton(claim.mean)} TON (${claim.gas} gas)` : '?'}` +
            (claim && claim.max !== claim.min ? `, ${ton(claim.min)}..${ton(claim.max)} with rent` : '') +
            `; the final claim ${ton(r.finalClaim.fees)} TON (${r.finalClaim.gas} gas)`,
    );
    if (claim) {
        const fixed = r.open.fees + r.finalClaim.fees - claim.mean;
        lines.push(`  so per request = ${ton(fixed)} TON / requests (open + engage + the close beyond a claim) + ${ton(claim.mean)} TON / N`);
    }
    lines.push(`  a client-driven close instead (RequestChannelClose + SettleChannel): ${ton(r.requestedClose.fees)} TON (${r.requestedClose.gas} gas) per channel`);
    const at = r.lives.find((l) => l.perClaim === TARGET_PER_CLAIM);
    if (at !== undefined) {
        const fee = Number(feePerRequest(at));
        const met = fee * TARGET_RATIO < escrow.fee;
        lines.push(
            `  target: at ${TARGET_PER_CLAIM.toLocaleString('en-US')} requests per claim, under 1/${TARGET_RATIO} of the escrow lifecycle's fee per request (${ton(BigInt(Math.floor(escrow.fee / TARGET_RATIO)))} TON): ${met ? 'met' : 'NOT met'} (${ton(BigInt(fee))} TON, 1/${Math.round(escrow.fee / fee).toLocaleString('en-US')})`,
        );
    }
    return lines;
}
