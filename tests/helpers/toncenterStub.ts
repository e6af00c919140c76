// A minimal toncenter v2 JSON-RPC server on 127.0.0.1, enough to test
// TonClientChain without a network: getAddressInformation, runGetMethod
// (seqno only), getTransactions (canned cells, newest first, with toncenter's
// lt/hash cursor and to_lt) and sendBoc (recorded). Response shapes follow the
// zod schemas in @ton/ton's HttpApi. Every request is logged with the API key
// it carried.
import { createServer, IncomingMessage, Server, ServerResponse } from 'http';
import { AddressInfo } from 'net';
import { Address, Cell, loadMessage, loadTransaction, Message } from '@ton/core';

/** One account as the stub serves it. */
export interface StubAccount {
    balance: bigint;
    state: 'active' | 'uninitialized' | 'frozen';
    /** Answered by the `seqno` get-method while active. */
    seqno: number;
}

/** A request as received. */
export interface StubRequest {
    method: string;
    params: Record<string, unknown>;
    /** The X-API-Key header, if any. */
    apiKey: string | undefined;
    path: string;
}

/** A sendBoc: the external message it carried. */
export interface SentMessage {
    message: Message;
    /** The address it was sent to, raw form. */
    to: string;
}

interface StoredTx {
    lt: bigint;
    hash: Buffer;
    cell: Cell;
    utime: number;
}

/**
 * How sends move a wallet's seqno: 'never' (a lost message), or after `afterPolls` more getAddressInformation
 * requests for the wallet (0: at the next one), the seqno goes up by one and the wallet becomes active.
 */
export type SeqnoPolicy = { kind: 'never' } | { kind: 'advance'; afterPolls: number };

/** A request the stub cannot answer; reported to the client as toncenter does, `ok: false`. */
export class ToncenterStubError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ToncenterStubError';
    }
}

/** The stub server. Start with ToncenterStub.start(); close() when done. */
export class ToncenterStub {
    readonly requests: StubRequest[] = [];
    readonly sent: SentMessage[] = [];
    /** Reported as every account's sync_utime. */
    syncUtime = 1_800_000_000;
    seqnoPolicy: SeqnoPolicy = { kind: 'advance', afterPolls: 0 };
    /** Methods answered with HTTP 500, to test error handling. */
    readonly failing = new Set<string>();
    private readonly accounts = new Map<string, StubAccount>();
    private readonly transactions = new Map<string, StoredTx[]>();
    private readonly pendingSeqno = new Map<string, number>();

    private constructor(
        private readonly server: Server,
        /** The JSON-RPC URL to give TonClient. */
        readonly url: string,
    ) {}

