// The two-site harness for the end-to-end runs (docs/sites.md, "Testing
// across sites"): two sites of two `affinityd run` nodes each in network
// namespaces, each site its own multicast domain, joined by a router to
// the endpoints, the clients and a real redis-server (ACL user, password
// file) in a namespace of its own. Shown here: the cluster protocol stays
// within a site (peers and UPDATEs), Redis is reachable from every node of
// both sites with the node's own `sites:` configuration, and a client
// claimed from both sites gets one decision.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { request } from '../../src/control/client';
import type { PeerView } from '../../src/control/protocol';
import { addonOrSkip } from '../helpers/addon';
import { netnsUnavailable } from '../helpers/netns';
import { failures, NetnsCluster, splits, tsx } from '../helpers/netns-cluster';
import { REDIS_ADDRESS, SitesNet } from '../helpers/netns-sites';
import { RedisServer, redisUnavailable } from '../helpers/redis-server';
import { requireOrSkip } from '../helpers/require';
import { SITE_ACL } from '../helpers/sites';

describe('two sites in network namespaces, Redis between them (harness)', function () {
  this.timeout(240_000);
  let net: SitesNet | undefined;
  let redis: RedisServer | undefined;
  let cluster: NetnsCluster | undefined;
  let dir = '';
  let passwordFile = '';
  const sitesYaml = (i: number) =>
    [
      'antiEntropy: { intervalMs: 500 }',
      // local state decides: without the site layer in the router, links at both sites at once can split
      'selection: { policy: round-robin }',
      'sites:',
      '  enabled: true',
      `  site: site-${net!.siteOf(i)}`,
      `  redis: { nodes: [{ host: ${REDIS_ADDRESS}, port: 6379 }], username: affinityd, passwordFile: ${passwordFile} }`,
    ].join('\n');
  const sitesSection = (site: number) => ({ enabled: true, site: `site-${site}`, redis: { nodes: [{ host: REDIS_ADDRESS, port: 6379 }], username: 'affinityd', passwordFile } });

  before(async function () {
    addonOrSkip(this);
    const why = netnsUnavailable() ?? redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-netns-sites-'));
    passwordFile = join(dir, 'redis.pass');
    writeFileSync(passwordFile, 'netns-sites-secret\n');
    chmodSync(passwordFile, 0o600);
    net = new SitesNet(2, 2);
    redis = await RedisServer.start({
      dir: join(dir, 'redis'),
      host: REDIS_ADDRESS,
      port: 6379,
      prefix: net.execRedis(),
      args: ['--user', 'affinityd', 'on', '>netns-sites-secret', ...SITE_ACL.split(' '), '--user', 'default', 'off'],
      auth: { user: 'affinityd', password: 'netns-sites-secret' },
    });
    cluster = new NetnsCluster(net, dir, 4, sitesYaml);
    for (let i = 0; i < 4; i++) {
      const file: string = cluster.configFile(i);
      // in the node's own namespace: check-config also checks the host has the addresses the file names
      const cmd = [...net.exec(i), ...tsx('src/cli/main.ts'), 'check-config', file];
      const check: SpawnSyncReturns<string> = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stderr);
      assert.match(check.stdout, new RegExp(`sites: site site-${net.siteOf(i)}, Redis standalone at ${REDIS_ADDRESS}:6379, as affinityd`));
    }
    await cluster.startEndpoints();
    for (let i = 0; i < 4; i++) await cluster.start(i);
  });

  after(async () => {
    cluster?.stopAll();
    await redis?.kill();
    net?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the cluster protocol within each site', async () => {
    // digests every 500 ms: within 3 s every node has heard its site mate, and only it
    await new Promise((r) => setTimeout(r, 3000));
    for (let i = 0; i < 4; i++) {
      const peers = (await request(cluster!.control(i), { cmd: 'show-peers' })) as PeerView[];
      const mate = net!.nodesOf(net!.siteOf(i)).find((j) => j !== i)! + 1;
      assert.deepEqual(peers.map((p) => p.nodeId).filter((n) => n !== 0), [mate], `node ${i + 1} hears ${JSON.stringify(peers.map((p) => p.nodeId))}`);
    }
    // calls at site 0 only: site 0's nodes store the entries, site 1's never hear of them
    const b = cluster!.bundles({ clients: 20, links: 2, prefix: 'site0', gapMs: 20, startGapMs: 5, fronts: [cluster!.front(0), cluster!.front(1)] });
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
    const sizes = await Promise.all([0, 1, 2, 3].map(async (i) => (await cluster!.entries(i)).size));
    assert.deepEqual(sizes, [20, 20, 0, 0]);
  });

  it('reaches Redis from every node of both sites, and one client claimed at both gets one decision', () => {
    const claim = (host: number, clients: string[], endpoint: string) => {
      const r = spawnSync(net!.exec(host)[0], [...net!.exec(host).slice(1), ...tsx('test/fixtures/site-claim.ts'), JSON.stringify({ sites: sitesSection(net!.siteOf(host)), nodeId: host + 1, clients, endpoint: { name: endpoint, address: net!.hosts[4].ipv4, port: 1701 } })], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { state: { state: string }; outcomes: { client: string; outcome: string; endpoint: string; site: string }[] };
    };
    const own = [0, 1, 2, 3].map((h) => claim(h, [`2:10.9.9.${h + 1}/own-${h}`], `lns-${'abc'[h % 3]}`));
    for (const r of own) {
      assert.equal(r.state.state, 'up');
      assert.equal(r.outcomes[0].outcome, 'won');
    }
    const first = claim(0, ['2:10.9.9.100/both@sites'], 'lns-a');
    const second = claim(2, ['2:10.9.9.100/both@sites'], 'lns-b');
    assert.deepEqual(first.outcomes[0], { client: '2:10.9.9.100/both@sites', outcome: 'won', endpoint: 'lns-a', site: 'site-0' });
    assert.deepEqual(second.outcomes[0], { client: '2:10.9.9.100/both@sites', outcome: 'lost', endpoint: 'lns-a', site: 'site-0' });
    assert.match(redis!.cli('--raw', 'GET', 'affinityd:2:10.9.9.100/both@sites'), /site-0/);
  });

  it('reaches every front end of both sites from the clients (the site layer is not wired into the router yet)', () => {
    const b = cluster!.bundles({ clients: 40, links: 2, prefix: 'both', gapMs: 0, startGapMs: 5, fronts: [0, 1, 2, 3].map((i) => cluster!.front(i)) });
    assert.deepEqual(failures(b), []);
    // until the router asks Redis, a bundle whose links reach both sites at once may split: a baseline for the lead's run
    console.log(`      baseline without the site layer: ${splits(b).length} of ${b.length} two-link bundles split across the sites`);
  });
});
