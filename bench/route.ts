// Route decisions through the library API, each against a baseline measured
// in the same run:
//   - local hits (1M entries): node.route() one by one and routeBatch(256),
//     against a JS Map behind the same async API;
//   - remote hits (another node answers): latency percentiles, against a
//     Node dgram ping-pong on loopback (the same kind of path: JS -> kernel
//     -> other side -> kernel -> JS); and, in the same rounds, the same
//     remote hits by a pair of nodes with the reply socket off (each REPLY
//     through the querier's I/O thread, as before the reply socket). Each of
//     the three runs 500 untimed rounds first (JIT, caches), then 5,000
//     timed ones in interleaved slices of 500;
//   - misses: the time beyond the configured retries and time-outs, against
//     a bare timer of the same length.
// Usage: tsx bench/route.ts [entries]
import dgram from 'node:dgram';

import { type ClientKey, clientKeyBytes, parseClientKey } from '../src/codec/client-key';
import { createNode } from '../src/daemon/create-node';
import { fmt, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);
const keyring = { keys: [{ id: 1, secret: Buffer.alloc(32, 0x42) }], sendKeyId: 1 };
const endpoints = [
  { name: 'lns-a', address: '198.51.100.10', port: 1701 },
  { name: 'lns-b', address: '198.51.100.11', port: 1701 },
];
const keyOf = (i: number) => parseClientKey(`2:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/subscriber-${i}@bench.example`);
const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function localHits(a: Awaited<ReturnType<typeof createNode>>): Promise<{ single: number; batch: number; mapSingle: number }> {
  const map = new Map<string, (typeof endpoints)[0]>();
  for (let i = 0; i < entries; i++) {
    const kb = clientKeyBytes(keyOf(i));
    a.directory.apply(kb, { endpoint: endpoints[i & 1], version: 1, originNode: 1, ttlSeconds: 86_400 });
    map.set(kb.toString('latin1'), endpoints[i & 1]);
  }
  // clients at random places in the table, as fresh objects in the order a
  // front end would parse them
  const sample = Array.from({ length: 100_000 }, () => keyOf(Math.floor(Math.random() * entries)));
  const mapRoute = async (k: ClientKey) => ({ endpoint: map.get(clientKeyBytes(k).toString('latin1'))!, source: 'local' });
  const time = async (fn: () => Promise<void>, rounds = 4) => {
    let best = 0;
    for (let r = 0; r < rounds; r++) {
      const t0 = process.hrtime.bigint();
      await fn();
      best = Math.max(best, sample.length / (Number(process.hrtime.bigint() - t0) / 1e9));
    }
    return best;
  };
  const single = await time(async () => {
    for (const k of sample) await a.route(k);
  });
  const groups: ClientKey[][] = [];
  for (let i = 0; i < sample.length; i += 256) groups.push(sample.slice(i, i + 256));
  const batch = await time(async () => {
    for (const g of groups) await a.routeBatch(g);
  });
  const mapSingle = await time(async () => {
    for (const k of sample) await mapRoute(k);
  });
  if (a.router.counters.misses > 0) throw new Error('a local-hit benchmark missed');
  return { single, batch, mapSingle };
}

