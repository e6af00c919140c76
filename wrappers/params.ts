// Registry parameters: defaults, and a JSON form for deploy and governance
// files (amounts in nanoton as decimal strings, times in seconds).
import { Address, Dictionary, toNano } from '@ton/core';
import { Params } from './Registry';

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
 * so unbonding (7 days) outlasts every window a fault can be proven in.
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
    };
}
