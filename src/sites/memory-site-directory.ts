// The test double of the site directory: the same interface and the same
// rules as RedisSiteDirectory (first writer wins, the version rule, claims
// over withdraw markers, the journal written back when "Redis" returns,
// conflicts, other sites' changes) over a shared in-memory store, so the
// router's tests can run several sites in one process without Redis.
// test/sites/double.test.ts runs the same scenarios against both.
// Lifetimes are kept (expiry on read), but there is no budget: a call is
// answered at once or, while the double is down, site-local.
import { type ClientKey, clientKeyBytes } from '../codec/client-key';
import type { Withdraw } from '../codec/cluster-messages';
import type { Entry } from '../codec/messages';
import { Availability } from './availability';
import { newSiteCounters } from './redis-site-directory';
import type {
  ClaimOutcome,
  LookupOutcome,
  ReconcileReport,
  SiteChange,
  SiteConflict,
  SiteCounters,
  SiteDirectory,
  SiteState,
  StoreOutcome,
} from './site-directory';
import { siteKey } from './site-key';
import { beats, encodeRecord, recordClientKey, recordVersion, sameDecision, sameRecord, type SiteRecord, withTtl } from './site-record';

/** The shared "Redis": records with their expiry, and every directory attached to it. */
export class MemorySiteStore {
  readonly records = new Map<string, { record: SiteRecord; expiresAt: number }>();
  readonly directories = new Set<MemorySiteDirectory>();

  constructor(readonly now: () => number = Date.now) {}

  get(key: string): SiteRecord | undefined {
    const r = this.records.get(key);
    if (!r) return undefined;
    const left = r.expiresAt - this.now();
    if (left <= 0) {
      this.records.delete(key);
      return undefined;
    }
    return withTtl(r.record, Math.ceil(left / 1000));
  }

  set(key: string, record: SiteRecord, ttlSeconds: number, writer: MemorySiteDirectory): void {
    this.records.set(key, { record, expiresAt: this.now() + ttlSeconds * 1000 });
    for (const d of this.directories) if (d !== writer) d.invalidated(key, recordClientKey(record));
  }

  /** Everything lost, as a server restarted without persistence. */
  clear(): void {
    this.records.clear();
  }
}

type Claimed = { won: true; record: SiteRecord } | { won: false; current: SiteRecord };
type Stored = { stored: true; replaced?: SiteRecord } | { stored: false; current: SiteRecord };

export class MemorySiteDirectory implements SiteDirectory {
  readonly counters: SiteCounters = newSiteCounters();
  private readonly avail = new Availability(1);
  private readonly journal = new Map<string, { clientKey: ClientKey; record: SiteRecord; mode: 'claim' | 'store' }>();
  private readonly changeListeners = new Set<(c: SiteChange) => void>();
  private readonly conflictListeners = new Set<(c: SiteConflict) => void>();
  private readonly prefix = 'affinityd:';

  constructor(
    private readonly store: MemorySiteStore,
    private readonly o: { site: string; nodeId: number; entryTtlSeconds?: number; withdrawTtlSeconds?: number; holds?: (keyBytes: Buffer) => boolean },
  ) {}

  get site(): string {
    return this.o.site;
  }

  get state(): SiteState {
    return this.avail.state;
  }

  get journalSize(): number {
    return this.journal.size;
  }

  start(): void {
    this.store.directories.add(this);
    this.setUp();
  }

  async close(): Promise<void> {
    this.store.directories.delete(this);
    this.avail.down('closed');
  }

  /** As if Redis became unreachable from this node. */
  setDown(reason = 'unreachable'): void {
    this.avail.down(reason);
  }

  /** As if Redis answered again: the journal is written back, then the directory is up. */
  setUp(): void {
    if (this.avail.isUp) return;
    void this.writeBack([...this.journal].map(([key, j]) => ({ key, ...j }))).then(() => this.avail.up());
  }

  onChange(l: (c: SiteChange) => void): () => void {
    this.changeListeners.add(l);
    return () => this.changeListeners.delete(l);
  }

