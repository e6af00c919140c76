// wrappers/verdict.ts and the Escrow agree on the verdict layout: the Escrow
// accepts every verdict TypeScript builds and a quorum of arbiters signs, and
// changing any single field after signing makes it refuse.
import '@ton/test-utils';
import fc from 'fast-check';
import { beginCell, Cell, toNano } from '@ton/core';
import { SandboxContract, TreasuryContract } from '@ton/sandbox';
import { ERR_BAD_ARBITER_SIGNATURE, ESCROW_DISPUTED, storeVerdict, VERDICT_CLIENT_WINS, VERDICT_PROVIDER_WINS } from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { buildVerdict, parseVerdict, signedVerdictFromJson, signedVerdictToJson, signVerdict, VerdictError, VerdictFields, verifyVerdict } from '../wrappers/verdict';
import { Enclave, Fixture, registerProvider } from './helpers/fixture';
import { ARBITER_SET, ARBITERS, deployDisputeFixture, openDispute, receiptedEscrow, submitVerdict } from './helpers/dispute';

describe('arbiter verdict', () => {
    let fx: Fixture;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let nonce = 0n;

    beforeAll(async () => {
        fx = await deployDisputeFixture();
        ({ provider, enclave } = await registerProvider(fx, 'alice', { stake: toNano('1000') }));
        client = await fx.blockchain.treasury('client');
    });

    async function disputedEscrow(): Promise<SandboxContract<Escrow>> {
        nonce += 1n;
        const { escrow } = await receiptedEscrow(fx, client, provider, enclave, nonce);
        await openDispute(escrow, client);
        expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
        return escrow;
    }

    const fieldsArb = (escrow: SandboxContract<Escrow>, engageId: bigint) =>
        fc
            .record({
                clientWins: fc.boolean(),
                slashAmount: fc.bigInt({ min: 0n, max: toNano('50') }),
                ttl: fc.integer({ min: 0, max: 3600 }),
                signers: fc.subarray([0, 1, 2], { minLength: 2 }),
            })
            .map((r) => ({
                fields: {
                    escrow: escrow.address,
                    engageId,
                    outcome: r.clientWins ? VERDICT_CLIENT_WINS : VERDICT_PROVIDER_WINS,
                    slashAmount: r.slashAmount,
                    deadline: fx.blockchain.now! + r.ttl,
                    feeTo: client.address,
                } satisfies VerdictFields,
                signers: r.signers,
            }));

    it('the Escrow accepts every verdict TypeScript builds and a quorum signs', async () => {
        await fc.assert(
            fc.asyncProperty(fc.integer({ min: 0, max: 1 << 30 }), async (seed) => {
                const escrow = await disputedEscrow();
                const { fields, signers } = fc.sample(fieldsArb(escrow, (await escrow.getInfo()).engageId), { numRuns: 1, seed })[0];
                const verdict = buildVerdict(fields);
                const signed = { verdict, signatures: new Map(signers.map((i) => [i, signVerdict(verdict, ARBITERS[i])])) };
                // The JSON form round-trips, and the TypeScript checks pass.
                const back = signedVerdictFromJson(signedVerdictToJson(signed));
                verifyVerdict(back, { escrow: escrow.address, engageId: fields.engageId, arbiters: ARBITER_SET, quorum: 2n });
                const r = await submitVerdict(escrow, client, back);
                expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
                expect((await fx.blockchain.getContract(escrow.address)).accountState).toBeUndefined();
            }),
            { numRuns: 6 },
        );
    });

    it('changing any one field after signing makes the Escrow refuse it', async () => {
        const escrow = await disputedEscrow();
        const engageId = (await escrow.getInfo()).engageId;
        const fields: VerdictFields = {
            escrow: escrow.address,
            engageId,
            outcome: VERDICT_CLIENT_WINS,
            slashAmount: toNano('1'),
            deadline: fx.blockchain.now! + 600,
            feeTo: client.address,
        };
        const signatures = (verdict: Cell) => new Map([0, 1].map((i) => [i, signVerdict(verdict, ARBITERS[i])]));
        const original = buildVerdict(fields);
        const sigs = signatures(original);
        const parsed = parseVerdict(original);
        const mutations: Partial<typeof parsed>[] = [
            { tag: parsed.tag ^ 1n },
            { escrow: provider.address },
            { engageId: engageId ^ 1n },
            { outcome: VERDICT_PROVIDER_WINS },
            { slashAmount: parsed.slashAmount + 1n },
            { deadline: parsed.deadline + 1n },
            { feeTo: escrow.address },
        ];
        for (const change of mutations) {
            const tampered = beginCell().store(storeVerdict({ ...parsed, ...change })).endCell();
            const r = await submitVerdict(escrow, client, { verdict: tampered, signatures: sigs });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: Number(ERR_BAD_ARBITER_SIGNATURE) });
            expect(() => verifyVerdict({ verdict: tampered, signatures: sigs }, { escrow: escrow.address, engageId, arbiters: ARBITER_SET, quorum: 2n })).toThrow(
                VerdictError,
            );
        }
        expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
    });

    it('refuses to build or read what the Escrow would refuse', () => {
        expect(() => buildVerdict({ escrow: client.address, engageId: 1n, outcome: 3n, slashAmount: 0n, deadline: 0, feeTo: client.address })).toThrow(VerdictError);
        expect(() => buildVerdict({ escrow: client.address, engageId: 1n, outcome: VERDICT_CLIENT_WINS, slashAmount: -1n, deadline: 0, feeTo: client.address })).toThrow(VerdictError);
        expect(() => signedVerdictFromJson({ verdict: 'not a boc', signatures: {} })).toThrow(VerdictError);
        const verdict = buildVerdict({ escrow: client.address, engageId: 1n, outcome: VERDICT_CLIENT_WINS, slashAmount: 0n, deadline: 0, feeTo: client.address });
        const json = signedVerdictToJson({ verdict, signatures: new Map([[0, Buffer.alloc(64)]]) });
        expect(() => signedVerdictFromJson({ ...json, signatures: { '256': '00'.repeat(64) } })).toThrow(VerdictError);
        expect(() => signedVerdictFromJson({ ...json, signatures: { '0': 'abcd' } })).toThrow(VerdictError);
    });
});
