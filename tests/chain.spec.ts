// runner/chain.ts: the sandbox backend on an embedded chain, config
// resolution, and the TonClient backend against a local toncenter stub.
import '@ton/test-utils';
import { Address, beginCell, Cell, loadMessageRelaxed, SendMode, toNano, Transaction } from '@ton/core';
import { KeyPair, mnemonicNew, mnemonicToPrivateKey, signVerify } from '@ton/crypto';
import { WalletContractV4, WalletContractV5R1 } from '@ton/ton';
import {
    ChainError,
    ChainErrorCode,
    ChainWallet,
    openChain,
    resolveTonConfig,
    SandboxChain,
    TONCENTER_ENDPOINTS,
    TonClientChain,
    transactionFees,
} from '../runner/chain';
import { ALLOWLIST_MODEL, Registry, storeAllowlistAdd, storeDeployRegistry } from '../wrappers/Registry';
import { defaultParams } from '../wrappers/params';
import { MODEL_A, T0 } from './helpers/fixture';
import { ToncenterStub } from './helpers/toncenterStub';

function addr(n: number): Address {
    return new Address(0, Buffer.alloc(32, n));
}

function note(n: number): Cell {
    return beginCell().storeUint(0, 32).storeStringTail(`note ${n}`).endCell();
}

