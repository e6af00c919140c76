// End to end on the embedded chain: runners serving encrypted requests
// through escrows, the client SDK checking providers and answers, crashes
// and restarts, misbehaving runners slashed through the contracts, and bad
// input refused with nothing signed.
import '@ton/test-utils';
import { Address, beginCell, toNano } from '@ton/core';
import {
    ALLOWLIST_MEASUREMENT,
    FAULT_EQUIVOCATION,
    FAULT_UNSERVED_MODEL,
    JAIL_GOVERNANCE,
    loadFaultReward,
    STATUS_JAILED,
    storeAllowlistRevoke,
    storeJailProvider,
    storeOpenEscrow,
} from '../wrappers/Registry';
import { Provider } from '../wrappers/Provider';
import { Escrow } from '../wrappers/Escrow';
import { modelHash } from '../wrappers/attestation';
import { bufferToBigInt } from '../wrappers/ed25519';
import { parseReceipt, receiptHash, signedReceiptFromJson } from '../wrappers/receipt';
import { clientSharedSecret, requestKeyPair, seal } from '../runner/envelope';
import { OpenAICompatibleModel } from '../runner/models';
import { JobErrorCode, jobContext, requestHashOf } from '../runner/protocol';
import { RunnerNode } from '../runner/node';
import { SimulatedTee } from '../runner/tee';
import { startRunnerServer } from '../runner/server';
import { EnclaveRunner } from '../runner/runner';
import { JobStore } from '../runner/store';
import { ModelSet } from '../runner/models';
import { ClientError, receiptOfAnswer } from '../sdk/client';
import { simulatedVendor } from '../runner/localnet';
import { PRICES, runMarketplace } from '../demo/marketplace';
import { forgetfulStore, substitutedModelReceipt } from '../demo/adversaries';
import { Market, OP, question, REFERENCE, silent, STAKE, startMarket, successfulCalls, UNSERVED_MODEL } from './helpers/market';
import { startOpenAIStub } from './helpers/openaiStub';
import path from 'path';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';

jest.setTimeout(120_000);

describe('the marketplace demo as assertions', () => {
    it('serves, disputes, slashes and accounts for every nanoton', async () => {
        const lines: string[] = [];
        const account = await runMarketplace((l) => lines.push(l));
        expect(account.unaccounted).toBe(0n);
        expect(lines.join('\n')).toContain('every nanoton accounted for');
        expect(account.served.filter((s) => s.provider === 'alice')).toHaveLength(3);
        // Alice: three jobs completed, stake untouched.
        expect(account.providers.alice).toEqual({ status: 1n, stake: STAKE, completedJobs: 3n, disputesLost: 0n, keyBurned: false });
        // Bob lost the dispute: the verdict's 10 TON slashed, no job completed.
        expect(account.dispute.judgement).toBe('client-wins');
        expect(account.providers.bob).toEqual({ status: 1n, stake: STAKE - toNano('10'), completedJobs: 0n, disputesLost: 1n, keyBurned: false });
        // Mallory equivocated: half the stake slashed, jailed, the key burned.
        expect(account.equivocation.first).not.toBe(account.equivocation.second);
        expect(account.providers.mallory).toMatchObject({ status: STATUS_JAILED, stake: STAKE / 2n, keyBurned: true });
        // Every escrow closed: nothing left in any of them.
        for (const row of account.balances.filter((b) => b.name.startsWith('escrow'))) expect(row.after).toBe(0n);
    });
});

