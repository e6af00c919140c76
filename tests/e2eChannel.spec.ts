// Payment channels end to end on the embedded chain: the client SDK
// (sdk/channel.ts) opening a channel and sending many requests through a
// provider's runner (runner/channels.ts), cumulative receipts kept durably
// across crashes and races, claims by threshold and at close, refusals with
// nothing signed, the SDK refusing receipts that do not chain, and one
// request disputed and refunded through the arbiters.
import '@ton/test-utils';
import { Address, beginCell, toNano } from '@ton/core';
import { internal } from '@ton/sandbox';
import Database from 'better-sqlite3';
import path from 'path';
import { Channel } from '../wrappers/Channel';
import { Provider } from '../wrappers/Provider';
import { FAULT_CHANNEL_EQUIVOCATION, loadFaultReward, STATUS_JAILED, storeOpenChannel } from '../wrappers/Registry';
import {
    buildChannelReceipt,
    channelReceiptHash,
    channelReceiptsConflict,
    parseChannelReceipt,
    SignedChannelReceipt,
    signedChannelReceiptFromJson,
    signedChannelReceiptToJson,
} from '../wrappers/channelReceipt';
import { arbiterDictionary } from '../wrappers/params';
import { bufferToBigInt, randomKeyPair, signHash } from '../wrappers/ed25519';
import { clientSharedSecret, requestKeyPair, seal } from '../runner/envelope';
import { ModelSet, ReferenceModel } from '../runner/models';
import { RunnerNode } from '../runner/node';
import { ChannelAnswerJson, closeCommand, closeContext, JobErrorCode, jobContext, priceOf } from '../runner/protocol';
import { ChannelReceiptRecord } from '../runner/store';
import { ConfigError, parseRunnerConfig } from '../runner/config';
import { PRICES } from '../demo/marketplace';
import { LazyModel } from '../demo/adversaries';
import { ProviderHandle } from '../sdk/client';
import { ChannelClient, ChannelError, judgeChannelDispute, PaymentChannel, signChannelJudgement } from '../sdk/channel';
import { DISPUTE_REASONS } from '../sdk/client';
import { Market, OP, question, STAKE, startMarket } from './helpers/market';

jest.setTimeout(180_000);

const DEPOSIT = toNano('2');

/** The values of successful inbound messages with opcode `op` from `from` at `to`. */
async function paymentsTo(market: Market, to: Address, from: Address, op: number): Promise<bigint[]> {
    const txs = await market.chain.transactionsSince(to, 0n, 10_000);
    return txs
        .filter((tx) => {
            const m = tx.inMessage;
            return m?.info.type === 'internal' && m.info.src.equals(from) && m.body.beginParse().remainingBits >= 32 && m.body.beginParse().preloadUint(32) === op;
        })
        .map((tx) => (tx.inMessage!.info.type === 'internal' ? tx.inMessage!.info.value.coins : 0n));
}

/** Successful ClaimChannel transactions at the channel. */
async function claimsAt(market: Market, channel: Address): Promise<number> {
    const txs = await market.chain.transactionsSince(channel, 0n, 10_000);
    return txs.filter((tx) => {
        const body = tx.inMessage?.body.beginParse();
        if (!body || body.remainingBits < 32 || body.preloadUint(32) !== OP.claimChannel) return false;
        return tx.description.type === 'generic' && tx.description.computePhase.type === 'vm' && tx.description.computePhase.success && !tx.description.aborted;
    }).length;
}

/** Every pair of stored receipts of the opening is consistent: no two share a seqno, none has a lower amount than an earlier one. */
function expectNoConflict(receipts: { receipt: SignedChannelReceipt }[]): void {
    for (let i = 0; i < receipts.length; i++) {
        for (let j = i + 1; j < receipts.length; j++) expect(channelReceiptsConflict(receipts[i].receipt, receipts[j].receipt)).toBe(false);
    }
}

function signedOf(r: ChannelReceiptRecord): SignedChannelReceipt {
    return { receipt: r.receipt, signature: r.signature };
}

/** The raw rows of the runner's SQLite file: (seqno, count) per seqno of every opening. */
function duplicateSeqnos(_node: RunnerNode, dataRoot: string, name: string): unknown[] {
    const db = new Database(path.join(dataRoot, name, 'jobs.sqlite'), { readonly: true });
    try {
        return db.prepare('SELECT channel, open_id, seqno, count(*) AS n FROM channel_receipts GROUP BY channel, open_id, seqno HAVING n > 1').all();
    } finally {
        db.close();
    }
}

