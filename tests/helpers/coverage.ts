// TVM coverage recorder for `npm run coverage` (scripts/coverage.sh).
//
// Only jest.coverage.config.ts loads this file (setupFilesAfterEnv), so a plain
// `npm test` never pays for it. Every sandbox made through Blockchain.create in a
// suite's process (the fixtures', and those the runner and SDK code make in-process,
// e.g. runner/chain.ts's SandboxChain) logs VM locations, and every transaction and
// getter its contracts run is recorded. Sandboxes in child processes (demo.spec.ts's
// demo, cli.spec.ts's runner binary) are not; docs/COVERAGE.md says why that loses nothing.
//
// We do not use the sandbox's own coverage (enableCoverage + blockchain.coverage()): it
// keeps every transaction's stack-dumping VM log until the end (megabytes each), misses
// transactions run through sendMessageIter, and re-disassembles the code for every
// transaction, which for the Registry (it carries the Provider's code, which carries the
// Escrow's and the Channel's) took minutes for a handful of transactions. Instead each
// VM log is folded as it arrives into hit counts per (code cell hash, bit offset), the
// locations the sandbox's coverage reads too, and afterAll writes them to
// coverage/raw/<suite>.json. scripts/coverage.ts maps them to assembly lines once.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'fs';
import path from 'path';
import { Cell } from '@ton/core';
import { Blockchain, SmartContract } from '@ton/sandbox';

const ROOT = path.join(__dirname, '..', '..');
const BUILD = path.join(ROOT, 'build', 'Chrysalis');
const RAW = path.join(ROOT, 'coverage', 'raw');

/** Per contract: executed steps and VM exceptions, keyed by `cellhash:offset` (see fold). */
interface Counts {
    codeHash: string;
    steps: Map<string, number>;
    thrown: Map<string, number>;
}

// Contracts by the hash of their code cell (build/Chrysalis/Chrysalis_<Name>.code.boc).
const byCodeHash = new Map<string, { name: string; counts: Counts }>();
for (const file of readdirSync(BUILD).filter((f) => f.endsWith('.code.boc'))) {
    const name = file.replace(/^Chrysalis_/, '').replace(/\.code\.boc$/, '');
    const codeHash = Cell.fromBoc(readFileSync(path.join(BUILD, file)))[0].hash().toString('hex');
    byCodeHash.set(codeHash, { name, counts: { codeHash, steps: new Map(), thrown: new Map() } });
}

const LOCATION = /^code cell hash: ([0-9A-Fa-f]{64}) offset: (\d+)/;

function bump(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Folds one VM log (vm_logs_location level) into its contract's counts. Logs of other
 * code (treasury wallets) are skipped: execution starts at the code's root cell, so the
 * first location names the contract.
 */
function fold(log: string | undefined): void {
    if (!log) return;
    let counts: Counts | undefined;
    let previous = '';
    let key = '';
    for (const line of log.split('\n')) {
        const m = LOCATION.exec(line);
        if (m) {
            const hash = m[1].toLowerCase();
            if (!counts) {
                counts = byCodeHash.get(hash)?.counts;
                if (!counts) return;
            }
            // An implicit JMPREF into a cell logs its offset 0 twice: once for the jump (the
            // `ref {` line of the assembly) and once for the cell's first instruction. The
            // sandbox's coverage maps the second to the next instruction at offset 0; `+`
            // marks it so scripts/coverage.ts can do the same.
            key = line === previous && m[2] === '0' ? `${hash}:0+` : `${hash}:${m[2]}`;
            bump(counts.steps, key);
        } else if (counts && (line.startsWith('default exception handler') || line.startsWith('handling exception'))) {
            bump(counts.thrown, key); // the last location is the instruction that threw
        }
        previous = line;
    }
}

// Every transaction and getter run by a SmartContract of a sandbox, however it was
// started: sendMessage, and also sendMessageIter (executeTill/executeFrom), whose
// transactions never reach the hook the sandbox's own coverage collects them from.
const contract = SmartContract.prototype;
// eslint-disable-next-line @typescript-eslint/unbound-method -- each is re-applied to its own `this` below
const { receiveMessage, runTickTock, get } = contract;
contract.receiveMessage = async function (this: SmartContract, ...args: Parameters<SmartContract['receiveMessage']>) {
    const tx = await receiveMessage.apply(this, args);
    fold(tx.vmLogs);
    return tx;
};
contract.runTickTock = async function (this: SmartContract, ...args: Parameters<SmartContract['runTickTock']>) {
    const tx = await runTickTock.apply(this, args);
    fold(tx.vmLogs);
    return tx;
};
contract.get = async function (this: SmartContract, ...args: Parameters<SmartContract['get']>) {
    try {
        const result = await get.apply(this, args);
        fold(result.vmLogs);
        return result;
    } catch (e) {
        // A getter that throws: its log is on the GetMethodError.
        fold((e as { vmLogs?: string }).vmLogs);
        throw e;
    }
};

// Every sandbox logs VM locations (and prints nothing). Locations are all coverage needs:
// the verbose level the sandbox's coverage uses adds a stack dump per step (~60x larger).
const create = Blockchain.create.bind(Blockchain);
Blockchain.create = async (...args: Parameters<typeof Blockchain.create>) => {
    const blockchain = await create(...args);
    blockchain.verbosity = { ...blockchain.verbosity, print: false, vmLogs: 'vm_logs_location' };
    return blockchain;
};

afterAll(() => {
    const suite = path.relative(ROOT, expect.getState().testPath ?? 'unknown').replace(/[\\/]/g, '_');
    const contracts: Record<string, { codeHash: string; steps: Record<string, number>; thrown: Record<string, number> }> = {};
    for (const { name, counts } of byCodeHash.values()) {
        if (counts.steps.size === 0) continue;
        contracts[name] = { codeHash: counts.codeHash, steps: Object.fromEntries(counts.steps), thrown: Object.fromEntries(counts.thrown) };
    }
    mkdirSync(RAW, { recursive: true });
    writeFileSync(path.join(RAW, `${suite}.json`), JSON.stringify({ suite, contracts }));
});
