// The shape of the code, checked: no import circle under src/, the affinity
// database reached only through src/directory/, and the node as wiring.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

import madge from 'madge';

const root = join(__dirname, '..');
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('architecture', function () {
  this.timeout(60_000);

  it('has no import circle under src/ (type-only imports included)', async () => {
    const m = await madge(src, { fileExtensions: ['ts'], tsConfig: join(root, 'tsconfig.json') });
    assert.deepEqual(m.circular(), []);
  });

  it('reaches the affinity table only through src/directory/ (the node only creates it and hands it to the responder)', () => {
    const offenders = files(src)
      .map((f) => relative(src, f))
      .filter((f) => !f.startsWith('directory/') && f !== 'native.ts')
      .filter((f) => {
        const text = readFileSync(join(src, f), 'utf8');
        if (f === 'daemon/node.ts') return /\btable\.\w+\(/.test(text);
        return /NativeAffinityTable|\.AffinityTable\b|\.digestAsync\(|\.internEndpoint\(|\.lookupBatch\(|\.upsert\(/.test(text);
      });
    assert.deepEqual(offenders, []);
  });

  it('keeps src/daemon/node.ts to wiring (at most about 250 lines)', () => {
    const lines = readFileSync(join(src, 'daemon', 'node.ts'), 'utf8').split('\n').length;
    assert.ok(lines <= 250, `src/daemon/node.ts has ${lines} lines`);
  });

  it('points a reader only at files in the repository (no notes kept outside it)', () => {
    const dirs = ['src', 'native', 'docs', 'bench', 'test', 'contrib', 'proto'].map((d) => join(root, d));
    const all = (dir: string): string[] =>
      readdirSync(dir).flatMap((f) => {
        const p = join(dir, f);
        if (f === 'node_modules' || f === 'build' || f === 'results') return [];
        return statSync(p).isDirectory() ? all(p) : /\.(ts|cc|h|md|sh|lua|proto|yml|yaml|py|txt)$/.test(f) ? [p] : [];
      });
    const offenders = [...dirs.flatMap(all), join(root, 'README.md'), join(root, 'CHANGELOG.md')]
      .filter((f) => f !== __filename)
      .filter((f) => /ENVIRONMENT\.md|\.\.\/shared\/|reference\/claims\.txt/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(root, f));
    assert.deepEqual(offenders, []);
  });
});
