// Fault proofs and slashing at the Provider. Anyone proves that the enclave
// key signed two different receipts for one request (equivocation) or a
// receipt it must not have signed (a model outside its attested set, or a job
// finished after its attestation expired): slashBps of the stake goes, the
// prover gets reporterRewardBps of it, the treasury the rest, and the key is
// burned for good. A ClientWins verdict slashes through SlashProvider, which
// neither unbonding nor a withdrawal in the same block can outrun. Amounts are
// checked to the nanoton where the protocol fixes them.
import '@ton/test-utils';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { BlockchainSnapshot, BlockchainTransaction, internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { executeFrom, executeTill, flattenTransaction } from '@ton/test-utils';
import {
    ATTESTATION_TAG,
    ERR_ALREADY_PROVEN,
    ERR_BAD_PROOF_SIGNATURE,
    ERR_INSUFFICIENT_VALUE,
    ERR_JOBS_OPEN,
    ERR_NOT_A_FAULT,
    ERR_NOT_REGISTERED,
    ERR_WRONG_SENDER,
    ESCROW_DISPUTED,
    FAULT_AFTER_ATTESTATION,
    FAULT_EQUIVOCATION,
    FAULT_UNSERVED_MODEL,
    GAS_PROVIDER_PROOF,
    GAS_PROVIDER_SLASH,
    JOB_SETTLE_GRACE,
    JAIL_PROVEN_FAULT,
    JAIL_STAKE_BELOW_MINIMUM,
    loadFaultReward,
    loadRegistrationRefused,
    loadSlashPayment,
    loadStakeWithdrawn,
    ProveEquivocation,
    ProveInvalidReceipt,
    PROVIDER_STORAGE_RESERVE,
    REFUSED_KEY_BURNED,
    STATUS_ACTIVE,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
    storeCompletionReceipt,
    storeProveEquivocation,
    storeSlashProvider,
    storeSubmitVerdict,
    storeWithdrawStake,
    VERDICT_CLIENT_WINS,
    VERDICT_TAG,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { defaultParams } from '../wrappers/params';
import { buildStatement, reattestMessage } from '../wrappers/attestation';
import { signHash } from '../wrappers/ed25519';
import {
    proveEquivocationMessage,
    proveInvalidReceiptMessage,
    ReceiptError,
    ReceiptFields,
    SignedReceipt,
    signedReceiptCell,
    signReceipt,
    submitReceiptMessage,
} from '../wrappers/receipt';
import { submitVerdictMessage } from '../wrappers/verdict';
import { claimsFor, Enclave, Fixture, MODEL_A, MODEL_B, openEscrow, registerProvider, signedFor, testEnclave, testKey } from './helpers/fixture';
import { ARBITER_SET, ARBITERS, deployDisputeFixture, expectClientWinsPayouts, openDispute, receiptedEscrow, receiptFields, REQUEST, submitVerdict, verdictFor } from './helpers/dispute';
import { computeGas, messagesBetween, networkFees, storageFees, txAt } from './helpers/tx';

const code = (c: bigint) => Number(c);
/** A model no allowlist or statement names. */
const UNSERVED_MODEL = 0x999n;
const OWNER_VALUE = toNano('0.05');

describe('Slashing', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let reporter: SandboxContract<TreasuryContract>;
    let runner: SandboxContract<TreasuryContract>;
    let arbiterWallet: SandboxContract<TreasuryContract>;
    /** When alice registered: her model set has been in effect since then. */
    let registeredAt: number;
    /** Where the receipts of proofs that need no real escrow say they are from. */
    let jobEscrow: Address;
    let proofFee: bigint;
    let nonce = 0n;

    // One deployment for the whole suite, restored before each test (time included):
    // the Registry, its allowlists and alice's registration cost more than most tests.
    let deployed: BlockchainSnapshot;
    beforeAll(async () => {
        fx = await deployDisputeFixture();
        registeredAt = fx.blockchain.now!;
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        reporter = await fx.blockchain.treasury('reporter');
        runner = await fx.blockchain.treasury('runner');
        arbiterWallet = await fx.blockchain.treasury('arbiters');
        jobEscrow = await provider.getEscrowFor(client.address, 1000n);
        proofFee = await provider.getProofFee();
        deployed = fx.blockchain.snapshot();
    });

    beforeEach(async () => {
        await fx.blockchain.loadFrom(deployed);
    });

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;

    /** A receipt for jobEscrow's request, signed by alice's enclave unless `key` is given. */
    function receipt(overrides: Partial<ReceiptFields> = {}, key = enclave.signing): SignedReceipt {
        return signReceipt(receiptFields(jobEscrow, 1n, fx, overrides), key);
    }

    /** ProveEquivocation as sent, without the client-side checks of proveEquivocationMessage. */
    function equivocation(first: SignedReceipt, second: SignedReceipt, queryId = 0n): ProveEquivocation {
        return { $$type: 'ProveEquivocation', queryId, first: signedReceiptCell(first), second: signedReceiptCell(second) };
    }

    function prove(body: ProveEquivocation | ProveInvalidReceipt, opts: { from?: SandboxContract<TreasuryContract>; value?: bigint } = {}) {
        return provider.send((opts.from ?? reporter).getSender(), { value: opts.value ?? proofFee }, body);
    }

    /** The FaultReward `to` received from the Provider in `r` (exactly one). */
    function faultRewardTo(r: SendMessageResult, to: Address) {
        const msgs = messagesBetween(r, provider.address, to);
        expect(msgs).toHaveLength(1);
        expect(msgs[0].bounce).toBe(false);
        return { ...loadFaultReward(msgs[0].body.beginParse()), value: msgs[0].value };
    }

    /**
     * Sends what `send` sends and expects the Provider to refuse it with
     * `exitCode`: the value bounces back to the sender, and the stake, status,
     * key and treasury are untouched.
     */
    async function expectRefused(send: () => Promise<SendMessageResult>, from: Address, exitCode: bigint) {
        const before = await provider.getInfo();
        const balance = await balanceOf(provider.address);
        const r = await send();
        expect(r.transactions).toHaveTransaction({ from, to: provider.address, success: false, exitCode: code(exitCode) });
        expect(r.transactions).toHaveTransaction({ from: provider.address, to: from, inMessageBounced: true });
        expect(messagesBetween(r, provider.address, fx.treasury.address)).toHaveLength(0);
        const after = await provider.getInfo();
        expect([after.status, after.jailReason, after.stake, after.enclave.signingKey, after.disputesLost]).toEqual([
            before.status,
            before.jailReason,
            before.stake,
            before.enclave.signingKey,
            before.disputesLost,
        ]);
        // A refused message costs the Provider nothing but the rent its storage phase collected, if time has passed.
        expect(await balanceOf(provider.address)).toBe(balance - storageFees(chain([txAt(r, provider.address)])));
        return r;
    }

    /** What a proven fault must have done to a Provider that had `stake`: everything but the reporter's side. */
    async function expectPunished(r: SendMessageResult, stake: bigint, fault: bigint, queryId = 0n) {
        const slashed = (stake * fx.params.slashBps) / 10000n;
        const reward = (slashed * fx.params.reporterRewardBps) / 10000n;
        expect(r.transactions).toHaveTransaction({ from: reporter.address, to: provider.address, success: true });
        // The proof fee was computed from this bound: the proof must not use more gas.
        expect(computeGas(txAt(r, provider.address))).toBeLessThanOrEqual(GAS_PROVIDER_PROOF);
        const toTreasury = messagesBetween(r, provider.address, fx.treasury.address);
        expect(toTreasury.map((m) => m.value)).toEqual([slashed - reward]);
        expect(toTreasury[0].bounce).toBe(false);
        const payment = loadSlashPayment(toTreasury[0].body.beginParse());
        expect(payment.queryId).toBe(queryId);
        expect(payment.provider.equals(provider.address)).toBe(true);
        const fr = faultRewardTo(r, reporter.address);
        expect([fr.queryId, fr.fault, fr.reward]).toEqual([queryId, fault, reward]);
        // Sent with exactly the proof fee, the reward arrives whole: the fee covered the Provider's costs.
        expect(fr.value).toBeGreaterThanOrEqual(reward);
        const info = await provider.getInfo();
        expect(info.stake).toBe(stake - slashed);
        expect([info.status, info.jailReason]).toEqual([STATUS_JAILED, JAIL_PROVEN_FAULT]);
        expect(await provider.getAcceptsJobs()).toBe(false);
        // Everything above the new stake and the storage reserve left the Provider.
        expect(await balanceOf(provider.address)).toBe(info.stake + PROVIDER_STORAGE_RESERVE);
        return { slashed, reward };
    }

    async function reattest(e: Enclave, opts: { stake?: bigint; models?: bigint[] } = {}) {
        const signed = signedFor(fx, owner.address, e, opts.models ? { models: opts.models } : {});
        const value = (await fx.registry.getAttestationFee()) + (opts.stake ?? 0n);
        return fx.registry.send(owner.getSender(), { value }, reattestMessage(signed, opts.stake ?? 0n));
    }

    describe('equivocation', () => {
        it.each([
            ['in responseHash', { responseHash: 0xbeefn + 1n }],
            ['only in amount', { amount: toNano('1.5') - 1n }],
        ])('two receipts for one request differing %s: half the stake goes, a tenth of it to the prover', async (_, diff) => {
            // A real job: the receipt the escrow accepted, and another the same key signed for it.
            nonce += 1n;
            const { escrow, fields } = await receiptedEscrow(fx, client, provider, enclave, nonce);
            const accepted = signReceipt(fields, enclave.signing);
            const conflicting = signReceipt({ ...fields, ...diff }, enclave.signing);
            const stake = await provider.getStake();
            const treasuryBefore = await balanceOf(fx.treasury.address);
            const reporterBefore = await balanceOf(reporter.address);
            const r = await prove(proveEquivocationMessage(accepted, conflicting, 42n));
            const { slashed, reward } = await expectPunished(r, stake, FAULT_EQUIVOCATION, 42n);
            expect(slashed).toBe(toNano('50'));
            expect(reward).toBe(toNano('5'));
            // The treasury's share arrives whole; the treasury pays only its own receipt of it.
            const treasuryTx = txAt(r, fx.treasury.address);
            expect((await balanceOf(fx.treasury.address)) - treasuryBefore).toBe(slashed - reward - treasuryTx.totalFees.coins);
            // The prover gains the reward less every fee of the chain but the treasury's:
            // the Provider's compute and forwarding come out of the proof's value.
            const proverFees = networkFees(r) - treasuryTx.totalFees.coins;
            expect((await balanceOf(reporter.address)) - reporterBefore).toBe(reward - proverFees);
            // The escrow is not the Provider's business here: it still holds the job.
            expect((await escrow.getInfo()).amount).toBe(fields.amount);
        });

        it('a key pays once; the burned key cannot come back; a fresh key with enough stake returns to service and is provable again', async () => {
            const a = receipt();
            const b = receipt({ responseHash: 0xbadn });
            const fresh = testEnclave('alice-v2');
            expect(await provider.getKeyBurned(enclave.signing.publicKeyInt)).toBe(false);
            await expectPunished(await prove(proveEquivocationMessage(a, b)), toNano('100'), FAULT_EQUIVOCATION);
            expect(await provider.getKeyBurned(enclave.signing.publicKeyInt)).toBe(true);
            expect(await provider.getKeyBurned(fresh.signing.publicKeyInt)).toBe(false);
            const stake = toNano('50');

            // The same proof, a different equivocation and an invalid receipt by the same key: refused.
            await expectRefused(() => prove(proveEquivocationMessage(a, b)), reporter.address, ERR_ALREADY_PROVEN);
            const other = await fx.blockchain.treasury('other-reporter');
            const c = receipt({ requestHash: 0x51n });
            const d = receipt({ requestHash: 0x51n, outputUnits: 1n });
            await expectRefused(() => prove(proveEquivocationMessage(c, d), { from: other }), other.address, ERR_ALREADY_PROVEN);
            await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash: UNSERVED_MODEL })), { from: other }), other.address, ERR_ALREADY_PROVEN);

            // Re-attesting with the burned key is refused and the value comes back, less the fees.
            const ownerBefore = await balanceOf(owner.address);
            let r = await reattest(enclave, { stake: toNano('50') });
            const refused = messagesBetween(r, provider.address, owner.address);
            expect(refused).toHaveLength(1);
            const refusal = loadRegistrationRefused(refused[0].body.beginParse());
            expect(refusal.reason).toBe(REFUSED_KEY_BURNED);
            expect(ownerBefore - (await balanceOf(owner.address))).toBe(networkFees(r));
            let info = await provider.getInfo();
            expect([info.status, info.stake, info.enclave.signingKey]).toEqual([STATUS_JAILED, stake, enclave.signing.publicKeyInt]);
            expect(await balanceOf(provider.address)).toBe(stake + PROVIDER_STORAGE_RESERVE);

            // A fresh key is accepted, but 50 TON is under the 100 TON minimum: still jailed.
            r = await reattest(fresh);
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: owner.address, op: 0xd53276db });
            info = await provider.getInfo();
            expect([info.status, info.jailReason, info.enclave.signingKey]).toEqual([STATUS_JAILED, JAIL_PROVEN_FAULT, fresh.signing.publicKeyInt]);
            // The replaced key stays provable while its jobs can settle, but it has paid: it is not charged again.
            await expectRefused(() => prove(proveEquivocationMessage(c, d)), reporter.address, ERR_ALREADY_PROVEN);
            // A top-up alone does not release the jail; the next re-attestation does.
            await provider.send(owner.getSender(), { value: toNano('50') + (await provider.getSimpleFee()) }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('50') });
            expect([await provider.getStatus(), await provider.getStake()]).toEqual([STATUS_JAILED, toNano('100')]);
            await reattest(fresh);
            info = await provider.getInfo();
            expect([info.status, info.jailReason]).toEqual([STATUS_ACTIVE, 0n]);
            expect(await provider.getAcceptsJobs()).toBe(true);

            // The new key equivocates: proven like the first, from the restored stake.
            const e = receipt({ requestHash: 0x52n }, fresh.signing);
            const f = receipt({ requestHash: 0x52n, responseHash: 0x1n }, fresh.signing);
            await expectPunished(await prove(proveEquivocationMessage(e, f, 3n)), toNano('100'), FAULT_EQUIVOCATION, 3n);
            // Both keys stay burned.
            for (const burned of [enclave, fresh]) {
                expect(await provider.getKeyBurned(burned.signing.publicKeyInt)).toBe(true);
                r = await reattest(burned);
                expect(loadRegistrationRefused(messagesBetween(r, provider.address, owner.address)[0].body.beginParse()).reason).toBe(REFUSED_KEY_BURNED);
            }
        });


        it('rotating the enclave key does not escape a proof: the replaced key stays provable until its jobs can settle', async () => {
            const a = receipt();
            const b = receipt({ responseHash: 0xbadn });
            const fresh = testEnclave('alice-rotated');
            // The owner re-attests with a fresh key right after the enclave equivocated.
            const rotated = await reattest(fresh);
            const provableUntil = BigInt(fx.blockchain.now!) + fx.params.disputeWindow + fx.params.verdictWindow;
            expect(rotated.transactions).toHaveTransaction({ from: provider.address, to: owner.address, op: 0xd53276db });
            expect((await provider.getInfo()).enclave.signingKey).toBe(fresh.signing.publicKeyInt);
            // For a dispute and a verdict window (and until its jobs can settle), the old key's equivocation is proven as if it were current.
            fx.blockchain.now = Number(provableUntil);
            await expectPunished(await prove(proveEquivocationMessage(a, b)), toNano('100'), FAULT_EQUIVOCATION);
            expect(await provider.getKeyBurned(enclave.signing.publicKeyInt)).toBe(true);
            expect(await provider.getKeyBurned(fresh.signing.publicKeyInt)).toBe(false);
        });

        it('after the replaced key\'s jobs have settled, its receipts are no longer provable', async () => {
            const a = receipt();
            const b = receipt({ responseHash: 0xbadn });
            await reattest(testEnclave('alice-rotated'));
            const info = await provider.getInfo();
            const provableUntil = BigInt(fx.blockchain.now!) + fx.params.disputeWindow + fx.params.verdictWindow;
            fx.blockchain.now = Number(provableUntil > info.jobsSettleBy ? provableUntil : info.jobsSettleBy) + 1;
            await expectRefused(() => prove(proveEquivocationMessage(a, b)), reporter.address, ERR_BAD_PROOF_SIGNATURE);
        });
        it('an unbonding provider is still provable: slashed and jailed', async () => {
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            expect(await provider.getStatus()).toBe(STATUS_UNBONDING);
            await expectPunished(await prove(proveEquivocationMessage(receipt(), receipt({ responseHash: 0xbadn }))), toNano('100'), FAULT_EQUIVOCATION);
        });

        it('two proofs of one equivocation in one block: the first pays, the second is refused', async () => {
            const body = beginCell().store(storeProveEquivocation(proveEquivocationMessage(receipt(), receipt({ responseHash: 0xbadn })))).endCell();
            const second = await fx.blockchain.treasury('second-reporter');
            const pending = (from: Address) =>
                fx.blockchain.sendMessageIter(internal({ from, to: provider.address, value: proofFee, body }), { allowParallel: true });
            const first = await pending(reporter.address);
            const late = await pending(second.address);
            // The first proof runs; its payouts are still in flight when the second arrives.
            const firstAtProvider = await executeTill(first, { to: provider.address });
            expect(flattenTransaction(firstAtProvider[firstAtProvider.length - 1]).success).toBe(true);
            const lateTxs = await executeFrom(late);
            expect(flattenTransaction(lateTxs[0]).exitCode).toBe(code(ERR_ALREADY_PROVEN));
            expect(lateTxs).toHaveTransaction({ from: provider.address, to: second.address, inMessageBounced: true });
            const firstTxs = [...firstAtProvider, ...(await executeFrom(first))];
            const all = chain([...firstTxs, ...lateTxs]);
            // One reward, one treasury share, one halving.
            const rewards = messagesBetween(all, provider.address, reporter.address).map((m) => loadFaultReward(m.body.beginParse()));
            expect(rewards.map((m) => [m.fault, m.reward])).toEqual([[FAULT_EQUIVOCATION, toNano('5')]]);
            expect(messagesBetween(all, provider.address, second.address).filter((m) => !isBounce(m.body))).toHaveLength(0);
            expect(messagesBetween(all, provider.address, fx.treasury.address).map((m) => m.value)).toEqual([toNano('45')]);
            expect(await provider.getStake()).toBe(toNano('50'));
            expect(await balanceOf(provider.address)).toBe(toNano('50') + PROVIDER_STORAGE_RESERVE);
        });
    });

    describe('proofs that prove nothing', () => {
        it('receipts for different requests, escrows or openings, or one receipt twice, are no equivocation', async () => {
            const a = receipt();
            const otherEscrow = await provider.getEscrowFor(client.address, 1001n);
            const cases: [string, SignedReceipt][] = [
                ['another request', receipt({ requestHash: 0x99n, responseHash: 0x1n })],
                ['another escrow', signReceipt(receiptFields(otherEscrow, 1n, fx, { responseHash: 0x1n }), enclave.signing)],
                ['another opening of the escrow', signReceipt(receiptFields(jobEscrow, 2n, fx, { responseHash: 0x1n }), enclave.signing)],
                ['the same receipt', a],
            ];
            for (const [, b] of cases) {
                // The wrapper refuses to build these; a prover who builds them anyway pays for nothing.
                expect(() => proveEquivocationMessage(a, b)).toThrow(ReceiptError);
                await expectRefused(() => prove(equivocation(a, b)), reporter.address, ERR_NOT_A_FAULT);
            }
            expect((await provider.getInfo()).status).toBe(STATUS_ACTIVE);
        });

        it('a receipt signed by any key but the current enclave key is refused', async () => {
            const mine = receipt();
            for (const key of [testEnclave('bob').signing, testKey('client'), fx.verifier]) {
                const theirs = receipt({ responseHash: 0x1n }, key);
                await expectRefused(() => prove(equivocation(mine, theirs)), reporter.address, ERR_BAD_PROOF_SIGNATURE);
                await expectRefused(() => prove(equivocation(theirs, mine)), reporter.address, ERR_BAD_PROOF_SIGNATURE);
                await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash: UNSERVED_MODEL }, key))), reporter.address, ERR_BAD_PROOF_SIGNATURE);
            }
            // A valid signature over another cell than the one carried.
            const forged = { receipt: receipt({ responseHash: 0x2n }).receipt, signature: mine.signature };
            await expectRefused(() => prove(equivocation(mine, forged)), reporter.address, ERR_BAD_PROOF_SIGNATURE);
        });

        it('a signed cell that is not a completion receipt is no fault', async () => {
            // The receipt layout under another domain's tag, signed by the enclave key.
            for (const tag of [ATTESTATION_TAG, VERDICT_TAG, 0n]) {
                const fields = receiptFields(jobEscrow, 1n, fx, { modelHash: UNSERVED_MODEL });
                const cell = beginCell()
                    .store(storeCompletionReceipt({ $$type: 'CompletionReceipt', tag, ...fields, finishedAt: BigInt(fields.finishedAt) }))
                    .endCell();
                const signed = { receipt: cell, signature: signHash(cell.hash(), enclave.signing) };
                await expectRefused(() => prove({ $$type: 'ProveInvalidReceipt', queryId: 0n, signed: signedReceiptCell(signed) }), reporter.address, ERR_NOT_A_FAULT);
                await expectRefused(() => prove(equivocation(receipt(), signed)), reporter.address, ERR_NOT_A_FAULT);
            }
            // A whole attestation statement signed by the enclave key: refused too, but
            // by the parser (cell underflow, 9) before any tag is compared, since the
            // statement is shorter than a receipt's root cell.
            const statement = buildStatement(claimsFor(fx, owner.address, enclave));
            const attested = { receipt: statement, signature: signHash(statement.hash(), enclave.signing) };
            await expectRefused(() => prove({ $$type: 'ProveInvalidReceipt', queryId: 0n, signed: signedReceiptCell(attested) }), reporter.address, 9n);
        });

        it('one nanoton under the proof fee is refused before anything else', async () => {
            const a = receipt();
            const b = receipt({ responseHash: 0xbadn });
            await expectRefused(() => prove(proveEquivocationMessage(a, b), { value: proofFee - 1n }), reporter.address, ERR_INSUFFICIENT_VALUE);
            await expectRefused(
                () => prove(proveInvalidReceiptMessage(receipt({ modelHash: UNSERVED_MODEL })), { value: proofFee - 1n }),
                reporter.address,
                ERR_INSUFFICIENT_VALUE,
            );
            // Exactly the fee is enough.
            await expectPunished(await prove(proveEquivocationMessage(a, b)), toNano('100'), FAULT_EQUIVOCATION);
        });

        it('a Provider that never registered has nothing to prove against', async () => {
            const stranger = await fx.blockchain.treasury('stranger');
            const outsider = await fx.blockchain.treasury('outsider');
            const unregistered = fx.blockchain.openContract(await Provider.fromInit(fx.registry.address, stranger.address));
            expect(unregistered.address.equals(await fx.registry.getProviderAddress(stranger.address))).toBe(true);
            // A TopUpStake carrying the StateInit deploys the account although the
            // handler refuses it: the code and data stay, the value bounces back.
            const topUp = await unregistered.send(outsider.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') });
            expect(topUp.transactions).toHaveTransaction({ from: outsider.address, to: unregistered.address, deploy: true, success: false, exitCode: code(ERR_NOT_REGISTERED) });
            expect(topUp.transactions).toHaveTransaction({ from: unregistered.address, to: outsider.address, inMessageBounced: true });
            expect((await fx.blockchain.getContract(unregistered.address)).accountState?.type).toBe('active');
            const info = await unregistered.getInfo();
            expect([info.status, info.stake, info.enclave.signingKey, info.snapshot]).toEqual([STATUS_NONE, 0n, 0n, null]);
            // It has no enclave key and no stake: any proof is refused before its signatures are read.
            const a = receipt();
            const b = receipt({ responseHash: 0xbadn });
            for (const body of [proveEquivocationMessage(a, b), proveInvalidReceiptMessage(receipt({ modelHash: UNSERVED_MODEL }))]) {
                const r = await unregistered.send(reporter.getSender(), { value: proofFee }, body);
                expect(r.transactions).toHaveTransaction({ from: reporter.address, to: unregistered.address, deploy: false, success: false, exitCode: code(ERR_NOT_REGISTERED) });
                expect(r.transactions).toHaveTransaction({ from: unregistered.address, to: reporter.address, inMessageBounced: true });
                expect(messagesBetween(r, unregistered.address, fx.treasury.address)).toHaveLength(0);
            }
            expect(await unregistered.getStatus()).toBe(STATUS_NONE);
        });
    });

    describe('invalid receipts', () => {
        it('a model outside the attested set, finished the second the set took effect: FAULT_UNSERVED_MODEL', async () => {
            // Alice registered at registeredAt with no job open: her set [A, B] has been in effect since exactly then.
            expect(await provider.getModelsSince()).toBe(BigInt(registeredAt));
            const r = await prove(proveInvalidReceiptMessage(receipt({ modelHash: UNSERVED_MODEL, finishedAt: registeredAt }), 5n));
            await expectPunished(r, toNano('100'), FAULT_UNSERVED_MODEL, 5n);
        });

        it('finished after the attestation expired: FAULT_AFTER_ATTESTATION, even for a served model', async () => {
            const validUntil = Number((await provider.getInfo()).attestationValidUntil);
            // Finishing the second the attestation expires is still covered.
            await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ finishedAt: validUntil }))), reporter.address, ERR_NOT_A_FAULT);
            const r = await prove(proveInvalidReceiptMessage(receipt({ finishedAt: validUntil + 1 }), 6n));
            await expectPunished(r, toNano('100'), FAULT_AFTER_ATTESTATION, 6n);
        });

        it('a receipt for a served model within the attestation is no fault', async () => {
            for (const modelHash of [MODEL_A, MODEL_B]) {
                await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash }))), reporter.address, ERR_NOT_A_FAULT);
                await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash, finishedAt: registeredAt }))), reporter.address, ERR_NOT_A_FAULT);
            }
        });

        it('the model set is judged from the last re-attestation on', async () => {
            // An hour later alice, with no job open, re-attests with the same key, serving MODEL_A only.
            fx.blockchain.now = registeredAt + 3600;
            await reattest(enclave, { models: [MODEL_A] });
            const since = fx.blockchain.now;
            expect(await provider.getModelsSince()).toBe(BigInt(since));
            expect(await provider.getServesModel(MODEL_B)).toBe(false);
            // Before the new set took effect the Provider cannot tell what was served:
            // neither the dropped model nor one never served is a fault.
            for (const modelHash of [MODEL_B, UNSERVED_MODEL]) {
                await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash, finishedAt: since - 1 }))), reporter.address, ERR_NOT_A_FAULT);
            }
            await expectRefused(() => prove(proveInvalidReceiptMessage(receipt({ modelHash: MODEL_A, finishedAt: since }))), reporter.address, ERR_NOT_A_FAULT);
            // From then on the dropped model is.
            const r = await prove(proveInvalidReceiptMessage(receipt({ modelHash: MODEL_B, finishedAt: since }), 7n));
            await expectPunished(r, toNano('100'), FAULT_UNSERVED_MODEL, 7n);
        });

        it('a job engaged before a re-attestation that dropped its model may still finish; after its windows the model is a fault', async () => {
            // A MODEL_B job engaged under [A, B], due in an hour; then alice re-attests serving MODEL_A only.
            nonce += 1n;
            const { escrow } = await openEscrow(fx, client, provider.address, nonce, { requestHash: REQUEST, modelHash: MODEL_B, maxAmount: toNano('2'), deadline: fx.blockchain.now! + 3600 });
            const { engageId, deadline } = await escrow.getInfo();
            await reattest(enclave, { models: [MODEL_A] });
            const settleBy = (await provider.getInfo()).jobsSettleBy;
            expect(await provider.getModelsSince()).toBe(settleBy);
            // The enclave finishes the job at its deadline: the escrow takes the receipt, and it proves nothing.
            fx.blockchain.now = Number(deadline);
            const honest = signReceipt(receiptFields(escrow.address, engageId, fx, { modelHash: MODEL_B }), enclave.signing);
            const submitted = await escrow.send(runner.getSender(), { value: await escrow.getTriggerFee() }, submitReceiptMessage(honest));
            expect(submitted.transactions).toHaveTransaction({ to: escrow.address, success: true });
            await expectRefused(() => prove(proveInvalidReceiptMessage(honest)), reporter.address, ERR_NOT_A_FAULT);
            // Once no job of the old set can still be open, MODEL_B is judged against the new set.
            const r = await prove(proveInvalidReceiptMessage(receipt({ modelHash: MODEL_B, finishedAt: Number(settleBy) }), 8n));
            await expectPunished(r, toNano('100'), FAULT_UNSERVED_MODEL, 8n);
        });
    });

    describe('SlashProvider (ClientWins)', () => {
        /** A receipted job of alice's the client has disputed. */
        async function disputed() {
            nonce += 1n;
            const { escrow } = await receiptedEscrow(fx, client, provider, enclave, nonce);
            await openDispute(escrow, client);
            return escrow;
        }

        const clientWins = async (escrow: SandboxContract<Escrow>, slashAmount: bigint) =>
            verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount, feeTo: arbiterWallet.address });

        const withdrawStake = (queryId: bigint) => provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'WithdrawStake', queryId });

        /** The StakeWithdrawn amounts the Provider sent its owner in `txs`. */
        function withdrawnIn(txs: BlockchainTransaction[]): bigint[] {
            return messagesBetween(chain(txs), provider.address, owner.address)
                .filter((m) => m.body.beginParse().loadUint(32) === 0x20000021)
                .map((m) => loadStakeWithdrawn(m.body.beginParse()).amount);
        }

        /** Governance proposes every window and the unbonding period in hours; executable a timelock from now. */
        async function proposeShortWindows() {
            const hour = 3600n;
            const short = {
                ...defaultParams(fx.treasury.address, ARBITERS.map((k) => k.publicKeyInt)),
                maxJobDuration: hour,
                disputeWindow: hour,
                verdictWindow: hour,
                unbondingPeriod: 4n * hour,
            };
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'ProposeParams', queryId: 1n, params: short });
            return fx.blockchain.now! + Number(fx.params.timelock);
        }

        /** The short windows take effect; alice re-attests into them and unbonds (withdrawable in 4 hours). */
        async function shortenAndUnbond() {
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'ExecuteParams', queryId: 2n });
            await reattest(enclave);
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 3n });
            const info = await provider.getInfo();
            expect([info.status, info.withdrawableAt]).toEqual([STATUS_UNBONDING, BigInt(fx.blockchain.now! + 4 * 3600)]);
            return info;
        }

        /**
         * A job disputed under the default windows; then governance shortens
         * every window and the unbonding period to hours, alice re-attests into
         * them and unbonds. Her withdrawal time comes while the dispute is open:
         * only the open job holds the stake.
         */
        async function unbondedDuringDispute() {
            const escrow = await disputed();
            fx.blockchain.now = await proposeShortWindows();
            await shortenAndUnbond();
            const info = await provider.getInfo();
            expect(info.openJobs).toBe(1n);
            fx.blockchain.now = Number(info.withdrawableAt);
            expect(fx.blockchain.now).toBeLessThan(Number((await escrow.getInfo()).verdictBy));
            expect(fx.blockchain.now).toBeLessThanOrEqual(Number(info.jobsSettleBy));
            return escrow;
        }

        it('only the escrow derived from its fields may slash', async () => {
            const escrow = await disputed();
            const mallory = await fx.blockchain.treasury('mallory');
            // Mallory's own (client, nonce), and the real escrow's: neither derives to Mallory.
            for (const [c, n] of [
                [mallory.address, 1n],
                [client.address, nonce],
            ] as const) {
                const body = beginCell()
                    .store(storeSlashProvider({ $$type: 'SlashProvider', queryId: 1n, client: c, nonce: n, amount: toNano('100'), feeTo: mallory.address, arbiterFee: toNano('100') }))
                    .endCell();
                await expectRefused(() => mallory.send({ to: provider.address, value: toNano('1'), body }), mallory.address, ERR_WRONG_SENDER);
            }
            const info = await provider.getInfo();
            expect([info.openJobs, info.disputesLost, info.stake]).toEqual([1n, 0n, toNano('100')]);
            expect((await escrow.getInfo()).state).toBe(ESCROW_DISPUTED);
        });

        it('a slash larger than the stake takes exactly the stake; a later one finds nothing to take', async () => {
            const escrow = await disputed();
            const second = await disputed();
            const stake = await provider.getStake();
            const r = await submitVerdict(escrow, runner, await clientWins(escrow, stake * 10n));
            const slashTx = txAt(r, provider.address);
            expect(flattenTransaction(slashTx).success).toBe(true);
            expect(computeGas(slashTx)).toBeLessThanOrEqual(GAS_PROVIDER_SLASH);
            // The arbiters' fee comes off the top (what the bond would have paid them), the client gets its share of the rest.
            const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
            const compensation = ((stake - arbiterFee) * fx.params.clientCompensationBps) / 10000n;
            expect(messagesBetween(r, provider.address, client.address).map((m) => m.value)).toEqual([compensation]);
            expect(messagesBetween(r, provider.address, arbiterWallet.address).map((m) => m.value)).toEqual([arbiterFee]);
            // The treasury gets the rest of the stake and what is left of the escrow's slash budget.
            const toTreasury = messagesBetween(r, provider.address, fx.treasury.address).map((m) => m.value);
            expect(toTreasury).toHaveLength(1);
            const rest = stake - compensation - arbiterFee;
            const budget = slashTx.inMessage!.info.type === 'internal' ? slashTx.inMessage!.info.value.coins : 0n;
            expect(toTreasury[0]).toBeGreaterThanOrEqual(rest);
            expect(toTreasury[0]).toBeLessThan(rest + budget);
            let info = await provider.getInfo();
            expect([info.stake, info.status, info.jailReason, info.openJobs, info.disputesLost]).toEqual([0n, STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM, 1n, 1n]);
            expect(await balanceOf(provider.address)).toBe(PROVIDER_STORAGE_RESERVE);

            // The other disputed job is lost too: nothing is left, so nobody is paid from stake.
            const again = await submitVerdict(second, runner, await clientWins(second, toNano('30')));
            expect(again.transactions).toHaveTransaction({ from: second.address, to: provider.address, success: true });
            expect(messagesBetween(again, provider.address, client.address)).toHaveLength(0);
            expect(messagesBetween(again, provider.address, arbiterWallet.address)).toHaveLength(0);
            const leftover = messagesBetween(again, provider.address, fx.treasury.address).map((m) => m.value);
            expect(leftover).toHaveLength(1);
            expect(leftover[0]).toBeLessThan(budget);
            info = await provider.getInfo();
            expect([info.stake, info.openJobs, info.disputesLost]).toEqual([0n, 0n, 2n]);
            expect(await balanceOf(provider.address)).toBe(PROVIDER_STORAGE_RESERVE);
        });

        it('a slash smaller than the arbiters fee all goes to the arbiters', async () => {
            const escrow = await disputed();
            const stake = await provider.getStake();
            const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
            const slash = arbiterFee / 2n;
            const r = await submitVerdict(escrow, runner, await clientWins(escrow, slash));
            expect(messagesBetween(r, provider.address, arbiterWallet.address).map((m) => m.value)).toEqual([slash]);
            expect(messagesBetween(r, provider.address, client.address)).toHaveLength(0);
            expect(await provider.getStake()).toBe(stake - slash);
            expect(await balanceOf(provider.address)).toBe(stake - slash + PROVIDER_STORAGE_RESERVE);
        });

        it('a slash after RequestUnbond still applies, and the withdrawal pays only what is left', async () => {
            const escrow = await disputed();
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            expect(await provider.getStatus()).toBe(STATUS_UNBONDING);
            const escrowBalance = await balanceOf(escrow.address);
            const verdict = await submitVerdict(escrow, runner, await clientWins(escrow, toNano('30')));
            const parties = { escrow: escrow.address, provider: provider.address, client: client.address, feeTo: arbiterWallet.address };
            expectClientWinsPayouts(fx, verdict, parties, toNano('30'), escrowBalance);
            let info = await provider.getInfo();
            // Leaving anyway: an unbonding provider is slashed but not jailed.
            expect([info.stake, info.status, info.jailReason, info.openJobs, info.disputesLost]).toEqual([toNano('70'), STATUS_UNBONDING, 0n, 0n, 1n]);
            fx.blockchain.now = Number(info.withdrawableAt);
            const providerBefore = await balanceOf(provider.address);
            const ownerBefore = await balanceOf(owner.address);
            const r = await withdrawStake(2n);
            expect(withdrawnIn(r.transactions)).toEqual([toNano('70')]);
            info = await provider.getInfo();
            expect(info.stake).toBe(0n);
            expect(await balanceOf(provider.address)).toBe(PROVIDER_STORAGE_RESERVE);
            // What left the Provider reached the owner, less the network's fees.
            expect((await balanceOf(owner.address)) - ownerBefore).toBe(providerBefore - PROVIDER_STORAGE_RESERVE - networkFees(r));
        });

        it('WithdrawStake while the dispute is open is refused; the verdict slashes; the rest is withdrawn', async () => {
            const escrow = await unbondedDuringDispute();
            await expectRefused(() => withdrawStake(4n), owner.address, ERR_JOBS_OPEN);
            await submitVerdict(escrow, runner, await clientWins(escrow, toNano('30')));
            const info = await provider.getInfo();
            expect([info.stake, info.status, info.openJobs]).toEqual([toNano('70'), STATUS_UNBONDING, 0n]);
            expect(withdrawnIn((await withdrawStake(5n)).transactions)).toEqual([toNano('70')]);
            expect(await provider.getStake()).toBe(0n);
        });

        it('a slash sent in the last second of the verdict window still lands before the stake can leave', async () => {
            // The latest a slash can be sent: receipt at the deadline, dispute and
            // verdict each in the last second of their window. Meanwhile the windows
            // were shortened, so alice's unbonding is long over by then.
            const executable = await proposeShortWindows();
            nonce += 1n;
            const { escrow } = await openEscrow(fx, client, provider.address, nonce, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('2'), deadline: fx.blockchain.now! + 3600 });
            const opened = await escrow.getInfo();
            fx.blockchain.now = Number(opened.deadline);
            await escrow.send(runner.getSender(), { value: await escrow.getTriggerFee() }, submitReceiptMessage(signReceipt(receiptFields(escrow.address, opened.engageId, fx), enclave.signing)));
            fx.blockchain.now = Number((await escrow.getInfo()).releaseAt) - 1;
            expect(fx.blockchain.now).toBeGreaterThanOrEqual(executable);
            const bond = opened.engagement!.disputeBond;
            await escrow.send(client.getSender(), { value: bond + (await escrow.getDisputeFee()) }, { $$type: 'Dispute', queryId: 9n, reason: 1n, evidenceHash: 1n });
            const { jobsSettleBy } = await shortenAndUnbond();
            const verdictBy = Number((await escrow.getInfo()).verdictBy);
            // The stake is held for JOB_SETTLE_GRACE beyond the last second a verdict can come.
            expect(jobsSettleBy).toBe(BigInt(verdictBy + 1) + JOB_SETTLE_GRACE);
            fx.blockchain.now = verdictBy;
            const verdictBody = beginCell().store(storeSubmitVerdict(submitVerdictMessage(await clientWins(escrow, toNano('30')), ARBITER_SET))).endCell();
            const verdict = await fx.blockchain.sendMessageIter(
                internal({ from: runner.address, to: escrow.address, value: await escrow.getVerdictFee(), body: verdictBody }),
                { allowParallel: true },
            );
            const ruled = await executeTill(verdict, { to: escrow.address, success: true });
            // The SlashProvider is still in transit a few seconds later, when the owner tries to withdraw.
            fx.blockchain.now = verdictBy + 5;
            const early = await executeFrom(
                await fx.blockchain.sendMessageIter(
                    internal({ from: owner.address, to: provider.address, value: OWNER_VALUE, body: beginCell().store(storeWithdrawStake({ $$type: 'WithdrawStake', queryId: 6n })).endCell() }),
                    { allowParallel: true },
                ),
            );
            expect(flattenTransaction(early[0]).exitCode).toBe(code(ERR_JOBS_OPEN));
            const landed = await executeFrom(verdict);
            const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
            expect(messagesBetween(chain([...ruled, ...landed]), provider.address, client.address).map((m) => m.value)).toEqual([
                ((toNano('30') - arbiterFee) * fx.params.clientCompensationBps) / 10000n,
            ]);
            expect(withdrawnIn((await withdrawStake(7n)).transactions)).toEqual([toNano('70')]);
        });

        it.each([
            ['the slash', true],
            ['the withdrawal', false],
        ])('a slash and a withdrawal in one block, %s first: the stake withdrawn is never the stake slashed', async (_, slashFirst) => {
            const escrow = await unbondedDuringDispute();
            const stake = await provider.getStake();
            const slash = toNano('30');
            const verdictBody = beginCell().store(storeSubmitVerdict(submitVerdictMessage(await clientWins(escrow, slash), ARBITER_SET))).endCell();
            const verdict = await fx.blockchain.sendMessageIter(
                internal({ from: runner.address, to: escrow.address, value: await escrow.getVerdictFee(), body: verdictBody }),
                { allowParallel: true },
            );
            const withdrawal = await fx.blockchain.sendMessageIter(
                internal({ from: owner.address, to: provider.address, value: OWNER_VALUE, body: beginCell().store(storeWithdrawStake({ $$type: 'WithdrawStake', queryId: 6n })).endCell() }),
                { allowParallel: true },
            );
            let txs: BlockchainTransaction[];
            if (slashFirst) {
                txs = [...(await executeFrom(verdict)), ...(await executeFrom(withdrawal))];
                expect(withdrawnIn(txs)).toEqual([stake - slash]);
            } else {
                // The escrow has ruled and its SlashProvider is in flight when the withdrawal arrives.
                const ruled = await executeTill(verdict, { to: escrow.address, success: true });
                const refused = await executeFrom(withdrawal);
                expect(flattenTransaction(refused[0]).exitCode).toBe(code(ERR_JOBS_OPEN));
                txs = [...ruled, ...refused, ...(await executeFrom(verdict))];
                expect(withdrawnIn(txs)).toEqual([]);
                // Once the slash has landed, the rest can go.
                txs.push(...(await withdrawStake(7n)).transactions);
            }
            // The client was compensated for the whole slash, and stake + withdrawn + slashed is what there was.
            const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
            const compensation = messagesBetween(chain(txs), provider.address, client.address).map((m) => m.value);
            expect(compensation).toEqual([((slash - arbiterFee) * fx.params.clientCompensationBps) / 10000n]);
            const withdrawn = withdrawnIn(txs).reduce((sum, a) => sum + a, 0n);
            const left = await provider.getStake();
            expect(withdrawn).toBe(stake - slash);
            expect(left + withdrawn + slash).toBe(stake);
            expect((await provider.getInfo()).disputesLost).toBe(1n);
        });
    });
});

/** Transactions run step by step, as one result for the tx helpers. */
const chain = (transactions: BlockchainTransaction[]): SendMessageResult => ({ transactions, events: [], externals: [] });

/** A bounced message's body: 0xffffffff, then the start of the original. */
function isBounce(body: Cell): boolean {
    const s = body.beginParse();
    return s.remainingBits >= 32 && s.loadUint(32) === 0xffffffff;
}
