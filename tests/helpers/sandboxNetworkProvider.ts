// A blueprint NetworkProvider over @ton/sandbox, so that the scripts in
// scripts/ run unchanged in tests: the sender is a sandbox treasury, every
// message chain executes synchronously, and the UI answers questions from a
// queue the test provides and records everything the script writes.
import type { NetworkProvider, SenderWithSendResult, UIProvider } from '@ton/blueprint';
import { Address, Cell, Contract, ContractProvider, ContractState, OpenedContract, SenderArguments } from '@ton/core';
import { loadConfigParamsAsSlice, parseFullConfig } from '@ton/ton';
import { Blockchain, SandboxContract, SendMessageResult, TreasuryContract } from '@ton/sandbox';

type Network = ReturnType<NetworkProvider['network']>;
type Explorer = ReturnType<NetworkProvider['explorer']>;

/** An answer to one question: text for input()/choose(), an Address or text for inputAddress(), a boolean for prompt(). */
export type ScriptedAnswer = string | boolean | Address;

/** The script asked something the test did not answer, or the answer does not fit the question. */
export class ScriptedUIError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ScriptedUIError';
    }
}

/** A question the script asked, as recorded by ScriptedUI. */
export interface AskedQuestion {
    kind: 'input' | 'inputAddress' | 'choose' | 'prompt';
    message: string;
}

/** A UIProvider that answers from a queue and records what the script writes. */
export class ScriptedUI implements UIProvider {
    /** Everything passed to write(), in order. */
    readonly output: string[] = [];
    /** Every question asked, in order. */
    readonly asked: AskedQuestion[] = [];
    /** The current action prompt (set/clearActionPrompt), for completeness. */
    actionPrompt = '';
    private readonly answers: ScriptedAnswer[];

    constructor(answers: readonly ScriptedAnswer[] = []) {
        this.answers = [...answers];
    }

    /** Queues more answers. */
    answer(...answers: ScriptedAnswer[]): this {
        this.answers.push(...answers);
        return this;
    }

    /** Answers not consumed yet. */
    get unanswered(): readonly ScriptedAnswer[] {
        return this.answers;
    }

    /** All output as one string, lines joined with '\n'. */
    get text(): string {
        return this.output.join('\n');
    }

    write(message: string): void {
        this.output.push(message);
    }

    /* eslint-disable @typescript-eslint/require-await -- blueprint's UI is async: a missing or wrong scripted answer must reject, as a real prompt would, not throw synchronously */
    async prompt(message: string): Promise<boolean> {
        const answer = this.next('prompt', message);
        if (typeof answer === 'boolean') return answer;
        if (typeof answer === 'string' && /^(y|yes|n|no)$/i.test(answer.trim())) return /^y/i.test(answer.trim());
        throw new ScriptedUIError(`prompt "${message}" needs a boolean (or y/n) answer, got ${describe(answer)}`);
    }

    async inputAddress(message: string, fallback?: Address): Promise<Address> {
        // Like blueprint's console UI: an empty answer takes the fallback, an
        // invalid one is reported and the question is asked again.
        for (;;) {
            const answer = this.next('inputAddress', message);
            if (Address.isAddress(answer)) return answer;
            if (typeof answer !== 'string') {
                throw new ScriptedUIError(`inputAddress "${message}" needs an address or text, got ${describe(answer)}`);
            }
            const text = answer.trim();
            if (text === '' && fallback !== undefined) return fallback;
            try {
                return Address.parse(text);
            } catch {
                this.write(`${text} is not valid!`);
            }
        }
    }

    async input(message: string): Promise<string> {
        const answer = this.next('input', message);
        if (typeof answer === 'string') return answer;
        if (Address.isAddress(answer)) return answer.toString();
        throw new ScriptedUIError(`input "${message}" needs a text answer, got ${describe(answer)}`);
    }

    async choose<T>(message: string, choices: T[], display: (v: T) => string): Promise<T> {
        const answer = this.next('choose', message);
        if (typeof answer !== 'string') {
            throw new ScriptedUIError(`choose "${message}" needs the text of a choice, got ${describe(answer)}`);
        }
        const found = choices.find((c) => display(c) === answer || String(c) === answer);
        if (found === undefined) {
            throw new ScriptedUIError(
                `choose "${message}": "${answer}" is not one of ${choices.map((c) => JSON.stringify(display(c))).join(', ')}`,
            );
        }
        return found;
    }
    /* eslint-enable @typescript-eslint/require-await */

    setActionPrompt(message: string): void {
        this.actionPrompt = message;
    }

    clearActionPrompt(): void {
        this.actionPrompt = '';
    }

    private next(kind: AskedQuestion['kind'], message: string): ScriptedAnswer {
        this.asked.push({ kind, message });
        const answer = this.answers.shift();
        if (answer === undefined) {
            throw new ScriptedUIError(`the script asked (${kind}) "${message}" but the test gave no answer for it`);
        }
        return answer;
    }
}

