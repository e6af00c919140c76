import '@ton/test-utils';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { executeFrom, executeTill, flattenTransaction } from '@ton/test-utils';
import { internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import {
    ERR_BAD_RECEIPT_SIGNATURE,
    ERR_BAD_STATE,
    ERR_BAD_TERMS,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_WINDOW_OPEN,
    ERR_INSUFFICIENT_VALUE,
    ERR_JOBS_OPEN,
    ERR_NOT_CLIENT,
    ERR_RECEIPT_AMOUNT,
    ERR_RECEIPT_MISMATCH,
    ERR_RECEIPT_TIME,
    ERR_WRONG_SENDER,
    ESCROW_CLOSED_EXPIRED,
    ESCROW_CLOSED_REFUSED,
    ESCROW_CLOSED_RELEASED,
    ESCROW_ENGAGED,
    ESCROW_OPENED,
    ESCROW_RECEIPTED,
    JAIL_GOVERNANCE,
    JOB_SETTLE_GRACE,
    OpenEscrow,
    storeEngageJob,
    storeJobEnded,
    storeEngagement,
    storeJobEngaged,
    storeSubmitReceipt,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { defaultParams } from '../wrappers/params';
import { reattestMessage } from '../wrappers/attestation';
import { parseReceipt, ReceiptFields, receiptFromSubmitBody, signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { Enclave, deployFixture, Fixture, MODEL_A, MODEL_B, openEscrow, registerProvider, signedFor, testEnclave, testKey } from './helpers/fixture';
import { messagesBetween, networkFees, txAt } from './helpers/tx';

const code = (c: bigint) => Number(c);
const REQUEST = 0x1234n;
const MAX_AMOUNT = toNano('2');
const TRIGGER = toNano('0.05');

describe('Escrow', () => {
    let fx: Fixture;
    let client: SandboxContract<TreasuryContract>;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let runner: SandboxContract<TreasuryContract>;
    let nonce = 0n;

    beforeEach(async () => {
        fx = await deployFixture();
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        runner = await fx.blockchain.treasury('runner');
    });

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;

    async function open(opts: { model?: bigint; deadline?: number; maxAmount?: bigint; value?: bigint; providerAddress?: Address } = {}) {
        nonce += 1n;
        const maxAmount = opts.maxAmount ?? MAX_AMOUNT;
        const { escrow, result } = await openEscrow(fx, client, opts.providerAddress ?? provider.address, nonce, {
            queryId: 1n,
            requestHash: REQUEST,
            modelHash: opts.model ?? MODEL_A,
            maxAmount,
            deadline: opts.deadline ?? fx.blockchain.now! + 3600,
            // an unreachable provider has no fee getter: take this one's
            value: opts.value ?? maxAmount + (await provider.getEscrowOpenFee()),
        });
        if ((await fx.blockchain.getContract(escrow.address)).balance > 0n) {
            engageIds.set(escrow.address.toString(), (await escrow.getInfo()).engageId);
        }
        return { escrow, result };
    }

    /** The OpenEscrow of a standard job: MODEL_A, MAX_AMOUNT, due in an hour. */
    function openTerms(): OpenEscrow {
        return {
            $$type: 'OpenEscrow',
            queryId: 1n,
            requestHash: REQUEST,
            modelHash: MODEL_A,
            maxAmount: MAX_AMOUNT,
            deadline: BigInt(fx.blockchain.now! + 3600),
        };
    }

    /** engageId of each escrow this suite opened, by address. */
    const engageIds = new Map<string, bigint>();

    function receiptFor(escrow: Address, overrides: Partial<ReceiptFields> = {}): ReceiptFields {
        return {
            escrow,
            engageId: engageIds.get(escrow.toString()) ?? 0n,
            requestHash: REQUEST,
            responseHash: 0xbeefn,
            modelHash: MODEL_A,
            inputUnits: 120n,
            outputUnits: 800n,
            amount: toNano('1.5'),
            finishedAt: fx.blockchain.now! - 1,
            ...overrides,
        };
    }

    async function submit(escrow: SandboxContract<Escrow>, fields: ReceiptFields, key = enclave.signing) {
        return escrow.send(runner.getSender(), { value: TRIGGER }, submitReceiptMessage(signReceipt(fields, key)));
    }

    function closedWith(r: SendMessageResult, escrow: Address, outcome: bigint, reason = 0) {
        const msgs = messagesBetween(r, escrow, client.address).filter((m) => m.body.beginParse().loadUint(32) === 0x30000006);
        expect(msgs).toHaveLength(1);
        const body = msgs[0].body.beginParse();
        body.loadUint(32);
        body.loadUintBig(64);
        expect(body.loadUintBig(8)).toBe(outcome);
        expect(body.loadUint(8)).toBe(reason);
        return msgs[0].value;
    }

    describe('lifecycle', () => {
        it('open, engage, receipt, release: every nanoton accounted for', async () => {
            const fee = await provider.getEscrowOpenFee();
            const clientBefore = await client.getBalance();
            const { escrow, result } = await open();
            expect(result.transactions).toHaveTransaction({ from: client.address, to: escrow.address, deploy: true, success: true });
            expect(result.transactions).toHaveTransaction({ from: escrow.address, to: provider.address, success: true });
            expect(result.transactions).toHaveTransaction({ from: provider.address, to: escrow.address, success: true });
            let info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_ENGAGED);
            expect(info.engagement!.enclaveKey).toBe(enclave.signing.publicKeyInt);
            expect(info.engagement!.payout.equals(owner.address)).toBe(true);
            expect(info.engagement!.protocolFeeBps).toBe(fx.params.protocolFeeBps);
            expect(info.engagement!.treasury.equals(fx.treasury.address)).toBe(true);
            let pInfo = await provider.getInfo();
            expect(pInfo.openJobs).toBe(1n);
            expect(pInfo.jobsSettleBy).toBe(info.deadline + fx.params.disputeWindow + fx.params.verdictWindow + JOB_SETTLE_GRACE);

            const fields = receiptFor(escrow.address);
            const r1 = await submit(escrow, fields);
            expect(r1.transactions).toHaveTransaction({ from: runner.address, to: escrow.address, success: true });
            info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_RECEIPTED);
            expect(info.amount).toBe(fields.amount);
            // The escrow keeps the amount; the receipt is the accepted message's.
            const accepted = parseReceipt(receiptFromSubmitBody(txAt(r1, escrow.address).inMessage!.body).receipt);
            expect(accepted.responseHash).toBe(fields.responseHash);
            expect(info.releaseAt).toBe(BigInt(fx.blockchain.now!) + fx.params.disputeWindow);

            fx.blockchain.now = Number(info.releaseAt) - 1;
            let r = await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Release', queryId: 2n });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DISPUTE_WINDOW_OPEN) });
            fx.blockchain.now = Number(info.releaseAt);

            const parties = [escrow.address, owner.address, fx.treasury.address, client.address, runner.address, provider.address];
            const before = await Promise.all(parties.map(balanceOf));
            r = await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Release', queryId: 3n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            const protocolFee = (fields.amount * fx.params.protocolFeeBps) / 10000n;
            expect(messagesBetween(r, escrow.address, owner.address)[0].value).toBe(fields.amount - protocolFee);
            expect(messagesBetween(r, escrow.address, fx.treasury.address)[0].value).toBe(protocolFee);
            closedWith(r, escrow.address, ESCROW_CLOSED_RELEASED);
            expect(await balanceOf(escrow.address)).toBe(0n);
            pInfo = await provider.getInfo();
            expect(pInfo.openJobs).toBe(0n);
            expect(pInfo.completedJobs).toBe(1n);
            // Conservation: the balance changes of everyone involved plus the network's fees sum to zero.
            const after = await Promise.all(parties.map(balanceOf));
            const change = after.reduce((sum, b, i) => sum + b - before[i], 0n);
            expect(change + networkFees(r)).toBe(0n);

            // The client paid the amount, its own wallet's fees for the deploying
            // message, and at most the escrow's open fee; the rest came back.
            const clientSpent = clientBefore - (await client.getBalance());
            const walletTx = result.transactions[0];
            const wd = walletTx.description;
            const deployForward = wd.type === 'generic' && wd.actionPhase ? wd.actionPhase.totalFwdFees ?? 0n : 0n;
            expect(clientSpent).toBeGreaterThan(fields.amount);
            expect(clientSpent - fields.amount - walletTx.totalFees.coins - deployForward).toBeLessThanOrEqual(fee);
        });

        it('refunds everything by time alone when no receipt comes', async () => {
            const { escrow } = await open();
            const deadline = Number((await escrow.getInfo()).deadline);
            let r = await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Refund', queryId: 1n });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_DEADLINE_NOT_PASSED) });
            fx.blockchain.now = deadline + 1;
            const held = await balanceOf(escrow.address);
            r = await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Refund', queryId: 2n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            const refunded = closedWith(r, escrow.address, ESCROW_CLOSED_EXPIRED);
            expect(refunded).toBeGreaterThan(MAX_AMOUNT);
            expect(refunded).toBeLessThan(held);
            const pInfo = await provider.getInfo();
            expect([pInfo.openJobs, pInfo.refundedJobs, pInfo.completedJobs]).toEqual([0n, 1n, 0n]);
            // The runner got its unused trigger value back.
            expect(messagesBetween(r, escrow.address, runner.address)).toHaveLength(1);
        });

        it('a receipt after the deadline is refused; a refund after a receipt is refused', async () => {
            const { escrow } = await open();
            const deadline = Number((await escrow.getInfo()).deadline);
            await submit(escrow, receiptFor(escrow.address));
            fx.blockchain.now = deadline + 10;
            const r = await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Refund', queryId: 1n });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });

            const { escrow: late } = await open({ deadline: fx.blockchain.now + 100 });
            fx.blockchain.now = fx.blockchain.now + 101;
            const r2 = await submit(late, receiptFor(late.address, { finishedAt: fx.blockchain.now - 50 }));
            expect(r2.transactions).toHaveTransaction({ to: late.address, success: false, exitCode: code(ERR_RECEIPT_TIME) });
        });
    });

    describe('engagement', () => {
        async function expectRefused(result: SendMessageResult, escrow: Address, reason: number) {
            expect(result.transactions).toHaveTransaction({ from: provider.address, to: escrow, op: 0x20000032, success: true });
            const refusal = messagesBetween(result, provider.address, escrow)[0].body.beginParse();
            refusal.loadUint(32);
            refusal.loadUintBig(64);
            expect(refusal.loadUint(8)).toBe(reason);
            closedWith(result, escrow, ESCROW_CLOSED_REFUSED, reason);
            expect(await balanceOf(escrow)).toBe(0n);
            expect((await provider.getInfo()).openJobs).toBe(0n);
        }

        it('refuses a model it does not serve, a deadline too far, and an attestation that ends first', async () => {
            let { escrow, result } = await open({ model: 0x999n });
            await expectRefused(result, escrow.address, 3);
            ({ escrow, result } = await open({ deadline: fx.blockchain.now! + Number(fx.params.maxJobDuration) + 1 }));
            await expectRefused(result, escrow.address, 4);
            const validUntil = Number((await provider.getInfo()).attestationValidUntil);
            fx.blockchain.now = validUntil - 100;
            ({ escrow, result } = await open({ deadline: validUntil + 1 }));
            await expectRefused(result, escrow.address, 2);
        });

        it('refuses while jailed or unbonding', async () => {
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 1n,
                providerOwner: owner.address,
                reason: JAIL_GOVERNANCE,
            });
            let { escrow, result } = await open();
            await expectRefused(result, escrow.address, 1);
            await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'RequestUnbond', queryId: 1n });
            ({ escrow, result } = await open());
            await expectRefused(result, escrow.address, 1);
        });

        it('an unreachable Provider bounces the request and the client is refunded', async () => {
            const nowhere = new Address(0, Buffer.alloc(32, 0x42));
            const { escrow, result } = await open({ providerAddress: nowhere });
            expect(result.transactions).toHaveTransaction({ from: nowhere, to: escrow.address, inMessageBounced: true, success: true });
            closedWith(result, escrow.address, ESCROW_CLOSED_REFUSED);
        });

        it('the client cancels before engagement; a late engagement bounces and the Provider rolls back', async () => {
            nonce += 1n;
            const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, nonce));
            const openBody = openTerms();
            const { storeOpenEscrow, storeCancelEscrow } = await import('../wrappers/Registry');
            const iter = async (from: Address, value: bigint, body: Cell, stateInit?: typeof escrow.init) =>
                fx.blockchain.sendMessageIter(internal({ from, to: escrow.address, value, stateInit, body }), { allowParallel: true });
            const opening = await iter(
                client.address,
                MAX_AMOUNT + (await provider.getEscrowOpenFee()),
                beginCell().store(storeOpenEscrow(openBody)).endCell(),
                escrow.init,
            );
            // The escrow opens and sends EngageJob; the Provider has not answered yet.
            await executeTill(opening, { to: escrow.address, success: true });
            expect(await escrow.getState()).toBe(ESCROW_OPENED);
            // A receipt cannot come before engagement.
            const signed = signReceipt(receiptFor(escrow.address), enclave.signing);
            const early = await executeFrom(
                await iter(runner.address, TRIGGER, beginCell().store(storeSubmitReceipt(submitReceiptMessage(signed))).endCell()),
            );
            expect(flattenTransaction(early[0]).exitCode).toBe(code(ERR_BAD_STATE));
            const outsider = await fx.blockchain.treasury('outsider');
            const notClient = await executeFrom(await iter(outsider.address, TRIGGER, beginCell().store(storeCancelEscrow({ $$type: 'CancelEscrow', queryId: 2n })).endCell()));
            expect(flattenTransaction(notClient[0]).exitCode).toBe(code(ERR_NOT_CLIENT));
            const cancel = await executeFrom(await iter(client.address, TRIGGER, beginCell().store(storeCancelEscrow({ $$type: 'CancelEscrow', queryId: 2n })).endCell()));
            expect(flattenTransaction(cancel[0]).success).toBe(true);
            expect(await balanceOf(escrow.address)).toBe(0n);
            // Now the Provider engages a job whose escrow is gone: its answer bounces back.
            const rest = await executeFrom(opening);
            expect(rest).toHaveTransaction({ from: escrow.address, to: provider.address, inMessageBounced: true, success: true });
            expect((await provider.getInfo()).openJobs).toBe(0n);
        });

        it('cancel is refused once engaged', async () => {
            const { escrow } = await open();
            const r = await escrow.send(client.getSender(), { value: TRIGGER }, { $$type: 'CancelEscrow', queryId: 1n });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });
        });

        it('checks the terms and the value of OpenEscrow, and that only the client opens', async () => {
            const fee = await provider.getEscrowOpenFee();
            let { escrow, result } = await open({ value: MAX_AMOUNT + fee - 1n });
            expect(result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
            ({ escrow, result } = await open({ maxAmount: 0n, value: fee }));
            expect(result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_TERMS) });
            ({ escrow, result } = await open({ deadline: fx.blockchain.now! }));
            expect(result.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_TERMS) });

            const mallory = await fx.blockchain.treasury('mallory');
            const theirs = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, 999n));
            const r = await theirs.send(mallory.getSender(), { value: MAX_AMOUNT + fee }, openTerms());
            expect(r.transactions).toHaveTransaction({ to: theirs.address, success: false, exitCode: code(ERR_NOT_CLIENT) });

            const { escrow: opened } = await open();
            const again = await opened.send(client.getSender(), { value: MAX_AMOUNT + fee }, openTerms());
            expect(again.transactions).toHaveTransaction({ to: opened.address, success: false, exitCode: code(ERR_BAD_STATE) });
        });
    });

    describe('receipts', () => {
        let escrow: SandboxContract<Escrow>;
        beforeEach(async () => {
            ({ escrow } = await open());
        });

        const expectReceiptRejected = async (r: SendMessageResult, exitCode: bigint) => {
            expect(r.transactions).toHaveTransaction({ from: runner.address, to: escrow.address, success: false, exitCode: code(exitCode) });
            expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
        };

        it('rejects receipts signed by any other key', async () => {
            const fields = receiptFor(escrow.address);
            await expectReceiptRejected(await submit(escrow, fields, testEnclave('bob').signing), ERR_BAD_RECEIPT_SIGNATURE);
            await expectReceiptRejected(await submit(escrow, fields, testKey('client')), ERR_BAD_RECEIPT_SIGNATURE);
            await expectReceiptRejected(await submit(escrow, fields, fx.verifier), ERR_BAD_RECEIPT_SIGNATURE);
        });

        it('rejects a receipt for another escrow, request or model', async () => {
            const { escrow: other } = await open();
            await expectReceiptRejected(await submit(escrow, receiptFor(other.address)), ERR_RECEIPT_MISMATCH);
            await expectReceiptRejected(await submit(escrow, receiptFor(escrow.address, { requestHash: REQUEST + 1n })), ERR_RECEIPT_MISMATCH);
            await expectReceiptRejected(await submit(escrow, receiptFor(escrow.address, { modelHash: MODEL_B })), ERR_RECEIPT_MISMATCH);
        });

        it('rejects an amount above maxAmount and times outside the bounds', async () => {
            await expectReceiptRejected(await submit(escrow, receiptFor(escrow.address, { amount: MAX_AMOUNT + 1n })), ERR_RECEIPT_AMOUNT);
            const deadline = Number((await escrow.getInfo()).deadline);
            await expectReceiptRejected(await submit(escrow, receiptFor(escrow.address, { finishedAt: fx.blockchain.now! + 1 })), ERR_RECEIPT_TIME);
            fx.blockchain.now = deadline;
            await expectReceiptRejected(await submit(escrow, receiptFor(escrow.address, { finishedAt: deadline + 1 })), ERR_RECEIPT_TIME);
            const ok = await submit(escrow, receiptFor(escrow.address, { finishedAt: deadline, amount: MAX_AMOUNT }));
            expect(ok.transactions).toHaveTransaction({ to: escrow.address, success: true });
        });

        it('a receipt from an earlier opening of the same escrow address is refused', async () => {
            const old = signReceipt(receiptFor(escrow.address), enclave.signing);
            await escrow.send(runner.getSender(), { value: TRIGGER }, submitReceiptMessage(old));
            fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
            await escrow.send(runner.getSender(), { value: TRIGGER }, { $$type: 'Release', queryId: 0n });
            expect(await balanceOf(escrow.address)).toBe(0n);
            // Same client, provider and nonce: the same address, opened again for the same request.
            await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave)));
            await escrow.send(client.getSender(), { value: MAX_AMOUNT + (await provider.getEscrowOpenFee()) }, openTerms());
            expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
            const replay = await escrow.send(runner.getSender(), { value: TRIGGER }, submitReceiptMessage(old));
            expect(replay.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_RECEIPT_MISMATCH) });
        });

        it('accepts one receipt only', async () => {
            await submit(escrow, receiptFor(escrow.address));
            const again = await submit(escrow, receiptFor(escrow.address, { amount: 1n }));
            expect(again.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });
            expect((await escrow.getInfo()).amount).toBe(toNano('1.5'));
        });

        it('SubmitReceipt needs the trigger fee', async () => {
            const signed = signReceipt(receiptFor(escrow.address), enclave.signing);
            const r = await escrow.send(runner.getSender(), { value: (await escrow.getTriggerFee()) - 1n }, submitReceiptMessage(signed));
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
        });
    });

    describe('authentication', () => {
        it('a look-alike Escrow or Provider cannot engage, end jobs or answer', async () => {
            const mallory = await fx.blockchain.treasury('mallory');
            const engage = beginCell()
                .store(storeEngageJob({ $$type: 'EngageJob', queryId: 1n, client: mallory.address, nonce: 1n, modelHash: MODEL_A, deadline: BigInt(fx.blockchain.now! + 100) }))
                .endCell();
            const ended = beginCell().store(storeJobEnded({ $$type: 'JobEnded', queryId: 1n, client: client.address, nonce: 1n, outcome: 1n })).endCell();
            for (const body of [engage, ended]) {
                const r = await mallory.send({ to: provider.address, value: toNano('1'), body });
                expect(r.transactions).toHaveTransaction({ to: provider.address, success: false, exitCode: code(ERR_WRONG_SENDER) });
            }
            const { escrow } = await open();
            const fakeEngaged = beginCell()
                .store(
                    storeJobEngaged({
                        $$type: 'JobEngaged',
                        queryId: 1n,
                        engagement: beginCell()
                            .store(
                                storeEngagement({
                                    $$type: 'Engagement',
                                    enclaveKey: testKey('mallory').publicKeyInt,
                                    payout: mallory.address,
                                    protocolFeeBps: 0n,
                                    treasury: mallory.address,
                                    disputeWindow: 0n,
                                    verdictWindow: 0n,
                                    disputeBond: 0n,
                                    arbiterQuorum: 0n,
                                    arbitersHash: 0n,
                                    arbiterFeeBps: 0n,
                                }),
                            )
                            .endCell(),
                    }),
                )
                .endCell();
            const r = await mallory.send({ to: escrow.address, value: toNano('1'), body: fakeEngaged });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_WRONG_SENDER) });
            expect((await escrow.getInfo()).engagement!.enclaveKey).toBe(enclave.signing.publicKeyInt);
            expect((await provider.getInfo()).completedJobs).toBe(0n);
        });
    });

    describe('stake safety', () => {
        it('stake stays while a job engaged under longer windows is open', async () => {
            // Governance shortens every window; the provider re-attests into the new
            // snapshot and unbonds, but the old job's windows still bind its stake.
            const hour = 3600n;
            const short = { ...defaultParams(fx.treasury.address), maxJobDuration: hour, disputeWindow: hour, verdictWindow: hour, unbondingPeriod: 4n * hour };
            await open({ deadline: fx.blockchain.now! + 86000 });
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'ProposeParams', queryId: 1n, params: short });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'ExecuteParams', queryId: 1n });
            await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave)));
            await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'RequestUnbond', queryId: 1n });
            const info = await provider.getInfo();
            fx.blockchain.now = Number(info.withdrawableAt);
            expect(fx.blockchain.now).toBeLessThanOrEqual(Number(info.jobsSettleBy));
            const r = await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'WithdrawStake', queryId: 2n });
            expect(r.transactions).toHaveTransaction({ to: provider.address, success: false, exitCode: code(ERR_JOBS_OPEN) });
            // Once every window of that job has passed, the stake is free even if
            // the job's end notice never came.
            fx.blockchain.now = Number(info.jobsSettleBy) + 1;
            const r2 = await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'WithdrawStake', queryId: 3n });
            expect(r2.transactions).toHaveTransaction({ to: provider.address, success: true });
        });
    });
});
