// Site directories for the tests: options with short timings, entries and
// markers for named clients, and waiting for a directory's state.
import { clientKeyFromBytes, formatClientKey, parseClientKey } from '../../src/codec/client-key';
import type { Withdraw } from '../../src/codec/cluster-messages';
import type { Entry } from '../../src/codec/messages';
import { RedisSiteDirectory, type RedisSiteDirectoryOptions } from '../../src/sites/redis-site-directory';
import type { ClaimOutcome, ReconcileReport, SiteConflict } from '../../src/sites/site-directory';
import { beats, recordClientKey, type SiteRecord } from '../../src/sites/site-record';
import type { SiteSecrets } from '../../src/sites/site-secrets';

/** The ACL rule docs/sites.md gives an operator (keep the two the same). */
export const SITE_ACL = '~affinityd:* resetchannels -@all +ping +hello +client|setname +client|tracking +evalsha +eval +script|load +get +set +pttl +cluster|slots';

export const ENDPOINTS = {
  'lns-a': { name: 'lns-a', address: '198.51.100.1', port: 1701 },
  'lns-b': { name: 'lns-b', address: '198.51.100.2', port: 1701 },
  'lns-c': { name: 'lns-c', address: '198.51.100.3', port: 1701 },
} as const;
export type EndpointName = keyof typeof ENDPOINTS;

export const clientOf = (i: number | string, prefix = 'c'): string => `2:10.0.${(Number(i) >> 8) & 255}.${Number(i) & 255}/${prefix}-${i}@sites.example`;

export function entry(client: string, ep: EndpointName, version = 1, originNode = 1, ttlSeconds = 600): Entry {
  return { clientKey: parseClientKey(client), endpoint: ENDPOINTS[ep], version, originNode, ttlSeconds };
}

export function marker(client: string, version: number, originNode = 1, ttlSeconds = 600): Withdraw {
  return { clientKey: parseClientKey(client), version, originNode, ttlSeconds };
}

export interface TestSiteOptions {
  site: string;
  nodeId: number;
  nodes: { host: string; port: number }[];
  mode?: 'standalone' | 'cluster';
  budgetMs?: number;
  username?: string;
  secrets?: SiteSecrets;
  prefix?: string;
  retry?: { minMs: number; maxMs: number };
  failuresBeforeDown?: number;
  heartbeatMs?: number;
  holds?: (k: Buffer) => boolean;
  journalCapacity?: number;
}

export function siteOptions(t: TestSiteOptions): RedisSiteDirectoryOptions {
  const retry = t.retry ?? { minMs: 50, maxMs: 400 };
  return {
    site: t.site,
    nodeId: t.nodeId,
    connection: {
      mode: t.mode ?? 'standalone',
      nodes: t.nodes,
      username: t.username,
      secrets: t.secrets ?? {},
      keyPrefix: t.prefix ?? 'affinityd:',
      connectTimeoutMs: 1000,
      retry,
      clientName: `test-${t.site}-${t.nodeId}`,
    },
    budgetMs: t.budgetMs ?? 250,
    failuresBeforeDown: t.failuresBeforeDown ?? 2,
    heartbeatMs: t.heartbeatMs ?? 200,
    retry,
    cacheCapacity: 10_000,
    journalCapacity: t.journalCapacity ?? 100_000,
    entryTtlSeconds: 600,
    withdrawTtlSeconds: 600,
    holds: t.holds,
  };
}

/** A started directory, resolved when it is up (or rejected after timeoutMs). */
export async function startSite(t: TestSiteOptions, timeoutMs = 15_000): Promise<RedisSiteDirectory> {
  const d = new RedisSiteDirectory(siteOptions(t));
  d.start();
  await waitState(d, 'up', timeoutMs);
  return d;
}

export function waitState(d: RedisSiteDirectory, state: 'up' | 'down', timeoutMs = 15_000): Promise<void> {
  if (d.state.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`site ${d.site} not ${state} within ${timeoutMs} ms: ${JSON.stringify(d.state)}`));
    }, timeoutMs);
    const off = d.onState((s) => {
      if (s.state !== state) return;
      clearTimeout(t);
      off();
      resolve();
    });
  });
}

/** Resolves when cond() holds, checking every 20 ms; rejects after timeoutMs. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * What the router will do with a site directory, in miniature: a node's
 * table (one record per client, the version rule), fed by the outcomes of
 * its calls, by other sites' changes and by resolved conflicts, and written
 * back whole when Redis returns. Tests check it against Redis.
 */
export class NodeTable {
  readonly records = new Map<string, SiteRecord>();
  readonly conflicts: SiteConflict[] = [];
  readonly reconciles: ReconcileReport[] = [];
  private wasDown = false;

  constructor(readonly d: RedisSiteDirectory) {
    d.onChange((c) => c.record && this.apply(c.record));
    d.onConflict((c) => {
      this.conflicts.push(c);
      this.apply(c.resolved);
    });
    d.onState((s) => {
      if (s.state === 'down') this.wasDown = true;
      else if (this.wasDown) {
        this.wasDown = false;
        void d.reconcile(this.own()).then((r) => this.reconciles.push(r));
      }
    });
  }

  /** For RedisSiteDirectoryOptions.holds. */
  static holds(table: () => NodeTable | undefined): (k: Buffer) => boolean {
    return (k) => !!table()?.records.has(formatClientKey(clientKeyFromBytes(k)));
  }

  /** The version rule. */
  apply(r: SiteRecord): void {
    const c = formatClientKey(recordClientKey(r));
    const held = this.records.get(c);
    if (!held || beats(r, held)) this.records.set(c, r);
  }

  /** Stores what a claim decided; returns the endpoint the call connects to. */
  claimed(o: ClaimOutcome, site: string): string {
    const e = o.outcome === 'won' ? o.entry : o.outcome === 'lost' ? o.winner : o.entry;
    this.apply({ kind: 'entry', entry: e, site });
    return e.endpoint.name;
  }

  own(): (Entry | Withdraw)[] {
    return [...this.records.values()].map((r) => (r.kind === 'entry' ? r.entry : r.withdraw));
  }

  endpointOf(client: string): string | undefined {
    const r = this.records.get(client);
    return r?.kind === 'entry' ? r.entry.endpoint.name : undefined;
  }
}

/**
 * How late a 5-ms interval timer runs while a test runs: the event loop's
 * own delay in the same run, which bounds how late any budget timer can be
 * declared. stop() returns the worst lateness in ms.
 */
export function timerLateness(): { stop(): number } {
  let worst = 0;
  let expected = performance.now() + 5;
  const t = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - expected);
    expected = now + 5;
  }, 5);
  return {
    stop() {
      clearInterval(t);
      return worst;
    },
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
