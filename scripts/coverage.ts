// Merges the per-suite TVM coverage written by tests/helpers/coverage.ts
// (coverage/raw/*.json) into one report per contract:
//   coverage/<Contract>.html  the sandbox's HTML report (assembly lines, hits)
//   coverage/<Contract>.txt   the same as text, with the handler of each stretch
//   coverage/summary.md       instructions and lines run per contract, what no test
//                             ran by handler, and every throw site no test made throw
// Run by scripts/coverage.sh after the suite: ts-node --transpile-only scripts/coverage.ts
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'fs';
import path from 'path';
import { Cell } from '@ton/core';
import { CoverageData, generateCoverageSummary, generateHtmlReport } from '@ton/sandbox';
// The assembler/disassembler the sandbox's coverage is built on (a dependency of @ton/sandbox).
import { runtime, text, trace } from 'ton-assembly';
import { EXIT_CODES } from '../wrappers/chrysalis';

const ROOT = path.join(__dirname, '..');
const BUILD = path.join(ROOT, 'build', 'Chrysalis');
const OUT = path.join(ROOT, 'coverage');
const RAW = path.join(OUT, 'raw');

interface Raw {
    suite: string;
    contracts: Record<string, { codeHash: string; steps: Record<string, number>; thrown: Record<string, number> }>;
}

const codes = new Map(
    readdirSync(BUILD)
        .filter((f) => f.endsWith('.code.boc'))
        .map((f) => [f.replace(/^Chrysalis_/, '').replace(/\.code\.boc$/, ''), Cell.fromBoc(readFileSync(path.join(BUILD, f)))[0]] as const),
);
const hex = (c: Cell) => c.hash().toString('hex');

/**
 * A contract's code with the other contracts' code cells (which it carries to deploy them
 * or compute their addresses, once per use site) replaced by an empty cell: they never
 * run as this contract, and disassembled in place they would make the Registry's listing
 * 158,000 lines of mostly Provider code. `rename` maps each original cell hash to its hash
 * in the stripped tree (they differ only on the paths to the replaced cells).
 */
function stripChildren(code: Cell, children: Set<string>): { stripped: Cell; rename: Map<string, string> } {
    const rename = new Map<string, string>();
    const memo = new Map<string, Cell>();
    const empty = new Cell();
    const visit = (cell: Cell): Cell => {
        const h = hex(cell);
        const known = memo.get(h);
        if (known) return known;
        const refs = cell.refs.map((r) => (children.has(hex(r)) ? empty : visit(r)));
        const out = refs.every((r, i) => r === cell.refs[i]) ? cell : new Cell({ bits: cell.bits, refs });
        memo.set(h, out);
        rename.set(h, hex(out));
        return out;
    };
    return { stripped: visit(code), rename };
}

// As the sandbox counts them: dictionary keys, closing braces and blank lines are not code.
const executable = (line: string) => !line.includes('=>') && !['}', ']', ''].includes(line.trim());

/**
 * Disassembles the stripped code. A cell the code uses from several places (an inline_ref
 * function, say) is printed at each, so besides lines we count distinct instructions:
 * `instructions` maps each one (`cell#index`) to the listing lines that print it.
 */
