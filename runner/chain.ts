// Chain access for the runner and the client SDK: one interface, two backends.
// SandboxChain runs an embedded @ton/sandbox (the default; no network, and a
// send returns every transaction it caused). TonClientChain talks to testnet
// or mainnet through a toncenter v2 endpoint with @ton/ton's TonClient; there a
// send only returns once the wallet's seqno has moved, and the transactions
// that follow are found by watching addresses with transactionsSince().
import { Address, Cell, ContractProvider, internal, MessageRelaxed, SendMode, StateInit, Transaction } from '@ton/core';
import { mnemonicToPrivateKey, mnemonicValidate } from '@ton/crypto';
import { Blockchain, SandboxContract, TreasuryContract } from '@ton/sandbox';
import { TonClient, WalletContractV4, WalletContractV5R1 } from '@ton/ton';

/** What went wrong, for callers that retry or report differently per cause. */
export type ChainErrorCode =
    /** A wait (a send's seqno, an HTTP request) ran out of time. */
    | 'timeout'
    /** The endpoint failed or answered something unusable. */
    | 'network'
    /** The configuration is incomplete or malformed. */
    | 'config'
    /** A wallet this backend did not create was asked to send. */
    | 'unknown-wallet'
    /** The wallet cannot cover the value it is asked to send. */
    | 'insufficient-balance'
    /** An argument is out of range (a negative value, a bad limit, a bad mnemonic). */
    | 'invalid-argument';

/** Every failure of this module: `code` says which kind; `cause` keeps the underlying error when there is one. */
export class ChainError extends Error {
    constructor(
        readonly code: ChainErrorCode,
        message: string,
        options?: { cause?: unknown },
    ) {
        super(message, options);
        this.name = 'ChainError';
    }
}

/** A wallet a backend can send from. Backends only send from wallets they made themselves (they hold the keys). */
export interface ChainWallet {
    readonly address: Address;
    readonly label: string;
}

/** One internal message from a wallet. */
export interface OutgoingMessage {
    to: Address;
    value: bigint;
    body: Cell;
    /** Default true. */
    bounce?: boolean;
    /** Deploys `to` with this code and data when it is not deployed yet. */
    init?: StateInit;
}

/** What a send is known to have caused. */
export interface SendReport {
    /** Transactions this send caused, when the backend knows them (sandbox: all of them, in order). */
    transactions?: Transaction[];
    /** Sum of total fees + forward fees of those transactions, when known. */
    fees?: bigint;
}

/** Everything the runner and the SDK do on-chain. */
export interface ChainBackend {
    readonly kind: 'sandbox' | 'ton';
    /** Unix seconds as the chain sees it (sandbox: blockchain.now when set, else wall clock). */
    now(): Promise<number>;
    /** A ContractProvider for the generated wrappers' getters, e.g. `Escrow.fromAddress(a).getInfo(chain.provider(a))`. */
    provider(address: Address, init?: StateInit | null): ContractProvider;
    /** The account's balance in nanotons (0 for an account that does not exist). */
    balance(address: Address): Promise<bigint>;
    /** True when the account is active (has code and data). */
    isDeployed(address: Address): Promise<boolean>;
    /**
     * Sends from `from` and returns once the message is accepted: sandbox runs the whole message chain; ton waits until the
     * wallet's seqno moves (bounded by a timeout; ChainError 'timeout').
     */
    send(from: ChainWallet, message: OutgoingMessage): Promise<SendReport>;
    /** Transactions of `address` with lt > afterLt, OLDEST first, at most `limit` (default 100). */
    transactionsSince(address: Address, afterLt: bigint, limit?: number): Promise<Transaction[]>;
}

const DEFAULT_LIMIT = 100;

