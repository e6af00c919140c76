// Shared code of the operations scripts: argument parsing, address, amount
// and key parsing, JSON files, asking what the arguments did not give,
// opening the contracts (Registry, Provider, Escrow), and sending with a
// check of the outcome.
//
// Options are `--name value` or `--name=value`. `npx blueprint run` rejects
// options it does not know, so put the script's arguments after `--`:
//   npx blueprint run deployRegistry --testnet --mnemonic -- params.json --salt 1
import { createHash, randomBytes } from 'crypto';
import { promises as fs } from 'fs';
import type { NetworkProvider, UIProvider } from '@ton/blueprint';
import { Address, beginCell, Dictionary, fromNano, OpenedContract, toNano, Transaction } from '@ton/core';
import {
    ESCROW_DISPUTED,
    ESCROW_ENGAGED,
    ESCROW_NEW,
    ESCROW_OPENED,
    ESCROW_RECEIPTED,
    EscrowInfo,
    JAIL_GOVERNANCE,
    JAIL_STAKE_BELOW_MINIMUM,
    Params,
    ProviderInfo,
    Registry,
    JAIL_PROVEN_FAULT,
    ProveEquivocation,
    ProveInvalidReceipt,
    STATUS_JAILED,
    FAULT_AFTER_ATTESTATION,
    FAULT_EQUIVOCATION,
    FAULT_UNSERVED_MODEL,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
} from '../../wrappers/Registry';
import { Provider } from '../../wrappers/Provider';
import { Escrow } from '../../wrappers/Escrow';
import { arbiterDictionary, paramsFromJson, ParamsJson, paramsProblems } from '../../wrappers/params';
import { parseStatement, SignedStatement, signedStatementFromJson, SignedStatementJson } from '../../wrappers/attestation';
import { parseReceipt, ReceiptError, receiptHash, SignedReceipt, signedReceiptFromJson, SignedReceiptJson } from '../../wrappers/receipt';
import { exitCodeName, statusName } from '../../wrappers/chrysalis';
import { parseVerdict, SignedVerdict, signedVerdictFromJson, SignedVerdictJson, VerdictError } from '../../wrappers/verdict';
import { verifyHash } from '../../wrappers/ed25519';

// ---------------------------------------------------------------- errors

/** Base of every error a script throws on purpose: the message is for the operator. */
export class CliError extends Error {
    constructor(message: string) {
        super(message);
        this.name = new.target.name;
    }
}
/** Wrong arguments: unknown option or subcommand, missing or extra argument. */
export class UsageError extends CliError {}
/** A value that does not parse or is out of range: address, amount, key, file. */
export class InputError extends CliError {}
/** The chain does not allow it: contract missing, wrong sender, wrong status. */
export class StateError extends CliError {}
/** A transaction of the message chain failed; exitCode is the contract's. */
export class TransactionFailedError extends CliError {
    constructor(
        readonly what: string,
        readonly exitCode: number | undefined,
        detail: string,
    ) {
        super(`${what} failed: ${detail}`);
    }
}

// ---------------------------------------------------------------- arguments

export interface ArgSpec {
    /** Options that take a value, without the leading `--`. */
    options?: readonly string[];
    /** Options without a value. */
    flags?: readonly string[];
}

export interface ParsedArgs {
    positional: string[];
    options: Map<string, string>;
    flags: Set<string>;
}

export function parseArgs(args: readonly string[], spec: ArgSpec, usage: string): ParsedArgs {
    const options = new Set(spec.options ?? []);
    const flags = new Set(spec.flags ?? []);
    const parsed: ParsedArgs = { positional: [], options: new Map(), flags: new Set() };
    const known = () => [...options, ...flags].map((n) => `--${n}`).join(', ') || 'none';
    for (let i = 0; i < args.length; i++) {
        const arg = args[i];
        if (arg === '--') {
            parsed.positional.push(...args.slice(i + 1));
            break;
        }
        if (!arg.startsWith('--') || arg.length === 2) {
            parsed.positional.push(arg);
            continue;
        }
        const eq = arg.indexOf('=');
        const name = arg.slice(2, eq < 0 ? undefined : eq);
        if (flags.has(name)) {
            if (eq >= 0) throw usageError(`option --${name} takes no value`, usage);
            parsed.flags.add(name);
        } else if (options.has(name)) {
            const value = eq >= 0 ? arg.slice(eq + 1) : args[++i];
            if (value === undefined || value === '') throw usageError(`option --${name} needs a value`, usage);
            if (parsed.options.has(name)) throw usageError(`option --${name} given twice`, usage);
            parsed.options.set(name, value);
        } else {
            throw usageError(`unknown option --${name} (known: ${known()})`, usage);
        }
    }
    return parsed;
}

