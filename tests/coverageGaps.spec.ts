// Paths that `npm run coverage` found no other suite reaching (docs/COVERAGE.md):
// Tact's answers to malformed messages, getters of contracts deployed by a
// failed first message, each handler's own copy of a shared check, answers to
// an earlier opening that reach a reopened escrow or channel, and the
// zero-value branches of payouts. What stays unreached is listed, with why,
// in docs/COVERAGE.md.
import '@ton/test-utils';
import { Address, beginCell, Cell, Dictionary, toNano } from '@ton/core';
import { internal, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import { executeFrom, executeTill } from '@ton/test-utils';
import {
    ALLOWLIST_MEASUREMENT,
    ALLOWLIST_MODEL,
    ALLOWLIST_VERIFIER,
    CHANNEL_ACTIVE,
    CHANNEL_RECEIPT_TAG,
    ERR_ALREADY_LISTED,
    ERR_BAD_ARBITER_SIGNATURE,
    ERR_BAD_STATE,
    ERR_INSUFFICIENT_VALUE,
    ERR_NO_QUORUM,
    ERR_NOT_A_FAULT,
    ERR_NOT_LISTED,
    ERR_NOT_REGISTERED,
    ERR_RECEIPT_MISMATCH,
    ERR_WRONG_ARBITERS,
    ESCROW_CLOSED_REFUSED,
    ESCROW_CLOSED_RELEASED,
    ESCROW_ENGAGED,
    ESCROW_NEW,
    loadEscrowClosed,
    loadFaultReward,
    Params,
    ParamsSnapshot,
    REFUSED_JOB_STAKE,
    Registry,
    Registry_errors_backward,
    STATUS_ACTIVE,
    STATUS_JAILED,
    STATUS_NONE,
    storeCancelChannel,
    storeCancelEscrow,
    storeChannelReceipt,
    storeCompletionReceipt,
    storeOpenChannel,
    storeOpenEscrow,
    storeParamsSnapshot,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
} from '../wrappers/Registry';
import { Channel } from '../wrappers/Channel';
import { Escrow } from '../wrappers/Escrow';
import { Provider } from '../wrappers/Provider';
import { modelHash, reattestMessage } from '../wrappers/attestation';
import { defaultParams } from '../wrappers/params';
import { signReceipt, signedReceiptCell, submitReceiptMessage } from '../wrappers/receipt';
import { buildChannelStep, signChannelReceipt, signedChannelReceiptCell } from '../wrappers/channelReceipt';
import { signVerdict, SignedVerdict } from '../wrappers/verdict';
import { signHash } from '../wrappers/ed25519';
import { deployFixture, Fixture, MODEL_A, MEASUREMENT, openEscrow, registerProvider, sendRegister, signedFor, testEnclave } from './helpers/fixture';
import { ARBITERS, deployDisputeFixture, openDispute, receiptedEscrow, REQUEST, submitVerdict, verdictFor } from './helpers/dispute';
import { activeChannel, ChannelFixture, channelVerdictFor, deployChannelFixture, disputeRequest, submitChannelVerdict } from './helpers/channel';
import { messagesBetween } from './helpers/tx';

const code = (c: bigint | number) => Number(c);
// Tact's and TVM's own exit codes, by the names the generated wrappers give them.
const INVALID_MESSAGE = Registry_errors_backward['Invalid incoming message']; // 130
const NO_SUCH_GETTER = Registry_errors_backward["'Unknown' error"]; // 11: no method with that id
const NOT_BASECHAIN = Registry_errors_backward['Not a basechain address']; // 138
const MASTERCHAIN = new Address(-1, Buffer.alloc(32, 7));
const UNSERVED = modelHash('not-attested', 'v1', 'd'.repeat(64));
const TRIGGER = toNano('0.05');

describe('every contract answers Tact-level misuse', () => {
    it('a body without an opcode and an unknown opcode: 130; an unknown getter: 11', async () => {
        const cf = await deployChannelFixture();
        const { fx, client, provider } = cf;
        const { channel } = await activeChannel(cf, 1n);
        const { escrow } = await openEscrow(fx, client, provider.address, 1n, { requestHash: 1n, modelHash: MODEL_A, maxAmount: toNano('1'), deadline: fx.blockchain.now! + 3600 });
        for (const to of [fx.registry.address, provider.address, escrow.address, channel.address]) {
            for (const body of [Cell.EMPTY, beginCell().storeUint(0x7eadbeef, 32).endCell()]) {
                const r = await fx.blockchain.sendMessage(internal({ from: client.address, to, value: toNano('0.1'), body }));
                expect(r.transactions).toHaveTransaction({ from: client.address, to, success: false, exitCode: code(INVALID_MESSAGE) });
            }
            await expect(fx.blockchain.runGetMethod(to, 'noSuchGetter')).rejects.toMatchObject({ exitCode: code(NO_SUCH_GETTER) });
        }
    });
});

describe('Registry', () => {
    let fx: Fixture;
    let adminFee: bigint;
    beforeEach(async () => {
        fx = await deployFixture();
        adminFee = await fx.registry.getAdminFee();
    });
    const expectExit = (r: SendMessageResult, from: Address, exitCode: bigint | number) =>
        expect(r.transactions).toHaveTransaction({ from, to: fx.registry.address, success: false, exitCode: code(exitCode) });

    it("every owner message checks its own value (each handler inlines the check): ERR_INSUFFICIENT_VALUE", async () => {
        const { governance, registry } = fx;
        const next = await fx.blockchain.treasury('next-owner');
        await registry.send(governance.getSender(), { value: adminFee }, { $$type: 'ProposeOwner', queryId: 0n, newOwner: next.address });
        expectExit(await registry.send(next.getSender(), { value: adminFee - 1n }, { $$type: 'AcceptOwnership', queryId: 0n }), next.address, ERR_INSUFFICIENT_VALUE);
        const asOwner = [
            { $$type: 'ProposeParams', queryId: 0n, params: fx.params },
            { $$type: 'CancelParams', queryId: 0n },
            { $$type: 'AllowlistAdd', queryId: 0n, list: ALLOWLIST_MODEL, entry: UNSERVED },
            { $$type: 'AllowlistRevoke', queryId: 0n, list: ALLOWLIST_MODEL, entry: MODEL_A },
            { $$type: 'SweepSurplus', queryId: 0n, to: governance.address },
        ] as const;
        for (const body of asOwner) expectExit(await registry.send(governance.getSender(), { value: adminFee - 1n }, body), governance.address, ERR_INSUFFICIENT_VALUE);
        // ExecuteParams is anyone's: the value is its first check.
        expectExit(await registry.send(next.getSender(), { value: adminFee - 1n }, { $$type: 'ExecuteParams', queryId: 0n }), next.address, ERR_INSUFFICIENT_VALUE);
        expect((await registry.getOwner()).equals(governance.address)).toBe(true);
    });

    it('each allowlist refuses a second listing and a revocation of what it does not list', async () => {
        const { governance, registry, verifier } = fx;
        const listed: [bigint, bigint][] = [
            [ALLOWLIST_MEASUREMENT, MEASUREMENT],
            [ALLOWLIST_MODEL, MODEL_A],
            [ALLOWLIST_VERIFIER, verifier.publicKeyInt],
        ];
        for (const [list, entry] of listed) {
            expectExit(await registry.send(governance.getSender(), { value: adminFee }, { $$type: 'AllowlistAdd', queryId: 0n, list, entry }), governance.address, ERR_ALREADY_LISTED);
            expectExit(await registry.send(governance.getSender(), { value: adminFee }, { $$type: 'AllowlistRevoke', queryId: 0n, list, entry: entry + 1n }), governance.address, ERR_NOT_LISTED);
            expect(await registry.getIsAllowed(list, entry)).toBe(true);
        }
        // A list id that names no list: no entry, nothing allowed.
        expect(await registry.getAllowlistEntry(7n, MODEL_A)).toBeNull();
        expect(await registry.getIsAllowed(7n, MODEL_A)).toBe(false);
    });

    it('refuses addresses outside the basechain: a new owner, a payout, and an owner or treasury at deployment', async () => {
        const { governance, registry } = fx;
        expectExit(await registry.send(governance.getSender(), { value: adminFee }, { $$type: 'ProposeOwner', queryId: 0n, newOwner: MASTERCHAIN }), governance.address, NOT_BASECHAIN);
        expect(await registry.getPendingOwner()).toBeNull();
        const owner = await fx.blockchain.treasury('alice');
        const r = await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice')), { payout: MASTERCHAIN });
        expectExit(r, owner.address, NOT_BASECHAIN);
        for (const [ownerAddress, params] of [
            [MASTERCHAIN, fx.params],
            [governance.address, { ...fx.params, treasury: MASTERCHAIN }],
        ] as [Address, Params][]) {
            const other = fx.blockchain.openContract(await Registry.fromInit(ownerAddress, params, 9n));
            const deploy = await other.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
            expect(deploy.transactions).toHaveTransaction({ to: other.address, success: false, exitCode: code(NOT_BASECHAIN) });
        }
    });

    it('a Registry whose first message failed is deployed uninitialised; every getter answers from its init arguments', async () => {
        const { governance, registry } = fx;
        const outsider = await fx.blockchain.treasury('outsider');
        const twin = fx.blockchain.openContract(await Registry.fromInit(governance.address, fx.params, 1n));
        const r = await twin.send(outsider.getSender(), { value: toNano('1') }, { $$type: 'ProposeOwner', queryId: 0n, newOwner: outsider.address });
        expect(r.transactions).toHaveTransaction({ to: twin.address, deploy: true, success: false });
        expect((await twin.getOwner()).equals(governance.address)).toBe(true);
        expect(await twin.getPendingOwner()).toBeNull();
        expect((await twin.getParams()).minProviderStake).toBe(fx.params.minProviderStake);
        const snapshotHash = (p: ParamsSnapshot) => beginCell().store(storeParamsSnapshot(p)).endCell().hash().toString('hex');
        expect(snapshotHash(await twin.getParamsSnapshot())).toBe(snapshotHash(await registry.getParamsSnapshot()));
        expect(await twin.getPendingParams()).toBeNull();
        expect(await twin.getPendingExecutableAt()).toBe(0n);
        expect(await twin.getAllowlistEntry(ALLOWLIST_MODEL, MODEL_A)).toBeNull();
        expect(await twin.getIsAllowed(ALLOWLIST_MODEL, MODEL_A)).toBe(false);
        const counts = await twin.getCounts();
        expect([counts.measurements, counts.models, counts.verifiers]).toEqual([0n, 0n, 0n]);
        expect((await twin.getProviderAddress(outsider.address)).equals((await Provider.fromInit(twin.address, outsider.address)).address)).toBe(true);
        expect([await twin.getAttestationFee(), await twin.getAdminFee(), await twin.getJailFee(), await twin.getSalt()]).toEqual([
            await registry.getAttestationFee(),
            adminFee,
            await registry.getJailFee(),
            1n,
        ]);
    });
});

describe('Provider', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let outsider: SandboxContract<TreasuryContract>;
    let enclave: ReturnType<typeof testEnclave>;
    beforeEach(async () => {
        fx = await deployFixture();
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        outsider = await fx.blockchain.treasury('outsider');
    });

    it("a Provider an outsider deployed before its owner registered: every getter answers for status None; its owner's SetPayoutAddress and a fault proof are refused", async () => {
        const late = await fx.blockchain.treasury('late');
        const early = fx.blockchain.openContract(await Provider.fromInit(fx.registry.address, late.address));
        const r = await early.send(outsider.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 0n, amount: toNano('1') });
        expect(r.transactions).toHaveTransaction({ to: early.address, deploy: true, success: false, exitCode: code(ERR_NOT_REGISTERED) });
        expect([await early.getStatus(), await early.getStake(), await early.getModelsSince()]).toEqual([STATUS_NONE, 0n, 0n]);
        expect([await early.getAcceptsJobs(), await early.getServesModel(MODEL_A), await early.getKeyBurned(enclave.signing.publicKeyInt)]).toEqual([false, false, false]);
        // Fees are the deployment's, the same for every Provider.
        expect([await early.getSimpleFee(), await early.getProofFee(), await early.getEscrowOpenFee(), await early.getChannelOpenFee()]).toEqual([
            await provider.getSimpleFee(),
            await provider.getProofFee(),
            await provider.getEscrowOpenFee(),
            await provider.getChannelOpenFee(),
        ]);
        expect((await early.getEscrowFor(outsider.address, 3n)).equals((await Escrow.fromInit(outsider.address, early.address, 3n)).address)).toBe(true);
        expect((await early.getChannelFor(outsider.address, 3n)).equals((await Channel.fromInit(outsider.address, early.address, 3n)).address)).toBe(true);

        const payout = await early.send(late.getSender(), { value: await provider.getSimpleFee() }, { $$type: 'SetPayoutAddress', queryId: 0n, payout: outsider.address });
        expect(payout.transactions).toHaveTransaction({ from: late.address, to: early.address, success: false, exitCode: code(ERR_NOT_REGISTERED) });
        const signed = (seqno: bigint) => signChannelReceipt({ channel: outsider.address, openId: 1n, seqno, amount: 1n, requests: 1n, root: 1n, final: false }, enclave.signing);
        const proof = await early.send(outsider.getSender(), { value: await provider.getProofFee() }, {
            $$type: 'ProveChannelEquivocation',
            queryId: 0n,
            first: signedChannelReceiptCell(signed(1n)),
            second: signedChannelReceiptCell(signed(2n)),
        });
        expect(proof.transactions).toHaveTransaction({ from: outsider.address, to: early.address, success: false, exitCode: code(ERR_NOT_REGISTERED) });
    });

    it("WithdrawStake and SetPayoutAddress check the owner's value (each inlines the check)", async () => {
        const fee = await provider.getSimpleFee();
        for (const body of [
            { $$type: 'WithdrawStake', queryId: 0n },
            { $$type: 'SetPayoutAddress', queryId: 0n, payout: outsider.address },
        ] as const) {
            const r = await provider.send(owner.getSender(), { value: fee - 1n }, body);
            expect(r.transactions).toHaveTransaction({ from: owner.address, to: provider.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
        }
    });

    it('no equivocation: the same receipt twice, or a cell of another kind signed by the key in either place: ERR_NOT_A_FAULT', async () => {
        const fields = { escrow: await provider.getEscrowFor(outsider.address, 1n), engageId: 1n, requestHash: REQUEST, responseHash: 1n, modelHash: MODEL_A, inputUnits: 1n, outputUnits: 1n, amount: 1n, finishedAt: BigInt(fx.blockchain.now!) };
        const signed = signReceipt({ ...fields, finishedAt: Number(fields.finishedAt) }, enclave.signing);
        // A receipt's layout under another tag, validly signed by the enclave key.
        const otherCell = beginCell().store(storeCompletionReceipt({ $$type: 'CompletionReceipt', ...fields, tag: CHANNEL_RECEIPT_TAG, responseHash: 2n })).endCell();
        const other = { receipt: otherCell, signature: signHash(otherCell.hash(), enclave.signing) };
        for (const [first, second] of [
            [signed, signed],
            [other, signed],
            [signed, other],
        ]) {
            const r = await provider.send(outsider.getSender(), { value: await provider.getProofFee() }, { $$type: 'ProveEquivocation', queryId: 0n, first: signedReceiptCell(first), second: signedReceiptCell(second) });
            expect(r.transactions).toHaveTransaction({ from: outsider.address, to: provider.address, success: false, exitCode: code(ERR_NOT_A_FAULT) });
        }
        expect(await provider.getKeyBurned(enclave.signing.publicKeyInt)).toBe(false);
    });

    it('re-attested below a raised minimum stake, a Provider stays Active but refuses jobs: REFUSED_JOB_STAKE', async () => {
        const { governance, registry } = fx;
        const adminFee = await registry.getAdminFee();
        const minimum = fx.params.minProviderStake * 2n;
        await registry.send(governance.getSender(), { value: adminFee }, { $$type: 'ProposeParams', queryId: 0n, params: { ...fx.params, minProviderStake: minimum } });
        fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
        await registry.send(outsider.getSender(), { value: adminFee }, { $$type: 'ExecuteParams', queryId: 0n });
        expect((await registry.getParams()).minProviderStake).toBe(minimum);
        // A re-attestation need not add stake; the new snapshot raises the bar under the one already staked.
        const r = await registry.send(owner.getSender(), { value: await registry.getAttestationFee() }, reattestMessage(signedFor(fx, owner.address, enclave), 0n));
        expect(r.transactions).toHaveTransaction({ from: registry.address, to: provider.address, success: true });
        const info = await provider.getInfo();
        expect([info.status, info.stake, info.snapshot?.minProviderStake]).toEqual([STATUS_ACTIVE, fx.params.minProviderStake, minimum]);
        expect(await provider.getAcceptsJobs()).toBe(false);
        const client = await fx.blockchain.treasury('client');
        const { escrow, result } = await openEscrow(fx, client, provider.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('1'), deadline: fx.blockchain.now + 3600 });
        const closed = messagesBetween(result, escrow.address, client.address).map((m) => loadEscrowClosed(m.body.beginParse()));
        expect(closed.map((c) => [c.outcome, c.reason])).toEqual([[ESCROW_CLOSED_REFUSED, REFUSED_JOB_STAKE]]);
        expect((await provider.getInfo()).openJobs).toBe(0n);
    });

    it('a fault proven against a Provider with no stake left burns the key and pays nothing', async () => {
        const dfx = await deployDisputeFixture();
        const alice = await registerProvider(dfx, 'alice');
        const client = await dfx.blockchain.treasury('client');
        const feeTo = await dfx.blockchain.treasury('arbiters');
        const { escrow, fields } = await receiptedEscrow(dfx, client, alice.provider, alice.enclave, 1n);
        await openDispute(escrow, client);
        const stake = await alice.provider.getStake();
        await submitVerdict(escrow, feeTo, await verdictFor(dfx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: stake * 2n, feeTo: feeTo.address }));
        expect([await alice.provider.getStake(), await alice.provider.getStatus()]).toEqual([0n, STATUS_JAILED]);
        // The enclave signed two answers to the disputed request.
        const twice = signReceipt({ ...fields, responseHash: fields.responseHash + 1n }, alice.enclave.signing);
        const once = signReceipt(fields, alice.enclave.signing);
        const reporter = await dfx.blockchain.treasury('reporter');
        const r = await alice.provider.send(reporter.getSender(), { value: await alice.provider.getProofFee() }, { $$type: 'ProveEquivocation', queryId: 0n, first: signedReceiptCell(once), second: signedReceiptCell(twice) });
        expect(r.transactions).toHaveTransaction({ from: reporter.address, to: alice.provider.address, success: true });
        expect(messagesBetween(r, alice.provider.address, dfx.treasury.address)).toHaveLength(0);
        const rewards = messagesBetween(r, alice.provider.address, reporter.address).map((m) => loadFaultReward(m.body.beginParse()).reward);
        expect(rewards).toEqual([0n]);
        expect(await alice.provider.getKeyBurned(alice.enclave.signing.publicKeyInt)).toBe(true);
    });
});