describe('runners that crash', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('killed after signing but before recording: nothing left the process, the retry is answered and one receipt lands', async () => {
        let crashes = 1;
        market = await startMarket([{ name: 'alice', node: { runner: { beforeRecord: () => { if (crashes-- > 0) throw new Error('killed'); } } } }]);
        const { sdk, providers, chain } = market;
        const alice = providers.alice;
        const handle = await sdk.discover(alice.owner.address, alice.node.url);
        const ticket = await sdk.open(handle, question(), { maxAmount: toNano('0.05') });
        await expect(sdk.sendRequest(handle, ticket)).rejects.toMatchObject({ code: 'runner-refused' });
        expect(alice.node.store.counts().signed).toBe(0);
        const result = await sdk.sendRequest(handle, ticket);
        expect((await alice.node.tick()).submitted).toBe(1);
        const accepted = await successfulCalls(chain, ticket.escrow, OP.submitReceipt);
        expect(accepted).toHaveLength(1);
        expect(receiptHash(signedReceiptFromJson(ticket.answer!.receipt).receipt)).toEqual(receiptHash(result.receipt.receipt));
    });

    it('killed after recording but before submitting: restarted with its sealed identity, it answers the same receipt and submits it once', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const { sdk, providers, chain } = market;
        const before = providers.alice.node;
        const handle = await sdk.discover(providers.alice.owner.address, before.url);
        const ticket = await sdk.open(handle, question(), { maxAmount: toNano('0.05') });
        const first = await sdk.sendRequest(handle, ticket);
        const key = Buffer.from(before.tee.signingKey);
        await before.close(); // the process dies: no tick ran, nothing submitted

        const after = await market.restart('alice');
        expect(after.tee.signingKey).toEqual(key);
        const again = await sdk.sendRequest({ ...handle, runnerUrl: after.url }, ticket);
        expect(receiptHash(again.receipt.receipt)).toEqual(receiptHash(first.receipt.receipt));
        expect((await after.tick()).submitted).toBe(1);
        expect((await after.tick()).submitted).toBe(0);
        expect(await successfulCalls(chain, ticket.escrow, OP.submitReceipt)).toHaveLength(1);
        expect(after.store.counts()).toMatchObject({ signed: 0, submitted: 1 });

        // The dispute window passes: released, and the restart's loop sees it.
        chain.blockchain.now! += Number(market.net.params.disputeWindow);
        expect((await after.tick()).releasesSent).toBe(1);
        expect((await after.tick()).released).toBe(1);
        expect(await chain.isDeployed(ticket.escrow)).toBe(false);
        expect(after.store.counts()).toMatchObject({ released: 1 });
    });

    it('a store opened for another enclave key is refused, so two identities never share one', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const dir = path.join(market.dataRoot, 'alice');
        await market.providers.alice.node.close();
        // eslint-disable-next-line @typescript-eslint/no-unsafe-argument -- jest types its asymmetric matchers as any
        expect(() => JobStore.open(path.join(dir, 'jobs.sqlite'), { enclaveKey: Buffer.alloc(32, 7) })).toThrow(expect.objectContaining({ code: 'wrong-key' }));
    });
});