/** Each transaction's total fees plus the forward fee each internal message it sent carries: all the network kept. */
export function transactionFees(transactions: readonly Transaction[]): bigint {
    let fees = 0n;
    for (const tx of transactions) {
        fees += tx.totalFees.coins;
        for (const msg of tx.outMessages.values()) {
            if (msg.info.type === 'internal') fees += msg.info.forwardFee;
        }
    }
    return fees;
}

function checkMessage(message: OutgoingMessage): void {
    if (message.value < 0n) throw new ChainError('invalid-argument', `a message value cannot be negative (${message.value})`);
}

function checkSince(afterLt: bigint, limit: number): void {
    if (afterLt < 0n) throw new ChainError('invalid-argument', `afterLt cannot be negative (${afterLt})`);
    if (!Number.isSafeInteger(limit) || limit < 1) throw new ChainError('invalid-argument', `limit must be a positive integer (got ${limit})`);
}

function errorText(e: unknown): string {
    return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// Sandbox

/** The embedded chain: @ton/sandbox in this process. Wallets are sandbox treasuries. */
export class SandboxChain implements ChainBackend {
    readonly kind = 'sandbox' as const;
    private readonly byName = new Map<string, SandboxContract<TreasuryContract>>();
    private readonly byAddress = new Map<string, SandboxContract<TreasuryContract>>();

    /** Wraps an existing sandbox, e.g. one a test has already deployed contracts on. */
    constructor(readonly blockchain: Blockchain) {}

    /** A fresh sandbox, its clock set to `now` (Unix seconds) when given. */
    static async create(opts: { now?: number } = {}): Promise<SandboxChain> {
        const blockchain = await Blockchain.create();
        if (opts.now !== undefined) blockchain.now = opts.now;
        return new SandboxChain(blockchain);
    }

    /**
     * A funded wallet (a sandbox treasury) by name; same name → same wallet. `balance` applies when the treasury is
     * first created (the sandbox ignores it afterwards unless the balance has dropped to zero).
     */
    async wallet(name: string, balance?: bigint): Promise<ChainWallet> {
        let treasury = this.byName.get(name);
        if (!treasury) {
            treasury = await this.blockchain.treasury(name, balance === undefined ? undefined : { balance });
            this.byName.set(name, treasury);
            this.byAddress.set(treasury.address.toRawString(), treasury);
        }
        return { address: treasury.address, label: name };
    }

    now(): Promise<number> {
        return Promise.resolve(this.blockchain.now ?? Math.floor(Date.now() / 1000));
    }

    provider(address: Address, init?: StateInit | null): ContractProvider {
        return this.blockchain.provider(address, init);
    }

    async balance(address: Address): Promise<bigint> {
        return (await this.blockchain.getContract(address)).balance;
    }

    async isDeployed(address: Address): Promise<boolean> {
        return (await this.blockchain.getContract(address)).accountState?.type === 'active';
    }

    /** Runs the whole message chain; the report has every transaction it caused, in execution order, and their fees. */
    async send(from: ChainWallet, message: OutgoingMessage): Promise<SendReport> {
        checkMessage(message);
        const treasury = this.byAddress.get(from.address.toRawString());
        if (!treasury) throw new ChainError('unknown-wallet', `wallet ${from.label} (${from.address.toString()}) was not made by this sandbox chain`);
        const result = await treasury.send({
            to: message.to,
            value: message.value,
            body: message.body,
            bounce: message.bounce ?? true,
            init: message.init,
            // The treasury's own default, spelled out: fees on top of `value`, and a failed action stays visible as a failed transaction.
            sendMode: SendMode.PAY_GAS_SEPARATELY,
        });
        return { transactions: result.transactions, fees: transactionFees(result.transactions) };
    }

    /**
     * Sorted by lt here, because @ton/sandbox 0.41's Blockchain.getTransactions calls `this.transactions.reverse()` in
     * place before filtering: its order flips on every call (and transactions run in between land at the end of the
     * flipped list), so neither its order nor its `limit` can be trusted. Like the sandbox, this counts the transactions
     * whose inbound message is addressed to `address` (tick-tock transactions have none and are not included).
     */
    async transactionsSince(address: Address, afterLt: bigint, limit = DEFAULT_LIMIT): Promise<Transaction[]> {
        checkSince(afterLt, limit);
        const all = await this.blockchain.getTransactions(address);
        return all
            .filter((tx) => tx.lt > afterLt)
            .sort((a, b) => (a.lt < b.lt ? -1 : a.lt > b.lt ? 1 : 0))
            .slice(0, limit);
    }
}

// ---------------------------------------------------------------------------
// TonClient (toncenter v2)

/** How to reach a toncenter v2 JSON-RPC endpoint. */
export interface TonChainConfig {
    /** The JSON-RPC URL, e.g. https://testnet.toncenter.com/api/v2/jsonRPC. */
    endpoint: string;
    /** Sent as the X-API-Key header; without one toncenter allows about one request per second. */
    apiKey?: string;
    /** How long a send waits for the wallet's seqno to move (default 60000); each HTTP request is bounded by min(this, 30000). */
    timeoutMs?: number;
    /** How often a send polls the wallet's seqno (default 1000). */
    pollIntervalMs?: number;
    /** Transactions asked for per getTransactions request (default 100). */
    pageSize?: number;
    /** Picks the v5r1 wallet id (its address depends on the network); default mainnet. */
    network?: 'testnet' | 'mainnet';
}

/** Which chain to use: the embedded sandbox, or testnet/mainnet through toncenter. */
export type ChainConfig = { kind: 'sandbox' } | ({ kind: 'ton'; network: 'testnet' | 'mainnet' } & Partial<TonChainConfig>);

/** The public toncenter v2 JSON-RPC endpoints. */
export const TONCENTER_ENDPOINTS: Readonly<Record<'testnet' | 'mainnet', string>> = {
    testnet: 'https://testnet.toncenter.com/api/v2/jsonRPC',
    mainnet: 'https://toncenter.com/api/v2/jsonRPC',
};

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_POLL_MS = 1_000;
const MAX_HTTP_TIMEOUT_MS = 30_000;
const NETWORK_GLOBAL_ID = { mainnet: -239, testnet: -3 } as const;
/** The masterchain config contract: always there, so reading it yields the endpoint's sync time. */
const CONFIG_ADDRESS = Address.parseRaw('-1:' + '5'.repeat(64));
/** Fees on top of the value; IGNORE_ERRORS so a failing action still moves the seqno (see TonClientChain.send). */
const WALLET_SEND_MODE = SendMode.PAY_GAS_SEPARATELY | SendMode.IGNORE_ERRORS;

function checkPositiveInt(name: string, value: number | undefined): void {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
        throw new ChainError('config', `${name} must be a positive integer (got ${String(value)})`);
    }
}

