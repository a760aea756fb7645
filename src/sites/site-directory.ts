// The site directory as the router sees it: the decisions that cross sites
// (docs/sites.md). Nodes of one site agree among themselves by multicast;
// a miss that no node of the site answers comes here. RedisSiteDirectory
// (redis-site-directory.ts) is the implementation over Redis.
//
// Every call answers within the configured budget: when Redis cannot
// decide in time (down, slow, an error), the outcome says `site-local` and
// the site's own decision stands; it is counted, kept in the journal, and
// written back by the version rule when Redis returns (reconcile), where a
// different decision made elsewhere meanwhile is reported as a conflict.
import type { ClientKey } from '../codec/client-key';
import type { Withdraw } from '../codec/cluster-messages';
import type { Entry } from '../codec/messages';
import type { SiteRecord } from './site-record';

export type { SiteRecord } from './site-record';

/** Why Redis did not decide: not asked (down), no answer within the budget, or it answered with an error. */
export type SiteLocalReason = 'down' | 'timeout' | 'error';

export type ClaimOutcome =
  /** This entry is the client's, across sites (its version may have been raised above a withdraw marker: store this one). */
  | { readonly outcome: 'won'; readonly entry: Entry }
  /** Another entry was first: adopt it before connecting. (Always Redis's answer, never the cache's.) */
  | { readonly outcome: 'lost'; readonly winner: Entry; readonly site: string }
  /** Redis did not decide in time: the site's own entry stands (journaled, reconciled later). */
  | { readonly outcome: 'site-local'; readonly entry: Entry; readonly reason: SiteLocalReason };

export type LookupOutcome =
  | { readonly outcome: 'found'; readonly record: SiteRecord; readonly fromCache: boolean }
  | { readonly outcome: 'absent' }
  | { readonly outcome: 'site-local'; readonly reason: SiteLocalReason };

export type StoreOutcome =
  /** Redis holds this record now. */
  | { readonly outcome: 'stored' }
  /** Redis holds a record as new or newer (the version rule): this one was not written. */
  | { readonly outcome: 'superseded'; readonly current: SiteRecord }
  /** Not written now (journaled, reconciled later). */
  | { readonly outcome: 'site-local'; readonly reason: SiteLocalReason };

/** A change another site made to a client this node holds (an entry, a marker, or the key is gone: expired or deleted). */
export interface SiteChange {
  readonly clientKey: ClientKey;
  /** undefined: Redis holds nothing for the client any more. */
  readonly record: SiteRecord | undefined;
}

/**
 * Two different decisions for one client, found when writing back (after
 * Redis was unreachable) or when a claim's answer came after its budget.
 * `resolved` is the record that now wins everywhere (it is in Redis): store
 * it by the version rule; this site's links that are not on its endpoint
 * are live splits to repair.
 */
export interface SiteConflict {
  readonly clientKey: ClientKey;
  /** This site's record. */
  readonly ours: SiteRecord;
  /** The different record Redis held. */
  readonly theirs: SiteRecord;
  readonly resolved: SiteRecord;
  /** ours: this site's record replaced theirs in Redis; theirs: this site adopts theirs. */
  readonly winner: 'ours' | 'theirs';
  readonly why: 'reconcile' | 'late-answer';
}

export type SiteState =
  | { readonly state: 'up'; readonly sinceMs: number }
  | { readonly state: 'down'; readonly reason: string; readonly sinceMs: number };

export interface ReconcileReport {
  /** Records compared with Redis. */
  checked: number;
  /** Written (Redis held nothing or an older record). */
  written: number;
  /** Redis held the same decision. */
  unchanged: number;
  /** Different decisions (also told to onConflict listeners). */
  conflicts: number;
  /** Not compared (Redis failed meanwhile); they stay journaled. */
  failed: number;
  /** Not written, never retried: the record breaks a rule of the codec, or its key holds a value that is not a record (counted, logged). */
  skipped: number;
}

export interface SiteCounters {
  /** Answered commands, by operation. */
  roundTrips: { claim: number; read: number; store: number; probe: number };
  errors: { timeout: number; connection: number; server: number; malformed: number };
  claims: { won: number; lost: number; siteLocal: number; overMarker: number };
  /** Decisions and writes made without Redis, by reason. */
  siteLocal: { down: number; timeout: number; error: number };
  cache: { hits: number; misses: number; flushes: number };
  /**
   * Invalidations received; records read back; told to listeners (fromOtherSites, gone); not told:
   * this site's own (fromOwnSite), the record told last time (repeated), clients not held (notHeld, not read).
   */
  changes: { invalidations: number; fetched: number; fromOtherSites: number; fromOwnSite: number; repeated: number; notHeld: number; gone: number };
  conflicts: { ours: number; theirs: number };
  reconcile: { runs: number; written: number; unchanged: number; conflicts: number; failed: number; skipped: number };
  journal: { added: number; dropped: number };
  /** Records in Redis that are not of this format (never overwritten). */
  foreignValues: number;
  /** Transitions to down, and back up. */
  downs: number;
  ups: number;
  /** Late answers to calls that had already returned site-local. */
  lateAnswers: number;
}

export interface SiteDirectory {
  /** This site's name. */
  readonly site: string;
  readonly state: SiteState;
  readonly counters: SiteCounters;
  /** Own records not yet confirmed by Redis. */
  readonly journalSize: number;
  /** Cross-site first writer wins, one outcome per entry, in order. Rejects with ProtocolError for an entry that breaks a codec rule. */
  claim(entries: readonly Entry[]): Promise<ClaimOutcome[]>;
  lookup(keys: readonly ClientKey[]): Promise<LookupOutcome[]>;
  /** A move: a higher version, by the version rule. */
  publish(entry: Entry): Promise<StoreOutcome>;
  withdraw(w: Withdraw): Promise<StoreOutcome>;
  /** Writes records back by the version rule (and the journal); conflicts also go to onConflict. */
  reconcile(records: Iterable<Entry | Withdraw>): Promise<ReconcileReport>;
  onChange(listener: (c: SiteChange) => void): () => void;
  onConflict(listener: (c: SiteConflict) => void): () => void;
  /** Told of every transition; on 'up' after 'down', reconcile this node's records. */
  onState(listener: (s: SiteState) => void): () => void;
  start(): void;
  close(): Promise<void>;
}