function disassemble(name: string, code: Cell) {
    const children = new Set([...codes].filter(([n]) => n !== name).map(([, c]) => hex(c)));
    const { stripped, rename } = stripChildren(code, children);
    const listing = text.print(runtime.decompileCell(stripped));
    const parsed = text.parse(`${name}.tasm`, listing);
    if (parsed.$ === 'ParseFailure') throw new Error(`${name}: cannot parse its own disassembly`);
    const [recompiled, mapping] = runtime.compileCellWithMapping(parsed.instructions);
    if (!recompiled.hash().equals(stripped.hash())) throw new Error(`${name}: disassembly does not reassemble to the same code`);
    const info = trace.createMappingInfo(mapping);
    const dictCells = new Map(info.dictionaryCells.map((d) => [d.cell, d]));
    const lines = listing.split('\n');

    const instructions = new Map<string, number[]>();
    for (const [cellHash, cell] of Object.entries(info.cells)) {
        cell?.instructions.forEach((it, i) => {
            // The mapping also lists the implicit RET at the end of each continuation, on the
            // line of the instruction before it; it is not an instruction of the listing.
            const implicitRet = it.name === 'RET' && it.loc && !/^RET\b/.test(lines[it.loc.line].trim());
            const at = it.loc && !implicitRet ? [it.loc.line, ...it.loc.otherLines].filter((l) => executable(lines[l])) : [];
            if (at.length > 0) instructions.set(`${cellHash}#${i}`, at);
        });
    }

    /** The instruction logged at `key` (`hash:offset`, or `hash:0+`; see tests/helpers/coverage.ts). */
    const instructionAt = (key: string): string | undefined => {
        const [rawHash, rawOffset] = key.split(':');
        const second = rawOffset === '0+';
        let cellHash = rename.get(rawHash) ?? rawHash;
        let offset = second ? 0 : Number(rawOffset);
        // A getter is entered through its leaf in the method dictionary: the log names the
        // leaf cell, and offsets count from the leaf's start rather than the code's.
        const dict = dictCells.get(cellHash);
        if (dict) [cellHash, offset] = [dict.dataCell, offset - dict.offset];
        const cell = info.cells[cellHash]?.instructions ?? [];
        let i = cell.findIndex((it) => it.offset === offset);
        if (i < 0) return undefined;
        // As the sandbox does: the second offset-0 step after an implicit JMPREF is the cell's first instruction.
        if (second && cell[i + 1]?.offset === 0) i += 1;
        return `${cellHash}#${i}`;
    };
    return { lines, instructions, instructionAt };
}

/** Code in no handler: message parsing, state loading (and init() on a first message), dispatch and its fallbacks. */
const OUTSIDE = '(outside handlers: parsing, state load, init(), dispatch)';

interface Abi {
    types: { name: string; header: number | null }[];
    receivers: { message: { kind: string; type?: string } }[];
    getters: { name: string; methodId: number }[];
}

/**
 * Labels each listing line with the Tact handler it belongs to, from the contract's ABI:
 * a getter is its entry in the method dictionary (`<methodId> => {`); a receiver is the
 * body run when recv_internal's opcode compare (`PUSHINT <op>`, `EQUAL`) matches, which
 * is `bounced(...)` for a message the contract sends but does not receive. Lines in no
 * body are OUTSIDE.
 */