function describe(answer: ScriptedAnswer): string {
    return Address.isAddress(answer) ? `address ${answer.toString()}` : JSON.stringify(answer);
}

/**
 * The sender of a sandbox treasury. Its lastSendResult is the sandbox's
 * SendMessageResult of the whole message chain, which scripts/lib/cli.ts
 * inspects to report the exit code of a failed transaction.
 */
export class SandboxSender implements SenderWithSendResult {
    private result: SendMessageResult | undefined;

    constructor(private readonly treasury: SandboxContract<TreasuryContract>) {}

    get address(): Address {
        return this.treasury.address;
    }

    get lastSendResult(): SendMessageResult | undefined {
        return this.result;
    }

    async send(args: SenderArguments): Promise<void> {
        this.result = await this.treasury.send(args);
    }
}

export class SandboxNetworkProvider implements NetworkProvider {
    readonly scriptedUI: ScriptedUI;
    private readonly theSender: SandboxSender;

    constructor(
        readonly blockchain: Blockchain,
        readonly wallet: SandboxContract<TreasuryContract>,
        answers: readonly ScriptedAnswer[] = [],
        private readonly networkName: Network = 'custom',
    ) {
        this.scriptedUI = new ScriptedUI(answers);
        this.theSender = new SandboxSender(wallet);
    }

    network(): Network {
        return this.networkName;
    }

    explorer(): Explorer {
        return 'tonviewer';
    }

    sender(): SandboxSender {
        return this.theSender;
    }

    /** The result of the last message chain this provider's sender started. */
    get lastResult(): SendMessageResult | undefined {
        return this.theSender.lastSendResult;
    }

    api(): never {
        throw new Error('api() is not supported in sandbox: use provider.open() and getters instead');
    }

    provider(address: Address, init?: { code?: Cell; data?: Cell }): ContractProvider {
        return this.blockchain.provider(address, init ?? null);
    }

    async isContractDeployed(address: Address): Promise<boolean> {
        return (await this.getContractState(address)).state.type === 'active';
    }

    /** The sandbox runs every message chain to its end before send() returns. */
    async waitForDeploy(address: Address): Promise<void> {
        if (!(await this.isContractDeployed(address))) {
            throw new Error(`Contract was not deployed at ${address.toString()}`);
        }
        this.scriptedUI.write(`Contract deployed at address ${address.toString()}`);
    }

    async waitForLastTransaction(): Promise<void> {
        // Nothing to wait for: the sandbox has executed the chain already.
    }

    async getContractState(address: Address): Promise<ContractState> {
        return this.blockchain.provider(address).getState();
    }

    // eslint-disable-next-line @typescript-eslint/require-await -- async like the real provider's: a config that fails to parse rejects
    async getConfig(): Promise<ReturnType<typeof parseFullConfig>> {
        return parseFullConfig(loadConfigParamsAsSlice(this.blockchain.configBase64));
    }

    async deploy(contract: Contract, value: bigint, body?: Cell): Promise<void> {
        if (contract.init === undefined || contract.init === null) {
            throw new Error('deploy() needs a contract with init');
        }
        await this.theSender.send({ to: contract.address, value, init: contract.init, body });
        await this.waitForDeploy(contract.address);
    }

    open<T extends Contract>(contract: T): OpenedContract<T> {
        // A SandboxContract is an OpenedContract whose send methods also return
        // the chain's result; scripts only rely on the OpenedContract part.
        return this.blockchain.openContract(contract) as unknown as OpenedContract<T>;
    }

    ui(): ScriptedUI {
        return this.scriptedUI;
    }
}

/** A blueprint script's entry point. */
export type Script = (provider: SandboxNetworkProvider, args: string[]) => Promise<void>;

/** Runs a script as `blueprint run` would, from `wallet`, answering questions from `answers`. */
export async function runScript(
    script: Script,
    blockchain: Blockchain,
    wallet: SandboxContract<TreasuryContract>,
    args: string[],
    answers: ScriptedAnswer[] = [],
): Promise<SandboxNetworkProvider> {
    const provider = new SandboxNetworkProvider(blockchain, wallet, answers);
    await script(provider, args);
    expect(provider.scriptedUI.unanswered).toEqual([]);
    return provider;
}

/** The script fails with an error of `type` whose message matches; returns the provider to inspect. */
export async function expectFailure(
    script: Script,
    blockchain: Blockchain,
    wallet: SandboxContract<TreasuryContract>,
    args: string[],
    type: abstract new (...args: never[]) => Error,
    message: RegExp,
    answers: ScriptedAnswer[] = [],
): Promise<{ provider: SandboxNetworkProvider; error: Error }> {
    const provider = new SandboxNetworkProvider(blockchain, wallet, answers);
    const error = await script(provider, args).then(
        () => undefined,
        (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(message);
    return { provider, error: error as Error };
}