describe('a payment channel through the SDK and a runner', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('serves many requests, claims once at the cooperative close, and pays exactly the cumulative amount', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const { channels, sdk, providers, chain, net, client } = market;
        const alice = providers.alice;
        const handle = await sdk.discover(alice.owner.address, alice.node.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        const info = await channels.info(ch);
        expect(info.state).toBe(2n);
        expect(info.deposit).toBe(DEPOSIT);

        const N = 40;
        let expected = 0n;
        for (let i = 0; i < N; i++) {
            const { record, result } = await channels.request(ch, question(`Question number ${i}: what is a channel?`, 8));
            expect(record.seqno).toBe(BigInt(i + 1));
            expected += priceOf(PRICES, BigInt(result.inputUnits), BigInt(result.outputUnits));
            expect(record.fields.amount).toBe(expected);
        }
        expect(ch.spent).toBe(expected);
        // Below the default threshold (1 TON): the loop claims nothing yet.
        expect(expected).toBeLessThan(toNano('1'));
        expect(await alice.node.tick()).toMatchObject({ claimsSent: 0, errors: [] });

        const clientBefore = await chain.balance(client.address);
        const outcome = await channels.close(ch);
        expect(outcome).toMatchObject({ kind: 'closed', amount: expected, claimedBy: 'runner' });
        expect(await chain.isDeployed(ch.address)).toBe(false);
        const final = parseChannelReceipt(ch.final!.receipt);
        expect(final).toMatchObject({ seqno: BigInt(N + 1), amount: expected, requests: BigInt(N), final: true });

        // One claim in the channel's whole life; the provider and the treasury get exactly the cumulative amount.
        expect(await claimsAt(market, ch.address)).toBe(1);
        const payout = info.engagement!.payout;
        const fee = (expected * net.params.protocolFeeBps) / 10000n;
        expect(await paymentsTo(market, payout, ch.address, OP.channelPayment)).toEqual([expected - fee]);
        expect(await paymentsTo(market, net.treasury.address, ch.address, OP.channelPayment)).toEqual([fee]);
        // The client got the rest of the deposit back (and what the open fee did not spend), paying nothing for the close.
        const refund = (await chain.balance(client.address)) - clientBefore;
        expect(refund).toBeGreaterThan(DEPOSIT - expected);
        expect(refund).toBeLessThan(DEPOSIT - expected + (await Provider.fromAddress(alice.provider).getChannelOpenFee(chain.provider(alice.provider))));

        // The runner's store: N + 1 receipts, chained, the last final; the loop sees the channel end.
        const stored = alice.node.store.channelReceipts(ch.address, ch.openId);
        expect(stored.map((r) => r.seqno)).toEqual(Array.from({ length: N + 1 }, (_, i) => BigInt(i + 1)));
        expect(stored.map((r) => channelReceiptHash(r.receipt).toString('hex'))).toEqual(ch.receipts().map((s) => channelReceiptHash(s.receipt).toString('hex')));
        expect((await alice.node.tick()).channelsEnded).toBe(1);
        expect(alice.node.store.getChannel(ch.address, ch.openId)).toMatchObject({ status: 'ended', outcome: 'released' });
        const p = await Provider.fromAddress(alice.provider).getInfo(chain.provider(alice.provider));
        expect(p).toMatchObject({ openJobs: 0n, completedJobs: 1n });
    });
});

/** A request sealed to the enclave for `channel`, as the SDK seals it. */
function sealedRequestFor(channel: Address, handle: ProviderHandle, request: object = question()) {
    const key = requestKeyPair();
    const sealed = seal(clientSharedSecret(key.privateKey, handle.encryptionKey), 'request', jobContext(channel), Buffer.from(JSON.stringify(request)));
    return { clientKey: key.publicKey.toString('hex'), sealedRequest: sealed.toString('base64') };
}

/** POSTs to a runner route; the status and the JSON body. */
async function post(url: string, body: unknown): Promise<{ status: number; body: { error?: { code: JobErrorCode } } & Partial<ChannelAnswerJson> }> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { error?: { code: JobErrorCode } } & Partial<ChannelAnswerJson> };
}

