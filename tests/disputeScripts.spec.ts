// The dispute and fault-proof scripts (disputeEscrow, submitVerdict,
// proveEquivocation, proveInvalidReceipt), run through their `run()` against
// the sandbox with a NetworkProvider backed by it and scripted answers. Time
// moves with blockchain.now; the local clock (Date.now) is years behind it
// unless a test makes the two agree.
import { createHash } from 'crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { Address, beginCell, Cell, fromNano, toNano } from '@ton/core';
import { BlockchainSnapshot, SandboxContract, TreasuryContract } from '@ton/sandbox';
import {
    ERR_ALREADY_PROVEN,
    ERR_DISPUTE_WINDOW_CLOSED,
    ERR_NOT_A_FAULT,
    ERR_VERDICT_LATE,
    ESCROW_CLOSED_RELEASED,
    ESCROW_DISPUTED,
    ESCROW_ENGAGED,
    ESCROW_RECEIPTED,
    FAULT_AFTER_ATTESTATION,
    FAULT_EQUIVOCATION,
    FAULT_UNSERVED_MODEL,
    JAIL_PROVEN_FAULT,
    JAIL_STAKE_BELOW_MINIMUM,
    loadDisputeOpened,
    loadEscrowClosed,
    loadFaultReward,
    STATUS_ACTIVE,
    STATUS_JAILED,
    storeVerdict,
    VERDICT_CLIENT_WINS,
    VERDICT_PROVIDER_WINS,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { arbiterDictionary, paramsToJson } from '../wrappers/params';
import { ReceiptFields, SignedReceipt, signedReceiptToJson, signReceipt } from '../wrappers/receipt';
import { parseVerdict, SignedVerdict, signedVerdictToJson, signVerdict } from '../wrappers/verdict';
import { Ed25519KeyPair } from '../wrappers/ed25519';
import { deployFixture, Enclave, Fixture, MODEL_A, openEscrow as openEscrowTx, registerProvider, testKey } from './helpers/fixture';
import { ARBITER_SET, ARBITERS, deployDisputeFixture, expectClientWinsPayouts, receiptedEscrow, REQUEST, verdictFor } from './helpers/dispute';
import { expectFailure, runScript } from './helpers/sandboxNetworkProvider';
import { messagesBetween, txAt } from './helpers/tx';
import { arbitersHashOf, InputError, StateError, TransactionFailedError, UsageError } from '../scripts/lib/cli';
import { run as disputeEscrow } from '../scripts/disputeEscrow';
import { run as submitVerdict } from '../scripts/submitVerdict';
import { run as proveEquivocation } from '../scripts/proveEquivocation';
import { run as proveInvalidReceipt } from '../scripts/proveInvalidReceipt';

const hex = (v: bigint) => v.toString(16).padStart(64, '0');
const sha256 = (bytes: Buffer | string) => BigInt('0x' + createHash('sha256').update(bytes).digest('hex'));
const UNSERVED_MODEL = sha256('a model nobody serves');
const EVIDENCE = Buffer.from('the response was empty; transcript attached\n');

// Each test takes about a second; the margin is for a loaded machine.
jest.setTimeout(20_000);

let dir: string;
let fileCount = 0;

beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'chrysalis-dispute-scripts-'));
});

afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
});

afterEach(() => {
    jest.restoreAllMocks();
});

function writeFile(name: string, content: string | Buffer): string {
    const path = join(dir, `${++fileCount}-${name}`);
    writeFileSync(path, content);
    return path;
}

const writeJson = (name: string, value: unknown) => writeFile(name, JSON.stringify(value, null, 2));
const verdictFile = (signed: SignedVerdict) => writeJson('verdict.json', signedVerdictToJson(signed));
const receiptFile = (signed: SignedReceipt) => writeJson('receipt.json', signedReceiptToJson(signed));
/** Only some of a signed verdict's signatures, as one arbiter's file would hold them. */
const only = (signed: SignedVerdict, indexes: number[]): SignedVerdict => ({
    verdict: signed.verdict,
    signatures: new Map([...signed.signatures].filter(([i]) => indexes.includes(i))),
});

