// Bulk sync: how long a starting node takes to pull a table of N entries from
// a peer (two nodes, one process, loopback multicast), at two window sizes.
// Baseline, same run: loading the same N entries from a table snapshot on
// local disk (the other way a restarted node gets its table back).
// Usage: tsx bench/sync.ts [entries]
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type AffinityNode, createNode } from '../src/daemon/create-node';
import { NativeDirectory } from '../src/directory/native-directory';
import { loadSnapshot, writeSnapshot } from '../src/directory/snapshot';
import { native } from '../src/native';
import { benchKey, fmt, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 100_000);

async function main(): Promise<void> {
  const keyring = { keys: [{ id: 1, secret: randomBytes(32) }], sendKeyId: 1 };
  const group = '239.255.94.7';
  const port = 37000 + Math.floor(Math.random() * 1000);
  const endpoints = [1, 2, 3, 4].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 }));
  const cfg = (id: number, sync: object) => ({
    node: { id },
    cluster: { group, port, interface: '127.0.0.1' },
    directory: { capacity: entries * 2, queueCapacity: 65536 },
    sync,
    antiEntropy: { enabled: false },
    endpoints,
  });
  const a = await createNode(cfg(1, { enabled: false }), { keyring });
  for (let i = 0; i < entries; i++) a.directory.apply(benchKey(i), { endpoint: endpoints[i % 4], version: 1 + (i % 3), originNode: 1 + (i % 3), ttlSeconds: 3600 });

  // baseline: a snapshot of the same table, loaded into a fresh one
  const dir = mkdtempSync(join(tmpdir(), 'affinityd-bench-sync-'));
  const file = join(dir, 'table.snap');
  writeSnapshot(a.directory, file);
  const fresh = new NativeDirectory(new (native().AffinityTable)(entries * 2, 16), { entrySeconds: 3600, withdrawSeconds: 86_400, maxSeconds: 86_400 });
  const s0 = performance.now();
  const loaded = loadSnapshot(fresh, file).loaded;
  const snapshotMs = performance.now() - s0;
  rmSync(dir, { recursive: true, force: true });
  console.log(`  snapshot load: ${fmt(loaded)} entries in ${snapshotMs.toFixed(0)} ms`);

  const runs: { windowChunks: number; ms: number; entries: number; chunks: number; complete: boolean; digestsEqual: boolean }[] = [];
  let id = 2;
  for (const windowChunks of [16, 64]) {
    const b: AffinityNode = await createNode(cfg(id++, { windowChunks, timeoutMs: 120_000 }), { keyring });
    const o = (await b.ready)!;
    const r = {
      windowChunks,
      ms: Math.round(o.ms),
      entries: b.directory.stats().size,
      chunks: o.chunks,
      complete: o.end === 'complete',
      digestsEqual: (await b.directory.digest(64)).equals(await a.directory.digest(64)),
    };
    runs.push(r);
    console.log(`  bulk sync, window ${windowChunks} chunks: ${fmt(r.entries)} entries in ${r.ms} ms (${fmt((r.entries / r.ms) * 1000)} entries/s, ${r.chunks} chunks, ${r.complete ? 'complete' : o.end}, digests ${r.digestsEqual ? 'equal' : 'DIFFER'})`);
    await b.close();
  }
  await a.close();
  const best = runs.reduce((x, y) => (y.ms < x.ms ? y : x));
  const result = {
    entries,
    runs,
    syncMs: best.ms,
    syncEntriesPerSecond: Math.round((best.entries / best.ms) * 1000),
    snapshotLoadMs: Math.round(snapshotMs),
    ratioSyncToSnapshot: Number((best.ms / snapshotMs).toFixed(2)),
    allComplete: runs.every((r) => r.complete && r.entries === entries && r.digestsEqual),
  };
  console.log(`  sync of ${fmt(entries)} entries: ${best.ms} ms, ${result.ratioSyncToSnapshot}x the time of a local snapshot load`);
  writeResult(`sync-${entries}`, result);
  if (!result.allComplete) process.exitCode = 1;
}

void main();