export function usageError(message: string, usage: string): UsageError {
    return new UsageError(`${message}\nusage: ${usage}`);
}

/** Fails when more positional arguments were given than the command takes. */
export function noMoreArgs(positional: readonly string[], max: number, usage: string): void {
    if (positional.length > max) throw usageError(`unexpected argument "${positional[max]}"`, usage);
}

// ---------------------------------------------------------------- values

export function parseAddress(text: string, what: string): Address {
    try {
        return Address.parse(text.trim());
    } catch {
        throw new InputError(`${what}: "${text}" is not a TON address`);
    }
}

/** The contracts accept only basechain addresses for owners, treasuries and payouts. */
export function requireBasechain(address: Address, what: string): Address {
    if (address.workChain !== 0) {
        throw new InputError(`${what}: ${address.toString()} is in workchain ${address.workChain}, the contracts need workchain 0`);
    }
    return address;
}

/** TON as a decimal ("1.5"), to nanoton. */
export function parseTon(text: string, what: string, opts: { allowZero?: boolean } = {}): bigint {
    const t = text.trim();
    if (!/^[0-9]+(\.[0-9]{1,9})?$/.test(t)) throw new InputError(`${what}: "${text}" is not an amount of TON (e.g. 1.5)`);
    const amount = toNano(t);
    if (amount === 0n && !opts.allowZero) throw new InputError(`${what} must be more than 0 TON`);
    return amount;
}

/** A non-negative integer below 2^bits. */
export function parseUint(text: string, what: string, bits: number): bigint {
    const t = text.trim();
    if (!/^[0-9]+$/.test(t) || BigInt(t) >= 1n << BigInt(bits)) {
        throw new InputError(`${what}: "${text}" is not an integer from 0 to 2^${bits}-1`);
    }
    return BigInt(t);
}

/** 32 bytes of hex (a key or hash), with or without 0x. */
export function parseHex256(text: string, what: string): bigint {
    const t = text.trim().replace(/^0x/i, '');
    if (!/^[0-9a-fA-F]{64}$/.test(t)) throw new InputError(`${what}: "${text}" is not 32 bytes of hex (64 hex digits)`);
    return BigInt('0x' + t);
}

export function hex256(value: bigint): string {
    return value.toString(16).padStart(64, '0');
}

/**
 * A deadline in unix seconds: absolute ("1800003600") or relative to `now`
 * ("+3600"). `now` is this computer's clock; the contracts judge by the chain's.
 */
export function parseDeadline(text: string, what: string, now: number): bigint {
    const t = text.trim();
    const m = /^(\+)?([0-9]+)$/.exec(t);
    if (m === null) throw new InputError(`${what}: "${text}" is not unix seconds or +<seconds from now>`);
    const value = m[1] === '+' ? BigInt(now) + BigInt(m[2]) : BigInt(m[2]);
    if (m[1] === '+' && BigInt(m[2]) === 0n) throw new InputError(`${what}: +0 is not in the future`);
    if (value === 0n || value >= 1n << 32n) throw new InputError(`${what}: ${value} is not a unix time from 1 to 2^32-1`);
    return value;
}

/** This computer's clock, in unix seconds. */
export function localNow(): number {
    return Math.floor(Date.now() / 1000);
}

/** A random 63-bit nonce (an escrow is derived from client, provider and nonce). */
export function randomNonce(): bigint {
    return BigInt('0x' + randomBytes(8).toString('hex')) & ((1n << 63n) - 1n);
}