describe('dispute scripts', () => {
    let fx: Fixture;
    let owner: SandboxContract<TreasuryContract>;
    let provider: SandboxContract<Provider>;
    let enclave: Enclave;
    let client: SandboxContract<TreasuryContract>;
    let runner: SandboxContract<TreasuryContract>;
    let arbiterWallet: SandboxContract<TreasuryContract>;
    let nonce = 0n;
    let start: BlockchainSnapshot;

    // One deployment for the suite; every test starts from its snapshot.
    beforeAll(async () => {
        fx = await deployDisputeFixture();
        ({ owner, provider, enclave } = await registerProvider(fx, 'alice'));
        client = await fx.blockchain.treasury('client');
        runner = await fx.blockchain.treasury('runner');
        arbiterWallet = await fx.blockchain.treasury('arbiters');
        start = fx.blockchain.snapshot();
    });

    beforeEach(async () => {
        await fx.blockchain.loadFrom(start);
    });

    const balanceOf = async (a: Address) => (await fx.blockchain.getContract(a)).balance;
    const now = () => fx.blockchain.now!;
    /** The local clock, made to agree with the chain's. */
    const syncLocalClock = () => jest.spyOn(Date, 'now').mockReturnValue(now() * 1000 + 500);

    async function receipted() {
        nonce += 1n;
        return receiptedEscrow(fx, client, provider, enclave, nonce);
    }

    /** A receipted escrow the client has disputed through the script. */
    async function disputed() {
        const r = await receipted();
        await runScript(disputeEscrow, fx.blockchain, client, [r.escrow.address.toString(), '1', writeFile('evidence.txt', EVIDENCE)]);
        expect(await r.escrow.getState()).toBe(ESCROW_DISPUTED);
        return r;
    }

    describe('disputeEscrow', () => {
        it('disputes with bond + dispute fee, logs the sha256 of the evidence file, and reports the verdict deadline', async () => {
            const { escrow } = await receipted();
            const info = await escrow.getInfo();
            const bond = info.engagement!.disputeBond;
            const fee = await escrow.getDisputeFee();
            const file = writeFile('evidence.txt', EVIDENCE);
            const clientBefore = await balanceOf(client.address);
            const escrowBefore = await balanceOf(escrow.address);
            const np = await runScript(disputeEscrow, fx.blockchain, client, [escrow.address.toString(), '7', file]);

            const after = await escrow.getInfo();
            expect(after.state).toBe(ESCROW_DISPUTED);
            expect(after.verdictBy).toBe(BigInt(now()) + fx.params.verdictWindow);
            const log = txAt(np.lastResult!, escrow.address).outMessages.values().find((m) => m.info.type === 'external-out');
            const opened = loadDisputeOpened(log!.body.beginParse());
            expect([opened.reason, opened.evidenceHash, opened.verdictBy]).toEqual([7n, sha256(EVIDENCE), after.verdictBy]);
            // The client paid the bond and the fee, plus its wallet's fees; the escrow keeps the bond.
            const spent = clientBefore - (await balanceOf(client.address));
            expect(spent).toBeGreaterThanOrEqual(bond + fee);
            expect(spent).toBeLessThan(bond + fee + toNano('0.01'));
            expect((await balanceOf(escrow.address)) - escrowBefore).toBeGreaterThan(bond);

            const out = np.scriptedUI.text;
            expect(out).toContain(`evidence: ${file}, ${EVIDENCE.length} bytes; evidenceHash = sha256 of the file's bytes = ${hex(sha256(EVIDENCE))}`);
            expect(out).toContain(`attached: bond 1 TON + dispute fee ${fromNano(fee)} TON`);
            expect(out).toContain(`Disputed: the release of 1.5 TON is held; the arbiters' verdict is due by ${after.verdictBy}`);
            expect(out).not.toContain('Warning');
        });

        it('asks for the escrow, the reason and the evidence file', async () => {
            const { escrow } = await receipted();
            const np = await runScript(disputeEscrow, fx.blockchain, client, [], [escrow.address, '0', writeFile('evidence.bin', Buffer.from([0, 1, 2]))]);
            expect(np.scriptedUI.asked.map((q) => q.kind)).toEqual(['inputAddress', 'input', 'input']);
            expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
        });

        it('refuses, before sending: another sender, an escrow with no receipt or already disputed, bad arguments and files', async () => {
            const { escrow } = await receipted();
            const at = escrow.address.toString();
            const evidence = writeFile('evidence.txt', EVIDENCE);
            const engaged = (
                await openEscrowTx(fx, client, provider.address, 99n, { requestHash: REQUEST, modelHash: MODEL_A, maxAmount: toNano('1'), deadline: now() + 600 })
            ).escrow;
            expect(await engaged.getState()).toBe(ESCROW_ENGAGED);
            const cases: [SandboxContract<TreasuryContract>, string[], abstract new (...args: never[]) => Error, RegExp][] = [
                [runner, [at, '1', evidence], StateError, new RegExp(`only the escrow's client ${client.address.toString()} may dispute it; this wallet is ${runner.address.toString()}`)],
                [client, [engaged.address.toString(), '1', evidence], StateError, /the escrow has no receipt yet: there is nothing to dispute/],
                [client, [at, '256', evidence], InputError, /reason: "256" is not an integer from 0 to 2\^8-1/],
                [client, [at, 'late', evidence], InputError, /reason: "late" is not an integer/],
                [client, [at, '1', join(dir, 'missing.txt')], InputError, /evidence file: cannot read .*missing\.txt: no such file/],
                [client, [at, '1', writeFile('empty.txt', '')], InputError, /evidence file: .*empty\.txt is empty/],
                [client, [at, '1', evidence, 'x'], UsageError, /unexpected argument "x"\nusage: disputeEscrow <escrow> <reason 0..255> <evidence-file>/],
                [client, [at, '1', evidence, '--bond', '2'], UsageError, /unknown option --bond \(known: none\)/],
                [client, [provider.address.toString(), '1', evidence], StateError, /is not a Chrysalis Escrow/],
            ];
            for (const [wallet, args, type, message] of cases) {
                const { provider: np } = await expectFailure(disputeEscrow, fx.blockchain, wallet, args, type, message);
                expect(np.lastResult).toBeUndefined();
            }
            expect(await escrow.getState()).toBe(ESCROW_RECEIPTED);

            await runScript(disputeEscrow, fx.blockchain, client, [at, '1', evidence]);
            const { provider: np } = await expectFailure(disputeEscrow, fx.blockchain, client, [at, '1', evidence], StateError, /the escrow is already disputed; the verdict is due by/);
            expect(np.lastResult).toBeUndefined();
        });

        it('refuses an escrow of a deployment without arbiters', async () => {
            const plain = await deployFixture();
            const alice = await registerProvider(plain, 'alice');
            const plainClient = await plain.blockchain.treasury('client');
            const { escrow } = await receiptedEscrow(plain, plainClient, alice.provider, alice.enclave, 1n);
            expect((await escrow.getInfo()).engagement!.arbiterQuorum).toBe(0n);
            const { provider: np } = await expectFailure(
                disputeEscrow,
                plain.blockchain,
                plainClient,
                [escrow.address.toString(), '1', writeFile('evidence.txt', EVIDENCE)],
                StateError,
                /had no arbiters when the Provider engaged this escrow: it cannot be disputed \(the Escrow refuses with ERR_NO_ARBITERS\)/,
            );
            expect(np.lastResult).toBeUndefined();
        });

        it('warns when the local clock says the window has closed, and reports the Escrow refusing', async () => {
            const { escrow } = await receipted();
            fx.blockchain.now = Number((await escrow.getInfo()).releaseAt);
            syncLocalClock();
            const before = await balanceOf(client.address);
            const { provider: np, error } = await expectFailure(
                disputeEscrow,
                fx.blockchain,
                client,
                [escrow.address.toString(), '1', writeFile('evidence.txt', EVIDENCE)],
                TransactionFailedError,
                /Dispute failed: ERR_DISPUTE_WINDOW_CLOSED \(1309\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_DISPUTE_WINDOW_CLOSED));
            expect(np.scriptedUI.text).toContain("Warning: by this computer's clock the dispute window closed at");
            expect(await escrow.getState()).toBe(ESCROW_RECEIPTED);
            // The refused message bounced: the bond came back, less fees.
            expect(before - (await balanceOf(client.address))).toBeLessThan(toNano('0.05'));
        });
    });

    describe('submitVerdict', () => {
        it('ProviderWins: releases as usual, the bond to the payout less the arbiters fee; the runner pays the verdict fee only', async () => {
            const { escrow, fields } = await disputed();
            const bond = (await escrow.getInfo()).engagement!.disputeBond;
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address });
            const fee = await escrow.getVerdictFee();
            const runnerBefore = await balanceOf(runner.address);
            const np = await runScript(submitVerdict, fx.blockchain, runner, [escrow.address.toString(), verdictFile(signed)]);

            const r = np.lastResult!;
            const arbiterFee = (bond * fx.params.arbiterFeeBps) / 10000n;
            const protocolFee = (fields.amount * fx.params.protocolFeeBps) / 10000n;
            expect(messagesBetween(r, escrow.address, arbiterWallet.address).map((m) => m.value)).toEqual([arbiterFee]);
            expect(messagesBetween(r, escrow.address, owner.address).map((m) => m.value)).toEqual([bond - arbiterFee, fields.amount - protocolFee]);
            expect(messagesBetween(r, escrow.address, fx.treasury.address).map((m) => m.value)).toEqual([protocolFee]);
            expect(loadEscrowClosed(messagesBetween(r, escrow.address, client.address)[0].body.beginParse()).outcome).toBe(ESCROW_CLOSED_RELEASED);
            expect(await balanceOf(escrow.address)).toBe(0n);
            const p = await provider.getInfo();
            expect([p.openJobs, p.completedJobs, p.disputesLost]).toEqual([0n, 1n, 0n]);
            // The verdict fee was attached; a ProviderWins verdict sends no slash, so
            // part of it comes back. The runner spent fees only.
            const back = messagesBetween(r, escrow.address, runner.address);
            expect(back).toHaveLength(1);
            expect(back[0].value).toBeGreaterThan(0n);
            expect(back[0].value).toBeLessThan(fee);
            const spent = runnerBefore - (await balanceOf(runner.address));
            expect(spent).toBeGreaterThan(0n);
            expect(spent).toBeLessThan(fee + toNano('0.01'));

            const out = np.scriptedUI.text;
            expect(out).toContain('outcome: ProviderWins');
            expect(out).toContain(`signatures: arbiters 0, 1 (quorum 2 of 3), checked against the set of the Registry ${fx.registry.address.toString()}`);
            expect(out).toContain(`attached: verdict fee ${fromNano(fee)} TON (what the Escrow does not charge comes back)`);
            expect(out).toContain('Verdict accepted: ProviderWins. The escrow released 1.5 TON as if undisputed and closed.');
            expect(out).toContain(`to the payout ${owner.address.toString()}: 1.485 TON for the job and 0.9 TON of the bond`);
            expect(out).toContain(`arbiters' fee (1000 bps of the bond 1 TON) to ${arbiterWallet.address.toString()}: 0.1 TON`);
            expect(out).not.toContain('Warning');
        });

        it('ClientWins from signatures in separate files: everything to the client, the Provider slashed and jailed', async () => {
            const { escrow } = await disputed();
            const slash = toNano('30');
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: slash, feeTo: arbiterWallet.address }, [0, 2]);
            const escrowBalance = await balanceOf(escrow.address);
            const np = await runScript(submitVerdict, fx.blockchain, runner, [
                escrow.address.toString(),
                verdictFile(only(signed, [0])),
                verdictFile(only(signed, [2])),
            ]);

            const r = np.lastResult!;
            // The arbiters' fee is the bond's share (as had the provider won), paid
            // from the slash; the client gets its share of the rest.
            expectClientWinsPayouts(fx, r, { escrow: escrow.address, provider: provider.address, client: client.address, feeTo: arbiterWallet.address }, slash, escrowBalance);
            const p = await provider.getInfo();
            expect(p.stake).toBe(fx.params.minProviderStake - slash);
            expect([p.status, p.jailReason, p.disputesLost, p.openJobs]).toEqual([STATUS_JAILED, JAIL_STAKE_BELOW_MINIMUM, 1n, 0n]);

            const out = np.scriptedUI.text;
            expect(out).toContain('outcome: ClientWins, slash 30 TON');
            expect(out).toContain('signatures: arbiters 0, 2 (quorum 2 of 3)');
            expect(out).toContain(`Verdict accepted: ClientWins. The escrow closed and returned everything (${fromNano(escrowBalance)} TON, bond included)`);
            expect(out).toContain(`slash requested: 30 TON; the Provider ${provider.address.toString()} slashed 30 TON: stake 100 TON -> 70 TON`);
            expect(out).toContain(`arbiters' fee (1000 bps of the bond 1 TON) to ${arbiterWallet.address.toString()}: 0.1 TON`);
            expect(out).toContain('compensation (5000 bps of the rest) to the client: 14.95 TON');
            expect(out).toContain(`to the treasury ${fx.treasury.address.toString()}: 14.95 TON`);
            expect(out).toContain('the Provider is now Jailed: its stake is below the minimum');
        });

        /** A disputed escrow, a ProviderWins verdict on it signed by all three arbiters, and a runner of submitVerdict expected to refuse. */
        async function refusalSetup() {
            const { escrow } = await disputed();
            const verdict = { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address };
            const signed = await verdictFor(fx, escrow, verdict, [0, 1, 2]);
            const refuses = async (args: string[], type: abstract new (...args: never[]) => Error, message: RegExp) => {
                const { provider: np } = await expectFailure(submitVerdict, fx.blockchain, runner, [escrow.address.toString(), ...args], type, message);
                expect(np.lastResult).toBeUndefined();
            };
            const withSignatures = (entries: [number, Buffer][]): SignedVerdict => ({ verdict: signed.verdict, signatures: new Map(entries) });
            return { escrow, verdict, signed, refuses, withSignatures };
        }

        it('refuses, before sending: no quorum, bad or foreign signatures, verdicts for another escrow or opening', async () => {
            const { escrow, verdict, signed, refuses, withSignatures } = await refusalSetup();
            const other = (await disputed()).escrow;
            await refuses([verdictFile(only(signed, [0]))], InputError, /1 arbiter signature\(s\) \(0\), the quorum is 2 of 3: add the signature files of more arbiters/);
            await refuses([verdictFile(only(signed, []))], InputError, /0 arbiter signature\(s\) \(none\), the quorum is 2 of 3/);
            // Arbiter 1's slot signed by a key that is not arbiter 1's; arbiter 1's signature under an index with no arbiter.
            const forged = withSignatures([[0, signed.signatures.get(0)!], [1, signVerdict(signed.verdict, testKey('mallory'))]]);
            await refuses([verdictFile(forged)], InputError, /verdict file .*: the signature of arbiter 1 does not verify under its key/);
            const outsider = withSignatures([[0, signed.signatures.get(0)!], [5, signed.signatures.get(1)!]]);
            await refuses([verdictFile(outsider)], InputError, /verdict file .*: arbiter 5 is not in the engaged set \(indexes 0\.\.2\)/);
            await refuses([verdictFile(await verdictFor(fx, other, verdict))], InputError, /the Escrow would refuse it: verdict is for another escrow/);
            const otherOpening = await verdictFor(fx, escrow, { ...verdict, engageId: (await escrow.getInfo()).engageId + 1n });
            await refuses([verdictFile(otherOpening)], InputError, /the Escrow would refuse it: verdict is for another opening of this escrow/);
            expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
        });

        it('refuses, before sending: files of different verdicts or signatures, a wrong arbiter set, bad options', async () => {
            const { escrow, verdict, signed, refuses, withSignatures } = await refusalSetup();
            const clientWins = await verdictFor(fx, escrow, { ...verdict, outcome: VERDICT_CLIENT_WINS, slashAmount: 1n }, [1]);
            await refuses(
                [verdictFile(only(signed, [0])), verdictFile(clientWins)],
                InputError,
                /its verdict \(ClientWins, slash 0\.000000001 TON, deadline \d+\) is not the one in .* \(ProviderWins, slash 0 TON, deadline \d+\); every file must sign the same verdict/,
            );
            await refuses(
                [verdictFile(only(signed, [0])), verdictFile(withSignatures([[0, Buffer.alloc(64, 7)]]))],
                InputError,
                /verdict files .* and .* give different signatures for arbiter 0/,
            );
            const file = verdictFile(signed);
            await refuses(
                [file, '--arbiters', writeJson('arbiters.json', ARBITERS.slice(0, 2).map((k) => hex(k.publicKeyInt)))],
                InputError,
                /arbiters file .*: this set \(hash [0-9a-f]{64}\) is not the one the escrow was engaged with/,
            );
            await refuses([file, '--arbiters', writeJson('arbiters.json', [])], InputError, /arbiters file .*: needs a non-empty JSON list of arbiter keys/);
            await refuses([file, '--arbiters', writeJson('arbiters.json', ['xyz'])], InputError, /arbiter 0: "xyz" is not 32 bytes of hex/);
            await refuses([file, '--quorum', '1'], UsageError, /unknown option --quorum \(known: --arbiters\)\nusage: submitVerdict <escrow> <verdict.json>/);
            expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
        });

        it('refuses unreadable and malformed verdict files, and escrows that are not disputed', async () => {
            const { escrow } = await disputed();
            const at = escrow.address.toString();
            const good = signedVerdictToJson(await verdictFor(fx, escrow, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }));
            const wrongTag = beginCell()
                .store(storeVerdict({ ...parseVerdict(Cell.fromBase64(good.verdict)), tag: 1n }))
                .endCell();
            const cases: [string, RegExp][] = [
                [join(dir, 'missing.json'), /verdict file: cannot read .*missing\.json: no such file/],
                [writeFile('v.json', '{"verdict": '), /verdict file: .* is not valid JSON/],
                [writeJson('v.json', { verdict: good.verdict }), /needs "verdict" \(BOC, base64\) and "signatures" \(arbiter index -> 64 bytes of hex\)/],
                [writeJson('v.json', { ...good, signatures: { 0: 'abcd' } }), /signature of arbiter 0 must be 64 bytes of hex/],
                [writeJson('v.json', { ...good, signatures: { 256: good.signatures['0'] } }), /arbiter index 256 must be 0\.\.255/],
                [writeJson('v.json', { ...good, verdict: 'bm90IGEgYm9j' }), /verdict is not a BOC in base64/],
                [writeJson('v.json', { ...good, verdict: wrongTag.toBoc().toString('base64') }), /verdict file .*: not a verdict \(tag 1\)/],
                [writeJson('v.json', { ...good, verdict: beginCell().storeUint(1, 8).endCell().toBoc().toString('base64') }), /verdict file .*: the cell does not hold a Verdict/],
            ];
            for (const [file, message] of cases) {
                const { provider: np } = await expectFailure(submitVerdict, fx.blockchain, runner, [at, file], InputError, message);
                expect(np.lastResult).toBeUndefined();
            }

            const { escrow: notDisputed } = await receipted();
            const file = verdictFile(await verdictFor(fx, notDisputed, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address }));
            const { provider: np } = await expectFailure(
                submitVerdict,
                fx.blockchain,
                runner,
                [notDisputed.address.toString(), file],
                StateError,
                /the escrow is not disputed \(Receipted, releasable at/,
            );
            expect(np.lastResult).toBeUndefined();
            // Asks for the escrow and the verdict file when not given.
            const asked = await expectFailure(submitVerdict, fx.blockchain, runner, [], StateError, /not disputed/, [notDisputed.address, file]);
            expect(asked.provider.scriptedUI.asked.map((q) => q.kind)).toEqual(['inputAddress', 'input']);
            expect(asked.provider.lastResult).toBeUndefined();
        });

        it('after governance changed the arbiters: refuses the Registry set, takes the engaged set with --arbiters', async () => {
            const { escrow } = await disputed();
            const arbitersHash = (await escrow.getInfo()).engagement!.arbitersHash;
            expect(arbitersHashOf(ARBITER_SET)).toBe(arbitersHash);
            const newArbiters = [0, 1, 2].map((i) => testKey(`new arbiter${i}`).publicKeyInt);
            const changed = { ...fx.params, arbiters: arbiterDictionary(newArbiters) };
            const admin = await fx.registry.getAdminFee();
            await fx.registry.send(fx.governance.getSender(), { value: admin }, { $$type: 'ProposeParams', queryId: 1n, params: changed });
            fx.blockchain.now = now() + Number(fx.params.timelock);
            await fx.registry.send(fx.governance.getSender(), { value: admin }, { $$type: 'ExecuteParams', queryId: 2n });
            expect(arbitersHashOf((await fx.registry.getParams()).arbiters)).not.toBe(arbitersHash);

            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_PROVIDER_WINS, slashAmount: 0n, feeTo: arbiterWallet.address });
            const file = verdictFile(signed);
            const { provider: np } = await expectFailure(
                submitVerdict,
                fx.blockchain,
                runner,
                [escrow.address.toString(), file],
                StateError,
                /governance has changed the arbiters since the Provider engaged it, and the engaged set is no longer available from the Registry\. Pass the engaged set with --arbiters <file>/,
            );
            expect(np.lastResult).toBeUndefined();
            // A params file with the new set is not the engaged one either.
            const params = writeJson('params.json', paramsToJson(changed));
            await expectFailure(submitVerdict, fx.blockchain, runner, [escrow.address.toString(), file, '--arbiters', params], InputError, /is not the one the escrow was engaged with/);

            const engaged = writeJson('arbiters.json', ARBITERS.map((k) => '0x' + hex(k.publicKeyInt)));
            const ok = await runScript(submitVerdict, fx.blockchain, runner, [escrow.address.toString(), file, `--arbiters=${engaged}`]);
            expect(await balanceOf(escrow.address)).toBe(0n);
            expect(ok.scriptedUI.text).toContain(`checked against the set of ${engaged}`);
            expect(ok.scriptedUI.text).toContain('Verdict accepted: ProviderWins');
        });

        it('warns about and reports a verdict past its own deadline (the chain judges time)', async () => {
            const { escrow } = await disputed();
            const signed = await verdictFor(fx, escrow, { outcome: VERDICT_CLIENT_WINS, slashAmount: toNano('10'), feeTo: arbiterWallet.address });
            fx.blockchain.now = Number(parseVerdict(signed.verdict).deadline) + 1;
            syncLocalClock();
            const stake = await provider.getStake();
            const { provider: np, error } = await expectFailure(
                submitVerdict,
                fx.blockchain,
                runner,
                [escrow.address.toString(), verdictFile(signed)],
                TransactionFailedError,
                /SubmitVerdict failed: ERR_VERDICT_LATE \(1312\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_VERDICT_LATE));
            expect(np.scriptedUI.text).toContain("Warning: by this computer's clock the verdict's own deadline");
            expect(np.scriptedUI.text).not.toContain("the escrow's verdict deadline");
            expect(await escrow.getState()).toBe(ESCROW_DISPUTED);
            expect(await provider.getStake()).toBe(stake);
        });
    });

    describe('fault proofs', () => {
        const ESCROW = new Address(0, Buffer.alloc(32, 0xe5));

        function receipt(overrides: Partial<ReceiptFields> = {}, key: Ed25519KeyPair = enclave.signing): SignedReceipt {
            return signReceipt(
                {
                    escrow: ESCROW,
                    engageId: 42n,
                    requestHash: REQUEST,
                    responseHash: 0xbeefn,
                    modelHash: MODEL_A,
                    inputUnits: 10n,
                    outputUnits: 20n,
                    amount: toNano('1'),
                    finishedAt: now(),
                    ...overrides,
                },
                key,
            );
        }

        /** What a proof against the 100 TON stake pays: half of it slashed, a tenth of that to the prover. */
        const SLASHED = toNano('50');
        const REWARD = toNano('5');

        it('proveEquivocation: slashes, burns the key, jails, and rewards the prover; a second proof is refused by the chain', async () => {
            const a = receiptFile(receipt());
            const b = receiptFile(receipt({ amount: toNano('1.2'), responseHash: 0xf00dn }));
            const fee = await provider.getProofFee();
            const runnerBefore = await balanceOf(runner.address);
            const np = await runScript(proveEquivocation, fx.blockchain, runner, [provider.address.toString(), a, b]);

            const p = await provider.getInfo();
            expect(p.stake).toBe(fx.params.minProviderStake - SLASHED);
            expect([p.status, p.jailReason]).toEqual([STATUS_JAILED, JAIL_PROVEN_FAULT]);
            const replies = messagesBetween(np.lastResult!, provider.address, runner.address);
            expect(replies).toHaveLength(1);
            const reply = loadFaultReward(replies[0].body.beginParse());
            expect([reply.fault, reply.reward]).toEqual([FAULT_EQUIVOCATION, REWARD]);
            // The prover gained the reward, less the part of the proof fee used and its wallet's fees.
            const gained = (await balanceOf(runner.address)) - runnerBefore;
            expect(gained).toBeLessThan(REWARD);
            expect(gained).toBeGreaterThan(REWARD - fee - toNano('0.01'));
            expect(messagesBetween(np.lastResult!, provider.address, fx.treasury.address).map((m) => m.value)).toEqual([SLASHED - REWARD]);

            const out = np.scriptedUI.text;
            expect(out).toContain(`Two receipts signed by the key ${hex(enclave.signing.publicKeyInt)} for one request:`);
            expect(out).toContain(`Proving equivocation against the Provider ${provider.address.toString()}`);
            expect(out).toContain('stake 100 TON: the proof slashes 5000 bps = 50 TON; 1000 bps of that, 5 TON, rewards this wallet');
            expect(out).toContain(`attached: proof fee ${fromNano(fee)} TON`);
            expect(out).toContain('Proven: equivocation.');
            expect(out).toContain('stake 100 TON -> 50 TON (slashed 50 TON)');
            expect(out).toContain(`reward to ${runner.address.toString()}: 5 TON, with the unused part of the proof fee`);
            expect(out).toContain(`to the treasury ${fx.treasury.address.toString()}: 45 TON`);
            expect(out).toContain('the Provider is Jailed, jail reason proven fault (3)');
            expect(out).not.toContain('Warning');

            // The key is burned: another proof by it pays nothing; the script warns and the chain refuses.
            const c = receiptFile(receipt({ amount: toNano('0.5') }));
            const { provider: again, error } = await expectFailure(
                proveEquivocation,
                fx.blockchain,
                runner,
                [provider.address.toString(), a, c],
                TransactionFailedError,
                /ProveEquivocation failed: ERR_ALREADY_PROVEN \(1207\)/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_ALREADY_PROVEN));
            expect(again.scriptedUI.text).toContain('Warning: the Provider is Jailed for a proven fault already');
            expect(await provider.getStake()).toBe(fx.params.minProviderStake - SLASHED);
        });

        it('proveEquivocation refuses, before sending: receipts that do not conflict, another key, bad files and arguments', async () => {
            const p = provider.address.toString();
            const a = receiptFile(receipt());
            const cases: [string[], abstract new (...args: never[]) => Error, RegExp][] = [
                [[p, a, a], InputError, /prove no equivocation \(the Provider would refuse them: ERR_NOT_A_FAULT\): the receipts are the same/],
                [[p, a, receiptFile(receipt({ requestHash: REQUEST + 1n, amount: 2n }))], InputError, /the receipts are for different requests: no equivocation/],
                [[p, a, receiptFile(receipt({ engageId: 43n, amount: 2n }))], InputError, /the receipts are for different requests/],
                [[p, a, receiptFile(receipt({ escrow: new Address(0, Buffer.alloc(32, 1)), amount: 2n }))], InputError, /the receipts are for different requests/],
                [
                    [p, a, receiptFile(receipt({ amount: 2n }, testKey('not the enclave')))],
                    InputError,
                    new RegExp(`receipt file .*: not signed by the Provider's current enclave key ${hex(enclave.signing.publicKeyInt)}; a proof can only be made against that key`),
                ],
                [[p, a, join(dir, 'missing.json')], InputError, /receipt file: cannot read .*: no such file/],
                [[p, a, writeJson('r.json', { receipt: 'x' })], InputError, /needs "receipt" \(BOC, base64\) and "signature" \(hex\)/],
                [[p, a], InputError, /second receipt file is required/],
                [[p, a, a, 'x'], UsageError, /unexpected argument "x"\nusage: proveEquivocation <provider> <receipt-a.json> <receipt-b.json>/],
                [['nope', a, a], InputError, /provider: "nope" is not a TON address/],
                [[fx.registry.address.toString(), a, a], StateError, /is not a Chrysalis Provider/],
            ];
            for (const [args, type, message] of cases) {
                const answers = args.length === 2 ? [''] : [];
                const { provider: np } = await expectFailure(proveEquivocation, fx.blockchain, runner, args, type, message, answers);
                expect(np.lastResult).toBeUndefined();
            }
            expect((await provider.getInfo()).status).toBe(STATUS_ACTIVE);
        });

        it('proveInvalidReceipt: a receipt finished after the attestation expired', async () => {
            const validUntil = Number((await provider.getInfo()).attestationValidUntil);
            const np = await runScript(proveInvalidReceipt, fx.blockchain, runner, [provider.address.toString(), receiptFile(receipt({ finishedAt: validUntil + 1 }))]);
            const reply = loadFaultReward(messagesBetween(np.lastResult!, provider.address, runner.address)[0].body.beginParse());
            expect([reply.fault, reply.reward]).toEqual([FAULT_AFTER_ATTESTATION, REWARD]);
            const p = await provider.getInfo();
            expect([p.stake, p.status, p.jailReason]).toEqual([fx.params.minProviderStake - SLASHED, STATUS_JAILED, JAIL_PROVEN_FAULT]);
            const out = np.scriptedUI.text;
            expect(out).toContain(`the Provider's attestation is valid until ${validUntil}`);
            expect(out).toContain('Proven: receipt finished after the attestation expired.');
            expect(out).toContain('stake 100 TON -> 50 TON (slashed 50 TON)');
            expect(out).not.toContain('Note:');
        });

        it('proveInvalidReceipt: a receipt for a model the Provider does not serve, with the note that the chain judges its time', async () => {
            const np = await runScript(proveInvalidReceipt, fx.blockchain, runner, [provider.address.toString(), receiptFile(receipt({ modelHash: UNSERVED_MODEL }))]);
            const reply = loadFaultReward(messagesBetween(np.lastResult!, provider.address, runner.address)[0].body.beginParse());
            expect([reply.fault, reply.reward]).toEqual([FAULT_UNSERVED_MODEL, REWARD]);
            expect(await provider.getStake()).toBe(fx.params.minProviderStake - SLASHED);
            const out = np.scriptedUI.text;
            expect(out).toContain(`model ${hex(UNSERVED_MODEL)} (not served by the Provider)`);
            expect(out).toContain('Note: an unserved-model receipt is a fault only if it finished at or after the time from which the Provider judges receipts');
            expect(out).toContain('Proven: receipt for an unserved model.');
        });

        it('proveInvalidReceipt reports the chain refusing an unserved-model receipt from before the model set took effect', async () => {
            // The Provider registered (its model set took effect) before this time.
            const { error } = await expectFailure(
                proveInvalidReceipt,
                fx.blockchain,
                runner,
                [provider.address.toString(), receiptFile(receipt({ modelHash: UNSERVED_MODEL, finishedAt: now() - Number(fx.params.timelock) }))],
                TransactionFailedError,
                /ProveInvalidReceipt failed: ERR_NOT_A_FAULT \(1206\): the receipt finished before the time from which the Provider judges receipts against its current model set/,
            );
            expect((error as TransactionFailedError).exitCode).toBe(Number(ERR_NOT_A_FAULT));
            expect(await provider.getStake()).toBe(fx.params.minProviderStake);
        });

        it('proveInvalidReceipt refuses, before sending: a receipt that breaks no rule, another key, bad arguments', async () => {
            const p = provider.address.toString();
            const cases: [string[], abstract new (...args: never[]) => Error, RegExp][] = [
                [
                    [p, receiptFile(receipt())],
                    InputError,
                    /the receipt breaks no rule the Provider can judge: it finished at .*, within the attestation .*, for a model the Provider serves \(the Provider would refuse it: ERR_NOT_A_FAULT\)/,
                ],
                [[p, receiptFile(receipt({ modelHash: UNSERVED_MODEL }, testKey('not the enclave')))], InputError, /not signed by the Provider's current enclave key/],
                [[p, writeFile('r.json', 'not json')], InputError, /receipt file: .* is not valid JSON/],
                [[p, receiptFile(receipt()), 'x'], UsageError, /unexpected argument "x"\nusage: proveInvalidReceipt <provider> <receipt.json>/],
                [[(await fx.registry.getProviderAddress(runner.address)).toString(), receiptFile(receipt())], StateError, /no Provider is deployed at/],
            ];
            for (const [args, type, message] of cases) {
                const { provider: np } = await expectFailure(proveInvalidReceipt, fx.blockchain, runner, args, type, message);
                expect(np.lastResult).toBeUndefined();
            }
            expect(await provider.getStake()).toBe(fx.params.minProviderStake);
        });
    });
});
