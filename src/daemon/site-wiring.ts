// Sites (docs/sites.md), wired into a node: the site directory (Redis) from
// the configuration, the router's decision across sites (CrossSite), other
// sites' changes and resolved conflicts stored by the version rule, the
// node's withdrawals written to Redis, and the node's table written back
// whenever the site directory comes up (at start, and after Redis was down
// or restarted empty). What the operator sees (metrics, /readyz warnings,
// `show peers`, `show stats`) comes from src/sites/views.ts and metrics.ts.
import { clientKeyBytes, clientKeyFromBytes } from '../codec/client-key';
import type { Withdraw } from '../codec/cluster-messages';
import type { Entry } from '../codec/messages';
import { CrossSite } from '../directory/cross-site';
import type { Directory } from '../directory/directory';
import type { Withdrawals } from '../directory/maintenance/withdrawals';
import type { Router } from '../directory/router';
import type { LiveLinks } from '../links/live-links';
import { createSiteDirectory } from '../sites/create-site-directory';
import { registerSiteMetrics } from '../sites/metrics';
import type { RedisSiteDirectory } from '../sites/redis-site-directory';
import type { SiteConflict, SiteDirectory, SiteRecord, SiteState } from '../sites/site-directory';
import { siteDirectoryView, siteReadinessWarnings } from '../sites/views';
import type { Logger } from '../util/logger';
import type { Config } from './config';
import type { NodeMetrics } from './metrics';
import type { SiteStats } from './node-stats';

/** Records handed to one reconcile() call: the write-back goes in pieces, the event loop runs between them. */
const WRITE_BACK_CHUNK = 2048;

export interface SiteParts {
  readonly directory: Directory;
  readonly router: Router;
  readonly links: LiveLinks;
  /** Absent in tests of the router alone. */
  readonly withdrawals?: Withdrawals;
}

export class SiteWiring {
  readonly cross: CrossSite;
  /** Write-backs of the whole table: runs, records handed over, and how the last one went. */
  readonly writeBack: SiteStats['writeBack'] = { runs: 0, records: 0 };
  /** Withdraws made here and handed to the site directory, by outcome (`affinityd clear` reports its own). */
  readonly withdraws = { stored: 0, superseded: 0, kept: 0, failed: 0 };
  private readonly withdrawsInFlight = new Set<Promise<void>>();
  private writing?: Promise<void>;
  private again = false;
  private closed = false;
  private readonly off: (() => void)[] = [];

  constructor(
    readonly site: SiteDirectory,
    private readonly parts: SiteParts,
    private readonly log: Logger,
    /** The Redis implementation, for what the operator sees (`show peers`, `show stats`); absent with the in-memory double. */
    private readonly redis?: RedisSiteDirectory,
  ) {
    this.cross = new CrossSite(site);
    parts.router.crossSite = this.cross;
    this.off.push(
      site.onChange((c) => c.record && this.store(c.record, 'change')),
      site.onConflict((c) => this.conflict(c)),
      site.onState((s) => this.state(s)),
    );
    // a withdraw made here (`affinityd clear`, the API) is written to Redis by the version rule
    if (parts.withdrawals) {
      parts.withdrawals.onMadeHere = (x) => {
        const p: Promise<void> = site.withdraw(x).then(
          (o) => {
            // kept: Redis down or slow; journaled here and written when it is back
            if (o.outcome === 'stored') this.withdraws.stored++;
            else if (o.outcome === 'superseded') this.withdraws.superseded++;
            else this.withdraws.kept++;
          },
          (e) => {
            this.withdraws.failed++;
            log.warn({ err: (e as Error).message }, 'sites: a withdraw could not be written to the site directory');
          },
        ).finally(() => this.withdrawsInFlight.delete(p));
        this.withdrawsInFlight.add(p);
      };
    }
  }

  start(): void {
    this.site.start();
  }

