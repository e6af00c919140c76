import '@ton/test-utils';
import { Address, beginCell, Cell, Dictionary, toNano } from '@ton/core';
import { internal, SandboxContract, TreasuryContract } from '@ton/sandbox';
import {
    ALLOWLIST_MEASUREMENT,
    ALLOWLIST_MODEL,
    ALLOWLIST_VERIFIER,
    ERR_ALLOWLIST_FULL,
    ERR_ALREADY_LISTED,
    ERR_ATTESTATION_EXPIRED,
    ERR_ATTESTATION_NOT_FRESH,
    ERR_BAD_ALLOWLIST,
    ERR_BAD_ARBITERS,
    ERR_BAD_MODEL_COUNT,
    ERR_BAD_PARAM,
    ERR_BAD_PROTOCOL_FEE,
    ERR_BAD_REASON,
    ERR_BAD_SIGNATURE,
    ERR_BAD_TAG,
    ERR_BAD_TIMELOCK,
    ERR_BAD_UNBONDING,
    ERR_INSUFFICIENT_VALUE,
    ERR_MEASUREMENT_NOT_ALLOWED,
    ERR_MODEL_NOT_ALLOWED,
    ERR_NO_PROPOSAL,
    ERR_NO_SURPLUS,
    ERR_NOT_LISTED,
    ERR_NOT_OWNER,
    ERR_NOT_PENDING_OWNER,
    ERR_PROPOSAL_EXPIRED,
    ERR_PROPOSAL_PENDING,
    ERR_STAKE_TOO_LOW,
    ERR_TIMELOCK_ACTIVE,
    ERR_UNKNOWN_VERIFIER,
    ERR_WRONG_PROVIDER_OWNER,
    ERR_WRONG_REGISTRY,
    JAIL_GOVERNANCE,
    MAX_ALLOWLIST_ENTRIES,
    MAX_ARBITERS,
    MAX_ATTESTATION_AGE,
    MAX_MODELS_PER_PROVIDER,
    MAX_PROTOCOL_FEE_BPS,
    MAX_TIMELOCK,
    MAX_UNBONDING_PERIOD,
    MAX_VERIFIER_KEYS,
    MIN_TIMELOCK,
    Params,
    PROPOSAL_GRACE_PERIOD,
    PROVIDER_STORAGE_RESERVE,
    REFUSED_ALREADY_REGISTERED,
    REFUSED_NOT_REGISTERED,
    Registry,
    REGISTRY_STORAGE_RESERVE,
    STATUS_ACTIVE,
    STATUS_EXITED,
    STATUS_JAILED,
    STATUS_NONE,
    STATUS_UNBONDING,
    ParamsSnapshot,
    storeAttestationStatement,
    storeParamsSnapshot,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { arbiterDictionary, defaultParams } from '../wrappers/params';
import { buildStatement, reattestMessage, SignedStatement } from '../wrappers/attestation';
import { signHash } from '../wrappers/ed25519';
import {
    bouncedApplyAttestation,
    claimsFor,
    deployFixture,
    Fixture,
    MEASUREMENT,
    MODEL_A,
    MODEL_B,
    registerProvider,
    sendRegister,
    signedFor,
    T0,
    testEnclave,
    testKey,
} from './helpers/fixture';
import { feesPaidBySender, messagesBetween, storageFees } from './helpers/tx';

const ADMIN_VALUE = toNano('0.05');
const code = (c: bigint) => Number(c);
const snapshotCell = (s: ParamsSnapshot) => beginCell().store(storeParamsSnapshot(s)).endCell();

/**
 * The Registry keeps what it held before a message (less the rent it paid),
 * and never less than its reserve. Returns what the message's sender paid to
 * top it back up to the reserve.
 */
function expectRegistryKept(before: bigint, after: bigint, rent: bigint): bigint {
    const kept = before - rent;
    expect(after).toBe(kept < REGISTRY_STORAGE_RESERVE ? REGISTRY_STORAGE_RESERVE : kept);
    return after - kept;
}

describe('Registry', () => {
    let fx: Fixture;
    let registry: SandboxContract<Registry>;
    let governance: SandboxContract<TreasuryContract>;
    let outsider: SandboxContract<TreasuryContract>;

    beforeEach(async () => {
        fx = await deployFixture();
        registry = fx.registry;
        governance = fx.governance;
        outsider = await fx.blockchain.treasury('outsider');
    });

    async function expectRejected(
        sender: SandboxContract<TreasuryContract>,
        value: bigint,
        body: Parameters<SandboxContract<Registry>['send']>[2],
        exitCode: bigint,
    ) {
        const before = (await fx.blockchain.getContract(registry.address)).balance;
        const r = await registry.send(sender.getSender(), { value }, body);
        expect(r.transactions).toHaveTransaction({ from: sender.address, to: registry.address, success: false, exitCode: code(exitCode) });
        // The value bounces back to the sender; the Registry keeps nothing of it.
        expect(r.transactions).toHaveTransaction({ from: registry.address, to: sender.address, inMessageBounced: true });
        expect((await fx.blockchain.getContract(registry.address)).balance).toBeLessThanOrEqual(before);
        return r;
    }

    describe('deployment', () => {
        it('stores owner and params and keeps only its storage reserve', async () => {
            expect((await registry.getOwner()).equals(governance.address)).toBe(true);
            expect(await registry.getPendingOwner()).toBeNull();
            const params = await registry.getParams();
            expect(params.minProviderStake).toBe(fx.params.minProviderStake);
            expect(params.timelock).toBe(fx.params.timelock);
            expect(params.treasury.equals(fx.treasury.address)).toBe(true);
            const balance = (await fx.blockchain.getContract(registry.address)).balance;
            // Deployed with 1 TON; it keeps the reserve (minus the storage fees since) and returns the rest.
            expect(balance).toBeLessThanOrEqual(REGISTRY_STORAGE_RESERVE);
            expect(balance).toBeGreaterThan(REGISTRY_STORAGE_RESERVE - toNano('0.001'));
        });

        it('refuses to deploy with invalid params (the deploy bounces)', async () => {
            const bad = { ...defaultParams(fx.treasury.address), timelock: 10n };
            const r2 = fx.blockchain.openContract(await Registry.fromInit(governance.address, bad, 99n));
            const r = await r2.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
            expect(r.transactions).toHaveTransaction({ to: r2.address, success: false, exitCode: code(ERR_BAD_TIMELOCK) });
            // The value came back; Tact's lazy init leaves only inert init data behind.
            expect(r.transactions).toHaveTransaction({ from: r2.address, to: governance.address, inMessageBounced: true });
            expect((await fx.blockchain.getContract(r2.address)).balance).toBe(0n);
        });

        it('rejects plain transfers and unknown messages, returning the value', async () => {
            const r = await outsider.send({ to: registry.address, value: toNano('1') });
            expect(r.transactions).toHaveTransaction({ to: registry.address, success: false });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: outsider.address, inMessageBounced: true });
            const r2 = await outsider.send({ to: registry.address, value: toNano('1'), body: beginCell().storeUint(0x7777, 32).endCell() });
            expect(r2.transactions).toHaveTransaction({ to: registry.address, success: false, exitCode: 130 });
        });
    });

    describe('ownership', () => {
        it('transfers in two steps', async () => {
            const next = await fx.blockchain.treasury('next-owner');
            const r = await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeOwner', queryId: 1n, newOwner: next.address });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: governance.address, success: true });
            expect((await registry.getPendingOwner())!.equals(next.address)).toBe(true);
            expect((await registry.getOwner()).equals(governance.address)).toBe(true);

            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'AcceptOwnership', queryId: 2n }, ERR_NOT_PENDING_OWNER);
            await registry.send(next.getSender(), { value: ADMIN_VALUE }, { $$type: 'AcceptOwnership', queryId: 2n });
            expect((await registry.getOwner()).equals(next.address)).toBe(true);
            expect(await registry.getPendingOwner()).toBeNull();

            // The old owner has lost its powers.
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'CancelParams', queryId: 3n }, ERR_NOT_OWNER);
        });

        it('only the owner proposes, with enough value', async () => {
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'ProposeOwner', queryId: 1n, newOwner: outsider.address }, ERR_NOT_OWNER);
            await expectRejected(
                governance,
                (await registry.getAdminFee()) - 1n,
                { $$type: 'ProposeOwner', queryId: 1n, newOwner: outsider.address },
                ERR_INSUFFICIENT_VALUE,
            );
        });

        it('proposing the current owner clears a pending proposal', async () => {
            const next = await fx.blockchain.treasury('next-owner');
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeOwner', queryId: 1n, newOwner: next.address });
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeOwner', queryId: 2n, newOwner: governance.address });
            expect(await registry.getPendingOwner()).toBeNull();
            await expectRejected(next, ADMIN_VALUE, { $$type: 'AcceptOwnership', queryId: 3n }, ERR_NOT_PENDING_OWNER);
        });

        it('AcceptOwnership with nobody proposed is rejected', async () => {
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AcceptOwnership', queryId: 1n }, ERR_NOT_PENDING_OWNER);
        });
    });

    describe('timelocked parameters', () => {
        const changed = (treasury: Address): Params => ({ ...defaultParams(treasury), protocolFeeBps: 250n, minProviderStake: toNano('200') });

        it('applies a proposal only after the timelock, and anyone may execute it', async () => {
            const proposal = changed(fx.treasury.address);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: proposal });
            const proposedAt = fx.blockchain.now!;
            expect((await registry.getPendingParams())!.protocolFeeBps).toBe(250n);
            expect(await registry.getPendingExecutableAt()).toBe(BigInt(proposedAt) + fx.params.timelock);

            fx.blockchain.now = proposedAt + Number(fx.params.timelock) - 1;
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'ExecuteParams', queryId: 2n }, ERR_TIMELOCK_ACTIVE);

            fx.blockchain.now = proposedAt + Number(fx.params.timelock);
            const r = await registry.send(outsider.getSender(), { value: ADMIN_VALUE }, { $$type: 'ExecuteParams', queryId: 2n });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: outsider.address, success: true });
            expect((await registry.getParams()).protocolFeeBps).toBe(250n);
            expect((await registry.getParamsSnapshot()).minProviderStake).toBe(toNano('200'));
            expect(await registry.getPendingParams()).toBeNull();
            expect(await registry.getPendingExecutableAt()).toBe(0n);
        });

        it('holds one proposal at a time; cancel drops it', async () => {
            const proposal = changed(fx.treasury.address);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: proposal });
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'ProposeParams', queryId: 2n, params: proposal }, ERR_PROPOSAL_PENDING);
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'CancelParams', queryId: 3n }, ERR_NOT_OWNER);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'CancelParams', queryId: 3n });
            expect(await registry.getPendingParams()).toBeNull();
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'CancelParams', queryId: 4n }, ERR_NO_PROPOSAL);
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'ExecuteParams', queryId: 5n }, ERR_NO_PROPOSAL);
        });

        it('a ready proposal expires after the grace period', async () => {
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: changed(fx.treasury.address) });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock) + Number(PROPOSAL_GRACE_PERIOD) + 1;
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'ExecuteParams', queryId: 2n }, ERR_PROPOSAL_EXPIRED);
        });

        it('a new timelock only counts once executed under the old one', async () => {
            const longer = { ...defaultParams(fx.treasury.address), timelock: 3n * 86400n };
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: longer });
            expect(await registry.getPendingExecutableAt()).toBe(BigInt(fx.blockchain.now!) + fx.params.timelock);
            expect((await registry.getPendingParams())!.timelock).toBe(3n * 86400n);
        });

        it('only the owner proposes', async () => {
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'ProposeParams', queryId: 1n, params: changed(fx.treasury.address) }, ERR_NOT_OWNER);
        });

        const keys = Array.from({ length: 17 }, (_, i) => testKey(`arbiter${i}`).publicKeyInt);
        const invalid: [string, (p: Params) => Params, bigint][] = [
            ['timelock below the minimum', (p) => ({ ...p, timelock: MIN_TIMELOCK - 1n }), ERR_BAD_TIMELOCK],
            ['timelock above the maximum', (p) => ({ ...p, timelock: MAX_TIMELOCK + 1n }), ERR_BAD_TIMELOCK],
            ['protocol fee above the maximum', (p) => ({ ...p, protocolFeeBps: MAX_PROTOCOL_FEE_BPS + 1n }), ERR_BAD_PROTOCOL_FEE],
            ['zero minimum stake', (p) => ({ ...p, minProviderStake: 0n }), ERR_BAD_PARAM],
            ['zero attestation age', (p) => ({ ...p, attestationMaxAge: 0n }), ERR_BAD_PARAM],
            ['attestation age above the maximum', (p) => ({ ...p, attestationMaxAge: MAX_ATTESTATION_AGE + 1n }), ERR_BAD_PARAM],
            ['zero job duration', (p) => ({ ...p, maxJobDuration: 0n }), ERR_BAD_PARAM],
            ['zero dispute window', (p) => ({ ...p, disputeWindow: 0n }), ERR_BAD_PARAM],
            ['zero verdict window', (p) => ({ ...p, verdictWindow: 0n }), ERR_BAD_PARAM],
            ['zero dispute bond', (p) => ({ ...p, disputeBond: 0n }), ERR_BAD_PARAM],
            [
                'unbonding not longer than job + dispute + verdict',
                (p) => ({ ...p, unbondingPeriod: p.maxJobDuration + p.disputeWindow + p.verdictWindow }),
                ERR_BAD_UNBONDING,
            ],
            ['unbonding above the maximum', (p) => ({ ...p, unbondingPeriod: MAX_UNBONDING_PERIOD + 1n }), ERR_BAD_UNBONDING],
            ['quorum without arbiters', (p) => ({ ...p, arbiterQuorum: 1n }), ERR_BAD_ARBITERS],
            ['quorum not a majority', (p) => ({ ...p, arbiters: arbiterDictionary(keys.slice(0, 4)), arbiterQuorum: 2n }), ERR_BAD_ARBITERS],
            ['quorum above the set', (p) => ({ ...p, arbiters: arbiterDictionary(keys.slice(0, 3)), arbiterQuorum: 4n }), ERR_BAD_ARBITERS],
            [
                'too many arbiters',
                (p) => ({ ...p, arbiters: arbiterDictionary(keys.slice(0, Number(MAX_ARBITERS) + 1)), arbiterQuorum: 9n }),
                ERR_BAD_ARBITERS,
            ],
            [
                'arbiter indexes with a gap',
                (p) => {
                    const d = Dictionary.empty(Dictionary.Keys.Uint(8), Dictionary.Values.BigUint(256));
                    d.set(0, keys[0]);
                    d.set(2, keys[1]);
                    return { ...p, arbiters: d, arbiterQuorum: 2n };
                },
                ERR_BAD_ARBITERS,
            ],
        ];
        it.each(invalid)('rejects %s', async (_name, mutate, exitCode) => {
            const params = mutate(defaultParams(fx.treasury.address));
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'ProposeParams', queryId: 1n, params }, exitCode);
        });

        it('accepts the boundary values', async () => {
            const p = defaultParams(fx.treasury.address, keys.slice(0, Number(MAX_ARBITERS)));
            const edge: Params = {
                ...p,
                timelock: MAX_TIMELOCK,
                protocolFeeBps: MAX_PROTOCOL_FEE_BPS,
                attestationMaxAge: MAX_ATTESTATION_AGE,
                unbondingPeriod: p.maxJobDuration + p.disputeWindow + p.verdictWindow + 1n,
                arbiterQuorum: 9n,
            };
            const r = await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: edge });
            expect(r.transactions).toHaveTransaction({ to: registry.address, success: true });
        });
    });

    describe('allowlists', () => {
        const entry = 0xabcdefn;

        it('an addition waits out the timelock; a revocation acts at once', async () => {
            for (const list of [ALLOWLIST_MEASUREMENT, ALLOWLIST_MODEL, ALLOWLIST_VERIFIER]) {
                const addedAt = fx.blockchain.now!;
                await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistAdd', queryId: 1n, list, entry });
                expect(await registry.getAllowlistEntry(list, entry)).toBe(BigInt(addedAt) + fx.params.timelock);
                expect(await registry.getIsAllowed(list, entry)).toBe(false);
                fx.blockchain.now = addedAt + Number(fx.params.timelock);
                expect(await registry.getIsAllowed(list, entry)).toBe(true);
                await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistRevoke', queryId: 2n, list, entry });
                expect(await registry.getAllowlistEntry(list, entry)).toBeNull();
                expect(await registry.getIsAllowed(list, entry)).toBe(false);
            }
            const counts = await registry.getCounts();
            expect([counts.measurements, counts.models, counts.verifiers]).toEqual([1n, 2n, 1n]);
        });

        it('rejects duplicates, unknown entries, unknown lists and outsiders', async () => {
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_MODEL, entry: MODEL_A }, ERR_ALREADY_LISTED);
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistRevoke', queryId: 1n, list: ALLOWLIST_MODEL, entry }, ERR_NOT_LISTED);
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistAdd', queryId: 1n, list: 3n, entry }, ERR_BAD_ALLOWLIST);
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistRevoke', queryId: 1n, list: 3n, entry }, ERR_BAD_ALLOWLIST);
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_MODEL, entry }, ERR_NOT_OWNER);
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'AllowlistRevoke', queryId: 1n, list: ALLOWLIST_MODEL, entry: MODEL_A }, ERR_NOT_OWNER);
        });

        it('verifier keys are bounded', async () => {
            for (let i = 1; i < Number(MAX_VERIFIER_KEYS); i++) {
                await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_VERIFIER, entry: BigInt(i) });
            }
            expect((await registry.getCounts()).verifiers).toBe(MAX_VERIFIER_KEYS);
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_VERIFIER, entry: 999n }, ERR_ALLOWLIST_FULL);
        });

        it('measurement and model lists are bounded', async () => {
            for (const [list, start] of [
                [ALLOWLIST_MEASUREMENT, 1],
                [ALLOWLIST_MODEL, 2],
            ] as const) {
                for (let i = start; i < Number(MAX_ALLOWLIST_ENTRIES); i++) {
                    await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistAdd', queryId: 1n, list, entry: BigInt(i) });
                }
                await expectRejected(governance, ADMIN_VALUE, { $$type: 'AllowlistAdd', queryId: 1n, list, entry: 100000n }, ERR_ALLOWLIST_FULL);
            }
            const counts = await registry.getCounts();
            expect([counts.measurements, counts.models]).toEqual([MAX_ALLOWLIST_ENTRIES, MAX_ALLOWLIST_ENTRIES]);
        });
    });

    describe('provider registration', () => {
        let alice: SandboxContract<TreasuryContract>;

        beforeEach(async () => {
            alice = await fx.blockchain.treasury('alice');
        });

        async function expectRegisterRejected(signed: SignedStatement, exitCode: bigint, opts: { stake?: bigint; value?: bigint; from?: SandboxContract<TreasuryContract> } = {}) {
            const from = opts.from ?? alice;
            const r = await sendRegister(fx, from, signed, opts);
            expect(r.transactions).toHaveTransaction({ from: from.address, to: registry.address, success: false, exitCode: code(exitCode) });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: from.address, inMessageBounced: true });
            const providerAddress = await registry.getProviderAddress(from.address);
            expect(r.transactions).not.toHaveTransaction({ to: providerAddress });
            return r;
        }

        it('deploys the Provider with the stake, keys, models and a parameter snapshot', async () => {
            const enclave = testEnclave('alice');
            const signed = signedFor(fx, alice.address, enclave);
            const fee = await registry.getAttestationFee();
            const stake = toNano('150');
            const registryBefore = (await fx.blockchain.getContract(registry.address)).balance;
            const aliceBefore = await alice.getBalance();
            const r = await sendRegister(fx, alice, signed, { stake, value: stake + fee + toNano('1') });
            const providerAddress = await registry.getProviderAddress(alice.address);
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: providerAddress, deploy: true, success: true });
            expect(r.transactions).toHaveTransaction({ from: providerAddress, to: alice.address, op: 0xd53276db });

            const provider = fx.blockchain.openContract(Provider.fromAddress(providerAddress));
            const info = await provider.getInfo();
            expect(info.status).toBe(STATUS_ACTIVE);
            expect(info.stake).toBe(stake);
            expect(info.owner.equals(alice.address)).toBe(true);
            expect(info.payout.equals(alice.address)).toBe(true);
            expect(info.registry.equals(registry.address)).toBe(true);
            expect(info.enclave.signingKey).toBe(enclave.signing.publicKeyInt);
            expect(info.enclave.encryptionKey).toBe(enclave.encryptionKey);
            expect(info.enclave.measurement).toBe(MEASUREMENT);
            expect(info.enclave.reportHash).toBe(enclave.reportHash);
            expect(info.attestationValidUntil).toBe(BigInt(fx.blockchain.now! + 86400));
            expect(info.modelCount).toBe(2n);
            expect(await provider.getServesModel(MODEL_A)).toBe(true);
            expect(await provider.getServesModel(MODEL_B)).toBe(true);
            expect(await provider.getServesModel(123n)).toBe(false);
            expect(snapshotCell(info.snapshot!).equals(snapshotCell(await registry.getParamsSnapshot()))).toBe(true);
            expect(await provider.getAcceptsJobs()).toBe(true);

            // Every nanoton is accounted for: the Provider holds exactly stake + reserve,
            // the Registry's balance is unchanged, the rest came back to Alice or paid fees.
            const providerBalance = (await fx.blockchain.getContract(providerAddress)).balance;
            expect(providerBalance).toBe(stake + PROVIDER_STORAGE_RESERVE);
            // The Registry pays its storage rent and keeps its reserve: the rent
            // that took it below the reserve is topped up from the fee's rent margin.
            const registryTopUp = expectRegistryKept(registryBefore, (await fx.blockchain.getContract(registry.address)).balance, storageFees(r));
            const aliceSpent = aliceBefore - (await alice.getBalance());
            expect(aliceSpent).toBe(providerBalance + feesPaidBySender(r) + registryTopUp);
        });

        it('sends payments to a payout address when one is given', async () => {
            const payout = await fx.blockchain.treasury('alice-payout');
            await sendRegister(fx, alice, signedFor(fx, alice.address, testEnclave('alice')), { payout: payout.address });
            const provider = fx.blockchain.openContract(Provider.fromAddress(await registry.getProviderAddress(alice.address)));
            expect((await provider.getInfo()).payout.equals(payout.address)).toBe(true);
        });

        it('rejects too little value or stake', async () => {
            const signed = signedFor(fx, alice.address, testEnclave('alice'));
            const fee = await registry.getAttestationFee();
            const stake = fx.params.minProviderStake;
            await expectRegisterRejected(signed, ERR_INSUFFICIENT_VALUE, { stake, value: stake + fee - 1n });
            await expectRegisterRejected(signed, ERR_STAKE_TOO_LOW, { stake: stake - 1n });
        });

        it('rejects statements from unknown or not yet active verifier keys', async () => {
            const rogue = testKey('rogue-verifier');
            const claims = claimsFor(fx, alice.address, testEnclave('alice'));
            const statement = buildStatement(claims);
            const bySigner = { statement, signature: signHash(statement.hash(), rogue), verifierKey: rogue.publicKeyInt };
            await expectRegisterRejected(bySigner, ERR_UNKNOWN_VERIFIER);
            // Listed, but its timelock has not passed yet.
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_VERIFIER, entry: rogue.publicKeyInt });
            await expectRegisterRejected(bySigner, ERR_UNKNOWN_VERIFIER);
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            const fresh = buildStatement(claimsFor(fx, alice.address, testEnclave('alice')));
            const r = await sendRegister(fx, alice, { statement: fresh, signature: signHash(fresh.hash(), rogue), verifierKey: rogue.publicKeyInt });
            expect(r.transactions).toHaveTransaction({ from: registry.address, deploy: true, success: true });
        });

        it('rejects a bad signature, a tampered statement and a signature by another key', async () => {
            const signed = signedFor(fx, alice.address, testEnclave('alice'));
            const flipped = Buffer.from(signed.signature);
            flipped[0] ^= 1;
            await expectRegisterRejected({ ...signed, signature: flipped }, ERR_BAD_SIGNATURE);
            const tampered = buildStatement(claimsFor(fx, alice.address, testEnclave('mallory')));
            await expectRegisterRejected({ ...signed, statement: tampered }, ERR_BAD_SIGNATURE);
            const byEnclave = signHash(signed.statement.hash(), testEnclave('alice').signing);
            await expectRegisterRejected({ ...signed, signature: byEnclave }, ERR_BAD_SIGNATURE);
        });

        it('rejects a statement with another domain tag', async () => {
            const claims = claimsFor(fx, alice.address, testEnclave('alice'));
            const models = Dictionary.empty(Dictionary.Keys.BigUint(256), Dictionary.Values.Bool());
            models.set(MODEL_A, true);
            const statement = beginCell()
                .store(
                    storeAttestationStatement({
                        $$type: 'AttestationStatement',
                        tag: 0x72637074n, // "rcpt": a receipt tag must never pass as an attestation
                        registry: claims.registry,
                        providerOwner: claims.providerOwner,
                        issuedAt: BigInt(claims.issuedAt),
                        validUntil: BigInt(claims.validUntil),
                        models,
                        enclave: { $$type: 'EnclaveIdentity', ...claims.enclave },
                    }),
                )
                .endCell();
            await expectRegisterRejected({ statement, signature: signHash(statement.hash(), fx.verifier), verifierKey: fx.verifier.publicKeyInt }, ERR_BAD_TAG);
        });

        it('rejects a statement for another deployment or another owner', async () => {
            const other = fx.blockchain.openContract(await Registry.fromInit(governance.address, fx.params, 1n));
            await other.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice'), { registry: other.address }), ERR_WRONG_REGISTRY);
            const bob = await fx.blockchain.treasury('bob');
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice')), ERR_WRONG_PROVIDER_OWNER, { from: bob });
        });

        it('checks freshness against the maximum age', async () => {
            const now = fx.blockchain.now!;
            const maxAge = Number(fx.params.attestationMaxAge);
            const e = testEnclave('alice');
            await expectRegisterRejected(signedFor(fx, alice.address, e, { issuedAt: now - 100, validUntil: now }), ERR_ATTESTATION_EXPIRED);
            await expectRegisterRejected(signedFor(fx, alice.address, e, { issuedAt: now + 1, validUntil: now + 100 }), ERR_ATTESTATION_NOT_FRESH);
            await expectRegisterRejected(signedFor(fx, alice.address, e, { issuedAt: now - 1, validUntil: now + maxAge }), ERR_ATTESTATION_NOT_FRESH);
            const r = await sendRegister(fx, alice, signedFor(fx, alice.address, e, { issuedAt: now, validUntil: now + maxAge }));
            expect(r.transactions).toHaveTransaction({ from: registry.address, deploy: true, success: true });
        });

        it('rejects unlisted or revoked measurements and models', async () => {
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice', 42n)), ERR_MEASUREMENT_NOT_ALLOWED);
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice'), { models: [MODEL_A, 42n] }), ERR_MODEL_NOT_ALLOWED);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistRevoke', queryId: 1n, list: ALLOWLIST_MODEL, entry: MODEL_B });
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice')), ERR_MODEL_NOT_ALLOWED);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistRevoke', queryId: 1n, list: ALLOWLIST_MEASUREMENT, entry: MEASUREMENT });
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice'), { models: [MODEL_A] }), ERR_MEASUREMENT_NOT_ALLOWED);
        });

        it('rejects an empty model list and one longer than the maximum', async () => {
            const claims = claimsFor(fx, alice.address, testEnclave('alice'));
            const statement = beginCell()
                .store(
                    storeAttestationStatement({
                        $$type: 'AttestationStatement',
                        tag: 0x61747374n,
                        registry: claims.registry,
                        providerOwner: claims.providerOwner,
                        issuedAt: BigInt(claims.issuedAt),
                        validUntil: BigInt(claims.validUntil),
                        models: Dictionary.empty(Dictionary.Keys.BigUint(256), Dictionary.Values.Bool()),
                        enclave: { $$type: 'EnclaveIdentity', ...claims.enclave },
                    }),
                )
                .endCell();
            await expectRegisterRejected({ statement, signature: signHash(statement.hash(), fx.verifier), verifierKey: fx.verifier.publicKeyInt }, ERR_BAD_MODEL_COUNT);

            const many = Array.from({ length: Number(MAX_MODELS_PER_PROVIDER) + 1 }, (_, i) => BigInt(1000 + i));
            for (const m of many) {
                await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'AllowlistAdd', queryId: 1n, list: ALLOWLIST_MODEL, entry: m });
            }
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            await expectRegisterRejected(signedFor(fx, alice.address, testEnclave('alice'), { models: many }), ERR_BAD_MODEL_COUNT);
            const r = await sendRegister(fx, alice, signedFor(fx, alice.address, testEnclave('alice'), { models: many.slice(1) }));
            expect(r.transactions).toHaveTransaction({ from: registry.address, deploy: true, success: true });
        });

        it('a second registration while live is refused by the Provider and refunded', async () => {
            const { owner, provider } = await registerProvider(fx, 'alice');
            const before = await owner.getBalance();
            const stake = fx.params.minProviderStake;
            const r = await sendRegister(fx, owner, signedFor(fx, owner.address, testEnclave('alice-2')), { stake });
            const refunds = messagesBetween(r, provider.address, owner.address);
            expect(refunds).toHaveLength(1);
            const body = refunds[0].body.beginParse();
            expect(body.loadUint(32)).toBe(0x20000020); // RegistrationRefused
            body.loadUintBig(64);
            expect(body.loadUintBig(8)).toBe(REFUSED_ALREADY_REGISTERED);
            expect((await provider.getInfo()).stake).toBe(stake);
            expect((await provider.getInfo()).enclave.signingKey).toBe(testEnclave('alice').signing.publicKeyInt);
            // Alice lost only the network fees.
            expect(before - (await owner.getBalance())).toBe(feesPaidBySender(r));
        });
    });

    describe('re-attestation', () => {
        it('renews keys, models, validity and the parameter snapshot, and adds stake', async () => {
            const { owner, provider } = await registerProvider(fx, 'alice');
            // Governance changes the parameters; the Provider picks them up on re-attestation.
            const newParams = { ...defaultParams(fx.treasury.address), protocolFeeBps: 300n };
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'ProposeParams', queryId: 1n, params: newParams });
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.timelock);
            await registry.send(outsider.getSender(), { value: ADMIN_VALUE }, { $$type: 'ExecuteParams', queryId: 2n });
            expect((await provider.getInfo()).snapshot!.protocolFeeBps).toBe(100n);

            const enclave = testEnclave('alice-v2');
            const signed = signedFor(fx, owner.address, enclave, { models: [MODEL_B] });
            const extra = toNano('5');
            const r = await registry.send(owner.getSender(), { value: extra + (await registry.getAttestationFee()) }, reattestMessage(signed, extra, 3n));
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: provider.address, success: true });
            const info = await provider.getInfo();
            expect(info.enclave.signingKey).toBe(enclave.signing.publicKeyInt);
            expect(info.modelCount).toBe(1n);
            expect(await provider.getServesModel(MODEL_A)).toBe(false);
            expect(info.snapshot!.protocolFeeBps).toBe(300n);
            expect(info.stake).toBe(fx.params.minProviderStake + extra);
            expect(info.attestationValidUntil).toBe(BigInt(fx.blockchain.now + 86400));
            expect((await fx.blockchain.getContract(provider.address)).balance).toBe(info.stake + PROVIDER_STORAGE_RESERVE);
        });

        it('before any registration is refused and refunded', async () => {
            const bob = await fx.blockchain.treasury('bob');
            const signed = signedFor(fx, bob.address, testEnclave('bob'));
            const before = await bob.getBalance();
            const registryBefore = (await fx.blockchain.getContract(registry.address)).balance;
            const r = await registry.send(bob.getSender(), { value: toNano('3') + (await registry.getAttestationFee()) }, reattestMessage(signed, toNano('3')));
            const providerAddress = await registry.getProviderAddress(bob.address);
            const refunds = messagesBetween(r, providerAddress, bob.address);
            expect(refunds).toHaveLength(1);
            const body = refunds[0].body.beginParse();
            expect(body.loadUint(32)).toBe(0x20000020);
            body.loadUintBig(64);
            expect(body.loadUintBig(8)).toBe(REFUSED_NOT_REGISTERED);
            const provider = fx.blockchain.openContract(Provider.fromAddress(providerAddress));
            expect(await provider.getStatus()).toBe(STATUS_NONE);
            // Bob pays the fees, the new contract's storage reserve and the Registry's rent top-up, nothing more.
            const registryTopUp = expectRegistryKept(registryBefore, (await fx.blockchain.getContract(registry.address)).balance, storageFees(r));
            expect(before - (await bob.getBalance())).toBe(feesPaidBySender(r) + PROVIDER_STORAGE_RESERVE + registryTopUp);
        });

        it('is checked like a registration', async () => {
            const { owner } = await registerProvider(fx, 'alice');
            const signed = signedFor(fx, owner.address, testEnclave('alice', 42n));
            const r = await registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signed));
            expect(r.transactions).toHaveTransaction({ to: registry.address, success: false, exitCode: code(ERR_MEASUREMENT_NOT_ALLOWED) });
            const r2 = await registry.send(owner.getSender(), { value: (await registry.getAttestationFee()) - 1n }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice'))));
            expect(r2.transactions).toHaveTransaction({ to: registry.address, success: false, exitCode: code(ERR_INSUFFICIENT_VALUE) });
        });
    });

    describe('jailing', () => {
        it('governance jails a provider; it takes no jobs until re-attested', async () => {
            const { owner, provider } = await registerProvider(fx, 'alice');
            await expectRejected(
                outsider,
                toNano('0.1'),
                { $$type: 'JailProvider', queryId: 1n, providerOwner: owner.address, reason: JAIL_GOVERNANCE },
                ERR_NOT_OWNER,
            );
            await expectRejected(
                governance,
                (await registry.getJailFee()) - 1n,
                { $$type: 'JailProvider', queryId: 1n, providerOwner: owner.address, reason: JAIL_GOVERNANCE },
                ERR_INSUFFICIENT_VALUE,
            );
            await expectRejected(governance, toNano('0.1'), { $$type: 'JailProvider', queryId: 1n, providerOwner: owner.address, reason: 0n }, ERR_BAD_REASON);
            const r = await registry.send(governance.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 1n,
                providerOwner: owner.address,
                reason: JAIL_GOVERNANCE,
            });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: provider.address, success: true });
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: governance.address, op: 0xd53276db });
            let info = await provider.getInfo();
            expect(info.status).toBe(STATUS_JAILED);
            expect(info.jailReason).toBe(JAIL_GOVERNANCE);
            expect(await provider.getAcceptsJobs()).toBe(false);

            await registry.send(owner.getSender(), { value: toNano('1') }, reattestMessage(signedFor(fx, owner.address, testEnclave('alice'))));
            info = await provider.getInfo();
            expect(info.status).toBe(STATUS_ACTIVE);
            expect(info.jailReason).toBe(0n);
            expect(await provider.getAcceptsJobs()).toBe(true);
        });

        it('jailing an address with no Provider bounces and refunds governance', async () => {
            const nobody = await fx.blockchain.treasury('nobody');
            const before = (await fx.blockchain.getContract(registry.address)).balance;
            const r = await registry.send(governance.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 1n,
                providerOwner: nobody.address,
                reason: JAIL_GOVERNANCE,
            });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: governance.address, op: 0xd53276db });
            expect((await fx.blockchain.getContract(registry.address)).balance).toBe(before);
        });

        it('an unbonding provider stays unbonding, with the reason recorded; an exited one is untouched', async () => {
            const { owner, provider } = await registerProvider(fx, 'alice');
            await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'RequestUnbond', queryId: 1n });
            const jail = { $$type: 'JailProvider' as const, queryId: 1n, providerOwner: owner.address, reason: JAIL_GOVERNANCE };
            await registry.send(governance.getSender(), { value: toNano('0.1') }, jail);
            expect((await provider.getInfo()).status).toBe(STATUS_UNBONDING);
            expect((await provider.getInfo()).jailReason).toBe(JAIL_GOVERNANCE);
            fx.blockchain.now = fx.blockchain.now! + Number(fx.params.unbondingPeriod);
            await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'WithdrawStake', queryId: 2n });
            await registry.send(governance.getSender(), { value: toNano('0.1') }, jail);
            expect((await provider.getInfo()).status).toBe(STATUS_EXITED);
        });
    });

    describe('bounces and surplus', () => {
        it('a bounced ApplyAttestation is logged and its value kept as surplus for governance to refund', async () => {
            const { provider } = await registerProvider(fx, 'alice');
            const before = (await fx.blockchain.getContract(registry.address)).balance;
            const bouncedBody = bouncedApplyAttestation(await registry.getParamsSnapshot(), 77n);
            const r = await fx.blockchain.sendMessage(
                internal({ from: provider.address, to: registry.address, value: toNano('100'), bounced: true, bounce: false, body: bouncedBody }),
            );
            expect(r.transactions).toHaveTransaction({ to: registry.address, success: true });
            expect(r.externals).toHaveLength(1);
            const log = r.externals[0].body.beginParse();
            expect(log.loadUint(32)).toBe(0x10000020); // ApplyAttestationBounced
            expect(log.loadUintBig(64)).toBe(77n);
            expect(log.loadAddress().equals(provider.address)).toBe(true);
            const after = (await fx.blockchain.getContract(registry.address)).balance;
            expect(after - before).toBeGreaterThan(toNano('99.99'));

            const refundee = await fx.blockchain.treasury('refundee');
            const refundeeBefore = await refundee.getBalance();
            await expectRejected(outsider, ADMIN_VALUE, { $$type: 'SweepSurplus', queryId: 1n, to: outsider.address }, ERR_NOT_OWNER);
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'SweepSurplus', queryId: 1n, to: new Address(-1, Buffer.alloc(32, 1)) }, 138n);
            await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'SweepSurplus', queryId: 1n, to: refundee.address });
            expect((await fx.blockchain.getContract(registry.address)).balance).toBe(REGISTRY_STORAGE_RESERVE);
            expect((await refundee.getBalance()) - refundeeBefore).toBeGreaterThan(toNano('99.99'));
            await expectRejected(governance, ADMIN_VALUE, { $$type: 'SweepSurplus', queryId: 2n, to: refundee.address }, ERR_NO_SURPLUS);
        });

        it('a sweep to an address that bounces brings the surplus back', async () => {
            const { provider } = await registerProvider(fx, 'alice');
            // Put a surplus in place, then sweep it to a contract that rejects Excesses (the Provider).
            await fx.blockchain.sendMessage(
                internal({ from: provider.address, to: registry.address, value: toNano('5'), bounced: true, bounce: false, body: bouncedApplyAttestation(await registry.getParamsSnapshot(), 1n) }),
            );
            const withSurplus = (await fx.blockchain.getContract(registry.address)).balance;
            expect(withSurplus).toBeGreaterThan(REGISTRY_STORAGE_RESERVE + toNano('4.9'));
            const r = await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'SweepSurplus', queryId: 1n, to: provider.address });
            expect(r.transactions).toHaveTransaction({ from: registry.address, to: provider.address, success: false, exitCode: 130 });
            expect(r.transactions).toHaveTransaction({ from: provider.address, to: registry.address, inMessageBounced: true, success: true });
            // Back where it was, less the fees of the round trip: it can be swept again.
            const after = (await fx.blockchain.getContract(registry.address)).balance;
            expect(after).toBeGreaterThan(withSurplus - toNano('0.05'));
            const again = await registry.send(governance.getSender(), { value: ADMIN_VALUE }, { $$type: 'SweepSurplus', queryId: 2n, to: governance.address });
            expect(again.transactions).toHaveTransaction({ from: registry.address, to: governance.address, success: true });
        });
    });

    describe('authentication of Providers', () => {
        it('derives a distinct Provider per owner and per Registry', async () => {
            const alice = await fx.blockchain.treasury('alice');
            const bob = await fx.blockchain.treasury('bob');
            const other = fx.blockchain.openContract(await Registry.fromInit(governance.address, fx.params, 1n));
            const a = await registry.getProviderAddress(alice.address);
            expect(a.equals(await registry.getProviderAddress(bob.address))).toBe(false);
            expect(a.equals((await Provider.fromInit(registry.address, alice.address)).address)).toBe(true);
            expect(a.equals((await Provider.fromInit(other.address, alice.address)).address)).toBe(false);
        });

        it('a look-alike Registry cannot reach a real Provider', async () => {
            const { owner, provider } = await registerProvider(fx, 'alice');
            // Mallory deploys the same Registry code with herself as owner and jails "alice".
            const mallory = await fx.blockchain.treasury('mallory');
            const fake = fx.blockchain.openContract(await Registry.fromInit(mallory.address, fx.params, 0n));
            await fake.send(mallory.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
            const r = await fake.send(mallory.getSender(), { value: toNano('0.1') }, {
                $$type: 'JailProvider',
                queryId: 1n,
                providerOwner: owner.address,
                reason: JAIL_GOVERNANCE,
            });
            expect(r.transactions).not.toHaveTransaction({ to: provider.address });
            expect(await provider.getStatus()).toBe(STATUS_ACTIVE);
        });
    });

    it('clock sanity: the fixture starts at T0 plus one timelock', () => {
        expect(fx.blockchain.now).toBe(T0 + Number(fx.params.timelock));
        expect(Cell.EMPTY).toBeDefined();
    });
});
