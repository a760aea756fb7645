// The site directory over Redis (docs/sites.md): cross-site first writer
// wins, moves and withdraws by the version rule, other sites' changes told
// back through key tracking, and the failure behaviour: no call waits for
// Redis longer than the budget; without Redis the site decides alone
// (counted, journaled) and writes back when Redis returns.
//
// I/O is the RedisConnection; the rules are in scripts.ts (server side),
// site-record.ts (format, version rule), availability.ts (up/down),
// journal.ts and site-cache.ts.
import { ClientClosedError, ClientOfflineError } from '@redis/client';

import { type ClientKey, clientKeyBytes, formatClientKey } from '../codec/client-key';
import type { Withdraw } from '../codec/cluster-messages';
import { ProtocolError } from '../codec/errors';
import type { Entry } from '../codec/messages';
import { Availability } from './availability';
import { type Backoff, backoffMs } from './backoff';
import { Journal, type JournalItem, type JournalMode } from './journal';
import { describeFailure, failureKind, RedisConnection, type RedisConnectionOptions } from './redis-connection';
import { CLAIM, READ, SCRIPTS, STORE } from './scripts';
import { SiteCache } from './site-cache';
import type {
  ClaimOutcome,
  LookupOutcome,
  ReconcileReport,
  SiteChange,
  SiteConflict,
  SiteCounters,
  SiteDirectory,
  SiteLocalReason,
  SiteState,
  StoreOutcome,
} from './site-directory';
import { clientKeyOfSiteKey, siteKey } from './site-key';
import { beats, decodeRecordFor, encodeRecord, recordClientKey, recordVersion, sameDecision, sameRecord, type SiteRecord } from './site-record';

/** pino-compatible. */
export interface SiteLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export type RoundTripOp = 'claim' | 'read' | 'store' | 'probe';

export interface RedisSiteDirectoryOptions {
  /** This site's name (site-record.ts rule). */
  readonly site: string;
  /** This node's id: the origin of records it writes when it adopts another site's decision. */
  readonly nodeId: number;
  readonly connection: RedisConnectionOptions;
  /** No call waits for Redis longer than this. */
  readonly budgetMs: number;
  readonly failuresBeforeDown: number;
  /** Probe interval while up. */
  readonly heartbeatMs: number;
  /** Probe back-off while down. */
  readonly retry: Backoff;
  readonly cacheCapacity: number;
  readonly journalCapacity: number;
  /** Lifetime of entries given with ttlSeconds 0. */
  readonly entryTtlSeconds: number;
  /** Lifetime of withdraw markers given with ttlSeconds 0. */
  readonly withdrawTtlSeconds: number;
  /**
   * Does this node care about a change to this client (canonical key octets)?
   * Changes to clients it does not hold are not fetched. Default: clients in
   * this directory's cache.
   */
  readonly holds?: (keyBytes: Buffer) => boolean;
  readonly log?: SiteLogger;
}

/** A value in Redis that is not a record of this format (never overwritten; counted). */
class ForeignValueError extends Error {
  constructor(readonly key: string, why: string) {
    super(`the value of ${key} is not a site record: ${why}`);
    this.name = 'ForeignValueError';
  }
}

const TIMEOUT = Symbol('timeout');
type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

type Stored = { stored: true; replaced?: SiteRecord } | { stored: false; current: SiteRecord };
type Claimed = { won: true; record: SiteRecord } | { won: false; current: SiteRecord };

interface Item {
  readonly key: string;
  readonly clientKey: ClientKey;
  readonly record: SiteRecord;
  readonly mode: JournalMode;
  readonly journal?: JournalItem;
}

const MAX_U32 = 0xffffffff;
/** Records written back at once (pipelined). */
const RECONCILE_BATCH = 256;

export function newSiteCounters(): SiteCounters {
  return {
    roundTrips: { claim: 0, read: 0, store: 0, probe: 0 },
    errors: { timeout: 0, connection: 0, server: 0, malformed: 0 },
    claims: { won: 0, lost: 0, siteLocal: 0, overMarker: 0 },
    siteLocal: { down: 0, timeout: 0, error: 0 },
    cache: { hits: 0, misses: 0, flushes: 0 },
    changes: { invalidations: 0, fetched: 0, fromOtherSites: 0, fromOwnSite: 0, repeated: 0, notHeld: 0, gone: 0 },
    conflicts: { ours: 0, theirs: 0 },
    reconcile: { runs: 0, written: 0, unchanged: 0, conflicts: 0, failed: 0, skipped: 0 },
    journal: { added: 0, dropped: 0 },
    foreignValues: 0,
    downs: 0,
    ups: 0,
    lateAnswers: 0,
  };
}