describe('Escrow', () => {
    it('an Escrow an outsider deployed with a failed message reads as New and empty; its client still opens it', async () => {
        const fx = await deployFixture();
        const { provider } = await registerProvider(fx, 'alice');
        const client = await fx.blockchain.treasury('client');
        const outsider = await fx.blockchain.treasury('outsider');
        const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, 1n));
        const r = await escrow.send(outsider.getSender(), { value: toNano('1') }, { $$type: 'Release', queryId: 0n });
        expect(r.transactions).toHaveTransaction({ to: escrow.address, deploy: true, success: false, exitCode: code(ERR_BAD_STATE) });
        const info = await escrow.getInfo();
        expect([info.state, info.maxAmount, info.deadline, info.engagement]).toEqual([ESCROW_NEW, 0n, 0n, null]);
        expect(await escrow.getOpenFee()).toBe(await provider.getEscrowOpenFee());
        await openEscrow(fx, client, provider.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('1'), deadline: fx.blockchain.now! + 3600 });
        expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
    });

    it('a receipt for nothing releases nothing: no payout, no fee, everything back to the client', async () => {
        const fx = await deployFixture();
        const { provider, enclave, owner } = await registerProvider(fx, 'alice');
        const client = await fx.blockchain.treasury('client');
        const { escrow } = await openEscrow(fx, client, provider.address, 1n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('1'), deadline: fx.blockchain.now! + 3600 });
        const engageId = (await escrow.getInfo()).engageId;
        const signed = signReceipt({ escrow: escrow.address, engageId, requestHash: REQUEST, responseHash: 1n, modelHash: MODEL_A, inputUnits: 1n, outputUnits: 0n, amount: 0n, finishedAt: fx.blockchain.now! }, enclave.signing);
        await escrow.send(client.getSender(), { value: await escrow.getTriggerFee() }, submitReceiptMessage(signed));
        fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
        const r = await escrow.send(client.getSender(), { value: await escrow.getTriggerFee() }, { $$type: 'Release', queryId: 0n });
        expect(messagesBetween(r, escrow.address, owner.address)).toHaveLength(0);
        expect(messagesBetween(r, escrow.address, fx.treasury.address)).toHaveLength(0);
        const closed = messagesBetween(r, escrow.address, client.address).filter((m) => m.body.beginParse().loadUint(32) === 0x30000006);
        expect(closed.map((m) => loadEscrowClosed(m.body.beginParse()).outcome)).toEqual([ESCROW_CLOSED_RELEASED]);
        expect(closed[0].value).toBeGreaterThan(toNano('1'));
        expect((await provider.getInfo()).completedJobs).toBe(1n);
    });
});