    /** Listens on 127.0.0.1 at a free port. */
    static async start(): Promise<ToncenterStub> {
        const server = createServer();
        await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => resolve());
        });
        const { port } = server.address() as AddressInfo;
        const stub = new ToncenterStub(server, `http://127.0.0.1:${port}/api/v2/jsonRPC`);
        server.on('request', (req, res) => stub.handle(req, res));
        return stub;
    }

    /** Stops listening. */
    close(): Promise<void> {
        return new Promise((resolve, reject) => this.server.close((e) => (e ? reject(e) : resolve())));
    }

    /** Merges `account` into what the stub serves for `address`. */
    setAccount(address: Address, account: Partial<StubAccount>): void {
        this.accounts.set(address.toRawString(), { ...this.account(address), ...account });
    }

    /** What the stub serves for `address` (an empty uninitialized account unless set). */
    account(address: Address): StubAccount {
        return this.accounts.get(address.toRawString()) ?? { balance: 0n, state: 'uninitialized', seqno: 0 };
    }

    /** Adds serialized transactions (e.g. a sandbox transaction's `raw`) to `address`'s history. */
    addTransactions(address: Address, cells: Cell[]): void {
        const list = this.transactions.get(address.toRawString()) ?? [];
        for (const cell of cells) {
            const tx = loadTransaction(cell.beginParse());
            list.push({ lt: tx.lt, hash: cell.hash(), cell, utime: tx.now });
        }
        list.sort((a, b) => (a.lt > b.lt ? -1 : a.lt < b.lt ? 1 : 0));
        this.transactions.set(address.toRawString(), list);
    }

    /** Requests of one method, in order. */
    calls(method: string): StubRequest[] {
        return this.requests.filter((r) => r.method === method);
    }

    private handle(req: IncomingMessage, res: ServerResponse): void {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
            let status = 200;
            let payload: unknown;
            try {
                const rpc = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { method: string; params: Record<string, unknown> };
                const header = req.headers['x-api-key'];
                this.requests.push({ method: rpc.method, params: rpc.params, apiKey: Array.isArray(header) ? header[0] : header, path: req.url ?? '' });
                if (this.failing.has(rpc.method)) {
                    status = 500;
                    payload = { ok: false, error: `stub: ${rpc.method} fails`, code: 500 };
                } else {
                    payload = { ok: true, result: this.answer(rpc.method, rpc.params), id: '1', jsonrpc: '2.0' };
                }
            } catch (e) {
                status = 200; // toncenter reports method errors in the body with ok: false
                payload = { ok: false, error: e instanceof Error ? e.message : String(e), code: 500 };
            }
            res.writeHead(status, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify(payload));
        });
    }

    private answer(method: string, params: Record<string, unknown>): unknown {
        switch (method) {
            case 'getAddressInformation':
                return this.addressInformation(parseAddress(params.address));
            case 'runGetMethod':
                return this.runGetMethod(parseAddress(params.address), String(params.method));
            case 'getTransactions':
                return this.getTransactions(params);
            case 'sendBoc':
                return this.sendBoc(String(params.boc));
            default:
                throw new ToncenterStubError(`stub: method ${method} not implemented`);
        }
    }

    private addressInformation(address: Address): unknown {
        const key = address.toRawString();
        const pending = this.pendingSeqno.get(key);
        if (pending !== undefined) {
            if (pending === 0) {
                this.pendingSeqno.delete(key);
                const acc = this.account(address);
                this.setAccount(address, { seqno: acc.seqno + 1, state: 'active' });
            } else {
                this.pendingSeqno.set(key, pending - 1);
            }
        }
        const acc = this.account(address);
        const last = this.transactions.get(key)?.[0];
        return {
            '@type': 'raw.fullAccountState',
            balance: acc.balance.toString(),
            extra_currencies: [],
            code: '',
            data: '',
            last_transaction_id: {
                '@type': 'internal.transactionId',
                lt: last ? last.lt.toString() : '0',
                hash: (last ? last.hash : Buffer.alloc(32)).toString('base64'),
            },
            block_id: { '@type': 'ton.blockIdExt', workchain: -1, shard: '-9223372036854775808', seqno: 1, root_hash: '', file_hash: '' },
            frozen_hash: '',
            sync_utime: this.syncUtime,
            state: acc.state,
        };
    }

    private runGetMethod(address: Address, method: string): unknown {
        const acc = this.account(address);
        if (method !== 'seqno' || acc.state !== 'active') return { '@type': 'smc.runResult', gas_used: 0, stack: [], exit_code: method === 'seqno' ? -13 : 11 };
        return { '@type': 'smc.runResult', gas_used: 0, stack: [['num', '0x' + acc.seqno.toString(16)]], exit_code: 0 };
    }

    /** Newest first from the (lt, hash) cursor inclusive, stopping at lt ≤ to_lt, at most `limit`: toncenter's semantics. */
    private getTransactions(params: Record<string, unknown>): unknown {
        const list = this.transactions.get(parseAddress(params.address).toRawString()) ?? [];
        const limit = Number(params.limit);
        let start = 0;
        if (params.lt !== undefined || params.hash !== undefined) {
            const lt = BigInt(String(params.lt));
            const hash = Buffer.from(String(params.hash), 'hex');
            start = list.findIndex((t) => t.lt === lt && t.hash.equals(hash));
            if (start < 0) throw new ToncenterStubError('stub: cursor transaction not found');
        }
        const toLtParam = params.to_lt as string | number | undefined;
        const toLt = toLtParam === undefined ? 0n : BigInt(String(toLtParam));
        const out: unknown[] = [];
        for (const t of list.slice(start)) {
            if (out.length >= limit || (toLt > 0n && t.lt <= toLt)) break;
            out.push({
                '@type': 'raw.transaction',
                data: t.cell.toBoc().toString('base64'),
                utime: t.utime,
                transaction_id: { '@type': 'internal.transactionId', lt: t.lt.toString(), hash: t.hash.toString('base64') },
                fee: '0',
                storage_fee: '0',
                other_fee: '0',
                out_msgs: [],
            });
        }
        return out;
    }

    private sendBoc(boc: string): unknown {
        const message = loadMessage(Cell.fromBase64(boc).beginParse());
        if (message.info.type !== 'external-in') throw new ToncenterStubError('stub: sendBoc takes external messages only');
        const to = message.info.dest;
        this.sent.push({ message, to: to.toRawString() });
        if (this.seqnoPolicy.kind === 'advance') this.pendingSeqno.set(to.toRawString(), this.seqnoPolicy.afterPolls);
        return { '@type': 'ok', extra: 'stub' };
    }
}

function parseAddress(value: unknown): Address {
    if (typeof value !== 'string') throw new ToncenterStubError('stub: address missing');
    return Address.parse(value);
}
