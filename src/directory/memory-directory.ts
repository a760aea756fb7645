// The Directory in plain JS objects: the double for everything that runs on
// a directory (router, maintenance, snapshots, control) in tests and the
// simulator. It keeps the same rules as the native table (version rule,
// lifetime rule, first writer wins, capacity) and computes the same digests
// (docs/protocol.md "DIGEST"), so a memory directory and a native one holding
// the same entries agree digest for digest (test/directory/conformance.test.ts).
import type { Endpoint } from '../codec/endpoint';
import { bucketHash, ENTRY_SEED, keyHash64 } from '../codec/key-hash';
import { encodeEndpoint } from '../codec/messages';
import type { ApplyResult, ClaimOutcome, Directory, DirectoryRecord, DirectoryStats, Held, Incoming, StoredEntry } from './directory';
import { type Lifetimes, lifetimeOf } from './lifetimes';

/** The version rule: does (v, o) win over (sv, so)? */
export const newer = (v: number, o: number, sv: number, so: number): boolean => (v !== sv ? v > sv : o > so);

interface Slot extends Held {
  readonly key: Buffer;
  /** Walk order: the upper 31 bits of the bucket hash, so a cursor never overflows 32 bits. */
  readonly order: number;
  readonly keyHash: number;
}

export class MemoryDirectory implements Directory {
  private readonly held = new Map<string, Slot>();
  private readonly counters = { inserted: 0, replaced: 0, ignored: 0, full: 0, removed: 0, expired: 0 };

  constructor(
    readonly lifetimes: Lifetimes,
    private readonly capacity = Number.MAX_SAFE_INTEGER,
    private readonly nowSeconds = () => Math.floor(Date.now() / 1000),
  ) {}

  private live(key: Buffer): Slot | undefined {
    const s = this.held.get(key.toString('latin1'));
    return s && s.expiresSeconds > this.nowSeconds() ? s : undefined;
  }

  lookup(key: Buffer): StoredEntry | undefined {
    const s = this.live(key);
    return s?.endpoint ? (s as StoredEntry) : undefined;
  }

  lookupMany(keys: Buffer, offsets: Uint32Array, hit: (i: number, endpoint: Endpoint, version: number, originNode: number) => void): number {
    let hits = 0;
    for (let i = 0; i + 1 < offsets.length; i++) {
      const e = this.lookup(keys.subarray(offsets[i], offsets[i + 1]));
      if (e) {
        hit(i, e.endpoint, e.version, e.originNode);
        hits++;
      }
    }
    return hits;
  }

  peek(key: Buffer): Held | undefined {
    return this.live(key);
  }

  apply(key: Buffer, x: Incoming): ApplyResult {
    const k = key.toString('latin1');
    const old = this.held.get(k);
    const now = this.nowSeconds();
    if (old && old.expiresSeconds > now && !newer(x.version, x.originNode, old.version, old.originNode)) {
      this.counters.ignored++;
      return 'ignored';
    }
    return this.put(k, key, x, now, old);
  }

  claim(key: Buffer, p: Incoming & { readonly endpoint: Endpoint }): ClaimOutcome {
    const held = this.live(key);
    if (held?.endpoint && held.version >= p.version) {
      this.counters.ignored++;
      return { won: false, entry: held as StoredEntry, result: 'ignored' };
    }
    // above a live marker, so the new entry beats the delete everywhere
    const version = held && held.version >= p.version ? held.version + 1 : p.version;
    const now = this.nowSeconds();
    const result = this.put(key.toString('latin1'), key, { ...p, version }, now, this.held.get(key.toString('latin1')));
    const entry: StoredEntry = { endpoint: p.endpoint, version, originNode: p.originNode, expiresSeconds: now + lifetimeOf(this.lifetimes, p) };
    return { won: result !== 'full', entry, result };
  }

  private put(k: string, key: Buffer, x: Incoming, now: number, old: Slot | undefined): ApplyResult {
    if (!old && this.held.size >= this.capacity) {
      this.sweep(now);
      if (this.held.size >= this.capacity) {
        this.counters.full++;
        return 'full';
      }
    }
    const keyHash = old?.keyHash ?? bucketHash(key);
    const copy = Buffer.from(key);
    this.held.set(k, {
      key: copy,
      keyHash,
      order: keyHash >>> 1,
      endpoint: x.endpoint,
      version: x.version,
      originNode: x.originNode,
      expiresSeconds: now + lifetimeOf(this.lifetimes, x),
    });
    const live = old && old.expiresSeconds > now;
    if (live) this.counters.replaced++;
    else this.counters.inserted++;
    return live ? 'replaced' : 'inserted';
  }

  private sweep(now: number): void {
    for (const [k, s] of this.held) {
      if (s.expiresSeconds <= now) {
        this.held.delete(k);
        this.counters.expired++;
      }
    }
  }

  /** Walk order: by the bucket hash, so a cursor is the hash to resume at (never a position that shifts). */
  walk(cursor: number, max: number, now = this.nowSeconds()): { cursor: number; done: boolean; records: DirectoryRecord[] } {
    const all = [...this.held.values()]
      .filter((s) => s.order >= cursor && s.expiresSeconds > now)
      .sort((a, b) => a.order - b.order || a.key.compare(b.key));
    const records: DirectoryRecord[] = [];
    let i = 0;
    // a page ends between two hashes, never inside a group of equal ones
    for (; i < all.length && (records.length < max || all[i].order === all[i - 1]?.order); i++) {
      const s = all[i];
      records.push({ key: s.key, keyHash: s.keyHash, endpoint: s.endpoint, version: s.version, originNode: s.originNode, expiresSeconds: s.expiresSeconds, at: s.order });
    }
    const done = i >= all.length;
    return { cursor: done ? 0x80000000 : all[i].order, done, records };
  }

  digest(buckets: number): Promise<Buffer> {
    const out = Buffer.alloc(8 * buckets);
    const now = this.nowSeconds();
    for (const s of this.held.values()) {
      if (s.expiresSeconds <= now) continue;
      const tail = Buffer.alloc(8);
      tail.writeUInt32BE(s.version, 0);
      tail.writeUInt32BE(s.originNode, 4);
      const h = keyHash64(Buffer.concat([s.key, s.endpoint ? encodeEndpoint(s.endpoint) : Buffer.of(0xff), tail]), ENTRY_SEED);
      const at = 8 * (s.keyHash % buckets);
      out.writeBigUInt64LE(out.readBigUInt64LE(at) ^ h, at);
    }
    return Promise.resolve(out);
  }

  stats(): DirectoryStats {
    const endpoints = new Set([...this.held.values()].filter((s) => s.endpoint).map((s) => `${s.endpoint!.address}|${s.endpoint!.port}|${s.endpoint!.name}`));
    return {
      size: this.held.size,
      capacity: this.capacity,
      endpoints: endpoints.size,
      endpointCapacity: Number.MAX_SAFE_INTEGER,
      memoryBytes: 0,
      hugePageBytes: 0,
      ...this.counters,
      readRetries: 0,
    };
  }

  clear(): number {
    const n = this.held.size;
    this.held.clear();
    this.counters.removed += n;
    return n;
  }
}
