// Payment channel: opening and engagement (refusals, an unreachable Provider,
// cancel before engagement), top-ups, claims of cumulative receipts (exact
// payouts, stale seqnos, replays across channels and openings, expiry, the
// cooperative close), the client's close request and settlement by time,
// claims racing a close in one block, payouts to an address that rejects them,
// and disputes of one request with their verdicts or expiry: a refunded request
// comes back whole, the part claims had not paid from the deposit and the part
// they had paid before the dispute from the Provider's stake (RestituteFromChannel,
// capped at the stake). Amounts are checked to the nanoton where the protocol
// fixes them.
import '@ton/test-utils';
import { Address, beginCell, Cell, toNano } from '@ton/core';
import { BlockchainSnapshot, internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { executeFrom, executeTill, flattenTransaction } from '@ton/test-utils';
import {
    CHANNEL_ACTIVE,
    CHANNEL_CLOSING,
    CHANNEL_NEW,
    CHANNEL_OPENED,
    CHANNEL_RECEIPT_TAG,
    CHANNEL_VERDICT_TAG,
    ERR_BAD_ARBITER_SIGNATURE,
    ERR_BAD_RECEIPT_SIGNATURE,
    ERR_BAD_STATE,
    ERR_BAD_STEP,
    ERR_BAD_TERMS,
    ERR_BAD_VERDICT,
    ERR_CHANNEL_EXPIRED,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_ORDER,
    ERR_DISPUTE_PENDING,
    ERR_INSUFFICIENT_VALUE,
    ERR_NO_ARBITERS,
    ERR_NO_DISPUTE,
    ERR_NO_QUORUM,
    ERR_NOT_CLIENT,
    ERR_NOT_SETTLEABLE,
    ERR_OVER_DEPOSIT,
    ERR_RECEIPT_MISMATCH,
    ERR_STALE_SEQNO,
    ERR_VERDICT_LATE,
    ERR_WRONG_ARBITERS,
    ERR_ZERO_AMOUNT,
    ESCROW_CLOSED_CANCELLED,
    ESCROW_CLOSED_EXPIRED,
    ESCROW_CLOSED_REFUSED,
    ESCROW_CLOSED_RELEASED,
    JAIL_GOVERNANCE,
    JAIL_STAKE_BELOW_MINIMUM,
    JOB_SETTLE_GRACE,
    loadChannelDisputeOpened,
    loadChannelEnded,
    loadChannelPayment,
    loadChannelRefund,
    loadExcesses,
    loadJobRefused,
    REFUSED_JOB_DEADLINE,
    REFUSED_JOB_MODEL,
    REFUSED_JOB_NOT_ACTIVE,
    STATUS_ACTIVE,
    STATUS_JAILED,
    storeCancelChannel,
    storeChannelReceipt,
    storeChannelVerdict,
    storeClaimChannel,
    storeDisputeChannelRequest,
    storeOpenChannel,
    storeRequestChannelClose,
    storeSettleChannel,
    storeTopUpChannel,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
} from '../wrappers/Registry';
import { Channel } from '../wrappers/Channel';
import {
    buildChannelStep,
    claimChannelMessage,
    disputeChannelRequestMessage,
    SignedChannelReceipt,
    signChannelReceipt,
} from '../wrappers/channelReceipt';
import { arbiterDictionary } from '../wrappers/params';
import { signHash } from '../wrappers/ed25519';
import { signVerdict } from '../wrappers/verdict';
import {
    activeChannel,
    basechainFees,
    chainOf,
    ChannelFixture,
    channelVerdictFor,
    closedWith,
    deployChannelFixture,
    DEPOSIT,
    disputeRequest,
    OP_RESTITUTE_FROM_CHANNEL,
    OP_SLASH_FROM_CHANNEL,
    openChannel,
    ReceiptChain,
    restitutionIn,
    submitChannelVerdict,
} from './helpers/channel';
import { ARBITERS } from './helpers/dispute';
import { deployFixture, MODEL_A, registerProvider, testKey } from './helpers/fixture';
import { messagesBetween, networkFees, txAt } from './helpers/tx';

const code = (c: bigint) => Number(c);
const CHANNEL_REFUND = 0x4000000c;
const opOf = (body: Cell) => body.beginParse().loadUint(32);

describe('Channel', () => {
    let cf: ChannelFixture;
    let runner: SandboxContract<TreasuryContract>;
    let stranger: SandboxContract<TreasuryContract>;
    let arbiterWallet: SandboxContract<TreasuryContract>;
    let nonce = 0n;
    // One deployment for the whole suite, restored before each test (time included).
    let deployed: BlockchainSnapshot;

    beforeAll(async () => {
        cf = await deployChannelFixture();
        runner = await cf.fx.blockchain.treasury('runner');
        stranger = await cf.fx.blockchain.treasury('stranger');
        arbiterWallet = await cf.fx.blockchain.treasury('arbiters');
        deployed = cf.fx.blockchain.snapshot();
    });

    beforeEach(async () => {
        await cf.fx.blockchain.loadFrom(deployed);
    });

    const next = () => ++nonce;
    const now = () => cf.fx.blockchain.now!;
    const balanceOf = async (a: Address) => (await cf.fx.blockchain.getContract(a)).balance;
    const exists = async (a: Address) => (await cf.fx.blockchain.getContract(a)).accountState !== undefined;
    const protocolFee = (amount: bigint) => (amount * cf.fx.params.protocolFeeBps) / 10000n;
    const arbiterFee = () => (cf.fx.params.disputeBond * cf.fx.params.arbiterFeeBps) / 10000n;
    const providerCounts = async () => {
        const p = await cf.provider.getInfo();
        return [p.openJobs, p.completedJobs, p.refundedJobs];
    };

    function expectRefused(r: SendMessageResult, to: Address, exit: bigint) {
        expect(r.transactions).toHaveTransaction({ to, success: false, exitCode: code(exit) });
    }

    async function claim(channel: SandboxContract<Channel>, signed: SignedChannelReceipt, opts: { from?: SandboxContract<TreasuryContract>; value?: bigint; queryId?: bigint } = {}) {
        return channel.send((opts.from ?? runner).getSender(), { value: opts.value ?? (await channel.getClaimFee()) }, claimChannelMessage(signed, opts.queryId ?? 0n));
    }

    /** Expects `r` to have paid `due` for the provider: due less the protocol fee to the payout, the fee to the treasury, both not bounceable. */
    function expectPaid(r: SendMessageResult, channel: Address, due: bigint, payout: Address = cf.owner.address) {
        const fee = protocolFee(due);
        const toPayout = messagesBetween(r, channel, payout);
        const toTreasury = messagesBetween(r, channel, cf.fx.treasury.address);
        expect(toPayout.map((m) => m.value)).toEqual(due - fee > 0n ? [due - fee] : []);
        expect(toTreasury.map((m) => m.value)).toEqual(fee > 0n ? [fee] : []);
        for (const m of [...toPayout, ...toTreasury]) {
            expect(m.bounce).toBe(false);
            expect(loadChannelPayment(m.body.beginParse()).channel.equals(channel)).toBe(true);
        }
    }

    /** A channel with three requests served (0.1, 0.2 and 0.3 TON), nothing claimed. */
    async function served(opts: Parameters<typeof activeChannel>[2] = {}) {
        const { channel, chain } = await activeChannel(cf, next(), opts);
        for (const amount of ['0.1', '0.2', '0.3']) chain.serve(toNano(amount));
        return { channel, chain };
    }

    /** Starts a message without running it, so several can share a block. */
    function pending(from: Address, to: Address, value: bigint, body: Cell, stateInit?: { code: Cell; data: Cell }) {
        return cf.fx.blockchain.sendMessageIter(internal({ from, to, value, body, stateInit }), { allowParallel: true, now: now() });
    }

    it('opens, engages, pays two claims, and settles by time after a close request', async () => {
        const { channel, chain } = await activeChannel(cf, 1n);
        for (let i = 0; i < 5; i++) chain.serve(toNano('0.1'));
        const fee = await channel.getClaimFee();
        const first = await channel.send(cf.owner.getSender(), { value: fee }, claimChannelMessage(chain.steps[4].signed));
        expect(first.transactions).toHaveTransaction({ to: channel.address, success: true });
        const payout = messagesBetween(first, channel.address, cf.owner.address);
        expect(payout.map((m) => m.value)).toEqual([toNano('0.5') - (toNano('0.5') * cf.fx.params.protocolFeeBps) / 10000n]);
        for (let i = 0; i < 3; i++) chain.serve(toNano('0.2'));
        const second = await channel.send(cf.owner.getSender(), { value: fee }, claimChannelMessage(chain.steps[7].signed));
        expect(second.transactions).toHaveTransaction({ to: channel.address, success: true });
        expect((await channel.getInfo()).settled).toBe(toNano('1.1'));
        const stale = await channel.send(cf.owner.getSender(), { value: fee }, claimChannelMessage(chain.steps[6].signed));
        expect(stale.transactions).toHaveTransaction({ to: channel.address, success: false, exitCode: Number(ERR_STALE_SEQNO) });
        const trigger = await channel.getTriggerFee();
        const close = await channel.send(cf.client.getSender(), { value: trigger }, { $$type: 'RequestChannelClose', queryId: 0n });
        expect(close.transactions).toHaveTransaction({ to: channel.address, success: true });
        cf.fx.blockchain.now! += Number(cf.fx.params.disputeWindow);
        const settle = await channel.send(cf.client.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
        expect(settle.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
        const back = messagesBetween(settle, channel.address, cf.client.address);
        expect(back[back.length - 1].value).toBeGreaterThan(DEPOSIT - toNano('1.1'));
        const info = await cf.provider.getInfo();
        expect(info.openJobs).toBe(0n);
        expect(info.completedJobs).toBe(1n);
    });

    describe('opening and engagement', () => {
        it('engages: Active, closeBy = expiresAt + disputeWindow, the engagement snapshot; the Provider holds an open job', async () => {
            const expiresAt = BigInt(now() + 3600);
            const { channel, result } = await openChannel(cf, next(), { expiresIn: 3600 });
            expect(result.transactions).toHaveTransaction({ from: cf.client.address, to: channel.address, deploy: true, success: true });
            expect(result.transactions).toHaveTransaction({ from: channel.address, to: cf.provider.address, success: true });
            expect(result.transactions).toHaveTransaction({ from: cf.provider.address, to: channel.address, success: true });
            const info = await channel.getInfo();
            expect([info.state, info.deposit, info.settled, info.seqno, info.closeBy]).toEqual([CHANNEL_ACTIVE, DEPOSIT, 0n, 0n, expiresAt + cf.fx.params.disputeWindow]);
            expect(info.client.equals(cf.client.address) && info.provider.equals(cf.provider.address)).toBe(true);
            // openId is the logical time of the opening transaction.
            expect(info.openId).toBe(txAt(result, channel.address).lt);
            const e = info.engagement!;
            expect(e.enclaveKey).toBe(cf.enclave.publicKeyInt);
            expect(e.payout.equals(cf.owner.address) && e.treasury.equals(cf.fx.treasury.address)).toBe(true);
            expect([e.protocolFeeBps, e.disputeWindow, e.verdictWindow, e.disputeBond, e.arbiterQuorum, e.arbiterFeeBps]).toEqual([
                cf.fx.params.protocolFeeBps,
                cf.fx.params.disputeWindow,
                cf.fx.params.verdictWindow,
                cf.fx.params.disputeBond,
                2n,
                cf.fx.params.arbiterFeeBps,
            ]);
            expect(info.disputePending).toBe(false);
            const p = await cf.provider.getInfo();
            expect([p.openJobs, p.completedJobs, p.refundedJobs]).toEqual([1n, 0n, 0n]);
            expect(p.jobsSettleBy).toBe(expiresAt + cf.fx.params.disputeWindow + cf.fx.params.verdictWindow + JOB_SETTLE_GRACE);
            // The deposit is all there, with what the open fee has not spent yet.
            expect(await balanceOf(channel.address)).toBeGreaterThan(DEPOSIT);
            expect(await balanceOf(channel.address)).toBeLessThan(DEPOSIT + (await cf.provider.getChannelOpenFee()));
            // The Provider's getters name the same channel and fee as the Channel's.
            expect((await cf.provider.getChannelFor(cf.client.address, nonce)).equals(channel.address)).toBe(true);
            expect(await channel.getOpenFee()).toBe(await cf.provider.getChannelOpenFee());
        });

        it('checks the terms, the value and the client; an open channel is not opened again', async () => {
            const fee = await cf.provider.getChannelOpenFee();
            let { channel, result } = await openChannel(cf, next(), { value: DEPOSIT + fee - 1n });
            expectRefused(result, channel.address, ERR_INSUFFICIENT_VALUE);
            // The value bounces back; the account is left as deployed, not opened, and opens later.
            expect(result.transactions).toHaveTransaction({ from: channel.address, to: cf.client.address, inMessageBounced: true });
            expect(await channel.getState()).toBe(CHANNEL_NEW);
            expect(await balanceOf(channel.address)).toBeLessThan(toNano('0.001'));
            expectRefused(await channel.send(stranger.getSender(), { value: toNano('0.1') }, { $$type: 'SettleChannel', queryId: 0n }), channel.address, ERR_BAD_STATE);
            ({ result } = await openChannel(cf, nonce));
            expect(await channel.getState()).toBe(CHANNEL_ACTIVE);
            ({ channel, result } = await openChannel(cf, next(), { deposit: 0n, value: fee }));
            expectRefused(result, channel.address, ERR_BAD_TERMS);
            ({ channel, result } = await openChannel(cf, next(), { expiresIn: 0 }));
            expectRefused(result, channel.address, ERR_BAD_TERMS);
            // Someone else cannot open the client's channel.
            const theirs = cf.fx.blockchain.openContract(await Channel.fromInit(cf.client.address, cf.provider.address, next()));
            const r = await theirs.send(stranger.getSender(), { value: DEPOSIT + fee }, {
                $$type: 'OpenChannel',
                queryId: 0n,
                modelHash: MODEL_A,
                deposit: DEPOSIT,
                expiresAt: BigInt(now() + 3600),
            });
            expectRefused(r, theirs.address, ERR_NOT_CLIENT);
            // Exactly deposit + fee opens; a second OpenChannel on the open channel is refused.
            ({ channel, result } = await openChannel(cf, nonce, { value: DEPOSIT + fee }));
            expect(await channel.getState()).toBe(CHANNEL_ACTIVE);
            ({ result } = await openChannel(cf, nonce));
            expectRefused(result, channel.address, ERR_BAD_STATE);
            expect((await channel.getInfo()).deposit).toBe(DEPOSIT);
            // Two channels opened and engaged (the one opened after its refusal, and this one).
            expect(await providerCounts()).toEqual([2n, 0n, 0n]);
        });

        it('refusals close to the client with everything back but the network fees: a model not served, expiresAt beyond maxJobDuration, a provider not Active', async () => {
            const cases: [string, Parameters<typeof openChannel>[2], bigint][] = [
                ['model', { modelHash: 0x999n }, REFUSED_JOB_MODEL],
                ['duration', { expiresIn: Number(cf.fx.params.maxJobDuration) + 1 }, REFUSED_JOB_DEADLINE],
                ['jailed', {}, REFUSED_JOB_NOT_ACTIVE],
            ];
            for (const [what, opts, reason] of cases) {
                if (what === 'jailed') {
                    await cf.fx.registry.send(cf.fx.governance.getSender(), { value: toNano('0.1') }, {
                        $$type: 'JailProvider',
                        queryId: 1n,
                        providerOwner: cf.owner.address,
                        reason: JAIL_GOVERNANCE,
                    });
                    expect(await cf.provider.getStatus()).toBe(STATUS_JAILED);
                }
                const clientBefore = await balanceOf(cf.client.address);
                const providerBefore = await balanceOf(cf.provider.address);
                const { channel, result } = await openChannel(cf, next(), opts);
                const refusal = messagesBetween(result, cf.provider.address, channel.address);
                expect(refusal).toHaveLength(1);
                expect(loadJobRefused(refusal[0].body.beginParse()).reason).toBe(reason);
                const closed = closedWith(result, channel.address, cf.client.address);
                expect([closed.outcome, closed.reason]).toEqual([ESCROW_CLOSED_REFUSED, reason]);
                expect(closed.value).toBeGreaterThan(DEPOSIT);
                expect(await exists(channel.address)).toBe(false);
                // Everything came back: the client is down only what the network kept, the Provider kept nothing.
                expect(await balanceOf(cf.provider.address)).toBe(providerBefore);
                expect(clientBefore - (await balanceOf(cf.client.address))).toBe(networkFees(result));
                expect(await providerCounts()).toEqual([0n, 0n, 0n]);
            }
        });

        it('a provider that never answers: no Provider at the address, the bounce closes the channel as refused', async () => {
            const nowhere = new Address(0, Buffer.alloc(32, 0x42));
            const clientBefore = await balanceOf(cf.client.address);
            const { channel, result } = await openChannel(cf, next(), { provider: nowhere });
            expect(result.transactions).toHaveTransaction({ from: nowhere, to: channel.address, inMessageBounced: true, success: true });
            const closed = closedWith(result, channel.address, cf.client.address);
            expect([closed.outcome, closed.reason]).toEqual([ESCROW_CLOSED_REFUSED, 0n]);
            expect(await exists(channel.address)).toBe(false);
            expect(clientBefore - (await balanceOf(cf.client.address))).toBe(networkFees(result));
        });

        it('before engagement: nothing but a top-up and a cancel; the cancel returns everything, and the late JobEngaged bounces so the Provider rolls back', async () => {
            const n = next();
            const channel = cf.fx.blockchain.openContract(await Channel.fromInit(cf.client.address, cf.provider.address, n));
            const openBody = beginCell()
                .store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: MODEL_A, deposit: DEPOSIT, expiresAt: BigInt(now() + 3600) }))
                .endCell();
            const opening = await pending(cf.client.address, channel.address, DEPOSIT + (await cf.provider.getChannelOpenFee()), openBody, channel.init);
            // The channel opens and sends EngageChannel; the Provider has not answered yet.
            await executeTill(opening, { to: channel.address, success: true });
            expect(await channel.getState()).toBe(CHANNEL_OPENED);
            const trigger = await channel.getTriggerFee();
            const run = async (from: Address, value: bigint, body: Cell) => executeFrom(await pending(from, channel.address, value, body));
            const first = (txs: Awaited<ReturnType<typeof run>>) => flattenTransaction(txs[0]);
            // A receipt, a close request, a dispute: nothing to act on yet.
            const chain = new ReceiptChain(channel.address, (await channel.getInfo()).openId, cf.enclave);
            const { step, signed } = chain.serve(toNano('0.1'));
            const claimBody = beginCell().store(storeClaimChannel(claimChannelMessage(signed))).endCell();
            expect(first(await run(runner.address, await channel.getClaimFee(), claimBody)).exitCode).toBe(code(ERR_BAD_STATE));
            const closeBody = beginCell().store(storeRequestChannelClose({ $$type: 'RequestChannelClose', queryId: 0n })).endCell();
            expect(first(await run(cf.client.address, trigger, closeBody)).exitCode).toBe(code(ERR_BAD_STATE));
            const disputeBody = beginCell().store(storeDisputeChannelRequest(disputeChannelRequestMessage(signed, step, 1, 1n))).endCell();
            expect(first(await run(cf.client.address, toNano('2'), disputeBody)).exitCode).toBe(code(ERR_BAD_STATE));
            const settleBody = beginCell().store(storeSettleChannel({ $$type: 'SettleChannel', queryId: 0n })).endCell();
            expect(first(await run(stranger.address, trigger, settleBody)).exitCode).toBe(code(ERR_NOT_SETTLEABLE));
            // A top-up is taken while opened.
            const topUp = beginCell().store(storeTopUpChannel({ $$type: 'TopUpChannel', queryId: 0n, amount: toNano('1') })).endCell();
            expect(first(await run(cf.client.address, toNano('1') + trigger, topUp)).success).toBe(true);
            expect((await channel.getInfo()).deposit).toBe(DEPOSIT + toNano('1'));
            // Only the client cancels, with the fee.
            const cancelBody = beginCell().store(storeCancelChannel({ $$type: 'CancelChannel', queryId: 3n })).endCell();
            expect(first(await run(stranger.address, trigger, cancelBody)).exitCode).toBe(code(ERR_NOT_CLIENT));
            expect(first(await run(cf.client.address, trigger - 1n, cancelBody)).exitCode).toBe(code(ERR_INSUFFICIENT_VALUE));
            const held = await balanceOf(channel.address);
            const cancel = await run(cf.client.address, trigger, cancelBody);
            expect(first(cancel).success).toBe(true);
            const closed = closedWith(chainOf(cancel), channel.address, cf.client.address);
            expect([closed.outcome, closed.reason, closed.queryId]).toEqual([ESCROW_CLOSED_CANCELLED, 0n, 3n]);
            // Everything the channel held and the cancel's value, less the cancel's own costs.
            expect(closed.value).toBeGreaterThan(held);
            expect(closed.value).toBeLessThan(held + trigger);
            expect(await exists(channel.address)).toBe(false);
            // Now the Provider engages a channel that is gone: its answer bounces back and it rolls its count back.
            const rest = await executeFrom(opening);
            expect(rest).toHaveTransaction({ from: channel.address, to: cf.provider.address, inMessageBounced: true, success: true });
            expect(await providerCounts()).toEqual([0n, 0n, 0n]);
        });

        it('a JobEngaged for an earlier opening of the address is refused by the reopened channel; each opening is answered on its own', async () => {
            const n = next();
            const channel = cf.fx.blockchain.openContract(await Channel.fromInit(cf.client.address, cf.provider.address, n));
            const fee = await cf.provider.getChannelOpenFee();
            const openBody = () =>
                beginCell()
                    .store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: MODEL_A, deposit: DEPOSIT, expiresAt: BigInt(now() + 3600) }))
                    .endCell();
            const first = await pending(cf.client.address, channel.address, DEPOSIT + fee, openBody(), channel.init);
            await executeTill(first, { to: channel.address, success: true });
            const firstOpenId = (await channel.getInfo()).openId;
            await executeFrom(await pending(cf.client.address, channel.address, toNano('0.1'), beginCell().store(storeCancelChannel({ $$type: 'CancelChannel', queryId: 0n })).endCell()));
            expect(await exists(channel.address)).toBe(false);
            const second = await pending(cf.client.address, channel.address, DEPOSIT + fee, openBody(), channel.init);
            await executeTill(second, { to: channel.address, success: true });
            const secondOpenId = (await channel.getInfo()).openId;
            expect(secondOpenId).not.toBe(firstOpenId);
            // The first opening's answer reaches the second opening: refused, bounced, rolled back.
            const late = await executeFrom(first);
            expect(late).toHaveTransaction({ from: cf.provider.address, to: channel.address, success: false, exitCode: code(ERR_BAD_STATE) });
            expect(late).toHaveTransaction({ from: channel.address, to: cf.provider.address, inMessageBounced: true, success: true });
            expect(await channel.getState()).toBe(CHANNEL_OPENED);
            expect(await providerCounts()).toEqual([0n, 0n, 0n]);
            await executeFrom(second);
            const info = await channel.getInfo();
            expect([info.state, info.openId]).toEqual([CHANNEL_ACTIVE, secondOpenId]);
            expect(await providerCounts()).toEqual([1n, 0n, 0n]);
        });

        it('opened but never engaged: settled by anyone at expiresAt with everything back, and no ChannelEnded', async () => {
            const n = next();
            const channel = cf.fx.blockchain.openContract(await Channel.fromInit(cf.client.address, cf.provider.address, n));
            const expiresAt = now() + 600;
            const openBody = beginCell().store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: MODEL_A, deposit: DEPOSIT, expiresAt: BigInt(expiresAt) })).endCell();
            // Run at the clock of each step (not fixed at the send), as the engagement is delivered late.
            const opening = await cf.fx.blockchain.sendMessageIter(
                internal({ from: cf.client.address, to: channel.address, value: DEPOSIT + (await cf.provider.getChannelOpenFee()), body: openBody, stateInit: channel.init }),
                { allowParallel: true },
            );
            await executeTill(opening, { to: channel.address, success: true });
            // EngageChannel stays in flight: the Provider does not answer.
            expect((await channel.getInfo()).closeBy).toBe(BigInt(expiresAt));
            const trigger = await channel.getTriggerFee();
            cf.fx.blockchain.now = expiresAt - 1;
            let r = await channel.send(stranger.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
            expectRefused(r, channel.address, ERR_NOT_SETTLEABLE);
            cf.fx.blockchain.now = expiresAt;
            const held = await balanceOf(channel.address);
            r = await channel.send(stranger.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            const closed = closedWith(r, channel.address, cf.client.address);
            expect(closed.outcome).toBe(ESCROW_CLOSED_EXPIRED);
            // All it held, less the storage rent of the wait (the settler's value paid the rest).
            expect(closed.value).toBeGreaterThan(held - toNano('0.001'));
            expect(closed.value).toBeLessThanOrEqual(held);
            expect(messagesBetween(r, channel.address, stranger.address)).toHaveLength(1);
            expect(messagesBetween(r, channel.address, cf.provider.address)).toHaveLength(0);
            // The engagement arrives too late: refused for its deadline; the refusal bounces off the closed channel.
            const rest = await executeFrom(opening);
            const refusal = rest.find((tx) => tx.inMessage?.info.src instanceof Address && tx.inMessage.info.src.equals(cf.provider.address));
            expect(loadJobRefused(refusal!.inMessage!.body.beginParse()).reason).toBe(REFUSED_JOB_DEADLINE);
            expect(await providerCounts()).toEqual([0n, 0n, 0n]);
        });

        it('reopened after a close: a new openId, and the receipts of the earlier opening are refused', async () => {
            const n = next();
            const { channel, chain } = await activeChannel(cf, n);
            chain.serve(toNano('0.5'));
            chain.serve(toNano('0.5'));
            const final = chain.resign({ final: true });
            let r = await claim(channel, final);
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            const { chain: reopened } = await activeChannel(cf, n);
            expect(reopened.openId).not.toBe(chain.openId);
            // Every receipt of the first opening has a seqno above the new channel's 0, but names the old opening.
            for (const old of [chain.steps[0].signed, chain.steps[1].signed, final]) {
                r = await claim(channel, old);
                expectRefused(r, channel.address, ERR_RECEIPT_MISMATCH);
            }
            expect((await channel.getInfo()).settled).toBe(0n);
            reopened.serve(toNano('0.3'));
            r = await claim(channel, reopened.steps[0].signed);
            expectPaid(r, channel.address, toNano('0.3'));
            expect(await providerCounts()).toEqual([1n, 1n, 0n]);
        });
    });

    describe('top-ups', () => {
        it('only the client, a positive amount with amount + fee, while opened or active; what is attached above stays for the client', async () => {
            const { channel, chain } = await activeChannel(cf, next());
            const trigger = await channel.getTriggerFee();
            const amount = toNano('2');
            const topUp = (from: SandboxContract<TreasuryContract>, value: bigint, a = amount) =>
                channel.send(from.getSender(), { value }, { $$type: 'TopUpChannel', queryId: 0n, amount: a });
            expectRefused(await topUp(stranger, amount + trigger), channel.address, ERR_NOT_CLIENT);
            expectRefused(await topUp(cf.client, trigger, 0n), channel.address, ERR_ZERO_AMOUNT);
            expectRefused(await topUp(cf.client, amount + trigger - 1n), channel.address, ERR_INSUFFICIENT_VALUE);
            expect((await channel.getInfo()).deposit).toBe(DEPOSIT);
            // A receipt above the deposit is refused until the top-up covers it.
            chain.serve(DEPOSIT + 1n);
            expectRefused(await claim(channel, chain.steps[0].signed), channel.address, ERR_OVER_DEPOSIT);
            const before = await balanceOf(channel.address);
            const extra = toNano('0.5');
            const r = await topUp(cf.client, amount + trigger + extra);
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            expect(messagesBetween(r, channel.address, cf.client.address)).toHaveLength(0);
            expect((await channel.getInfo()).deposit).toBe(DEPOSIT + amount);
            // The fee paid the compute: the balance grew by at least the amount and the extra.
            expect((await balanceOf(channel.address)) - before).toBeGreaterThanOrEqual(amount + extra);
            expect((await balanceOf(channel.address)) - before).toBeLessThan(amount + extra + trigger);
            const paid = await claim(channel, chain.steps[0].signed);
            expectPaid(paid, channel.address, DEPOSIT + 1n);
            // Once closing, no more top-ups.
            await channel.send(cf.client.getSender(), { value: trigger }, { $$type: 'RequestChannelClose', queryId: 0n });
            expectRefused(await topUp(cf.client, amount + trigger), channel.address, ERR_BAD_STATE);
        });
    });

    describe('claims', () => {
        it('pays receipt.amount − settled less the protocol fee to the payout and the fee to the treasury; the claimer gets its excess; the claim fee, not the deposit, pays the forwarding', async () => {
            const { channel, chain } = await activeChannel(cf, next());
            // Amounts whose protocol fee rounds down.
            for (const a of [toNano('0.25') + 7n, toNano('0.25') + 13n, toNano('0.25') + 99n]) chain.serve(a);
            const fee = await channel.getClaimFee();
            const extra = toNano('1');
            let settled = 0n;
            for (const k of [1, 2]) {
                const receipt = chain.steps[k].signed;
                const due = [toNano('0.5') + 20n, toNano('0.25') + 99n][k - 1];
                const before = await balanceOf(channel.address);
                const r = await claim(channel, receipt, { value: fee + extra, queryId: BigInt(40 + k) });
                expect(r.transactions).not.toHaveTransaction({ success: false });
                expectPaid(r, channel.address, due);
                for (const m of messagesBetween(r, channel.address, cf.owner.address)) expect(loadChannelPayment(m.body.beginParse()).queryId).toBe(BigInt(40 + k));
                // Exactly what was attached above the fee comes back.
                const back = messagesBetween(r, channel.address, runner.address);
                expect(back.map((m) => m.value)).toEqual([extra]);
                expect(back[0].bounce).toBe(false);
                expect(loadExcesses(back[0].body.beginParse()).queryId).toBe(BigInt(40 + k));
                settled += due;
                const info = await channel.getInfo();
                expect([info.settled, info.seqno]).toEqual([settled, BigInt(k + 1)]);
                // The channel is down by the payment at most: its costs came out of the claim fee.
                const after = await balanceOf(channel.address);
                expect(after).toBeGreaterThanOrEqual(before - due);
                expect(after).toBeLessThan(before - due + fee);
                expect(after).toBeGreaterThan(info.deposit - info.settled);
            }
            // Sent with exactly the fee, a claim returns nothing and still leaves the deposit whole.
            chain.serve(toNano('1'));
            const before = await balanceOf(channel.address);
            const r = await claim(channel, chain.steps[3].signed, { value: fee });
            expectPaid(r, channel.address, toNano('1'));
            expect(messagesBetween(r, channel.address, runner.address)).toHaveLength(0);
            expect(await balanceOf(channel.address)).toBeGreaterThanOrEqual(before - toNano('1'));
        });

        it('a receipt that adds nothing raises the seqno and pays nothing', async () => {
            const { channel, chain } = await served();
            await claim(channel, chain.steps[2].signed);
            const same = chain.resign();
            const r = await claim(channel, same);
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            expectPaid(r, channel.address, 0n);
            const info = await channel.getInfo();
            expect([info.settled, info.seqno, info.state]).toEqual([toNano('0.6'), 4n, CHANNEL_ACTIVE]);
        });

        it('refuses stale and equal seqnos, amounts above the deposit, bad signatures, too little value; a refusal changes nothing', async () => {
            const { channel, chain } = await served();
            await claim(channel, chain.steps[1].signed);
            const mallory = testKey('mallory');
            const cases: [string, SignedChannelReceipt, bigint, bigint?][] = [
                ['equal seqno', chain.steps[1].signed, ERR_STALE_SEQNO],
                ['lower seqno', chain.steps[0].signed, ERR_STALE_SEQNO],
                // A fresh signature over the same seqno with a higher amount is just as stale.
                ['equal seqno, more money', signChannelReceipt(chain.fields({ seqno: 2n, amount: toNano('5') }), cf.enclave), ERR_STALE_SEQNO],
                ['over the deposit', signChannelReceipt(chain.fields({ seqno: 9n, amount: DEPOSIT + 1n }), cf.enclave), ERR_OVER_DEPOSIT],
                ['signed by another key', signChannelReceipt(chain.fields({ seqno: 9n }), mallory), ERR_BAD_RECEIPT_SIGNATURE],
                ['a signature of another receipt', { receipt: chain.steps[2].signed.receipt, signature: chain.steps[0].signed.signature }, ERR_BAD_RECEIPT_SIGNATURE],
                ['one nanoton under the fee', chain.steps[2].signed, ERR_INSUFFICIENT_VALUE, (await channel.getClaimFee()) - 1n],
            ];
            for (const [, signed, exit, value] of cases) {
                const r = await claim(channel, signed, { value });
                expectRefused(r, channel.address, exit);
                // The value bounces back to the claimer; nothing is paid.
                expect(r.transactions).toHaveTransaction({ from: channel.address, to: runner.address, inMessageBounced: true });
                expect(messagesBetween(r, channel.address, cf.owner.address)).toHaveLength(0);
            }
            const info = await channel.getInfo();
            expect([info.settled, info.seqno]).toEqual([toNano('0.3'), 2n]);
            // The whole deposit, exactly, is claimable.
            const all = signChannelReceipt(chain.fields({ seqno: 9n, amount: DEPOSIT }), cf.enclave);
            expectPaid(await claim(channel, all), channel.address, DEPOSIT - toNano('0.3'));
            expect(await balanceOf(channel.address)).toBeGreaterThan(0n);
        });

        it('replays across channels and tags: a receipt for another channel, or another kind of signed cell, is refused', async () => {
            const { channel: a, chain: chainA } = await served();
            const { channel: b, chain: chainB } = await served();
            // The same enclave serves both: B's receipts are valid signatures, but not for A.
            expectRefused(await claim(a, chainB.steps[2].signed), a.address, ERR_RECEIPT_MISMATCH);
            // A's address with B's opening, and B's address with A's opening.
            expectRefused(await claim(a, signChannelReceipt(chainA.fields({ openId: chainB.openId }), cf.enclave)), a.address, ERR_RECEIPT_MISMATCH);
            expectRefused(await claim(a, signChannelReceipt(chainB.fields({ openId: chainA.openId }), cf.enclave)), a.address, ERR_RECEIPT_MISMATCH);
            // The channel receipt layout under another tag (say the escrow receipt's), signed by the enclave.
            const tagged = beginCell()
                .store(storeChannelReceipt({ $$type: 'ChannelReceipt', ...chainA.fields(), tag: 0x72637074n }))
                .endCell();
            expectRefused(await claim(a, { receipt: tagged, signature: signHash(tagged.hash(), cf.enclave) }), a.address, ERR_RECEIPT_MISMATCH);
            expect((await a.getInfo()).settled).toBe(0n);
            expectPaid(await claim(a, chainA.steps[2].signed), a.address, toNano('0.6'));
            expectPaid(await claim(b, chainB.steps[2].signed), b.address, toNano('0.6'));
            expect(CHANNEL_RECEIPT_TAG).not.toBe(0x72637074n);
        });

        it('claims until closeBy: a second before it pays, at it the claim is refused (ERR_CHANNEL_EXPIRED)', async () => {
            const { channel, chain } = await served();
            const closeBy = Number((await channel.getInfo()).closeBy);
            cf.fx.blockchain.now = closeBy - 1;
            expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('0.3'));
            cf.fx.blockchain.now = closeBy;
            expectRefused(await claim(channel, chain.steps[2].signed), channel.address, ERR_CHANNEL_EXPIRED);
            expect((await channel.getInfo()).settled).toBe(toNano('0.3'));
        });

        it('a final receipt closes at once (the cooperative close): the provider paid, ChannelEnded, the rest to the client', async () => {
            const { channel, chain } = await served();
            expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('0.3'));
            const final = chain.resign({ final: true });
            const held = await balanceOf(channel.address);
            const r = await claim(channel, final, { queryId: 7n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            expectPaid(r, channel.address, toNano('0.3'));
            const ended = messagesBetween(r, channel.address, cf.provider.address);
            expect(ended).toHaveLength(1);
            const e = loadChannelEnded(ended[0].body.beginParse());
            expect([e.queryId, e.nonce, e.outcome]).toEqual([7n, nonce, ESCROW_CLOSED_RELEASED]);
            expect(e.client.equals(cf.client.address)).toBe(true);
            const closed = closedWith(r, channel.address, cf.client.address);
            expect(closed.outcome).toBe(ESCROW_CLOSED_RELEASED);
            // The client gets the deposit less what the enclave signed, and what the fees left.
            expect(closed.value).toBeGreaterThan(DEPOSIT - toNano('0.6'));
            expect(closed.value).toBeLessThan(held - toNano('0.3'));
            expect(await providerCounts()).toEqual([0n, 1n, 0n]);
        });

        it('a payout address that rejects payments: they are not bounceable, the claim and the close go through', async () => {
            // The provider points its payout at the Registry, which rejects messages it has no receiver for.
            const rejecting = cf.fx.registry.address;
            await cf.provider.send(cf.owner.getSender(), { value: toNano('0.05') }, { $$type: 'SetPayoutAddress', queryId: 0n, payout: rejecting });
            const { channel, chain } = await served();
            expect((await channel.getInfo()).engagement!.payout.equals(rejecting)).toBe(true);
            const before = await balanceOf(rejecting);
            let r = await claim(channel, chain.steps[2].signed);
            expect(r.transactions).toHaveTransaction({ from: channel.address, to: rejecting, success: false, exitCode: 130 });
            expect(r.transactions).not.toHaveTransaction({ from: rejecting, to: channel.address });
            expectPaid(r, channel.address, toNano('0.6'), rejecting);
            expect((await channel.getInfo()).settled).toBe(toNano('0.6'));
            // The payment stays with the rejecting receiver (less its compute).
            expect((await balanceOf(rejecting)) - before).toBeGreaterThan(toNano('0.6') - protocolFee(toNano('0.6')) - toNano('0.01'));
            r = await claim(channel, chain.resign({ final: true }));
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            expect(closedWith(r, channel.address, cf.client.address).outcome).toBe(ESCROW_CLOSED_RELEASED);
            expect(await providerCounts()).toEqual([0n, 1n, 0n]);
        });
    });

    describe('closing', () => {
        it('RequestChannelClose: only the client, only Active, with its fee; closeBy = min(closeBy, now + disputeWindow)', async () => {
            const { channel, chain } = await served();
            const trigger = await channel.getTriggerFee();
            const closeBy = (await channel.getInfo()).closeBy;
            const request = (from: SandboxContract<TreasuryContract>, value = trigger) => channel.send(from.getSender(), { value }, { $$type: 'RequestChannelClose', queryId: 5n });
            expectRefused(await request(stranger), channel.address, ERR_NOT_CLIENT);
            expectRefused(await request(cf.client, trigger - 1n), channel.address, ERR_INSUFFICIENT_VALUE);
            const r = await request(cf.client, trigger + toNano('1'));
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            const back = messagesBetween(r, channel.address, cf.client.address);
            expect(back).toHaveLength(1);
            expect(loadExcesses(back[0].body.beginParse()).queryId).toBe(5n);
            expect(back[0].value).toBeGreaterThan(toNano('1'));
            let info = await channel.getInfo();
            expect(info.state).toBe(CHANNEL_CLOSING);
            expect(info.closeBy).toBe(BigInt(now()) + cf.fx.params.disputeWindow);
            expect(info.closeBy).toBeLessThan(closeBy);
            expectRefused(await request(cf.client), channel.address, ERR_BAD_STATE);
            // The provider claims during the challenge period.
            expectPaid(await claim(channel, chain.steps[2].signed), channel.address, toNano('0.6'));
            info = await channel.getInfo();
            expect([info.state, info.settled]).toEqual([CHANNEL_CLOSING, toNano('0.6')]);

            // Near the end of the channel's life a close request does not extend it.
            const { channel: late } = await activeChannel(cf, next());
            const lateCloseBy = (await late.getInfo()).closeBy;
            cf.fx.blockchain.now = Number(lateCloseBy) - 100;
            await late.send(cf.client.getSender(), { value: trigger }, { $$type: 'RequestChannelClose', queryId: 0n });
            info = await late.getInfo();
            expect([info.state, info.closeBy]).toEqual([CHANNEL_CLOSING, lateCloseBy]);
        });

        it('SettleChannel: refused before closeBy; after it anyone settles; nothing claimed is an expired job', async () => {
            const { channel } = await served();
            const trigger = await channel.getTriggerFee();
            const closeBy = Number((await channel.getInfo()).closeBy);
            cf.fx.blockchain.now = closeBy - 1;
            const settle = (value = trigger) => channel.send(stranger.getSender(), { value }, { $$type: 'SettleChannel', queryId: 4n });
            expectRefused(await settle(), channel.address, ERR_NOT_SETTLEABLE);
            cf.fx.blockchain.now = closeBy;
            expectRefused(await settle(trigger - 1n), channel.address, ERR_INSUFFICIENT_VALUE);
            const r = await settle(trigger + toNano('1'));
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            const back = messagesBetween(r, channel.address, stranger.address);
            expect(back).toHaveLength(1);
            expect(back[0].value).toBeGreaterThan(toNano('1'));
            const ended = messagesBetween(r, channel.address, cf.provider.address);
            expect(ended).toHaveLength(1);
            expect(loadChannelEnded(ended[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_EXPIRED);
            const closed = closedWith(r, channel.address, cf.client.address);
            expect([closed.outcome, closed.queryId]).toEqual([ESCROW_CLOSED_EXPIRED, 4n]);
            expect(closed.value).toBeGreaterThan(DEPOSIT);
            expect(await providerCounts()).toEqual([0n, 0n, 1n]);
        });

        it('SettleChannel after claims: released; the client gets the deposit less what was settled, and the unspent fees', async () => {
            const { channel, chain } = await served();
            await claim(channel, chain.steps[2].signed);
            cf.fx.blockchain.now = Number((await channel.getInfo()).closeBy);
            const held = await balanceOf(channel.address);
            const r = await channel.send(stranger.getSender(), { value: await channel.getTriggerFee() }, { $$type: 'SettleChannel', queryId: 0n });
            expect(loadChannelEnded(messagesBetween(r, channel.address, cf.provider.address)[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_RELEASED);
            const closed = closedWith(r, channel.address, cf.client.address);
            expect(closed.outcome).toBe(ESCROW_CLOSED_RELEASED);
            expect(closed.value).toBeGreaterThan(DEPOSIT - toNano('0.6'));
            expect(closed.value).toBeLessThan(held);
            expect(await providerCounts()).toEqual([0n, 1n, 0n]);
        });
    });

    describe('races', () => {
        for (const lead of [-1, 0]) {
            for (const claimFirst of [true, false]) {
                it(`a claim and a settle in one block ${lead < 0 ? 'a second before' : 'at'} closeBy, the ${claimFirst ? 'claim' : 'settle'} first: ${lead < 0 ? 'the claim pays' : 'the settle closes'}`, async () => {
                    const { channel, chain } = await served();
                    cf.fx.blockchain.now = Number((await channel.getInfo()).closeBy) + lead;
                    const claimBody = beginCell().store(storeClaimChannel(claimChannelMessage(chain.steps[2].signed))).endCell();
                    const settleBody = beginCell().store(storeSettleChannel({ $$type: 'SettleChannel', queryId: 0n })).endCell();
                    const claimIter = await pending(runner.address, channel.address, await channel.getClaimFee(), claimBody);
                    const settleIter = await pending(cf.client.address, channel.address, await channel.getTriggerFee(), settleBody);
                    const [a, b] = claimFirst ? [claimIter, settleIter] : [settleIter, claimIter];
                    const firstTxs = await executeTill(a, { to: channel.address });
                    const secondTxs = await executeTill(b, { to: channel.address });
                    const all = chainOf([...firstTxs, ...secondTxs, ...(await executeFrom(a)), ...(await executeFrom(b))]);
                    const [claimTxs, settleTxs] = claimFirst ? [firstTxs, secondTxs] : [secondTxs, firstTxs];
                    if (lead < 0) {
                        // Still claimable: the claim pays, the settle is refused whatever the order.
                        expect(claimTxs).toHaveTransaction({ to: channel.address, success: true });
                        expect(settleTxs).toHaveTransaction({ to: channel.address, success: false, exitCode: code(ERR_NOT_SETTLEABLE) });
                        expectPaid(all, channel.address, toNano('0.6'));
                        const info = await channel.getInfo();
                        expect([info.state, info.settled]).toEqual([CHANNEL_ACTIVE, toNano('0.6')]);
                        expect(await providerCounts()).toEqual([1n, 0n, 0n]);
                    } else {
                        // Settleable: the settle closes, nothing is paid to the provider.
                        expect(settleTxs).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
                        if (claimFirst) {
                            expect(claimTxs).toHaveTransaction({ to: channel.address, success: false, exitCode: code(ERR_CHANNEL_EXPIRED) });
                        } else {
                            // The channel is gone when the claim arrives.
                            expect(claimTxs).toHaveTransaction({ to: channel.address, success: false });
                        }
                        // Either way the claim's value returns to the runner.
                        expect(all.transactions).toHaveTransaction({ from: channel.address, to: runner.address, inMessageBounced: true });
                        expectPaid(all, channel.address, 0n);
                        const closed = closedWith(all, channel.address, cf.client.address);
                        expect(closed.outcome).toBe(ESCROW_CLOSED_EXPIRED);
                        expect(closed.value).toBeGreaterThan(DEPOSIT);
                        expect(await providerCounts()).toEqual([0n, 0n, 1n]);
                    }
                });
            }
        }

        for (const final of [false, true]) {
            for (const claimFirst of [true, false]) {
                it(`a ${final ? 'final claim' : 'claim'} and a close request in one block, the ${claimFirst ? 'claim' : 'request'} first: the claim pays${final ? ' and closes' : ', the channel is closing'}`, async () => {
                    const { channel, chain } = await served();
                    const signed = final ? chain.resign({ final: true }) : chain.steps[2].signed;
                    const claimBody = beginCell().store(storeClaimChannel(claimChannelMessage(signed))).endCell();
                    const closeBody = beginCell().store(storeRequestChannelClose({ $$type: 'RequestChannelClose', queryId: 0n })).endCell();
                    const claimIter = await pending(runner.address, channel.address, await channel.getClaimFee(), claimBody);
                    const closeIter = await pending(cf.client.address, channel.address, await channel.getTriggerFee(), closeBody);
                    const [a, b] = claimFirst ? [claimIter, closeIter] : [closeIter, claimIter];
                    const firstTxs = await executeTill(a, { to: channel.address });
                    const secondTxs = await executeTill(b, { to: channel.address });
                    const all = chainOf([...firstTxs, ...secondTxs, ...(await executeFrom(a)), ...(await executeFrom(b))]);
                    const [claimTxs, closeTxs] = claimFirst ? [firstTxs, secondTxs] : [secondTxs, firstTxs];
                    expect(claimTxs).toHaveTransaction({ to: channel.address, success: true });
                    expectPaid(all, channel.address, toNano('0.6'));
                    if (!final) {
                        expect(closeTxs).toHaveTransaction({ to: channel.address, success: true });
                        const info = await channel.getInfo();
                        expect([info.state, info.settled, info.closeBy]).toEqual([CHANNEL_CLOSING, toNano('0.6'), BigInt(now()) + cf.fx.params.disputeWindow]);
                        expect(await providerCounts()).toEqual([1n, 0n, 0n]);
                        return;
                    }
                    if (claimFirst) {
                        // Closed already: the request bounces back to the client.
                        expect(closeTxs).toHaveTransaction({ to: channel.address, success: false });
                        expect(all.transactions).toHaveTransaction({ from: channel.address, to: cf.client.address, inMessageBounced: true });
                    } else {
                        expect(closeTxs).toHaveTransaction({ to: channel.address, success: true });
                    }
                    const closed = closedWith(all, channel.address, cf.client.address);
                    expect(closed.outcome).toBe(ESCROW_CLOSED_RELEASED);
                    expect(closed.value).toBeGreaterThan(DEPOSIT - toNano('0.6'));
                    expect(await exists(channel.address)).toBe(false);
                    expect(await providerCounts()).toEqual([0n, 1n, 0n]);
                });
            }
        }
    });

    describe('disputes of one request', () => {
        /** A channel with three requests served (0.1, 0.2, 0.3) and the second disputed. */
        async function disputed() {
            const { channel, chain } = await served();
            const r = await disputeRequest(channel, cf.client, chain.steps[1], { queryId: 9n, reason: 2, evidenceHash: 0xe71den });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            return { channel, chain, r };
        }

        it('the receipt signed right after request k and its step open a dispute: logged for the arbiters, the bond held, exactly bond + fee', async () => {
            const { channel, chain } = await served();
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            const value = bond + (await channel.getDisputeFee());
            expectRefused(await disputeRequest(channel, cf.client, chain.steps[1], { value: value - 1n }), channel.address, ERR_INSUFFICIENT_VALUE);
            const before = await balanceOf(channel.address);
            const r = await disputeRequest(channel, cf.client, chain.steps[1], { value, queryId: 9n, reason: 2, evidenceHash: 0xe71den });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            const tx = txAt(r, channel.address);
            const outs = [...tx.outMessages.values()];
            // One log and no message: the bond stays in the channel.
            expect(outs.map((m) => m.info.type)).toEqual(['external-out']);
            const log = loadChannelDisputeOpened(outs[0].body.beginParse());
            const verdictBy = BigInt(now()) + cf.fx.params.verdictWindow;
            expect([log.queryId, log.seqno, log.requestHash, log.reason, log.evidenceHash, log.verdictBy]).toEqual([
                9n,
                2n,
                chain.steps[1].step.requestHash,
                2n,
                0xe71den,
                verdictBy,
            ]);
            const info = await channel.getInfo();
            expect([info.disputePending, info.disputedAmount, info.verdictBy, info.lastDisputedSeqno]).toEqual([true, toNano('0.2'), verdictBy, 2n]);
            expect((await balanceOf(channel.address)) - before).toBeGreaterThan(bond);
            expect(await providerCounts()).toEqual([1n, 0n, 0n]);
        });

        it('refuses another sender, a step that is not the receipt\'s, a receipt with no request, bad signatures, another channel\'s receipt, a second dispute while one is pending, and after closeBy', async () => {
            const { channel, chain } = await served();
            const { chain: other } = await served();
            const value = (await channel.getInfo()).engagement!.disputeBond + (await channel.getDisputeFee());
            const raw = (signed: SignedChannelReceipt, step: Cell) =>
                channel.send(cf.client.getSender(), { value }, { $$type: 'DisputeChannelRequest', queryId: 0n, signature: signed.signature, receipt: signed.receipt, step, reason: 1n, evidenceHash: 1n });
            expectRefused(await disputeRequest(channel, stranger, chain.steps[1], { value }), channel.address, ERR_NOT_CLIENT);
            // Request 1's step with the receipt signed after request 2.
            expectRefused(await raw(chain.steps[1].signed, buildChannelStep(chain.steps[0].step)), channel.address, ERR_BAD_STEP);
            // The right step with one field changed (a cheaper request than the enclave chained).
            expectRefused(await raw(chain.steps[1].signed, buildChannelStep({ ...chain.steps[1].step, amount: toNano('5') })), channel.address, ERR_BAD_STEP);
            // A receipt signed before any request has no step to dispute.
            const empty = signChannelReceipt(chain.fields({ seqno: 50n, amount: 0n, requests: 0n, root: 0n }), cf.enclave);
            expectRefused(await raw(empty, buildChannelStep({ prev: 0n, requestHash: 0n, responseHash: 0n, amount: 0n })), channel.address, ERR_BAD_STEP);
            // The enclave's latest state, signed by someone else.
            const forged = signChannelReceipt(chain.fields(), testKey('mallory'));
            expectRefused(await raw(forged, buildChannelStep(chain.steps[2].step)), channel.address, ERR_BAD_RECEIPT_SIGNATURE);
            expectRefused(await disputeRequest(channel, cf.client, other.steps[1], { value }), channel.address, ERR_RECEIPT_MISMATCH);
            expect((await channel.getInfo()).disputePending).toBe(false);
            // One at a time.
            await disputeRequest(channel, cf.client, chain.steps[0], { value });
            expectRefused(await disputeRequest(channel, cf.client, chain.steps[2], { value }), channel.address, ERR_DISPUTE_PENDING);
            expect((await channel.getInfo()).lastDisputedSeqno).toBe(1n);
            // After closeBy, no dispute (on a channel without one pending).
            const { channel: expired, chain: expiredChain } = await served();
            cf.fx.blockchain.now = Number((await expired.getInfo()).closeBy);
            expectRefused(await disputeRequest(expired, cf.client, expiredChain.steps[0], { value }), expired.address, ERR_CHANNEL_EXPIRED);
        });

        it('a deployment without arbiters takes no channel disputes', async () => {
            const fx = await deployFixture();
            const { owner, enclave, provider } = await registerProvider(fx, 'plain');
            const client = await fx.blockchain.treasury('plain-client');
            const plain: ChannelFixture = { fx, client, owner, provider, enclave: enclave.signing };
            const { channel, chain } = await activeChannel(plain, 1n);
            chain.serve(toNano('0.1'));
            const info = await channel.getInfo();
            expect(info.engagement!.arbiterQuorum).toBe(0n);
            const r = await disputeRequest(channel, client, chain.steps[0], { value: info.engagement!.disputeBond + (await channel.getDisputeFee()) });
            expectRefused(r, channel.address, ERR_NO_ARBITERS);
        });

        it('while a dispute is pending a final claim waits (ERR_DISPUTE_PENDING), and a claim withholds the disputed amount', async () => {
            const { channel, chain } = await disputed();
            const final = chain.resign({ final: true });
            expectRefused(await claim(channel, final), channel.address, ERR_DISPUTE_PENDING);
            // Request 2 (0.2) is disputed: of the 0.6 signed, 0.4 is paid now.
            const r = await claim(channel, chain.steps[2].signed);
            expectPaid(r, channel.address, toNano('0.4'));
            const info = await channel.getInfo();
            expect([info.settled, info.seqno, info.disputePending]).toEqual([toNano('0.4'), 3n, true]);
            expect(await balanceOf(channel.address)).toBeGreaterThan(DEPOSIT - toNano('0.4'));
        });

        /** The RestituteFromChannel messages `channel` sent in `r` (none expected unless claims had paid the refunded request). */
        const restitutionsAsked = (r: SendMessageResult, channel: Address) =>
            messagesBetween(r, channel, cf.provider.address).filter((m) => opOf(m.body) === OP_RESTITUTE_FROM_CHANNEL);

        /** The channel's ChannelRefund to the client in `r`: value and bounce flag, and its body. */
        function refundIn(r: SendMessageResult, channel: Address) {
            const refunds = messagesBetween(r, channel, cf.client.address).filter((m) => opOf(m.body) === CHANNEL_REFUND);
            expect(refunds).toHaveLength(1);
            return { value: refunds[0].value, bounce: refunds[0].bounce, body: loadChannelRefund(refunds[0].body.beginParse()) };
        }

        /**
         * Expects `r` to hold exactly one restitution for `channel`: RestituteFromChannel
         * asking for `asked` (not bounceable, carrying the restitution budget), and the
         * Provider's SlashPayment of `returned` to the client with the rest of the budget
         * (the budget less the Provider's compute, action and forward fees: the Provider's
         * own storage rent is not the client's to pay), not bounceable.
         */
        async function expectRestitution(r: SendMessageResult, channel: SandboxContract<Channel>, asked: bigint, returned: bigint, queryId: bigint) {
            const fees = basechainFees(cf.fx.blockchain);
            const found = restitutionIn(r, channel.address, cf.provider.address, cf.client.address);
            expect(found).toHaveLength(1);
            const x = found[0];
            expect([x.value, x.bounce, x.success]).toEqual([fees.restitutionBudget, false, true]);
            expect([x.body.queryId, x.body.nonce, x.body.amount]).toEqual([queryId, (await channel.getInfo()).nonce, asked]);
            expect(x.body.client.equals(cf.client.address)).toBe(true);
            expect(x.payment).not.toBeNull();
            expect([x.payment!.value, x.payment!.bounce]).toEqual([returned + fees.restitutionBudget - x.costs, false]);
            expect(x.payment!.body.queryId).toBe(queryId);
            expect(x.payment!.body.provider.equals(cf.provider.address)).toBe(true);
            return x.payment!.value;
        }

        it('ClientWins: the request and the bond back to the client, the Provider slashed (its job still open), and a later claim of the full cumulative pays the refund less', async () => {
            const { channel, chain } = await disputed();
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            const stake = await cf.provider.getStake();
            const slash = toNano('10');
            const signed = await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: slash, feeTo: arbiterWallet.address });
            const fee = await channel.getVerdictFee();
            const r = await submitChannelVerdict(channel, runner, signed, { value: fee + toNano('1'), queryId: 11n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            // The refund: the disputed request's 0.2 and the bond, not bounceable.
            const refund = messagesBetween(r, channel.address, cf.client.address);
            expect(refund.map((m) => [m.value, m.bounce])).toEqual([[toNano('0.2') + bond, false]]);
            const body = loadChannelRefund(refund[0].body.beginParse());
            expect([body.queryId, body.seqno]).toEqual([11n, 2n]);
            // The submitter gets what it attached above the fee.
            expect(messagesBetween(r, channel.address, runner.address).map((m) => m.value)).toEqual([toNano('1')]);
            // Nothing was claimed, so nothing is restituted: the Provider gets SlashFromChannel only.
            expect(messagesBetween(r, channel.address, cf.provider.address).map((m) => [opOf(m.body), m.bounce])).toEqual([[OP_SLASH_FROM_CHANNEL, false]]);
            // The slash: the arbiters' fee from the stake, half of the rest to the client, the rest to the treasury.
            expect(r.transactions).toHaveTransaction({ from: channel.address, to: cf.provider.address, success: true });
            const compensation = ((slash - arbiterFee()) * cf.fx.params.clientCompensationBps) / 10000n;
            expect(messagesBetween(r, cf.provider.address, cf.client.address).map((m) => m.value)).toEqual([compensation]);
            expect(messagesBetween(r, cf.provider.address, arbiterWallet.address).map((m) => m.value)).toEqual([arbiterFee()]);
            expect(messagesBetween(r, channel.address, arbiterWallet.address)).toHaveLength(0);
            const toTreasury = messagesBetween(r, cf.provider.address, cf.fx.treasury.address);
            expect(toTreasury).toHaveLength(1);
            expect(toTreasury[0].value).toBeGreaterThanOrEqual(slash - arbiterFee() - compensation);
            const p = await cf.provider.getInfo();
            expect(p.stake).toBe(stake - slash);
            expect([p.disputesLost, p.openJobs, p.completedJobs, p.refundedJobs]).toEqual([1n, 1n, 0n, 0n]);
            expect([p.status, p.jailReason]).toEqual([STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM]);
            // The channel stays open; settled counts the refund, and so does refundedAmount.
            let info = await channel.getInfo();
            expect([info.state, info.settled, info.refundedAmount, info.disputePending, info.disputedAmount, info.lastDisputedSeqno]).toEqual([
                CHANNEL_ACTIVE,
                toNano('0.2'),
                toNano('0.2'),
                false,
                0n,
                2n,
            ]);
            // The full cumulative 0.6 now pays 0.4: the refunded request is not paid for.
            expectPaid(await claim(channel, chain.steps[2].signed), channel.address, toNano('0.4'));
            info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('0.6'), toNano('0.2')]);
        });

        for (const how of ['verdict', 'expiry'] as const) {
            it(`${how === 'verdict' ? 'ClientWins' : 'ExpireChannelDispute'} after a claim during the dispute: the withheld amount is the refund, from the deposit; the stake is not touched${how === 'verdict' ? ' beyond the slash' : ''}, and the provider keeps only the undisputed part`, async () => {
                const { channel, chain } = await disputed();
                expectPaid(await claim(channel, chain.steps[2].signed), channel.address, toNano('0.4'));
                let info = await channel.getInfo();
                expect([info.settled, info.withheldAmount, info.refundedAmount]).toEqual([toNano('0.4'), toNano('0.2'), 0n]);
                const bond = info.engagement!.disputeBond;
                const before = await cf.provider.getInfo();
                let r: SendMessageResult;
                if (how === 'verdict') {
                    r = await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('1'), feeTo: arbiterWallet.address }));
                } else {
                    cf.fx.blockchain.now = Number(info.verdictBy) + 1;
                    r = await channel.send(stranger.getSender(), { value: await channel.getExpireFee() }, { $$type: 'ExpireChannelDispute', queryId: 0n });
                }
                expect(r.transactions).not.toHaveTransaction({ success: false });
                // Claims held request 2 back, so they never paid it: all of it comes from the deposit, nothing from the stake.
                expect(messagesBetween(r, channel.address, cf.client.address).map((m) => m.value)).toEqual([toNano('0.2') + bond]);
                expect(restitutionsAsked(r, channel.address)).toHaveLength(0);
                const p = await cf.provider.getInfo();
                expect(p.stake).toBe(before.stake - (how === 'verdict' ? toNano('1') : 0n));
                expect(p.disputesLost).toBe(how === 'verdict' ? 1n : 0n);
                if (how === 'expiry') expect([p.status, p.jailReason]).toEqual([STATUS_ACTIVE, 0n]);
                info = await channel.getInfo();
                expect([info.settled, info.refundedAmount, info.withheldAmount, info.disputePending]).toEqual([toNano('0.6'), toNano('0.2'), 0n, false]);
                if (how === 'expiry') return; // past closeBy: nothing more to claim
                // The final receipt of the same cumulative pays nothing more: 0.6 signed, 0.2 refunded, 0.4 paid.
                const closeR = await claim(channel, chain.resign({ final: true }));
                expectPaid(closeR, channel.address, 0n);
                expect(await exists(channel.address)).toBe(false);
                expect(closedWith(closeR, channel.address, cf.client.address).value).toBeGreaterThan(DEPOSIT - toNano('0.6'));
            });
        }

        for (const how of ['verdict', 'expiry'] as const) {
            it(`${how === 'verdict' ? 'ClientWins' : 'ExpireChannelDispute'} on a request claimed before its dispute: ChannelRefund carries the bond only, RestituteFromChannel returns the request from the stake, ${how === 'verdict' ? 'the slash counts the dispute once, and a later claim of the full cumulative pays exactly the undisputed remainder' : 'no slash, no dispute counted'}`, async () => {
                const { channel, chain } = await served();
                // Requests 1 and 2 (0.1 and 0.2) claimed; then request 2 disputed.
                expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('0.3'));
                expect((await disputeRequest(channel, cf.client, chain.steps[1])).transactions).toHaveTransaction({ to: channel.address, success: true });
                let info = await channel.getInfo();
                const bond = info.engagement!.disputeBond;
                const stake = await cf.provider.getStake();
                const slash = toNano('1');
                let r: SendMessageResult;
                if (how === 'verdict') {
                    const signed = await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: slash, feeTo: arbiterWallet.address });
                    r = await submitChannelVerdict(channel, runner, signed, { value: (await channel.getVerdictFee()) + toNano('1'), queryId: 11n });
                    // The verdict fee covers the restitution too: the submitter gets what it attached above it.
                    expect(messagesBetween(r, channel.address, runner.address).map((m) => m.value)).toEqual([toNano('1')]);
                } else {
                    cf.fx.blockchain.now = Number(info.verdictBy) + 1;
                    r = await channel.send(stranger.getSender(), { value: await channel.getExpireFee() }, { $$type: 'ExpireChannelDispute', queryId: 11n });
                }
                expect(r.transactions).not.toHaveTransaction({ success: false });
                // Claims paid all of request 2: nothing of it comes from the deposit, the bond goes back.
                const refund = refundIn(r, channel.address);
                expect([refund.value, refund.bounce, refund.body.queryId, refund.body.seqno]).toEqual([bond, false, 11n, 2n]);
                // The 0.2 paid comes back from the stake, whole.
                const restituted = await expectRestitution(r, channel, toNano('0.2'), toNano('0.2'), 11n);
                expect(restituted).toBeGreaterThanOrEqual(toNano('0.2'));
                // The Provider: one SlashFromChannel for a ClientWins verdict (after the restitution), none on expiry.
                expect(messagesBetween(r, channel.address, cf.provider.address).map((m) => opOf(m.body))).toEqual(
                    how === 'verdict' ? [OP_RESTITUTE_FROM_CHANNEL, OP_SLASH_FROM_CHANNEL] : [OP_RESTITUTE_FROM_CHANNEL],
                );
                const toClient = messagesBetween(r, cf.provider.address, cf.client.address).map((m) => m.value);
                const compensation = ((slash - arbiterFee()) * cf.fx.params.clientCompensationBps) / 10000n;
                expect(toClient).toEqual(how === 'verdict' ? [restituted, compensation] : [restituted]);
                const p = await cf.provider.getInfo();
                expect(p.stake).toBe(stake - toNano('0.2') - (how === 'verdict' ? slash : 0n));
                expect([p.disputesLost, p.openJobs]).toEqual([how === 'verdict' ? 1n : 0n, 1n]);
                // The stake was at the minimum: below it now, so jailed.
                expect([p.status, p.jailReason]).toEqual([STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM]);
                // Nothing refunded from the deposit: settled is what claims paid.
                info = await channel.getInfo();
                expect([info.settled, info.refundedAmount, info.disputePending, info.withheldAmount]).toEqual([toNano('0.3'), 0n, false, 0n]);
                if (how === 'expiry') {
                    // Past closeBy: the channel settles, the rest of the deposit to the client.
                    const settle = await channel.send(stranger.getSender(), { value: await channel.getTriggerFee() }, { $$type: 'SettleChannel', queryId: 0n });
                    expect(settle.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
                    expect(closedWith(settle, channel.address, cf.client.address).value).toBeGreaterThan(DEPOSIT - toNano('0.3'));
                    return;
                }
                // The full cumulative 0.6 pays exactly request 3: the provider keeps 0.3 + 0.3 - 0.2 = 0.6 signed - 0.2 refunded.
                expectPaid(await claim(channel, chain.steps[2].signed), channel.address, toNano('0.3'));
                info = await channel.getInfo();
                expect([info.settled, info.refundedAmount]).toEqual([toNano('0.6'), 0n]);
                expect((await cf.provider.getInfo()).disputesLost).toBe(1n);
            });
        }

        it('a request partly paid before its dispute: the unpaid part comes back from the deposit with the bond, the paid part from the stake', async () => {
            const { channel, chain } = await activeChannel(cf, next());
            chain.serve(toNano('0.1'));
            // The enclave bills request 2 as it streams: a receipt at 0.25 (0.15 of it), then 0.3 once served.
            const partial = chain.resign({ amount: toNano('0.25') });
            const request2 = chain.serve(toNano('0.2'));
            expectPaid(await claim(channel, partial), channel.address, toNano('0.25'));
            await disputeRequest(channel, cf.client, request2);
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            const stake = await cf.provider.getStake();
            const r = await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }), { queryId: 5n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(refundIn(r, channel.address).value).toBe(toNano('0.05') + bond);
            await expectRestitution(r, channel, toNano('0.15'), toNano('0.15'), 5n);
            expect(await cf.provider.getStake()).toBe(stake - toNano('0.15'));
            const info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('0.3'), toNano('0.05')]);
            // The final receipt pays nothing more: the provider keeps 0.25 - 0.15 = 0.3 signed - 0.2 refunded.
            const closeR = await claim(channel, chain.resign({ final: true }));
            expectPaid(closeR, channel.address, 0n);
            expect(await exists(channel.address)).toBe(false);
        });

        it('a request claimed after an earlier request was refunded: the refund of request 1 is no payment, so request 2 comes back whole from the stake, and settled never exceeds what the enclave signed', async () => {
            const { channel, chain } = await activeChannel(cf, next());
            chain.serve(toNano('0.1'));
            chain.serve(toNano('0.2'));
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            // Request 1 refunded before any claim: the deposit pays it back (a credit against claims).
            await disputeRequest(channel, cf.client, chain.steps[0]);
            let r = await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }));
            expect(refundIn(r, channel.address).value).toBe(toNano('0.1') + bond);
            expect(restitutionsAsked(r, channel.address)).toHaveLength(0);
            // The claim of 0.3 pays request 2 (0.2): request 1 is not paid for.
            expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('0.2'));
            let info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('0.3'), toNano('0.1')]);
            // Request 2, paid in full, is refunded: all of it from the stake, nothing more from the deposit.
            await disputeRequest(channel, cf.client, chain.steps[1]);
            const stake = await cf.provider.getStake();
            r = await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }));
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(refundIn(r, channel.address).value).toBe(bond);
            await expectRestitution(r, channel, toNano('0.2'), toNano('0.2'), 0n);
            expect(await cf.provider.getStake()).toBe(stake - toNano('0.2'));
            info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('0.3'), toNano('0.1')]);
            // Both requests refunded: the provider keeps nothing (0.2 paid, 0.2 returned), the client gets its deposit back.
            const closeR = await claim(channel, chain.resign({ final: true }));
            expectPaid(closeR, channel.address, 0n);
            expect(closedWith(closeR, channel.address, cf.client.address).value).toBeGreaterThan(DEPOSIT - toNano('0.3'));
        });

        it('restitution is capped at the stake: all of it goes to the client before the slash, which finds nothing; the Provider is jailed', async () => {
            const deposit = toNano('150');
            const { channel, chain } = await activeChannel(cf, next(), { deposit });
            chain.serve(toNano('0.1'));
            chain.serve(toNano('120'));
            expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('120.1'));
            await disputeRequest(channel, cf.client, chain.steps[1]);
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            const stake = await cf.provider.getStake();
            expect(stake).toBe(cf.fx.params.minProviderStake);
            expect(stake).toBeLessThan(toNano('120'));
            const r = await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('10'), feeTo: arbiterWallet.address }));
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(refundIn(r, channel.address).value).toBe(bond);
            // The channel asks for all 120 paid; the stake returns what it has.
            const restituted = await expectRestitution(r, channel, toNano('120'), stake, 0n);
            // The slash comes after and finds no stake: nothing for the client or the arbiters.
            expect(messagesBetween(r, cf.provider.address, cf.client.address).map((m) => m.value)).toEqual([restituted]);
            expect(messagesBetween(r, cf.provider.address, arbiterWallet.address)).toHaveLength(0);
            const p = await cf.provider.getInfo();
            expect([p.stake, p.disputesLost, p.status, p.jailReason]).toEqual([0n, 1n, STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM]);
            const info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('120.1'), 0n]);
        });

        it('ExpireChannelDispute charges its caller for the restitution: exactly expireFee = triggerFee + the RestituteFromChannel message and budget, and the channel keeps that much of the value', async () => {
            const { channel, chain } = await served();
            const fees = basechainFees(cf.fx.blockchain);
            const expireFee = await channel.getExpireFee();
            expect(expireFee).toBe((await channel.getTriggerFee()) + fees.small + fees.restitutionBudget);
            expectPaid(await claim(channel, chain.steps[1].signed), channel.address, toNano('0.3'));
            await disputeRequest(channel, cf.client, chain.steps[1]);
            cf.fx.blockchain.now = Number((await channel.getInfo()).verdictBy) + 1;
            const expire = (value: bigint) => channel.send(stranger.getSender(), { value }, { $$type: 'ExpireChannelDispute', queryId: 0n });
            expectRefused(await expire(expireFee - 1n), channel.address, ERR_INSUFFICIENT_VALUE);
            expect((await channel.getInfo()).disputePending).toBe(true);
            const r = await expire(expireFee + toNano('1'));
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
            expect(restitutionsAsked(r, channel.address)).toHaveLength(1);
            const back = messagesBetween(r, channel.address, stranger.address);
            expect(back).toHaveLength(1);
            expect(back[0].value).toBeGreaterThanOrEqual(toNano('1'));
            // What the caller leaves pays the RestituteFromChannel (its budget and forward fee), not the channel's own funds.
            expect(expireFee + toNano('1') - back[0].value).toBeGreaterThanOrEqual(fees.restitutionBudget + fees.small);
        });

        it('ProviderWins: the bond to the payout less the arbiters\' fee, and what claims withheld paid at once; nobody slashed', async () => {
            const { channel, chain } = await disputed();
            expectPaid(await claim(channel, chain.steps[2].signed), channel.address, toNano('0.4'));
            const bond = (await channel.getInfo()).engagement!.disputeBond;
            const stake = await cf.provider.getStake();
            const signed = await channelVerdictFor(cf, channel, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address });
            const fee = await channel.getVerdictFee();
            const r = await submitChannelVerdict(channel, runner, signed, { value: fee });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(messagesBetween(r, channel.address, arbiterWallet.address).map((m) => [m.value, m.bounce])).toEqual([[arbiterFee(), false]]);
            // The bond's share and the withheld 0.2 (less the protocol fee) in one payment; the fee to the treasury.
            const withheldFee = (toNano('0.2') * cf.fx.params.protocolFeeBps) / 10000n;
            expect(messagesBetween(r, channel.address, cf.owner.address).map((m) => [m.value, m.bounce])).toEqual([[bond - arbiterFee() + toNano('0.2') - withheldFee, false]]);
            expect(messagesBetween(r, channel.address, cf.fx.treasury.address).map((m) => [m.value, m.bounce])).toEqual([[withheldFee, false]]);
            expect(messagesBetween(r, channel.address, cf.client.address)).toHaveLength(0);
            expect(messagesBetween(r, channel.address, cf.provider.address)).toHaveLength(0);
            // The slash budget was not needed: it comes back to the submitter.
            const back = messagesBetween(r, channel.address, runner.address);
            expect(back).toHaveLength(1);
            expect(back[0].value).toBeGreaterThan(0n);
            expect(back[0].value).toBeLessThan(fee);
            const p = await cf.provider.getInfo();
            expect([p.stake, p.disputesLost, p.status]).toEqual([stake, 0n, STATUS_ACTIVE]);
            let info = await channel.getInfo();
            expect([info.settled, info.disputePending, info.withheldAmount]).toEqual([toNano('0.6'), false, 0n]);
            // Paid once: a later receipt of the same cumulative pays nothing more.
            expectPaid(await claim(channel, chain.resign()), channel.address, 0n);
            info = await channel.getInfo();
            expect(info.settled).toBe(toNano('0.6'));
        });

        it('no verdict by verdictBy: anyone refunds the request with the bond, nobody is slashed; until then the channel cannot settle', async () => {
            const { channel } = await disputed();
            const info = await channel.getInfo();
            const bond = info.engagement!.disputeBond;
            const trigger = await channel.getTriggerFee();
            const expireFee = await channel.getExpireFee();
            const expire = (value = expireFee) => channel.send(stranger.getSender(), { value }, { $$type: 'ExpireChannelDispute', queryId: 3n });
            // verdictBy is beyond closeBy: the pending dispute holds the settlement.
            expect(info.verdictBy).toBeGreaterThan(info.closeBy);
            cf.fx.blockchain.now = Number(info.verdictBy);
            expectRefused(await expire(), channel.address, ERR_DEADLINE_NOT_PASSED);
            expectRefused(await channel.send(stranger.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n }), channel.address, ERR_NOT_SETTLEABLE);
            cf.fx.blockchain.now = Number(info.verdictBy) + 1;
            const late = await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('10'), feeTo: arbiterWallet.address });
            expectRefused(await submitChannelVerdict(channel, runner, late), channel.address, ERR_VERDICT_LATE);
            // The expiry needs expireFee (the trigger fee is no longer enough).
            expect(expireFee).toBeGreaterThan(trigger);
            expectRefused(await expire(expireFee - 1n), channel.address, ERR_INSUFFICIENT_VALUE);
            expectRefused(await expire(trigger), channel.address, ERR_INSUFFICIENT_VALUE);
            const r = await expire();
            expect(r.transactions).not.toHaveTransaction({ success: false });
            const refund = messagesBetween(r, channel.address, cf.client.address);
            expect(refund.map((m) => [m.value, m.bounce])).toEqual([[toNano('0.2') + bond, false]]);
            expect(loadChannelRefund(refund[0].body.beginParse()).seqno).toBe(2n);
            expect(messagesBetween(r, channel.address, stranger.address)).toHaveLength(1);
            // Nothing was claimed: no restitution, no slash.
            expect(messagesBetween(r, channel.address, cf.provider.address)).toHaveLength(0);
            const p = await cf.provider.getInfo();
            expect([p.stake, p.disputesLost, p.status]).toEqual([cf.fx.params.minProviderStake, 0n, STATUS_ACTIVE]);
            const after = await channel.getInfo();
            expect([after.settled, after.refundedAmount, after.disputePending]).toEqual([toNano('0.2'), toNano('0.2'), false]);
            expectRefused(await expire(), channel.address, ERR_NO_DISPUTE);
            // Now it settles.
            const settle = await channel.send(stranger.getSender(), { value: trigger }, { $$type: 'SettleChannel', queryId: 0n });
            expect(settle.transactions).toHaveTransaction({ to: channel.address, success: true, endStatus: 'non-existing' });
            expect(closedWith(settle, channel.address, cf.client.address).value).toBeGreaterThan(DEPOSIT - toNano('0.2'));
            expect((await cf.provider.getInfo()).openJobs).toBe(0n);
        });

        it('a request is refunded once: disputes go in increasing seqno order', async () => {
            const { channel, chain } = await disputed();
            // A verdict (ProviderWins) ends the first dispute.
            await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }));
            for (const k of [1, 0]) {
                expectRefused(await disputeRequest(channel, cf.client, chain.steps[k]), channel.address, ERR_DISPUTE_ORDER);
            }
            // The next request can be disputed; its expiry refunds it, and then it cannot be disputed again.
            expect((await disputeRequest(channel, cf.client, chain.steps[2])).transactions).toHaveTransaction({ to: channel.address, success: true });
            cf.fx.blockchain.now = Number((await channel.getInfo()).verdictBy) + 1;
            const r = await channel.send(stranger.getSender(), { value: await channel.getExpireFee() }, { $$type: 'ExpireChannelDispute', queryId: 0n });
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(messagesBetween(r, channel.address, cf.client.address).map((m) => m.value)).toEqual([toNano('0.3') + cf.fx.params.disputeBond]);
            expect(messagesBetween(r, channel.address, cf.provider.address)).toHaveLength(0);
            const info = await channel.getInfo();
            expect([info.settled, info.refundedAmount]).toEqual([toNano('0.3'), toNano('0.3')]);
            expectRefused(await disputeRequest(channel, cf.client, chain.steps[2]), channel.address, ERR_CHANNEL_EXPIRED);
        });

        it('a request is refunded once even when the enclave re-signed its state: disputes also go in increasing request count', async () => {
            const { channel, chain } = await served();
            const last = chain.steps[2];
            const first = await disputeRequest(channel, cf.client, last);
            expect(first.transactions).toHaveTransaction({ to: channel.address, success: true });
            await submitChannelVerdict(channel, runner, await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('1'), feeTo: arbiterWallet.address }));
            // The same state under a later seqno (as a final or refreshed receipt is): the same request, so refused.
            const resigned = chain.resign();
            expectRefused(await disputeRequest(channel, cf.client, { signed: resigned, step: last.step }), channel.address, ERR_DISPUTE_ORDER);
            const info = await channel.getInfo();
            expect([info.lastDisputedSeqno, info.lastDisputedRequests, info.settled]).toEqual([3n, 3n, toNano('0.3')]);
        });

        it('verdict checks: the dispute\'s seqno, the opening, the channel, the tag, the outcome, its deadline, the signatures, the quorum, the arbiter set, the fee', async () => {
            const { channel } = await served();
            const none = await channelVerdictFor(cf, channel, { outcome: VERDICT_CLIENT_WINS, slashAmount: 1n, feeTo: arbiterWallet.address });
            expectRefused(await submitChannelVerdict(channel, runner, none), channel.address, ERR_NO_DISPUTE);
            const { channel: c, chain } = await disputed();
            const info = await c.getInfo();
            const clientWins = { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('10'), feeTo: arbiterWallet.address };
            const refusals: [Partial<Parameters<typeof channelVerdictFor>[2]>, bigint][] = [
                [{ seqno: 1n }, ERR_BAD_VERDICT],
                [{ seqno: 3n }, ERR_BAD_VERDICT],
                [{ openId: info.openId + 1n }, ERR_BAD_VERDICT],
                [{ channel: channel.address }, ERR_BAD_VERDICT],
                [{ outcome: 3n }, ERR_BAD_VERDICT],
                [{ outcome: 0n }, ERR_BAD_VERDICT],
                [{ deadline: now() - 1 }, ERR_VERDICT_LATE],
            ];
            for (const [fields, exit] of refusals) {
                expectRefused(await submitChannelVerdict(c, runner, await channelVerdictFor(cf, c, { ...clientWins, ...fields })), c.address, exit);
            }
            // The layout under the escrow verdict's tag.
            const tagged = beginCell()
                .store(storeChannelVerdict({ $$type: 'ChannelVerdict', tag: 0x76726474n, channel: c.address, openId: info.openId, seqno: 2n, deadline: BigInt(now() + 60), ...clientWins }))
                .endCell();
            expectRefused(await submitChannelVerdict(c, runner, { verdict: tagged, signatures: new Map([0, 1].map((i) => [i, signVerdict(tagged, ARBITERS[i])])) }), c.address, ERR_BAD_VERDICT);
            expect(CHANNEL_VERDICT_TAG).not.toBe(0x76726474n);
            const good = await channelVerdictFor(cf, c, clientWins);
            expectRefused(await submitChannelVerdict(c, runner, await channelVerdictFor(cf, c, clientWins, [2])), c.address, ERR_NO_QUORUM);
            const forged = { verdict: good.verdict, signatures: new Map([[0, good.signatures.get(0)!], [1, signVerdict(good.verdict, testKey('mallory'))]]) };
            expectRefused(await submitChannelVerdict(c, runner, forged), c.address, ERR_BAD_ARBITER_SIGNATURE);
            const twice = { verdict: good.verdict, signatures: new Map([[0, good.signatures.get(0)!], [1, good.signatures.get(0)!]]) };
            expectRefused(await submitChannelVerdict(c, runner, twice), c.address, ERR_BAD_ARBITER_SIGNATURE);
            const otherSet = arbiterDictionary([ARBITERS[0].publicKeyInt, ARBITERS[1].publicKeyInt, testKey('mallory').publicKeyInt]);
            expectRefused(await submitChannelVerdict(c, runner, good, { arbiters: otherSet }), c.address, ERR_WRONG_ARBITERS);
            expectRefused(await submitChannelVerdict(c, runner, good, { value: (await c.getVerdictFee()) - 1n }), c.address, ERR_INSUFFICIENT_VALUE);
            // Nothing changed by the refusals; the good verdict rules once.
            expect((await c.getInfo()).disputePending).toBe(true);
            expect(await cf.provider.getStake()).toBe(cf.fx.params.minProviderStake);
            const providerWins = await channelVerdictFor(cf, c, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address });
            expect((await submitChannelVerdict(c, runner, providerWins)).transactions).toHaveTransaction({ to: c.address, success: true });
            expectRefused(await submitChannelVerdict(c, runner, providerWins), c.address, ERR_NO_DISPUTE);
            // An old verdict does not rule a later dispute: the next dispute names seqno 3.
            await disputeRequest(c, cf.client, chain.steps[2]);
            expectRefused(await submitChannelVerdict(c, runner, providerWins), c.address, ERR_BAD_VERDICT);
            // A verdict is accepted on the last second of the verdict window.
            cf.fx.blockchain.now = Number((await c.getInfo()).verdictBy);
            const onTime = await channelVerdictFor(cf, c, clientWins);
            expect((await submitChannelVerdict(c, runner, onTime)).transactions).toHaveTransaction({ to: c.address, success: true });
            expect(await cf.provider.getStake()).toBe(cf.fx.params.minProviderStake - toNano('10'));
        });
    });
});
