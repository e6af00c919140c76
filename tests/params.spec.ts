// wrappers/params.ts paramsProblems mirrors the Registry's validateParams:
// for random parameter sets near every bound, the Registry accepts a proposal
// exactly when TypeScript finds no problem.
import '@ton/test-utils';
import fc from 'fast-check';
import { toNano } from '@ton/core';
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
} from '../wrappers/Registry';
import { arbiterDictionary, defaultParams, paramsFromJson, paramsProblems, paramsToJson, ParamsError } from '../wrappers/params';
import { deployFixture, Fixture, testKey } from './helpers/fixture';

/** Values at, just inside and just outside a bound. */
const around = (...bounds: bigint[]) => fc.constantFrom(...bounds.flatMap((b) => [b - 1n, b, b + 1n]).filter((v) => v >= 0n));

describe('params', () => {
    let fx: Fixture;
    beforeAll(async () => {
        fx = await deployFixture();
    });

    const keys = Array.from({ length: Number(MAX_ARBITERS) + 1 }, (_, i) => testKey(`arbiter${i}`).publicKeyInt);
    const paramsArb = fc
        .record({
            timelock: around(MIN_TIMELOCK, MAX_TIMELOCK),
            protocolFeeBps: around(0n, MAX_PROTOCOL_FEE_BPS),
            minProviderStake: around(0n, 1n),
            attestationMaxAge: around(0n, MAX_ATTESTATION_AGE),
            maxJobDuration: around(1n, 86400n, MAX_WINDOW),
            disputeWindow: around(1n, 86400n, MAX_WINDOW),
            verdictWindow: around(1n, 86400n),
            disputeBond: around(0n, 1n),
            unbondingSlack: fc.constantFrom(-1n, 0n, 1n, 1000n),
            unbondingHuge: fc.boolean(),
            arbiterCount: fc.integer({ min: 0, max: Number(MAX_ARBITERS) + 1 }),
            quorumDelta: fc.integer({ min: -2, max: 2 }),
            slashBps: around(0n, MAX_SLASH_BPS),
            reporterRewardBps: around(MAX_REPORTER_REWARD_BPS),
            clientCompensationBps: around(10000n),
            arbiterFeeBps: around(0n, 10000n),
        })
        .map((r): Params => {
            const base = defaultParams(fx.treasury.address);
            const n = r.arbiterCount;
            const windows = r.maxJobDuration + r.disputeWindow + r.verdictWindow;
            return {
                ...base,
                ...r,
                unbondingPeriod: r.unbondingHuge ? MAX_UNBONDING_PERIOD + BigInt(r.unbondingSlack) : windows + r.unbondingSlack,
                arbiters: arbiterDictionary(keys.slice(0, n)),
                arbiterQuorum: BigInt(Math.max(0, Math.floor(n / 2) + 1 + r.quorumDelta)),
            };
        });

    it('TypeScript and the Registry agree on which parameter sets are valid', async () => {
        await fc.assert(
            fc.asyncProperty(paramsArb, async (params) => {
                const valid = paramsProblems(params).length === 0;
                const r = await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, { $$type: 'ProposeParams', queryId: 1n, params });
                expect({ valid, accepted: !r.transactions.some((t) => t.description.type === 'generic' && t.description.aborted) }).toEqual({
                    valid,
                    accepted: valid,
                });
                if (valid) await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, { $$type: 'CancelParams', queryId: 2n });
            }),
            { numRuns: 160 },
        );
    });

    it('round-trips the JSON form and names what is wrong in a bad file', () => {
        const params = defaultParams(fx.treasury.address, keys.slice(0, 3));
        const back = paramsFromJson(paramsToJson(params));
        expect(paramsToJson(back)).toEqual(paramsToJson(params));
        const json = paramsToJson(params);
        expect(() => paramsFromJson({ ...json, treasury: 'nope' })).toThrow(ParamsError);
        expect(() => paramsFromJson({ ...json, minProviderStake: '1.5' })).toThrow(/minProviderStake/);
        expect(() => paramsFromJson({ ...json, timelock: -1 })).toThrow(/timelock/);
        expect(() => paramsFromJson({ ...json, arbiters: ['00'] })).toThrow(/arbiters\[0\]/);
    });
});