export function formatTon(nano: bigint): string {
    return `${fromNano(nano)} TON`;
}

export function formatTime(unix: bigint | number): string {
    const n = Number(unix);
    return n === 0 ? '0' : `${n} (${new Date(n * 1000).toISOString()})`;
}

export function formatDuration(seconds: bigint | number): string {
    const s = Number(seconds);
    return s % 86400 === 0 ? `${s} s (${s / 86400} d)` : s % 3600 === 0 ? `${s} s (${s / 3600} h)` : `${s} s`;
}

export function formatAddress(provider: NetworkProvider, address: Address): string {
    return address.toString({ testOnly: provider.network() === 'testnet' });
}

// ---------------------------------------------------------------- asking

/** The argument if given, else the operator's answer; empty is refused. */
export async function argOrAsk(ui: UIProvider, value: string | undefined, question: string, what: string): Promise<string> {
    const text = value ?? (await ui.input(question));
    if (text.trim() === '') throw new InputError(`${what} is required`);
    return text.trim();
}

export async function addressOrAsk(
    ui: UIProvider,
    value: string | undefined,
    question: string,
    what: string,
    fallback?: Address,
): Promise<Address> {
    return value !== undefined ? parseAddress(value, what) : ui.inputAddress(question, fallback);
}

/** The argument if given (must be one of `choices`), else the operator's choice. */
export async function choiceOrAsk<T extends string>(
    ui: UIProvider,
    value: string | undefined,
    choices: readonly T[],
    question: string,
    what: string,
    usage: string,
): Promise<T> {
    if (value === undefined) return ui.choose(question, [...choices], (c) => c);
    const found = choices.find((c) => c === value);
    if (found === undefined) throw usageError(`unknown ${what} "${value}" (one of: ${choices.join(', ')})`, usage);
    return found;
}

// ---------------------------------------------------------------- files

