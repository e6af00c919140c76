// The escrow scripts (openEscrow, submitReceipt, releaseEscrow, refundEscrow),
// run through their `run()` against the sandbox with a NetworkProvider backed
// by it and scripted answers. Time moves with blockchain.now.
import { createHash } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Address, beginCell, Cell, fromNano, toNano } from '@ton/core';
import { SandboxContract, TreasuryContract } from '@ton/sandbox';
import {
    ERR_BAD_TERMS,
    ERR_DEADLINE_NOT_PASSED,
    ERR_DISPUTE_WINDOW_OPEN,
    ERR_RECEIPT_TIME,
    ESCROW_ENGAGED,
    ESCROW_RECEIPTED,
    RECEIPT_TAG,
    storeCompletionReceipt,
} from '../wrappers/Registry';
import { Escrow } from '../wrappers/Escrow';
import { defaultParams } from '../wrappers/params';
import { Provider } from '../wrappers/Provider';
import { parseReceipt, ReceiptFields, SignedReceipt, signedReceiptFromJson, signedReceiptToJson, signReceipt } from '../wrappers/receipt';
import { Ed25519KeyPair } from '../wrappers/ed25519';
import { deployFixture, Enclave, Fixture, MODEL_A, registerProvider, testKey } from './helpers/fixture';
import { runScript, expectFailure } from './helpers/sandboxNetworkProvider';
import { messagesBetween } from './helpers/tx';
import { InputError, parseDeadline, StateError, TransactionFailedError, UsageError } from '../scripts/lib/cli';
import { run as openEscrow } from '../scripts/openEscrow';
import { run as submitReceipt } from '../scripts/submitReceipt';
import { run as releaseEscrow } from '../scripts/releaseEscrow';
import { run as refundEscrow } from '../scripts/refundEscrow';


const REQUEST = 0x5eed_0001n;
const hex = (v: bigint) => v.toString(16).padStart(64, '0');
const UNSERVED_MODEL = BigInt('0x' + createHash('sha256').update('a model nobody serves').digest('hex'));

let dir: string;
let fileCount = 0;

beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chrysalis-escrow-scripts-'));
});

afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
    jest.restoreAllMocks();
});

function writeJson(name: string, value: unknown): string {
    const path = join(dir, `${++fileCount}-${name}`);
    writeFileSync(path, JSON.stringify(value, null, 2));
    return path;
}

function writeReceipt(signed: SignedReceipt): string {
    return writeJson('receipt.json', signedReceiptToJson(signed));
}

