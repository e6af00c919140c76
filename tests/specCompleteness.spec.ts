// docs/SPEC.md is complete against the compiled contracts: every message with
// an opcode, every getter, every exit code, every parameter and a state
// machine per contract. The compiled ABIs (build/Chrysalis/*.abi, from
// `npm run build`) and contracts/errors.tact are the lists; each failure names
// exactly what SPEC lacks.
import { readdirSync, readFileSync } from 'fs';
import path from 'path';

interface AbiType {
    name: string;
    header: number | null;
    fields: { name: string }[];
}
interface Abi {
    name: string;
    types: AbiType[];
    getters: { name: string }[];
}

const ROOT = path.join(__dirname, '..');
const BUILD = path.join(ROOT, 'build', 'Chrysalis');
const spec = readFileSync(path.join(ROOT, 'docs', 'SPEC.md'), 'utf8');
const abis: Abi[] = readdirSync(BUILD)
    .filter((file) => file.endsWith('.abi'))
    .sort()
    .map((file) => JSON.parse(readFileSync(path.join(BUILD, file), 'utf8')) as Abi);

/** The text under the first heading that matches, up to the next heading of the same or a higher level; null without one. */
function section(text: string, heading: RegExp): string | null {
    const lines = text.split('\n');
    const start = lines.findIndex((line) => heading.test(line));
    if (start < 0) return null;
    const level = /^#+/.exec(lines[start])![0].length;
    const end = lines.findIndex((line, i) => i > start && /^#+ /.test(line) && /^#+/.exec(line)![0].length <= level);
    return lines.slice(start + 1, end < 0 ? undefined : end).join('\n');
}

/** A top-level section, by title ("## 12. Exit codes"). */
function chapter(title: string): string {
    const text = section(spec, new RegExp(`^## \\d+\\. ${title}$`));
    if (text === null) throw new Error(`SPEC has no section "## N. ${title}"`);
    return text;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** As SPEC writes an opcode: `0x` and eight lower-case hex digits. */
const opcode = (header: number) => `0x${header.toString(16).padStart(8, '0')}`;

describe('docs/SPEC.md is complete', () => {
    it('the build has the four contracts', () => {
        expect(abis.map((abi) => abi.name)).toEqual(['Channel', 'Escrow', 'Provider', 'Registry']);
    });

    it('every message with an opcode: its name and opcode on one line, and a TL-B layout with every field', () => {
        // Every ABI lists the types its contract can see, so shared messages appear in several: one entry per name.
        const messages = new Map<string, AbiType>();
        for (const abi of abis) for (const type of abi.types) if (type.header !== null) messages.set(type.name, type);
        const lines = spec.split('\n');
        const missing: string[] = [];
        for (const message of messages.values()) {
            const hex = opcode(message.header!);
            if (!lines.some((line) => line.includes(`\`${hex}\``) && line.includes(`\`${message.name}\``))) {
                missing.push(`${message.name}: no line with both \`${message.name}\` and \`${hex}\` (a heading or a summary row)`);
            }
            // Tact's TL-B: `snake_name#opcode field:type ... = Name`, possibly over several lines.
            const tlb = new RegExp(`\\b[a-z_]+#${hex.slice(2)}\\b([^=]*)= ${escape(message.name)}\\b`).exec(spec);
            if (tlb === null) {
                missing.push(`${message.name}: no TL-B layout \`…#${hex.slice(2)} … = ${message.name}\``);
                continue;
            }
            const absent = message.fields.map((f) => f.name).filter((field) => !tlb[1].includes(`${field}:`));
            if (absent.length > 0) missing.push(`${message.name}: its TL-B layout lacks ${absent.map((f) => `${f}:`).join(', ')}`);
        }
        expect(missing).toEqual([]);
    });

    it("every getter of every contract in the Getters section's table for that contract", () => {
        const getters = chapter('Getters');
        const missing: string[] = [];
        for (const abi of abis) {
            // A contract's getters are the rows of the table under "### <Contract>".
            const table = section(getters, new RegExp(`^### ${abi.name}$`)) ?? '';
            for (const getter of abi.getters) {
                if (!table.includes(`| \`${getter.name}(`)) missing.push(`${abi.name}.${getter.name}()`);
            }
        }
        expect(missing).toEqual([]);
    });

    it('every exit code of contracts/errors.tact, number and name, in the Exit codes table, and no other', () => {
        const errors = [...readFileSync(path.join(ROOT, 'contracts', 'errors.tact'), 'utf8').matchAll(/^const (ERR_\w+): Int = (\d+);/gm)].map(
            (m) => `${m[2]} ${m[1]}`,
        );
        const rows = [...chapter('Exit codes').matchAll(/^\| (\d+) \| `(ERR_\w+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
        expect({ missingFromSpec: errors.filter((e) => !rows.includes(e)), notInErrorsTact: rows.filter((r) => !errors.includes(r)) }).toEqual({
            missingFromSpec: [],
            notInErrorsTact: [],
        });
    });

    it('every field of Params in the Parameters table, with a default, a bound and its reasoning', () => {
        const params = abis.flatMap((abi) => abi.types).find((type) => type.name === 'Params');
        expect(params).toBeDefined();
        const table = chapter('Parameters');
        const missing: string[] = [];
        for (const { name } of params!.fields) {
            const row = new RegExp(`^\\| \`${name}\` \\|(.*)\\|$`, 'm').exec(table);
            const cells = row === null ? [] : row[1].split(' | ').map((cell) => cell.trim());
            if (cells.length !== 3 || cells.some((cell) => cell === '')) missing.push(`${name}: no row | \`${name}\` | default | bound | reasoning |`);
        }
        expect(missing).toEqual([]);
    });

    it('a section "<Contract> state machine", with a diagram, for every contract', () => {
        const missing: string[] = [];
        for (const { name } of abis) {
            const heading = new RegExp(`^#{2,4} (\\d+\\. )?${name} state machine$`);
            if (!spec.split('\n').some((line) => heading.test(line))) {
                missing.push(`${name}: no heading "### ${name} state machine"`);
            } else if (!section(spec, heading)!.includes('```')) {
                missing.push(`${name}: its state machine section has no diagram (code block)`);
            }
        }
        expect(missing).toEqual([]);
    });
});
