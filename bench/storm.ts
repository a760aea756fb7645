// Reconnect storm (issue 17): every node has just restarted (empty tables)
// and N clients, each with a bundle of three links, call at once, one link
// at each of three nodes. Each node is a process of its own, as on three
// appliances (bench/fixtures/storm-node.ts), taking `concurrency` call
// requests at a time: after a power cut every client redials within seconds,
// so thousands are in flight at each node. Each miss waits the configured
// QUERY schedule (3 QUERYs 15 ms apart, 30 ms after the last: 60 ms) before
// the arbiter settles it, so the time to route everyone is bounded below by
// clients / concurrency x 60 ms.
//
// Reports the time from the first call to the last route, the CPU it took
// (all processes, and the nodes' JS threads), misses, retries and
// time-outs, how far apart the three links of a client arrived, and the
// split bundles, which must be zero. Baseline, in the same run: the same
// storm when every table is warm (every client known).
// Usage: tsx bench/storm.ts [clients] [concurrency per node]
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { extname, join } from 'node:path';

import { fmt, writeResult } from './lib';

const clients = Number(process.argv[2] ?? 100_000);
const concurrency = Number(process.argv[3] ?? 10_000);
const NODES = 3;
const endpoints = [1, 2, 3, 4].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 }));

interface Done {
  type: 'done';
  phase: string;
  startMs: number;
  endMs: number;
  cpuSeconds: number;
  mainThreadCpuSeconds: number;
  threadCpuSeconds: Record<string, number>;
  failed: number;
  firstError?: string;
  where: Uint8Array;
  calledAt: Float64Array;
  router: Record<string, number>;
  responder: { queueFull: number; received: number; sent: number };
}

