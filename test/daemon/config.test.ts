import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parse } from 'yaml';

import { CONFIG_SCHEMA, ConfigError, loadConfigFile, loadKeyFile, resolveConfig } from '../../src/daemon/config';
import { checkHost, explainStartError, type HostView } from '../../src/daemon/host-check';

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

  it('fills every setting but node.id with its embedded default', () => {
    const c = resolveConfig({ node: { id: 1 } });
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

  it('the example configuration lists every setting of the schema (commented-out ones count)', () => {
    // docs/configuration.md: the example "shows all of them"; a setting missing
    // from it is one an operator reading the file never learns about
    const text = readFileSync(join(root, 'config', 'affinityd.example.yaml'), 'utf8');
    const example: unknown = parse(text.replace(/^(\s*)# ?([A-Za-z]+:)/gm, '$1$2'));
    type Schema = { type?: string; properties?: Record<string, Schema>; items?: Schema };
    const missing: string[] = [];
    (function walk(s: Schema, v: unknown, path: string): void {
      if (s.properties) {
        for (const [k, sub] of Object.entries(s.properties)) {
          const p = path ? `${path}.${k}` : k;
          if (v === null || typeof v !== 'object' || !(k in v)) missing.push(p);
          else walk(sub, (v as Record<string, unknown>)[k], p);
        }
      } else if (s.items?.properties && Array.isArray(v) && v.length > 0) {
        walk(s.items, v[0], `${path}.0`);
      }
    })(CONFIG_SCHEMA as Schema, example, '');
    assert.deepEqual(missing, []);
  });

  it('names the setting and the reason for every problem', () => {
    assert.deepEqual(
      problems(() => resolveConfig({ node: { id: 1 }, cluster: { port: 0, colour: 'red' }, query: { count: 1000 }, selection: { policy: 'random' } } as never)),
      ['cluster.colour: unknown setting', 'cluster.port: must be >= 1', 'query.count: must be <= 100', 'selection.policy: must be one of rendezvous, least-connections, round-robin'],
    );
    assert.deepEqual(problems(() => resolveConfig({ node: { id: 1 }, endpoints: [{ port: 1 }] } as never)), ['endpoints.0.address: required']);
    assert.deepEqual(
      problems(() => resolveConfig({ node: { id: 1 }, cluster: { interface: 'eth0' }, endpoints: [{ address: '10.0.0.1', port: 1 }, { address: '10.0.0.1', port: 1 }] })),
      ['cluster.interface: an IPv4 group needs the interface\'s IPv4 address, got "eth0"', 'endpoints.1: 10.0.0.1:1 is listed twice'],
    );
    // the reply spin: 0 (off) and 10 to 1000; a window below 10 us would silently never spin
    assert.deepEqual(problems(() => resolveConfig({ node: { id: 1 }, cluster: { replySpinMicros: 5 } })), ['cluster.replySpinMicros: 5 is below the smallest window worth a spin (10 us): 0 turns the spin off, 10 to 1000 set its largest window']);
    assert.deepEqual(problems(() => resolveConfig({ node: { id: 1 }, cluster: { replySpinMicros: 1001 } })), ['cluster.replySpinMicros: must be <= 1000']);
    for (const ok of [0, 10, 1000]) assert.equal(resolveConfig({ node: { id: 1 }, cluster: { replySpinMicros: ok } }).cluster.replySpinMicros, ok);
  });

  it('reports YAML syntax errors and what a runnable configuration lacks', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'node: { id: 1\n');
    assert.match(problems(() => loadConfigFile(bad))[0], /flow map|Missing|expected/i);
    const noEp = join(dir, 'noep.yaml');
    writeFileSync(noEp, 'node: { id: 2 }\n');
    assert.deepEqual(problems(() => loadConfigFile(noEp)), ['endpoints: at least one endpoint is needed to run a node', 'cluster.keyFile: required (a node never runs unauthenticated)']);
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

describe('configuration: what check-config must refuse (issue 13, items 3 and 11a)', () => {
  let dir: string;
  let keyFile: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'affinityd-config13-'));
    keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, `1 ${'ab'.repeat(32)} send\n`);
    chmodSync(keyFile, 0o600);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const checkConfig = (yaml: string, ...args: string[]) => {
    const f = join(dir, `c${Math.random()}.yaml`);
    writeFileSync(f, yaml.replace('KEY', keyFile));
    return spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'check-config', ...args, f], { encoding: 'utf8' });
  };
  const good = ['node: { id: 5 }', 'cluster: { group: 239.255.77.77, interface: 127.0.0.1, keyFile: KEY }', 'endpoints: [{ name: lns-1, address: 10.0.0.1, port: 1701 }, { name: lns-2, address: 10.0.0.2, port: 1701 }]', 'frontends: [{ name: calls, listen: { address: 127.0.0.1, port: 1723 } }]'];
  const withLine = (i: number, line: string) => good.map((l, j) => (j === i ? line : l)).join('\n');

  it('a good file on this host is good', () => {
    const r = checkConfig(good.join('\n'));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /good\. node 5/);
  });

  it('node.id has no default: a file without it is refused, naming the setting', () => {
    const r = checkConfig(good.slice(1).join('\n'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /node\.id: required.*no default/);
    const none = problems(() => resolveConfig({}));
    assert.equal(none.length, 1, none.join('; '));
    assert.match(none[0], /^node\.id: required/);
    assert.match(problems(() => resolveConfig({ node: {} }))[0], /^node\.id: required/);
  });

  it('refuses duplicate endpoint (and front-end) names: they would merge in the metrics', () => {
    const r = checkConfig(withLine(2, 'endpoints: [{ name: lns-1, address: 10.0.0.1, port: 1701 }, { name: lns-1, address: 10.0.0.2, port: 1701 }]'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /endpoints\.1\.name: "lns-1" is already the name of endpoints\.0/);
    const f = checkConfig(withLine(3, 'frontends: [{ name: calls, listen: { address: 127.0.0.1, port: 1723 } }, { name: calls, listen: { address: 127.0.0.1, port: 1724 } }]'));
    assert.equal(f.status, 1);
    assert.match(f.stderr, /frontends\.1\.name: "calls" is already the name of frontends\.0/);
  });

  it('refuses a handover shorter than the agreement time-out (0 turns it off)', () => {
    const base = { node: { id: 1 }, cluster: { group: '239.255.77.77', interface: '127.0.0.1' } };
    const p = problems(() => resolveConfig({ ...base, agreement: { timeoutMs: 3000, handoverMs: 2000 } }));
    assert.equal(p.length, 1, p.join('; '));
    assert.match(p[0], /^agreement\.handoverMs: 2000 is shorter than agreement\.timeoutMs \(3000\)/);
    assert.equal(resolveConfig({ ...base, agreement: { timeoutMs: 3000, handoverMs: 0 } }).agreement.handoverMs, 0);
    assert.equal(resolveConfig(base).agreement.handoverMs, 2000, 'the default');
  });

  it('refuses a group that is not multicast', () => {
    const r = checkConfig(withLine(1, 'cluster: { group: 10.1.2.3, interface: 127.0.0.1, keyFile: KEY }'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cluster\.group: 10\.1\.2\.3 is not a multicast address/);
    assert.match(problems(() => resolveConfig({ node: { id: 1 }, cluster: { group: '2001:db8::1', interface: 'eth0' } }))[0], /cluster\.group: 2001:db8::1 is not a multicast address/);
  });

  it('refuses front-end port 0 (and management port 0) in a file: no client could know the port', () => {
    const r = checkConfig([...good.slice(0, 3), 'frontends: [{ name: calls, listen: { address: 127.0.0.1, port: 0 } }]', 'management: { enabled: true, port: 0 }'].join('\n'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, /frontends\.0\.listen\.port: 0 would listen on a random port/);
    assert.match(r.stderr, /management\.port: 0/);
  });

  it('refuses addresses and interfaces this host does not have, naming each setting; --offline checks the file alone', () => {
    const here = [
      'node: { id: 5 }',
      'cluster: { group: 239.255.77.77, interface: 192.0.2.254, keyFile: KEY }',
      'endpoints: [{ name: lns-1, address: 10.0.0.1, port: 1701 }]',
      'frontends: [{ name: calls, listen: { address: 198.51.100.254, port: 1723 } }]',
      'management: { enabled: true, address: 203.0.113.254 }',
    ].join('\n');
    const r = checkConfig(here);
    assert.equal(r.status, 1, r.stdout);
    assert.match(r.stderr, /cluster\.interface: 192\.0\.2\.254 is not an address of this host/);
    assert.match(r.stderr, /frontends\.0\.listen\.address: 198\.51\.100\.254 is not an address of this host/);
    assert.match(r.stderr, /management\.address: 203\.0\.113\.254 is not an address of this host/);
    const offline = checkConfig(here, '--offline');
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(offline.stdout, /good \(file only, not checked against this host\)/);
    const v6 = checkConfig(withLine(1, 'cluster: { group: "ff15::a:1", interface: nosuchif0, keyFile: KEY }'));
    assert.equal(v6.status, 1);
    assert.match(v6.stderr, /cluster\.interface: an IPv6 group needs an interface name of this host; there is no "nosuchif0"/);
  });
});

describe('configuration against a host (pure, a host view given)', () => {
  const host = (nonlocal = false): HostView => ({
    interfaces: { lo: [{ address: '127.0.0.1', family: 'IPv4' }, { address: '::1', family: 'IPv6' }], eth1: [{ address: '10.0.0.11', family: 'IPv4' }, { address: 'fe80::1', family: 'IPv6' }] },
    nonlocalBind: { ipv4: nonlocal, ipv6: nonlocal },
  });
  const cfg = (o: object) => resolveConfig({ node: { id: 1 }, cluster: { interface: '10.0.0.11' }, ...o });

  it('accepts the host\'s addresses and the unspecified ones', () => {
    assert.deepEqual(checkHost(cfg({ frontends: [{ listen: { address: '0.0.0.0', port: 1723 } }, { listen: { address: '::', port: 1723 } }, { listen: { address: '10.0.0.11', port: 1724 } }] }), host()), { problems: [], warnings: [] });
  });

  it('a VIP not here yet is a warning, not a refusal, when the kernel allows non-local binds (keepalived)', () => {
    const c = cfg({ frontends: [{ listen: { address: '10.0.0.100', port: 1723 } }] });
    assert.match(checkHost(c, host(false)).problems[0], /^frontends\.0\.listen\.address: 10\.0\.0\.100 is not an address of this host/);
    const r = checkHost(c, host(true));
    assert.deepEqual(r.problems, []);
    assert.match(r.warnings[0], /ip_nonlocal_bind is 1/);
    // the cluster interface must be here whatever the kernel allows: the group is joined on it
    assert.match(checkHost(cfg({ cluster: { interface: '10.0.0.100' } }), host(true)).problems[0], /^cluster\.interface:/);
  });

  it('an IPv6 group needs an interface name of the host', () => {
    assert.deepEqual(checkHost(cfg({ cluster: { group: 'ff15::a:1', interface: 'eth1' } }), host()).problems, []);
    assert.match(checkHost(cfg({ cluster: { group: 'ff15::a:1', interface: 'eth9' } }), host()).problems[0], /there is no "eth9"/);
  });

  it('a start-up error from the kernel names the setting that caused it', () => {
    const c = cfg({ frontends: [{ name: 'calls', listen: { address: '10.0.0.11', port: 1723 } }], management: { enabled: true, address: '127.0.0.1', port: 9147 } });
    const inUse = Object.assign(new Error('listen EADDRINUSE: address already in use 10.0.0.11:1723'), { code: 'EADDRINUSE', address: '10.0.0.11', port: 1723 });
    assert.equal(explainStartError(inUse, c), 'frontends.0.listen (calls): listen EADDRINUSE: address already in use 10.0.0.11:1723 (another process is listening there)');
    const mgmt = Object.assign(new Error('listen EACCES: permission denied 127.0.0.1:9147'), { code: 'EACCES', address: '127.0.0.1', port: 9147 });
    assert.match(explainStartError(mgmt, c), /^management\.address\/port: /);
    // the addon names the address in its message
    assert.match(explainStartError(new Error('bind 10.0.0.11:0: EADDRNOTAVAIL'), c), /^cluster\.interface: bind 10\.0\.0\.11:0: EADDRNOTAVAIL \(the address is not on this host\)$/);
    // the unicast port in use (a second node on this host given the first one's cluster.unicastPort): that setting, not the interface
    const unicast = cfg({ cluster: { interface: '10.0.0.11', unicastPort: 17500 } });
    const taken = new Error('EADDRINUSE: Address already in use, bind 10.0.0.11:17500');
    assert.match(explainStartError(taken, unicast), /^cluster\.unicastPort: EADDRINUSE: Address already in use, bind 10\.0\.0\.11:17500 /);
    assert.match(explainStartError(new Error('EADDRINUSE: Address already in use, bind 10.0.0.11:17501'), unicast), /^cluster\.interface: /);
  });
});