function checkTonConfig(config: TonChainConfig): void {
    let url: URL;
    try {
        url = new URL(config.endpoint);
    } catch (e) {
        throw new ChainError('config', `the endpoint is not a URL: ${JSON.stringify(config.endpoint)}`, { cause: e });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ChainError('config', `the endpoint must be http(s), not ${url.protocol}`);
    checkPositiveInt('timeoutMs', config.timeoutMs);
    checkPositiveInt('pollIntervalMs', config.pollIntervalMs);
    checkPositiveInt('pageSize', config.pageSize);
    if (config.network !== undefined && config.network !== 'testnet' && config.network !== 'mainnet') {
        throw new ChainError('config', `network must be testnet or mainnet (got ${JSON.stringify(config.network)})`);
    }
}

/** An empty variable counts as unset: `TON_API_KEY=` in a shell or an env file means "none". */
function fromEnv(env: NodeJS.ProcessEnv, name: string): string | undefined {
    const value = env[name];
    return value === undefined || value === '' ? undefined : value;
}

/**
 * Endpoint from config, else env TON_ENDPOINT, else the public toncenter URL of the network; API key from config, else env
 * TON_API_KEY. Empty strings count as unset. Throws ChainError 'config' for an unknown network, a non-http(s) endpoint or
 * a non-positive timeout, poll interval or page size.
 */
export function resolveTonConfig(config: ChainConfig & { kind: 'ton' }, env: NodeJS.ProcessEnv = process.env): TonChainConfig {
    // Config often comes from JSON, so the network is checked at run time too.
    const network: unknown = config.network;
    if (network !== 'testnet' && network !== 'mainnet') throw new ChainError('config', `network must be testnet or mainnet (got ${JSON.stringify(network)})`);
    const endpoint = (config.endpoint === '' ? undefined : config.endpoint) ?? fromEnv(env, 'TON_ENDPOINT') ?? TONCENTER_ENDPOINTS[network];
    const apiKey = (config.apiKey === '' ? undefined : config.apiKey) ?? fromEnv(env, 'TON_API_KEY');
    const resolved: TonChainConfig = { endpoint, network };
    if (apiKey !== undefined) resolved.apiKey = apiKey;
    if (config.timeoutMs !== undefined) resolved.timeoutMs = config.timeoutMs;
    if (config.pollIntervalMs !== undefined) resolved.pollIntervalMs = config.pollIntervalMs;
    if (config.pageSize !== undefined) resolved.pageSize = config.pageSize;
    checkTonConfig(resolved);
    return resolved;
}

/** The backend `config` asks for: a fresh sandbox, or a TonClientChain with the endpoint and key resolved as resolveTonConfig does. */
export async function openChain(config: ChainConfig, env: NodeJS.ProcessEnv = process.env): Promise<ChainBackend> {
    if (config.kind === 'sandbox') return SandboxChain.create();
    return new TonClientChain(resolveTonConfig(config, env));
}

/** What TonClientChain keeps per wallet: closures, so v4 and v5r1 share one send path. */
interface KeyedWallet {
    readonly wallet: ChainWallet;
    getSeqno(): Promise<number>;
    transfer(seqno: number, message: OutgoingMessage): Promise<void>;
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** testnet or mainnet through a toncenter v2 endpoint. Wallets are v4 or v5r1 from 24-word mnemonics. */
export class TonClientChain implements ChainBackend {
    readonly kind = 'ton' as const;
    /** The underlying client, for what this interface does not cover. */
    readonly client: TonClient;
    private readonly timeoutMs: number;
    private readonly pollIntervalMs: number;
    private readonly pageSize: number;
    private readonly network: 'testnet' | 'mainnet';
    private readonly wallets = new Map<string, KeyedWallet>();
    /** Per wallet, the tail of its queued sends: a wallet accepts one seqno at a time, so sends from it must not overlap. */
    private readonly sendTails = new Map<string, Promise<unknown>>();

    /** Validates `config` (ChainError 'config') and makes the client; no request is made yet. */
    constructor(config: TonChainConfig) {
        checkTonConfig(config);
        this.timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        this.pollIntervalMs = config.pollIntervalMs ?? DEFAULT_POLL_MS;
        this.pageSize = config.pageSize ?? DEFAULT_LIMIT;
        this.network = config.network ?? 'mainnet';
        this.client = new TonClient({ endpoint: config.endpoint, apiKey: config.apiKey, timeout: Math.min(this.timeoutMs, MAX_HTTP_TIMEOUT_MS) });
    }

    /**
     * A wallet v4 (default) or v5r1 from a 24-word mnemonic, in workchain 0. The keys stay in this object; the
     * wallet is deployed by its first send. ChainError 'invalid-argument' when the words are not a TON mnemonic.
     */
    async walletFromMnemonic(words: string[], opts: { version?: 'v4' | 'v5r1'; label?: string } = {}): Promise<ChainWallet> {
        // The words never go into an error message: they are the wallet's key.
        if (words.length !== 24) throw new ChainError('invalid-argument', `a wallet mnemonic has 24 words (got ${words.length})`);
        if (!(await mnemonicValidate(words))) throw new ChainError('invalid-argument', 'the words are not a valid TON mnemonic');
        const keys = await mnemonicToPrivateKey(words);
        const version = opts.version ?? 'v4';
        let keyed: Omit<KeyedWallet, 'wallet'> & { address: Address };
        if (version === 'v4') {
            const opened = this.client.open(WalletContractV4.create({ workchain: 0, publicKey: keys.publicKey }));
            keyed = {
                address: opened.address,
                getSeqno: () => opened.getSeqno(),
                transfer: (seqno, m) => opened.sendTransfer({ seqno, secretKey: keys.secretKey, messages: [toRelaxed(m)], sendMode: WALLET_SEND_MODE }),
            };
        } else if (version === 'v5r1') {
            const opened = this.client.open(
                WalletContractV5R1.create({
                    publicKey: keys.publicKey,
                    walletId: { networkGlobalId: NETWORK_GLOBAL_ID[this.network], context: { walletVersion: 'v5r1', workchain: 0, subwalletNumber: 0 } },
                }),
            );
            keyed = {
                address: opened.address,
                getSeqno: () => opened.getSeqno(),
                transfer: (seqno, m) => opened.sendTransfer({ seqno, secretKey: keys.secretKey, messages: [toRelaxed(m)], sendMode: WALLET_SEND_MODE }),
            };
        } else {
            throw new ChainError('invalid-argument', `unknown wallet version ${JSON.stringify(version)}`);
        }
        const wallet: ChainWallet = {
            address: keyed.address,
            label: opts.label ?? `${version}:${keyed.address.toString({ testOnly: this.network === 'testnet' })}`,
        };
        this.wallets.set(keyed.address.toRawString(), { wallet, getSeqno: keyed.getSeqno, transfer: keyed.transfer });
        return wallet;
    }

    /** The sync time of the endpoint's last block (its sync_utime), i.e. the chain's clock as this endpoint sees it. */
    async now(): Promise<number> {
        return this.call('now', async () => (await this.client.getContractState(CONFIG_ADDRESS)).timestampt);
    }

    provider(address: Address, init?: StateInit | null): ContractProvider {
        return this.client.provider(address, init ?? null);
    }

    async balance(address: Address): Promise<bigint> {
        return this.call('balance', async () => (await this.client.getContractState(address)).balance);
    }

    async isDeployed(address: Address): Promise<boolean> {
        return this.call('isDeployed', async () => (await this.client.getContractState(address)).state === 'active');
    }

    /**
     * Signs a transfer with the wallet's seqno, sends it, and polls until the seqno moves. The report is empty: what the
     * message caused shows up later in transactionsSince(). Sent with PAY_GAS_SEPARATELY | IGNORE_ERRORS, the usual wallet
     * mode (without IGNORE_ERRORS a failing action leaves the seqno in place and the external message can be replayed,
     * paying gas each time until it expires), so the balance is checked first: ChainError 'insufficient-balance' when it is
     * below `value`. ChainError 'timeout' when the seqno has not moved within timeoutMs; a 'network' error from the send
     * itself does not prove the message was not delivered, so check the seqno before sending again.
     */
    async send(from: ChainWallet, message: OutgoingMessage): Promise<SendReport> {
        checkMessage(message);
        const key = from.address.toRawString();
        const keyed = this.wallets.get(key);
        if (!keyed) throw new ChainError('unknown-wallet', `wallet ${from.label} (${from.address.toString()}) was not made by this chain's walletFromMnemonic`);
        const previous = this.sendTails.get(key) ?? Promise.resolve();
        // A failed earlier send must not block this one; its error already went to its own caller.
        const run = previous.catch(() => undefined).then(() => this.sendNow(keyed, message));
        this.sendTails.set(key, run.catch(() => undefined));
        return run;
    }

    private async sendNow(keyed: KeyedWallet, message: OutgoingMessage): Promise<SendReport> {
        const address = keyed.wallet.address;
        const seqno = await this.call('seqno', () => keyed.getSeqno());
        const balance = await this.balance(address);
        if (balance < message.value) {
            throw new ChainError('insufficient-balance', `wallet ${keyed.wallet.label} holds ${balance} nanoton, less than the ${message.value} it is asked to send`);
        }
        await this.call('send', () => keyed.transfer(seqno, message));
        const deadline = Date.now() + this.timeoutMs;
        let lastError: unknown;
        for (;;) {
            await sleep(Math.max(0, Math.min(this.pollIntervalMs, deadline - Date.now())));
            try {
                if ((await keyed.getSeqno()) > seqno) return {};
                lastError = undefined;
            } catch (e) {
                // A failed poll is not fatal: the endpoint may recover before the deadline. It is kept as the cause if not.
                lastError = e;
            }
            if (Date.now() >= deadline) {
                const tail = lastError === undefined ? '' : ` (last poll failed: ${errorText(lastError)})`;
                throw new ChainError('timeout', `wallet ${keyed.wallet.label}: seqno still ${seqno} after ${this.timeoutMs} ms${tail}`, { cause: lastError });
            }
        }
    }

    /**
     * Pages backwards from the newest transaction (pageSize per request, passing to_lt so the endpoint can stop early)
     * until it reaches lt ≤ afterLt or the start of the account's history, then returns the oldest `limit` of those, oldest
     * first. A caller that got `limit` of them continues from the last one's lt.
     */
    async transactionsSince(address: Address, afterLt: bigint, limit = DEFAULT_LIMIT): Promise<Transaction[]> {
        checkSince(afterLt, limit);
        const newestFirst: Transaction[] = [];
        let cursor: { lt: bigint; hash: Buffer } | undefined;
        for (;;) {
            const at = cursor;
            const page = await this.call('transactionsSince', () =>
                this.client.getTransactions(address, {
                    limit: this.pageSize,
                    lt: at?.lt.toString(),
                    hash: at?.hash.toString('base64'),
                    // With a cursor, HttpApi asks for one more and drops the cursor's own transaction.
                    inclusive: false,
                    to_lt: afterLt > 0n ? afterLt.toString() : undefined,
                }),
            );
            let reached = false;
            for (const tx of page) {
                // Guard against an endpoint that repeats or reorders: without it a bad page could loop forever.
                const bound = newestFirst.length > 0 ? newestFirst[newestFirst.length - 1].lt : undefined;
                if (bound !== undefined && tx.lt >= bound) {
                    throw new ChainError('network', `the endpoint returned transactions of ${address.toString()} out of order (lt ${tx.lt} after ${bound})`);
                }
                if (tx.lt <= afterLt) {
                    reached = true;
                    break;
                }
                newestFirst.push(tx);
            }
            if (reached || page.length < this.pageSize) break;
            const last = page[page.length - 1];
            cursor = { lt: last.lt, hash: last.hash() };
        }
        return newestFirst.reverse().slice(0, limit);
    }

    /** Runs one endpoint call, turning anything but a ChainError into ChainError 'network' with the original as cause. */
    private async call<T>(what: string, f: () => Promise<T>): Promise<T> {
        try {
            return await f();
        } catch (e) {
            if (e instanceof ChainError) throw e;
            const code: ChainErrorCode = /timeout/i.test(errorText(e)) ? 'timeout' : 'network';
            throw new ChainError(code, `${what}: ${errorText(e)}`, { cause: e });
        }
    }
}

function toRelaxed(m: OutgoingMessage): MessageRelaxed {
    return internal({ to: m.to, value: m.value, body: m.body, bounce: m.bounce ?? true, init: m.init ?? null });
}