async function main(): Promise<void> {
  const group = '239.255.92.1';
  const port = 32000 + Math.floor(Math.random() * 1000);
  const query = { count: 3, intervalMs: 10, timeoutMs: 20 };
  // no digests: a repair would copy b's clients to a while the remote hits
  // are measured (on a slow run), and they would be local hits
  const base = { cluster: { group, port, interface: '127.0.0.1' }, endpoints, directory: { capacity: Math.ceil(entries * 1.25) + 200_000 }, query, antiEntropy: { enabled: false } };
  const a = await createNode({ ...base, node: { id: 1 } }, { keyring });
  const b = await createNode({ ...base, node: { id: 2 } }, { keyring });
  await Promise.all([a.ready, b.ready]); // measured after the bulk sync at start, which holds calls
  try {
    // ---- local hits ----
    // in a function of its own: the JS Map baseline (a million strings) and
    // the sample are garbage once it returns, and collected before the remote
    // hits, whose tail would otherwise include V8 marking them
    const { single, batch, mapSingle } = await localHits(a);
    (globalThis as { gc?: () => void }).gc?.();

    // ---- remote hits: b knows 5,000 clients a has never seen ----
    // the same against a pair whose querier has no reply socket (group + 1)
    const viaIo = await createNode({ ...base, cluster: { ...base.cluster, group: '239.255.92.2', replySocket: false }, directory: { capacity: 100_000 }, node: { id: 3 } }, { keyring });
    const viaIoPeer = await createNode({ ...base, cluster: { ...base.cluster, group: '239.255.92.2' }, directory: { capacity: 100_000 }, node: { id: 4 } }, { keyring });
    await Promise.all([viaIo.ready, viaIoPeer.ready]);
    const warm = 500;
    const remoteKeys = Array.from({ length: 5000 + warm }, (_, i) => keyOf(entries + i));
    for (const k of remoteKeys) {
      b.directory.apply(clientKeyBytes(k), { endpoint: endpoints[0], version: 1, originNode: 2, ttlSeconds: 86_400 });
      viaIoPeer.directory.apply(clientKeyBytes(k), { endpoint: endpoints[0], version: 1, originNode: 4, ttlSeconds: 86_400 });
    }
    // baseline: JS dgram ping-pong on loopback
    const echo = dgram.createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '127.0.0.1', () => r()));
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const payload = Buffer.alloc(120);
    const ping = () =>
      new Promise<void>((resolve) => {
        client.once('message', () => resolve());
        client.send(payload, echo.address().port, '127.0.0.1');
      });
    const remote: number[] = [];
    const remoteViaIo: number[] = [];
    const pingPong: number[] = [];
    const timed = async (out: number[] | undefined, fn: () => Promise<void>) => {
      const t0 = process.hrtime.bigint();
      await fn();
      out?.push(Number(process.hrtime.bigint() - t0) / 1000);
    };
    const hit = (n: typeof a, k: ClientKey) => async () => {
      const r = await n.route(k);
      if (r.source !== 'remote') throw new Error(`expected a remote hit, got ${r.source}`);
    };
    for (let i = 0; i < warm; i++) {
      await timed(undefined, hit(a, remoteKeys[i]));
      await timed(undefined, hit(viaIo, remoteKeys[i]));
      await timed(undefined, ping);
    }
    // slices of 500 taking turns, the first of each slice alternating
    for (let slice = warm; slice < remoteKeys.length; slice += 500) {
      const withSocket = async () => {
        for (let i = slice; i < slice + 500; i++) await timed(remote, hit(a, remoteKeys[i]));
      };
      const withoutSocket = async () => {
        for (let i = slice; i < slice + 500; i++) await timed(remoteViaIo, hit(viaIo, remoteKeys[i]));
      };
      const pings = async () => {
        for (let i = 0; i < 500; i++) await timed(pingPong, ping);
      };
      const turn = ((slice - warm) / 500) % 3;
      for (const run of [withSocket, withoutSocket, pings, withSocket, withoutSocket].slice(turn, turn + 3)) await run();
    }
    echo.close();
    client.close();
    await viaIo.close();
    await viaIoPeer.close();
    remote.sort((x, y) => x - y);
    remoteViaIo.sort((x, y) => x - y);
    pingPong.sort((x, y) => x - y);

    // ---- misses: nobody knows these clients ----
    const configured = (query.count - 1) * query.intervalMs + query.timeoutMs;
    const miss: number[] = [];
    const timer: number[] = [];
    for (let i = 0; i < 100; i++) {
      const t0 = process.hrtime.bigint();
      const r = await a.route(keyOf(entries + 100_000 + i));
      miss.push(Number(process.hrtime.bigint() - t0) / 1e6 - configured);
      if (r.source !== 'selected') throw new Error(`expected a miss, got ${r.source}`); // agreement on (the default): half of these settle at the other node, a CLAIM round trip
      const t1 = process.hrtime.bigint();
      // the same waits as bare timers: (count - 1) intervals and the time-out
      for (let q = 0; q < query.count - 1; q++) await new Promise((res) => setTimeout(res, query.intervalMs));
      await new Promise((res) => setTimeout(res, query.timeoutMs));
      timer.push(Number(process.hrtime.bigint() - t1) / 1e6 - configured);
    }
    miss.sort((x, y) => x - y);
    timer.sort((x, y) => x - y);

    const result = {
      entries,
      localHitsPerSecondSingle: Math.round(single),
      localHitsPerSecondBatch256: Math.round(batch),
      jsMapRoutesPerSecond: Math.round(mapSingle),
      ratioSingleToMap: Number((single / mapSingle).toFixed(2)),
      ratioBatchToMap: Number((batch / mapSingle).toFixed(2)),
      remoteHitUs: { p50: pct(remote, 0.5), p90: pct(remote, 0.9), p99: pct(remote, 0.99), max: remote[remote.length - 1] },
      remoteHitViaIoThreadUs: { p50: pct(remoteViaIo, 0.5), p90: pct(remoteViaIo, 0.9), p99: pct(remoteViaIo, 0.99), max: remoteViaIo[remoteViaIo.length - 1] },
      jsPingPongUs: { p50: pct(pingPong, 0.5), p99: pct(pingPong, 0.99) },
      ratioRemoteP99ToPingPongP99: Number((pct(remote, 0.99) / pct(pingPong, 0.99)).toFixed(2)),
      missConfiguredMs: configured,
      missBeyondConfiguredMs: { p50: pct(miss, 0.5), p99: pct(miss, 0.99), max: miss[miss.length - 1] },
      bareTimersBeyondConfiguredMs: { p50: pct(timer, 0.5), p99: pct(timer, 0.99) },
    };
    const r2 = (x: number) => x.toFixed(2);
    console.log(`route, ${entries} entries:`);
    console.log(`  local hits: route() ${fmt(single)}/s, routeBatch(256) ${fmt(batch)}/s; JS Map behind the same API ${fmt(mapSingle)}/s (${result.ratioSingleToMap}x, ${result.ratioBatchToMap}x)`);
    console.log(`  remote hits: p50 ${r2(result.remoteHitUs.p50)} us, p99 ${r2(result.remoteHitUs.p99)} us; JS dgram ping-pong p50 ${r2(result.jsPingPongUs.p50)} us, p99 ${r2(result.jsPingPongUs.p99)} us (${result.ratioRemoteP99ToPingPongP99}x)`);
    console.log(`  remote hits with the REPLY through the I/O thread (no reply socket): p50 ${r2(result.remoteHitViaIoThreadUs.p50)} us, p99 ${r2(result.remoteHitViaIoThreadUs.p99)} us`);
    console.log(`  misses: ${configured} ms configured; beyond it p50 ${r2(result.missBeyondConfiguredMs.p50)} ms, p99 ${r2(result.missBeyondConfiguredMs.p99)} ms; bare timers p50 ${r2(result.bareTimersBeyondConfiguredMs.p50)} ms, p99 ${r2(result.bareTimersBeyondConfiguredMs.p99)} ms`);
    writeResult(`route-${entries}`, result);
  } finally {
    await a.close();
    await b.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
