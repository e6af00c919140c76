// The gas and fee tables of README.md and docs/SPEC.md are the rendering of
// the committed gas/gas.json and bench/results.json (bench/tables.ts), so a
// figure cannot drift from its measurement. On a failure: `npm run tables`.
import { readFileSync } from 'fs';
import path from 'path';
import { DOCUMENTS, ROOT, loadInputs, regionBody, regionsOf, renderRegions } from '../bench/tables';

describe('generated gas and fee tables', () => {
    const rendered = renderRegions(loadInputs());

    for (const [file, names] of Object.entries(DOCUMENTS)) {
        it(`${file} holds exactly its regions, each equal to the rendering`, () => {
            const regions = regionsOf(readFileSync(path.join(ROOT, file), 'utf8'), file);
            expect([...regions.keys()].sort()).toEqual([...names].sort());
            for (const name of names) {
                expect({ file, region: name, content: regions.get(name) }).toEqual({ file, region: name, content: regionBody(rendered[name]) });
            }
        });
    }

    it('names the config of every fee, and says when mainnet is not priced', () => {
        const configs = new Set(loadInputs().results.filter((r) => r.unit === 'nanoton').map((r) => r.config));
        for (const name of ['escrow-lifecycle', 'channel-fees']) {
            if (configs.has('sandbox')) expect(rendered[name]).toContain("`@ton/sandbox`");
            if (!configs.has('mainnet')) expect(rendered[name]).toContain('Mainnet: not priced yet');
        }
    });
});
