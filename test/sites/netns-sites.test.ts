// Two sites in network namespaces (docs/sites.md, "Testing across sites"):
// two sites of two `affinityd run` nodes each, each site its own multicast
// domain, joined by a router to the endpoints, the clients and a real
// redis-server (ACL user, password file) in a namespace of its own. Shown
// here: the cluster protocol stays within a site (peers and UPDATEs), Redis
// is reachable from every node of both sites with the node's own `sites:`
// configuration, a bundle whose links reach both sites at once lands on one
// endpoint under round-robin (Redis holds it), and with Redis killed every
// call still connects; restarted empty, Redis is refilled from the nodes'
// tables and both sites end up on one endpoint per client.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { request } from '../../src/control/client';
import type { PeerView } from '../../src/control/protocol';
import { addonOrSkip } from '../helpers/addon';
import { netnsUnavailable } from '../helpers/netns';
import { decodeRecord } from '../../src/sites/site-record';
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
      // local state decides: without the site layer in the router, links at both sites at once would split
      'selection: { policy: round-robin }',
      'sites:',
      '  enabled: true',
      `  site: site-${net!.siteOf(i)}`,
      `  redis: { nodes: [{ host: ${REDIS_ADDRESS}, port: 6379 }], username: affinityd, passwordFile: ${passwordFile} }`,
      // a loaded CI machine can take longer than the default 100 ms to answer; a claim
      // past its budget is decided site-locally (documented), which this test tells apart
      '  budgetMs: 1000',
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

  /** Redis's endpoint for each client (undefined: no record), read with redis-cli in Redis's namespace (not the code under test). */
  const inRedis = async (keys: string[]): Promise<(string | undefined)[]> =>
    keys.map((k) => {
      const v = redis!.cliBuffer('--raw', 'GET', `affinityd:${k}`);
      if (v.length <= 1) return undefined; // "\n": nil
      const r = decodeRecord(v.subarray(0, v.length - 1));
      return r.kind === 'entry' ? r.entry.endpoint.name : undefined;
    });
  /** How many of these clients Redis holds a record for (one script, GETs only: the documented ACL). */
  const keysInRedis = (keys: string[]): number =>
    Number(redis!.cli('--raw', 'EVAL', "local n = 0 for _, k in ipairs(KEYS) do if redis.call('GET', k) then n = n + 1 end end return n", String(keys.length), ...keys.map((k) => `affinityd:${k}`)).trim());

  it('a bundle whose links reach both sites at the same moment lands on one endpoint (round-robin), and Redis holds it', async () => {
    const siteLocal = async () => (await Promise.all([0, 1, 2, 3].map(async (i) => ((await request(cluster!.control(i), { cmd: 'show-stats' })) as { sites: { siteLocal: Record<string, number> } }).sites.siteLocal))).reduce((a, s) => a + s.down + s.timeout + s.error, 0);
    const localBefore = await siteLocal();
    const b = cluster!.bundles({ clients: 200, links: 4, prefix: 'both', gapMs: 0, startGapMs: 2, fronts: [0, 1, 2, 3].map((i) => cluster!.front(i)) });
    assert.deepEqual(failures(b), []);
    // every claim answered by Redis within its budget: no split at all; a claim past its
    // budget is a site-local decision (docs/sites.md), and only such a client may split
    const local = (await siteLocal()) - localBefore;
    if (local === 0) assert.deepEqual(splits(b), [], 'no bundle split across the sites');
    else {
      console.log(`      ${local} claims past their budget on this loaded machine (site-local); ${splits(b).length} of ${b.length} bundles split`);
      assert.ok(splits(b).length <= local, `${splits(b).length} splits, more than the ${local} site-local decisions`);
    }
    const whole = b.filter((x) => new Set(x.landed).size === 1);
    assert.deepEqual(await inRedis(whole.map((x) => x.key)), whole.map((x) => x.landed[0]), 'Redis holds every client\'s endpoint');
    // a site-local decision is written back and its conflict resolved: the tables converge
    let disagree = (await cluster!.disagreement()).endpoints;
    for (let i = 0; i < 100 && disagree.length; i++) await new Promise((r) => setTimeout(r, 100)), (disagree = (await cluster!.disagreement()).endpoints);
    assert.deepEqual(disagree, [], 'every node of both sites holds the same endpoint');
    // each client was claimed in Redis by a node of each site before that site agreed on it
    const st = await Promise.all([0, 1, 2, 3].map(async (i) => (await request(cluster!.control(i), { cmd: 'show-stats' })) as { sites: { state: string }; router: { siteConfirmed: number } }));
    assert.deepEqual(st.map((x) => x.sites.state), ['up', 'up', 'up', 'up']);
    for (const site of [0, 1]) {
      const n = net!.nodesOf(site).reduce((a, i) => a + st[i].router.siteConfirmed, 0);
      assert.ok(n >= b.length, `site ${site}: ${n} claims in Redis for ${b.length} clients`);
    }
  });

  it('Redis killed during calls at both sites: every call connects; restarted empty, it is refilled and both sites agree', async () => {
    await redis!.kill();
    const b = cluster!.bundles({ clients: 100, links: 2, prefix: 'outage', gapMs: 0, startGapMs: 2, fronts: [cluster!.front(0), cluster!.front(2)] });
    assert.deepEqual(failures(b), [], 'no call waited for Redis or failed');
    // links at two sites while neither reaches Redis may split (docs/sites.md, "What can still split")
    console.log(`      during the outage: ${splits(b).length} of ${b.length} two-site bundles split (each site decided alone)`);
    const ready = (await request(cluster!.control(0), { cmd: 'show-stats' })) as { sites: { state: string } };
    assert.equal(ready.sites.state, 'down');
    await redis!.launch(); // empty: no persistence
    // the nodes reconnect (sites.retry), write their tables back, and the conflicts resolve by the version rule
    const keys = b.map((x) => x.key);
    let back = 0;
    let disagree: string[] = keys;
    for (let i = 0; i < 300 && (back < keys.length || disagree.length > 0); i++) {
      await new Promise((r) => setTimeout(r, 200));
      back = keysInRedis(keys);
      disagree = (await cluster!.disagreement()).endpoints;
    }
    assert.equal(back, keys.length, 'every client is back in Redis');
    assert.deepEqual(disagree, [], 'every node of both sites holds one endpoint per client');
    const held = await inRedis(keys);
    const t = await cluster!.entries(0);
    assert.deepEqual(keys.map((k) => t.get(k)?.endpointName ?? undefined), held, 'and it is the one Redis holds');
  });
});
