import '@ton/test-utils';
import { Address, beginCell, Dictionary, toNano } from '@ton/core';
import { SandboxContract, TreasuryContract } from '@ton/sandbox';
import {
    ERR_BAD_STATUS,
    ERR_INSUFFICIENT_VALUE,
    ERR_NOT_OWNER,
    ERR_NOT_REGISTERED,
    ERR_UNBONDING_NOT_OVER,
    ERR_WRONG_SENDER,
    ERR_ZERO_AMOUNT,
    JAIL_GOVERNANCE,
    PROVIDER_STORAGE_RESERVE,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { reattestMessage } from '../wrappers/attestation';
import { deployFixture, Fixture, registerProvider, sendRegister, signedFor, testEnclave } from './helpers/fixture';
import { feesPaidBySender, messagesBetween, networkFees } from './helpers/tx';

const code = (c: bigint) => Number(c);
const OWNER_VALUE = toNano('0.05');

describe('Provider', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let outsider: SandboxContract<TreasuryContract>;

    beforeEach(async () => {
        fx = await deployFixture();
        ({ owner, provider } = await registerProvider(fx, 'alice'));
        outsider = await fx.blockchain.treasury('outsider');
    });

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;

    async function expectRejected(
        sender: SandboxContract<TreasuryContract>,
        value: bigint,
        body: Parameters<SandboxContract<Provider>['send']>[2],
        exitCode: bigint | number,
    ) {
        const before = await provider.getInfo();
        const r = await provider.send(sender.getSender(), { value }, body);
        expect(r.transactions).toHaveTransaction({ from: sender.address, to: provider.address, success: false, exitCode: Number(exitCode) });
        expect(r.transactions).toHaveTransaction({ from: provider.address, to: sender.address, inMessageBounced: true });
        const after = await provider.getInfo();
        expect([after.status, after.stake, after.withdrawableAt]).toEqual([before.status, before.stake, before.withdrawableAt]);
        return r;
    }

    describe('stake top-up', () => {
        it('anyone adds stake; the balance stays exactly stake + reserve', async () => {
            const amount = toNano('25');
            const before = await outsider.getBalance();
            const r = await provider.send(outsider.getSender(), { value: amount + toNano('1') }, { $$type: 'TopUpStake', queryId: 5n, amount });
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: outsider.address, op: 0xd53276db });
            const stake = fx.params.minProviderStake + amount;
            expect(await provider.getStake()).toBe(stake);
            expect(await balanceOf(provider.address)).toBe(stake + PROVIDER_STORAGE_RESERVE);
            expect(before - (await outsider.getBalance())).toBe(amount + feesPaidBySender(r));
        });

        it('rejects a zero amount, too little value, and providers that hold no stake', async () => {
            await expectRejected(outsider, toNano('1'), { $$type: 'TopUpStake', queryId: 1n, amount: 0n }, ERR_ZERO_AMOUNT);
            const fee = await provider.getSimpleFee();
            await expectRejected(outsider, toNano('1') + fee - 1n, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') }, ERR_INSUFFICIENT_VALUE);

            // A Provider deployed by a refused re-attestation is in status None.
            const bob = await fx.blockchain.treasury('bob');
            await fx.registry.send(bob.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, bob.address, testEnclave('bob'))));
            const none = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(bob.address)));
            expect(await none.getStatus()).toBe(STATUS_NONE);
            const r = await none.send(outsider.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') });
            expect(r.transactions).toHaveTransaction({ to: none.address, success: false, exitCode: code(ERR_NOT_REGISTERED) });
        });
    });

    describe('unbonding and withdrawal', () => {
        it('unbonds, waits the unbonding period, and returns the whole stake to the owner', async () => {
            await expectRejected(outsider, OWNER_VALUE, { $$type: 'RequestUnbond', queryId: 1n }, ERR_NOT_OWNER);
            await expectRejected(owner, OWNER_VALUE, { $$type: 'WithdrawStake', queryId: 1n }, ERR_BAD_STATUS);

            const unbondAt = fx.blockchain.now!;
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            let info = await provider.getInfo();
            expect(info.status).toBe(STATUS_UNBONDING);
            expect(info.withdrawableAt).toBe(BigInt(unbondAt) + fx.params.unbondingPeriod);
            expect(await provider.getAcceptsJobs()).toBe(false);
            await expectRejected(owner, OWNER_VALUE, { $$type: 'RequestUnbond', queryId: 2n }, ERR_BAD_STATUS);

            fx.blockchain.now = unbondAt + Number(fx.params.unbondingPeriod) - 1;
            await expectRejected(owner, OWNER_VALUE, { $$type: 'WithdrawStake', queryId: 3n }, ERR_UNBONDING_NOT_OVER);
            await expectRejected(outsider, OWNER_VALUE, { $$type: 'WithdrawStake', queryId: 3n }, ERR_NOT_OWNER);

            fx.blockchain.now = unbondAt + Number(fx.params.unbondingPeriod);
            const stake = await provider.getStake();
            const providerBefore = await balanceOf(provider.address);
            const ownerBefore = await owner.getBalance();
            const r = await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'WithdrawStake', queryId: 4n });
            const paid = messagesBetween(r, provider.address, owner.address);
            expect(paid).toHaveLength(1);
            expect(paid[0].bounce).toBe(false);
            const body = paid[0].body.beginParse();
            expect(body.loadUint(32)).toBe(0x20000021); // StakeWithdrawn
            expect(body.loadUintBig(64)).toBe(4n);
            expect(body.loadCoins()).toBe(stake);

            info = await provider.getInfo();
            expect(info.status).toBe(STATUS_EXITED);
            expect(info.stake).toBe(0n);
            // Everything above the reserve left.
            const providerAfter = await balanceOf(provider.address);
            expect(providerAfter).toBe(PROVIDER_STORAGE_RESERVE);
            // Conservation: what the Provider released reached the owner, less the network's fees.
            expect((await owner.getBalance()) - ownerBefore).toBe(providerBefore - providerAfter - networkFees(r));
            await expectRejected(owner, OWNER_VALUE, { $$type: 'WithdrawStake', queryId: 5n }, ERR_BAD_STATUS);
            await expectRejected(outsider, toNano('2'), { $$type: 'TopUpStake', queryId: 6n, amount: toNano('1') }, ERR_NOT_REGISTERED);
        });

        it('a jailed provider may unbond and leave', async () => {
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 1n,
                providerOwner: owner.address,
                reason: JAIL_GOVERNANCE,
            });
            expect(await provider.getStatus()).toBe(STATUS_JAILED);
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            expect(await provider.getStatus()).toBe(STATUS_UNBONDING);
        });

        it('an exited provider registers again, with its payout stated afresh', async () => {
            const oldPayout = await fx.blockchain.treasury('old-payout');
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'SetPayoutAddress', queryId: 0n, payout: oldPayout.address });
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.unbondingPeriod);
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'WithdrawStake', queryId: 2n });
            const r = await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice-again')));
            expect(r.transactions).toHaveTransaction({ from: fx.registry.address, to: provider.address, success: true });
            const info = await provider.getInfo();
            expect(info.status).toBe(STATUS_ACTIVE);
            expect(info.stake).toBe(fx.params.minProviderStake);
            expect(info.withdrawableAt).toBe(0n);
            expect(info.payout.equals(owner.address)).toBe(true); // null payout in the new registration = the owner
            expect(await balanceOf(provider.address)).toBe(info.stake + PROVIDER_STORAGE_RESERVE);
        });

        it('re-attesting while unbonding renews keys but does not cancel the unbonding', async () => {
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'RequestUnbond', queryId: 1n });
            await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice-v2'))));
            const info = await provider.getInfo();
            expect(info.status).toBe(STATUS_UNBONDING);
            expect(info.enclave.signingKey).toBe(testEnclave('alice-v2').signing.publicKeyInt);
        });
    });

    describe('payout address', () => {
        it('the owner changes it; others cannot; masterchain addresses are refused', async () => {
            const payout = await fx.blockchain.treasury('payout');
            await expectRejected(outsider, OWNER_VALUE, { $$type: 'SetPayoutAddress', queryId: 1n, payout: outsider.address }, ERR_NOT_OWNER);
            await expectRejected(owner, OWNER_VALUE, { $$type: 'SetPayoutAddress', queryId: 1n, payout: new Address(-1, Buffer.alloc(32, 7)) }, 138);
            await provider.send(owner.getSender(), { value: OWNER_VALUE }, { $$type: 'SetPayoutAddress', queryId: 1n, payout: payout.address });
            expect((await provider.getInfo()).payout.equals(payout.address)).toBe(true);
        });

        it('owner messages need the fee', async () => {
            const fee = await provider.getSimpleFee();
            await expectRejected(owner, fee - 1n, { $$type: 'RequestUnbond', queryId: 1n }, ERR_INSUFFICIENT_VALUE);
        });
    });

    describe('availability', () => {
        it('stops accepting jobs when its attestation expires, and again after re-attestation', async () => {
            expect(await provider.getAcceptsJobs()).toBe(true);
            const info = await provider.getInfo();
            fx.blockchain.now = Number(info.attestationValidUntil);
            expect(await provider.getAcceptsJobs()).toBe(false);
            await fx.registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice'))));
            expect(await provider.getAcceptsJobs()).toBe(true);
        });

        it('a jailed provider whose stake is below a raised minimum stays jailed after re-attesting', async () => {
            const raised = { ...fx.params, minProviderStake: fx.params.minProviderStake * 2n };
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.05') }, { $$type: 'ProposeParams', queryId: 1n, params: raised });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            await fx.registry.send(outsider.getSender(), { value: toNano('0.05') }, { $$type: 'ExecuteParams', queryId: 2n });
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 3n,
                providerOwner: owner.address,
                reason: JAIL_GOVERNANCE,
            });
            const fee = await fx.registry.getAttestationFee();
            await fx.registry.send(owner.getSender(), { value: fee }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice'))));
            expect(await provider.getStatus()).toBe(STATUS_JAILED);
            const topUp = fx.params.minProviderStake;
            await fx.registry.send(owner.getSender(), { value: fee + topUp }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice')), topUp));
            expect(await provider.getStatus()).toBe(STATUS_ACTIVE);
            expect(await provider.getStake()).toBe(raised.minProviderStake);
        });

        it('its storage reserve pays years of rent without touching the stake', async () => {
            const stake = await provider.getStake();
            fx.blockchain.now = fx.blockchain.now! + 5 * 365 * 86400;
            const r = await provider.send(outsider.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') });
            expect(r.transactions).toHaveTransaction({ to: provider.address, success: true });
            const balance = await balanceOf(provider.address);
            // Rent came out of the reserve, not the stake, and the Provider is not frozen.
            expect(balance).toBeGreaterThan(stake + toNano('1'));
            expect(balance).toBe(stake + toNano('1') + PROVIDER_STORAGE_RESERVE);
        });
    });

    describe('sender authentication', () => {
        it('only its Registry may apply attestations or jail it', async () => {
            const apply = {
                $$type: 'ApplyAttestation' as const,
                queryId: 1n,
                isRegistration: false,
                stake: 0n,
                payout: outsider.address,
                validUntil: 4_000_000_000n,
                enclave: { $$type: 'EnclaveIdentity' as const, signingKey: 1n, encryptionKey: 2n, measurement: 3n, reportHash: 4n },
                models: Dictionary.empty(Dictionary.Keys.BigUint(256), Dictionary.Values.Bool()),
                snapshot: await fx.registry.getParamsSnapshot(),
            };
            const { storeApplyAttestation, storeJail } = await import('../wrappers/Registry');
            const spoofs = [
                beginCell().store(storeApplyAttestation(apply)).endCell(),
                beginCell().store(storeJail({ $$type: 'Jail', queryId: 1n, reason: 1n, excessesTo: outsider.address })).endCell(),
            ];
            for (const body of spoofs) {
                const r = await outsider.send({ to: provider.address, value: toNano('1'), body });
                expect(r.transactions).toHaveTransaction({ to: provider.address, success: false, exitCode: code(ERR_WRONG_SENDER) });
            }
            const info = await provider.getInfo();
            expect(info.status).toBe(STATUS_ACTIVE);
            expect(info.payout.equals(owner.address)).toBe(true);
        });

        it('rejects plain transfers, returning the value', async () => {
            const r = await outsider.send({ to: provider.address, value: toNano('3') });
            expect(r.transactions).toHaveTransaction({ to: provider.address, success: false });
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: outsider.address, inMessageBounced: true });
        });
    });
});