// An escrow and a channel are opened the same way (an opening message, then the
// Provider's answer) and can be cancelled before the answer and opened again at
// the same address: answers to the first opening then reach the second.
describe.each(['escrow', 'channel'] as const)('an answer to an earlier opening reaches the reopened, engaged %s', (kind) => {
    let cf: ChannelFixture;
    beforeEach(async () => {
        cf = await deployChannelFixture();
    });

    async function venue(providerAddress: Address) {
        const { fx, client } = cf;
        const fee = await cf.provider.getEscrowOpenFee();
        const channelFee = await cf.provider.getChannelOpenFee();
        const deadline = BigInt(fx.blockchain.now! + 3600);
        const contract =
            kind === 'escrow'
                ? fx.blockchain.openContract(await Escrow.fromInit(client.address, providerAddress, 1n))
                : fx.blockchain.openContract(await Channel.fromInit(client.address, providerAddress, 1n));
        const openBody = (modelHash: bigint) =>
            kind === 'escrow'
                ? beginCell().store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash: REQUEST, modelHash, maxAmount: toNano('1'), deadline })).endCell()
                : beginCell().store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash, deposit: toNano('1'), expiresAt: deadline })).endCell();
        const cancelBody =
            kind === 'escrow' ? beginCell().store(storeCancelEscrow({ $$type: 'CancelEscrow', queryId: 0n })).endCell() : beginCell().store(storeCancelChannel({ $$type: 'CancelChannel', queryId: 0n })).endCell();
        const send = (value: bigint, body: Cell) =>
            fx.blockchain.sendMessageIter(internal({ from: client.address, to: contract.address, value, body, stateInit: contract.init }), { allowParallel: true });
        return {
            address: contract.address,
            engaged: kind === 'escrow' ? ESCROW_ENGAGED : CHANNEL_ACTIVE,
            state: () => contract.getState(),
            /** Opens and runs only the opening's own transaction: the Provider's part stays in flight. */
            openPending: async (modelHash = MODEL_A) => {
                const it = await send(toNano('1') + (kind === 'escrow' ? fee : channelFee), openBody(modelHash));
                await executeTill(it, { to: contract.address, success: true });
                return it;
            },
            cancel: async () => executeFrom(await send(TRIGGER, cancelBody)),
            open: async () => executeFrom(await send(toNano('1') + (kind === 'escrow' ? fee : channelFee), openBody(MODEL_A))),
        };
    }

    it("the Provider's refusal of the earlier opening: ERR_BAD_STATE, and its bounce is absorbed", async () => {
        const v = await venue(cf.provider.address);
        const first = await v.openPending(UNSERVED);
        await v.cancel();
        await v.open();
        expect(await v.state()).toBe(v.engaged);
        const late = await executeFrom(first);
        expect(late).toHaveTransaction({ from: cf.provider.address, to: v.address, success: false, exitCode: code(ERR_BAD_STATE) });
        expect(late).toHaveTransaction({ from: v.address, to: cf.provider.address, inMessageBounced: true, success: true });
        expect(await v.state()).toBe(v.engaged);
        expect((await cf.provider.getInfo()).openJobs).toBe(1n);
    });

    it("the Provider's engagement of the earlier opening: ERR_BAD_STATE, and the bounce rolls the Provider back", async () => {
        const v = await venue(cf.provider.address);
        const first = await v.openPending();
        await v.cancel();
        await v.open();
        const late = await executeFrom(first);
        expect(late).toHaveTransaction({ from: cf.provider.address, to: v.address, success: false, exitCode: code(ERR_BAD_STATE) });
        expect(late).toHaveTransaction({ from: v.address, to: cf.provider.address, inMessageBounced: true, success: true });
        expect(await v.state()).toBe(v.engaged);
        expect((await cf.provider.getInfo()).openJobs).toBe(1n);
    });

    it('the bounce of the earlier opening, from a Provider not deployed yet, is ignored', async () => {
        const lateOwner = await cf.fx.blockchain.treasury('late');
        const v = await venue(await cf.fx.registry.getProviderAddress(lateOwner.address));
        const first = await v.openPending();
        await first.next(); // the request reaches no Provider and bounces; the bounce stays in flight
        await v.cancel();
        await registerProvider(cf.fx, 'late');
        await v.open();
        expect(await v.state()).toBe(v.engaged);
        const late = await executeFrom(first);
        expect(late).toHaveLength(1);
        expect(late).toHaveTransaction({ to: v.address, inMessageBounced: true, success: true, outMessagesCount: 0 });
        expect(await v.state()).toBe(v.engaged);
    });
});

