// Directory maintenance (bulk sync, withdraw markers, digest repair,
// snapshots) on the memory doubles: the same code a node runs, over a
// MemoryDirectory and a MemoryCluster, with loss where it matters.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { DirectoryMaintenance, type MaintenanceOptions } from '../../src/directory/maintenance/maintenance';
import { MemoryDirectory } from '../../src/directory/memory-directory';
import { loadSnapshot, writeSnapshot } from '../../src/directory/snapshot';
import { MemoryCluster } from '../../src/transport/memory-cluster';
import { silentLogger } from '../../src/util/logger';

const L = { entrySeconds: 600, withdrawSeconds: 900, maxSeconds: 3600 };
const EP = [1, 2, 3].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 }));
const key = (i: number) => clientKeyBytes(parseClientKey(`5:${100000 + i}/user${i}`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(10);
  }
}

const options = (nodeId: number, over: Partial<MaintenanceOptions> = {}): MaintenanceOptions => ({
  nodeId,
  sync: { enabled: true, timeoutMs: 10_000, windowChunks: 8, retryMs: 40, retries: 4 },
  antiEntropy: { enabled: false, intervalMs: 100, buckets: 16 },
  ...over,
});

function member(c: MemoryCluster, nodeId: number, over: Partial<MaintenanceOptions> = {}) {
  const directory = new MemoryDirectory(L);
  const maintenance = new DirectoryMaintenance(directory, c.join(nodeId, directory), options(nodeId, over), silentLogger);
  return { directory, maintenance };
}

