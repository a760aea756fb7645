// What an operator sees of the site directory: its Prometheus metrics (with
// their values agreeing with the counters, and both scrapes, Redis up and
// down, clean under `promtool check metrics`: without promtool that test
// skips with its reason, and fails under AFFINITYD_REQUIRE_ALL=1), the
// /readyz warnings and the `show peers` section, while Redis is up and after
// it is killed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Registry } from 'prom-client';

import { registerSiteMetrics, SITE_METRIC_NAMES } from '../../src/sites/metrics';
import type { RedisSiteDirectory } from '../../src/sites/redis-site-directory';
import { formatSiteDirectory, siteDirectoryView, siteReadinessWarnings } from '../../src/sites/views';
import { RedisServer, redisUnavailable } from '../helpers/redis-server';
import { haveCommand, requireOrSkip } from '../helpers/require';
import { clientOf, entry, startSite, until, waitState } from '../helpers/sites';

const value = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  assert.ok(line, `${series} not in the scrape`);
  return Number(line.slice(series.length + 1));
};

describe('site directory: metrics, /readyz warnings, show peers', function () {
  this.timeout(60_000);
  let dir = '';
  let redis: RedisServer | undefined;
  let d: RedisSiteDirectory | undefined;
  /** The scrapes of the first test, Redis up and Redis down, for promtool. */
  const scrapes: string[] = [];

  before(async function () {
    const why = redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-views-'));
    redis = await RedisServer.start({ dir });
  });

  after(async () => {
    await d?.close();
    await redis?.kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('counts round trips, claims, cache hits and time spent, and says when Redis is down and why', async () => {
    d = await startSite({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: redis!.port }], budgetMs: 100 });
    const registry = new Registry();
    registerSiteMetrics(registry, d);
    await d.claim([entry(clientOf(1), 'lns-a'), entry(clientOf(2), 'lns-a')]);
    await d.claim([entry(clientOf(1), 'lns-b', 1, 2)]);
    // its own claims are cached (no invalidation of its own write comes back to drop them: NOLOOP): a lookup is a hit
    await until(() => d!.cacheSize === 2, 5000, 'the claims to be cached');
    await d.lookup([entry(clientOf(2), 'lns-a').clientKey]);
    let text = await registry.metrics();
    for (const name of SITE_METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    assert.equal(value(text, 'affinityd_site_redis_up'), 1);
    assert.equal(value(text, 'affinityd_site_claims_total{outcome="won"}'), 2);
    assert.equal(value(text, 'affinityd_site_claims_total{outcome="lost"}'), 1);
    assert.equal(value(text, 'affinityd_site_cache_hits_total'), d.counters.cache.hits);
    assert.equal(d.counters.cache.hits, 1);
    assert.equal(value(text, 'affinityd_site_redis_round_trips_total{op="claim"}'), 3);
    assert.equal(value(text, 'affinityd_site_redis_round_trip_seconds_count{op="claim"}'), 3);
    assert.deepEqual(siteReadinessWarnings(d), []);
    const up = siteDirectoryView(d);
    assert.deepEqual([up.state, up.mode, up.servers], ['up', 'standalone', [{ address: `127.0.0.1:${redis!.port}`, ready: true }]]);
    assert.match(formatSiteDirectory(up), /^site directory: site north, Redis standalone, UP for/);
    scrapes.push(text);

    await redis!.kill();
    await waitState(d, 'down');
    const [o] = await d.claim([entry(clientOf(3), 'lns-a')]);
    assert.equal(o.outcome, 'site-local');
    text = await registry.metrics();
    assert.equal(value(text, 'affinityd_site_redis_up'), 0);
    assert.equal(value(text, 'affinityd_site_local_decisions_total{reason="down"}'), 1);
    assert.equal(value(text, 'affinityd_site_journal_entries'), 1);
    assert.equal(value(text, 'affinityd_site_redis_downs_total'), 1);
    scrapes.push(text);
    const w = siteReadinessWarnings(d);
    assert.equal(w.length, 2, w.join('\n'));
    assert.match(w[0], /^site directory \(Redis\) down for [\d.]+ s: .*(ECONNREFUSED|ECONNRESET|connection lost).*; site north decides alone$/);
    assert.match(w[1], /1 own record\(s\) waiting to be written back/);
    const down = siteDirectoryView(d);
    assert.equal(down.state, 'down');
    assert.equal(down.servers[0].ready, false);
    assert.match(formatSiteDirectory(down), /DOWN for [\d.]+s: /);
    // back: the journal is written and the warnings go
    await redis!.launch();
    await waitState(d, 'up');
    assert.deepEqual(siteReadinessWarnings(d), []);
    assert.equal(value(await registry.metrics(), 'affinityd_site_reconciled_total{result="written"}'), 1);
  });

  it('promtool check metrics has nothing to say about the site metrics, Redis up or down', function () {
    requireOrSkip(this, haveCommand('promtool'), 'promtool is not installed (apt-get install prometheus)');
    assert.equal(scrapes.length, 2, 'the scrapes of the test before (it failed before taking them)');
    for (const [i, text] of scrapes.entries()) {
      for (const name of SITE_METRIC_NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} in the scrape with Redis ${i ? 'down' : 'up'}`);
      const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
      assert.equal(check.stdout + check.stderr, '', `promtool findings, Redis ${i ? 'down' : 'up'}`);
      assert.equal(check.status, 0);
    }
  });
});
