// Reconnect storm: every node has just restarted (empty tables) and N clients,
// each with a bundle of three links, call at once, one link at each of three
// nodes (at most `concurrency` clients in flight). Reports the time until
// every client is routed, the misses, retries and time-outs, and the split
// bundles, which must be zero. Baseline: the same storm when the tables are
// warm (every client known), in the same run.
// Usage: tsx bench/storm.ts [clients] [concurrency]
import { randomBytes } from 'node:crypto';

import { type ClientKey, parseClientKey } from '../src/codec/client-key';
import { type AffinityNode, createNode } from '../src/daemon/create-node';
import { fmt, writeResult } from './lib';

const clients = Number(process.argv[2] ?? 100_000);
const concurrency = Number(process.argv[3] ?? 500);

async function storm(nodes: AffinityNode[], keys: ClientKey[], label: string): Promise<{ seconds: number; split: number; failed: number }> {
  let next = 0;
  let done = 0;
  let split = 0;
  let failed = 0;
  const t0 = process.hrtime.bigint();
  const step = Math.max(1, Math.floor(keys.length / 10));
  const progress = () => {
    if (++done % step === 0 && keys.length >= 20_000) {
      process.stderr.write(`  ${label}: ${done} of ${keys.length} clients routed, ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s\n`);
    }
  };
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const k = keys[next++];
        try {
          const r = await Promise.all(nodes.map((n) => n.route(k)));
          if (new Set(r.map((x) => `${x.endpoint.address}:${x.endpoint.port}`)).size > 1) split++;
        } catch {
          failed++;
        }
        progress();
      }
    }),
  );
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, split, failed };
}

async function main(): Promise<void> {
  const keyring = { keys: [{ id: 1, secret: randomBytes(32) }], sendKeyId: 1 };
  const group = '239.255.94.1';
  const port = 36000 + Math.floor(Math.random() * 1000);
  const nodes: AffinityNode[] = [];
  for (let id = 1; id <= 3; id++) {
    nodes.push(
      await createNode(
        {
          node: { id },
          cluster: { group, port, interface: '127.0.0.1' },
          directory: { capacity: Math.max(clients * 2, 1024), queueCapacity: 65536 },
          endpoints: [1, 2, 3, 4].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 })),
        },
        { keyring },
      ),
    );
  }
  await Promise.all(nodes.map((n) => n.ready)); // restarted nodes route once their bulk sync is done
  try {
    const keys = Array.from({ length: clients }, (_, i) => parseClientKey(`3:02:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01/storm-${i}`));
    const cold = await storm(nodes, keys, 'after the restart');
    const c = nodes.map((n) => n.stats().router);
    const sum = (k: keyof (typeof c)[0]) => c.reduce((a, x) => a + (x[k] as number), 0);
    const counts = {
      routes: sum('routes'), misses: sum('misses'), queriesSent: sum('queriesSent'), retries: sum('queryRetries'), timeouts: sum('queryTimeouts'),
      remoteHits: sum('remoteHits') + sum('lateUpdateHits'), directHits: sum('directHits'), selected: sum('selected'), coalesced: sum('coalesced'),
    };
    const warm = await storm(nodes, keys, 'warm');
    const dropped = nodes.reduce((a, n) => a + n.stats().responder.queueFull, 0);
    if (process.env.STORM_DEBUG) for (const n of nodes) { const s = n.stats(); console.log(JSON.stringify({ r: s.responder, router: s.router })); }
    const result = {
      clients,
      linksPerClient: 3,
      concurrency,
      coldSeconds: Number(cold.seconds.toFixed(2)),
      coldClientsPerSecond: Math.round(clients / cold.seconds),
      warmSeconds: Number(warm.seconds.toFixed(2)),
      warmClientsPerSecond: Math.round(clients / warm.seconds),
      ratioColdToWarmTime: Number((cold.seconds / warm.seconds).toFixed(1)),
      splitBundles: cold.split + warm.split,
      failedRoutes: cold.failed + warm.failed,
      counts,
      repliesDroppedQueueFull: dropped,
    };
    console.log(
      `storm, ${clients} clients x 3 links after a restart: all routed in ${result.coldSeconds} s (${fmt(result.coldClientsPerSecond)} clients/s); ` +
        `warm: ${result.warmSeconds} s (${result.ratioColdToWarmTime}x faster); split bundles ${result.splitBundles}, failed ${result.failedRoutes}; ` +
        `misses ${counts.misses}, QUERYs ${counts.queriesSent} (${counts.retries} retries), time-outs ${counts.timeouts}, answered by the cluster ${counts.remoteHits}, selected ${counts.selected}`,
    );
    writeResult(`storm-${clients}`, result);
    if (result.splitBundles > 0 || result.failedRoutes > 0) process.exitCode = 1;
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