describe('directory maintenance on the memory doubles', () => {
  const running: DirectoryMaintenance[] = [];
  afterEach(() => running.splice(0).forEach((m) => m.stop()));
  const start = (m: DirectoryMaintenance) => (running.push(m), m.start());

  it('bulk sync: a joiner pulls every entry and marker, with their lifetimes, also with 20% loss', async () => {
    const c = new MemoryCluster();
    const a = member(c, 1, { sync: { ...options(1).sync, enabled: false } });
    for (let i = 0; i < 2000; i++) a.directory.apply(key(i), { endpoint: EP[i % 3], version: 1 + (i % 4), originNode: 1 + (i % 2), ttlSeconds: 300 + (i % 100) });
    a.directory.apply(key(7), { version: 9, originNode: 1, ttlSeconds: 0 });
    await start(a.maintenance);
    c.loss = 0.2;
    const b = member(c, 2);
    const o = await start(b.maintenance);
    assert.equal(o?.end, 'complete');
    assert.equal(o?.sourceNode, 1);
    assert.equal(b.directory.stats().size, 2000);
    assert.equal(b.directory.peek(key(7))?.endpoint, undefined, 'the marker arrived');
    for (const i of [0, 99, 1500]) assert.ok(Math.abs(b.directory.peek(key(i))!.expiresSeconds - a.directory.peek(key(i))!.expiresSeconds) <= 1);
    assert.equal((await b.directory.digest(64)).toString('hex'), (await a.directory.digest(64)).toString('hex'));
    assert.ok(c.sent.lost > 0, 'loss was in effect');
  });

  it('bulk sync: the first node of a cluster finds nobody and is ready, having asked wider each time, then everyone (widestAsk 0)', async () => {
    const c = new MemoryCluster();
    const a = member(c, 1);
    const o = await start(a.maintenance);
    assert.equal(o?.end, 'alone');
    assert.equal(o?.widestAsk, 0);
    assert.equal(a.maintenance.syncState, 'ready');
  });

  it('bulk sync: a first ask answered in time invites the rank-0 peer only: one table arrives, not one per peer (widestAsk 1)', async () => {
    const c = new MemoryCluster();
    const peers = [1, 2, 3].map((id) => member(c, id, { sync: { ...options(id).sync, enabled: false } }));
    for (const p of peers) for (let i = 0; i < 300; i++) p.directory.apply(key(i), { endpoint: EP[i % 3], version: 1, originNode: 1, ttlSeconds: 300 });
    for (const p of peers) await start(p.maintenance);
    const j = member(c, 4);
    const o = await start(j.maintenance);
    assert.equal(o?.end, 'complete');
    assert.equal(o?.widestAsk, 1);
    assert.equal(o?.entries, 300, 'one peer\'s table');
  });

  it('bulk sync: digests that come while the joiner syncs are not compared (one table arrives, not a second by repair); its digests start once it is ready', async () => {
    const c = new MemoryCluster();
    // the peer sends a digest every 10 ms or so, always to the joiner (its only member)
    const a = member(c, 1, { sync: { ...options(1).sync, enabled: false }, antiEntropy: { enabled: true, intervalMs: 10, buckets: 16 } });
    for (let i = 0; i < 4000; i++) a.directory.apply(key(i), { endpoint: EP[i % 3], version: 1, originNode: 1, ttlSeconds: 300 });
    await start(a.maintenance);
    const j = member(c, 2, { sync: { ...options(2).sync, windowChunks: 2 }, antiEntropy: { enabled: true, intervalMs: 30, buckets: 16 } });
    const o = await start(j.maintenance);
    assert.equal(o?.end, 'complete');
    const ae = j.maintenance.antiEntropy!.counters;
    assert.equal(ae.repairs, 0, 'a digest compared against a half table started a repair');
    // (a window asked again after retryMs comes twice: a few chunks more than the table, not a second table)
    const received = j.maintenance.sessions.counters.entriesReceived;
    assert.ok(received >= 4000 && received < 1.2 * 4000, `${received} entries received for a table of 4000`);
    assert.equal(ae.digestsSent, 0, 'the joiner sent a digest before it was ready');
    assert.ok(ae.digestsIgnored > 0, `no digest came while the joiner synced (${o?.ms} ms): the test did not test the overlap`);
    await until('the joiner compares digests once ready', 2000, () => ae.digestsMatched > 0 && ae.digestsSent > 0);
    assert.equal(ae.repairs, 0);
  });

  it('withdraw: deleted everywhere, an older entry cannot come back, withdrawAll clears every node', async () => {
    const c = new MemoryCluster();
    const a = member(c, 1, { sync: { ...options(1).sync, enabled: false } });
    const b = member(c, 2, { sync: { ...options(2).sync, enabled: false } });
    await Promise.all([start(a.maintenance), start(b.maintenance)]);
    const old = { endpoint: EP[0], version: 3, originNode: 1, ttlSeconds: 300 };
    for (const d of [a.directory, b.directory]) for (let i = 0; i < 50; i++) d.apply(key(i), old);
    assert.ok(a.maintenance.withdrawals.withdraw(parseClientKey('5:100001/user1')));
    await until('b stores the marker', 1000, () => b.maintenance.withdrawals.counters.applied === 1);
    assert.equal(b.directory.lookup(key(1)), undefined);
    assert.equal(b.directory.apply(key(1), old), 'ignored', 'the older entry stays deleted');
    assert.equal(b.maintenance.withdrawals.withdrawAll(), 49);
    await until('a applies every marker', 1000, () => a.maintenance.withdrawals.counters.applied === 49);
    for (const i of [0, 25, 49]) assert.equal(a.directory.lookup(key(i)), undefined);
  });

  it('digests: two directories that disagree converge to the newer entry of every client, each repair counted', async () => {
    const c = new MemoryCluster();
    const ae = { enabled: true, intervalMs: 60, buckets: 16 };
    const a = member(c, 1, { sync: { ...options(1).sync, enabled: false }, antiEntropy: ae });
    const b = member(c, 2, { sync: { ...options(2).sync, enabled: false }, antiEntropy: ae });
    for (let i = 0; i < 40; i++) {
      a.directory.apply(key(i), { endpoint: EP[0], version: 3, originNode: 1, ttlSeconds: 300 });
      b.directory.apply(key(i), { endpoint: EP[1], version: i % 2 ? 3 : 4, originNode: 2, ttlSeconds: 300 });
    }
    for (let i = 100; i < 110; i++) a.directory.apply(key(i), { endpoint: EP[2], version: 1, originNode: 1, ttlSeconds: 300 });
    await Promise.all([start(a.maintenance), start(b.maintenance)]);
    await until('digests agree', 5000, async () => (await a.directory.digest(16)).equals(await b.directory.digest(16)));
    for (let i = 0; i < 40; i++) assert.equal(a.directory.lookup(key(i))!.endpoint.name, 'lns-2');
    for (let i = 100; i < 110; i++) assert.equal(b.directory.lookup(key(i))!.endpoint.name, 'lns-3');
    assert.equal(a.maintenance.applier.counters.conflictsRepaired, 40);
  });

  it('snapshots: written from and loaded into a memory directory, markers included, lifetimes kept', () => {
    const dir = mkdtempSync(join(tmpdir(), 'affinityd-memsnap-'));
    try {
      const a = new MemoryDirectory(L);
      for (let i = 0; i < 100; i++) a.apply(key(i), { endpoint: EP[i % 3], version: 1, originNode: 1, ttlSeconds: 100 + i });
      a.apply(key(5), { version: 2, originNode: 2, ttlSeconds: 500 });
      const file = join(dir, 's.snap');
      assert.equal(writeSnapshot(a, file), 100);
      const b = new MemoryDirectory(L);
      assert.deepEqual(loadSnapshot(b, file), { loaded: 100, expired: 0 });
      assert.equal(b.peek(key(5))?.endpoint, undefined);
      assert.ok(Math.abs(b.peek(key(42))!.expiresSeconds - a.peek(key(42))!.expiresSeconds) <= 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
