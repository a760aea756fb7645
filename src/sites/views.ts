// What the operator sees of the site directory: the `/readyz` warnings, the
// section `affinityd show peers` prints after the peers, and its JSON.
//
// Redis being down never makes a node unready: the site keeps deciding on
// its own (that is the design), and taking every appliance of a site out of
// its load balancer at once because a shared database is down would turn a
// degraded mode into an outage. /readyz stays 200 and says it in `warnings`.
import type { RedisSiteDirectory } from './redis-site-directory';
import type { SiteCounters, SiteDirectory } from './site-directory';

export interface SiteDirectoryView {
  site: string;
  mode: 'standalone' | 'cluster';
  state: 'up' | 'down';
  /** Why it is down (absent while up). */
  reason?: string;
  /** How long it has been in this state. */
  forMs: number;
  servers: { address: string; ready: boolean }[];
  budgetMs: number;
  /** Own records waiting to be written back. */
  journal: number;
  cache: number;
  lastFailure?: { reason: string; msAgo: number };
  roundTrips: SiteCounters['roundTrips'];
  errors: SiteCounters['errors'];
  siteLocal: SiteCounters['siteLocal'];
  claims: SiteCounters['claims'];
  conflicts: SiteCounters['conflicts'];
}

export function siteDirectoryView(d: RedisSiteDirectory, now = Date.now()): SiteDirectoryView {
  const s = d.state;
  const c = d.counters;
  return {
    site: d.site,
    mode: d.options.connection.mode,
    state: s.state,
    ...(s.state === 'down' ? { reason: s.reason } : {}),
    forMs: Math.max(0, now - s.sinceMs),
    servers: d.servers(),
    budgetMs: d.options.budgetMs,
    journal: d.journalSize,
    cache: d.cacheSize,
    ...(d.lastFailure ? { lastFailure: { reason: d.lastFailure.reason, msAgo: Math.max(0, now - d.lastFailure.atMs) } } : {}),
    roundTrips: { ...c.roundTrips },
    errors: { ...c.errors },
    siteLocal: { ...c.siteLocal },
    claims: { ...c.claims },
    conflicts: { ...c.conflicts },
  };
}

/** Lines for the `warnings` of /readyz (empty when all is well). */
export function siteReadinessWarnings(d: SiteDirectory | undefined, now = Date.now()): string[] {
  if (!d) return [];
  const out: string[] = [];
  const s = d.state;
  if (s.state === 'down') {
    out.push(`site directory (Redis) down for ${((now - s.sinceMs) / 1000).toFixed(1)} s: ${s.reason}; site ${d.site} decides alone`);
  }
  if (d.journalSize > 0) out.push(`site directory: ${d.journalSize} own record(s) waiting to be written back to Redis`);
  if (d.counters.journal.dropped > 0) out.push(`site directory: ${d.counters.journal.dropped} own record(s) did not fit in the journal; they are written back with the whole table when Redis returns`);
  return out;
}

/** The text `affinityd show peers` prints after the peers table. */
export function formatSiteDirectory(v: SiteDirectoryView): string {
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;
  const lines = [
    `site directory: site ${v.site}, Redis ${v.mode}, ${v.state.toUpperCase()} for ${secs(v.forMs)}${v.reason ? `: ${v.reason}` : ''}`,
    ...v.servers.map((s) => `  ${s.address}  ${s.ready ? 'connected' : 'not connected'}`),
    `  budget ${v.budgetMs} ms; round trips ${v.roundTrips.claim + v.roundTrips.read + v.roundTrips.store} (+${v.roundTrips.probe} probes); ` +
      `errors: ${v.errors.timeout} time-outs, ${v.errors.connection} connection, ${v.errors.server} server, ${v.errors.malformed} foreign values`,
    `  claims: ${v.claims.won} won, ${v.claims.lost} lost, ${v.claims.siteLocal} site-local; ` +
      `decided without Redis: ${v.siteLocal.down} down, ${v.siteLocal.timeout} time-out, ${v.siteLocal.error} error; journal ${v.journal}; ` +
      `conflicts ${v.conflicts.ours + v.conflicts.theirs}`,
  ];
  if (v.lastFailure && v.state === 'down') lines.push(`  last connection failure ${secs(v.lastFailure.msAgo)} ago: ${v.lastFailure.reason}`);
  return lines.join('\n') + '\n';
}
