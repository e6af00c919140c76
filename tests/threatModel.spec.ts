// docs/THREAT-MODEL.md keeps its word: every test it cites exists under
// exactly that title, every threat cites at least one test, and no ID is used
// twice. A reference is `tests/<file>.ts` › `<title of an it(...) or test(...)>`;
// a threat is a table row whose first cell is its ID (T-XXX-n), with the
// references in its last cell (Tests). Residual risks (R-n) need no test.
import { existsSync, readFileSync } from 'fs';
import path from 'path';

const ROOT = path.join(__dirname, '..');
const DOC = readFileSync(path.join(ROOT, 'docs/THREAT-MODEL.md'), 'utf8');

const REFERENCE = /`(tests\/[^`]+?\.ts)` › `([^`]+)`/g;
const THREAT_ID = /^T-[A-Z]+-\d+$/;
const ANY_ID = /^(T-[A-Z]+-\d+|R-\d+)$/;

interface Row {
    id: string;
    cells: string[];
}

/** Table rows whose first cell is an ID, with their cells. */
const rows: Row[] = DOC.split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split('|').slice(1, -1).map((cell) => cell.trim()))
    .filter((cells) => ANY_ID.test(cells[0]))
    .map((cells) => ({ id: cells[0], cells }));
const threats = rows.filter((row) => THREAT_ID.test(row.id));

/** Every reference in the document, with the ID of the row it is in (or its line number). */
const references = DOC.split('\n').flatMap((line, i) => {
    const cells = line.startsWith('|') ? line.split('|').slice(1, -1).map((cell) => cell.trim()) : [];
    const where = cells.length > 0 && ANY_ID.test(cells[0]) ? cells[0] : `line ${i + 1}`;
    return [...line.matchAll(REFERENCE)].map((m) => ({ where, file: m[1], title: m[2] }));
});

/**
 * The titles of a test file's it(...) and test(...) calls that are plain string
 * literals (single, double or back quotes without ${}), unescaped.
 */
const TITLE = /(?<![\w.$])(?:it|test)(?:\.(?:only|skip|concurrent|failing))?\(\s*(?:'((?:[^'\\\n]|\\.)*)'|"((?:[^"\\\n]|\\.)*)"|`((?:[^`\\$]|\\.|\$(?!\{))*)`)/g;
const titlesByFile = new Map<string, Set<string>>();
function titlesOf(file: string): Set<string> {
    let titles = titlesByFile.get(file);
    if (!titles) {
        const source = readFileSync(path.join(ROOT, file), 'utf8');
        titles = new Set([...source.matchAll(TITLE)].map((m) => (m[1] ?? m[2] ?? m[3]).replace(/\\(['"`\\])/g, '$1')));
        titlesByFile.set(file, titles);
    }
    return titles;
}

describe('docs/THREAT-MODEL.md', () => {
    it('lists threats in tables the checker can read', () => {
        // Guards against a format change that would make the checks below vacuous.
        expect(threats.length).toBeGreaterThan(50);
        expect(references.length).toBeGreaterThan(threats.length);
    });

    it('cites only test files that exist', () => {
        const missing = references.filter((r) => !existsSync(path.join(ROOT, r.file))).map((r) => `${r.where}: ${r.file} does not exist (cited for '${r.title}')`);
        expect(missing).toEqual([]);
    });

    it('cites only tests that exist under exactly that title', () => {
        const missing = references
            .filter((r) => existsSync(path.join(ROOT, r.file)) && !titlesOf(r.file).has(r.title))
            .map((r) => `${r.where}: ${r.file} has no it/test titled '${r.title}'`);
        expect(missing).toEqual([]);
    });

    it('gives every threat at least one test, and nothing but test references in its Tests cell', () => {
        const problems = threats.flatMap((t) => {
            const cell = t.cells[t.cells.length - 1];
            const cited = [...cell.matchAll(REFERENCE)].length;
            const rest = cell.replace(REFERENCE, '').replace(/<br>/g, '').trim();
            return [
                ...(cited === 0 ? [`${t.id}: no test reference in its Tests cell`] : []),
                ...(rest !== '' ? [`${t.id}: its Tests cell holds something that is not a test reference: '${rest}'`] : []),
            ];
        });
        expect(problems).toEqual([]);
    });

    it('uses every threat and risk ID once', () => {
        const uses = new Map<string, number>();
        for (const row of rows) uses.set(row.id, (uses.get(row.id) ?? 0) + 1);
        const twice = [...uses].filter(([, n]) => n > 1).map(([id, n]) => `${id} is used ${n} times`);
        expect(twice).toEqual([]);
    });
});
