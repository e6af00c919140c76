// Escrow edges: messages racing in one block, too little value at every
// trigger, and a payout address that rejects its payment.
import '@ton/test-utils';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { BlockchainTransaction, internal, SandboxContract, TreasuryContract } from '@ton/sandbox';
import { executeFrom, flattenTransaction } from '@ton/test-utils';
import {
    ERR_BAD_STATE,
    ERR_INSUFFICIENT_VALUE,
    ERR_RECEIPT_TIME,
    ESCROW_ENGAGED,
    ESCROW_OPENED,
    storeRefund,
    storeSubmitReceipt,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { reattestMessage } from '../wrappers/attestation';
import { deployFixture, Enclave, Fixture, MODEL_A, openEscrow, registerProvider, signedFor } from './helpers/fixture';
import { messagesBetween } from './helpers/tx';

const code = (c: bigint) => Number(c);
const REQUEST = 0x77n;
const MAX_AMOUNT = toNano('3');
const TRIGGER = toNano('0.05');

describe('Escrow edges', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let keeper: SandboxContract<TreasuryContract>;
    let nonce = 100n;

    beforeEach(async () => {
        fx = await deployFixture();
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        keeper = await fx.blockchain.treasury('keeper');
    });

    async function open(deadlineIn = 3600) {
        nonce += 1n;
        const { escrow } = await openEscrow(fx, client, provider.address, nonce, {
            requestHash: REQUEST,
            modelHash: MODEL_A,
            maxAmount: MAX_AMOUNT,
            deadline: fx.blockchain.now! + deadlineIn,
        });
        engageIds.set(escrow.address.toString(), (await escrow.getInfo()).engageId);
        return escrow;
    }

    const engageIds = new Map<string, bigint>();

    function receiptCell(escrow: Address, finishedAt: number) {
        return signReceipt(
            { escrow, engageId: engageIds.get(escrow.toString()) ?? 0n, requestHash: REQUEST, responseHash: 5n, modelHash: MODEL_A, inputUnits: 1n, outputUnits: 2n, amount: toNano('1'), finishedAt },
            enclave.signing,
        );
    }

    /** Starts a message to the escrow without running it, so several can share a block. */
    async function pending(escrow: Address, from: Address, body: Cell) {
        return fx.blockchain.sendMessageIter(internal({ from, to: escrow, value: TRIGGER, body }), { allowParallel: true, now: fx.blockchain.now });
    }

    const firstAt = (txs: BlockchainTransaction[], escrow: Address) =>
        flattenTransaction(txs.find((tx) => tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(escrow))!);

    it('receipt and refund in the block of the deadline: the receipt wins, in either order', async () => {
        for (const receiptFirst of [true, false]) {
            const escrow = await open(100);
            fx.blockchain.now = Number((await escrow.getInfo()).deadline);
            const receipt = beginCell().store(storeSubmitReceipt(submitReceiptMessage(receiptCell(escrow.address, fx.blockchain.now)))).endCell();
            const refund = beginCell().store(storeRefund({ $$type: 'Refund', queryId: 0n })).endCell();
            const a = await pending(escrow.address, keeper.address, receiptFirst ? receipt : refund);
            const b = await pending(escrow.address, client.address, receiptFirst ? refund : receipt);
            const [txA, txB] = [await executeFrom(a), await executeFrom(b)];
            const [receiptTxs, refundTxs] = receiptFirst ? [txA, txB] : [txB, txA];
            expect(firstAt(receiptTxs, escrow.address).success).toBe(true);
            expect(firstAt(refundTxs, escrow.address).exitCode).toBe(code(receiptFirst ? ERR_BAD_STATE : 1308n));
            expect((await escrow.getInfo()).amount).toBe(toNano('1'));
        }
    });

    it('one second after the deadline the refund wins and a late receipt is refused', async () => {
        const escrow = await open(100);
        fx.blockchain.now = Number((await escrow.getInfo()).deadline) + 1;
        const receipt = beginCell().store(storeSubmitReceipt(submitReceiptMessage(receiptCell(escrow.address, fx.blockchain.now - 5)))).endCell();
        const refund = beginCell().store(storeRefund({ $$type: 'Refund', queryId: 0n })).endCell();
        const a = await pending(escrow.address, keeper.address, receipt);
        const b = await pending(escrow.address, client.address, refund);
        const receiptTxs = await executeFrom(a);
        const refundTxs = await executeFrom(b);
        expect(firstAt(receiptTxs, escrow.address).exitCode).toBe(code(ERR_RECEIPT_TIME));
        expect(firstAt(refundTxs, escrow.address).success).toBe(true);
        expect(await fx.blockchain.getContract(escrow.address).then((c) => c.balance)).toBe(0n);
    });

    it('release and refund arriving together after the window: the release pays, in either order', async () => {
        // Two messages to one account in one block are simply processed in some
        // order; both orders are run here.
        for (const releaseFirst of [true, false]) {
            // A fresh attestation, so it covers the new job's deadline.
            await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave)));
            const escrow = await open(3600);
            await escrow.send(keeper.getSender(), { value: TRIGGER }, submitReceiptMessage(receiptCell(escrow.address, fx.blockchain.now!)));
            fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
            const refund = () => escrow.send(client.getSender(), { value: TRIGGER }, { $$type: 'Refund', queryId: 0n });
            const release = () => escrow.send(keeper.getSender(), { value: TRIGGER }, { $$type: 'Release', queryId: 0n });
            if (releaseFirst) {
                const rel = await release();
                expect(messagesBetween(rel, escrow.address, owner.address)).toHaveLength(1);
                const ref = await refund();
                // The escrow is gone: the refund bounces back to its sender untouched.
                expect(ref.transactions).toHaveTransaction({ from: escrow.address, to: client.address, inMessageBounced: true });
            } else {
                const ref = await refund();
                expect(ref.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_BAD_STATE) });
                const rel = await release();
                expect(messagesBetween(rel, escrow.address, owner.address)).toHaveLength(1);
            }
        }
        expect((await provider.getInfo()).completedJobs).toBe(2n);
        expect((await provider.getInfo()).refundedJobs).toBe(0n);
    });

    it('every trigger needs its fee', async () => {
        const escrow = await open();
        const short = (await escrow.getTriggerFee()) - 1n;
        for (const body of [
            { $$type: 'Release' as const, queryId: 0n },
            { $$type: 'Refund' as const, queryId: 0n },
        ]) {
            const r = await escrow.send(keeper.getSender(), { value: short }, body);
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
        }
        // CancelEscrow is only valid before engagement: check its fee on an escrow whose Provider is slow.
        nonce += 1n;
        const slow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, nonce));
        const { storeOpenEscrow, storeCancelEscrow } = await import('../wrappers/Registry');
        const opening = await fx.blockchain.sendMessageIter(
            internal({
                from: client.address,
                to: slow.address,
                value: MAX_AMOUNT + (await provider.getEscrowOpenFee()),
                stateInit: slow.init,
                body: beginCell()
                    .store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash: REQUEST, modelHash: MODEL_A, maxAmount: MAX_AMOUNT, deadline: BigInt(fx.blockchain.now! + 60) }))
                    .endCell(),
            }),
            { allowParallel: true },
        );
        await opening.next();
        expect(await slow.getState()).toBe(ESCROW_OPENED);
        const cancel = await executeFrom(
            await fx.blockchain.sendMessageIter(
                internal({ from: client.address, to: slow.address, value: short, body: beginCell().store(storeCancelEscrow({ $$type: 'CancelEscrow', queryId: 0n })).endCell() }),
                { allowParallel: true },
            ),
        );
        expect(flattenTransaction(cancel[0]).exitCode).toBe(code(ERR_INSUFFICIENT_VALUE));
        await executeFrom(opening);
    });

    it('a JobEngaged for an earlier opening reaches the reopened escrow: refused, and its bounce still rolls the Provider back', async () => {
        nonce += 1n;
        const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, nonce));
        const { storeOpenEscrow, storeCancelEscrow } = await import('../wrappers/Registry');
        const fee = await provider.getEscrowOpenFee();
        const openMessage = () =>
            internal({
                from: client.address,
                to: escrow.address,
                value: MAX_AMOUNT + fee,
                stateInit: escrow.init,
                body: beginCell()
                    .store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash: REQUEST, modelHash: MODEL_A, maxAmount: MAX_AMOUNT, deadline: BigInt(fx.blockchain.now! + 3600) }))
                    .endCell(),
            });
        const first = await fx.blockchain.sendMessageIter(openMessage(), { allowParallel: true });
        await first.next(); // opened; EngageJob in flight
        await first.next(); // the Provider engaged; JobEngaged in flight
        expect((await provider.getInfo()).openJobs).toBe(1n);
        await executeFrom(
            await fx.blockchain.sendMessageIter(
                internal({ from: client.address, to: escrow.address, value: TRIGGER, body: beginCell().store(storeCancelEscrow({ $$type: 'CancelEscrow', queryId: 0n })).endCell() }),
                { allowParallel: true },
            ),
        );
        const second = await fx.blockchain.sendMessageIter(openMessage(), { allowParallel: true });
        await second.next(); // reopened at the same address; its EngageJob in flight
        const late = await executeFrom(first);
        // The reopened escrow refuses the stale answer; the bounce reaches the Provider with enough to roll back.
        const refused = late.find((tx) => tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(escrow.address));
        expect(flattenTransaction(refused!).exitCode).toBe(code(ERR_BAD_STATE));
        const bounce = late.find((tx) => tx.inMessage?.info.type === 'internal' && tx.inMessage.info.bounced);
        expect(flattenTransaction(bounce!).success).toBe(true);
        expect((await provider.getInfo()).openJobs).toBe(0n);
        await executeFrom(second);
        expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
        expect((await provider.getInfo()).openJobs).toBe(1n);
    });

    it('a payout address that rejects the payment still receives it; the escrow closes', async () => {
        // The provider points its payout at the Registry, which rejects unknown messages.
        await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'SetPayoutAddress', queryId: 0n, payout: fx.registry.address });
        const escrow = await open();
        await escrow.send(keeper.getSender(), { value: TRIGGER }, submitReceiptMessage(receiptCell(escrow.address, fx.blockchain.now!)));
        fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
        const registryBefore = (await fx.blockchain.getContract(fx.registry.address)).balance;
        const r = await escrow.send(keeper.getSender(), { value: TRIGGER }, { $$type: 'Release', queryId: 0n });
        expect(r.transactions).toHaveTransaction({ from: escrow.address, to: fx.registry.address, success: false });
        // Non-bounceable: the value stays at the payout address; nothing returns to a closed escrow.
        const fee = (toNano('1') * fx.params.protocolFeeBps) / 10000n;
        const gained = (await fx.blockchain.getContract(fx.registry.address)).balance - registryBefore;
        expect(gained).toBeGreaterThan(toNano('1') - fee - toNano('0.01'));
        expect(await fx.blockchain.getContract(escrow.address).then((c) => c.balance)).toBe(0n);
        expect((await provider.getInfo()).completedJobs).toBe(1n);
    });
});
