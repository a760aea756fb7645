// The site directory's cross-site decision against its floor, in the same
// run: a real redis-server on loopback, started and stopped here.
//   - bare `SET key value NX PX ttl`, one awaited at a time (node-redis, the
//     same client library), and 16 pipelined: the floor of any claim;
//   - claim() of a new client (won: the claim script's SET), one at a time
//     and 16 per call;
//   - claim() of a client another site holds (lost: its entry comes back);
//   - lookup() of it from the tracked cache (no round trip).
// Prints p50/p99 of each and the ratios to the bare SET NX.
// What crossing sites adds to a miss nobody in the site answered is one
// claim (the router claims before its site's agreement: docs/sites.md);
// a whole miss through routers on the in-memory cluster was tried and
// dropped: its simulated 1-ms message delays swamped the difference.
// Usage: tsx bench/sites.ts [samples]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createClient } from '@redis/client';

import { parseClientKey } from '../src/codec/client-key';
import type { Entry } from '../src/codec/messages';
import { RedisSiteDirectory } from '../src/sites/redis-site-directory';
import { RedisServer } from '../test/helpers/redis-server';
import { siteOptions } from '../test/helpers/sites';
import { writeResult } from './lib';

const samples = Number(process.argv[2] ?? 20_000);

const quantiles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => Number(s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1));
  return { p50: q(0.5), p99: q(0.99), n: s.length };
};

const entry = (i: number, tag: string, originNode: number): Entry => ({
  clientKey: parseClientKey(`2:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/${tag}-${i}@bench.example`),
  endpoint: { name: 'lns-a', address: '198.51.100.1', port: 1701 },
  version: 1,
  originNode,
  ttlSeconds: 600,
});

async function time(n: number, one: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < Math.min(500, n); i++) await one(-1 - i); // warm
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await one(i);
    out.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return out;
}

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    console.log('sites: skipped: redis-server is not installed (apt-get install redis-server)');
    writeResult('sites', { skipped: 'redis-server is not installed' });
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'affinityd-bench-sites-'));
  const redis = await RedisServer.start({ dir });
  const bare = createClient({ socket: { host: '127.0.0.1', port: redis.port } });
  await bare.connect();
  const site = (name: string, nodeId: number) => {
    const d = new RedisSiteDirectory({
      ...siteOptions({ site: name, nodeId, nodes: [{ host: '127.0.0.1', port: redis.port }], budgetMs: 10_000, heartbeatMs: 60_000 }),
      cacheCapacity: 4 * samples,
    });
    d.start();
    return d;
  };
  const a = site('north', 1);
  const b = site('south', 2);
  try {
    for (const d of [a, b]) for (let i = 0; d.state.state !== 'up'; i++) {
      if (i > 500) throw new Error('site directory did not come up');
      await new Promise((r) => setTimeout(r, 20));
    }
    const value = Buffer.alloc(90, 7); // about a record's size
    const setNx = await time(samples, (i) => bare.sendCommand(['SET', `bench:bare:${i}`, value, 'NX', 'PX', '600000']));
    const setNx16 = (await time(samples / 16, (i) => Promise.all(Array.from({ length: 16 }, (_, k) => bare.sendCommand(['SET', `bench:bare16:${i}:${k}`, value, 'NX', 'PX', '600000']))))).map((us) => us / 16);
    const won = await time(samples, (i) => a.claim([entry(i, 'won', 1)]));
    const won16 = (await time(samples / 16, (i) => a.claim(Array.from({ length: 16 }, (_, k) => entry(i * 16 + k + 10_000_000, 'won16', 1))))).map((us) => us / 16);
    // clients b holds; a has never seen them: lost, from Redis
    for (let i = 0; i < samples; i += 256) await b.claim(Array.from({ length: Math.min(256, samples - i) }, (_, k) => entry(i + k, 'held', 2)));
    const lost = await time(samples, (i) => a.claim([entry(i < 0 ? samples + 1000 - i : i, 'held', 1)]));
    // a's tracked cache has them now: a lookup answers without a round trip
    const cached = await time(samples, (i) => a.lookup([entry(i < 0 ? samples + 1000 - i : i, 'held', 1).clientKey]));
    if (a.counters.claims.siteLocal !== 0) throw new Error(`${a.counters.claims.siteLocal} claims were site-local: the run is void`);
    if (a.counters.cache.hits < samples) throw new Error(`only ${a.counters.cache.hits} lookups came from the cache: the run is void`);
    const r = {
      samples,
      bareSetNxUs: quantiles(setNx),
      bareSetNxPipelined16UsPerOp: quantiles(setNx16),
      claimWonUs: quantiles(won),
      claimWonBatch16UsPerClaim: quantiles(won16),
      claimLostUs: quantiles(lost),
      lookupFromCacheUs: quantiles(cached),
      cacheHits: a.counters.cache.hits,
    };
    const ratio = (x: { p50: number }, y: { p50: number }) => Number((x.p50 / y.p50).toFixed(2));
    const out = {
      ...r,
      ratioClaimWonToSetNx: ratio(r.claimWonUs, r.bareSetNxUs),
      ratioClaimLostToSetNx: ratio(r.claimLostUs, r.bareSetNxUs),
      ratioBatch16ToPipelinedSetNx: ratio(r.claimWonBatch16UsPerClaim, r.bareSetNxPipelined16UsPerOp),
    };
    const f = (q: { p50: number; p99: number }) => `p50 ${q.p50} us, p99 ${q.p99} us`;
    console.log(
      `sites (loopback Redis, ${samples} samples): bare SET NX ${f(r.bareSetNxUs)}; claim won ${f(r.claimWonUs)} (${out.ratioClaimWonToSetNx}x); ` +
        `claim lost ${f(r.claimLostUs)} (${out.ratioClaimLostToSetNx}x); lookup from the tracked cache ${f(r.lookupFromCacheUs)}; ` +
        `16 per call ${r.claimWonBatch16UsPerClaim.p50} us per claim vs 16 pipelined SET NX ${r.bareSetNxPipelined16UsPerOp.p50} us per op (${out.ratioBatch16ToPipelinedSetNx}x)`,
    );
    writeResult('sites', out);
  } finally {
    bare.destroy();
    await a.close();
    await b.close();
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
