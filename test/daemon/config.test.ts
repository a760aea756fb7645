import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfigFile, loadKeyFile, resolveConfig } from '../../src/daemon/config';

const root = join(__dirname, '..', '..');
const problems = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail('expected a ConfigError');
};

describe('configuration (pure)', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(join(tmpdir(), 'affinityd-config-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const key = (mode: number, text = `1 ${'ab'.repeat(32)} send\n`) => {
    const f = join(dir, `k${Math.random()}`);
    writeFileSync(f, text);
    chmodSync(f, mode);
    return f;
  };

  it('fills every setting with its embedded default', () => {
    const c = resolveConfig({});
    assert.equal(c.cluster.group, '239.255.77.77');
    assert.equal(c.cluster.port, 7447);
    assert.equal(c.query.count, 3);
    assert.equal(c.selection.policy, 'rendezvous');
    assert.equal(c.directory.capacity, 1_000_000);
  });

  it('accepts the example configuration as shipped', () => {
    const text = readFileSync(join(root, 'config', 'affinityd.example.yaml'), 'utf8').replace('/etc/affinityd/cluster.key', key(0o600));
    const f = join(dir, 'example.yaml');
    writeFileSync(f, text);
    const c = loadConfigFile(f);
    assert.equal(c.endpoints.length, 2);
    assert.equal(c.frontends[0].name, 'calls');
  });

  it('names the setting and the reason for every problem', () => {
    assert.deepEqual(
      problems(() => resolveConfig({ cluster: { port: 0, colour: 'red' }, query: { count: 1000 }, selection: { policy: 'random' } } as never)),
      ['cluster.colour: unknown setting', 'cluster.port: must be >= 1', 'query.count: must be <= 100', 'selection.policy: must be one of rendezvous, least-connections, round-robin'],
    );
    assert.deepEqual(problems(() => resolveConfig({ endpoints: [{ port: 1 }] } as never)), ['endpoints.0.address: required']);
    assert.deepEqual(
      problems(() => resolveConfig({ cluster: { interface: 'eth0' }, endpoints: [{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 }] })),
      ['cluster.interface: an IPv4 group needs the interface\'s IPv4 address, got "eth0"', 'endpoints.1: 10.0.0.1:1 is listed twice'],
    );
  });

  it('reports YAML syntax errors and what a runnable configuration lacks', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'node: { id: 1\n');
    assert.match(problems(() => loadConfigFile(bad))[0], /flow map|Missing|expected/i);
    const noEp = join(dir, 'noep.yaml');
    writeFileSync(noEp, 'node: { id: 2 }\n');
    assert.deepEqual(problems(() => loadConfigFile(noEp)), ['endpoints: at least one endpoint is needed to run a node']);
    assert.match(problems(() => loadConfigFile(join(dir, 'missing.yaml')))[0], /cannot read/);
  });

  it('reads a key file, and refuses one others can read or a malformed one', () => {
    const ring = loadKeyFile(key(0o600, `# keys\n1 ${'11'.repeat(32)}\n2 ${'22'.repeat(32)} send\n`));
    assert.deepEqual([ring.keys.map((k) => k.id), ring.sendKeyId], [[1, 2], 2]);
    assert.match(problems(() => loadKeyFile(key(0o640)))[0], /accessible to group or others.*chmod 600/);
    assert.deepEqual(problems(() => loadKeyFile(key(0o600, '1 abc\n'))), ['line 1: expected "ID HEX-SECRET [send]"', 'no key in the file']);
    assert.deepEqual(problems(() => loadKeyFile(key(0o600, `1 ${'11'.repeat(32)}\n2 ${'22'.repeat(32)}\n`))), ['several keys and none marked send']);
    assert.match(problems(() => loadKeyFile(key(0o600, '1 1122\n')))[0], /16 to 64 octets/);
  });

  it('affinityd check-config exits 0 for a good file and 1 with the reason for a bad one', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, `node: { id: 3 }\ncluster: { keyFile: ${key(0o600)} }\nendpoints: [{ address: 10.0.0.1, port: 1701 }]\n`);
    const ok = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'check-config', good], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /good\. node 3/);
    const badFile = join(dir, 'bad2.yaml');
    writeFileSync(badFile, 'node: { id: 0 }\n');
    const bad = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'check-config', badFile], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /node\.id: must be >= 1/);
  });
});