export class RedisSiteDirectory implements SiteDirectory {
  readonly counters: SiteCounters = newSiteCounters();
  /** Told of every answered round trip (metrics: a histogram). */
  observer?: (op: RoundTripOp, seconds: number) => void;
  private readonly conn: RedisConnection;
  private readonly avail: Availability;
  private readonly cache: SiteCache;
  private readonly journal: Journal;
  private readonly prefix: string;
  private readonly changeListeners = new Set<(c: SiteChange) => void>();
  private readonly conflictListeners = new Set<(c: SiteConflict) => void>();
  // Invalidations that arrive while a command on the key is in flight make
  // its answer unfit for the cache (it may predate the change).
  private readonly inflight = new Map<string, number>();
  private readonly invalidatedDuring = new Map<string, number>();
  private gapEpoch = 0;
  private readonly toFetch = new Map<string, { clientKey: ClientKey; previous?: SiteRecord }>();
  private fetchScheduled = false;
  private probeTimer?: NodeJS.Timeout;
  private probing = false;
  private downAttempt = 0;
  private closed = false;
  private started = false;
  /** The last connection-level failure, for the operator. */
  lastFailure?: { reason: string; atMs: number };

  constructor(private readonly o: RedisSiteDirectoryOptions) {
    this.prefix = o.connection.keyPrefix;
    this.avail = new Availability(o.failuresBeforeDown);
    this.cache = new SiteCache(o.cacheCapacity);
    this.journal = new Journal(o.journalCapacity);
    this.conn = new RedisConnection(o.connection, {
      invalidated: (k) => this.invalidated(k),
      gap: (why) => this.gap(why),
      failed: (reason) => this.connectionFailed(reason),
      ready: () => this.probeSoon(0),
    });
    this.avail.onChange((s) => {
      if (s.state === 'down') {
        this.counters.downs++;
        this.o.log?.warn({ site: this.site, reason: s.reason }, 'site directory (Redis) down: this site decides alone');
      } else {
        this.counters.ups++;
        this.o.log?.info({ site: this.site }, 'site directory (Redis) up');
      }
      this.probeSoon(s.state === 'up' ? this.o.heartbeatMs : backoffMs(this.o.retry, 0));
    });
  }

  get site(): string {
    return this.o.site;
  }

  get state(): SiteState {
    return this.avail.state;
  }

