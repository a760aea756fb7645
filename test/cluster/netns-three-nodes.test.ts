// Three nodes in three network namespaces, running the real `affinityd run`
// with configuration and key files, endpoints in a namespace of their own,
// clients in another. Bundles whose links arrive at different nodes land on
// one endpoint; still so with 10% of cluster datagrams dropped at random on
// every node; and two first calls of one client at two nodes at the same
// moment reach the same endpoint.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addonOrSkip } from '../helpers/addon';
import { Lan, netnsUnavailable } from '../helpers/netns';
import { started, tsx } from '../helpers/netns-cluster';
import { haveCommand, requireOrSkip } from '../helpers/require';


type Bundle = { key: string; landed: string[] };

describe('three nodes in network namespaces (affinityd run)', function () {
  this.timeout(180_000);
  let lan: Lan | undefined;
  let dir = '';
  const children: ChildProcess[] = [];
  let fronts: string[] = [];

  before(async function () {
    addonOrSkip(this);
    const why = netnsUnavailable();
    requireOrSkip(this, !why, why ?? '');
    requireOrSkip(this, haveCommand('nft'), 'nftables (nft) is not installed: apt-get install nftables');
    lan = new Lan(5); // h0-h2 nodes, h3 endpoints, h4 clients
    dir = mkdtempSync(join(tmpdir(), 'affinityd-netns-'));
    const keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, `# test cluster key\n1 ${'5e'.repeat(32)} send\n`);
    chmodSync(keyFile, 0o600);
    const epHost = lan.hosts[3].ipv4;
    const eps = spawn(lan.exec(3)[0], [...lan.exec(3).slice(1), ...tsx('test/fixtures/endpoint-server.ts'), epHost, 'lns-a:1701', 'lns-b:1702', 'lns-c:1703'], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(eps);
    await started(eps, /^ready$/, 'endpoints');
    for (let i = 0; i < 3; i++) {
      const h = lan.hosts[i];
      const cfg = join(dir, `node${i + 1}.yaml`);
      writeFileSync(
        cfg,
        [
          `node: { id: ${i + 1} }`,
          `cluster: { group: 239.255.77.77, port: 7447, interface: ${h.ipv4}, keyFile: ${keyFile} }`,
          'query: { count: 4, intervalMs: 15, timeoutMs: 40 }',
          'endpoints:',
          `  - { name: lns-a, address: ${epHost}, port: 1701 }`,
          `  - { name: lns-b, address: ${epHost}, port: 1702 }`,
          `  - { name: lns-c, address: ${epHost}, port: 1703 }`,
          'frontends:',
          `  - { listen: { address: ${h.ipv4}, port: 1723 }, identity: preamble }`,
          'log: { level: info }',
        ].join('\n'),
      );
      // checked where it will run: check-config also checks the host's addresses (here, the namespace's)
      const check: { status: number | null; stderr: string } = spawnSync(lan.exec(i)[0], [...lan.exec(i).slice(1), ...tsx('src/cli/main.ts'), 'check-config', cfg], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stderr);
      const n = spawn(lan.exec(i)[0], [...lan.exec(i).slice(1), ...tsx('src/cli/main.ts'), 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(n);
      await started(n, /"msg":"node started"/, `node ${i + 1}`);
      fronts.push(`${h.ipv4}:1723`);
    }
  });

  after(() => {
    for (const c of children) c.kill('SIGKILL');
    lan?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function bundles(clients: number, links: number, prefix: string, gapMs: number, startGapMs: number): Bundle[] {
    const r = spawnSync(lan!.exec(4)[0], [...lan!.exec(4).slice(1), ...tsx('test/fixtures/bundle-client.ts'), JSON.stringify({ fronts, clients, links, prefix, gapMs, startGapMs })], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  const splits = (b: Bundle[]) => b.filter((x) => new Set(x.landed).size > 1);
  const failures = (b: Bundle[]) => b.flatMap((x) => x.landed).filter((l) => !/^lns-[abc]$/.test(l));

  it('keeps bundles whose links arrive at different nodes on one endpoint', () => {
    const b = bundles(60, 3, 'calm', 25, 5);
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
  });

  it('two first calls of one client at two nodes at the same moment reach the same endpoint', () => {
    const b = bundles(40, 2, 'race', 0, 5);
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
  });

  it('still keeps every bundle whole with 10% of cluster datagrams lost on every link', () => {
    for (let i = 0; i < 3; i++) {
      const ns = lan!.hosts[i].ns;
      for (const cmd of [
        ['add', 'table', 'inet', 'loss'],
        ['add', 'chain', 'inet', 'loss', 'in', '{ type filter hook input priority 0; }'],
        ['add', 'rule', 'inet', 'loss', 'in', 'udp', 'dport', '{ 7447, 1024-65535 }', 'numgen', 'random', 'mod', '100', '<', '10', 'counter', 'drop'],
      ]) {
        execFileSync('ip', ['netns', 'exec', ns, 'nft', ...cmd]);
      }
    }
    const b = bundles(100, 3, 'lossy', 20, 5);
    let dropped = 0;
    for (let i = 0; i < 3; i++) {
      const out = execFileSync('ip', ['netns', 'exec', lan!.hosts[i].ns, 'nft', 'list', 'table', 'inet', 'loss'], { encoding: 'utf8' });
      dropped += Number(/packets (\d+)/.exec(out)?.[1] ?? 0);
    }
    console.log(`      ${dropped} cluster datagrams dropped by nftables during the run`);
    assert.ok(dropped > 20, 'the loss rule dropped almost nothing: the test did not test loss');
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
  });
});
