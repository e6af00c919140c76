// The fee getters are enough: a message carrying exactly the advertised fee
// succeeds along its whole chain on its worst case, including the reply.
import '@ton/test-utils';
import { toNano } from '@ton/core';
import { ALLOWLIST_MODEL, JAIL_GOVERNANCE, MAX_ARBITERS, MAX_MODELS_PER_PROVIDER, STATUS_ACTIVE, STATUS_JAILED } from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { defaultParams } from '../wrappers/params';
import { reattestMessage } from '../wrappers/attestation';
import { Escrow } from '../wrappers/Escrow';
import { signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { deployFixture, Fixture, MODEL_A, sendRegister, signedFor, testEnclave, testKey } from './helpers/fixture';
import { messagesBetween } from './helpers/tx';

describe('fees cover the worst case', () => {
    let fx: Fixture;
    const models = Array.from({ length: Number(MAX_MODELS_PER_PROVIDER) }, (_, i) => BigInt(7000 + i));

    beforeEach(async () => {
        fx = await deployFixture((treasury) =>
            defaultParams(treasury, Array.from({ length: Number(MAX_ARBITERS) }, (_, i) => testKey(`arbiter${i}`).publicKeyInt)),
        );
        for (const entry of models) {
            await fx.registry.send(fx.governance.getSender(), { value: toNano('0.1') }, { $$type: 'AllowlistAdd', queryId: 0n, list: ALLOWLIST_MODEL, entry });
        }
        fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
    });

    it('registration and re-attestation with the most models, at exactly stake + attestationFee', async () => {
        const owner = await fx.blockchain.treasury('alice');
        const fee = await fx.registry.getAttestationFee();
        const stake = fx.params.minProviderStake;
        let r = await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice'), { models }), { stake, value: stake + fee });
        const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
        expect(r.transactions).not.toHaveTransaction({ success: false });
        expect(await provider.getStatus()).toBe(STATUS_ACTIVE);
        expect(messagesBetween(r, provider.address, owner.address)).toHaveLength(1);

        r = await fx.registry.send(owner.getSender(), { value: fee }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice'), { models })));
        expect(r.transactions).not.toHaveTransaction({ success: false });
        expect(messagesBetween(r, provider.address, owner.address)).toHaveLength(1);
    });

    it('governance messages at exactly adminFee / jailFee, including the bounce path', async () => {
        const adminFee = await fx.registry.getAdminFee();
        let r = await fx.registry.send(fx.governance.getSender(), { value: adminFee }, { $$type: 'ProposeParams', queryId: 1n, params: fx.params });
        expect(r.transactions).not.toHaveTransaction({ success: false });
        expect(messagesBetween(r, fx.registry.address, fx.governance.address)).toHaveLength(1);

        const owner = await fx.blockchain.treasury('alice');
        await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice')));
        const jailFee = await fx.registry.getJailFee();
        r = await fx.registry.send(fx.governance.getSender(), { value: jailFee }, {
            $$type: 'JailProvider',
            queryId: 1n,
            providerOwner: owner.address,
            reason: JAIL_GOVERNANCE,
        });
        expect(r.transactions).not.toHaveTransaction({ success: false });
        const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
        expect(await provider.getStatus()).toBe(STATUS_JAILED);
        expect(messagesBetween(r, provider.address, fx.governance.address)).toHaveLength(1);

        const nobody = await fx.blockchain.treasury('nobody');
        r = await fx.registry.send(fx.governance.getSender(), { value: jailFee }, {
            $$type: 'JailProvider',
            queryId: 2n,
            providerOwner: nobody.address,
            reason: JAIL_GOVERNANCE,
        });
        expect(r.transactions).toHaveTransaction({ to: fx.registry.address, inMessageBounced: true, success: true });
        expect(messagesBetween(r, fx.registry.address, fx.governance.address)).toHaveLength(1);
    });

    it('owner messages to a Provider at exactly simpleFee', async () => {
        const owner = await fx.blockchain.treasury('alice');
        await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice')));
        const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
        const fee = await provider.getSimpleFee();
        for (const body of [
            { $$type: 'SetPayoutAddress' as const, queryId: 1n, payout: owner.address },
            { $$type: 'RequestUnbond' as const, queryId: 2n },
        ]) {
            const r = await provider.send(owner.getSender(), { value: fee }, body);
            expect(r.transactions).not.toHaveTransaction({ success: false });
            expect(messagesBetween(r, provider.address, owner.address)).toHaveLength(1);
        }
        fx.blockchain.now = fx.blockchain.now! + Number(fx.params.unbondingPeriod);
        const r = await provider.send(owner.getSender(), { value: fee }, { $$type: 'WithdrawStake', queryId: 3n });
        expect(r.transactions).not.toHaveTransaction({ success: false });
        expect(messagesBetween(r, provider.address, owner.address)[0].value).toBeGreaterThan(fx.params.minProviderStake);
    });

    it('an escrow at exactly maxAmount + openFee, with every trigger at exactly triggerFee, sends every message', async () => {
        const owner = await fx.blockchain.treasury('alice');
        const enclave = testEnclave('alice');
        await sendRegister(fx, owner, signedFor(fx, owner.address, enclave));
        const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
        const client = await fx.blockchain.treasury('client');
        const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider.address, 1n));
        const maxAmount = toNano('1');
        let r = await escrow.send(client.getSender(), { value: maxAmount + (await provider.getEscrowOpenFee()) }, {
            $$type: 'OpenEscrow',
            queryId: 0n,
            requestHash: 1n,
            modelHash: MODEL_A,
            maxAmount,
            deadline: BigInt(fx.blockchain.now! + 600),
        });
        expect(r.transactions).not.toHaveTransaction({ success: false });
        const trigger = await escrow.getTriggerFee();
        const signed = signReceipt(
            { escrow: escrow.address, engageId: (await escrow.getInfo()).engageId, requestHash: 1n, responseHash: 2n, modelHash: MODEL_A, inputUnits: 1n, outputUnits: 1n, amount: maxAmount, finishedAt: fx.blockchain.now! },
            enclave.signing,
        );
        r = await escrow.send(client.getSender(), { value: trigger }, submitReceiptMessage(signed));
        expect(r.transactions).not.toHaveTransaction({ success: false });
        fx.blockchain.now = fx.blockchain.now! + Number(fx.params.disputeWindow);
        r = await escrow.send(client.getSender(), { value: trigger }, { $$type: 'Release', queryId: 0n });
        expect(r.transactions).not.toHaveTransaction({ success: false });
        const fee = (maxAmount * fx.params.protocolFeeBps) / 10000n;
        expect(messagesBetween(r, escrow.address, owner.address)[0].value).toBe(maxAmount - fee);
        expect(messagesBetween(r, escrow.address, fx.treasury.address)[0].value).toBe(fee);
        expect(messagesBetween(r, escrow.address, provider.address)).toHaveLength(1);
        expect(messagesBetween(r, escrow.address, client.address).length).toBeGreaterThanOrEqual(1);
        expect((await provider.getInfo()).completedJobs).toBe(1n);
    });
});