describe('misbehaving runners are slashed through the contracts', () => {
    let market: Market;
    afterEach(async () => market?.close());

    async function faultRewardTo(client: Address, provider: Address) {
        const txs = await market.chain.transactionsSince(client, 0n, 1000);
        return txs
            .map((tx) => tx.inMessage!)
            .filter((m) => m.info.type === 'internal' && m.info.src.equals(provider) && m.body.beginParse().preloadUint(32) === OP.faultReward)
            .map((m) => ({ value: m.info.type === 'internal' ? m.info.value.coins : 0n, body: loadFaultReward(m.body.beginParse()) }));
    }

    it('a runner that signs two receipts for one request: the client proves it, the provider is jailed, half its stake slashed, the key burned', async () => {
        market = await startMarket([{ name: 'mallory', node: { wrapStore: forgetfulStore } }]);
        const { sdk, providers, client } = market;
        const mallory = providers.mallory;
        const handle = await sdk.discover(mallory.owner.address, mallory.node.url);
        const ticket = await sdk.open(handle, question(), { maxAmount: toNano('0.05') });
        await sdk.sendRequest(handle, ticket);
        const a = receiptOfAnswer(ticket.answer!);
        await sdk.sendRequest(handle, ticket);
        const b = receiptOfAnswer(ticket.answer!);
        expect(a.hash.equals(b.hash)).toBe(false);
        expect(a.fields.requestHash).toBe(b.fields.requestHash);

        await sdk.proveEquivocation(mallory.provider, a.signed, b.signed);
        const provider = Provider.fromAddress(mallory.provider);
        const info = await provider.getInfo(market.chain.provider(mallory.provider));
        expect(info.status).toBe(STATUS_JAILED);
        expect(info.stake).toBe(STAKE / 2n);
        expect(await provider.getKeyBurned(market.chain.provider(mallory.provider), bufferToBigInt(mallory.node.tee.signingKey))).toBe(true);
        const rewards = await faultRewardTo(client.address, mallory.provider);
        expect(rewards).toHaveLength(1);
        expect(rewards[0].body.fault).toBe(FAULT_EQUIVOCATION);
        expect(rewards[0].body.reward).toBe(((STAKE / 2n) * market.net.params.reporterRewardBps) / 10000n);
        // A jailed provider takes no new job: the client's next escrow is refused and refunded.
        const handleAfter = sdk.discover(mallory.owner.address, mallory.node.url);
        await expect(handleAfter).rejects.toMatchObject({ code: 'provider-not-active' });
    });

    it('a runner that signs for a model it is not attested for: the SDK refuses the receipt, and the proof slashes the provider', async () => {
        market = await startMarket([{ name: 'eve' }]);
        const { sdk, providers, chain } = market;
        const eve = providers.eve;
        const handle = await sdk.discover(eve.owner.address, eve.node.url);
        const ticket = await sdk.open(handle, question(), { maxAmount: toNano('0.05') });
        const honest = await sdk.sendRequest(handle, ticket);
        // Eve's enclave signs the same job as run on a cheaper model it was never attested for.
        const cheap = modelHash('cheap-model', 'v0', 'd'.repeat(64));
        const substituted = substitutedModelReceipt(eve.node.tee, { ...honest.fields, escrow: ticket.escrow, finishedAt: Number(honest.fields.finishedAt) }, cheap);
        let refused: unknown;
        try {
            sdk.check(handle, ticket, { ...ticket.answer!, receipt: { receipt: substituted.receipt.toBoc().toString('base64'), signature: substituted.signature.toString('hex') } });
        } catch (e) {
            refused = e;
        }
        expect(refused).toBeInstanceOf(ClientError);
        expect((refused as ClientError).code).toBe('bad-receipt');
        expect(parseReceipt(substituted.receipt).modelHash).toBe(cheap);

        await sdk.proveInvalidReceipt(eve.provider, substituted);
        const info = await Provider.fromAddress(eve.provider).getInfo(chain.provider(eve.provider));
        expect(info.status).toBe(STATUS_JAILED);
        expect(info.stake).toBe(STAKE / 2n);
        const rewards = await faultRewardTo(market.client.address, eve.provider);
        expect(rewards.map((r) => r.body.fault)).toEqual([FAULT_UNSERVED_MODEL]);
    });
});