describe('verdicts', () => {
    /** A deployment with ARBITERS (quorum 2) and `params`, one registered provider, and a client: for an escrow and a channel alike. */
    async function setup(params: Partial<Params> = {}) {
        const fx = await deployFixture((treasury) => ({ ...defaultParams(treasury, ARBITERS.map((k) => k.publicKeyInt)), ...params }));
        const { owner, provider, enclave } = await registerProvider(fx, 'alice');
        const cf: ChannelFixture = { fx, client: await fx.blockchain.treasury('client'), owner, provider, enclave: enclave.signing };
        return { fx, cf, enclave, feeTo: await fx.blockchain.treasury('arbiters') };
    }

    /** A disputed escrow and a channel with a disputed request. */
    async function disputed(s: Awaited<ReturnType<typeof setup>>) {
        const { escrow, fields } = await receiptedEscrow(s.fx, s.cf.client, s.cf.provider, s.enclave, 1n);
        await openDispute(escrow, s.cf.client);
        const { channel, chain } = await activeChannel(s.cf, 1n);
        chain.serve(toNano('0.1'));
        expect((await disputeRequest(channel, s.cf.client, chain.steps[0])).transactions).toHaveTransaction({ to: channel.address, success: true });
        return { escrow, fields, channel };
    }

    it('Escrow and Channel refuse an empty arbiter set, no signatures, and a signer outside the set', async () => {
        const s = await setup();
        const { escrow, channel } = await disputed(s);
        const noArbiters = Dictionary.empty(Dictionary.Keys.Uint(8), Dictionary.Values.BigUint(256));
        const cases = (v: SignedVerdict): [SignedVerdict, Dictionary<number, bigint> | undefined, bigint][] => [
            [v, noArbiters, ERR_WRONG_ARBITERS],
            [{ verdict: v.verdict, signatures: new Map() }, undefined, ERR_NO_QUORUM],
            // Signed by an arbiter, but under an index the set does not have.
            [{ verdict: v.verdict, signatures: new Map([[5, signVerdict(v.verdict, ARBITERS[0])]]) }, undefined, ERR_BAD_ARBITER_SIGNATURE],
        ];
        const verdict = { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: s.feeTo.address };
        for (const [signed, arbiters, exitCode] of cases(await verdictFor(s.fx, escrow, verdict))) {
            const r = await submitVerdict(escrow, s.feeTo, signed, { arbiters });
            expect(r.transactions).toHaveTransaction({ to: escrow.address, success: false, exitCode: code(exitCode) });
        }
        for (const [signed, arbiters, exitCode] of cases(await channelVerdictFor(s.cf, channel, verdict))) {
            const r = await submitChannelVerdict(channel, s.feeTo, signed, { arbiters });
            expect(r.transactions).toHaveTransaction({ to: channel.address, success: false, exitCode: code(exitCode) });
        }
        expect((await channel.getInfo()).disputePending).toBe(true);
    });

    it.each([
        ['no arbiters fee (arbiterFeeBps 0): the whole bond goes to the provider', 0n],
        ['the whole bond as the arbiters fee (arbiterFeeBps 10000): none to the provider', 10000n],
    ])('ProviderWins with %s, at an Escrow and at a Channel', async (_, arbiterFeeBps) => {
        const s = await setup({ arbiterFeeBps });
        const { escrow, fields, channel } = await disputed(s);
        const bond = s.fx.params.disputeBond;
        const [toArbiters, toProvider] = arbiterFeeBps === 0n ? [[], [bond]] : [[bond], []];
        const verdict = { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: s.feeTo.address };
        // Submitted by the client: the fee's excess goes back to the submitter, not to feeTo.
        let r = await submitVerdict(escrow, s.cf.client, await verdictFor(s.fx, escrow, verdict));
        expect(messagesBetween(r, escrow.address, s.feeTo.address).map((m) => m.value)).toEqual(toArbiters);
        const released = fields.amount - (fields.amount * s.fx.params.protocolFeeBps) / 10000n;
        expect(messagesBetween(r, escrow.address, s.cf.owner.address).map((m) => m.value)).toEqual([...toProvider, released]);
        r = await submitChannelVerdict(channel, s.cf.client, await channelVerdictFor(s.cf, channel, verdict));
        expect(r.transactions).toHaveTransaction({ to: channel.address, success: true });
        // No claim came during the dispute, so nothing was withheld: the bond is all there is to share.
        expect(messagesBetween(r, channel.address, s.feeTo.address).map((m) => m.value)).toEqual(toArbiters);
        expect(messagesBetween(r, channel.address, s.cf.owner.address).map((m) => m.value)).toEqual(toProvider);
    });
});

