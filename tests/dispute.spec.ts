// Disputes at the Escrow: the client's Dispute with its bond, arbiter
// verdicts (ProviderWins, ClientWins) and the default outcome by time alone,
// with who gets what to the nanoton where it matters.
import '@ton/test-utils';
import { Address, beginCell, toNano } from '@ton/core';
import { internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { executeFrom, executeTill } from '@ton/test-utils';
import {
    ERR_BAD_ARBITER_SIGNATURE,
    ERR_BAD_STATE,
    ERR_BAD_VERDICT,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_WINDOW_CLOSED,
    ERR_INSUFFICIENT_VALUE,
    ERR_NO_ARBITERS,
    ERR_NO_QUORUM,
    ERR_NOT_CLIENT,
    ERR_VERDICT_LATE,
    ERR_WRONG_ARBITERS,
    ESCROW_CLOSED_RELEASED,
    ESCROW_CLOSED_UNRESOLVED,
    ESCROW_DISPUTED,
    JAIL_STAKE_BELOW_MINIMUM,
    loadDisputeOpened,
    loadEscrowClosed,
    STATUS_JAILED,
    storeDispute,
    storeRefund,
    storeRelease,
    storeSubmitVerdict,
    storeVerdict,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
    VERDICT_TAG,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { arbiterDictionary } from '../wrappers/params';
import { signVerdict, submitVerdictMessage, verifyVerdict } from '../wrappers/verdict';
import { deployFixture, Enclave, Fixture, MODEL_A, openEscrow, registerProvider, testKey } from './helpers/fixture';
import { ARBITER_SET, ARBITERS, deployDisputeFixture, expectClientWinsPayouts, openDispute, receiptedEscrow, submitVerdict, verdictFor } from './helpers/dispute';
import { messagesBetween, txAt } from './helpers/tx';

const code = (c: bigint) => Number(c);

describe('Disputes', () => {
    let fx: Fixture;
    let client: SandboxContract<TreasuryContract>;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let runner: SandboxContract<TreasuryContract>;
    let arbiterWallet: SandboxContract<TreasuryContract>;
    let nonce = 0n;

    beforeEach(async () => {
        fx = await deployDisputeFixture();
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        runner = await fx.blockchain.treasury('runner');
        arbiterWallet = await fx.blockchain.treasury('arbiters');
    });

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;

    async function disputed() {
        nonce += 1n;
        const { escrow, fields } = await receiptedEscrow(fx, client, provider, enclave, nonce);
        const { bond, result: r } = await openDispute(escrow, client);
        return { escrow, fields, bond, r };
    }

    describe('Dispute', () => {
        it('holds the release: Disputed, verdict deadline set, the evidence logged, Release refused', async () => {
            const { escrow, r } = await disputed();
            const info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_DISPUTED);
            expect(info.verdictBy).toBe(BigInt(fx.blockchain.now!) + fx.params.verdictWindow);
            const log = txAt(r, escrow.address).outMessages.values().find((m) => m.info.type === 'external-out');
            const opened = loadDisputeOpened(log!.body.beginParse());
            expect([opened.queryId, opened.reason, opened.evidenceHash, opened.verdictBy]).toEqual([9n, 1n, 0xe71den, info.verdictBy]);
            fx.blockchain.now = Number(info.releaseAt);
            const release = await escrow.send(runner.getSender(), { value: await escrow.getTriggerFee() }, { $$type: 'Release', queryId: 1n });
            expect(release.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });
        });
    });

    describe('verdicts', () => {
        it('ProviderWins: released as normal, the bond to the provider less the arbiters fee', async () => {
            const { escrow, fields, bond } = await disputed();
            const escrowBalance = await balanceOf(escrow.address);
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address });
            const r = await submitVerdict(escrow, runner, signed);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
            const arbiterFee = (bond * fx.params.arbiterFeeBps) / 10000n;
            const protocolFee = (fields.amount * fx.params.protocolFeeBps) / 10000n;
            expect(messagesBetween(r, escrow.address, arbiterWallet.address).map((m) => m.value)).toEqual([arbiterFee]);
            expect(messagesBetween(r, escrow.address, owner.address).map((m) => m.value)).toEqual([bond - arbiterFee, fields.amount - protocolFee]);
            expect(messagesBetween(r, escrow.address, fx.treasury.address).map((m) => m.value)).toEqual([protocolFee]);
            const closed = messagesBetween(r, escrow.address, client.address);
            expect(loadEscrowClosed(closed[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_RELEASED);
            expect(escrowBalance).toBeGreaterThan(0n);
            const p = await provider.getInfo();
            expect([p.openJobs, p.completedJobs, p.disputesLost]).toEqual([0n, 1n, 0n]);
            expect((await fx.blockchain.getContract(escrow.address)).accountState).toBeUndefined();
        });

        it('ClientWins: everything back to the client with its bond; the provider slashed, the client compensated, the arbiters paid', async () => {
            const { escrow } = await disputed();
            const stake = await provider.getStake();
            const slash = toNano('30');
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: slash, feeTo: arbiterWallet.address });
            const escrowBalance = await balanceOf(escrow.address);
            const r = await submitVerdict(escrow, runner, signed);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
            expect(r.transactions).toHaveTransaction({ from: escrow.address, to: provider.address, success: true });
            // The arbiters get what they would have had from the bond: their pay does not depend on the outcome.
            expectClientWinsPayouts(fx, r, { escrow: escrow.address, provider: provider.address, client: client.address, feeTo: arbiterWallet.address }, slash, escrowBalance);
            const p = await provider.getInfo();
            expect(p.stake).toBe(stake - slash);
            expect([p.openJobs, p.completedJobs, p.disputesLost]).toEqual([0n, 0n, 1n]);
            // 100 TON minimum, 70 TON left: jailed until topped up and re-attested.
            expect([p.status, p.jailReason]).toEqual([STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM]);
        });

        it('no verdict by the verdict deadline: anyone refunds the client with its bond, nobody is slashed', async () => {
            const { escrow } = await disputed();
            const info = await escrow.getInfo();
            fx.blockchain.now = Number(info.verdictBy);
            const early = await escrow.send(runner.getSender(), { value: await escrow.getTriggerFee() }, { $$type: 'Refund', queryId: 1n });
            expect(early.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DEADLINE_NOT_PASSED) });
            fx.blockchain.now = Number(info.verdictBy) + 1;
            const late = await submitVerdict(escrow, runner, await verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: 1n, feeTo: arbiterWallet.address }));
            expect(late.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_VERDICT_LATE) });
            const balance = await balanceOf(escrow.address);
            const r = await escrow.send(runner.getSender(), { value: await escrow.getTriggerFee() }, { $$type: 'Refund', queryId: 2n });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: true });
            const closed = messagesBetween(r, escrow.address, client.address);
            expect(loadEscrowClosed(closed[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_UNRESOLVED);
            expect(closed[0].value).toBeGreaterThan(balance - toNano('0.01'));
            const p = await provider.getInfo();
            expect([p.openJobs, p.completedJobs, p.refundedJobs, p.disputesLost, p.stake]).toEqual([0n, 0n, 0n, 0n, fx.params.minProviderStake]);
        });
    });

    describe('Dispute refusals', () => {
        it('only the client, only Receipted, only in the dispute window, only with bond + fee', async () => {
            nonce += 1n;
            const { escrow } = await receiptedEscrow(fx, client, provider, enclave, nonce);
            const info = await escrow.getInfo();
            const value = info.engagement!.disputeBond + (await escrow.getDisputeFee());
            const dispute = (from: SandboxContract<TreasuryContract>, v: bigint) =>
                escrow.send(from.getSender(), { value: v }, { $$type: 'Dispute', queryId: 1n, reason: 0n, evidenceHash: 1n });
            let r = await dispute(runner, value);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_NOT_CLIENT) });
            r = await dispute(client, value - 1n);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
            fx.blockchain.now = Number(info.releaseAt);
            r = await dispute(client, value);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DISPUTE_WINDOW_CLOSED) });
            // An Engaged escrow (no receipt yet) cannot be disputed: there is nothing to hold.
            nonce += 1n;
            const { escrow: engaged } = await openEscrow(fx, client, provider.address, nonce, {
                requestHash: 1n,
                modelHash: MODEL_A,
                maxAmount: toNano('1'),
                deadline: fx.blockchain.now + 600,
            });
            r = await engaged.send(client.getSender(), { value }, { $$type: 'Dispute', queryId: 1n, reason: 0n, evidenceHash: 1n });
            expect(r.transactions).toHaveTransaction({ to: engaged.address, success: false, exitCode: code(ERR_BAD_STATE) });
        });

        it('a deployment without arbiters takes no disputes (they could never be decided)', async () => {
            const plain = await deployFixture();
            const alice = await registerProvider(plain, 'alice');
            const plainClient = await plain.blockchain.treasury('client');
            const { escrow } = await receiptedEscrow(plain, plainClient, alice.provider, alice.enclave, 1n);
            const info = await escrow.getInfo();
            expect(info.engagement!.arbiterQuorum).toBe(0n);
            const r = await escrow.send(plainClient.getSender(), { value: info.engagement!.disputeBond + (await escrow.getDisputeFee()) }, {
                $$type: 'Dispute',
                queryId: 1n,
                reason: 0n,
                evidenceHash: 1n,
            });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_NO_ARBITERS) });
        });
    });

    describe('verdict refusals', () => {
        let escrow: SandboxContract<Escrow>;
        const clientWins = () => ({ outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('10'), feeTo: arbiterWallet.address });
        const expectRefused = (r: SendMessageResult, exit: bigint) =>
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(exit) });

        beforeEach(async () => {
            ({ escrow } = await disputed());
        });

        it('checks the arbiter set, every signature, the quorum, the verdict, its deadline and the fee', async () => {
            const good = await verdictFor(fx, escrow, clientWins());
            // A set that is not the engaged one (one key swapped).
            const otherSet = arbiterDictionary([ARBITERS[0].publicKeyInt, ARBITERS[1].publicKeyInt, testKey('mallory').publicKeyInt]);
            expectRefused(await submitVerdict(escrow, runner, good, { arbiters: otherSet }), ERR_WRONG_ARBITERS);
            // One arbiter: below the quorum of 2.
            expectRefused(await submitVerdict(escrow, runner, await verdictFor(fx, escrow, clientWins(), [2])), ERR_NO_QUORUM);
            // One arbiter's signature under two indexes: the second is not that arbiter's.
            const dup = { verdict: good.verdict, signatures: new Map([[0, good.signatures.get(0)!], [1, good.signatures.get(0)!]]) };
            expectRefused(await submitVerdict(escrow, runner, dup), ERR_BAD_ARBITER_SIGNATURE);
            // A signature under an index with no arbiter.
            const ghost = { verdict: good.verdict, signatures: new Map([...good.signatures, [7, signVerdict(good.verdict, testKey('ghost'))]]) };
            expectRefused(await submitVerdict(escrow, runner, ghost), ERR_BAD_ARBITER_SIGNATURE);
            // A signature by an outsider under a real index.
            const forged = { verdict: good.verdict, signatures: new Map([[0, good.signatures.get(0)!], [1, signVerdict(good.verdict, testKey('mallory'))]]) };
            expectRefused(await submitVerdict(escrow, runner, forged), ERR_BAD_ARBITER_SIGNATURE);
            // Properly signed, but for another escrow, another opening, or with no valid outcome or tag.
            const info = await escrow.getInfo();
            for (const fields of [
                { escrow: client.address },
                { engageId: info.engageId + 1n },
            ]) {
                expectRefused(await submitVerdict(escrow, runner, await verdictFor(fx, escrow, { ...clientWins(), ...fields })), ERR_BAD_VERDICT);
            }
            for (const raw of [{ outcome: 3n, tag: VERDICT_TAG }, { outcome: VERDICT_CLIENT_WINS, tag: 0x61747374n }]) {
                const verdict = beginCell()
                    .store(storeVerdict({ $$type: 'Verdict', escrow: escrow.address, engageId: info.engageId, slashAmount: 1n, deadline: BigInt(fx.blockchain.now! + 60), feeTo: arbiterWallet.address, ...raw }))
                    .endCell();
                const signed = { verdict, signatures: new Map([0, 1].map((i) => [i, signVerdict(verdict, ARBITERS[i])])) };
                expectRefused(await submitVerdict(escrow, runner, signed), ERR_BAD_VERDICT);
            }
            // Past its own deadline.
            expectRefused(await submitVerdict(escrow, runner, await verdictFor(fx, escrow, { ...clientWins(), deadline: fx.blockchain.now! - 1 })), ERR_VERDICT_LATE);
            // One nanoton under the fee.
            expectRefused(await submitVerdict(escrow, runner, good, { value: (await escrow.getVerdictFee()) - 1n }), ERR_INSUFFICIENT_VALUE);
            // The TypeScript check agrees with all of the above on the good one, and it still works.
            verifyVerdict(good, { escrow: escrow.address, engageId: info.engageId, arbiters: ARBITER_SET, quorum: 2n });
            const fee = await escrow.getVerdictFee();
            const ok = await submitVerdict(escrow, runner, good, { value: toNano('1') });
            expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
            // The fee is charged exactly: what was attached above it comes back, to the nanoton.
            expect(messagesBetween(ok, escrow.address, runner.address).map((m) => m.value)).toEqual([toNano('1') - fee]);
            // A second verdict finds the escrow gone.
            const again = await submitVerdict(escrow, runner, good, { value: fee });
            expect(again.transactions).toHaveTransaction({ to: escrow.address, success: false });
        });

        it('a verdict and the default refund racing in one block: whichever the time allows decides, the other finds nothing', async () => {
            const info = await escrow.getInfo();
            // At verdictBy the verdict is in time and the refund is not; both are in flight.
            fx.blockchain.now = Number(info.verdictBy);
            const signed = await verdictFor(fx, escrow, clientWins());
            const verdictBody = beginCell().store(storeSubmitVerdict(submitVerdictMessage(signed, ARBITER_SET))).endCell();
            const refundBody = beginCell().store(storeRefund({ $$type: 'Refund', queryId: 1n })).endCell();
            const verdictFee = await escrow.getVerdictFee();
            const triggerFee = await escrow.getTriggerFee();
            const a = await fx.blockchain.sendMessageIter(internal({ from: runner.address, to: escrow.address, value: verdictFee, body: verdictBody }), { allowParallel: true });
            const b = await fx.blockchain.sendMessageIter(internal({ from: client.address, to: escrow.address, value: triggerFee, body: refundBody }), { allowParallel: true });
            const verdictTxs = await executeTill(a, { to: escrow.address });
            const refundTxs = await executeTill(b, { to: escrow.address });
            await executeFrom(a);
            await executeFrom(b);
            expect(verdictTxs).toHaveTransaction({ to: escrow.address, success: true });
            // The refund comes second and finds the escrow closed (no contract: it bounces back).
            expect(refundTxs).toHaveTransaction({ to: escrow.address, success: false });
            expect((await provider.getInfo()).disputesLost).toBe(1n);
        });
    });

    describe('fees', () => {
        it('a dispute at exactly bond + disputeFee and verdicts at exactly their fee send every message', async () => {
            for (const outcome of [VERDICT_PROVIDER_WINS, VERDICT_CLIENT_WINS]) {
                const { escrow } = await disputed();
                const fee = await escrow.getVerdictFee();
                const signed = await verdictFor(fx, escrow, { outcome, slashAmount: toNano('5'), feeTo: arbiterWallet.address });
                const r = await submitVerdict(escrow, runner, signed, { value: fee });
                expect(r.transactions).not.toHaveTransaction({ success: false });
                expect(r.transactions).not.toHaveTransaction({ actionResultCode: (c) => c !== undefined && c !== 0 });
                expect(messagesBetween(r, escrow.address, client.address)).toHaveLength(1);
                if (outcome === VERDICT_CLIENT_WINS) {
                    // The Provider pays the client, the arbiters and the treasury.
                    expect(messagesBetween(r, provider.address, client.address)).toHaveLength(1);
                    expect(messagesBetween(r, provider.address, arbiterWallet.address)).toHaveLength(1);
                    expect(messagesBetween(r, provider.address, fx.treasury.address)).toHaveLength(1);
                } else {
                    // Nothing to slash: only the base fee is charged, the slash budget comes back.
                    const back = messagesBetween(r, escrow.address, runner.address);
                    expect(back).toHaveLength(1);
                    expect(messagesBetween(r, escrow.address, arbiterWallet.address)).toHaveLength(1);
                    expect(r.transactions).toHaveTransaction({ from: escrow.address, to: provider.address, success: true });
                }
            }
        });
    });

    describe('races and receivers', () => {
        for (const lead of [-1, 0]) {
            it(`a Dispute and a Release in flight together ${lead < 0 ? 'a second before' : 'at'} the end of the dispute window: exactly one applies`, async () => {
                nonce += 1n;
                const { escrow } = await receiptedEscrow(fx, client, provider, enclave, nonce);
                const info = await escrow.getInfo();
                const bond = info.engagement!.disputeBond;
                const disputeBody = beginCell().store(storeDispute({ $$type: 'Dispute', queryId: 1n, reason: 0n, evidenceHash: 1n })).endCell();
                const releaseBody = beginCell().store(storeRelease({ $$type: 'Release', queryId: 2n })).endCell();
                const disputeValue = bond + (await escrow.getDisputeFee());
                const triggerFee = await escrow.getTriggerFee();
                fx.blockchain.now = Number(info.releaseAt) + lead;
                const a = await fx.blockchain.sendMessageIter(internal({ from: client.address, to: escrow.address, value: disputeValue, body: disputeBody }), { allowParallel: true });
                const b = await fx.blockchain.sendMessageIter(internal({ from: runner.address, to: escrow.address, value: triggerFee, body: releaseBody }), { allowParallel: true });
                const disputeTxs = await executeTill(a, { to: escrow.address });
                const releaseTxs = await executeTill(b, { to: escrow.address });
                await executeFrom(a);
                await executeFrom(b);
                if (lead < 0) {
                    // Still in the window: the dispute holds the release, which is refused.
                    expect(disputeTxs).toHaveTransaction({ to: escrow.address, success: true });
                    expect(releaseTxs).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });
                    expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
                } else {
                    // The window is over: the dispute is refused (its value bounces back) and the release pays.
                    expect(disputeTxs).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DISPUTE_WINDOW_CLOSED) });
                    expect(releaseTxs).toHaveTransaction({ to: escrow.address, success: true });
                    expect((await fx.blockchain.getContract(escrow.address)).accountState).toBeUndefined();
                    expect((await provider.getInfo()).completedJobs).toBe(1n);
                }
            });
        }

        it('payouts are not bounceable: an arbiters\' address whose code rejects them does not stop the escrow or the slash', async () => {
            const { escrow } = await disputed();
            // The Registry rejects any message it has no receiver for (exit 130).
            const rejecting = fx.registry.address;
            const slash = toNano('10');
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: slash, feeTo: rejecting });
            const registryBefore = (await fx.blockchain.getContract(rejecting)).balance;
            const r = await submitVerdict(escrow, runner, signed);
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: rejecting, success: false, exitCode: 130 });
            // Nothing bounced back; the slash and the close went through.
            expect(r.transactions).not.toHaveTransaction({ from: rejecting, to: provider.address });
            expect((await fx.blockchain.getContract(escrow.address)).accountState).toBeUndefined();
            expect(await provider.getStake()).toBe(fx.params.minProviderStake - slash);
            const arbiterFee = (fx.params.disputeBond * fx.params.arbiterFeeBps) / 10000n;
            // The fee stays with the rejecting receiver (less its rent), as a non-bounceable payment does.
            expect((await fx.blockchain.getContract(rejecting)).balance).toBeGreaterThan(registryBefore + arbiterFee - toNano('0.01'));
        });
    });
});