  /** Waits until the withdraws handed over so far have an outcome, or timeoutMs; returns how many still have none. */
  async withdrawsSettled(timeoutMs: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.withdrawsInFlight]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    return this.withdrawsInFlight.size;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const f of this.off.splice(0)) f();
    this.parts.router.crossSite = undefined;
    if (this.parts.withdrawals) this.parts.withdrawals.onMadeHere = undefined;
    await this.writing?.catch(() => {});
    await this.site.close();
  }

  view(): SiteStats | undefined {
    return this.redis && { ...siteDirectoryView(this.redis), writeBack: { ...this.writeBack }, crossSite: { ...this.cross.counters } };
  }

  warnings(): string[] {
    return siteReadinessWarnings(this.site);
  }

  /** Another site's change to a client held here, or a resolved conflict: stored by the version rule. */
  private store(r: SiteRecord, why: 'change' | 'conflict'): void {
    if (r.kind === 'withdraw') {
      this.parts.directory.apply(clientKeyBytes(r.withdraw.clientKey), r.withdraw);
      return;
    }
    const e = r.entry;
    const keyBytes = clientKeyBytes(e.clientKey);
    // a conflict's resolution is announced to the site: the other nodes of
    // this site are not told of their own site's writes by Redis
    if (why === 'conflict') this.parts.router.adopt({ ...e, keyBytes });
    else this.parts.directory.apply(keyBytes, e);
  }

  /** Logged by the site directory (once per client and node); stored here by the version rule (live links elsewhere are repaired as splits). */
  private conflict(c: SiteConflict): void {
    this.store(c.resolved, 'conflict');
  }

  private state(s: SiteState): void {
    if (s.state === 'down') return; // logged by the site directory, with its reason
    this.log.info({}, 'sites: the site directory (Redis) is up; writing this node\'s table back');
    this.writeBackTable();
  }

  /** The whole table, entries and markers, written back by the version rule (one run at a time; another up meanwhile runs it again). */
  private writeBackTable(): void {
    if (this.writing) {
      this.again = true;
      return;
    }
    const t0 = performance.now();
    const total = { written: 0, unchanged: 0, conflicts: 0, failed: 0, skipped: 0 };
    this.writeBack.runs++;
    this.writing = (async () => {
      let cursor = 0;
      for (;;) {
        if (this.closed) return;
        const page = this.parts.directory.walk(cursor, WRITE_BACK_CHUNK);
        const records: (Entry | Withdraw)[] = page.records.map((r) => {
          const clientKey = clientKeyFromBytes(r.key);
          const ttlSeconds = Math.max(1, r.expiresSeconds - Math.floor(Date.now() / 1000));
          return r.endpoint ? { clientKey, endpoint: r.endpoint, version: r.version, originNode: r.originNode, ttlSeconds } : { clientKey, version: r.version, originNode: r.originNode, ttlSeconds };
        });
        if (records.length) {
          this.writeBack.records += records.length;
          const rep = await this.site.reconcile(records);
          for (const k of Object.keys(total) as (keyof typeof total)[]) total[k] += rep[k];
          if (rep.failed) break; // Redis failed meanwhile: the next up runs it again
        }
        if (page.done) break;
        cursor = page.cursor;
      }
      this.writeBack.last = { ...total, ms: Math.round(performance.now() - t0) };
      this.log.info(this.writeBack.last, 'sites: table written back to the site directory');
    })()
      .catch((e) => this.log.warn({ err: (e as Error).message }, 'sites: writing the table back failed; it runs again when the site directory is next up'))
      .finally(() => {
        this.writing = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          this.writeBackTable();
        }
      });
  }
}

/** The node's sites, when `sites.enabled`; undefined otherwise. Throws ConfigError for unreadable secrets. */
export function siteWiring(c: Config, parts: SiteParts & { metrics: NodeMetrics }, log: Logger): SiteWiring | undefined {
  const site = createSiteDirectory(c.sites, {
    nodeId: c.node.id,
    entryTtlSeconds: c.directory.entryTtlSeconds,
    withdrawTtlSeconds: c.directory.withdrawTtlSeconds || c.directory.maxTtlSeconds,
    // the clients this node cares about: those it holds, or has live links of
    holds: (keyBytes) => parts.directory.peek(keyBytes) !== undefined || parts.links.countFor(keyBytes) > 0,
    log,
  });
  if (!site) return undefined;
  registerSiteMetrics(parts.metrics.registry, site);
  return new SiteWiring(site, parts, log, site);
}