describe('a client refuses before paying', () => {
    let market: Market;
    afterEach(async () => market?.close());

    async function refusesWithoutPaying(market: Market, attempt: () => Promise<unknown>, code: string) {
        const before = await market.chain.balance(market.client.address);
        await expect(attempt()).rejects.toMatchObject({ name: 'ClientError', code });
        expect(await market.chain.balance(market.client.address)).toBe(before);
    }

    it('an owner with no registered provider', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const stranger = await market.chain.wallet('e2e:stranger');
        await refusesWithoutPaying(market, () => market.sdk.discover(stranger.address, market.providers.alice.node.url), 'provider-not-active');
    });

    it("a runner whose enclave is not the provider's attested one", async () => {
        market = await startMarket([{ name: 'alice' }]);
        const alice = market.providers.alice;
        const dir = mkdtempSync(path.join(tmpdir(), 'chrysalis-impostor-'));
        const impostorTee = SimulatedTee.open({ sealedPath: path.join(dir, 'k'), sealingKey: Buffer.alloc(32, 9), measurement: alice.node.measurement, platform: market.net.vendor.platform });
        const store = JobStore.open(':memory:', { enclaveKey: impostorTee.signingKey });
        const runner = new EnclaveRunner({ chain: market.chain, wallet: alice.hot, tee: impostorTee, store, models: new ModelSet([REFERENCE]), provider: alice.provider, prices: { perInputUnit: 1n, perOutputUnit: 1n }, logger: silent });
        const server = await startRunnerServer(runner, market.chain, silent);
        try {
            await refusesWithoutPaying(market, () => market.sdk.discover(alice.owner.address, server.url), 'keys-mismatch');
        } finally {
            await server.close();
            store.close();
            rmSync(dir, { recursive: true, force: true });
        }
    });

    it('evidence from a platform the client does not trust', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const alice = market.providers.alice;
        const { ChrysalisClient } = await import('../sdk/client');
        const wary = new ChrysalisClient({ chain: market.chain, wallet: market.client, registry: market.net.registry, quoteVerifier: simulatedVendor('another-vendor').quoteVerifier });
        await refusesWithoutPaying(market, () => wary.discover(alice.owner.address, alice.node.url), 'attestation-invalid');
    });

    it('a provider whose image governance revoked', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const { net, chain, providers } = market;
        const fee = toNano('0.05');
        await chain.send(net.governance, {
            to: net.registry,
            value: fee,
            body: beginCell().store(storeAllowlistRevoke({ $$type: 'AllowlistRevoke', queryId: 0n, list: ALLOWLIST_MEASUREMENT, entry: bufferToBigInt(providers.alice.node.measurement) })).endCell(),
        });
        await refusesWithoutPaying(market, () => market.sdk.discover(providers.alice.owner.address, providers.alice.node.url), 'measurement-not-allowed');
    });

    it('a jailed provider', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const { net, chain, providers } = market;
        await chain.send(net.governance, {
            to: net.registry,
            value: toNano('0.1'),
            body: beginCell().store(storeJailProvider({ $$type: 'JailProvider', queryId: 0n, providerOwner: providers.alice.owner.address, reason: JAIL_GOVERNANCE })).endCell(),
        });
        await refusesWithoutPaying(market, () => market.sdk.discover(providers.alice.owner.address, providers.alice.node.url), 'provider-not-active');
    });
});