function next(child: ChildProcess, type: string): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string }) => {
      if (m.type !== type) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(m);
    };
    const onExit = (code: number) => reject(new Error(`a storm node exited (${code}) before '${type}'`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

const pct = (xs: Float64Array, p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function phase(children: ChildProcess[], name: string) {
  const dones = children.map((c) => next(c, 'done') as Promise<Done>);
  for (const c of children) c.send({ type: 'go', phase: name });
  const d = await Promise.all(dones);
  const seconds = (Math.max(...d.map((x) => x.endMs)) - Math.min(...d.map((x) => x.startMs))) / 1000;
  let split = 0;
  const spread = new Float64Array(clients);
  for (let i = 0; i < clients; i++) {
    const w = d[0].where[i];
    if (w !== 0 && d.some((x) => x.where[i] !== 0 && x.where[i] !== w)) split++;
    let lo = Infinity;
    let hi = -Infinity;
    for (const x of d) {
      lo = Math.min(lo, x.calledAt[i]);
      hi = Math.max(hi, x.calledAt[i]);
    }
    spread[i] = hi - lo;
  }
  spread.sort();
  const sum = (k: string) => d.reduce((a, x) => a + (x.router[k] ?? 0), 0);
  return {
    seconds,
    clientsPerSecond: Math.round(clients / seconds),
    cpuSeconds: Number(d.reduce((a, x) => a + x.cpuSeconds, 0).toFixed(2)),
    nodeJsThreadCpuSeconds: d.map((x) => Number(x.mainThreadCpuSeconds.toFixed(2))),
    // all nodes together, by thread name (main: the JS thread; affinityd-io: the I/O thread; the rest V8's and libuv's)
    threadCpuSeconds: Object.fromEntries(
      [...new Set(d.flatMap((x) => Object.keys(x.threadCpuSeconds)))].map((k) => [k, Number(d.reduce((a, x) => a + (x.threadCpuSeconds[k] ?? 0), 0).toFixed(2))]),
    ),
    split,
    failed: d.reduce((a, x) => a + x.failed, 0),
    firstError: d.find((x) => x.firstError)?.firstError,
    linkSpreadMs: { p50: Number(pct(spread, 0.5).toFixed(1)), p99: Number(pct(spread, 0.99).toFixed(1)) },
    counts: {
      routes: sum('routes'), localHits: sum('localHits'), misses: sum('misses'), queriesSent: sum('queriesSent'), queryRetries: sum('queryRetries'), queryTimeouts: sum('queryTimeouts'),
      remoteHits: sum('remoteHits') + sum('lateUpdateHits'), claimsSent: sum('claimsSent'), claimRetries: sum('claimRetries'), claimsLocal: sum('claimsLocal'),
      directHits: sum('directHits'), selected: sum('selected'), agreementTimeouts: sum('agreementTimeouts'),
      claimsHandedOver: sum('claimsHandedOver'), handoverRepairs: sum('handoverRepairs'),
    },
    repliesDroppedQueueFull: d.reduce((a, x) => a + x.responder.queueFull, 0),
  };
}

async function main(): Promise<void> {
  const secret = randomBytes(32);
  const group = '239.255.94.1';
  const port = 36000 + Math.floor(Math.random() * 1000);
  const file = join(__dirname, 'fixtures', `storm-node${extname(__filename)}`);
  const children = Array.from({ length: NODES }, () => fork(file, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  try {
    // a restart of every node: empty tables, each starting its bulk sync
    const ready = children.map((c) => next(c, 'ready'));
    children.forEach((c, i) => c.send({ type: 'init', id: i + 1, peers: NODES, group, port, secret, clients, concurrency, endpoints }));
    await Promise.all(ready);
    const cold = await phase(children, 'after the restart');
    const warm = await phase(children, 'warm');
    const result = {
      clients,
      linksPerClient: NODES,
      nodes: `${NODES}, each a process of its own`,
      concurrencyPerNode: concurrency,
      configuredWaitPerMissMs: 60,
      cold,
      warm,
      coldSeconds: Number(cold.seconds.toFixed(2)),
      coldClientsPerSecond: cold.clientsPerSecond,
      warmSeconds: Number(warm.seconds.toFixed(2)),
      ratioColdToWarmTime: Number((cold.seconds / warm.seconds).toFixed(1)),
      splitBundles: cold.split + warm.split,
      failedRoutes: cold.failed + warm.failed,
    };
    const c = cold.counts;
    console.log(
      `storm, ${fmt(clients)} clients x ${NODES} links at ${NODES} restarted nodes (${fmt(concurrency)} calls in flight at each): all routed in ${result.coldSeconds} s ` +
        `(${fmt(cold.clientsPerSecond)} clients/s, ${cold.cpuSeconds} CPU s; node JS threads ${cold.nodeJsThreadCpuSeconds.join(', ')} s); ` +
        `warm baseline: ${result.warmSeconds} s (cold/warm ${result.ratioColdToWarmTime}x); links of a client arrived p50 ${cold.linkSpreadMs.p50} ms apart; ` +
        `split bundles ${result.splitBundles}, failed ${result.failedRoutes}; misses ${c.misses}, QUERYs ${c.queriesSent} (${c.queryRetries} retries), ` +
        `time-outs ${c.queryTimeouts}, answered by the cluster ${c.remoteHits}, CLAIMs ${c.claimsSent} (${c.claimRetries} resent; proposals handed over ${c.claimsHandedOver}, repaired ${c.handoverRepairs}), selected ${c.selected}`,
    );
    console.log(`  CPU of the cold storm by thread, three nodes together: ${Object.entries(cold.threadCpuSeconds).map(([k, v]) => `${k} ${v} s`).join(', ')} (main: the JS thread; node: V8's and libuv's helpers)`);
    if (cold.firstError ?? warm.firstError) console.log(`first failure: ${cold.firstError ?? warm.firstError}`);
    writeResult(`storm-${clients}`, result);
    if (result.splitBundles > 0 || result.failedRoutes > 0) process.exitCode = 1;
  } finally {
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : (c.once('exit', r), c.send({ type: 'close' }))))));
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
