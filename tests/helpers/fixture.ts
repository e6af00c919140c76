// A deployed Registry with one verifier key, one measurement and two models
// allowlisted and active, on a sandbox whose clock starts at T0.
import { createHash } from 'crypto';
import '@ton/test-utils';
import { Address, beginCell, Cell, Dictionary, toNano } from '@ton/core';
import { Blockchain, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';
import {
    ALLOWLIST_MEASUREMENT,
    ALLOWLIST_MODEL,
    ALLOWLIST_VERIFIER,
    Params,
    ParamsSnapshot,
    Registry,
    storeApplyAttestation,
} from '../../wrappers/Registry';
import { Provider } from '../../wrappers/Provider';
import { Escrow } from '../../wrappers/Escrow';
import { defaultParams } from '../../wrappers/params';
import {
    AttestationClaims,
    measurementHash,
    modelHash,
    registerProviderMessage,
    signStatement,
    SignedStatement,
} from '../../wrappers/attestation';
import { Ed25519KeyPair, keyPairFromSeed } from '../../wrappers/ed25519';

export const T0 = 1_800_000_000;

export function testKey(label: string): Ed25519KeyPair {
    return keyPairFromSeed(createHash('sha256').update(`chrysalis-test:${label}`).digest());
}

export const MEASUREMENT = measurementHash(Buffer.alloc(48, 1), [Buffer.alloc(48, 2), Buffer.alloc(48, 3)]);
export const MODEL_A = modelHash('llama-3.1-8b-instruct', 'v1', 'a'.repeat(64));
export const MODEL_B = modelHash('qwen2.5-7b', 'v2', 'b'.repeat(64));

export interface Fixture {
    blockchain: Blockchain;
    governance: SandboxContract<TreasuryContract>;
    treasury: SandboxContract<TreasuryContract>;
    registry: SandboxContract<Registry>;
    verifier: Ed25519KeyPair;
    params: Params;
}

export async function deployFixture(params?: (treasury: Address) => Params): Promise<Fixture> {
    const blockchain = await Blockchain.create();
    blockchain.now = T0;
    const governance = await blockchain.treasury('governance');
    const treasury = await blockchain.treasury('treasury');
    const p = params ? params(treasury.address) : defaultParams(treasury.address);
    const registry = blockchain.openContract(await Registry.fromInit(governance.address, p, 0n));
    const deployed = await registry.send(governance.getSender(), { value: toNano('1') }, { $$type: 'DeployRegistry', queryId: 0n });
    expect(deployed.transactions).toHaveTransaction({ to: registry.address, deploy: true, success: true });
    const verifier = testKey('verifier');
    const adminValue = toNano('0.05');
    for (const [list, entry] of [
        [ALLOWLIST_VERIFIER, verifier.publicKeyInt],
        [ALLOWLIST_MEASUREMENT, MEASUREMENT],
        [ALLOWLIST_MODEL, MODEL_A],
        [ALLOWLIST_MODEL, MODEL_B],
    ] as const) {
        const r = await registry.send(governance.getSender(), { value: adminValue }, { $$type: 'AllowlistAdd', queryId: 0n, list, entry });
        expect(r.transactions).toHaveTransaction({ to: registry.address, success: true });
    }
    blockchain.now = T0 + Number(p.timelock);
    return { blockchain, governance, treasury, registry, verifier, params: p };
}

export interface Enclave {
    signing: Ed25519KeyPair;
    encryptionKey: bigint;
    measurement: bigint;
    reportHash: bigint;
}

export function testEnclave(label: string, measurement = MEASUREMENT): Enclave {
    return {
        signing: testKey(`enclave:${label}`),
        encryptionKey: testKey(`x25519:${label}`).publicKeyInt, // any 32 bytes will do on-chain
        measurement,
        reportHash: BigInt('0x' + createHash('sha256').update(`report:${label}`).digest('hex')),
    };
}

export function claimsFor(
    fx: Fixture,
    owner: Address,
    enclave: Enclave,
    overrides: Partial<AttestationClaims> = {},
): AttestationClaims {
    const now = fx.blockchain.now!;
    return {
        registry: fx.registry.address,
        providerOwner: owner,
        issuedAt: now - 60,
        validUntil: now + 86400,
        models: [MODEL_A, MODEL_B],
        enclave: {
            signingKey: enclave.signing.publicKeyInt,
            encryptionKey: enclave.encryptionKey,
            measurement: enclave.measurement,
            reportHash: enclave.reportHash,
        },
        ...overrides,
    };
}

export function signedFor(fx: Fixture, owner: Address, enclave: Enclave, overrides: Partial<AttestationClaims> = {}): SignedStatement {
    return signStatement(claimsFor(fx, owner, enclave, overrides), fx.verifier);
}

export async function sendRegister(
    fx: Fixture,
    owner: SandboxContract<TreasuryContract>,
    signed: SignedStatement,
    opts: { stake?: bigint; value?: bigint; payout?: Address | null } = {},
): Promise<SendMessageResult> {
    const stake = opts.stake ?? fx.params.minProviderStake;
    const value = opts.value ?? stake + (await fx.registry.getAttestationFee());
    return fx.registry.send(
        owner.getSender(),
        { value },
        registerProviderMessage(signed, stake, { payout: opts.payout ?? null, queryId: 7n }),
    );
}

export async function registerProvider(fx: Fixture, ownerLabel: string, opts: { stake?: bigint } = {}) {
    const owner = await fx.blockchain.treasury(ownerLabel);
    const enclave = testEnclave(ownerLabel);
    const result = await sendRegister(fx, owner, signedFor(fx, owner.address, enclave), opts);
    const provider = fx.blockchain.openContract(Provider.fromAddress(await fx.registry.getProviderAddress(owner.address)));
    return { owner, enclave, provider, result };
}

/** What a bounced ApplyAttestation looks like: 0xffffffff, then the first 256 bits of the original body. */
export function bouncedApplyAttestation(snapshot: ParamsSnapshot, queryId: bigint): Cell {
    const original = beginCell()
        .store(
            storeApplyAttestation({
                $$type: 'ApplyAttestation',
                queryId,
                isRegistration: true,
                stake: toNano('100'),
                payout: null,
                validUntil: 0n,
                enclave: { $$type: 'EnclaveIdentity', signingKey: 1n, encryptionKey: 2n, measurement: 3n, reportHash: 4n },
                models: Dictionary.empty(Dictionary.Keys.BigUint(256), Dictionary.Values.Bool()),
                snapshot,
            }),
        )
        .endCell()
        .beginParse();
    return beginCell().storeUint(0xffffffff, 32).storeBits(original.loadBits(Math.min(256, original.remainingBits))).endCell();
}

/**
 * Opens an Escrow from `client` with `provider` under `nonce`, attaching
 * maxAmount + the Provider's escrowOpenFee unless `value` is given.
 */
export async function openEscrow(
    fx: Fixture,
    client: SandboxContract<TreasuryContract>,
    provider: Address,
    nonce: bigint,
    terms: { requestHash: bigint; modelHash: bigint; maxAmount: bigint; deadline: number; value?: bigint; queryId?: bigint },
): Promise<{ escrow: SandboxContract<Escrow>; result: SendMessageResult }> {
    const escrow = fx.blockchain.openContract(await Escrow.fromInit(client.address, provider, nonce));
    const openFee = terms.value === undefined ? await fx.blockchain.openContract(Provider.fromAddress(provider)).getEscrowOpenFee() : 0n;
    const result = await escrow.send(client.getSender(), { value: terms.value ?? terms.maxAmount + openFee }, {
        $$type: 'OpenEscrow',
        queryId: terms.queryId ?? 0n,
        requestHash: terms.requestHash,
        modelHash: terms.modelHash,
        maxAmount: terms.maxAmount,
        deadline: BigInt(terms.deadline),
    });
    return { escrow, result };
}