  get journalSize(): number {
    return this.journal.size;
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  get options(): RedisSiteDirectoryOptions {
    return this.o;
  }

  /** The Redis servers (every master of a cluster) and whether each connection is ready. */
  servers(): { address: string; ready: boolean }[] {
    return this.conn.servers();
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

  start(): void {
    if (this.started) return;
    this.started = true;
    this.conn.start();
    // the first probe when the connection is ready (its callback); this one
    // only if it never says so: a probe before the first connection attempt
    // ends would count a connection error that did not happen
    this.probeSoon(this.o.connection.connectTimeoutMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.probeTimer);
    this.conn.close();
  }

  // ---- claims ----

  /** Rejects with ProtocolError (nothing sent, nothing journaled) if an entry breaks a rule of the codec. */
  async claim(entries: readonly Entry[]): Promise<ClaimOutcome[]> {
    for (const entry of entries) encodeRecord({ kind: 'entry', entry, site: this.site });
    const out: ClaimOutcome[] = new Array(entries.length);
    // always Redis, never the cache: a cached record may be older than Redis by an invalidation in
    // flight (a withdraw, a move), and a claim is the decision itself
    const asked = entries.map((entry, i) => ({ i, key: siteKey(this.prefix, entry.clientKey), entry }));
    if (asked.length === 0) return out;
    if (!this.avail.isUp || this.closed) {
      for (const t of asked) out[t.i] = this.siteLocalClaim(t.key, t.entry, 'down').outcome;
      return out;
    }
    const ps = asked.map((t) => this.claimOne(t.key, { kind: 'entry', entry: t.entry, site: this.site } as const));
    const results = await this.inBudget(ps);
    this.settle(results, (r, j) => {
      const t = asked[j];
      if (r === TIMEOUT) {
        const local = this.siteLocalClaim(t.key, t.entry, 'timeout');
        out[t.i] = local.outcome;
        ps[j].then(
          (c) => this.lateClaim(t.key, local.record, c),
          () => {},
        );
      } else if (r.ok) {
        const c = r.value;
        if (c.won) {
          this.counters.claims.won++;
          out[t.i] = { outcome: 'won', entry: (c.record as Extract<SiteRecord, { kind: 'entry' }>).entry };
        } else {
          this.counters.claims.lost++;
          out[t.i] = { outcome: 'lost', winner: (c.current as Extract<SiteRecord, { kind: 'entry' }>).entry, site: c.current.site };
        }
      } else {
        out[t.i] = this.siteLocalClaim(t.key, t.entry, 'error').outcome;
      }
    });
    return out;
  }

  private siteLocalClaim(key: string, entry: Entry, reason: SiteLocalReason): { outcome: ClaimOutcome; record: SiteRecord } {
    this.counters.claims.siteLocal++;
    this.counters.siteLocal[reason]++;
    const record: SiteRecord = { kind: 'entry', entry, site: this.site };
    this.keep(key, entry.clientKey, record, 'claim');
    return { outcome: { outcome: 'site-local', entry, reason }, record };
  }

  /**
   * First writer wins, on one key: `SET NX GET PX`, with PTTL pipelined.
   * Returns the record stored or the entry that was first. A withdraw
   * marker in the way is claimed over with the CLAIM script, the version
   * raised above the marker's if need be.
   */
  private async claimOne(key: string, record: SiteRecord): Promise<Claimed> {
    if (record.kind !== 'entry') throw new Error('only entries are claimed');
    const px = this.px(record.entry.ttlSeconds, this.o.entryTtlSeconds);
    const { reply, fresh } = await this.run('claim', key, () => this.conn.setNxGet(key, encodeRecord(record), px));
    const [prev, pttl] = reply;
    if (!prev) {
      this.remember(key, record, px, fresh);
      return { won: true, record };
    }
    const current = this.current(key, record.entry.clientKey, 0, prev, pttl);
    this.remember(key, current, pttl, fresh);
    if (current.kind === 'entry') return { won: false, current };
    return this.claimOverMarker(key, record, current);
  }

  /** The key holds a withdraw marker: claim just above it (the script stores only over a marker it beats). */
  private async claimOverMarker(key: string, record: Extract<SiteRecord, { kind: 'entry' }>, marker: SiteRecord, attempts = 3): Promise<Claimed> {
    const v = recordVersion(marker).version;
    if (attempts <= 0 || v >= MAX_U32) throw new ForeignValueError(key, `cannot claim above withdraw marker v${v}`);
    const ours = beats(record, marker) ? record : { ...record, entry: { ...record.entry, version: v + 1 } };
    this.counters.claims.overMarker++;
    const px = this.px(ours.entry.ttlSeconds, this.o.entryTtlSeconds);
    const { reply, fresh } = await this.run('claim', key, () => this.conn.script(CLAIM, key, [encodeRecord(ours), String(px)]));
    const [code, cur, pttl] = reply as [number, Buffer | null, number];
    if (code === 1) {
      this.remember(key, ours, px, fresh);
      return { won: true, record: ours };
    }
    const current = this.current(key, ours.entry.clientKey, code, cur, pttl);
    this.remember(key, current, pttl, fresh);
    if (current.kind === 'entry') return { won: false, current };
    return this.claimOverMarker(key, ours, current, attempts - 1);
  }

  /** The answer to a claim that had already returned site-local. */
  private lateClaim(key: string, ours: SiteRecord, c: Claimed): void {
    this.counters.lateAnswers++;
    if (!this.journal.pending(key, ours)) return; // written back meanwhile: the reconciliation decided
    this.journal.remove(key, ours);
    if (c.won) {
      // claimed above another site's withdraw marker: the site must take the raised version
      if (c.record !== ours) this.emit(this.changeListeners, { clientKey: recordClientKey(ours), record: c.record });
      return;
    }
    if (sameDecision(c.current, ours)) return;
    void this.resolveAgainstFirst(key, ours, c.current, 'late-answer').catch((e) => this.failure(e));
  }

  /**
   * Another site's entry was first: this site adopts it. If this site's
   * record beats it by the version rule, the adoption is a new record (the
   * winner's endpoint, a version above both, this node as origin) written to
   * Redis, so that it wins on every node of every site.
   */
  private async resolveAgainstFirst(key: string, ours: SiteRecord, first: SiteRecord, why: SiteConflict['why']): Promise<void> {
    let resolved = first;
    if (first.kind === 'entry' && beats(ours, first)) {
      const version = Math.max(recordVersion(ours).version, first.entry.version) + 1;
      if (version > MAX_U32) throw new ForeignValueError(key, 'version space exhausted');
      const adoption: SiteRecord = { kind: 'entry', entry: { ...first.entry, version, originNode: this.o.nodeId }, site: this.site };
      const s = await this.storeOne(key, adoption);
      resolved = s.stored ? adoption : s.current;
    }
    this.conflict({ clientKey: recordClientKey(ours), ours, theirs: first, resolved, winner: 'theirs', why });
  }

  // ---- lookups ----

  async lookup(keys: readonly ClientKey[]): Promise<LookupOutcome[]> {
    const out: LookupOutcome[] = new Array(keys.length);
    const asked: { i: number; key: string; clientKey: ClientKey }[] = [];
    const up = this.avail.isUp && !this.closed;
    keys.forEach((clientKey, i) => {
      const key = siteKey(this.prefix, clientKey);
      if (!up) {
        this.counters.siteLocal.down++;
        out[i] = { outcome: 'site-local', reason: 'down' };
        return;
      }
      const c = this.cache.get(key);
      if (c) {
        this.counters.cache.hits++;
        out[i] = { outcome: 'found', record: c, fromCache: true };
        return;
      }
      this.counters.cache.misses++;
      asked.push({ i, key, clientKey });
    });
    if (asked.length === 0) return out;
    const results = await this.inBudget(asked.map((t) => this.readOne(t.key, t.clientKey)));
    this.settle(results, (r, j) => {
      const t = asked[j];
      if (r === TIMEOUT) {
        this.counters.siteLocal.timeout++;
        out[t.i] = { outcome: 'site-local', reason: 'timeout' };
      } else if (r.ok) {
        out[t.i] = r.value ? { outcome: 'found', record: r.value, fromCache: false } : { outcome: 'absent' };
      } else {
        this.counters.siteLocal.error++;
        out[t.i] = { outcome: 'site-local', reason: 'error' };
      }
    });
    return out;
  }

  private async readOne(key: string, clientKey: ClientKey): Promise<SiteRecord | undefined> {
    const { reply, fresh } = await this.run('read', key, () => this.conn.script(READ, key, []));
    const [cur, pttl] = reply as [Buffer?, number?];
    if (!cur) return undefined;
    const record = this.current(key, clientKey, 0, cur, pttl ?? 0);
    this.remember(key, record, pttl ?? 0, fresh);
    return record;
  }

  // ---- moves and withdraws ----

  publish(entry: Entry): Promise<StoreOutcome> {
    return this.store({ kind: 'entry', entry, site: this.site });
  }

  withdraw(w: Withdraw): Promise<StoreOutcome> {
    return this.store({ kind: 'withdraw', withdraw: w, site: this.site });
  }

  /** Rejects with ProtocolError (nothing sent, nothing journaled) if the record breaks a rule of the codec. */
  private async store(record: SiteRecord): Promise<StoreOutcome> {
    encodeRecord(record);
    const clientKey = recordClientKey(record);
    const key = siteKey(this.prefix, clientKey);
    if (!this.avail.isUp || this.closed) {
      this.counters.siteLocal.down++;
      this.keep(key, clientKey, record, 'store');
      return { outcome: 'site-local', reason: 'down' };
    }
    const p = this.storeOne(key, record);
    const [r] = await this.inBudget([p]);
    let out: StoreOutcome;
    this.settle([r], (x) => {
      if (x === TIMEOUT) {
        this.counters.siteLocal.timeout++;
        this.keep(key, clientKey, record, 'store');
        p.then(
          (s) => this.lateStore(key, record, s),
          () => {},
        );
        out = { outcome: 'site-local', reason: 'timeout' };
      } else if (x.ok) {
        out = x.value.stored ? { outcome: 'stored' } : { outcome: 'superseded', current: x.value.current };
      } else {
        this.counters.siteLocal.error++;
        this.keep(key, clientKey, record, 'store');
        out = { outcome: 'site-local', reason: 'error' };
      }
    });
    return out!;
  }

  private async storeOne(key: string, record: SiteRecord): Promise<Stored> {
    const ttl = record.kind === 'entry' ? record.entry.ttlSeconds : record.withdraw.ttlSeconds;
    const px = this.px(ttl, record.kind === 'entry' ? this.o.entryTtlSeconds : this.o.withdrawTtlSeconds);
    const clientKey = recordClientKey(record);
    const { reply, fresh } = await this.run('store', key, () => this.conn.script(STORE, key, [encodeRecord(record), String(px)]));
    const [code, cur, pttl] = reply as [number, Buffer | null, number];
    if (code === 1) {
      this.remember(key, record, px, fresh);
      let replaced: SiteRecord | undefined;
      if (cur) {
        try {
          replaced = decodeRecordFor(clientKey, cur);
        } catch {
          /* it beat us by the header; its body is not ours to judge */
        }
      }
      return { stored: true, replaced };
    }
    const current = this.current(key, clientKey, code, cur, pttl);
    this.remember(key, current, pttl, fresh);
    return { stored: false, current };
  }

  private lateStore(key: string, ours: SiteRecord, s: Stored): void {
    this.counters.lateAnswers++;
    if (!this.journal.pending(key, ours)) return;
    this.journal.remove(key, ours);
    if (!s.stored && !sameDecision(s.current, ours)) {
      this.conflict({ clientKey: recordClientKey(ours), ours, theirs: s.current, resolved: s.current, winner: 'theirs', why: 'late-answer' });
    }
  }

  // ---- reconciliation ----

  async reconcile(records: Iterable<Entry | Withdraw>): Promise<ReconcileReport> {
    const items: Item[] = [];
    for (const r of records) {
      const record: SiteRecord = 'endpoint' in r ? { kind: 'entry', entry: r, site: this.site } : { kind: 'withdraw', withdraw: r, site: this.site };
      const clientKey = recordClientKey(record);
      items.push({ key: siteKey(this.prefix, clientKey), clientKey, record, mode: 'store' });
    }
    if (!this.avail.isUp || this.closed) {
      this.counters.reconcile.runs++;
      this.counters.reconcile.failed += items.length;
      return { checked: 0, written: 0, unchanged: 0, conflicts: 0, failed: items.length, skipped: 0 };
    }
    // a client in the journal is written back from there (a claim keeps first-writer-wins)
    const journaled = this.journalItems();
    const inJournal = new Set(journaled.map((j) => j.key));
    return this.writeBack([...journaled, ...items.filter((it) => !inJournal.has(it.key))]);
  }

  private journalItems(): Item[] {
    return this.journal.takeForReconcile().map((j) => ({ key: j.key, clientKey: j.clientKey, record: j.record, mode: j.mode, journal: j }));
  }

  private async writeBack(items: Item[]): Promise<ReconcileReport> {
    const report: ReconcileReport = { checked: 0, written: 0, unchanged: 0, conflicts: 0, failed: 0, skipped: 0 };
    this.counters.reconcile.runs++;
    for (let i = 0; i < items.length; i += RECONCILE_BATCH) {
      const batch = items.slice(i, i + RECONCILE_BATCH);
      if (this.closed) {
        for (const it of batch) this.writeBackFailed(it, report);
        continue;
      }
      const results = await this.inBudget(
        batch.map((it) => this.writeBackOne(it)),
        Math.max(1000, 10 * this.o.budgetMs),
      );
      this.settle(results, (r, j) => {
        const it = batch[j];
        if (r !== TIMEOUT && !r.ok && (r.error instanceof ForeignValueError || r.error instanceof ProtocolError)) {
          // the record, or the value Redis holds for its key, is not one to write: never retried (counted, logged)
          report.skipped++;
          if (it.journal) this.journal.remove(it.key, it.record);
          return;
        }
        if (r === TIMEOUT || !r.ok) return this.writeBackFailed(it, report);
        report.checked++;
        report[r.value]++;
        if (it.journal) this.journal.remove(it.key, it.record);
      });
    }
    const c = this.counters.reconcile;
    c.written += report.written;
    c.unchanged += report.unchanged;
    c.conflicts += report.conflicts;
    c.failed += report.failed;
    c.skipped += report.skipped;
    if (report.conflicts || report.failed || report.skipped) this.o.log?.warn({ site: this.site, ...report }, 'site directory reconciliation');
    return report;
  }

  private writeBackFailed(it: Item, report: ReconcileReport): void {
    report.failed++;
    if (it.journal) this.journal.release(it.journal);
  }

  private async writeBackOne(it: Item): Promise<'written' | 'unchanged' | 'conflicts'> {
    const ours = it.record;
    if (it.mode === 'claim') {
      // a decision made without Redis was never first
      const c = await this.claimOne(it.key, ours);
      if (c.won) {
        // claimed above another site's withdraw marker: the site must take the raised version
        if (c.record !== ours) this.emit(this.changeListeners, { clientKey: it.clientKey, record: c.record });
        return 'written';
      }
      if (sameDecision(c.current, ours)) return 'unchanged';
      await this.resolveAgainstFirst(it.key, ours, c.current, 'reconcile');
      return 'conflicts';
    }
    const s = await this.storeOne(it.key, ours);
    if (s.stored) {
      const was = s.replaced;
      if (was && was.site !== this.site && !sameDecision(was, ours)) {
        this.conflict({ clientKey: it.clientKey, ours, theirs: was, resolved: ours, winner: 'ours', why: 'reconcile' });
        return 'conflicts';
      }
      return 'written';
    }
    if (sameRecord(s.current, ours) || sameDecision(s.current, ours)) return 'unchanged';
    this.conflict({ clientKey: it.clientKey, ours, theirs: s.current, resolved: s.current, winner: 'theirs', why: 'reconcile' });
    return 'conflicts';
  }

  // ---- other sites' changes (key tracking) ----

  private invalidated(key: Buffer | null): void {
    this.counters.changes.invalidations++;
    if (key === null) return this.gap('the server flushed key tracking');
    const k = key.toString('utf8');
    if (!k.startsWith(this.prefix)) return;
    const inflight = this.inflight.has(k);
    if (inflight) this.invalidatedDuring.set(k, (this.invalidatedDuring.get(k) ?? 0) + 1);
    const previous = this.cache.peek(k);
    const wasCached = this.cache.delete(k);
    let clientKey: ClientKey;
    try {
      clientKey = clientKeyOfSiteKey(this.prefix, k);
    } catch {
      this.counters.errors.malformed++;
      return;
    }
    // a key this node is writing or reading now: its answer may predate the change, so read it back
    // (Redis 7.0 also reports a script's own writes to the writer despite NOLOOP: read back once, cached again)
    const held = inflight || wasCached || (this.o.holds ? this.o.holds(clientKeyBytes(clientKey)) : false);
    if (!held) {
      this.counters.changes.notHeld++;
      return;
    }
    // what this node knew before, so that a change it already told of is not told again
    const pending = this.toFetch.get(k);
    this.toFetch.set(k, { clientKey, previous: pending ? pending.previous : previous });
    if (!this.fetchScheduled) {
      this.fetchScheduled = true;
      setImmediate(() => void this.fetchChanges());
    }
  }

  private async fetchChanges(): Promise<void> {
    this.fetchScheduled = false;
    const batch = [...this.toFetch];
    this.toFetch.clear();
    // while down nothing is fetched: the write-back on return compares everything held
    if (!this.avail.isUp || this.closed || batch.length === 0) return;
    const results = await this.inBudget(
      batch.map(([k, f]) => this.readOne(k, f.clientKey)),
      Math.max(1000, 10 * this.o.budgetMs),
    );
    this.settle(results, (r, j) => {
      if (r === TIMEOUT || !r.ok) return;
      const { clientKey, previous } = batch[j][1];
      this.counters.changes.fetched++;
      const record = r.value;
      if (!record) this.counters.changes.gone++;
      else if (record.site === this.site) return void this.counters.changes.fromOwnSite++;
      else if (previous && sameRecord(previous, record) && previous.site === record.site) return void this.counters.changes.repeated++;
      else this.counters.changes.fromOtherSites++;
      this.emit(this.changeListeners, { clientKey, record });
    });
  }

  /** Invalidations may have been missed: nothing cached is trusted, and Redis is down until a probe and a write-back. */
  private gap(why: string): void {
    this.gapEpoch++;
    if (this.cache.size) this.counters.cache.flushes++;
    this.cache.clear();
    // already down: keep the more telling reason (the connection error that came first)
    if (!this.closed && this.avail.isUp) this.avail.down(`key tracking lost (${why})`);
  }

  private connectionFailed(reason: string): void {
    this.stillDown(reason);
    this.lastFailure = { reason, atMs: Date.now() };
    if (!this.closed) this.avail.down(reason);
  }

  /** Already down, and now for another reason (e.g. the server is back but refuses the password): said once per change. */
  private stillDown(reason: string): void {
    if (!this.closed && !this.avail.isUp && this.lastFailure && reason !== this.lastFailure.reason && reason !== 'not connected') {
      this.o.log?.warn({ site: this.site, reason, before: this.lastFailure.reason }, 'site directory (Redis) still down, for another reason');
    }
  }

  // ---- probes ----

  private probeSoon(ms: number): void {
    if (this.closed || !this.started) return;
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => void this.probe(), ms);
    this.probeTimer.unref();
  }

  private async probe(): Promise<void> {
    if (this.closed || this.probing) return;
    this.probing = true;
    const wasUp = this.avail.isUp;
    try {
      const t0 = performance.now();
      // the scripts and every shard's keys are usable (ACL, cluster state), not only the connections
      const [r] = await this.inBudget([this.conn.probe(READ, this.prefix)]);
      if (r !== TIMEOUT && r.ok) {
        this.counters.roundTrips.probe++;
        this.observer?.('probe', (performance.now() - t0) / 1000);
        if (wasUp) this.avail.answered();
        else {
          await this.conn.loadScripts(SCRIPTS).catch(() => {});
          // calls made while the journal is written back are still site-local (and journaled): go again
          let report: ReconcileReport;
          let passes = 0;
          do report = await this.writeBack(this.journalItems());
          while (report.failed === 0 && this.journal.waiting > 0 && ++passes < 5);
          if (report.failed === 0) {
            this.downAttempt = 0;
            this.avail.up();
            if (this.journal.waiting > 0) void this.writeBack(this.journalItems());
            return;
          }
        }
      } else {
        this.settle([r], () => {});
      }
    } finally {
      this.probing = false;
    }
    if (!this.avail.isUp) this.probeSoon(backoffMs(this.o.retry, ++this.downAttempt));
    else this.probeSoon(this.o.heartbeatMs);
  }

  // ---- plumbing ----

  /**
   * Waits for the promises at most budgetMs; TIMEOUT for those that did not
   * settle. When the time is up, I/O that has already arrived is read first
   * (setImmediate runs after the poll phase), so an answer that came in time
   * is never declared late.
   */
  private async inBudget<T>(ps: readonly Promise<T>[], ms = this.o.budgetMs): Promise<(Settled<T> | typeof TIMEOUT)[]> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof TIMEOUT>((resolve) => {
      timer = setTimeout(() => setImmediate(() => resolve(TIMEOUT)), ms);
    });
    try {
      return await Promise.all(
        ps.map((p) =>
          Promise.race([
            p.then(
              (value): Settled<T> => ({ ok: true, value }),
              (error): Settled<T> => ({ ok: false, error }),
            ),
            deadline,
          ]),
        ),
      );
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Walks the results of one batch and tells availability once for it: any
   * time-out is one failure (not one per key), a connection failure takes
   * Redis down, server errors count, and an all-answered batch resets.
   */
  private settle<T>(results: readonly (Settled<T> | typeof TIMEOUT)[], each: (r: Settled<T> | typeof TIMEOUT, j: number) => void): void {
    let timeouts = 0;
    let firstError: unknown;
    results.forEach((r, j) => {
      if (r === TIMEOUT) timeouts++;
      else if (!r.ok) {
        if (firstError === undefined) firstError = r.error;
        else this.countError(r.error);
      }
      each(r, j);
    });
    if (timeouts) {
      this.counters.errors.timeout += timeouts;
      this.avail.failed(`no answer within ${this.o.budgetMs} ms`);
    }
    if (firstError !== undefined) this.failure(firstError);
    if (!timeouts && firstError === undefined) this.avail.answered();
  }

  private countError(e: unknown): void {
    if (e instanceof ForeignValueError || e instanceof ProtocolError) this.counters.errors.malformed++;
    else if (failureKind(e) === 'connection') this.counters.errors.connection++;
    else this.counters.errors.server++;
  }

  private failure(e: unknown): void {
    this.countError(e);
    if (e instanceof ForeignValueError || e instanceof ProtocolError) {
      this.o.log?.warn({ site: this.site, err: (e as Error).message }, 'site directory: a value in Redis is not a site record (left alone)');
      return;
    }
    // not connected: the connection's own error says why (refused, TLS, WRONGPASS)
    const reason = e instanceof ClientOfflineError || e instanceof ClientClosedError ? (this.lastFailure?.reason ?? 'not connected') : describeFailure(e);
    if (failureKind(e) === 'connection') {
      if (reason !== this.lastFailure?.reason) {
        this.stillDown(reason);
        this.lastFailure = { reason, atMs: Date.now() };
      }
      this.avail.down(reason);
    } else {
      this.o.log?.warn({ site: this.site, err: reason }, 'site directory: Redis answered with an error');
      this.avail.failed(reason);
    }
  }

  /** One command or script on one key, counted and timed; fresh: no invalidation of the key (nor gap) came while it ran. */
  private async run<T>(op: RoundTripOp, key: string, send: () => Promise<T>): Promise<{ reply: T; fresh: boolean }> {
    this.inflight.set(key, (this.inflight.get(key) ?? 0) + 1);
    const invalidatedBefore = this.invalidatedDuring.get(key) ?? 0;
    const gapBefore = this.gapEpoch;
    const t0 = performance.now();
    try {
      const reply = await send();
      this.counters.roundTrips[op]++;
      this.observer?.(op, (performance.now() - t0) / 1000);
      return { reply, fresh: this.gapEpoch === gapBefore && (this.invalidatedDuring.get(key) ?? 0) === invalidatedBefore };
    } finally {
      const n = (this.inflight.get(key) ?? 1) - 1;
      if (n > 0) this.inflight.set(key, n);
      else {
        this.inflight.delete(key);
        this.invalidatedDuring.delete(key);
      }
    }
  }

  /** Decodes the current record a script returned (code 0), or throws ForeignValueError (code 2, or undecodable). */
  private current(key: string, clientKey: ClientKey, code: number, cur: Buffer | null | undefined, pttl: number): SiteRecord {
    if (code === 2 || !cur) {
      this.counters.foreignValues++;
      throw new ForeignValueError(key, code === 2 ? 'not of record format 1' : 'empty');
    }
    try {
      return decodeRecordFor(clientKey, cur, pttl);
    } catch (e) {
      this.counters.foreignValues++;
      throw new ForeignValueError(key, (e as Error).message);
    }
  }

  private remember(key: string, record: SiteRecord, pttlMs: number, fresh: boolean): void {
    if (fresh && this.avail.isUp) this.cache.set(key, record, pttlMs);
  }

  private keep(key: string, clientKey: ClientKey, record: SiteRecord, mode: JournalMode): void {
    if (this.journal.add(key, clientKey, record, mode)) this.counters.journal.added++;
    else this.counters.journal.dropped++;
  }

  private px(ttlSeconds: number, dflt: number): number {
    return Math.max(1, ttlSeconds || dflt) * 1000;
  }

  private conflict(c: SiteConflict): void {
    this.counters.conflicts[c.winner]++;
    this.o.log?.warn(
      {
        site: this.site, client: formatClientKey(c.clientKey), why: c.why, winner: c.winner,
        ours: describe(c.ours), theirs: `${describe(c.theirs)} (site ${c.theirs.site})`, resolved: describe(c.resolved),
      },
      'site directory: two sites decided differently; the resolved record wins everywhere',
    );
    this.emit(this.conflictListeners, c);
  }

  private emit<T>(listeners: Set<(x: T) => void>, x: T): void {
    for (const l of listeners) {
      try {
        l(x);
      } catch (e) {
        this.o.log?.warn({ site: this.site, err: (e as Error).message }, 'site directory: a listener threw');
      }
    }
  }
}

function describe(r: SiteRecord): string {
  const v = recordVersion(r);
  return `${r.kind === 'entry' ? r.entry.endpoint.name || `${r.entry.endpoint.address}:${r.entry.endpoint.port}` : '(withdrawn)'} v${v.version}/${v.originNode}`;
}