describe('bad input: a clear HTTP error and nothing signed', () => {
    let market: Market;
    let node: RunnerNode;
    beforeAll(async () => {
        market = await startMarket([{ name: 'alice' }]);
        node = market.providers.alice.node;
    });
    afterAll(async () => market?.close());

    let nonce = 100n;
    /** Opens an escrow for the reference model (or `model`) and returns what a raw client needs. */
    async function openRaw(opts: { request?: object; maxAmount?: bigint; deadlineIn?: number; model?: bigint; sealTo?: Buffer } = {}) {
        const { chain, client, providers } = market;
        const escrow = await Escrow.fromInit(client.address, providers.alice.provider, nonce++);
        const key = requestKeyPair();
        const secret = clientSharedSecret(key.privateKey, opts.sealTo ?? node.tee.encryptionKey);
        const sealedRequest = seal(secret, 'request', jobContext(escrow.address), Buffer.from(JSON.stringify(opts.request ?? question())));
        const requestHash = requestHashOf(key.publicKey, sealedRequest);
        const maxAmount = opts.maxAmount ?? toNano('0.05');
        const openFee = await Provider.fromAddress(providers.alice.provider).getEscrowOpenFee(chain.provider(providers.alice.provider));
        await chain.send(client, {
            to: escrow.address,
            value: maxAmount + openFee,
            init: escrow.init!,
            body: beginCell()
                .store(storeOpenEscrow({ $$type: 'OpenEscrow', queryId: 0n, requestHash, modelHash: opts.model ?? REFERENCE.modelHash, maxAmount, deadline: BigInt((await chain.now()) + (opts.deadlineIn ?? 3600)) }))
                .endCell(),
        });
        return { escrow: escrow.address.toString(), clientKey: key.publicKey.toString('hex'), sealedRequest: sealedRequest.toString('base64') };
    }

    async function post(body: unknown): Promise<{ status: number; code: JobErrorCode }> {
        const res = await fetch(`${node.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
        const json = (await res.json()) as { error: { code: JobErrorCode } };
        return { status: res.status, code: json.error.code };
    }

    afterEach(() => {
        expect(node.store.counts()).toEqual({ signed: 0, submitted: 0, released: 0, closed: 0 });
    });

    it('not JSON → 400 malformed', async () => expect(await post('{nope')).toEqual({ status: 400, code: 'malformed' }));
    it('fields missing → 400 malformed', async () => expect(await post({ escrow: 'x' })).toEqual({ status: 400, code: 'malformed' }));
    it('no escrow at the address → 404 escrow-not-found', async () => {
        const job = await openRaw();
        const nowhere = new Address(0, Buffer.alloc(32, 1)).toString();
        expect(await post({ ...job, escrow: nowhere })).toEqual({ status: 404, code: 'escrow-not-found' });
    });
    it('a request other than the one committed → 409 request-mismatch', async () => {
        const job = await openRaw();
        const other = await openRaw();
        expect(await post({ ...job, sealedRequest: other.sealedRequest })).toEqual({ status: 409, code: 'request-mismatch' });
    });
    it('sealed to another key (but committed) → 422 undecryptable', async () => {
        expect(await post(await openRaw({ sealTo: requestKeyPair().publicKey }))).toEqual({ status: 422, code: 'undecryptable' });
    });
    it('asks for another model than the escrow pays for → 422 model-mismatch', async () => {
        expect(await post(await openRaw({ request: { ...question(), model: 'gpt-oss-120b' } }))).toEqual({ status: 422, code: 'model-mismatch' });
    });
    it('an escrow for a model attested on-chain but not served by this runner → 422 model-not-served', async () => {
        expect(await post(await openRaw({ model: UNSERVED_MODEL }))).toEqual({ status: 422, code: 'model-not-served' });
    });
    it('not a valid inference request → 422 bad-request', async () => {
        expect(await post(await openRaw({ request: { model: REFERENCE.name, messages: [], maxOutputTokens: 5 } }))).toEqual({ status: 422, code: 'bad-request' });
    });
    it('an escrow too small for the input and one output unit → 402 escrow-too-small', async () => {
        expect(await post(await openRaw({ maxAmount: 1000n }))).toEqual({ status: 402, code: 'escrow-too-small' });
    });
    it('too close to the deadline → 410 expired', async () => {
        expect(await post(await openRaw({ deadlineIn: 30 }))).toEqual({ status: 410, code: 'expired' });
    });
    it('over the size limit → 413 too-large', async () => {
        const job = await openRaw();
        expect(await post({ ...job, sealedRequest: Buffer.alloc(300 * 1024).toString('base64') })).toEqual({ status: 413, code: 'too-large' });
    });
    it('an unknown route → 404 not-found', async () => {
        const res = await fetch(`${node.url}/v1/nothing`);
        expect(res.status).toBe(404);
    });
});

describe('a runner on an OpenAI-compatible backend', () => {
    it('serves a job through the adapter, metered by the backend’s usage', async () => {
        const stub = await startOpenAIStub();
        const backend = new OpenAICompatibleModel({ name: 'stub-llm', revision: 'v1', weightsHash: 'e'.repeat(64), baseUrl: stub.url, remoteModel: 'stub' });
        const market = await startMarket([{ name: 'vera', models: [backend] }]);
        try {
            const { sdk, providers } = market;
            const handle = await sdk.discover(providers.vera.owner.address, providers.vera.node.url);
            expect(handle.models.map((m) => m.name)).toEqual(['stub-llm']);
            const result = await sdk.request(handle, { ...question('Name a TON wallet.'), model: 'stub-llm' }, { maxAmount: toNano('0.05') });
            expect(stub.requests).toHaveLength(1);
            expect(stub.requests[0].body).toMatchObject({ model: 'stub', messages: [{ role: 'user', content: 'Name a TON wallet.' }] });
            expect(result.fields.modelHash).toBe(backend.modelHash);
            expect(result.fields.outputUnits).toBe(BigInt(result.result.outputUnits));
            expect(result.fields.amount).toBe(result.fields.inputUnits * PRICES.perInputUnit + result.fields.outputUnits * PRICES.perOutputUnit);
            expect((await providers.vera.node.tick()).submitted).toBe(1);
        } finally {
            await market.close();
            await stub.close();
        }
    });
});