async function expectChainError(p: Promise<unknown>, code: ChainErrorCode): Promise<ChainError> {
    const e: unknown = await p.then(
        () => undefined,
        (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(ChainError);
    const ce = e as ChainError;
    expect(ce.name).toBe('ChainError');
    expect(ce.code).toBe(code);
    return ce;
}

/** Sends `n` plain transfers from `wallet` to `to` (bounce off, so an undeployed `to` keeps them). */
async function sendNotes(chain: SandboxChain, wallet: ChainWallet, to: Address, n: number, from = 0): Promise<void> {
    for (let i = from; i < from + n; i++) await chain.send(wallet, { to, value: toNano('0.1'), body: note(i), bounce: false });
}

const lts = (txs: Transaction[]) => txs.map((t) => t.lt);

describe('SandboxChain', () => {
    it('makes funded wallets by name, the same wallet for the same name', async () => {
        const chain = await SandboxChain.create();
        expect(chain.kind).toBe('sandbox');
        const a = await chain.wallet('alice');
        const again = await chain.wallet('alice');
        const rich = await chain.wallet('rich', toNano('5000'));
        expect(again.address.equals(a.address)).toBe(true);
        expect(a.label).toBe('alice');
        expect(rich.address.equals(a.address)).toBe(false);
        expect(await chain.balance(rich.address)).toBe(toNano('5000'));
        expect(await chain.balance(a.address)).toBeGreaterThan(toNano('1000'));
        expect(await chain.isDeployed(a.address)).toBe(true);
        expect(await chain.isDeployed(addr(9))).toBe(false);
        expect(await chain.balance(addr(9))).toBe(0n);
    });

    it('sends and reports every transaction and fee, so every nanoton is accounted for', async () => {
        const chain = await SandboxChain.create({ now: T0 });
        const w = await chain.wallet('alice');
        const to = addr(1);
        const before = await chain.balance(w.address);
        const report = await chain.send(w, { to, value: toNano('2'), body: note(0), bounce: false });
        const txs = report.transactions ?? [];
        expect(txs).toHaveLength(2);
        // In execution order: the wallet's external-in, then the delivery.
        expect(txs[0].inMessage?.info.type).toBe('external-in');
        expect(txs[1].inMessage?.info.dest).toEqualAddress(to);
        expect(txs[0].lt).toBeLessThan(txs[1].lt);
        expect(report.fees).toBe(transactionFees(txs));
        expect(report.fees).toBeGreaterThan(0n);
        const after = await chain.balance(w.address);
        expect(await chain.balance(to)).toBe(toNano('2'));
        expect(before - after).toBe(toNano('2') + report.fees!);
    });

    it('refuses wallets it did not make and negative values', async () => {
        const chain = await SandboxChain.create();
        const other = await (await SandboxChain.create()).wallet('alice');
        await expectChainError(chain.send(other, { to: addr(1), value: 1n, body: Cell.EMPTY }), 'unknown-wallet');
        const w = await chain.wallet('alice');
        await expectChainError(chain.send(w, { to: addr(1), value: -1n, body: Cell.EMPTY }), 'invalid-argument');
    });

    it('tells the time the sandbox tells, else the wall clock', async () => {
        const chain = await SandboxChain.create({ now: T0 });
        expect(await chain.now()).toBe(T0);
        chain.blockchain.now = T0 + 100;
        expect(await chain.now()).toBe(T0 + 100);
        const free = await SandboxChain.create();
        const wall = Math.floor(Date.now() / 1000);
        expect(Math.abs((await free.now()) - wall)).toBeLessThanOrEqual(2);
    });

    it('deploys a Registry with init and serves the generated getters through provider()', async () => {
        const chain = await SandboxChain.create({ now: T0 });
        const governance = await chain.wallet('governance');
        const treasury = await chain.wallet('treasury');
        const params = defaultParams(treasury.address);
        const registry = await Registry.fromInit(governance.address, params, 0n);
        const before = await chain.balance(governance.address);
        const deployed = await chain.send(governance, {
            to: registry.address,
            value: toNano('1'),
            body: beginCell().store(storeDeployRegistry({ $$type: 'DeployRegistry', queryId: 0n })).endCell(),
            init: registry.init,
        });
        expect(await chain.isDeployed(registry.address)).toBe(true);
        // Whatever the Registry kept or sent back, wallet + Registry + fees balance out.
        expect(before - (await chain.balance(governance.address))).toBe((await chain.balance(registry.address)) + deployed.fees!);

        const view = Registry.fromAddress(registry.address);
        expect(await view.getOwner(chain.provider(registry.address))).toEqualAddress(governance.address);
        expect(await view.getIsAllowed(chain.provider(registry.address), ALLOWLIST_MODEL, MODEL_A)).toBe(false);
        await chain.send(governance, {
            to: registry.address,
            value: toNano('0.05'),
            body: beginCell().store(storeAllowlistAdd({ $$type: 'AllowlistAdd', queryId: 0n, list: ALLOWLIST_MODEL, entry: MODEL_A })).endCell(),
        });
        expect(await view.getIsAllowed(chain.provider(registry.address), ALLOWLIST_MODEL, MODEL_A)).toBe(false);
        chain.blockchain.now = T0 + Number(params.timelock);
        expect(await view.getIsAllowed(chain.provider(registry.address), ALLOWLIST_MODEL, MODEL_A)).toBe(true);
    });

    it('lists transactions oldest first after an lt, call after call (the sandbox flips its own order)', async () => {
        const chain = await SandboxChain.create({ now: T0 });
        const w = await chain.wallet('alice');
        const to = addr(2);
        await sendNotes(chain, w, to, 4);

        // The reason for sorting: @ton/sandbox 0.41 reverses its transaction list in place on every getTransactions call.
        const first = lts(await chain.blockchain.getTransactions(to));
        const second = lts(await chain.blockchain.getTransactions(to));
        expect(second).toEqual([...first].reverse());

        const all = await chain.transactionsSince(to, 0n);
        expect(all).toHaveLength(4);
        for (let i = 1; i < all.length; i++) expect(all[i].lt).toBeGreaterThan(all[i - 1].lt);
        for (let i = 0; i < 3; i++) expect(lts(await chain.transactionsSince(to, 0n))).toEqual(lts(all));
        expect(lts(await chain.transactionsSince(to, all[1].lt))).toEqual(lts(all.slice(2)));
        expect(lts(await chain.transactionsSince(to, 0n, 1))).toEqual([all[0].lt]);
        expect(lts(await chain.transactionsSince(to, all[0].lt, 2))).toEqual(lts(all.slice(1, 3)));
        expect(await chain.transactionsSince(to, all[3].lt)).toEqual([]);

        // Transactions run between calls land at the end of the sandbox's flipped list; the order here still holds.
        await sendNotes(chain, w, to, 2, 4);
        const more = await chain.transactionsSince(to, all[3].lt);
        expect(more).toHaveLength(2);
        expect(more[0].lt).toBeGreaterThan(all[3].lt);
        expect(more[1].lt).toBeGreaterThan(more[0].lt);
        expect(lts(await chain.transactionsSince(to, 0n))).toEqual([...lts(all), ...lts(more)]);
        // Only transactions addressed to `to`: the wallet's own are not there.
        expect((await chain.transactionsSince(to, 0n)).every((t) => t.inMessage?.info.dest instanceof Address && t.inMessage.info.dest.equals(to))).toBe(true);
    });

    it('rejects a bad limit or a negative lt', async () => {
        const chain = await SandboxChain.create();
        await expectChainError(chain.transactionsSince(addr(1), 0n, 0), 'invalid-argument');
        await expectChainError(chain.transactionsSince(addr(1), 0n, 1.5), 'invalid-argument');
        await expectChainError(chain.transactionsSince(addr(1), -1n), 'invalid-argument');
    });
});

describe('resolveTonConfig', () => {
    it('defaults to the public toncenter endpoint of the network, with no key', () => {
        expect(resolveTonConfig({ kind: 'ton', network: 'testnet' }, {})).toEqual({ endpoint: TONCENTER_ENDPOINTS.testnet, network: 'testnet' });
        expect(resolveTonConfig({ kind: 'ton', network: 'mainnet' }, {})).toEqual({ endpoint: TONCENTER_ENDPOINTS.mainnet, network: 'mainnet' });
    });

    it('takes the environment over the default, and the config over the environment', () => {
        const env = { TON_ENDPOINT: 'http://127.0.0.1:9/env', TON_API_KEY: 'env-key' };
        expect(resolveTonConfig({ kind: 'ton', network: 'testnet' }, env)).toEqual({ endpoint: env.TON_ENDPOINT, apiKey: 'env-key', network: 'testnet' });
        expect(resolveTonConfig({ kind: 'ton', network: 'testnet', endpoint: 'https://example.test/rpc', apiKey: 'cfg-key' }, env)).toEqual({
            endpoint: 'https://example.test/rpc',
            apiKey: 'cfg-key',
            network: 'testnet',
        });
        // Each field on its own: a configured key with the environment's endpoint.
        expect(resolveTonConfig({ kind: 'ton', network: 'mainnet', apiKey: 'cfg-key' }, env)).toEqual({ endpoint: env.TON_ENDPOINT, apiKey: 'cfg-key', network: 'mainnet' });
        // Empty strings count as unset.
        expect(resolveTonConfig({ kind: 'ton', network: 'mainnet', endpoint: '', apiKey: '' }, { TON_ENDPOINT: '', TON_API_KEY: '' })).toEqual({
            endpoint: TONCENTER_ENDPOINTS.mainnet,
            network: 'mainnet',
        });
        expect(resolveTonConfig({ kind: 'ton', network: 'mainnet', timeoutMs: 5000, pollIntervalMs: 100, pageSize: 10 }, {})).toEqual({
            endpoint: TONCENTER_ENDPOINTS.mainnet,
            network: 'mainnet',
            timeoutMs: 5000,
            pollIntervalMs: 100,
            pageSize: 10,
        });
    });

    it('rejects an unknown network, a non-http endpoint and bad numbers', () => {
        const bad = (f: () => unknown, pattern: RegExp) => {
            let caught: unknown;
            try {
                f();
            } catch (e) {
                caught = e;
            }
            expect(caught).toBeInstanceOf(ChainError);
            expect((caught as ChainError).code).toBe('config');
            expect((caught as ChainError).message).toMatch(pattern);
        };
        bad(() => resolveTonConfig(JSON.parse('{"kind":"ton","network":"devnet"}') as { kind: 'ton'; network: 'testnet' }, {}), /network/);
        bad(() => resolveTonConfig({ kind: 'ton', network: 'testnet', endpoint: 'toncenter.com' }, {}), /not a URL/);
        bad(() => resolveTonConfig({ kind: 'ton', network: 'testnet' }, { TON_ENDPOINT: 'ftp://example.test' }), /http/);
        bad(() => resolveTonConfig({ kind: 'ton', network: 'testnet', timeoutMs: 0 }, {}), /timeoutMs/);
        bad(() => resolveTonConfig({ kind: 'ton', network: 'testnet', pageSize: 2.5 }, {}), /pageSize/);
        bad(() => new TonClientChain({ endpoint: 'nope' }), /not a URL/);
    });

    it('opens the backend the config names, without touching the network', async () => {
        expect((await openChain({ kind: 'sandbox' })).kind).toBe('sandbox');
        const ton = await openChain({ kind: 'ton', network: 'testnet' }, {});
        expect(ton).toBeInstanceOf(TonClientChain);
        expect(ton.kind).toBe('ton');
    });
});

describe('TonClientChain against a local toncenter stub', () => {
    let stub: ToncenterStub;
    let words: string[];
    let keys: KeyPair;

    beforeAll(async () => {
        stub = await ToncenterStub.start();
        words = await mnemonicNew(24);
        keys = await mnemonicToPrivateKey(words);
    });
    afterAll(async () => {
        await stub.close();
    });
    beforeEach(() => {
        stub.requests.length = 0;
        stub.sent.length = 0;
        stub.seqnoPolicy = { kind: 'advance', afterPolls: 0 };
        stub.failing.clear();
    });

    const chainOf = (extra: { apiKey?: string; timeoutMs?: number; pageSize?: number; network?: 'testnet' | 'mainnet' } = {}) =>
        new TonClientChain({ endpoint: stub.url, apiKey: 'test-key', pollIntervalMs: 10, timeoutMs: 2000, ...extra });

    it('reads balance, deployment and time from the configured endpoint with the API key', async () => {
        const chain = chainOf();
        stub.setAccount(addr(1), { balance: 123_456n, state: 'active' });
        expect(await chain.balance(addr(1))).toBe(123_456n);
        expect(await chain.isDeployed(addr(1))).toBe(true);
        expect(await chain.isDeployed(addr(2))).toBe(false);
        expect(await chain.balance(addr(2))).toBe(0n);
        expect(await chain.now()).toBe(stub.syncUtime);
        expect(stub.requests.length).toBeGreaterThanOrEqual(5);
        for (const r of stub.requests) {
            expect(r.apiKey).toBe('test-key');
            expect(r.path).toBe('/api/v2/jsonRPC');
        }
        stub.requests.length = 0;
        await chainOf({ apiKey: undefined }).balance(addr(1));
        expect(stub.requests[0].apiKey).toBeUndefined();
    });

    it('serves generated getters through provider()', async () => {
        const chain = chainOf();
        const wallet = WalletContractV4.create({ workchain: 0, publicKey: keys.publicKey });
        stub.setAccount(wallet.address, { state: 'active', seqno: 41 });
        expect(await wallet.getSeqno(chain.provider(wallet.address))).toBe(41);
        expect(stub.calls('runGetMethod')[0].params.method).toBe('seqno');
        stub.setAccount(wallet.address, { state: 'uninitialized', seqno: 0, balance: 0n });
    });

    it('turns endpoint failures into ChainError network with the cause', async () => {
        const chain = chainOf();
        stub.failing.add('getAddressInformation');
        const e = await expectChainError(chain.balance(addr(1)), 'network');
        expect(e.message).toMatch(/^balance: /);
        expect(e.cause).toBeInstanceOf(Error);
        await expectChainError(chain.now(), 'network');
    });

    it('pages transactions backwards and returns them oldest first after an lt', async () => {
        // Real transactions, made on a sandbox and served by the stub as toncenter would.
        const sandbox = await SandboxChain.create({ now: T0 });
        const target = addr(3);
        await sendNotes(sandbox, await sandbox.wallet('alice'), target, 5);
        const made = await sandbox.transactionsSince(target, 0n);
        expect(made).toHaveLength(5);
        stub.addTransactions(target, made.map((t) => t.raw));

        const chain = chainOf({ pageSize: 2 });
        const all = await chain.transactionsSince(target, 0n);
        expect(lts(all)).toEqual(lts(made));
        expect(all.map((t) => t.hash().toString('hex'))).toEqual(made.map((t) => t.hash().toString('hex')));
        // Newest first from the endpoint, two (plus the cursor's own) per page, each page starting at the last one's end.
        const pages = stub.calls('getTransactions');
        expect(pages).toHaveLength(3);
        expect(pages[0].params.lt).toBeUndefined();
        expect(pages[1].params.lt).toBe(made[3].lt.toString());
        expect(pages[1].params.hash).toBe(made[3].hash().toString('hex'));
        expect(pages[2].params.lt).toBe(made[1].lt.toString());
        expect(pages[0].params.to_lt).toBeUndefined();

        stub.requests.length = 0;
        expect(lts(await chain.transactionsSince(target, made[1].lt))).toEqual(lts(made.slice(2)));
        expect(stub.calls('getTransactions')[0].params.to_lt).toBe(made[1].lt.toString());
        expect(lts(await chain.transactionsSince(target, 0n, 2))).toEqual(lts(made.slice(0, 2)));
        expect(lts(await chain.transactionsSince(target, made[0].lt, 3))).toEqual(lts(made.slice(1, 4)));
        expect(await chain.transactionsSince(target, made[4].lt)).toEqual([]);
        expect(await chainOf().transactionsSince(addr(4), 0n)).toEqual([]);
        // One page of 100 is enough at the default page size.
        stub.requests.length = 0;
        expect(lts(await chainOf().transactionsSince(target, 0n))).toEqual(lts(made));
        expect(stub.calls('getTransactions')).toHaveLength(1);
    });

    it('sends a signed v4 transfer, deploying the wallet, and returns once the seqno moves', async () => {
        const chain = chainOf();
        const w = await chain.walletFromMnemonic(words, { label: 'runner' });
        const v4 = WalletContractV4.create({ workchain: 0, publicKey: keys.publicKey });
        expect(w.address).toEqualAddress(v4.address);
        expect(w.label).toBe('runner');
        stub.setAccount(w.address, { balance: toNano('10'), state: 'uninitialized', seqno: 0 });
        stub.seqnoPolicy = { kind: 'advance', afterPolls: 2 };

        const body = beginCell().storeUint(0xc0ffee, 32).endCell();
        expect(await chain.send(w, { to: addr(5), value: toNano('0.5'), body, bounce: false })).toEqual({});
        expect(stub.account(w.address)).toMatchObject({ state: 'active', seqno: 1 });
        expect(stub.sent).toHaveLength(1);
        const ext = stub.sent[0].message;
        expect(ext.info.dest).toEqualAddress(w.address);
        // First send: the wallet is not deployed, so its code and data ride along.
        expect(ext.init?.code?.equals(v4.init.code)).toBe(true);
        expect(ext.init?.data?.equals(v4.init.data)).toBe(true);

        const s = ext.body.beginParse();
        const signature = s.loadBuffer(64);
        expect(signVerify(s.asCell().hash(), signature, keys.publicKey)).toBe(true);
        expect(s.loadUint(32)).toBe(v4.walletId);
        s.loadUint(32); // valid until
        expect(s.loadUint(32)).toBe(0); // seqno
        expect(s.loadUint(8)).toBe(0); // simple send
        expect(s.loadUint(8)).toBe(SendMode.PAY_GAS_SEPARATELY | SendMode.IGNORE_ERRORS);
        const inner = loadMessageRelaxed(s.loadRef().beginParse());
        if (inner.info.type !== 'internal') throw new Error('expected an internal message');
        expect(inner.info.dest).toEqualAddress(addr(5));
        expect(inner.info.value.coins).toBe(toNano('0.5'));
        expect(inner.info.bounce).toBe(false);
        expect(inner.body.equals(body)).toBe(true);

        // It polled: the two polls the stub held back, then the one that saw seqno 1.
        const sendAt = stub.requests.findIndex((r) => r.method === 'sendBoc');
        const polls = stub.requests.slice(sendAt + 1).filter((r) => r.method === 'getAddressInformation' && r.params.address === w.address.toString());
        expect(polls.length).toBeGreaterThanOrEqual(3);

        // Second send: deployed now, no init, next seqno, bounce on by default.
        stub.seqnoPolicy = { kind: 'advance', afterPolls: 0 };
        await chain.send(w, { to: addr(5), value: 1n, body });
        const second = stub.sent[1].message;
        expect(second.init).toBeFalsy();
        const s2 = second.body.beginParse().skip(512 + 64);
        expect(s2.loadUint(32)).toBe(1);
        s2.skip(16);
        const inner2 = loadMessageRelaxed(s2.loadRef().beginParse());
        expect(inner2.info.type === 'internal' && inner2.info.bounce).toBe(true);
        stub.setAccount(w.address, { state: 'uninitialized', seqno: 0 });
    });

    it('serializes concurrent sends from one wallet: one seqno each', async () => {
        const chain = chainOf();
        const w = await chain.walletFromMnemonic(words);
        stub.setAccount(w.address, { balance: toNano('10'), state: 'active', seqno: 7 });
        await Promise.all([1, 2, 3].map((i) => chain.send(w, { to: addr(6), value: 1n, body: note(i) })));
        const seqnos = stub.sent.map((m) => m.message.body.beginParse().skip(512 + 64).loadUint(32));
        expect(seqnos).toEqual([7, 8, 9]);
        stub.setAccount(w.address, { state: 'uninitialized', seqno: 0 });
    });

    it('times out with ChainError when the seqno never moves', async () => {
        const chain = chainOf({ timeoutMs: 150 });
        const w = await chain.walletFromMnemonic(words);
        stub.setAccount(w.address, { balance: toNano('10'), state: 'active', seqno: 3 });
        stub.seqnoPolicy = { kind: 'never' };
        const started = Date.now();
        const e = await expectChainError(chain.send(w, { to: addr(7), value: 1n, body: Cell.EMPTY }), 'timeout');
        expect(Date.now() - started).toBeGreaterThanOrEqual(140);
        expect(e.message).toMatch(/seqno still 3 after 150 ms/);
        expect(stub.sent).toHaveLength(1);
        // The queue is not stuck behind the failed send.
        stub.seqnoPolicy = { kind: 'advance', afterPolls: 0 };
        await chain.send(w, { to: addr(7), value: 1n, body: Cell.EMPTY });
        expect(stub.sent).toHaveLength(2);
        stub.setAccount(w.address, { state: 'uninitialized', seqno: 0 });
    });

    it('refuses before sending: too little balance, a foreign wallet, a bad mnemonic', async () => {
        const chain = chainOf();
        const w = await chain.walletFromMnemonic(words);
        stub.setAccount(w.address, { balance: 5n, state: 'active', seqno: 1 });
        await expectChainError(chain.send(w, { to: addr(8), value: 6n, body: Cell.EMPTY }), 'insufficient-balance');
        await expectChainError(chainOf().send(w, { to: addr(8), value: 1n, body: Cell.EMPTY }), 'unknown-wallet');
        expect(stub.sent).toHaveLength(0);
        await expectChainError(chain.walletFromMnemonic(words.slice(0, 12)), 'invalid-argument');
        const e = await expectChainError(chain.walletFromMnemonic([...words.slice(1), words[0]]), 'invalid-argument');
        expect(e.message).not.toContain(words[1]);
        stub.setAccount(w.address, { state: 'uninitialized', seqno: 0, balance: 0n });
    });

    it('makes v5r1 wallets with the network\'s wallet id and sends from them', async () => {
        const testnet = chainOf({ network: 'testnet' });
        const w = await testnet.walletFromMnemonic(words, { version: 'v5r1' });
        const expected = WalletContractV5R1.create({
            publicKey: keys.publicKey,
            walletId: { networkGlobalId: -3, context: { walletVersion: 'v5r1', workchain: 0, subwalletNumber: 0 } },
        });
        expect(w.address).toEqualAddress(expected.address);
        const onMainnet = await chainOf().walletFromMnemonic(words, { version: 'v5r1' });
        expect(onMainnet.address).toEqualAddress(WalletContractV5R1.create({ publicKey: keys.publicKey }).address);
        expect(onMainnet.address.equals(w.address)).toBe(false);
        expect(w.label).toMatch(/^v5r1:0Q|^v5r1:kQ/); // testnet-only form

        stub.setAccount(w.address, { balance: toNano('1'), state: 'uninitialized', seqno: 0 });
        await testnet.send(w, { to: addr(9), value: toNano('0.1'), body: Cell.EMPTY });
        expect(stub.sent).toHaveLength(1);
        expect(stub.sent[0].message.init?.code?.equals(expected.init.code)).toBe(true);
        expect(stub.account(w.address).seqno).toBe(1);
    });
});
