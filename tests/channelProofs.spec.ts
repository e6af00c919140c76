// Channel faults at the Provider. Anyone proves that the enclave key signed
// two channel receipts for one opening that cannot both be honest (the same
// seqno with different contents, or a higher seqno with a lower cumulative
// amount): slashBps of the stake goes, the prover gets reporterRewardBps of
// it, the treasury the rest, the key is burned and the Provider jailed. And
// the Provider's channel messages (EngageChannel, ChannelEnded,
// SlashFromChannel, RestituteFromChannel) are taken only from the channel
// they name.
import '@ton/test-utils';
import { Address, beginCell, toNano } from '@ton/core';
import { BlockchainSnapshot, internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import {
    ERR_ALREADY_PROVEN,
    ERR_BAD_PROOF_SIGNATURE,
    ERR_INSUFFICIENT_VALUE,
    ERR_NOT_A_FAULT,
    ERR_WRONG_SENDER,
    ESCROW_CLOSED_CLIENT_WON,
    ESCROW_CLOSED_RELEASED,
    FAULT_CHANNEL_EQUIVOCATION,
    GAS_PROVIDER_PROOF,
    JAIL_PROVEN_FAULT,
    loadFaultReward,
    loadJobRefused,
    loadSlashPayment,
    ProveChannelEquivocation,
    PROVIDER_STORAGE_RESERVE,
    RECEIPT_TAG,
    REFUSED_JOB_NOT_ACTIVE,
    STATUS_ACTIVE,
    STATUS_JAILED,
    storeChannelReceipt,
    storeRestituteFromChannel,
} from '../wrappers/Registry';
import { Channel } from '../wrappers/Channel';
import {
    ChannelReceiptError,
    ChannelReceiptFields,
    claimChannelMessage,
    proveChannelEquivocationMessage,
    SignedChannelReceipt,
    signedChannelReceiptCell,
    signChannelReceipt,
} from '../wrappers/channelReceipt';
import { proveEquivocationMessage, signReceipt } from '../wrappers/receipt';
import { reattestMessage } from '../wrappers/attestation';
import { Ed25519KeyPair, signHash } from '../wrappers/ed25519';
import { activeChannel, ChannelFixture, deployChannelFixture, openChannel, ReceiptChain } from './helpers/channel';
import { receiptFields } from './helpers/dispute';
import { signedFor, testEnclave, testKey } from './helpers/fixture';
import { computeGas, messagesBetween, storageFees, txAt } from './helpers/tx';

const code = (c: bigint) => Number(c);

describe('Channel proofs at the Provider', () => {
    let cf: ChannelFixture;
    let reporter: SandboxContract<TreasuryContract>;
    let stranger: SandboxContract<TreasuryContract>;
    let channel: SandboxContract<Channel>;
    /** A real channel's receipts: three requests of 0.1, 0.2 and 0.3 TON (seqnos 1..3), the first two claimed. */
    let chain: ReceiptChain;
    let proofFee: bigint;
    let deployed: BlockchainSnapshot;

    beforeAll(async () => {
        cf = await deployChannelFixture();
        reporter = await cf.fx.blockchain.treasury('reporter');
        stranger = await cf.fx.blockchain.treasury('stranger');
        ({ channel, chain } = await activeChannel(cf, 1n));
        for (const amount of ['0.1', '0.2', '0.3']) chain.serve(toNano(amount));
        await channel.send(reporter.getSender(), { value: await channel.getClaimFee() }, claimChannelMessage(chain.steps[1].signed));
        expect((await channel.getInfo()).settled).toBe(toNano('0.3'));
        proofFee = await cf.provider.getProofFee();
        deployed = cf.fx.blockchain.snapshot();
    });

    beforeEach(async () => {
        await cf.fx.blockchain.loadFrom(deployed);
    });

    const balanceOf = async (a: Address) => (await cf.fx.blockchain.getContract(a)).balance;
    const latest = () => chain.steps[2].signed;

    /** A receipt of the channel's opening, as of its third request unless overridden, signed by the enclave (or `key`). */
    function receipt(overrides: Partial<ChannelReceiptFields> = {}, key: Ed25519KeyPair = cf.enclave): SignedChannelReceipt {
        return signChannelReceipt(chain.fields({ seqno: 3n, ...overrides }), key);
    }

    /** ProveChannelEquivocation as sent, without the client-side checks of proveChannelEquivocationMessage. */
    function raw(first: SignedChannelReceipt, second: SignedChannelReceipt, queryId = 0n): ProveChannelEquivocation {
        return { $$type: 'ProveChannelEquivocation', queryId, first: signedChannelReceiptCell(first), second: signedChannelReceiptCell(second) };
    }

    function prove(body: ProveChannelEquivocation, opts: { from?: SandboxContract<TreasuryContract>; value?: bigint } = {}) {
        return cf.provider.send((opts.from ?? reporter).getSender(), { value: opts.value ?? proofFee }, body);
    }

    /** What a proven channel equivocation must have done to a Provider that had `stake`. */
    async function expectPunished(r: SendMessageResult, stake: bigint, queryId = 0n, key = cf.enclave) {
        const slashed = (stake * cf.fx.params.slashBps) / 10000n;
        const reward = (slashed * cf.fx.params.reporterRewardBps) / 10000n;
        expect(r.transactions).toHaveTransaction({ from: reporter.address, to: cf.provider.address, success: true });
        // The proof fee is computed from this bound: the proof must not use more gas.
        expect(computeGas(txAt(r, cf.provider.address))).toBeLessThanOrEqual(Number(GAS_PROVIDER_PROOF));
        const toTreasury = messagesBetween(r, cf.provider.address, cf.fx.treasury.address);
        expect(toTreasury.map((m) => [m.value, m.bounce])).toEqual([[slashed - reward, false]]);
        const payment = loadSlashPayment(toTreasury[0].body.beginParse());
        expect(payment.queryId).toBe(queryId);
        expect(payment.provider.equals(cf.provider.address)).toBe(true);
        const rewards = messagesBetween(r, cf.provider.address, reporter.address);
        expect(rewards).toHaveLength(1);
        expect(rewards[0].bounce).toBe(false);
        const fr = loadFaultReward(rewards[0].body.beginParse());
        expect([fr.queryId, fr.fault, fr.reward]).toEqual([queryId, FAULT_CHANNEL_EQUIVOCATION, reward]);
        // Sent with exactly the proof fee, the reward arrives whole.
        expect(rewards[0].value).toBeGreaterThanOrEqual(reward);
        const info = await cf.provider.getInfo();
        expect(info.stake).toBe(stake - slashed);
        expect([info.status, info.jailReason]).toEqual([STATUS_JAILED, JAIL_PROVEN_FAULT]);
        expect(await cf.provider.getAcceptsJobs()).toBe(false);
        expect(await cf.provider.getKeyBurned(key.publicKeyInt)).toBe(true);
        expect(await balanceOf(cf.provider.address)).toBe(info.stake + PROVIDER_STORAGE_RESERVE);
        return { slashed, reward };
    }

    /** Expects the Provider to refuse what `send` sends with `exitCode`: the value bounces back, nothing changes. */
    async function expectRefused(send: () => Promise<SendMessageResult>, from: Address, exitCode: bigint) {
        const before = await cf.provider.getInfo();
        const balance = await balanceOf(cf.provider.address);
        const r = await send();
        expect(r.transactions).toHaveTransaction({ from, to: cf.provider.address, success: false, exitCode: code(exitCode) });
        expect(r.transactions).toHaveTransaction({ from: cf.provider.address, to: from, inMessageBounced: true });
        expect(messagesBetween(r, cf.provider.address, cf.fx.treasury.address)).toHaveLength(0);
        const after = await cf.provider.getInfo();
        expect([after.status, after.jailReason, after.stake, after.disputesLost, after.openJobs, after.completedJobs, after.refundedJobs]).toEqual([
            before.status,
            before.jailReason,
            before.stake,
            before.disputesLost,
            before.openJobs,
            before.completedJobs,
            before.refundedJobs,
        ]);
        expect(await balanceOf(cf.provider.address)).toBe(balance - storageFees({ transactions: [txAt(r, cf.provider.address)], events: [], externals: [] }));
        return r;
    }

    describe('faults', () => {
        it.each<[string, Partial<ChannelReceiptFields>]>([
            ['amount', { amount: toNano('0.6') + 1n }],
            ['running root', { root: 0x1234n }],
            ['request count', { requests: 4n }],
            ['final flag', { final: true }],
        ])('the same seqno with a different %s: half the stake goes, a tenth of it to the prover; the key is burned', async (_, diff) => {
            const conflicting = receipt(diff);
            const stake = await cf.provider.getStake();
            const { slashed, reward } = await expectPunished(await prove(proveChannelEquivocationMessage(latest(), conflicting, 42n)), stake, 42n);
            expect([slashed, reward]).toEqual([toNano('50'), toNano('5')]);
            // The channel is not the Provider's business: it still holds its deposit and its claims.
            expect((await channel.getInfo()).settled).toBe(toNano('0.3'));
        });

        for (const higherFirst of [true, false]) {
            it(`a higher seqno with a lower cumulative amount, the ${higherFirst ? 'higher' : 'lower'} seqno first`, async () => {
                // After receipt 3 (0.6 TON) the enclave signs receipt 4 for less: it forgot requests it was paid for.
                const lower = receipt({ seqno: 4n, amount: toNano('0.6') - 1n });
                const [a, b] = higherFirst ? [lower, latest()] : [latest(), lower];
                await expectPunished(await prove(proveChannelEquivocationMessage(a, b, 7n)), toNano('100'), 7n);
            });
        }

        it('a receipt the channel paid and a later one for less: proven from the chain the runner signed', async () => {
            // Receipt 2 (0.3 TON) was claimed; a receipt 5 for 0.2 contradicts it.
            await expectPunished(await prove(proveChannelEquivocationMessage(chain.steps[1].signed, receipt({ seqno: 5n, amount: toNano('0.2') }))), toNano('100'));
        });

        it('a replaced key stays provable until its jobs can settle; the burned key is the old one', async () => {
            const fresh = testEnclave('channel-provider-rotated');
            const rotated = await cf.fx.registry.send(cf.owner.getSender(), { value: await cf.fx.registry.getAttestationFee() }, reattestMessage(signedFor(cf.fx, cf.owner.address, fresh)));
            expect(rotated.transactions).toHaveTransaction({ from: cf.provider.address, to: cf.owner.address, op: 0xd53276db });
            expect((await cf.provider.getInfo()).enclave.signingKey).toBe(fresh.signing.publicKeyInt);
            await expectPunished(await prove(proveChannelEquivocationMessage(latest(), receipt({ amount: 1n }))), toNano('100'));
            expect(await cf.provider.getKeyBurned(fresh.signing.publicKeyInt)).toBe(false);
        });

        it('a jailed Provider engages no new channel', async () => {
            await expectPunished(await prove(proveChannelEquivocationMessage(latest(), receipt({ amount: 1n }))), toNano('100'));
            const { channel: next, result } = await openChannel(cf, 2n);
            const refusal = messagesBetween(result, cf.provider.address, next.address);
            expect(loadJobRefused(refusal[0].body.beginParse()).reason).toBe(REFUSED_JOB_NOT_ACTIVE);
            expect((await cf.provider.getInfo()).openJobs).toBe(1n);
        });
    });

    describe('proofs that prove nothing', () => {
        it('a higher seqno with a higher or equal amount, one receipt twice, other channels or openings, another tag: ERR_NOT_A_FAULT', async () => {
            const otherChannel = await cf.provider.getChannelFor(cf.client.address, 99n);
            const cases: [string, SignedChannelReceipt, SignedChannelReceipt][] = [
                ['a higher seqno with a higher amount', chain.steps[1].signed, latest()],
                ['a higher seqno with the same amount', latest(), receipt({ seqno: 4n })],
                ['the same receipt twice', latest(), latest()],
                ['the same seqno in another channel', latest(), receipt({ channel: otherChannel, amount: 1n })],
                ['the same seqno in another opening', latest(), receipt({ openId: chain.openId + 1n, amount: 1n })],
                ['a lower amount in another opening', latest(), receipt({ openId: chain.openId + 1n, seqno: 9n, amount: 1n })],
            ];
            for (const [, a, b] of cases) {
                // The wrapper refuses to build these; a prover who builds them anyway pays for nothing.
                expect(() => proveChannelEquivocationMessage(a, b)).toThrow(ChannelReceiptError);
                await expectRefused(() => prove(raw(a, b)), reporter.address, ERR_NOT_A_FAULT);
            }
            // The channel receipt layout under another tag: not a channel receipt, whatever it says.
            const tagged = (amount: bigint) => {
                const cell = beginCell().store(storeChannelReceipt({ $$type: 'ChannelReceipt', ...chain.fields({ seqno: 3n, amount }), tag: RECEIPT_TAG })).endCell();
                return { receipt: cell, signature: signHash(cell.hash(), cf.enclave) };
            };
            await expectRefused(() => prove(raw(tagged(1n), tagged(2n))), reporter.address, ERR_NOT_A_FAULT);
            await expectRefused(() => prove(raw(latest(), tagged(1n))), reporter.address, ERR_NOT_A_FAULT);
            expect(await cf.provider.getKeyBurned(cf.enclave.publicKeyInt)).toBe(false);
        });

        it('a receipt signed by another key, or a signature of another receipt: ERR_BAD_PROOF_SIGNATURE', async () => {
            const mallory = testKey('mallory');
            const conflicting = receipt({ amount: 1n });
            const cases: [SignedChannelReceipt, SignedChannelReceipt][] = [
                [latest(), receipt({ amount: 1n }, mallory)],
                [receipt({ amount: 1n }, mallory), latest()],
                // A perfect equivocation, by a key that is not this Provider's.
                [receipt({}, mallory), receipt({ amount: 1n }, mallory)],
                // The enclave's signature of one receipt on the other.
                [latest(), { receipt: conflicting.receipt, signature: latest().signature }],
            ];
            for (const [a, b] of cases) await expectRefused(() => prove(raw(a, b)), reporter.address, ERR_BAD_PROOF_SIGNATURE);
            expect(await cf.provider.getStatus()).toBe(STATUS_ACTIVE);
        });

        it('a key pays once: a second proof, of any fault by the burned key, is ERR_ALREADY_PROVEN', async () => {
            const proof = proveChannelEquivocationMessage(latest(), receipt({ amount: 1n }));
            await expectPunished(await prove(proof), toNano('100'));
            const other = await cf.fx.blockchain.treasury('other-reporter');
            await expectRefused(() => prove(proof, { from: other }), other.address, ERR_ALREADY_PROVEN);
            await expectRefused(() => prove(proveChannelEquivocationMessage(latest(), receipt({ seqno: 4n, amount: 2n }))), reporter.address, ERR_ALREADY_PROVEN);
            // An escrow equivocation by the same key is the same key's fault: paid already.
            const escrow = await cf.provider.getEscrowFor(cf.client.address, 5n);
            const fields = receiptFields(escrow, 1n, cf.fx);
            const escrowProof = proveEquivocationMessage(signReceipt(fields, cf.enclave), signReceipt({ ...fields, responseHash: 0xbadn }, cf.enclave));
            await expectRefused(() => cf.provider.send(reporter.getSender(), { value: proofFee }, escrowProof), reporter.address, ERR_ALREADY_PROVEN);
            expect(await cf.provider.getStake()).toBe(toNano('50'));
        });

        it('a proof needs its fee', async () => {
            const proof = proveChannelEquivocationMessage(latest(), receipt({ amount: 1n }));
            await expectRefused(() => prove(proof, { value: proofFee - 1n }), reporter.address, ERR_INSUFFICIENT_VALUE);
            await expectPunished(await prove(proof, { value: proofFee }), toNano('100'));
        });
    });

    describe('channel messages from anyone but the channel', () => {
        it('ChannelEnded, SlashFromChannel, RestituteFromChannel and EngageChannel naming a real channel, sent by someone else: ERR_WRONG_SENDER, nothing paid', async () => {
            const named = { client: cf.client.address, nonce: 1n };
            expect((await cf.provider.getChannelFor(named.client, named.nonce)).equals(channel.address)).toBe(true);
            expect((await cf.provider.getInfo()).openJobs).toBe(1n);
            const value = toNano('0.1');
            await expectRefused(
                () => cf.provider.send(stranger.getSender(), { value }, { $$type: 'ChannelEnded', queryId: 0n, ...named, outcome: ESCROW_CLOSED_RELEASED }),
                stranger.address,
                ERR_WRONG_SENDER,
            );
            await expectRefused(
                () =>
                    cf.provider.send(stranger.getSender(), { value }, {
                        $$type: 'SlashFromChannel',
                        queryId: 0n,
                        ...named,
                        amount: toNano('100'),
                        feeTo: stranger.address,
                        arbiterFee: toNano('100'),
                    }),
                stranger.address,
                ERR_WRONG_SENDER,
            );
            await expectRefused(
                () => cf.provider.send(stranger.getSender(), { value }, { $$type: 'EngageChannel', queryId: 0n, ...named, modelHash: 0n, expiresAt: 0n }),
                stranger.address,
                ERR_WRONG_SENDER,
            );
            // A RestituteFromChannel would pay the named client from the stake: taken only from that client's channel.
            for (const from of [stranger, cf.client]) {
                const clientBefore = await balanceOf(cf.client.address);
                const r = await expectRefused(
                    () => cf.provider.send(from.getSender(), { value }, { $$type: 'RestituteFromChannel', queryId: 0n, ...named, amount: toNano('50') }),
                    from.address,
                    ERR_WRONG_SENDER,
                );
                // Nothing paid: the Provider sent nothing but the bounce.
                expect(r.transactions.flatMap((tx) => (tx.inMessage?.info.dest instanceof Address && tx.inMessage.info.dest.equals(cf.provider.address) ? [...tx.outMessages.values()] : [])).map((m) => m.info.dest?.toString())).toEqual([from.address.toString()]);
                if (from === stranger) expect(await balanceOf(cf.client.address)).toBe(clientBefore);
            }
            // Nor from another channel of this Provider (another client's, or this client's under another nonce) naming the client.
            const restitute = (amount: bigint, nonce: bigint) =>
                beginCell().store(storeRestituteFromChannel({ $$type: 'RestituteFromChannel', queryId: 0n, client: named.client, nonce, amount })).endCell();
            for (const [other, nonce] of [
                [(await Channel.fromInit(stranger.address, cf.provider.address, 1n)).address, 1n],
                [channel.address, 2n],
            ] as const) {
                const r = await expectRefused(
                    () => cf.fx.blockchain.sendMessage(internal({ from: other, to: cf.provider.address, value, body: restitute(toNano('50'), nonce) })),
                    other,
                    ERR_WRONG_SENDER,
                );
                expect(messagesBetween(r, cf.provider.address, cf.client.address)).toHaveLength(0);
            }
            // The client itself is not its channel either.
            await expectRefused(
                () => cf.provider.send(cf.client.getSender(), { value }, { $$type: 'ChannelEnded', queryId: 0n, ...named, outcome: ESCROW_CLOSED_CLIENT_WON }),
                cf.client.address,
                ERR_WRONG_SENDER,
            );
            const info = await cf.provider.getInfo();
            expect([info.openJobs, info.completedJobs, info.refundedJobs, info.disputesLost, info.stake]).toEqual([1n, 0n, 0n, 0n, toNano('100')]);
            // The control: the same RestituteFromChannel from the channel it names is taken, and pays the client from the stake.
            const r = await cf.fx.blockchain.sendMessage(internal({ from: channel.address, to: cf.provider.address, value, body: restitute(toNano('0.5'), 1n) }));
            expect(r.transactions).toHaveTransaction({ from: channel.address, to: cf.provider.address, success: true });
            const paid = messagesBetween(r, cf.provider.address, cf.client.address);
            expect(paid).toHaveLength(1);
            expect(paid[0].value).toBeGreaterThan(toNano('0.5'));
            expect(await cf.provider.getStake()).toBe(toNano('99.5'));
        });
    });
});
