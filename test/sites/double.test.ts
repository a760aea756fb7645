// The memory double of the site directory (for the router's tests) against
// the real thing: the same scenarios, the same outcomes, on a real
// redis-server and on MemorySiteStore. A site cut off from Redis is a TCP
// proxy cut for the real one and setDown() for the double.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MemorySiteDirectory, MemorySiteStore } from '../../src/sites/memory-site-directory';
import type { ClaimOutcome, SiteConflict, SiteDirectory, StoreOutcome } from '../../src/sites/site-directory';
import type { SiteRecord } from '../../src/sites/site-record';
import { RedisServer, redisUnavailable } from '../helpers/redis-server';
import { requireOrSkip } from '../helpers/require';
import { clientOf, entry, marker, startSite, until, waitState } from '../helpers/sites';
import { TcpProxy } from '../helpers/tcp-proxy';

interface World {
  site(name: string, nodeId: number): Promise<SiteDirectory>;
  cut(d: SiteDirectory): Promise<void>;
  heal(d: SiteDirectory): Promise<void>;
  close(): Promise<void>;
}

const rec = (r: SiteRecord | undefined) => (r ? (r.kind === 'entry' ? `${r.entry.endpoint.name} v${r.entry.version}/${r.entry.originNode}@${r.site}` : `withdrawn v${r.withdraw.version}/${r.withdraw.originNode}@${r.site}`) : 'none');
const claimed = (o: ClaimOutcome) =>
  o.outcome === 'won' ? `won ${o.entry.endpoint.name} v${o.entry.version}` : o.outcome === 'lost' ? `lost to ${o.winner.endpoint.name} v${o.winner.version}/${o.winner.originNode}@${o.site}` : `site-local ${o.reason}`;
const stored = (o: StoreOutcome) => (o.outcome === 'superseded' ? `superseded by ${rec(o.current)}` : o.outcome === 'site-local' ? `site-local ${o.reason}` : o.outcome);
const conflict = (c: SiteConflict) => `${c.why} ${c.winner}: ours ${rec(c.ours)}, theirs ${rec(c.theirs)}, resolved ${rec(c.resolved)}`;

async function scenario(w: World): Promise<string[]> {
  const log: string[] = [];
  const a = await w.site('north', 9);
  const b = await w.site('south', 2);
  const conflicts: string[] = [];
  a.onConflict((c) => conflicts.push(`north ${conflict(c)}`));
  b.onConflict((c) => conflicts.push(`south ${conflict(c)}`));
  const c1 = clientOf(1, 'double');
  log.push(claimed((await a.claim([entry(c1, 'lns-a', 1, 9)]))[0]));
  log.push(claimed((await b.claim([entry(c1, 'lns-b', 1, 2)]))[0]));
  log.push(stored(await b.publish(entry(c1, 'lns-b', 2, 2))));
  log.push(stored(await a.publish(entry(c1, 'lns-c', 1, 9))));
  log.push(stored(await b.withdraw(marker(c1, 3, 2))));
  const heard = b.counters.changes.invalidations;
  log.push(claimed((await a.claim([entry(c1, 'lns-a', 1, 9)]))[0]));
  // b's cache may hold its own marker until a's write is broadcast to it (one push): wait for it
  await until(() => b.counters.changes.invalidations > heard, 5000, "a's claim to reach b");
  const [l] = await b.lookup([entry(c1, 'lns-a').clientKey]);
  log.push(l.outcome === 'found' ? `found ${rec({ ...l.record })}` : l.outcome);
  // north cut off: it decides alone; south decides the shared client first
  await w.cut(a);
  const shared = clientOf(2, 'double');
  const alone = clientOf(3, 'double');
  log.push(claimed((await a.claim([entry(shared, 'lns-a', 1, 9)]))[0]));
  log.push(claimed((await a.claim([entry(alone, 'lns-a', 1, 9)]))[0]));
  log.push(claimed((await b.claim([entry(shared, 'lns-b', 1, 2)]))[0]));
  const heardBeforeHeal = b.counters.changes.invalidations;
  await w.heal(a);
  await until(() => a.journalSize === 0, 10_000, 'the journal to be written back');
  // north's two writes (the client only it saw, the adoption) reach south's cache before it looks
  await until(() => b.counters.changes.invalidations >= heardBeforeHeal + 2, 5000, "north's write-back to reach south");
  log.push(...conflicts);
  const [s, al] = await b.lookup([entry(shared, 'lns-a').clientKey, entry(alone, 'lns-a').clientKey]);
  log.push(s.outcome === 'found' ? rec(s.record) : s.outcome, al.outcome === 'found' ? rec(al.record) : al.outcome);
  log.push(`north: ${a.counters.claims.won} won, ${a.counters.claims.lost} lost, ${a.counters.claims.siteLocal} site-local, conflicts ${a.counters.conflicts.theirs}/${a.counters.conflicts.ours}`);
  return log;
}

describe('the memory double of the site directory behaves as the real one', function () {
  this.timeout(60_000);
  let dir = '';

  before(function () {
    const why = redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-double-'));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('the same outcomes for claims, moves, withdraws, a cut-off site and its write-back', async () => {
    const redis = await RedisServer.start({ dir });
    const proxies = new Map<SiteDirectory, TcpProxy>();
    const real: World = {
      async site(name, nodeId) {
        const p = await TcpProxy.start({ host: '127.0.0.1', port: redis.port });
        const d = await startSite({ site: name, nodeId, nodes: [{ host: '127.0.0.1', port: p.port }], retry: { minMs: 50, maxMs: 200 } });
        proxies.set(d, p);
        return d;
      },
      async cut(d) {
        await proxies.get(d)!.cut();
        await waitState(d as never, 'down');
      },
      async heal(d) {
        await proxies.get(d)!.heal();
        await waitState(d as never, 'up');
      },
      async close() {
        for (const [d, p] of proxies) {
          await d.close();
          await p.close();
        }
        await redis.kill();
      },
    };
    const store = new MemorySiteStore();
    const memory: World = {
      async site(name, nodeId) {
        const d = new MemorySiteDirectory(store, { site: name, nodeId, entryTtlSeconds: 600, withdrawTtlSeconds: 600 });
        d.start();
        await until(() => d.state.state === 'up', 1000, 'up');
        return d;
      },
      async cut(d) {
        (d as MemorySiteDirectory).setDown();
      },
      async heal(d) {
        (d as MemorySiteDirectory).setUp();
        await until(() => d.state.state === 'up', 1000, 'up');
      },
      async close() {},
    };
    let fromRedis: string[];
    try {
      fromRedis = await scenario(real);
    } finally {
      await real.close();
    }
    const fromMemory = await scenario(memory);
    assert.deepEqual(fromMemory, fromRedis);
    // and the scenario says what it should
    assert.deepEqual(fromRedis.slice(0, 7), [
      'won lns-a v1',
      'lost to lns-a v1/9@north',
      'stored',
      'superseded by lns-b v2/2@south',
      'stored',
      'won lns-a v4',
      'found lns-a v4/9@north',
    ]);
    assert.ok(fromRedis.includes('north reconcile theirs: ours lns-a v1/9@north, theirs lns-b v1/2@south, resolved lns-b v2/9@north'), fromRedis.join('\n'));
  });
});