function handlers(name: string, lines: string[]): string[] {
    const abi = JSON.parse(readFileSync(path.join(BUILD, `Chrysalis_${name}.abi`), 'utf8')) as Abi;
    const messages = new Map(abi.types.filter((t) => t.header !== null).map((t) => [String(t.header), t.name]));
    const received = new Set(abi.receivers.map((r) => r.message.type));
    const getters = new Map(abi.getters.map((g) => [String(g.methodId), g.name]));
    const labels = lines.map(() => OUTSIDE);
    const indent = (i: number) => lines[i].length - lines[i].trimStart().length;
    /** The line closing the block opened on line i. */
    const close = (i: number) => {
        let j = i + 1;
        while (j < lines.length && !(indent(j) === indent(i) && /^[}\]]/.test(lines[j].trim()))) j++;
        return j;
    };
    const label = (from: number, to: number, what: string) => labels.fill(what, from, to + 1);
    /** The next line that is not a cell boundary (printed `ref {`; one may fall anywhere in a compare). */
    const next = (j: number): number => (lines[j]?.trim() === 'ref {' ? next(j + 1) : j);
    for (let i = 0; i < lines.length; i++) {
        const getter = /^(\d+) => \{$/.exec(lines[i].trim());
        if (getter && getters.has(getter[1])) label(i, close(i), `get ${getters.get(getter[1])}()`);
        const compare = /^PUSHINT\w* (\d+)$/.exec(lines[i].trim());
        if (!compare || !messages.has(compare[1])) continue;
        const equal = next(i + 1);
        const body = next(equal + 1);
        if (lines[equal]?.trim() === 'EQUAL' && /\{$/.test(lines[body]?.trim() ?? '')) {
            const message = messages.get(compare[1])!;
            label(i, close(body), received.has(message) ? `receive(${message})` : `bounced(${message})`);
        }
    }
    return labels;
}

const codeName = new Map(Object.entries(EXIT_CODES).map(([n, c]) => [c, n]));
function describeThrow(instruction: string): string {
    const code = Number(/\b(\d+)\s*$/.exec(instruction)?.[1]);
    return codeName.get(code) ?? (Number.isFinite(code) ? `Tact/TVM ${code}` : 'computed code');
}

/** Line numbers as ranges: 3, 7-9, 12. */
function ranges(ns: number[]): string {
    const out: string[] = [];
    for (const n of [...ns].sort((x, y) => x - y)) {
        const last = out.at(-1);
        const m = last ? /^(\d+)(?:-(\d+))?$/.exec(last) : null;
        if (m && Number(m[2] ?? m[1]) === n - 1) out[out.length - 1] = `${m[1]}-${n}`;
        else out.push(String(n));
    }
    return out.join(', ');
}

/** Merges every suite's counts for one contract and writes its reports; returns its row of the summary and its section. */
function report(name: string, code: Cell, raws: Raw[]): { row: string; section: string[] } {
    const { lines: listing, instructions, instructionAt } = disassemble(name, code);
    const hits = new Map<string, number>();
    const thrown = new Map<string, number>();
    let unmapped = 0; // steps at no instruction of the listing: would mean the mapping is off
    for (const raw of raws) {
        const c = raw.contracts[name];
        if (!c) continue;
        if (c.codeHash !== hex(code)) throw new Error(`${raw.suite}: ${name} was recorded for other code; delete coverage/raw and rerun`);
        for (const [into, counts] of [[hits, c.steps], [thrown, c.thrown]] as const) {
            for (const [key, n] of Object.entries(counts)) {
                const id = instructionAt(key);
                if (id && instructions.has(id)) into.set(id, (into.get(id) ?? 0) + n);
                else unmapped += n;
            }
        }
    }
    const lineHits = new Array<number>(listing.length).fill(0);
    for (const [id, n] of hits) for (const l of instructions.get(id) ?? []) lineHits[l] += n;
    const data: CoverageData = {
        code,
        lines: listing.map((line, i) => ({
            line,
            info: lineHits[i] > 0 ? { $: 'Covered', hits: lineHits[i], gasCosts: [] } : executable(line) ? { $: 'Uncovered' } : { $: 'Skipped' },
        })),
    };
    writeFileSync(path.join(OUT, `${name}.html`), generateHtmlReport(data));

    // Each instruction under the handler that runs it. A function body shared by several
    // handlers (a cell they all call) counts once: as outside handlers when code outside
    // them calls it too (the contract's init, say), else under the handlers that call it.
    const labels = handlers(name, listing);
    const firstLine = (id: string) => instructions.get(id)![0];
    const ownerOf = (id: string) => {
        const users = [...new Set(instructions.get(id)!.map((l) => labels[l]))].sort();
        return users.find((u) => u === OUTSIDE) ?? (users.length > 3 ? `(shared by ${users.length} handlers)` : users.join(' + '));
    };
    const byHandler = new Map<string, { total: number; uncovered: number[] }>();
    for (const id of instructions.keys()) {
        const h = byHandler.get(ownerOf(id)) ?? { total: 0, uncovered: [] };
        h.total += 1;
        if (!hits.has(id)) h.uncovered.push(firstLine(id) + 1);
        byHandler.set(ownerOf(id), h);
    }

    // The listing as text, with the handler each stretch belongs to (the sandbox's text
    // report has no handlers, and its gas columns would be empty: gas is not recorded).
    const s = generateCoverageSummary(data);
    const listingText = listing.map((line, i) => {
        const mark = lineHits[i] > 0 ? `✓ ${String(lineHits[i]).padStart(7)}` : executable(line) ? '✗        ' : '         ';
        const header = labels[i] !== labels[i - 1] ? `        ── ${labels[i]} ──\n` : '';
        return `${header}${String(i + 1).padStart(6)} ${mark} | ${line}`;
    });
    writeFileSync(
        path.join(OUT, `${name}.txt`),
        `${name}: ${hits.size} of ${instructions.size} instructions covered, ${s.coveredLines} of ${s.totalLines} lines ` +
            `(✓ run, with hits; ✗ never run; line numbers as in ${name}.html)\n\n${listingText.join('\n')}\n`,
    );

    // Throw sites: did a test make each one throw, only pass it, or never get there?
    const site = (id: string) => ({ id, n: firstLine(id) + 1, text: listing[firstLine(id)].trim() });
    const sites = [...instructions.keys()].map(site).filter((t) => /^THROW/.test(t.text)).sort((a, b) => a.n - b.n);
    const notThrown = sites.filter((t) => !thrown.has(t.id));
    const neverReached = notThrown.filter((t) => !hits.has(t.id));
    const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
    const row =
        `| ${name} | ${hits.size} / ${instructions.size} | ${pct(hits.size, instructions.size)} | ${s.coveredLines} / ${s.totalLines} | ` +
        `${sites.length} | ${sites.length - notThrown.length} | ${notThrown.length - neverReached.length} | ${neverReached.length} |`;

    const section = [`\n## ${name}\n`];
    if (unmapped > 0) section.push(`**${unmapped} recorded steps fall on no instruction of the listing.**\n`);
    section.push(`Instructions by handler, with the lines of coverage/${name}.txt that none of the tests ran:\n`);
    section.push('| Handler | Instructions | Not run | Lines not run |', '|---|---:|---:|---|');
    for (const [h, n] of [...byHandler].sort(([a], [b]) => a.localeCompare(b))) {
        section.push(`| ${h} | ${n.total} | ${n.uncovered.length || ''} | ${ranges(n.uncovered)} |`);
    }
    section.push('', `Throw sites no test made throw:\n`);
    for (const t of notThrown) {
        const h = hits.get(t.id);
        section.push(`- ${t.n}: \`${t.text}\` ${describeThrow(t.text)} in ${ownerOf(t.id)}: ${h ? `reached ${h}×, never thrown` : 'never reached'}`);
    }
    if (notThrown.length === 0) section.push('(none)');
    const otherThrows = [...thrown.keys()].map(site).filter((t) => !/^THROW/.test(t.text));
    if (otherThrows.length > 0) {
        section.push('\nVM exceptions at instructions other than a throw:\n');
        for (const t of otherThrows) section.push(`- ${t.n}: \`${t.text}\` ${thrown.get(t.id)}×`);
    }
    return { row, section };
}

function main(): void {
    if (!existsSync(RAW)) throw new Error('coverage/raw is missing: run `npm run coverage`');
    const raws = readdirSync(RAW)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(path.join(RAW, f), 'utf8')) as Raw);
    const reports = [...codes].map(([name, code]) => report(name, code, raws));
    const head = [
        `# TVM coverage of the Chrysalis contracts\n`,
        `From ${raws.length} test suites (coverage/raw). Instructions are the distinct instructions of each contract's code, ` +
            `without the other contracts' code it carries; lines are the lines of its disassembly (coverage/<Contract>.txt, .html), ` +
            `where code used from several places is printed at each. A throw site is "thrown" when some transaction or getter ` +
            `ended with an exception there. docs/COVERAGE.md explains what is not run.\n`,
        '| Contract | Instructions run | Coverage | Lines run | Throw sites | thrown | reached, never thrown | never reached |',
        '|---|---:|---:|---:|---:|---:|---:|---:|',
        ...reports.map((r) => r.row),
    ];
    writeFileSync(path.join(OUT, 'summary.md'), [...head, ...reports.flatMap((r) => r.section), ''].join('\n'));
    console.log(`${head.join('\n')}\n\nPer handler and per throw site: coverage/summary.md; annotated code: coverage/<Contract>.txt and .html`);
}

main();
