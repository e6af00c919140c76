// `npm run demo` stays working: the foundation demo runs to the end and its
// own conservation check passes.
import { execFileSync } from 'child_process';
import path from 'path';

it('the foundation demo runs and accounts for every nanoton', () => {
    const root = path.join(__dirname, '..');
    const out = execFileSync(process.execPath, [require.resolve('ts-node/dist/bin.js'), '--transpile-only', 'demo/foundation.ts'], {
        cwd: root,
        encoding: 'utf8',
        timeout: 120_000,
    });
    expect(out).toContain('refused: ERR_UNKNOWN_VERIFIER (1150)');
    expect(out).toContain('provider after withdrawal: Exited, stake 0 TON');
    expect(out).toContain('provider after the job (its one-day attestation has now lapsed): Active, stake 150 TON, 1 models, accepts jobs: false, completed jobs: 1');
    expect(out).toContain('every nanoton accounted for');
});
