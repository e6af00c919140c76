// The gas table: every handler's gas, measured on its worst case, must equal
// gas/gas.json (a change fails CI until the table is updated on purpose with
// `npm run gas:update`) and must stay under the bound the contract charges for
// (contracts/constants.tact), or the fee checks would under-charge.
import '@ton/test-utils';
import { readFileSync, writeFileSync } from 'fs';
import path from 'path';
import { Address, beginCell, toNano } from '@ton/core';
import { internal, SendMessageResult } from '@ton/sandbox';
import {
    ALLOWLIST_MODEL,
    GAS_PROVIDER_APPLY_ATTESTATION,
    GAS_PROVIDER_JAIL,
    GAS_PROVIDER_SIMPLE,
    GAS_REGISTRY_ADMIN,
    GAS_REGISTRY_JAIL,
    GAS_REGISTRY_REGISTER,
    GAS_ESCROW_ENGAGED,
    GAS_ESCROW_OPEN,
    GAS_ESCROW_TRIGGER,
    GAS_PROVIDER_ENGAGE,
    GAS_PROVIDER_JOB_ENDED,
    GAS_ESCROW_DISPUTE,
    GAS_ESCROW_VERDICT,
    GAS_PROVIDER_SLASH,
    GAS_PROVIDER_PROOF,
    GAS_PROVIDER_RESTITUTE,
    GAS_CHANNEL_OPEN,
    GAS_CHANNEL_ENGAGED,
    GAS_CHANNEL_CLAIM,
    GAS_CHANNEL_TRIGGER,
    GAS_CHANNEL_DISPUTE,
    GAS_CHANNEL_VERDICT,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
    ENGAGED_MESSAGE_BITS,
    ENGAGED_MESSAGE_CELLS,
    JAIL_GOVERNANCE,
    MAX_ARBITERS,
    MAX_MODELS_PER_PROVIDER,
    PROVIDER_DEPLOY_BITS,
    PROVIDER_DEPLOY_CELLS,
    Registry,
    SMALL_MESSAGE_BITS,
    SMALL_MESSAGE_CELLS,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { defaultParams } from '../wrappers/params';
import { reattestMessage } from '../wrappers/attestation';
import { Escrow } from '../wrappers/Escrow';
import { proveEquivocationMessage, proveInvalidReceiptMessage, signReceipt, submitReceiptMessage } from '../wrappers/receipt';
import { buildChannelVerdict, buildVerdict, signVerdict, submitChannelVerdictMessage, submitVerdictMessage } from '../wrappers/verdict';
import { Channel } from '../wrappers/Channel';
import { claimChannelMessage, disputeChannelRequestMessage, proveChannelEquivocationMessage, signChannelReceipt } from '../wrappers/channelReceipt';
import { ReceiptChain } from './helpers/channel';
import { SandboxContract } from '@ton/sandbox';
import { bouncedApplyAttestation, deployFixture, sendRegister, signedFor, testEnclave, testKey } from './helpers/fixture';
import { cellStats, computeGas, txAt } from './helpers/tx';

const TABLE_PATH = path.join(__dirname, '..', 'gas', 'gas.json');

interface GasTable {
    compiler: string;
    note: string;
    gas: Record<string, number>;
    messages: Record<string, number>;
}

/** name -> [measured gas, the bound the contract charges for] */
const measured: Record<string, [number, bigint]> = {};
const sizes: Record<string, [number, bigint]> = {};

describe('gas table', () => {
    beforeAll(async () => {
        const fx = await deployFixture((treasury) =>
            // Worst case for parameter validation: a full arbiter set.
            defaultParams(
                treasury,
                Array.from({ length: Number(MAX_ARBITERS) }, (_, i) => testKey(`arbiter${i}`).publicKeyInt),
            ),
        );
        const { blockchain, registry, governance } = fx;
        const record = (name: string, gas: bigint, bound: bigint) => {
            if (process.env.GAS_DEBUG) console.log(name, gas);
            measured[name] = [Number(gas), bound];
        };
        const admin = toNano('0.05');

        // Registry deploy (a second deployment, measured from scratch).
        const other = blockchain.openContract(await Registry.fromInit(governance.address, fx.params, 5n));
        let r: SendMessageResult = await other.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
        record('registry.deploy', computeGas(txAt(r, other.address)), GAS_REGISTRY_ADMIN);

        const next = await blockchain.treasury('next');
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'ProposeOwner', queryId: 1n, newOwner: next.address });
        record('registry.proposeOwner', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        r = await registry.send(next.getSender(), { value: admin }, { $$type: 'AcceptOwnership', queryId: 1n });
        record('registry.acceptOwnership', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        r = await registry.send(next.getSender(), { value: admin }, { $$type: 'ProposeOwner', queryId: 1n, newOwner: governance.address });
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'AcceptOwnership', queryId: 1n });

        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'ProposeParams', queryId: 1n, params: fx.params });
        record('registry.proposeParams', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'CancelParams', queryId: 1n });
        record('registry.cancelParams', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        await registry.send(governance.getSender(), { value: admin }, { $$type: 'ProposeParams', queryId: 1n, params: fx.params });
        blockchain.now = blockchain.now! + Number(fx.params.timelock);
        r = await registry.send(next.getSender(), { value: admin }, { $$type: 'ExecuteParams', queryId: 1n });
        record('registry.executeParams', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        // From here on a proposal is pending, as it may be at any time: the
        // Registry's state is then at its largest, so every figure below is
        // its worst case (tests/fees.spec.ts runs the exact-fee chains so too).
        await registry.send(governance.getSender(), { value: admin }, { $$type: 'ProposeParams', queryId: 2n, params: fx.params });

        // The worst case of registration: the most models a provider may serve.
        const models = Array.from({ length: Number(MAX_MODELS_PER_PROVIDER) }, (_, i) => BigInt(5000 + i));
        for (const entry of models) {
            r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_MODEL, entry });
        }
        record('registry.allowlistAdd', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_MODEL, entry: 1n });
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'AllowlistRevoke', queryId: 1n, list: ALLOWLIST_MODEL, entry: 1n });
        record('registry.allowlistRevoke', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);
        blockchain.now = blockchain.now + Number(fx.params.timelock);

        const owner = await blockchain.treasury('alice');
        const enclave = testEnclave('alice');
        // Stake above the minimum, so the verdict slashes below leave it Active (and taking channels).
        r = await sendRegister(fx, owner, signedFor(fx, owner.address, enclave, { models }), { stake: fx.params.minProviderStake + toNano('10') });
        const providerAddress = await registry.getProviderAddress(owner.address);
        const provider = blockchain.openContract(Provider.fromAddress(providerAddress));
        record('registry.registerProvider', computeGas(txAt(r, registry.address)), GAS_REGISTRY_REGISTER);
        record('provider.applyAttestation.register', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_APPLY_ATTESTATION);
        // Size of the deploy message (StateInit + body), as forward fees count it.
        const deployMsg = txAt(r, providerAddress).inMessage!;
        const init = deployMsg.init!;
        const initCell = beginCell().storeMaybeRef(init.code).storeMaybeRef(init.data).endCell();
        const initStats = cellStats(initCell, true);
        const bodyStats = cellStats(deployMsg.body, false);
        sizes['provider.deploy.cells'] = [initStats.cells + bodyStats.cells, PROVIDER_DEPLOY_CELLS];
        sizes['provider.deploy.bits'] = [initStats.bits + bodyStats.bits, PROVIDER_DEPLOY_BITS];
        const reply = [...txAt(r, providerAddress).outMessages.values()][0];
        const replyStats = cellStats(reply.body, false);
        sizes['reply.cells'] = [replyStats.cells, SMALL_MESSAGE_CELLS];
        sizes['reply.bits'] = [replyStats.bits, SMALL_MESSAGE_BITS];

        r = await registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave, { models })));
        record('registry.reattest', computeGas(txAt(r, registry.address)), GAS_REGISTRY_REGISTER);
        record('provider.applyAttestation.reattest', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_APPLY_ATTESTATION);
        // Stake above the minimum, so the verdict slashes below leave it Active (and taking channels).
        r = await sendRegister(fx, owner, signedFor(fx, owner.address, enclave, { models }), { stake: fx.params.minProviderStake + toNano('10') });
        record('provider.applyAttestation.refused', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_APPLY_ATTESTATION);

        // ---- Escrow lifecycle: open, engage, receipt, release ----
        const client = await blockchain.treasury('client');
        const openFee = await provider.getEscrowOpenFee();
        const openEscrow = async (nonce: bigint, modelHash: bigint) => {
            const escrow = blockchain.openContract(await Escrow.fromInit(client.address, providerAddress, nonce));
            const res = await escrow.send(client.getSender(), { value: toNano('2') + openFee }, {
                $$type: 'OpenEscrow',
                queryId: 0n,
                requestHash: 1n,
                modelHash,
                maxAmount: toNano('2'),
                deadline: BigInt(blockchain.now! + 3600),
            });
            return { escrow, res };
        };
        const trigger = toNano('0.05');
        const receiptFields = (escrow: Address, engageId: bigint) => ({
            escrow,
            engageId,
            requestHash: 1n,
            responseHash: 2n,
            modelHash: models[0],
            inputUnits: 10n,
            outputUnits: 20n,
            amount: toNano('1'),
            finishedAt: blockchain.now!,
        });
        let { escrow, res } = await openEscrow(1n, models[0]);
        record('escrow.open', computeGas(txAt(res, escrow.address)), GAS_ESCROW_OPEN);
        record('provider.engage', computeGas(txAt(res, providerAddress)), GAS_PROVIDER_ENGAGE);
        record('escrow.engaged', computeGas(txAt(res, escrow.address, 1)), GAS_ESCROW_ENGAGED);
        const { escrow: expiring } = await openEscrow(2n, models[0]);
        const refusedOpen = await openEscrow(3n, 424242n);
        record('provider.engage.refused', computeGas(txAt(refusedOpen.res, providerAddress)), GAS_PROVIDER_ENGAGE);
        record('escrow.refused', computeGas(txAt(refusedOpen.res, refusedOpen.escrow.address, 1)), GAS_ESCROW_ENGAGED);
        const engaged = [...txAt(res, providerAddress).outMessages.values()][0];
        const engagedStats = cellStats(engaged.body, false);
        sizes['jobEngaged.cells'] = [engagedStats.cells, ENGAGED_MESSAGE_CELLS];
        sizes['jobEngaged.bits'] = [engagedStats.bits, ENGAGED_MESSAGE_BITS];
        const receipt = signReceipt(receiptFields(escrow.address, (await escrow.getInfo()).engageId), enclave.signing);
        res = await escrow.send(client.getSender(), { value: trigger }, submitReceiptMessage(receipt));
        record('escrow.submitReceipt', computeGas(txAt(res, escrow.address)), GAS_ESCROW_TRIGGER);
        blockchain.now = blockchain.now + Number(fx.params.disputeWindow);
        res = await escrow.send(client.getSender(), { value: trigger }, { $$type: 'Release', queryId: 0n });
        record('escrow.release', computeGas(txAt(res, escrow.address)), GAS_ESCROW_TRIGGER);
        record('provider.jobEnded.released', computeGas(txAt(res, providerAddress)), GAS_PROVIDER_JOB_ENDED);

        // (escrow #2 expired past its deadline during the dispute window above)
        res = await expiring.send(client.getSender(), { value: trigger }, { $$type: 'Refund', queryId: 0n });
        record('escrow.refund', computeGas(txAt(res, expiring.address)), GAS_ESCROW_TRIGGER);
        record('provider.jobEnded.expired', computeGas(txAt(res, providerAddress)), GAS_PROVIDER_JOB_ENDED);

        // ---- Disputes: a full arbiter set, every arbiter signing (the verdict's worst case) ----
        await registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, enclave, { models })));
        const arbiterKeys = Array.from({ length: Number(MAX_ARBITERS) }, (_, i) => testKey(`arbiter${i}`));
        const arbiterWallet = await blockchain.treasury('arbiters');
        const disputedEscrow = async (nonce: bigint) => {
            const { escrow: e } = await openEscrow(nonce, models[0]);
            const fields = receiptFields(e.address, (await e.getInfo()).engageId);
            await e.send(client.getSender(), { value: trigger }, submitReceiptMessage(signReceipt(fields, enclave.signing)));
            const bond = (await e.getInfo()).engagement!.disputeBond;
            const disputeRes = await e.send(client.getSender(), { value: bond + (await e.getDisputeFee()) }, { $$type: 'Dispute', queryId: 0n, reason: 1n, evidenceHash: 3n });
            return { e, fields, disputeRes };
        };
        const verdictOn = async (e: SandboxContract<Escrow>, outcome: bigint, slashAmount: bigint) => {
            const verdict = buildVerdict({ escrow: e.address, engageId: (await e.getInfo()).engageId, outcome, slashAmount, deadline: blockchain.now! + 600, feeTo: arbiterWallet.address });
            const signed = { verdict, signatures: new Map(arbiterKeys.map((k, i) => [i, signVerdict(verdict, k)])) };
            return e.send(client.getSender(), { value: await e.getVerdictFee() }, submitVerdictMessage(signed, fx.params.arbiters));
        };
        const won = await disputedEscrow(4n);
        expect(won.disputeRes.transactions).toHaveTransaction({ to: won.e.address, success: true });
        record('escrow.dispute', computeGas(txAt(won.disputeRes, won.e.address)), GAS_ESCROW_DISPUTE);
        res = await verdictOn(won.e, VERDICT_PROVIDER_WINS, 0n);
        expect(res.transactions).toHaveTransaction({ to: won.e.address, success: true });
        record('escrow.verdict.providerWins', computeGas(txAt(res, won.e.address)), GAS_ESCROW_VERDICT);
        const lost = await disputedEscrow(5n);
        res = await verdictOn(lost.e, VERDICT_CLIENT_WINS, toNano('1'));
        expect(res.transactions).toHaveTransaction({ to: providerAddress, success: true });
        record('escrow.verdict.clientWins', computeGas(txAt(res, lost.e.address)), GAS_ESCROW_VERDICT);
        record('provider.slash', computeGas(txAt(res, providerAddress)), GAS_PROVIDER_SLASH);

        // ---- Channels: open, engage, claims, a dispute each way, closes (full arbiter set) ----
        const channelOpenFee = await provider.getChannelOpenFee();
        const openChannel = async (nonce: bigint, modelHash = models[0]) => {
            const ch = blockchain.openContract(await Channel.fromInit(client.address, providerAddress, nonce));
            const r0 = await ch.send(client.getSender(), { value: toNano('10') + channelOpenFee }, {
                $$type: 'OpenChannel',
                queryId: 0n,
                modelHash,
                deposit: toNano('10'),
                expiresAt: BigInt(blockchain.now! + 3600),
            });
            const live = (await blockchain.getContract(ch.address)).accountState?.type === 'active';
            return { ch, r0, chain: new ReceiptChain(ch.address, live ? (await ch.getInfo()).openId : 0n, enclave.signing) };
        };
        const { ch, r0, chain } = await openChannel(1n);
        // A second channel, closed by the client's request and then a final receipt (before the clock moves on).
        const second = await openChannel(3n);
        record('channel.open', computeGas(txAt(r0, ch.address)), GAS_CHANNEL_OPEN);
        record('provider.engageChannel', computeGas(txAt(r0, providerAddress)), GAS_PROVIDER_ENGAGE);
        record('channel.engaged', computeGas(txAt(r0, ch.address, 1)), GAS_CHANNEL_ENGAGED);
        const refusedChannel = await openChannel(2n, 424242n);
        record('channel.refused', computeGas(txAt(refusedChannel.r0, refusedChannel.ch.address, 1)), GAS_CHANNEL_ENGAGED);
        const claimFee = await ch.getClaimFee();
        const channelTrigger = await ch.getTriggerFee();
        res = await ch.send(client.getSender(), { value: toNano('1') + channelTrigger }, { $$type: 'TopUpChannel', queryId: 0n, amount: toNano('1') });
        record('channel.topUp', computeGas(txAt(res, ch.address)), GAS_CHANNEL_TRIGGER);
        res = await second.ch.send(client.getSender(), { value: channelTrigger }, { $$type: 'RequestChannelClose', queryId: 0n });
        record('channel.requestClose', computeGas(txAt(res, second.ch.address)), GAS_CHANNEL_TRIGGER);
        second.chain.serve(toNano('0.1'));
        res = await second.ch.send(client.getSender(), { value: claimFee }, claimChannelMessage(second.chain.resign({ final: true })));
        expect(res.transactions).toHaveTransaction({ to: second.ch.address, success: true, endStatus: 'non-existing' });
        record('channel.claim.final', computeGas(txAt(res, second.ch.address)), GAS_CHANNEL_CLAIM);
        for (let i = 0; i < 3; i++) chain.serve(toNano('0.1'));
        res = await ch.send(client.getSender(), { value: claimFee }, claimChannelMessage(chain.steps[2].signed));
        record('channel.claim', computeGas(txAt(res, ch.address)), GAS_CHANNEL_CLAIM);
        const disputeValue = (await ch.getInfo()).engagement!.disputeBond + (await ch.getDisputeFee());
        const channelVerdict = async (c: typeof ch, outcome: bigint, slashAmount: bigint) => {
            const info = await c.getInfo();
            const verdict = buildChannelVerdict({ channel: c.address, openId: info.openId, seqno: info.lastDisputedSeqno, outcome, slashAmount, deadline: blockchain.now! + 600, feeTo: arbiterWallet.address });
            const signed = { verdict, signatures: new Map(arbiterKeys.map((k, i) => [i, signVerdict(verdict, k)])) };
            return c.send(client.getSender(), { value: await c.getVerdictFee() }, submitChannelVerdictMessage(signed, fx.params.arbiters));
        };
        chain.serve(toNano('0.2'));
        res = await ch.send(client.getSender(), { value: disputeValue }, disputeChannelRequestMessage(chain.steps[3].signed, chain.steps[3].step, 1, 7n));
        record('channel.dispute', computeGas(txAt(res, ch.address)), GAS_CHANNEL_DISPUTE);
        chain.serve(toNano('0.1'));
        // A claim while the dispute is pending also rewrites the dispute state (what it held back).
        res = await ch.send(client.getSender(), { value: claimFee }, claimChannelMessage(chain.steps[4].signed));
        record('channel.claim.withheld', computeGas(txAt(res, ch.address)), GAS_CHANNEL_CLAIM);
        res = await channelVerdict(ch, VERDICT_PROVIDER_WINS, 0n);
        expect(res.transactions).toHaveTransaction({ to: ch.address, success: true });
        record('channel.verdict.providerWins', computeGas(txAt(res, ch.address)), GAS_CHANNEL_VERDICT);
        chain.serve(toNano('0.1'));
        // Claimed before its dispute: the ClientWins verdict also asks the Provider for restitution (the worst case).
        await ch.send(client.getSender(), { value: claimFee }, claimChannelMessage(chain.steps[5].signed));
        res = await ch.send(client.getSender(), { value: disputeValue }, disputeChannelRequestMessage(chain.steps[5].signed, chain.steps[5].step, 1, 7n));
        res = await channelVerdict(ch, VERDICT_CLIENT_WINS, toNano('1'));
        expect(res.transactions).toHaveTransaction({ to: providerAddress, success: true });
        record('channel.verdict.clientWins', computeGas(txAt(res, ch.address)), GAS_CHANNEL_VERDICT);
        record('provider.restituteFromChannel', computeGas(txAt(res, providerAddress, 0)), GAS_PROVIDER_RESTITUTE);
        record('provider.slashFromChannel', computeGas(txAt(res, providerAddress, 1)), GAS_PROVIDER_SLASH);
        chain.serve(toNano('0.1'));
        // Claimed before its dispute too: the expiry also asks the Provider for restitution (its worst case).
        await ch.send(client.getSender(), { value: claimFee }, claimChannelMessage(chain.steps[6].signed));
        res = await ch.send(client.getSender(), { value: disputeValue }, disputeChannelRequestMessage(chain.steps[6].signed, chain.steps[6].step, 1, 7n));
        blockchain.now = Number((await ch.getInfo()).verdictBy) + 1;
        res = await ch.send(client.getSender(), { value: await ch.getExpireFee() }, { $$type: 'ExpireChannelDispute', queryId: 0n });
        expect(res.transactions).toHaveTransaction({ from: ch.address, to: providerAddress, success: true });
        record('channel.expireDispute', computeGas(txAt(res, ch.address)), GAS_CHANNEL_TRIGGER);
        // (past closeBy now) settle closes it and tells the Provider.
        res = await ch.send(client.getSender(), { value: channelTrigger }, { $$type: 'SettleChannel', queryId: 0n });
        record('channel.settle', computeGas(txAt(res, ch.address)), GAS_CHANNEL_TRIGGER);
        record('provider.channelEnded', computeGas(txAt(res, providerAddress)), GAS_PROVIDER_JOB_ENDED);

        r = await registry.send(governance.getSender(), { value: toNano('0.1') }, {
            $$type: 'JailProvider',
            queryId: 1n,
            providerOwner: owner.address,
            reason: JAIL_GOVERNANCE,
        });
        record('registry.jailProvider', computeGas(txAt(r, registry.address)), GAS_REGISTRY_JAIL);
        record('provider.jail', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_JAIL);
        const nobody = await blockchain.treasury('nobody');
        r = await registry.send(governance.getSender(), { value: toNano('0.1') }, {
            $$type: 'JailProvider',
            queryId: 1n,
            providerOwner: nobody.address,
            reason: JAIL_GOVERNANCE,
        });
        // The bounce is paid from the Provider hop's share of jailFee.
        record('registry.bounced.jail', computeGas(txAt(r, registry.address, 1)), GAS_PROVIDER_JAIL);

        r = await provider.send(next.getSender(), { value: toNano('2') }, { $$type: 'TopUpStake', queryId: 1n, amount: toNano('1') });
        record('provider.topUpStake', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_SIMPLE);
        r = await provider.send(owner.getSender(), { value: admin }, { $$type: 'SetPayoutAddress', queryId: 1n, payout: next.address });
        record('provider.setPayoutAddress', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_SIMPLE);
        r = await provider.send(owner.getSender(), { value: admin }, { $$type: 'RequestUnbond', queryId: 1n });
        record('provider.requestUnbond', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_SIMPLE);
        blockchain.now = blockchain.now + Number(fx.params.unbondingPeriod);
        r = await provider.send(owner.getSender(), { value: admin }, { $$type: 'WithdrawStake', queryId: 1n });
        record('provider.withdrawStake', computeGas(txAt(r, providerAddress)), GAS_PROVIDER_SIMPLE);

        r = await blockchain.sendMessage(
            internal({
                from: providerAddress,
                to: registry.address,
                value: toNano('100'),
                bounced: true,
                bounce: false,
                body: bouncedApplyAttestation(await registry.getParamsSnapshot(), 1n),
            }),
        );
        // Paid from the bounced value (the Provider hop's share of attestationFee).
        record('registry.bounced.applyAttestation', computeGas(txAt(r, registry.address)), GAS_PROVIDER_APPLY_ATTESTATION);
        r = await registry.send(governance.getSender(), { value: admin }, { $$type: 'SweepSurplus', queryId: 1n, to: governance.address });
        record('registry.sweepSurplus', computeGas(txAt(r, registry.address)), GAS_REGISTRY_ADMIN);

        // ---- Fault proofs (each burns the key, so each on a Provider of its own) ----
        const proofFee = await provider.getProofFee();
        const reporter = await blockchain.treasury('reporter');
        for (const [label, kind] of [['bob', 'equivocation'], ['carol', 'invalidReceipt'], ['dave', 'channelEquivocation']] as const) {
            const who = await blockchain.treasury(label);
            const theirEnclave = testEnclave(label);
            await sendRegister(fx, who, signedFor(fx, who.address, theirEnclave, { models }));
            const theirs = blockchain.openContract(Provider.fromAddress(await registry.getProviderAddress(who.address)));
            // (A proof needs no escrow: any address will do for the receipt's.)
            const fields = receiptFields(who.address, 1n);
            const channelFields = { channel: who.address, openId: 1n, seqno: 5n, amount: toNano('1'), requests: 5n, root: 9n, final: false };
            const body =
                kind === 'equivocation'
                    ? proveEquivocationMessage(signReceipt(fields, theirEnclave.signing), signReceipt({ ...fields, responseHash: 3n }, theirEnclave.signing))
                    : kind === 'invalidReceipt'
                      ? proveInvalidReceiptMessage(signReceipt({ ...fields, modelHash: 424242n }, theirEnclave.signing))
                      : proveChannelEquivocationMessage(
                            signChannelReceipt({ ...channelFields, seqno: 6n, amount: toNano('0.5') }, theirEnclave.signing),
                            signChannelReceipt(channelFields, theirEnclave.signing),
                        );
            r = await theirs.send(reporter.getSender(), { value: proofFee }, body);
            expect(r.transactions).toHaveTransaction({ to: theirs.address, success: true });
            record(`provider.prove${kind[0].toUpperCase()}${kind.slice(1)}`, computeGas(txAt(r, theirs.address)), GAS_PROVIDER_PROOF);
        }

        if (process.env.UPDATE_GAS_TABLE) {
            const table: GasTable = {
                compiler: 'tact 1.6.13',
                note: 'Gas units per handler, worst case (8 models, 16 arbiters). Written by `npm run gas:update`; asserted by tests/gas.spec.ts.',
                gas: Object.fromEntries(Object.entries(measured).map(([k, [v]]) => [k, v])),
                messages: Object.fromEntries(Object.entries(sizes).map(([k, [v]]) => [k, v])),
            };
            writeFileSync(TABLE_PATH, JSON.stringify(table, null, 2) + '\n');
        }
    });

    it('every handler costs exactly what gas/gas.json says', () => {
        const table = JSON.parse(readFileSync(TABLE_PATH, 'utf8')) as GasTable;
        const now = Object.fromEntries(Object.entries(measured).map(([k, [v]]) => [k, v]));
        expect(now).toEqual(table.gas);
        expect(Object.fromEntries(Object.entries(sizes).map(([k, [v]]) => [k, v]))).toEqual(table.messages);
    });

    it('every handler stays under the gas bound its fee check charges for', () => {
        for (const [name, [gas, bound]] of Object.entries(measured)) {
            expect({ name, within: BigInt(gas) <= bound }).toEqual({ name, within: true });
        }
    });

    it('message sizes stay under the bounds used for forward fees', () => {
        for (const [name, [size, bound]] of Object.entries(sizes)) {
            expect({ name, within: BigInt(size) <= bound }).toEqual({ name, within: true });
        }
    });
});