export async function readJsonFile(path: string, what: string): Promise<unknown> {
    let text: string;
    try {
        text = await fs.readFile(path, 'utf8');
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new InputError(`${what}: cannot read ${path}${code === 'ENOENT' ? ': no such file' : `: ${String(e)}`}`);
    }
    try {
        return JSON.parse(text) as unknown;
    } catch (e) {
        throw new InputError(`${what}: ${path} is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
}

const PARAMS_KEYS: readonly (keyof ParamsJson)[] = [
    'minProviderStake',
    'unbondingPeriod',
    'attestationMaxAge',
    'protocolFeeBps',
    'treasury',
    'maxJobDuration',
    'disputeWindow',
    'verdictWindow',
    'disputeBond',
    'arbiterQuorum',
    'arbiters',
    'timelock',
    'slashBps',
    'reporterRewardBps',
    'clientCompensationBps',
    'arbiterFeeBps',
];

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a ParamsJson file (keys starting with "_" are comments) and checks it as the Registry would. */
export async function loadParamsFile(path: string): Promise<Params> {
    const json = await readJsonFile(path, 'params file');
    if (!isRecord(json)) throw new InputError(`params file ${path}: must be a JSON object`);
    const missing = PARAMS_KEYS.filter((k) => !(k in json));
    if (missing.length > 0) throw new InputError(`params file ${path}: missing ${missing.join(', ')}`);
    const unknown = Object.keys(json).filter((k) => !k.startsWith('_') && !(PARAMS_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) throw new InputError(`params file ${path}: unknown field ${unknown.join(', ')}`);
    let params: Params;
    try {
        params = paramsFromJson(json as unknown as ParamsJson);
    } catch (e) {
        throw new InputError(`params file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    assertValidParams(params, `params file ${path}`);
    return params;
}

/** What validateParams in contracts/registry.tact would reject, in words (empty when valid). */
export function assertValidParams(p: Params, source: string): void {
    const problems = paramsProblems(p);
    if (problems.length > 0) throw new InputError(`${source}: the Registry would reject these parameters:\n  - ${problems.join('\n  - ')}`);
}

export function formatParams(p: Params, indent = '    '): string[] {
    const arbiters = p.arbiters
        .keys()
        .sort((a, b) => a - b)
        .map((k) => `${indent}  #${k}: ${hex256(p.arbiters.get(k) ?? 0n)}`);
    return [
        `${indent}minProviderStake:  ${formatTon(p.minProviderStake)}`,
        `${indent}unbondingPeriod:   ${formatDuration(p.unbondingPeriod)}`,
        `${indent}attestationMaxAge: ${formatDuration(p.attestationMaxAge)}`,
        `${indent}protocolFeeBps:    ${p.protocolFeeBps}`,
        `${indent}treasury:          ${p.treasury.toString()}`,
        `${indent}maxJobDuration:    ${formatDuration(p.maxJobDuration)}`,
        `${indent}disputeWindow:     ${formatDuration(p.disputeWindow)}`,
        `${indent}verdictWindow:     ${formatDuration(p.verdictWindow)}`,
        `${indent}disputeBond:       ${formatTon(p.disputeBond)}`,
        `${indent}arbiterQuorum:     ${p.arbiterQuorum} of ${arbiters.length}`,
        ...arbiters,
        `${indent}timelock:          ${formatDuration(p.timelock)}`,
    ];
}

export function jailReasonName(reason: bigint): string {
    if (reason === 0n) return 'none';
    if (reason === JAIL_GOVERNANCE) return 'governance (1)';
    if (reason === JAIL_STAKE_BELOW_MINIMUM) return 'stake below minimum (2)';
    if (reason === JAIL_PROVEN_FAULT) return 'proven fault (3)';
    return `reason ${reason}`;
}

export function formatProviderInfo(provider: NetworkProvider, info: ProviderInfo): string[] {
    const lines = [
        `  status:      ${statusName(info.status)}${info.jailReason !== 0n ? `, jail reason ${jailReasonName(info.jailReason)}` : ''}`,
        `  owner:       ${formatAddress(provider, info.owner)}`,
        `  payout:      ${formatAddress(provider, info.payout)}`,
        `  registry:    ${formatAddress(provider, info.registry)}`,
        `  stake:       ${formatTon(info.stake)}`,
    ];
    if (info.withdrawableAt !== 0n) lines.push(`  withdrawable at: ${formatTime(info.withdrawableAt)}`);
    lines.push(
        `  attestation valid until: ${formatTime(info.attestationValidUntil)}`,
        `  measurement: ${hex256(info.enclave.measurement)}`,
        `  signing key: ${hex256(info.enclave.signingKey)}`,
        `  models:      ${info.modelCount}`,
        `  jobs:        ${info.openJobs} open, ${info.completedJobs} completed, ${info.refundedJobs} refunded, ${info.disputesLost} disputes lost`,
    );
    if (info.snapshot !== null) {
        lines.push(
            `  snapshot:    min stake ${formatTon(info.snapshot.minProviderStake)}, unbonding ${formatDuration(info.snapshot.unbondingPeriod)}, fee ${info.snapshot.protocolFeeBps} bps`,
        );
    }
    return lines;
}

/** Reads a SignedStatementJson file and parses the statement in it. */
export async function loadStatementFile(path: string): Promise<SignedStatement> {
    const json = await readJsonFile(path, 'statement file');
    if (!isRecord(json) || typeof json.statement !== 'string' || typeof json.signature !== 'string' || typeof json.verifierKey !== 'string') {
        throw new InputError(`statement file ${path}: needs "statement" (BOC, base64), "signature" and "verifierKey" (hex)`);
    }
    try {
        const signed = signedStatementFromJson(json as unknown as SignedStatementJson);
        parseStatement(signed.statement);
        return signed;
    } catch (e) {
        throw new InputError(`statement file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
}

/** Reads a SignedReceiptJson file and parses the receipt in it. */
export async function loadReceiptFile(path: string): Promise<SignedReceipt> {
    const json = await readJsonFile(path, 'receipt file');
    if (!isRecord(json) || typeof json.receipt !== 'string' || typeof json.signature !== 'string') {
        throw new InputError(`receipt file ${path}: needs "receipt" (BOC, base64) and "signature" (hex)`);
    }
    let signed: SignedReceipt;
    try {
        signed = signedReceiptFromJson(json as unknown as SignedReceiptJson);
    } catch (e) {
        throw new InputError(`receipt file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
        parseReceipt(signed.receipt);
    } catch (e) {
        const detail = e instanceof ReceiptError ? e.message : `the cell does not hold a CompletionReceipt (${e instanceof Error ? e.message : String(e)})`;
        throw new InputError(`receipt file ${path}: ${detail}`);
    }
    return signed;
}

// ---------------------------------------------------------------- escrows

const ESCROW_STATE_NAMES: Record<string, string> = {
    [ESCROW_NEW.toString()]: 'New',
    [ESCROW_OPENED.toString()]: 'Opened',
    [ESCROW_ENGAGED.toString()]: 'Engaged',
    [ESCROW_RECEIPTED.toString()]: 'Receipted',
    [ESCROW_DISPUTED.toString()]: 'Disputed',
};

export function escrowStateName(state: bigint): string {
    return ESCROW_STATE_NAMES[state.toString()] ?? `Unknown(${state})`;
}

/** The protocol fee a release takes from `amount` (as the Escrow computes it). */
export function protocolFee(amount: bigint, feeBps: bigint): bigint {
    return (amount * feeBps) / 10000n;
}

export function formatEscrowInfo(provider: NetworkProvider, info: EscrowInfo): string[] {
    const lines = [
        `  state:       ${escrowStateName(info.state)}`,
        `  client:      ${formatAddress(provider, info.client)}`,
        `  provider:    ${formatAddress(provider, info.provider)}`,
        `  nonce:       ${info.nonce}`,
        `  model:       ${hex256(info.modelHash)}`,
        `  request:     ${hex256(info.requestHash)}`,
        `  max amount:  ${formatTon(info.maxAmount)}`,
        `  deadline:    ${formatTime(info.deadline)}`,
    ];
    const e = info.engagement;
    if (e !== null) {
        lines.push(
            `  enclave key: ${hex256(e.enclaveKey)}`,
            `  payout:      ${formatAddress(provider, e.payout)}`,
            `  terms:       fee ${e.protocolFeeBps} bps to ${formatAddress(provider, e.treasury)}, dispute window ${formatDuration(e.disputeWindow)}`,
        );
    }
    if (info.releaseAt > 0n) {
        // The receipt itself is in the accepted SubmitReceipt message; the escrow keeps its amount.
        lines.push(`  receipt:     ${formatTon(info.amount)}`, `  release at:  ${formatTime(info.releaseAt)}`);
    }
    if (info.verdictBy > 0n) lines.push(`  disputed:    verdict by ${formatTime(info.verdictBy)}, else refunded by time`);
    return lines;
}

// ---------------------------------------------------------------- chain

/** Extra value on owner messages; the contracts return what is not used. */
export const FEE_MARGIN = toNano('0.02');

export function senderAddress(provider: NetworkProvider): Address {
    const address = provider.sender().address;
    if (address === undefined) throw new StateError('the wallet did not give its address (connect it first)');
    return address;
}

export function newQueryId(): bigint {
    return BigInt(Date.now());
}

export async function openRegistry(provider: NetworkProvider, address: Address): Promise<OpenedContract<Registry>> {
    if (!(await provider.isContractDeployed(address))) {
        throw new StateError(`no contract is deployed at ${formatAddress(provider, address)}`);
    }
    const registry = provider.open(Registry.fromAddress(address));
    try {
        await registry.getAdminFee();
        await registry.getSalt();
    } catch {
        throw new StateError(`${formatAddress(provider, address)} is not a Chrysalis Registry`);
    }
    return registry;
}

export async function openProvider(provider: NetworkProvider, address: Address): Promise<OpenedContract<Provider>> {
    if (!(await provider.isContractDeployed(address))) {
        throw new StateError(`no Provider is deployed at ${formatAddress(provider, address)} (has its owner registered?)`);
    }
    const opened = provider.open(Provider.fromAddress(address));
    try {
        await opened.getInfo();
    } catch {
        throw new StateError(`${formatAddress(provider, address)} is not a Chrysalis Provider`);
    }
    return opened;
}

/**
 * An open Escrow and its info. A Chrysalis Escrow is recognised by its address:
 * it must derive from the Escrow code of these bindings and the terms it reports.
 */
export async function openEscrowAt(
    provider: NetworkProvider,
    address: Address,
): Promise<{ escrow: OpenedContract<Escrow>; info: EscrowInfo }> {
    if (!(await provider.isContractDeployed(address))) {
        throw new StateError(`no Escrow is deployed at ${formatAddress(provider, address)} (a closed escrow is destroyed)`);
    }
    const escrow = provider.open(Escrow.fromAddress(address));
    let info: EscrowInfo;
    try {
        info = await escrow.getInfo();
    } catch {
        throw new StateError(`${formatAddress(provider, address)} is not a Chrysalis Escrow`);
    }
    const derived = await Escrow.fromInit(info.client, info.provider, info.nonce);
    if (!derived.address.equals(address)) {
        throw new StateError(`${formatAddress(provider, address)} is not a Chrysalis Escrow (its address does not derive from its terms)`);
    }
    return { escrow, info };
}

/**
 * The prologue of the escrow scripts: parse `args` (the escrow address first,
 * `count` positional arguments in all), ask for the address if it is missing,
 * and open the Escrow there.
 */
export async function escrowFromArgs(
    provider: NetworkProvider,
    args: readonly string[],
    count: number,
    usage: string,
): Promise<{ positional: string[]; escrow: OpenedContract<Escrow>; info: EscrowInfo; address: Address }> {
    const a = parseArgs(args, {}, usage);
    noMoreArgs(a.positional, count, usage);
    const address = await addressOrAsk(provider.ui(), a.positional[0], 'Escrow address:', 'escrow');
    return { positional: a.positional, address, ...(await openEscrowAt(provider, address)) };
}

/** The first failed transaction of a sandbox-like send result (an object with `transactions`). */
function findFailure(result: unknown): { exitCode?: number; detail: string } | undefined {
    if (!isRecord(result) || !Array.isArray(result.transactions)) return undefined;
    for (const tx of result.transactions as Transaction[]) {
        const d = tx.description;
        if (d.type !== 'generic') continue;
        const info = tx.inMessage?.info;
        const at = info !== undefined && info.type !== 'external-out' ? ` at ${info.dest.toString()}` : '';
        if (d.computePhase.type === 'vm' && !d.computePhase.success) {
            return { exitCode: d.computePhase.exitCode, detail: `${exitCodeName(d.computePhase.exitCode)}${at}` };
        }
        if (d.actionPhase !== undefined && d.actionPhase !== null && !d.actionPhase.success) {
            return { exitCode: d.actionPhase.resultCode, detail: `action phase result code ${d.actionPhase.resultCode}${at}` };
        }
        if (d.computePhase.type === 'skipped' && info?.type === 'internal' && info.bounce && !info.bounced) {
            return { detail: `no contract${at} (${d.computePhase.reason}); the message bounced` };
        }
    }
    return undefined;
}

/** True when the provider runs the chain synchronously (sandbox) and reports its transactions. */
function reportsTransactions(provider: NetworkProvider): boolean {
    const result = provider.sender().lastSendResult;
    return isRecord(result) && Array.isArray(result.transactions);
}

/**
 * Sends (through `send`), waits for the wallet's transaction and, where the
 * provider reports the message chain (sandbox), fails with the exit code of
 * the first failed transaction. Then waits until `check` sees the effect
 * on-chain (polling on a real network, where the chain runs after the wallet).
 */
export async function sendAndCheck(
    provider: NetworkProvider,
    what: string,
    send: () => Promise<unknown>,
    check?: { effect: string; holds: () => Promise<boolean> },
): Promise<void> {
    const ui = provider.ui();
    ui.write(`Sending ${what}...`);
    await send();
    await provider.waitForLastTransaction();
    const failure = findFailure(provider.sender().lastSendResult);
    if (failure !== undefined) throw new TransactionFailedError(what, failure.exitCode, failure.detail);
    if (check === undefined) return;
    const attempts = reportsTransactions(provider) ? 1 : 20;
    for (let i = 1; i <= attempts; i++) {
        if (await check.holds()) {
            ui.clearActionPrompt();
            return;
        }
        if (i < attempts) {
            ui.setActionPrompt(`Waiting for ${check.effect}... [${i}/${attempts}]`);
            await new Promise((resolve) => setTimeout(resolve, 3000));
        }
    }
    ui.clearActionPrompt();
    throw new TransactionFailedError(what, undefined, `${check.effect} was not observed on-chain; look up the transaction in an explorer`);
}

// ---------------------------------------------------------------- disputes and fault proofs

/** escrowStateName, with the Disputed state as well. */
export function escrowStateLabel(state: bigint): string {
    return state === ESCROW_DISPUTED ? 'Disputed' : escrowStateName(state);
}

/** Reads a file's bytes and hashes them with sha256 (e.g. a dispute's evidence); an empty file is refused. */
export async function readFileSha256(path: string, what: string): Promise<{ size: number; sha256: bigint }> {
    let bytes: Buffer;
    try {
        bytes = await fs.readFile(path);
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new InputError(`${what}: cannot read ${path}${code === 'ENOENT' ? ': no such file' : `: ${String(e)}`}`);
    }
    if (bytes.length === 0) throw new InputError(`${what}: ${path} is empty`);
    return { size: bytes.length, sha256: BigInt('0x' + createHash('sha256').update(bytes).digest('hex')) };
}

/** Reads a SignedVerdictJson file and parses the verdict in it (its signatures are not checked here). */
export async function loadVerdictFile(path: string): Promise<SignedVerdict> {
    const json = await readJsonFile(path, 'verdict file');
    if (!isRecord(json) || typeof json.verdict !== 'string' || !isRecord(json.signatures)) {
        throw new InputError(`verdict file ${path}: needs "verdict" (BOC, base64) and "signatures" (arbiter index -> 64 bytes of hex)`);
    }
    let signed: SignedVerdict;
    try {
        signed = signedVerdictFromJson(json as unknown as SignedVerdictJson);
    } catch (e) {
        throw new InputError(`verdict file ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    try {
        parseVerdict(signed.verdict);
    } catch (e) {
        const detail = e instanceof VerdictError ? e.message : `the cell does not hold a Verdict (${e instanceof Error ? e.message : String(e)})`;
        throw new InputError(`verdict file ${path}: ${detail}`);
    }
    return signed;
}

/**
 * Reads an arbiter set: a JSON list of ed25519 public keys (hex, index in the
 * list = arbiter index), or an object with such a list under "arbiters" (a
 * params file).
 */
export async function loadArbitersFile(path: string): Promise<Dictionary<number, bigint>> {
    const json = await readJsonFile(path, 'arbiters file');
    const list = isRecord(json) ? json.arbiters : json;
    if (!Array.isArray(list) || list.length === 0 || list.some((k) => typeof k !== 'string')) {
        throw new InputError(`arbiters file ${path}: needs a non-empty JSON list of arbiter keys (hex), in index order, or an object with one under "arbiters"`);
    }
    return arbiterDictionary((list as string[]).map((k, i) => parseHex256(k, `arbiters file ${path}: arbiter ${i}`)));
}

/** The cell hash of an arbiter map, as the Registry snapshots it (engagement.arbitersHash; 0 for none). */
export function arbitersHashOf(arbiters: Dictionary<number, bigint>): bigint {
    if (arbiters.size === 0) return 0n;
    return BigInt('0x' + beginCell().storeDictDirect(arbiters).endCell().hash().toString('hex'));
}

export function verdictOutcomeName(outcome: bigint): string {
    if (outcome === VERDICT_PROVIDER_WINS) return 'ProviderWins';
    if (outcome === VERDICT_CLIENT_WINS) return 'ClientWins';
    return `unknown outcome ${outcome}`;
}

export function faultName(fault: bigint): string {
    if (fault === FAULT_EQUIVOCATION) return 'equivocation';
    if (fault === FAULT_UNSERVED_MODEL) return 'receipt for an unserved model';
    if (fault === FAULT_AFTER_ATTESTATION) return 'receipt finished after the attestation expired';
    return `fault ${fault}`;
}

/**
 * Fails unless `signed` carries a valid signature by `key` (the Provider's
 * current enclave key), as a fault proof needs: the Provider refuses any other
 * with ERR_BAD_PROOF_SIGNATURE.
 */
export function requireEnclaveSignature(signed: SignedReceipt, key: bigint, source: string): void {
    if (!verifyHash(receiptHash(signed.receipt), signed.signature, key)) {
        throw new InputError(
            `${source}: not signed by the Provider's current enclave key ${hex256(key)}; a proof can only be made against that key (the Provider would refuse it: ERR_BAD_PROOF_SIGNATURE)`,
        );
    }
}

/**
 * Sends a fault proof (ProveEquivocation or ProveInvalidReceipt) to a
 * registered Provider (`before.snapshot` set) with its getProofFee(), and
 * reports the slash: slashBps of the stake, reporterRewardBps of that to this
 * wallet with the unused value, the rest to the treasury; the key is burned
 * and the Provider jailed. The caller has checked the proof itself.
 */
export async function sendFaultProof(
    provider: NetworkProvider,
    contract: OpenedContract<Provider>,
    before: ProviderInfo,
    fault: bigint,
    body: ProveEquivocation | ProveInvalidReceipt,
): Promise<void> {
    const ui = provider.ui();
    const s = before.snapshot;
    if (s === null) throw new StateError('the Provider has never registered: it has no enclave key to prove a fault against');
    const at = formatAddress(provider, contract.address);
    if (before.status === STATUS_JAILED && before.jailReason === JAIL_PROVEN_FAULT) {
        ui.write(
            'Warning: the Provider is Jailed for a proven fault already; if that proof was against its current key, ' +
                'the Provider refuses another (ERR_ALREADY_PROVEN): no getter tells which keys are burned.',
        );
    }
    if (before.stake === 0n) ui.write('Warning: the Provider has no stake: the proof burns its key and jails it, but pays no reward.');
    const value = await contract.getProofFee();
    const slash = (before.stake * s.slashBps) / 10000n;
    const reward = (slash * s.reporterRewardBps) / 10000n;
    ui.write(`Proving ${faultName(fault)} against the Provider ${at} (enclave key ${hex256(before.enclave.signingKey)})`);
    ui.write(
        `  stake ${formatTon(before.stake)}: the proof slashes ${s.slashBps} bps = ${formatTon(slash)}; ${s.reporterRewardBps} bps of that, ${formatTon(reward)}, rewards this wallet`,
    );
    ui.write(`  attached: proof fee ${formatTon(value)} (the unused part comes back with the reward)`);
    await sendAndCheck(provider, body.$$type, () => contract.send(provider.sender(), { value }, body), {
        effect: 'the slash',
        holds: async () => {
            const now = await contract.getInfo();
            return slash > 0n ? now.stake < before.stake : now.status === STATUS_JAILED && now.jailReason === JAIL_PROVEN_FAULT;
        },
    });

    const after = await contract.getInfo();
    const slashed = before.stake - after.stake;
    const paid = (slashed * s.reporterRewardBps) / 10000n;
    ui.write(`Proven: ${faultName(fault)}. The key ${hex256(before.enclave.signingKey)} is burned (never accepted again).`);
    ui.write(`  stake ${formatTon(before.stake)} -> ${formatTon(after.stake)} (slashed ${formatTon(slashed)})`);
    ui.write(`  reward to ${formatAddress(provider, senderAddress(provider))}: ${formatTon(paid)}, with the unused part of the proof fee`);
    ui.write(`  to the treasury ${formatAddress(provider, s.treasury)}: ${formatTon(slashed - paid)}`);
    const reason = jailReasonName(after.jailReason);
    ui.write(`  the Provider is ${statusName(after.status)}${after.jailReason !== 0n ? `, jail reason ${reason}` : ''}`);
}