  onConflict(l: (c: SiteConflict) => void): () => void {
    this.conflictListeners.add(l);
    return () => this.conflictListeners.delete(l);
  }

  onState(l: (s: SiteState) => void): () => void {
    return this.avail.onChange(l);
  }

  async claim(entries: readonly Entry[]): Promise<ClaimOutcome[]> {
    for (const entry of entries) encodeRecord({ kind: 'entry', entry, site: this.site });
    return entries.map((entry) => {
      const key = siteKey(this.prefix, entry.clientKey);
      const record: SiteRecord = { kind: 'entry', entry, site: this.site };
      if (!this.avail.isUp) {
        this.counters.claims.siteLocal++;
        this.counters.siteLocal.down++;
        this.journal.set(key, { clientKey: entry.clientKey, record, mode: this.journal.get(key)?.mode === 'store' ? 'store' : 'claim' });
        return { outcome: 'site-local', entry, reason: 'down' };
      }
      this.counters.roundTrips.claim++;
      const c = this.claimOne(key, record);
      if (c.won) {
        this.counters.claims.won++;
        return { outcome: 'won', entry: (c.record as Extract<SiteRecord, { kind: 'entry' }>).entry };
      }
      this.counters.claims.lost++;
      return { outcome: 'lost', winner: (c.current as Extract<SiteRecord, { kind: 'entry' }>).entry, site: c.current.site };
    });
  }

  // SET NX, or over a withdraw marker one version above it (claim.lua)
  private claimOne(key: string, record: SiteRecord): Claimed {
    for (let ours = record; ; ) {
      const cur = this.store.get(key);
      if (!cur || (cur.kind === 'withdraw' && beats(ours, cur))) {
        this.write(key, ours);
        return { won: true, record: ours };
      }
      if (cur.kind === 'entry') return { won: false, current: cur };
      this.counters.claims.overMarker++;
      ours = { ...(ours as Extract<SiteRecord, { kind: 'entry' }>), entry: { ...(ours as Extract<SiteRecord, { kind: 'entry' }>).entry, version: cur.withdraw.version + 1 } };
    }
  }

  // store.lua
  private storeOne(key: string, record: SiteRecord): Stored {
    const cur = this.store.get(key);
    if (cur && !beats(record, cur)) return { stored: false, current: cur };
    this.write(key, record);
    return { stored: true, replaced: cur };
  }

  private write(key: string, record: SiteRecord): void {
    const ttl = record.kind === 'entry' ? record.entry.ttlSeconds || (this.o.entryTtlSeconds ?? 3600) : record.withdraw.ttlSeconds || (this.o.withdrawTtlSeconds ?? 86400);
    this.store.set(key, record, ttl, this);
  }

  async lookup(keys: readonly ClientKey[]): Promise<LookupOutcome[]> {
    return keys.map((k) => {
      if (!this.avail.isUp) {
        this.counters.siteLocal.down++;
        return { outcome: 'site-local', reason: 'down' };
      }
      this.counters.roundTrips.read++;
      const r = this.store.get(siteKey(this.prefix, k));
      return r ? { outcome: 'found', record: r, fromCache: false } : { outcome: 'absent' };
    });
  }

  publish(entry: Entry): Promise<StoreOutcome> {
    return this.storeRecord({ kind: 'entry', entry, site: this.site });
  }

  withdraw(w: Withdraw): Promise<StoreOutcome> {
    return this.storeRecord({ kind: 'withdraw', withdraw: w, site: this.site });
  }

  private async storeRecord(record: SiteRecord): Promise<StoreOutcome> {
    encodeRecord(record);
    const clientKey = recordClientKey(record);
    const key = siteKey(this.prefix, clientKey);
    if (!this.avail.isUp) {
      this.counters.siteLocal.down++;
      this.journal.set(key, { clientKey, record, mode: 'store' });
      return { outcome: 'site-local', reason: 'down' };
    }
    this.counters.roundTrips.store++;
    const s = this.storeOne(key, record);
    return s.stored ? { outcome: 'stored' } : { outcome: 'superseded', current: s.current };
  }

