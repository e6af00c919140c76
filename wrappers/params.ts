// Registry parameters: defaults, and a JSON form for deploy and governance
// files (amounts in nanoton as decimal strings, times in seconds).
import { Address, Dictionary, toNano } from '@ton/core';
import {
    MAX_ARBITERS,
    MAX_ATTESTATION_AGE,
    MAX_PROTOCOL_FEE_BPS,
    MAX_REPORTER_REWARD_BPS,
    MAX_SLASH_BPS,
    MAX_TIMELOCK,
    MAX_UNBONDING_PERIOD,
    MAX_WINDOW,
    MIN_TIMELOCK,
    Params,
} from './Registry';

export interface ParamsJson {
    minProviderStake: string;
    unbondingPeriod: number;
    attestationMaxAge: number;
    protocolFeeBps: number;
    treasury: string;
    maxJobDuration: number;
    disputeWindow: number;
    verdictWindow: number;
    disputeBond: string;
    arbiterQuorum: number;
    /** ed25519 public keys, hex; index in this list = arbiter index. */
    arbiters: string[];
    timelock: number;
    slashBps: number;
    reporterRewardBps: number;
    clientCompensationBps: number;
    arbiterFeeBps: number;
}

export class ParamsError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ParamsError';
    }
}

const DAY = 86400;

/**
 * Defaults, with the reasoning in docs/SPEC.md ("Parameters"): a day's
 * timelock, a job of at most a day, a day to dispute and three days to rule,
 * so unbonding (7 days) outlasts every window a fault can be proven in; a
 * proven fault takes half the stake, a tenth of which rewards the prover; a
 * lost dispute pays half its slash to the client; the arbiters get a tenth of
 * the bond whichever side wins.
 */
export function defaultParams(treasury: Address, arbiters: bigint[] = []): Params {
    return {
        $$type: 'Params',
        minProviderStake: toNano('100'),
        unbondingPeriod: BigInt(7 * DAY),
        attestationMaxAge: BigInt(7 * DAY),
        protocolFeeBps: 100n,
        treasury,
        maxJobDuration: BigInt(DAY),
        disputeWindow: BigInt(DAY),
        verdictWindow: BigInt(3 * DAY),
        disputeBond: toNano('1'),
        arbiterQuorum: arbiters.length === 0 ? 0n : BigInt(Math.floor(arbiters.length / 2) + 1),
        arbiters: arbiterDictionary(arbiters),
        timelock: BigInt(DAY),
        slashBps: 5000n,
        reporterRewardBps: 1000n,
        clientCompensationBps: 5000n,
        arbiterFeeBps: 1000n,
    };
}

export function arbiterDictionary(keys: bigint[]): Dictionary<number, bigint> {
    const dict = Dictionary.empty(Dictionary.Keys.Uint(8), Dictionary.Values.BigUint(256));
    keys.forEach((key, index) => dict.set(index, key));
    return dict;
}

function hexKey(hex: string, what: string): bigint {
    if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new ParamsError(`${what} must be 32 bytes of hex`);
    return BigInt('0x' + hex);
}

function nonNegativeInt(value: unknown, what: string): bigint {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new ParamsError(`${what} must be a non-negative integer`);
    }
    return BigInt(value);
}

function nanoton(value: unknown, what: string): bigint {
    if (typeof value !== 'string' || !/^[0-9]+$/.test(value)) {
        throw new ParamsError(`${what} must be nanoton as a decimal string`);
    }
    return BigInt(value);
}

/** Parses the JSON form. Range checks are the Registry's (validateParams). */
export function paramsFromJson(json: ParamsJson): Params {
    let treasury: Address;
    try {
        treasury = Address.parse(json.treasury);
    } catch {
        throw new ParamsError('treasury must be a TON address');
    }
    if (!Array.isArray(json.arbiters)) throw new ParamsError('arbiters must be a list of hex keys');
    return {
        $$type: 'Params',
        minProviderStake: nanoton(json.minProviderStake, 'minProviderStake'),
        unbondingPeriod: nonNegativeInt(json.unbondingPeriod, 'unbondingPeriod'),
        attestationMaxAge: nonNegativeInt(json.attestationMaxAge, 'attestationMaxAge'),
        protocolFeeBps: nonNegativeInt(json.protocolFeeBps, 'protocolFeeBps'),
        treasury,
        maxJobDuration: nonNegativeInt(json.maxJobDuration, 'maxJobDuration'),
        disputeWindow: nonNegativeInt(json.disputeWindow, 'disputeWindow'),
        verdictWindow: nonNegativeInt(json.verdictWindow, 'verdictWindow'),
        disputeBond: nanoton(json.disputeBond, 'disputeBond'),
        arbiterQuorum: nonNegativeInt(json.arbiterQuorum, 'arbiterQuorum'),
        arbiters: arbiterDictionary(json.arbiters.map((k, i) => hexKey(k, `arbiters[${i}]`))),
        timelock: nonNegativeInt(json.timelock, 'timelock'),
        slashBps: nonNegativeInt(json.slashBps, 'slashBps'),
        reporterRewardBps: nonNegativeInt(json.reporterRewardBps, 'reporterRewardBps'),
        clientCompensationBps: nonNegativeInt(json.clientCompensationBps, 'clientCompensationBps'),
        arbiterFeeBps: nonNegativeInt(json.arbiterFeeBps, 'arbiterFeeBps'),
    };
}