describe('receipts across crashes and races', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('killed after signing, before the record: nothing left the process, the chain continues from the last recorded receipt, also after a restart', async () => {
        let crash = false;
        market = await startMarket([
            {
                name: 'alice',
                node: {
                    runner: {
                        beforeChannelRecord: () => {
                            if (crash) {
                                crash = false;
                                throw new Error('killed before the record');
                            }
                        },
                    },
                },
            },
        ]);
        const { channels, sdk, providers, dataRoot } = market;
        const handle = await sdk.discover(providers.alice.owner.address, providers.alice.node.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        await channels.request(ch, question('one'));
        await channels.request(ch, question('two'));
        crash = true;
        await expect(channels.request(ch, question('three'))).rejects.toMatchObject({ code: 'runner-refused', status: 500 });
        const node = providers.alice.node;
        expect(node.store.latestChannelReceipt(ch.address, ch.openId)!.seqno).toBe(2n);
        expect(ch.requests).toHaveLength(2);
        const third = await channels.request(ch, question('three, again'));
        expect(third.record.seqno).toBe(3n);
        expect(third.record.step.prev).toBe(ch.requests[1].fields.root);

        // The process dies and restarts on the same data directory: the same latest receipt, and the chain goes on.
        const latest = node.store.latestChannelReceipt(ch.address, ch.openId)!;
        await node.close();
        const after = await market.restart('alice');
        expect(channelReceiptHash(after.store.latestChannelReceipt(ch.address, ch.openId)!.receipt)).toEqual(channelReceiptHash(latest.receipt));
        ch.runnerUrl = after.url;
        const fourth = await channels.request(ch, question('four'));
        expect(fourth.record.seqno).toBe(4n);
        const stored = after.store.channelReceipts(ch.address, ch.openId);
        expect(stored.map((r) => r.seqno)).toEqual([1n, 2n, 3n, 4n]);
        expectNoConflict(stored.map((r) => ({ receipt: signedOf(r) })));
        expect(duplicateSeqnos(after, dataRoot, 'alice')).toEqual([]);
        expect(ch.conflicts).toEqual([]);
    });

    it('killed after the record, before answering: the restarted runner answers the recorded receipt and the next request continues the chain', async () => {
        let crash = false;
        let victim: RunnerNode | undefined;
        market = await startMarket([
            {
                name: 'alice',
                node: {
                    runner: {
                        afterChannelRecord: () => {
                            if (crash && victim) {
                                crash = false;
                                // The process dies with the answer unsent: its connections drop.
                                void victim.server!.close().catch(() => undefined);
                                throw new Error('killed after the record');
                            }
                        },
                    },
                },
            },
        ]);
        const { channels, sdk, providers, dataRoot } = market;
        victim = providers.alice.node;
        const handle = await sdk.discover(providers.alice.owner.address, victim.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        await channels.request(ch, question('one'));
        await channels.request(ch, question('two'));
        crash = true;
        await expect(channels.request(ch, question('three'))).rejects.toMatchObject({ code: 'runner-unreachable' });
        expect(ch.requests).toHaveLength(2);
        const recorded = victim.store.latestChannelReceipt(ch.address, ch.openId)!;
        expect(recorded.seqno).toBe(3n);
        victim.store.close();

        const after = await market.restart('alice');
        ch.runnerUrl = after.url;
        // The client asks for what it missed: the recorded receipt, checked like any answer.
        const recovered = await channels.sync(ch);
        expect(recovered?.record.seqno).toBe(3n);
        expect(channelReceiptHash(recovered!.record.receipt.receipt)).toEqual(channelReceiptHash(recorded.receipt));
        expect(recovered?.result.text.length).toBeGreaterThan(0);
        const fourth = await channels.request(ch, question('four'));
        expect(fourth.record.seqno).toBe(4n);
        expect(fourth.record.step.prev).toBe(recorded.root);
        const stored = after.store.channelReceipts(ch.address, ch.openId);
        expect(stored.map((r) => r.seqno)).toEqual([1n, 2n, 3n, 4n]);
        expectNoConflict([...stored.map((r) => ({ receipt: signedOf(r) })), ...ch.requests.map((r) => ({ receipt: r.receipt }))]);
        expect(duplicateSeqnos(after, dataRoot, 'alice')).toEqual([]);

        // A retried request (the same sealed bytes) is answered from the store, not served and charged again.
        const retry = await post(`${after.url}/v1/channels/${ch.address.toString()}/requests`, {
            clientKey: fourth.record.clientKey.publicKey.toString('hex'),
            sealedRequest: fourth.record.sealedRequest.toString('base64'),
        });
        expect(retry.status).toBe(200);
        expect(retry.body.receipt).toEqual(fourth.record.answer.receipt);
        expect(after.store.channelReceipts(ch.address, ch.openId)).toHaveLength(4);
    });

    it('concurrent requests on one channel are served one at a time: contiguous seqnos, each receipt chained from the one before', async () => {
        market = await startMarket([{ name: 'alice' }]);
        const { channels, sdk, providers } = market;
        const node = providers.alice.node;
        const handle = await sdk.discover(providers.alice.owner.address, node.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        // Through the SDK (which queues a channel's requests too)...
        const viaSdk = await Promise.all(Array.from({ length: 5 }, (_, i) => channels.request(ch, question(`sdk ${i}`))));
        expect(viaSdk.map((r) => r.record.seqno).sort((a, b) => Number(a - b))).toEqual([1n, 2n, 3n, 4n, 5n]);
        // ...and raw, all at once, straight at the runner.
        const url = `${node.url}/v1/channels/${ch.address.toString()}/requests`;
        const raw = await Promise.all(Array.from({ length: 8 }, (_, i) => post(url, sealedRequestFor(ch.address, handle, question(`raw ${i}`)))));
        expect(raw.map((r) => r.status)).toEqual(Array(8).fill(200));
        const seqnos = raw.map((r) => parseChannelReceipt(signedChannelReceiptFromJson(r.body.receipt!).receipt).seqno).sort((a, b) => Number(a - b));
        expect(seqnos).toEqual([6n, 7n, 8n, 9n, 10n, 11n, 12n, 13n]);
        const stored = node.store.channelReceipts(ch.address, ch.openId);
        expect(stored.map((r) => r.seqno)).toEqual(Array.from({ length: 13 }, (_, i) => BigInt(i + 1)));
        for (let i = 1; i < stored.length; i++) {
            expect(stored[i].served!.step.prev).toBe(stored[i - 1].root);
            expect(stored[i].amount).toBe(stored[i - 1].amount + stored[i].served!.step.amount);
        }
        expectNoConflict(stored.map((r) => ({ receipt: signedOf(r) })));
    });
});

describe('claims', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('claims when the unclaimed amount reaches the threshold, when the client asks to close, and before the channel runs out of time', async () => {
        const threshold = toNano('0.05');
        market = await startMarket([{ name: 'alice', node: { runner: { channelClaimThreshold: threshold } } }]);
        const { channels, sdk, providers, chain, net } = market;
        const node = providers.alice.node;
        const handle = await sdk.discover(providers.alice.owner.address, node.url);

        // A channel near its expiry: its last receipt is claimed, below the threshold, while claims are still accepted.
        const short = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 600 });
        await channels.request(short, question());
        expect((await node.tick()).claimsSent).toBe(0);
        chain.blockchain.now = short.expiresAt - 30;
        await expect(channels.request(short, question())).rejects.toMatchObject({ runnerCode: 'expired' });
        expect(await node.tick()).toMatchObject({ claimsSent: 1, claimed: 1 });
        expect((await channels.info(short)).settled).toBe(short.spent);
        expect((await node.tick()).claimsSent).toBe(0);

        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        while (ch.spent + toNano('0.014') < threshold) await channels.request(ch, question());
        expect(await node.tick()).toMatchObject({ claimsSent: 0, errors: [] });
        await channels.request(ch, question());
        expect(ch.spent).toBeGreaterThanOrEqual(threshold);
        expect(await node.tick()).toMatchObject({ claimsSent: 1, claimed: 1, errors: [] });
        let info = await channels.info(ch);
        expect(info.seqno).toBe(ch.latest!.seqno);
        expect(info.settled).toBe(ch.spent);
        expect((await node.tick()).claimsSent).toBe(0);

        // Below the threshold again: no claim until the client asks to close.
        await channels.request(ch, question());
        await channels.request(ch, question());
        expect((await node.tick()).claimsSent).toBe(0);
        const closeBy = await channels.requestClose(ch);
        await expect(channels.request(ch, question())).rejects.toMatchObject({ code: 'runner-refused', runnerCode: 'channel-closing' });
        expect(await node.tick()).toMatchObject({ claimsSent: 1, claimed: 1 });
        info = await channels.info(ch);
        expect(info.settled).toBe(ch.spent);
        await expect(channels.settle(ch)).rejects.toMatchObject({ code: 'send-failed' });
        chain.blockchain.now = closeBy;
        await channels.settle(ch);
        expect(await chain.isDeployed(ch.address)).toBe(false);
        const payout = info.engagement!.payout;
        const paid = await paymentsTo(market, payout, ch.address, OP.channelPayment);
        const fees = await paymentsTo(market, net.treasury.address, ch.address, OP.channelPayment);
        expect(paid).toHaveLength(2);
        expect([...paid, ...fees].reduce((a, b) => a + b, 0n)).toBe(ch.spent);
        expect((await node.tick()).channelsEnded).toBe(1);

    });
});