describe('Channel', () => {
    it('an active channel cannot be cancelled: ERR_BAD_STATE', async () => {
        const cf = await deployChannelFixture();
        const { channel } = await activeChannel(cf, 1n);
        const r = await channel.send(cf.client.getSender(), { value: await channel.getTriggerFee() }, { $$type: 'CancelChannel', queryId: 0n });
        expect(r.transactions).toHaveTransaction({ from: cf.client.address, to: channel.address, success: false, exitCode: code(ERR_BAD_STATE) });
        expect(await channel.getState()).toBe(CHANNEL_ACTIVE);
    });

    it("a dispute proven by a cell of another kind signed by the enclave key: ERR_RECEIPT_MISMATCH", async () => {
        const cf = await deployChannelFixture();
        const { channel, chain } = await activeChannel(cf, 1n);
        const { step } = chain.serve(toNano('0.1'));
        const fields = chain.fields();
        const receipt = beginCell()
            .store(storeChannelReceipt({ $$type: 'ChannelReceipt', tag: 0x12345678n, channel: channel.address, openId: fields.openId, seqno: fields.seqno, amount: fields.amount, requests: fields.requests, root: fields.root, final: false }))
            .endCell();
        const value = (await channel.getInfo()).engagement!.disputeBond + (await channel.getDisputeFee());
        // Built by hand: disputeChannelRequestMessage refuses such a receipt before sending.
        const r = await channel.send(cf.client.getSender(), { value }, {
            $$type: 'DisputeChannelRequest',
            queryId: 0n,
            signature: signHash(receipt.hash(), cf.enclave),
            receipt,
            step: buildChannelStep(step),
            reason: 1n,
            evidenceHash: 0n,
        });
        expect(r.transactions).toHaveTransaction({ to: channel.address, success: false, exitCode: code(ERR_RECEIPT_MISMATCH) });
        expect((await channel.getInfo()).disputePending).toBe(false);
    });
});