export function paramsToJson(p: Params): ParamsJson {
    const arbiters: string[] = [];
    for (let i = 0; i < p.arbiters.size; i++) {
        arbiters.push(p.arbiters.get(i)!.toString(16).padStart(64, '0'));
    }
    return {
        minProviderStake: p.minProviderStake.toString(),
        unbondingPeriod: Number(p.unbondingPeriod),
        attestationMaxAge: Number(p.attestationMaxAge),
        protocolFeeBps: Number(p.protocolFeeBps),
        treasury: p.treasury.toString(),
        maxJobDuration: Number(p.maxJobDuration),
        disputeWindow: Number(p.disputeWindow),
        verdictWindow: Number(p.verdictWindow),
        disputeBond: p.disputeBond.toString(),
        arbiterQuorum: Number(p.arbiterQuorum),
        arbiters,
        timelock: Number(p.timelock),
        slashBps: Number(p.slashBps),
        reporterRewardBps: Number(p.reporterRewardBps),
        clientCompensationBps: Number(p.clientCompensationBps),
        arbiterFeeBps: Number(p.arbiterFeeBps),
    };
}

/**
 * The Registry's validateParams in TypeScript, so a bad parameter set is
 * refused before any TON is spent. Empty when the Registry would accept it;
 * tests/params.spec.ts proves the two agree.
 */
export function paramsProblems(p: Params): string[] {
    const problems: string[] = [];
    const inRange = (value: bigint, max: bigint, name: string) => {
        if (value <= 0n || value > max) problems.push(`${name} (${value}) must be from 1 to ${max}`);
    };
    if (p.treasury.workChain !== 0) problems.push(`treasury must be a workchain 0 address`);
    if (p.timelock < MIN_TIMELOCK || p.timelock > MAX_TIMELOCK) {
        problems.push(`timelock (${p.timelock}) must be from ${MIN_TIMELOCK} to ${MAX_TIMELOCK} seconds`);
    }
    if (p.protocolFeeBps > MAX_PROTOCOL_FEE_BPS) problems.push(`protocolFeeBps (${p.protocolFeeBps}) must be at most ${MAX_PROTOCOL_FEE_BPS}`);
    if (p.minProviderStake <= 0n) problems.push('minProviderStake must be more than 0');
    inRange(p.attestationMaxAge, MAX_ATTESTATION_AGE, 'attestationMaxAge');
    inRange(p.maxJobDuration, MAX_WINDOW, 'maxJobDuration');
    inRange(p.disputeWindow, MAX_WINDOW, 'disputeWindow');
    inRange(p.verdictWindow, MAX_WINDOW, 'verdictWindow');
    if (p.disputeBond <= 0n) problems.push('disputeBond must be more than 0');
    inRange(p.slashBps, MAX_SLASH_BPS, 'slashBps');
    if (p.reporterRewardBps > MAX_REPORTER_REWARD_BPS) {
        problems.push(`reporterRewardBps (${p.reporterRewardBps}) must be at most ${MAX_REPORTER_REWARD_BPS}`);
    }
    if (p.clientCompensationBps > 10000n) problems.push(`clientCompensationBps (${p.clientCompensationBps}) must be at most 10000`);
    if (p.arbiterFeeBps > 10000n) problems.push(`arbiterFeeBps (${p.arbiterFeeBps}) must be at most 10000`);
    const windows = p.maxJobDuration + p.disputeWindow + p.verdictWindow;
    if (p.unbondingPeriod <= windows) {
        problems.push(
            `unbondingPeriod (${p.unbondingPeriod}) must exceed maxJobDuration + disputeWindow + verdictWindow (${windows})`,
        );
    }
    if (p.unbondingPeriod > MAX_UNBONDING_PERIOD) problems.push(`unbondingPeriod must be at most ${MAX_UNBONDING_PERIOD}`);
    const keys = p.arbiters.keys().sort((a, b) => a - b);
    if (keys.length > Number(MAX_ARBITERS)) problems.push(`at most ${MAX_ARBITERS} arbiters`);
    if (keys.some((k, i) => k !== i)) problems.push('arbiters must be indexed 0..n-1');
    const n = BigInt(keys.length);
    if (n === 0n ? p.arbiterQuorum !== 0n : p.arbiterQuorum * 2n <= n || p.arbiterQuorum > n) {
        problems.push(`arbiterQuorum (${p.arbiterQuorum}) must be a strict majority of the ${n} arbiters (0 when there are none)`);
    }
    return problems;
}
