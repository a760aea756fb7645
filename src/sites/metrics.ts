// Prometheus metrics of the site directory (docs/operations.md, "Metrics"),
// read from its counters at scrape time like the node's own metrics, plus a
// histogram of Redis round trips fed as they happen. The daemon registers
// them on its registry when sites are enabled.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

import type { RedisSiteDirectory, RoundTripOp } from './redis-site-directory';

type Labels = Record<string, string>;

export const SITE_METRIC_NAMES = [
  'affinityd_site_redis_up',
  'affinityd_site_redis_round_trips_total',
  'affinityd_site_redis_round_trip_seconds',
  'affinityd_site_redis_errors_total',
  'affinityd_site_cache_hits_total',
  'affinityd_site_cache_misses_total',
  'affinityd_site_claims_total',
  'affinityd_site_local_decisions_total',
  'affinityd_site_changes_total',
  'affinityd_site_conflicts_total',
  'affinityd_site_reconciled_total',
  'affinityd_site_journal_entries',
  'affinityd_site_journal_dropped_total',
  'affinityd_site_foreign_values_total',
  'affinityd_site_redis_downs_total',
] as const;

/** Registers the site directory's metrics; returns the round-trip histogram (already fed by the directory's observer). */
export function registerSiteMetrics(r: Registry, site: RedisSiteDirectory): Histogram<'op'> {
  const c = () => site.counters;
  const counter = (name: string, help: string, labelNames: string[], read: () => [Labels, number][]) =>
    new Counter({
      name, help, labelNames, registers: [r],
      collect() {
        this.reset();
        for (const [l, v] of read()) this.inc(l, v);
      },
    });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name, help, registers: [r],
      collect() {
        this.set(read());
      },
    });
  const one = (v: number): [Labels, number][] => [[{}, v]];
  const by = (o: Record<string, number>, label: string, rename: Record<string, string> = {}): [Labels, number][] =>
    Object.entries(o).map(([k, v]) => [{ [label]: rename[k] ?? k }, v]);

  gauge('affinityd_site_redis_up', '1 while the site directory (Redis) is up; 0 while this site decides alone', () => (site.state.state === 'up' ? 1 : 0));
  counter('affinityd_site_redis_round_trips_total', 'Redis commands answered, by operation', ['op'], () => by(c().roundTrips, 'op'));
  counter('affinityd_site_redis_errors_total', 'Redis commands that failed, by kind', ['kind'], () => by(c().errors, 'kind'));
  counter('affinityd_site_cache_hits_total', 'Lookups answered from the tracked cache', [], () => one(c().cache.hits));
  counter('affinityd_site_cache_misses_total', 'Lookups that went to Redis (claims always do)', [], () => one(c().cache.misses));
  counter('affinityd_site_claims_total', 'Cross-site claims, by outcome', ['outcome'], () => [
    [{ outcome: 'won' }, c().claims.won],
    [{ outcome: 'lost' }, c().claims.lost],
    [{ outcome: 'site_local' }, c().claims.siteLocal],
  ]);
  counter('affinityd_site_local_decisions_total', 'Claims, lookups, moves and withdraws done without Redis, by reason', ['reason'], () => by(c().siteLocal, 'reason'));
  counter('affinityd_site_changes_total', "Changes to clients this node holds, read back after Redis's invalidation, by kind", ['kind'], () =>
    by({ fromOtherSites: c().changes.fromOtherSites, fromOwnSite: c().changes.fromOwnSite, repeated: c().changes.repeated, gone: c().changes.gone, notHeld: c().changes.notHeld }, 'kind', {
      fromOtherSites: 'from_other_sites', fromOwnSite: 'from_own_site', notHeld: 'not_held',
    }),
  );
  counter('affinityd_site_conflicts_total', 'Clients two sites decided differently, by whose record won', ['winner'], () => by(c().conflicts, 'winner'));
  counter('affinityd_site_reconciled_total', 'Records written back after Redis returned, by result', ['result'], () => [
    [{ result: 'written' }, c().reconcile.written],
    [{ result: 'unchanged' }, c().reconcile.unchanged],
    [{ result: 'conflict' }, c().reconcile.conflicts],
    [{ result: 'failed' }, c().reconcile.failed],
    [{ result: 'skipped' }, c().reconcile.skipped],
  ]);
  gauge('affinityd_site_journal_entries', 'Own records waiting to be written back to Redis', () => site.journalSize);
  counter('affinityd_site_journal_dropped_total', 'Own records not kept because the journal was full', [], () => one(c().journal.dropped));
  counter('affinityd_site_foreign_values_total', 'Values in Redis under the key prefix that are not site records (left alone)', [], () => one(c().foreignValues));
  counter('affinityd_site_redis_downs_total', 'Times the site directory went down', [], () => one(c().downs));

  const h = new Histogram({
    name: 'affinityd_site_redis_round_trip_seconds',
    help: 'Time of an answered Redis command, by operation',
    labelNames: ['op'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [r],
  });
  const before = site.observer;
  site.observer = (op: RoundTripOp, seconds: number) => {
    before?.(op, seconds);
    h.observe({ op }, seconds);
  };
  return h;
}