describe('refusals: nothing is signed', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('refuses unknown, unengaged, foreign, undecryptable, exhausted, expired and closing channels, and unproven closes', async () => {
        market = await startMarket([{ name: 'alice' }, { name: 'bob' }]);
        const { channels, sdk, providers, chain, client } = market;
        const alice = providers.alice.node;
        const aliceHandle = await sdk.discover(providers.alice.owner.address, alice.url);
        const bobHandle = await sdk.discover(providers.bob.owner.address, providers.bob.node.url);
        const requestsUrl = (a: Address) => `${alice.url}/v1/channels/${a.toString()}/requests`;
        const opened: PaymentChannel[] = [];
        const signedByAlice = () => opened.reduce((n, c) => n + alice.store.channelReceipts(c.address, c.openId).length, 0);

        // No channel there.
        const nowhere = new Address(0, Buffer.alloc(32, 9));
        expect(await post(requestsUrl(nowhere), sealedRequestFor(nowhere, aliceHandle))).toMatchObject({ status: 404, body: { error: { code: 'channel-not-found' } } });
        expect((await fetch(`${alice.url}/v1/channels/${nowhere.toString()}`)).status).toBe(404);
        expect(await post(requestsUrl(nowhere), { clientKey: 'zz' })).toMatchObject({ status: 400, body: { error: { code: 'malformed' } } });

        // Opened but not yet engaged: the EngageChannel is still on its way.
        const pendingChannel = await Channel.fromInit(client.address, providers.alice.provider, 77n);
        const openFee = await Provider.fromAddress(providers.alice.provider).getChannelOpenFee(chain.provider(providers.alice.provider));
        const iter = await chain.blockchain.sendMessageIter(
            internal({
                from: client.address,
                to: pendingChannel.address,
                value: DEPOSIT + openFee,
                stateInit: pendingChannel.init!,
                body: beginCell()
                    .store(storeOpenChannel({ $$type: 'OpenChannel', queryId: 0n, modelHash: aliceHandle.models[0].modelHash, deposit: DEPOSIT, expiresAt: BigInt((await chain.now()) + 3600) }))
                    .endCell(),
            }),
        );
        await iter.next();
        expect((await Channel.fromAddress(pendingChannel.address).getInfo(chain.provider(pendingChannel.address))).state).toBe(1n);
        expect(await post(requestsUrl(pendingChannel.address), sealedRequestFor(pendingChannel.address, aliceHandle))).toMatchObject({
            status: 409,
            body: { error: { code: 'channel-not-active' } },
        });
        for (let r = await iter.next(); !r.done; r = await iter.next());
        expect((await Channel.fromAddress(pendingChannel.address).getInfo(chain.provider(pendingChannel.address))).state).toBe(2n);

        // Another provider's channel.
        const bobs = await channels.openChannel(bobHandle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        expect(await post(requestsUrl(bobs.address), sealedRequestFor(bobs.address, aliceHandle))).toMatchObject({ status: 403, body: { error: { code: 'wrong-provider' } } });

        // A request sealed for another channel does not open for this one; a request for another model.
        const ch = await channels.openChannel(aliceHandle, { deposit: toNano('0.02'), expiresInSeconds: 3600 });
        opened.push(ch);
        expect(await post(requestsUrl(ch.address), sealedRequestFor(bobs.address, aliceHandle))).toMatchObject({ status: 422, body: { error: { code: 'undecryptable' } } });
        expect(await post(requestsUrl(ch.address), sealedRequestFor(ch.address, aliceHandle, { ...question(), model: 'another-model' }))).toMatchObject({
            status: 422,
            body: { error: { code: 'model-mismatch' } },
        });
        expect(signedByAlice()).toBe(0);

        // Over the deposit: the output is capped to what is left, then refused; a top-up pays for more.
        let refused: ChannelError | undefined;
        for (let i = 0; i < 10 && !refused; i++) {
            await channels.request(ch, question()).catch((e: unknown) => {
                if (!(e instanceof ChannelError)) throw e;
                refused = e;
            });
        }
        expect(refused).toMatchObject({ code: 'runner-refused', status: 402, runnerCode: 'deposit-exhausted' });
        expect(ch.spent).toBeLessThanOrEqual(toNano('0.02'));
        expect(ch.requests.length).toBeGreaterThanOrEqual(1);
        const signedBefore = signedByAlice();
        expect(signedBefore).toBe(ch.requests.length);
        await channels.topUp(ch, toNano('0.05'));
        expect(ch.deposit).toBe(toNano('0.07'));
        await channels.request(ch, question());
        expect(signedByAlice()).toBe(signedBefore + 1);

        // An unproven close: a key that served no request here, or a close sealed for another opening.
        const closeUrl = `${alice.url}/v1/channels/${ch.address.toString()}/close`;
        const stranger = requestKeyPair();
        const strangerClose = seal(clientSharedSecret(stranger.privateKey, aliceHandle.encryptionKey), 'request', jobContext(ch.address), Buffer.from('{}'));
        expect(await post(closeUrl, { clientKey: stranger.publicKey.toString('hex'), sealedClose: strangerClose.toString('base64') })).toMatchObject({
            status: 403,
            body: { error: { code: 'close-unauthorized' } },
        });
        const last = ch.latest!;
        const wrongOpening = seal(clientSharedSecret(last.clientKey.privateKey, aliceHandle.encryptionKey), 'request', closeContext(ch.address), closeCommand(ch.address, ch.openId + 1n));
        expect(await post(closeUrl, { clientKey: last.clientKey.publicKey.toString('hex'), sealedClose: wrongOpening.toString('base64') })).toMatchObject({
            status: 403,
            body: { error: { code: 'close-unauthorized' } },
        });
        expect(alice.store.latestChannelReceipt(ch.address, ch.openId)!.final).toBe(false);

        // Too close to the expiry; then a channel whose client asked to close.
        const expiring = await channels.openChannel(aliceHandle, { deposit: DEPOSIT, expiresInSeconds: 600 });
        opened.push(expiring);
        const closing = await channels.openChannel(aliceHandle, { deposit: DEPOSIT, expiresInSeconds: 7200 });
        opened.push(closing);
        await channels.requestClose(closing);
        expect(await post(requestsUrl(closing.address), sealedRequestFor(closing.address, aliceHandle))).toMatchObject({ status: 410, body: { error: { code: 'channel-closing' } } });
        chain.blockchain.now = expiring.expiresAt - 30;
        expect(await post(requestsUrl(expiring.address), sealedRequestFor(expiring.address, aliceHandle))).toMatchObject({ status: 410, body: { error: { code: 'expired' } } });
        expect(signedByAlice()).toBe(signedBefore + 1);
    });
});

