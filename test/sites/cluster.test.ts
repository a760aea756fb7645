// The site directory on a Redis Cluster of three masters (redis-server
// --cluster-enabled, made with redis-cli --cluster create): every script
// touches one key, so claims, moves and reads work across the shards; key
// tracking is on at every master, so changes on any shard reach the other
// sites; a master killed and restarted empty takes the directory down and
// back up, and the write-back restores what it lost.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, formatClientKey, parseClientKey } from '../../src/codec/client-key';
import type { Entry } from '../../src/codec/messages';
import type { RedisSiteDirectory } from '../../src/sites/redis-site-directory';
import type { SiteChange } from '../../src/sites/site-directory';
import { RedisClusterServers, redisUnavailable } from '../helpers/redis-server';
import { requireOrSkip } from '../helpers/require';
import { clientOf, entry, NodeTable, startSite, until, waitState } from '../helpers/sites';

describe('site directory on a Redis Cluster of three masters', function () {
  this.timeout(120_000);
  let dir = '';
  let cluster: RedisClusterServers | undefined;
  const sites: RedisSiteDirectory[] = [];
  const node = async (site: string, nodeId: number, o: { holds?: (k: Buffer) => boolean; budgetMs?: number } = {}) => {
    const d = await startSite({ site, nodeId, nodes: cluster!.nodes.slice(0, 1), mode: 'cluster', retry: { minMs: 50, maxMs: 300 }, ...o }, 30_000);
    sites.push(d);
    return d;
  };

  before(async function () {
    const why = redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-cluster-'));
    cluster = await RedisClusterServers.start({ dir });
  });

  afterEach(async () => {
    for (const s of sites.splice(0)) await s.close();
    for (const s of cluster?.servers ?? []) s.cli('FLUSHALL');
  });

  after(async () => {
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('first writer wins across the shards, under concurrent claims from four nodes of two sites', async () => {
    const nodes = await Promise.all(['east', 'east', 'west', 'west'].map((s, i) => node(s, i + 1, { budgetMs: 30_000 })));
    const eps = ['lns-a', 'lns-b', 'lns-c'] as const;
    const clients = Array.from({ length: 600 }, (_, i) => clientOf(i, 'shard'));
    const outcomes = await Promise.all(nodes.map((n, j) => n.claim(clients.map((c, i) => entry(c, eps[(i + j) % 3], 1, j + 1)))));
    const winners: Entry[] = [];
    clients.forEach((c, i) => {
      const won = outcomes.map((o) => o[i]).filter((o) => o.outcome === 'won');
      assert.equal(won.length, 1, c);
      const w = won[0].outcome === 'won' ? won[0].entry : undefined;
      winners.push(w!);
      for (const o of outcomes.map((x) => x[i])) {
        if (o.outcome === 'lost') assert.deepEqual(o.winner.endpoint, w!.endpoint);
        else assert.equal(o.outcome, 'won');
      }
    });
    // the keys are spread over every master
    const perMaster = cluster!.servers.map((s) => Number(s.cli('DBSIZE').trim()));
    console.log(`      keys per master: ${perMaster.join(', ')}`);
    assert.ok(perMaster.every((n) => n > 100), `keys per master ${perMaster}`);
    assert.equal(perMaster.reduce((a, b) => a + b, 0), clients.length);
    const reader = await node('north', 9, { budgetMs: 30_000 });
    const read = await reader.lookup(clients.map((c) => parseClientKey(c)));
    read.forEach((r, i) => assert.deepEqual(r.outcome === 'found' && r.record.kind === 'entry' && r.record.entry.endpoint, winners[i].endpoint));
  });

  it('moves reach the other site from every shard', async () => {
    const clients = Array.from({ length: 30 }, (_, i) => clientOf(i, 'move'));
    const held = new Set(clients.map((c) => clientKeyBytes(parseClientKey(c)).toString('latin1')));
    const a = await node('east', 1, { holds: (k) => held.has(k.toString('latin1')) });
    const b = await node('west', 2);
    const changes: SiteChange[] = [];
    a.onChange((c) => changes.push(c));
    await a.claim(clients.map((c) => entry(c, 'lns-a', 1, 1)));
    for (const c of clients) assert.deepEqual(await b.publish(entry(c, 'lns-b', 2, 2)), { outcome: 'stored' });
    // every move reaches a (the same record may be told twice when a's own write and b's move
    // are read back in either order; the version rule makes that harmless)
    const last = new Map<string, SiteChange>();
    await until(
      () => {
        for (const ch of changes) last.set(formatClientKey(ch.clientKey), ch);
        return last.size === clients.length;
      },
      10_000,
      'every move to reach the other site',
    );
    for (const ch of last.values()) assert.deepEqual(ch.record?.kind === 'entry' && [ch.record.entry.endpoint.name, ch.record.site], ['lns-b', 'west']);
    assert.ok(changes.length <= 2 * clients.length);
  });

  it('a master killed and restarted empty: down, back up, and the write-back restores its keys', async () => {
    let table: NodeTable | undefined;
    const a = await node('east', 1, { holds: NodeTable.holds(() => table) });
    table = new NodeTable(a);
    const clients = Array.from({ length: 90 }, (_, i) => clientOf(i, 'restart'));
    for (const o of await a.claim(clients.map((c) => entry(c, 'lns-c', 1, 1)))) assert.equal(table.claimed(o, 'east'), 'lns-c');
    const victim = cluster!.servers[1];
    const lost = Number(victim.cli('DBSIZE').trim());
    assert.ok(lost > 0);
    await victim.kill();
    await waitState(a, 'down', 20_000);
    // while it is down every claim is site-local and does not wait
    const [o] = await a.claim([entry(clientOf(1000, 'restart'), 'lns-a', 1, 1)]);
    assert.equal(o.outcome, 'site-local');
    await victim.launch();
    await cluster!.waitHealthy();
    await waitState(a, 'up', 30_000);
    await until(() => table!.reconciles.length > 0, 20_000, 'the write-back');
    assert.equal(table.reconciles[0].written, lost, 'the write-back wrote exactly what the restart lost');
    const keys = cluster!.servers.reduce((n, s) => n + Number(s.cli('DBSIZE').trim()), 0);
    assert.equal(keys, clients.length + 1, 'every client is in the cluster again');
  });
});
