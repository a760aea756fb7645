// The same lookup job against Redis, the central database a user would
// otherwise pick: a real redis-server started and stopped here on loopback,
// loaded with the same keys, used as its users would: one GET awaited at a
// time; 16 and 256 concurrent GETs (node-redis pipelines what is issued
// together); MGET batches of 16 and 256; and four connections with 64 GETs
// in flight each. Against the native table doing the same in this process.
// Usage: tsx bench/redis.ts [entries]
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect as netConnect } from 'node:net';

import { createClient } from 'redis';

import { native } from '../src/native';
import { benchKey, fmt, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    console.log('redis: skipped: redis-server is not installed (apt-get install redis-server)');
    writeResult(`redis-${entries}`, { entries, skipped: 'redis-server is not installed' });
    return;
  }
  const port = 26000 + Math.floor(Math.random() * 1000);
  const server: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  // wait until the server accepts connections, then connect once: a client
  // whose first connect failed reconnects on its own, and a second connect()
  // on it hung the benchmark on a busy machine
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((r) => {
      const s = netConnect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    if (i > 100) throw new Error(`redis-server did not listen on port ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const client = createClient({ socket: { host: '127.0.0.1', port } });
  try {
    await client.connect();
    const a = native();
    const table = new a.AffinityTable(entries, 16);
    const ep = table.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('lns'));
    for (let base = 0; base < entries; base += 10_000) {
      const m = client.multi();
      for (let i = base; i < Math.min(entries, base + 10_000); i++) {
        const k = benchKey(i);
        table.upsert(k, ep, 1, 1, 86400);
        m.set(k.toString('latin1'), '0');
      }
      await m.exec();
    }
    const sample = Array.from({ length: 20_000 }, () => benchKey(Math.floor(Math.random() * entries)));
    const sampleStrings = sample.map((k) => k.toString('latin1'));
    const timeIt = async (n: number, fn: () => Promise<void> | void) => {
      await fn(); // warm
      const t0 = process.hrtime.bigint();
      await fn();
      return n / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    const redisSingle = await timeIt(5000, async () => {
      for (let i = 0; i < 5000; i++) if ((await client.get(sampleStrings[i])) === null) throw new Error('redis miss');
    });
    const redisBatch = async (b: number) =>
      timeIt(sample.length, async () => {
        for (let i = 0; i < sample.length; i += b) await client.mGet(sampleStrings.slice(i, i + b));
      });
    // b GETs issued together and awaited together: pipelined on the connection
    const redisPipelined = async (b: number) =>
      timeIt(sample.length, async () => {
        for (let i = 0; i < sample.length; i += b) await Promise.all(sampleStrings.slice(i, i + b).map((k) => client.get(k)));
      });
    // several connections, each with many GETs in flight (workers awaiting one GET at a time)
    const extra = await Promise.all([1, 2, 3].map(() => client.duplicate().connect()));
    const conns = [client, ...extra];
    const redisConcurrent = await timeIt(sample.length, async () => {
      let next = 0;
      await Promise.all(
        conns.flatMap((c) =>
          Array.from({ length: 64 }, async () => {
            while (next < sample.length) await c.get(sampleStrings[next++]);
          }),
        ),
      );
    });
    await Promise.all(extra.map((c) => c.quit()));
    const nativeBatch = (b: number) => {
      const groups: { keys: Buffer; offsets: Uint32Array }[] = [];
      for (let g = 0; g < sample.length; g += b) {
        const part = sample.slice(g, g + b);
        const offsets = new Uint32Array(part.length + 1);
        part.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
        groups.push({ keys: Buffer.concat(part), offsets });
      }
      const endpoints = new Int32Array(b);
      return timeIt(sample.length, () => {
        for (const g of groups) table.lookupBatch(g.keys, g.offsets, g.offsets.length - 1, endpoints, null);
      });
    };
    const out = new Uint32Array(5);
    const nativeSingle = await timeIt(sample.length, () => {
      for (const k of sample) table.lookup(k, out);
    });
    const rows = [];
    for (const b of [16, 256]) {
      const r = await redisBatch(b);
      const p = await redisPipelined(b);
      const n = await nativeBatch(b);
      const best = Math.max(r, p);
      rows.push({ batch: b, redisPerSecond: Math.round(r), redisPipelinedPerSecond: Math.round(p), nativePerSecond: Math.round(n), ratio: Number((n / best).toFixed(1)) });
    }
    const result = {
      entries,
      redisSinglePerSecond: Math.round(redisSingle),
      nativeSinglePerSecond: Math.round(nativeSingle),
      ratioSingle: Number((nativeSingle / redisSingle).toFixed(1)),
      redisFourConnections64InFlightPerSecond: Math.round(redisConcurrent),
      ratioSingleToRedisConcurrent: Number((nativeSingle / redisConcurrent).toFixed(1)),
      batches: rows,
    };
    console.log(
      `redis, ${entries} keys: one awaited GET ${fmt(redisSingle)}/s vs native ${fmt(nativeSingle)}/s (${result.ratioSingle}x); ` +
        `4 connections x 64 GETs in flight ${fmt(redisConcurrent)}/s (native one at a time ${result.ratioSingleToRedisConcurrent}x); ` +
        rows.map((r) => `batch ${r.batch}: Redis MGET ${fmt(r.redisPerSecond)}/s, pipelined GETs ${fmt(r.redisPipelinedPerSecond)}/s vs native ${fmt(r.nativePerSecond)}/s (${r.ratio}x the better)`).join('; '),
    );
    writeResult(`redis-${entries}`, result);
  } finally {
    await client.quit().catch(() => {});
    server.kill('SIGKILL');
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