describe('the SDK checks every receipt', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('rejects a forged or out-of-chain receipt, recovers the honest one, keeps disputable ones, and proves an equivocation', async () => {
        market = await startMarket([{ name: 'mallory' }]);
        const { sdk, providers, chain, net, client } = market;
        const mallory = providers.mallory;
        const handle = await sdk.discover(mallory.owner.address, mallory.node.url);
        let tamper: ((a: ChannelAnswerJson) => ChannelAnswerJson) | undefined;
        // A man in the middle (or a compromised runner) rewrites the next request's answer.
        const tampering: typeof fetch = async (input, init) => {
            const res = await fetch(input, init);
            const t = tamper;
            const url = typeof input === 'string' ? input : 'url' in input ? input.url : input.href;
            if (!t || !url.endsWith('/requests') || !res.ok) return res;
            tamper = undefined;
            return new Response(JSON.stringify(t((await res.json()) as ChannelAnswerJson)), { status: 200, headers: { 'content-type': 'application/json' } });
        };
        const channels = new ChannelClient({ chain, wallet: client, registry: net.registry, quoteVerifier: net.vendor.quoteVerifier, fetch: tampering });
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        await channels.request(ch, question('one'));

        // Signed by someone else: rejected and not kept; the honest answer is recovered from the runner.
        tamper = (a) => {
            const s = signedChannelReceiptFromJson(a.receipt);
            return { ...a, receipt: signedChannelReceiptToJson({ receipt: s.receipt, signature: signHash(channelReceiptHash(s.receipt), randomKeyPair()) }) };
        };
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- jest types its asymmetric matchers as any
        await expect(channels.request(ch, question('two'))).rejects.toMatchObject({ code: 'bad-receipt', message: expect.stringContaining('not signed by the engaged enclave key') });
        expect(ch.requests).toHaveLength(1);
        expect(ch.rejected).toHaveLength(0);
        expect((await channels.sync(ch))?.record.seqno).toBe(2n);

        // The response swapped on the way: the receipt chains, so it is kept, and the request is disputable.
        tamper = (a) => ({ ...a, sealedResponse: Buffer.from('not the signed response').toString('base64') });
        await expect(channels.request(ch, question('three'))).rejects.toMatchObject({ code: 'response-mismatch', seqno: 3n });
        expect(ch.requests.map((r) => r.seqno)).toEqual([1n, 2n, 3n]);

        // Signed by the enclave but out of chain (a seqno skipped): rejected, kept as evidence; the honest one recovered.
        tamper = (a) => {
            const r = parseChannelReceipt(signedChannelReceiptFromJson(a.receipt).receipt);
            const skipped = buildChannelReceipt({ ...r, seqno: r.seqno + 1n });
            return { ...a, receipt: signedChannelReceiptToJson({ receipt: skipped, signature: mallory.node.tee.sign(channelReceiptHash(skipped)) }) };
        };
        // eslint-disable-next-line @typescript-eslint/no-unsafe-assignment -- jest types its asymmetric matchers as any
        await expect(channels.request(ch, question('four'))).rejects.toMatchObject({ code: 'bad-receipt', message: expect.stringContaining('seqno 5 is not 4') });
        expect(ch.rejected).toHaveLength(1);
        expect((await channels.sync(ch))?.record.seqno).toBe(4n);

        // The enclave's honest receipt 5 now conflicts with the skipped one it also signed for seqno 5: both kept, and provable.
        await expect(channels.request(ch, question('five'))).rejects.toMatchObject({ code: 'equivocation', seqno: 5n });
        expect(ch.conflicts).toHaveLength(1);
        await channels.proveEquivocation(ch);
        const provider = Provider.fromAddress(mallory.provider);
        const info = await provider.getInfo(chain.provider(mallory.provider));
        expect(info.status).toBe(STATUS_JAILED);
        expect(info.stake).toBe(STAKE / 2n);
        expect(await provider.getKeyBurned(chain.provider(mallory.provider), bufferToBigInt(mallory.node.tee.signingKey))).toBe(true);
        const rewards = (await chain.transactionsSince(client.address, 0n, 1000))
            .map((tx) => tx.inMessage!)
            .filter((m) => m.info.type === 'internal' && m.info.src.equals(mallory.provider) && m.body.beginParse().preloadUint(32) === OP.faultReward)
            .map((m) => loadFaultReward(m.body.beginParse()));
        expect(rewards.map((r) => r.fault)).toEqual([FAULT_CHANNEL_EQUIVOCATION]);
    });
});