  async reconcile(records: Iterable<Entry | Withdraw>): Promise<ReconcileReport> {
    const items = [...records].map((r) => {
      const record: SiteRecord = 'endpoint' in r ? { kind: 'entry', entry: r, site: this.site } : { kind: 'withdraw', withdraw: r, site: this.site };
      const clientKey = recordClientKey(record);
      return { key: siteKey(this.prefix, clientKey), clientKey, record, mode: 'store' as const };
    });
    if (!this.avail.isUp) {
      this.counters.reconcile.failed += items.length;
      return { checked: 0, written: 0, unchanged: 0, conflicts: 0, failed: items.length, skipped: 0 };
    }
    const journaled = [...this.journal].map(([key, j]) => ({ key, ...j }));
    const inJournal = new Set(journaled.map((j) => j.key));
    return this.writeBack([...journaled, ...items.filter((it) => !inJournal.has(it.key))]);
  }

  private async writeBack(items: { key: string; clientKey: ClientKey; record: SiteRecord; mode: 'claim' | 'store' }[]): Promise<ReconcileReport> {
    const report: ReconcileReport = { checked: 0, written: 0, unchanged: 0, conflicts: 0, failed: 0, skipped: 0 };
    this.counters.reconcile.runs++;
    for (const it of items) {
      report.checked++;
      if (this.journal.get(it.key)?.record === it.record) this.journal.delete(it.key);
      const ours = it.record;
      if (it.mode === 'claim') {
        const c = this.claimOne(it.key, ours);
        if (c.won) {
          if (c.record !== ours) this.emit(this.changeListeners, { clientKey: it.clientKey, record: c.record });
          report.written++;
        } else if (sameDecision(c.current, ours)) report.unchanged++;
        else {
          let resolved = c.current;
          if (c.current.kind === 'entry' && beats(ours, c.current)) {
            resolved = { kind: 'entry', entry: { ...c.current.entry, version: Math.max(recordVersion(ours).version, c.current.entry.version) + 1, originNode: this.o.nodeId }, site: this.site };
            this.storeOne(it.key, resolved);
          }
          this.conflict({ clientKey: it.clientKey, ours, theirs: c.current, resolved, winner: 'theirs', why: 'reconcile' });
          report.conflicts++;
        }
        continue;
      }
      const s = this.storeOne(it.key, ours);
      if (s.stored) {
        if (s.replaced && s.replaced.site !== this.site && !sameDecision(s.replaced, ours)) {
          this.conflict({ clientKey: it.clientKey, ours, theirs: s.replaced, resolved: ours, winner: 'ours', why: 'reconcile' });
          report.conflicts++;
        } else report.written++;
      } else if (sameRecord(s.current, ours) || sameDecision(s.current, ours)) report.unchanged++;
      else {
        this.conflict({ clientKey: it.clientKey, ours, theirs: s.current, resolved: s.current, winner: 'theirs', why: 'reconcile' });
        report.conflicts++;
      }
    }
    const c = this.counters.reconcile;
    c.written += report.written;
    c.unchanged += report.unchanged;
    c.conflicts += report.conflicts;
    return report;
  }

  /** The store tells the directory a key changed (key tracking). */
  invalidated(key: string, clientKey: ClientKey): void {
    this.counters.changes.invalidations++;
    if (!this.avail.isUp) return;
    if (this.o.holds && !this.o.holds(clientKeyBytes(clientKey))) return void this.counters.changes.notHeld++;
    const record = this.store.get(key);
    this.counters.changes.fetched++;
    if (!record) this.counters.changes.gone++;
    else if (record.site === this.site) return void this.counters.changes.fromOwnSite++;
    else this.counters.changes.fromOtherSites++;
    this.emit(this.changeListeners, { clientKey, record });
  }

  private conflict(c: SiteConflict): void {
    this.counters.conflicts[c.winner]++;
    this.emit(this.conflictListeners, c);
  }

  private emit<T>(listeners: Set<(x: T) => void>, x: T): void {
    for (const l of listeners) l(x);
  }
}
