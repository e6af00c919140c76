// Settings shared by the property (fuzz) suites: how many runs and which seed.
//
// - CHRYSALIS_FUZZ_RUNS=<n>   runs per property (each suite has its own default,
//                             small enough for CI; `npm run fuzz` sets 200).
// - CHRYSALIS_FUZZ_SEED=<n>   replays a seed; `random` draws a new one.
// - CHRYSALIS_FUZZ_SHRINK=0   reports the first failing sequence as found, without
//                             shrinking it (shrinking replays the sandbox many times).
//
// Without CHRYSALIS_FUZZ_SEED the seed is fixed, so `npm test` (and CI) runs
// the same sequences every time: a red CI run is a real failure that replays
// locally, never a flake. `npm run fuzz` explores with a fresh random seed.
// The seed is printed before the runs, and fast-check prints the seed and
// path of any failure (with its shrunk counterexample) for replay.
import fc from 'fast-check';

/** The seed `npm test` uses. Any fixed number would do; this one is recorded so CI is reproducible. */
export const CI_SEED = 20261125;

export function fuzzSettings(suite: string, defaultRuns: number): fc.Parameters<unknown> {
    const runs = Number(process.env.CHRYSALIS_FUZZ_RUNS ?? defaultRuns);
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`CHRYSALIS_FUZZ_RUNS must be a positive integer, not ${process.env.CHRYSALIS_FUZZ_RUNS}`);
    const asked = process.env.CHRYSALIS_FUZZ_SEED;
    let seed = CI_SEED;
    if (asked === 'random') seed = Math.floor(Math.random() * 0x7fffffff);
    else if (asked !== undefined) {
        seed = Number(asked);
        if (!Number.isInteger(seed)) throw new Error(`CHRYSALIS_FUZZ_SEED must be an integer or "random", not ${asked}`);
    }
    // stdout directly: jest's console adds a stack line to every message.
    process.stdout.write(`${suite}: ${runs} runs, seed ${seed} (replay: CHRYSALIS_FUZZ_SEED=${seed} CHRYSALIS_FUZZ_RUNS=${runs})\n`);
    return { numRuns: runs, seed, endOnFailure: process.env.CHRYSALIS_FUZZ_SHRINK === '0' };
}