describe('escrow scripts', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let runner: SandboxContract<TreasuryContract>;
    /** An address with no account, so its balance is exactly what it was paid. */
    let payout: Address;

    async function setup(params?: Parameters<typeof deployFixture>[0]) {
        fx = await deployFixture(params);
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        runner = await fx.blockchain.treasury('runner');
        payout = new Address(0, createHash('sha256').update('alice payout').digest());
        const r = await provider.send(owner.getSender(), { value: toNano('0.05') }, { $$type: 'SetPayoutAddress', queryId: 0n, payout });
        expect(r.transactions).toHaveTransaction({ to: provider.address, success: true });
    }

    beforeEach(() => setup());

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;
    const now = () => fx.blockchain.now!;

    function escrowAt(nonce: bigint): Promise<Escrow> {
        return Escrow.fromInit(client.address, provider.address, nonce);
    }

    /** Runs openEscrow from the client for MODEL_A, 2 TON, due in an hour; returns the opened escrow. */
    async function open(nonce: bigint, opts: { model?: bigint; maxAmount?: string; deadline?: string } = {}) {
        const np = await runScript(openEscrow, fx.blockchain, client, [
            provider.address.toString(),
            hex(opts.model ?? MODEL_A),
            hex(REQUEST),
            opts.maxAmount ?? '2',
            opts.deadline ?? String(now() + 3600),
            '--nonce',
            nonce.toString(),
        ]);
        const escrow = fx.blockchain.openContract(await escrowAt(nonce));
        if ((await fx.blockchain.getContract(escrow.address)).balance > 0n) {
            engageIds.set(escrow.address.toString(), (await escrow.getInfo()).engageId);
        }
        return { np, escrow };
    }

    /** engageId of each escrow opened here, by address (filled by openVia). */
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
            finishedAt: now() - 1,
            ...overrides,
        };
    }

    function receiptFile(escrow: Address, overrides: Partial<ReceiptFields> = {}, key: Ed25519KeyPair = enclave.signing): string {
        return writeReceipt(signReceipt(receiptFor(escrow, overrides), key));
    }

    describe('openEscrow', () => {
        it('opens an escrow the provider engages, with maxAmount + open fee, and prints it', async () => {
            const fee = await provider.getEscrowOpenFee();
            const before = await balanceOf(client.address);
            const { np, escrow } = await open(7n);
            const info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_ENGAGED);
            expect(info.nonce).toBe(7n);
            expect(info.client.equals(client.address)).toBe(true);
            expect(info.provider.equals(provider.address)).toBe(true);
            expect(info.modelHash).toBe(MODEL_A);
            expect(info.requestHash).toBe(REQUEST);
            expect(info.maxAmount).toBe(toNano('2'));
            expect(info.deadline).toBe(BigInt(now() + 3600));
            expect(info.engagement!.enclaveKey).toBe(enclave.signing.publicKeyInt);
            expect(info.engagement!.payout.equals(payout)).toBe(true);
            expect((await provider.getEscrowFor(client.address, 7n)).equals(escrow.address)).toBe(true);
            expect((await provider.getInfo()).openJobs).toBe(1n);
            // The escrow holds maxAmount and what of the open fee the engagement did not spend.
            const held = await balanceOf(escrow.address);
            expect(held).toBeGreaterThan(toNano('2'));
            expect(held).toBeLessThan(toNano('2') + fee);
            const spent = before - (await balanceOf(client.address));
            expect(spent).toBeGreaterThan(toNano('2'));
            // The rest is the wallet's fees, mostly forwarding the Escrow's StateInit (~0.02 TON).
            expect(spent).toBeLessThan(toNano('2') + fee + toNano('0.03'));

            const out = np.scriptedUI.text;
            expect(out).toContain(`Escrow ${escrow.address.toString()} (nonce 7): Engaged`);
            expect(out).toContain(`max amount 2 TON + open fee ${fromNano(fee)} TON`);
            expect(out).toContain(`enclave key: ${hex(enclave.signing.publicKeyInt)}`);
            expect(out).not.toContain('Warning');
        });

        it('picks a random 63-bit nonce and takes a deadline relative to the local clock', async () => {
            // The local clock, made to agree with the chain's.
            jest.spyOn(Date, 'now').mockReturnValue(now() * 1000 + 500);
            const np = await runScript(openEscrow, fx.blockchain, client, [provider.address.toString(), hex(MODEL_A), hex(REQUEST), '1.5', '+600']);
            const match = /\(nonce (\d+)\): Engaged/.exec(np.scriptedUI.text);
            expect(match).not.toBeNull();
            const nonce = BigInt(match![1]);
            expect(nonce).toBeLessThan(1n << 63n);
            const escrow = fx.blockchain.openContract(await escrowAt(nonce));
            const info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_ENGAGED);
            expect(info.deadline).toBe(BigInt(now() + 600));
            expect(info.maxAmount).toBe(toNano('1.5'));
        });

        it('asks for what the arguments do not give', async () => {
            const np = await runScript(
                openEscrow,
                fx.blockchain,
                client,
                ['--nonce', '3'],
                [provider.address, hex(MODEL_A), `0x${hex(REQUEST)}`, '1', String(now() + 600)],
            );
            expect(np.scriptedUI.asked.map((q) => q.kind)).toEqual(['inputAddress', 'input', 'input', 'input', 'input']);
            expect((await fx.blockchain.openContract(await escrowAt(3n)).getState())).toBe(ESCROW_ENGAGED);
        });

        it('reports a refusal for a model the provider does not serve: the escrow closes and returns the payment', async () => {
            const before = await balanceOf(client.address);
            const { np, escrow } = await open(8n, { model: UNSERVED_MODEL });
            expect((await fx.blockchain.provider(escrow.address).getState()).state.type).not.toBe('active');
            expect(await balanceOf(escrow.address)).toBe(0n);
            // Only fees were spent: the 2 TON came back.
            const spent = before - (await balanceOf(client.address));
            expect(spent).toBeGreaterThan(0n);
            expect(spent).toBeLessThan(toNano('0.05'));
            expect((await provider.getInfo()).openJobs).toBe(0n);
            const out = np.scriptedUI.text;
            expect(out).toContain(`Warning: the Provider does not serve the model ${hex(UNSERVED_MODEL)}`);
            expect(out).toContain(`Escrow ${escrow.address.toString()} (nonce 8): refused: closed`);
            expect(out).toContain(`reason: the Provider does not serve the model ${hex(UNSERVED_MODEL)}`);
        });

        it('reports a refusal the chain decides (deadline beyond maxJobDuration) without a local reason', async () => {
            // Jobs of at most an hour, so a deadline beyond that is still within the attestation.
            await setup((treasury) => ({ ...defaultParams(treasury), maxJobDuration: 3600n }));
            const { np, escrow } = await open(9n, { deadline: String(now() + Number(fx.params.maxJobDuration) + 60) });
            expect(await balanceOf(escrow.address)).toBe(0n);
            expect(np.scriptedUI.text).toContain('(nonce 9): refused: closed');
            expect(np.scriptedUI.text).toContain("the deadline is beyond the Provider's maxJobDuration");
            expect(np.scriptedUI.text).not.toContain('Warning');
        });

        it('reports the Escrow refusing a deadline that is past on the chain', async () => {
            const { error } = await expectFailure(
                openEscrow,
                fx.blockchain,
                client,
                [provider.address.toString(), hex(MODEL_A), hex(REQUEST), '1', String(now() - 1), '--nonce', '4'],
                TransactionFailedError,
                /OpenEscrow failed: ERR_BAD_TERMS \(1302\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_BAD_TERMS));
            expect(await balanceOf((await escrowAt(4n)).address)).toBe(0n);
        });

        it('refuses a nonce whose escrow is already open', async () => {
            await open(5n);
            const { provider: np } = await expectFailure(
                openEscrow,
                fx.blockchain,
                client,
                [provider.address.toString(), hex(MODEL_A), hex(REQUEST), '1', String(now() + 600), '--nonce', '5'],
                StateError,
                /an escrow with nonce 5 is already open at .* \(state Engaged\); choose another --nonce/,
            );
            expect(np.lastResult).toBeUndefined();
        });

        it('refuses bad input with clear messages, sending nothing', async () => {
            const p = provider.address.toString();
            const deadline = String(now() + 600);
            const cases: [string[], abstract new (...args: never[]) => Error, RegExp][] = [
                [['nope', hex(MODEL_A), hex(REQUEST), '1', deadline], InputError, /provider: "nope" is not a TON address/],
                [[p, 'xyz', hex(REQUEST), '1', deadline], InputError, /model: "xyz" is not 32 bytes of hex/],
                [[p, hex(MODEL_A), hex(REQUEST).slice(2), '1', deadline], InputError, /request: ".*" is not 32 bytes of hex \(64 hex digits\)/],
                [[p, hex(MODEL_A), hex(REQUEST), 'lots', deadline], InputError, /maxAmount: "lots" is not an amount of TON/],
                [[p, hex(MODEL_A), hex(REQUEST), '0', deadline], InputError, /maxAmount must be more than 0 TON/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', 'tomorrow'], InputError, /deadline: "tomorrow" is not unix seconds or \+<seconds from now>/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', '-5'], InputError, /deadline: "-5" is not unix seconds/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', String(2 ** 32)], InputError, /deadline: 4294967296 is not a unix time from 1 to 2\^32-1/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', deadline, '--nonce', '-1'], InputError, /nonce: "-1" is not an integer from 0 to 2\^64-1/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', deadline, 'extra'], UsageError, /unexpected argument "extra"\nusage: openEscrow <provider>/],
                [[p, hex(MODEL_A), hex(REQUEST), '1', deadline, '--value', '1'], UsageError, /unknown option --value \(known: --nonce\)/],
            ];
            for (const [args, type, message] of cases) {
                const { provider: np } = await expectFailure(openEscrow, fx.blockchain, client, args, type, message);
                expect(np.lastResult).toBeUndefined();
            }
            // Not a Provider: nothing deployed there, or another contract.
            const nobody = await fx.blockchain.treasury('nobody');
            const undeployed = await fx.registry.getProviderAddress(nobody.address);
            await expectFailure(openEscrow, fx.blockchain, client, [undeployed.toString(), hex(MODEL_A), hex(REQUEST), '1', deadline], StateError, /no Provider is deployed at/);
            await expectFailure(openEscrow, fx.blockchain, client, [fx.registry.address.toString(), hex(MODEL_A), hex(REQUEST), '1', deadline], StateError, /is not a Chrysalis Provider/);
        });
    });

    describe('submitReceipt and releaseEscrow', () => {
        it('submits an enclave-signed receipt, refuses an early release, then pays amount - fee to the payout', async () => {
            const { escrow } = await open(1n);
            const file = receiptFile(escrow.address);
            const sub = await runScript(submitReceipt, fx.blockchain, runner, [escrow.address.toString(), file]);
            const info = await escrow.getInfo();
            expect(info.state).toBe(ESCROW_RECEIPTED);
            expect(info.amount).toBe(toNano('1.5'));
            expect(info.releaseAt).toBe(BigInt(now()) + fx.params.disputeWindow);
            expect(sub.scriptedUI.text).toContain(`Receipt accepted: 1.5 TON releasable at ${info.releaseAt}`);
            // The runner paid only fees: the unused trigger value came back.
            expect(messagesBetween(sub.lastResult!, escrow.address, runner.address)).toHaveLength(1);

            // A second receipt is refused before sending.
            await expectFailure(submitReceipt, fx.blockchain, runner, [escrow.address.toString(), file], StateError, /already holds a receipt \(1.5 TON, releasable at/);

            // Within the dispute window the chain refuses the release.
            fx.blockchain.now = Number(info.releaseAt) - 1;
            const { error } = await expectFailure(
                releaseEscrow,
                fx.blockchain,
                runner,
                [escrow.address.toString()],
                TransactionFailedError,
                /Release failed: ERR_DISPUTE_WINDOW_OPEN \(1307\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_DISPUTE_WINDOW_OPEN));
            expect((await escrow.getInfo()).state).toBe(ESCROW_RECEIPTED);

            fx.blockchain.now = Number(info.releaseAt);
            const amount = toNano('1.5');
            const fee = (amount * fx.params.protocolFeeBps) / 10000n;
            const treasuryBefore = await balanceOf(fx.treasury.address);
            const clientBefore = await balanceOf(client.address);
            const held = await balanceOf(escrow.address);
            const rel = await runScript(releaseEscrow, fx.blockchain, runner, [escrow.address.toString()]);
            expect(await balanceOf(payout)).toBe(amount - fee);
            expect(messagesBetween(rel.lastResult!, escrow.address, fx.treasury.address)[0].value).toBe(fee);
            const treasuryGained = (await balanceOf(fx.treasury.address)) - treasuryBefore;
            expect(treasuryGained).toBeGreaterThan(0n);
            expect(treasuryGained).toBeLessThanOrEqual(fee);
            const clientGained = (await balanceOf(client.address)) - clientBefore;
            expect(clientGained).toBeGreaterThan(toNano('2') - amount);
            expect(clientGained).toBeLessThan(held - amount);
            expect(await balanceOf(escrow.address)).toBe(0n);
            const pInfo = await provider.getInfo();
            expect([pInfo.openJobs, pInfo.completedJobs, pInfo.refundedJobs]).toEqual([0n, 1n, 0n]);

            const out = rel.scriptedUI.text;
            expect(out).toContain('Released: the escrow paid 1.5 TON and closed');
            expect(out).toContain(`to the payout ${payout.toString()}: 1.485 TON`);
            expect(out).toContain(`protocol fee (100 bps) to the treasury ${fx.treasury.address.toString()}: 0.015 TON`);

            // Closed escrows are destroyed: nothing left to release.
            await expectFailure(releaseEscrow, fx.blockchain, runner, [escrow.address.toString()], StateError, /no Escrow is deployed at .* \(a closed escrow is destroyed\)/);
        });

        it('asks for the escrow and the receipt file', async () => {
            const { escrow } = await open(2n);
            const np = await runScript(submitReceipt, fx.blockchain, runner, [], [escrow.address, receiptFile(escrow.address)]);
            expect(np.scriptedUI.asked.map((q) => q.kind)).toEqual(['inputAddress', 'input']);
            expect(await escrow.getState()).toBe(ESCROW_RECEIPTED);
        });

        it('refuses receipts that would fail on-chain verification, before sending', async () => {
            const { escrow } = await open(1n);
            const other = (await open(2n)).escrow;
            const at = escrow.address.toString();
            const cases: [string, RegExp][] = [
                [receiptFile(escrow.address, {}, testKey('not the enclave')), /the Escrow would refuse it: bad enclave signature/],
                [receiptFile(other.address), /the Escrow would refuse it: receipt is for another escrow/],
                [receiptFile(escrow.address, { requestHash: REQUEST + 1n }), /receipt is for another request/],
                [receiptFile(escrow.address, { modelHash: UNSERVED_MODEL }), /receipt is for another model/],
                [receiptFile(escrow.address, { amount: toNano('2.000000001') }), /amount above maxAmount/],
                [receiptFile(escrow.address, { finishedAt: now() + 3601 }), /finished after the deadline/],
            ];
            for (const [file, message] of cases) {
                const { provider: np } = await expectFailure(submitReceipt, fx.blockchain, runner, [at, file], InputError, message);
                expect(np.lastResult).toBeUndefined();
            }
            // A signature that is not the receipt's: same check, through a tampered file.
            const good = signedReceiptToJson(signReceipt(receiptFor(escrow.address), enclave.signing));
            const tampered = signedReceiptToJson(signReceipt(receiptFor(escrow.address, { amount: toNano('0.1') }), enclave.signing));
            await expectFailure(
                submitReceipt,
                fx.blockchain,
                runner,
                [at, writeJson('tampered.json', { receipt: tampered.receipt, signature: good.signature })],
                InputError,
                /bad enclave signature/,
            );
            expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
        });

        it('refuses unreadable and malformed receipt files', async () => {
            const { escrow } = await open(1n);
            const at = escrow.address.toString();
            const good = signedReceiptToJson(signReceipt(receiptFor(escrow.address), enclave.signing));
            const wrongTag = beginCell()
                .store(storeCompletionReceipt({ ...parseReceipt(Cell.fromBase64(good.receipt)), tag: 1n }))
                .endCell();
            const tooShort = beginCell().storeUint(RECEIPT_TAG, 32).endCell();
            const notJson = join(dir, 'not-json.json');
            writeFileSync(notJson, '{ "receipt": ');
            const cases: [string, RegExp][] = [
                [join(dir, 'missing.json'), /receipt file: cannot read .*missing\.json: no such file/],
                [notJson, /receipt file: .* is not valid JSON/],
                [writeJson('r.json', { receipt: good.receipt }), /needs "receipt" \(BOC, base64\) and "signature" \(hex\)/],
                [writeJson('r.json', [good]), /needs "receipt" \(BOC, base64\) and "signature" \(hex\)/],
                [writeJson('r.json', { ...good, signature: 'abcd' }), /signature must be 64 bytes of hex/],
                [writeJson('r.json', { ...good, receipt: 'bm90IGEgYm9j' }), /receipt is not a BOC in base64/],
                [writeJson('r.json', { ...good, receipt: wrongTag.toBoc().toString('base64') }), /receipt file .*: not a completion receipt \(tag 1\)/],
                [writeJson('r.json', { ...good, receipt: tooShort.toBoc().toString('base64') }), /receipt file .*: the cell does not hold a CompletionReceipt \(/],
            ];
            for (const [file, message] of cases) {
                const { provider: np } = await expectFailure(submitReceipt, fx.blockchain, runner, [at, file], InputError, message);
                expect(np.lastResult).toBeUndefined();
            }
            // The JSON helpers round-trip.
            const back = signedReceiptFromJson(good);
            expect(back.receipt.equals(signReceipt(receiptFor(escrow.address), enclave.signing).receipt)).toBe(true);
        });

        it('reports the Escrow refusing a receipt after the deadline (the chain judges time)', async () => {
            const { escrow } = await open(1n);
            const file = receiptFile(escrow.address);
            fx.blockchain.now = Number((await escrow.getInfo()).deadline) + 1;
            const { error } = await expectFailure(
                submitReceipt,
                fx.blockchain,
                runner,
                [escrow.address.toString(), file],
                TransactionFailedError,
                /SubmitReceipt failed: ERR_RECEIPT_TIME \(1306\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_RECEIPT_TIME));
            expect(await escrow.getState()).toBe(ESCROW_ENGAGED);
        });

        it('refuses what is not an escrow in the right state, and bad arguments', async () => {
            const { escrow } = await open(1n);
            const file = receiptFile(escrow.address);
            await expectFailure(submitReceipt, fx.blockchain, runner, ['bad-address', file], InputError, /escrow: "bad-address" is not a TON address/);
            await expectFailure(submitReceipt, fx.blockchain, runner, [fx.registry.address.toString(), file], StateError, /is not a Chrysalis Escrow/);
            await expectFailure(submitReceipt, fx.blockchain, runner, [provider.address.toString(), file], StateError, /is not a Chrysalis Escrow/);
            await expectFailure(submitReceipt, fx.blockchain, runner, [(await escrowAt(99n)).address.toString(), file], StateError, /no Escrow is deployed at/);
            await expectFailure(submitReceipt, fx.blockchain, runner, [escrow.address.toString(), file, 'x'], UsageError, /unexpected argument "x"\nusage: submitReceipt <escrow> <receipt.json>/);
            const { provider: np } = await expectFailure(
                releaseEscrow,
                fx.blockchain,
                runner,
                [escrow.address.toString()],
                StateError,
                /the escrow has no receipt yet: submitReceipt first/,
            );
            expect(np.lastResult).toBeUndefined();
            await expectFailure(releaseEscrow, fx.blockchain, runner, ['EQ-nope'], InputError, /escrow: "EQ-nope" is not a TON address/);
            await expectFailure(releaseEscrow, fx.blockchain, runner, [escrow.address.toString(), '--now', '1'], UsageError, /unknown option --now \(known: none\)/);
        });
    });

    describe('refundEscrow', () => {
        it('refunds another escrow after its deadline, refused by the chain before it', async () => {
            // One escrow is released as usual; the other gets no receipt.
            const paid = (await open(1n)).escrow;
            const { escrow } = await open(2n);
            await runScript(submitReceipt, fx.blockchain, runner, [paid.address.toString(), receiptFile(paid.address)]);
            await expectFailure(
                refundEscrow,
                fx.blockchain,
                runner,
                [paid.address.toString()],
                StateError,
                /holds a receipt \(1.5 TON\): it is released after the dispute window \(releaseEscrow\), not refunded/,
            );

            const deadline = Number((await escrow.getInfo()).deadline);
            const { error } = await expectFailure(
                refundEscrow,
                fx.blockchain,
                runner,
                [escrow.address.toString()],
                TransactionFailedError,
                /Refund failed: ERR_DEADLINE_NOT_PASSED \(1308\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_DEADLINE_NOT_PASSED));
            expect(await escrow.getState()).toBe(ESCROW_ENGAGED);

            fx.blockchain.now = deadline + 1;
            const held = await balanceOf(escrow.address);
            const clientBefore = await balanceOf(client.address);
            const np = await runScript(refundEscrow, fx.blockchain, runner, [escrow.address.toString()]);
            expect(await balanceOf(escrow.address)).toBe(0n);
            const gained = (await balanceOf(client.address)) - clientBefore;
            expect(gained).toBeGreaterThan(toNano('2'));
            expect(gained).toBeLessThan(held);
            const pInfo = await provider.getInfo();
            expect([pInfo.openJobs, pInfo.completedJobs, pInfo.refundedJobs]).toEqual([1n, 0n, 1n]);
            const out = np.scriptedUI.text;
            expect(out).toContain('Refunded: the escrow closed (expired, no receipt by the deadline)');
            expect(out).toContain(`to the client ${client.address.toString()}: its balance of`);
            expect(out).toContain('was told the job ended unpaid');

            // The receipted escrow is still released once its window passes.
            fx.blockchain.now = Number((await paid.getInfo()).releaseAt);
            await runScript(releaseEscrow, fx.blockchain, runner, [paid.address.toString()]);
            expect([(await provider.getInfo()).openJobs, (await provider.getInfo()).completedJobs]).toEqual([0n, 1n]);
            await expectFailure(refundEscrow, fx.blockchain, runner, [escrow.address.toString()], StateError, /no Escrow is deployed at/);
        });

        it('refuses bad arguments', async () => {
            await expectFailure(refundEscrow, fx.blockchain, runner, ['0:xyz'], InputError, /escrow: "0:xyz" is not a TON address/);
            await expectFailure(refundEscrow, fx.blockchain, runner, ['a', 'b'], UsageError, /unexpected argument "b"\nusage: refundEscrow <escrow>/);
        });
    });
});

describe('parseDeadline', () => {
    it('takes unix seconds or +seconds from the given now', () => {
        expect(parseDeadline('1800000000', 'deadline', 5)).toBe(1_800_000_000n);
        expect(parseDeadline(' +60 ', 'deadline', 1_800_000_000)).toBe(1_800_000_060n);
        expect(() => parseDeadline('+0', 'deadline', 1)).toThrow(/\+0 is not in the future/);
        expect(() => parseDeadline('0', 'deadline', 1)).toThrow(/0 is not a unix time/);
        expect(() => parseDeadline('+4294967295', 'deadline', 10)).toThrow(/is not a unix time from 1 to 2\^32-1/);
        expect(() => parseDeadline('1.5', 'deadline', 1)).toThrow(InputError);
    });
});
