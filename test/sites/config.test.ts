// The `sites:` section: defaults, every rule with the setting named, the
// example configuration, and `affinityd check-config` reading the Redis
// password file (mode rule) and describing the site.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, resolveConfig, RESTART_ONLY_SETTINGS } from '../../src/daemon/config';
import { siteDirectoryOptions } from '../../src/sites/create-site-directory';

const root = join(__dirname, '..', '..');
const problems = (input: unknown): string[] => {
  try {
    resolveConfig({ node: { id: 1 }, ...(input as object) });
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
};

describe('sites configuration', () => {
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-config-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is off by default, with every setting defaulted', () => {
    const s = resolveConfig({ node: { id: 1 } }).sites;
    assert.equal(s.enabled, false);
    assert.equal(s.budgetMs, 100);
    assert.equal(s.failuresBeforeDown, 3);
    assert.deepEqual(s.retry, { minMs: 100, maxMs: 5000 });
    assert.deepEqual(s.redis.nodes, [{ host: '127.0.0.1', port: 6379 }]);
    assert.equal(s.redis.mode, 'standalone');
    assert.equal(s.redis.keyPrefix, 'affinityd:');
    assert.equal(s.redis.tls.enabled, false);
  });

  it('names the setting and the reason for every problem', () => {
    assert.deepEqual(problems({ sites: { enabled: true } }), ["sites.site: required when sites.enabled (this site's name)"]);
    assert.deepEqual(problems({ sites: { enabled: true, site: 'paris 2' } }), ['sites.site: "paris 2" must be 1 to 32 characters of A-Z a-z 0-9 . _ -']);
    assert.deepEqual(problems({ sites: { enabled: true, site: 'paris', redis: { nodes: [{ host: 'a' }, { host: 'b' }] } } }), [
      'sites.redis.nodes: standalone mode takes one node (use mode: cluster for seed nodes)',
    ]);
    assert.deepEqual(problems({ sites: { enabled: true, site: 'paris', redis: { nodes: [] } } }), ['sites.redis.nodes: at least one Redis node']);
    assert.deepEqual(problems({ sites: { redis: { keyPrefix: 'aff{1}:' } } }), ['sites.redis.keyPrefix: "aff{1}:" must be 1 to 64 printable ASCII characters without spaces, "{" or "}"']);
    assert.deepEqual(problems({ sites: { retry: { minMs: 10_000, maxMs: 100 } } }), ['sites.retry.minMs: must not exceed sites.retry.maxMs']);
    assert.deepEqual(problems({ sites: { redis: { tls: { enabled: true, certFile: '/x' } } } }), ['sites.redis.tls: certFile and keyFile go together']);
    assert.deepEqual(problems({ sites: { redis: { tls: { caFile: '/x' } } } }), ['sites.redis.tls: files or serverName set but tls.enabled is false']);
    assert.deepEqual(problems({ sites: { budgetMs: 0, redis: { mode: 'sentinel', colour: 'red', nodes: [{ port: 1 }] } } }), [
      'sites.budgetMs: must be >= 1',
      'sites.redis.colour: unknown setting',
      'sites.redis.mode: must be one of standalone, cluster',
      'sites.redis.nodes.0.host: required',
    ]);
    assert.deepEqual(problems({ sites: { enabled: true, site: 'paris', redis: { mode: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2' }] } } }), []);
  });

  it('the example configuration shows every setting with its default', () => {
    const text = readFileSync(join(root, 'config', 'affinityd.example.yaml'), 'utf8');
    const block = text.slice(text.indexOf('\nsites:'));
    for (const k of ['enabled', 'site', 'budgetMs', 'failuresBeforeDown', 'heartbeatMs', 'retry', 'cacheCapacity', 'journalCapacity', 'mode', 'nodes', 'username', 'passwordFile', 'keyPrefix', 'connectTimeoutMs', 'tls', 'caFile', 'certFile', 'keyFile', 'serverName']) {
      assert.match(block, new RegExp(`\\b${k}:`), k);
    }
  });

  it('needs a restart to change (a reload reports it and keeps the running value)', () => {
    assert.ok(RESTART_ONLY_SETTINGS.includes('sites'));
  });

  it('turns into site directory options', () => {
    const c = resolveConfig({ node: { id: 1 }, sites: { enabled: true, site: 'paris', budgetMs: 40, redis: { mode: 'cluster', nodes: [{ host: '10.0.9.1', port: 7000 }], username: 'affinityd' } } });
    const o = siteDirectoryOptions(c.sites, { nodeId: 7, entryTtlSeconds: 3600, withdrawTtlSeconds: 86400 }, {});
    assert.deepEqual([o.site, o.nodeId, o.budgetMs, o.connection.mode, o.connection.username, o.connection.clientName], ['paris', 7, 40, 'cluster', 'affinityd', 'affinityd-paris-7']);
  });

  describe('affinityd check-config', () => {
    const run = (file: string) => spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'check-config', file], { encoding: 'utf8', cwd: root });
    const write = (name: string, text: string, mode = 0o600) => {
      const f = join(dir, name);
      writeFileSync(f, text);
      chmodSync(f, mode);
      return f;
    };
    const config = (passwordFile: string) =>
      write(
        `c${Math.random()}.yaml`,
        [
          'node: { id: 3 }',
          `cluster: { keyFile: ${write('cluster.key', `1 ${'ab'.repeat(32)} send\n`)} }`,
          'endpoints: [{ address: 198.51.100.1, port: 1701 }]',
          'sites:',
          '  enabled: true',
          '  site: paris',
          `  redis: { nodes: [{ host: 10.0.9.1, port: 6380 }], username: affinityd, passwordFile: ${passwordFile} }`,
        ].join('\n'),
        0o644,
      );

    it('reads the password file and says how the site reaches Redis', () => {
      const r = run(config(write('redis.pass', 'pw\n', 0o600)));
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^sites: site paris, Redis standalone at 10\.0\.9\.1:6380, as affinityd with the password from .*redis\.pass, plain TCP, keys affinityd:\*, budget 100 ms$/m);
    });

    it('refuses a password file that group or others can read', () => {
      const pw = write('redis-open.pass', 'pw\n', 0o644);
      const r = run(config(pw));
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`${pw}: the Redis password file is accessible to group or others \\(mode 644\\): chmod 600 it`));
    });
  });
});