describe('disputing one request of a channel', () => {
    let market: Market;
    afterEach(async () => market?.close());

    it('a wrong answer inside a channel: the arbiters find for the client, the request is refunded with the bond, the provider slashed, the channel goes on', async () => {
        market = await startMarket([{ name: 'bob', models: [new LazyModel()] }]);
        const { channels, sdk, providers, chain, net, client } = market;
        const bob = providers.bob;
        const handle = await sdk.discover(bob.owner.address, bob.node.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        const asked = [question('What is TON?'), question('What is a channel?'), question('What is a receipt?')];
        const answers = [];
        for (const q of asked) answers.push(await channels.request(ch, q));
        // The client re-runs the public reference model: request 2 is not what it computes.
        const reference = new ReferenceModel();
        const expected = await reference.complete({ ...asked[1], maxOutputTokens: Math.min(asked[1].maxOutputTokens, answers[1].result.outputUnits) });
        expect(expected.text).not.toBe(answers[1].result.text);

        const { evidence, evidenceHash, verdictBy } = await channels.disputeRequest(ch, 2n, DISPUTE_REASONS.wrongOutput);
        const judgement = await judgeChannelDispute(chain, evidence, new ModelSet([reference]), { expectedEvidenceHash: evidenceHash });
        expect(judgement.outcome).toBe('client-wins');
        const feeTo = await chain.wallet('e2e:arbiters');
        const slash = toNano('10');
        const verdict = signChannelJudgement(judgement, { channel: ch.address, openId: ch.openId, seqno: 2n, slashAmount: slash, deadline: verdictBy, feeTo: feeTo.address }, new Map([[0, net.arbiters[0]], [2, net.arbiters[2]]]));
        await channels.submitVerdict(ch, verdict, arbiterDictionary(net.arbiters.map((k) => k.publicKeyInt)));
        const bond = (await channels.info(ch)).engagement!.disputeBond;
        expect(await paymentsTo(market, client.address, ch.address, OP.channelRefund)).toEqual([answers[1].record.step.amount + bond]);
        const p = await Provider.fromAddress(bob.provider).getInfo(chain.provider(bob.provider));
        expect(p.stake).toBe(STAKE - slash);
        expect(p.disputesLost).toBe(1n);

        // The channel goes on; the cooperative close pays the provider the cumulative amount less the refunded request.
        await channels.request(ch, question('And one more?'));
        const info = await channels.info(ch);
        const settledBefore = info.settled;
        const outcome = await channels.close(ch);
        expect(outcome.kind).toBe('closed');
        const payout = info.engagement!.payout;
        const paid = [...(await paymentsTo(market, payout, ch.address, OP.channelPayment)), ...(await paymentsTo(market, net.treasury.address, ch.address, OP.channelPayment))];
        // What the deposit paid out before the close is the refund; the claim paid the rest of the cumulative amount.
        expect(settledBefore).toBe(answers[1].record.step.amount);
        expect(paid.reduce((a, b) => a + b, 0n)).toBe(ch.spent - answers[1].record.step.amount);
    });
    it('a dispute no verdict answers: after verdictBy the client expires it and gets the request back with the bond, the part claims had paid from the stake', async () => {
        market = await startMarket([{ name: 'bob', models: [new LazyModel()] }]);
        const { channels, sdk, providers, chain, client } = market;
        const bob = providers.bob;
        const handle = await sdk.discover(bob.owner.address, bob.node.url);
        const ch = await channels.openChannel(handle, { deposit: DEPOSIT, expiresInSeconds: 3600 });
        for (const q of ['What is TON?', 'What is a channel?', 'What is a receipt?']) await channels.request(ch, question(q));
        // Claimed through request 3: request 2 is paid for before it is disputed.
        await channels.claim(ch, ch.requests[2].receipt);
        expect((await channels.info(ch)).settled).toBe(ch.spent);
        const disputed = ch.requests[1].step.amount;
        const { verdictBy } = await channels.disputeRequest(ch, 2n, DISPUTE_REASONS.wrongOutput);
        await expect(channels.expireDispute(ch)).rejects.toMatchObject({ code: 'not-disputable' });

        chain.blockchain.now = verdictBy + 1;
        await channels.expireDispute(ch);
        const info = await channels.info(ch);
        expect(info.disputePending).toBe(false);
        // Nothing of it was unpaid, so the refund from the deposit is the bond alone; the stake returns the rest.
        expect(await paymentsTo(market, client.address, ch.address, OP.channelRefund)).toEqual([info.engagement!.disputeBond]);
        const restituted = await paymentsTo(market, client.address, bob.provider, OP.slashPayment);
        expect(restituted).toHaveLength(1);
        expect(restituted[0]).toBeGreaterThanOrEqual(disputed);
        const p = await Provider.fromAddress(bob.provider).getInfo(chain.provider(bob.provider));
        expect(p.stake).toBe(STAKE - disputed);
        expect(p.disputesLost).toBe(0n); // a lapsed dispute is no verdict: no dispute is counted lost
        await expect(channels.expireDispute(ch)).rejects.toMatchObject({ code: 'not-disputable' });
    });
});

describe('the runner config', () => {
    it('carries the channel claim threshold in nanoton, exactly, and refuses anything else', () => {
        const base = { chain: { kind: 'sandbox' }, models: [{ kind: 'reference' }], prices: { perInputUnit: '1', perOutputUnit: '1' } };
        expect(parseRunnerConfig(base, '/srv').channelClaimThreshold).toBeUndefined();
        expect(parseRunnerConfig({ ...base, channelClaimThreshold: '123456789012345678901' }, '/srv').channelClaimThreshold).toBe(123456789012345678901n);
        for (const bad of [1000, '-5', '1.5', '']) {
            expect(() => parseRunnerConfig({ ...base, channelClaimThreshold: bad }, '/srv')).toThrow(new ConfigError('channelClaimThreshold must be nanoton as a decimal string'));
        }
    });
});
