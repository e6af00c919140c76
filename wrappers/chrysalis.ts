// Names for the numbers the contracts use, so integrators and tests never
// hard-code them. Every value comes from the generated bindings.
import * as generated from './Registry';

export const STATUS_NAMES: Record<string, string> = {
    [generated.STATUS_NONE.toString()]: 'None',
    [generated.STATUS_ACTIVE.toString()]: 'Active',
    [generated.STATUS_UNBONDING.toString()]: 'Unbonding',
    [generated.STATUS_JAILED.toString()]: 'Jailed',
    [generated.STATUS_EXITED.toString()]: 'Exited',
};

export function statusName(status: bigint): string {
    return STATUS_NAMES[status.toString()] ?? `Unknown(${status})`;
}

/** Every named exit code of the contracts (ERR_*), by name. */
export const EXIT_CODES: Readonly<Record<string, number>> = Object.freeze(
    Object.fromEntries(
        Object.entries(generated)
            .filter(([name, value]) => name.startsWith('ERR_') && typeof value === 'bigint')
            .map(([name, value]) => [name, Number(value)]),
    ),
);

/** The name of an exit code, for error messages ("ERR_NOT_OWNER (1001)"). */
export function exitCodeName(code: number): string {
    const entry = Object.entries(EXIT_CODES).find(([, value]) => value === code);
    return entry ? `${entry[0]} (${code})` : `exit code ${code}`;
}

export const ALLOWLISTS = {
    measurement: generated.ALLOWLIST_MEASUREMENT,
    model: generated.ALLOWLIST_MODEL,
    verifier: generated.ALLOWLIST_VERIFIER,
} as const;
export type AllowlistName = keyof typeof ALLOWLISTS;
