// Records of the site directory this node has read or written, kept while
// Redis's key tracking guarantees they are current: an invalidation deletes
// a key's record, and any moment when invalidations may have been missed (a
// connection lost, a topology change) empties the whole cache. Bounded: the
// least recently used record goes first. Expired records are never
// returned (a record lives as long as its key's PX in Redis).
import type { SiteRecord } from './site-record';
import { withTtl } from './site-record';

interface Cached {
  readonly record: SiteRecord;
  /** performance.now() at which the key expires in Redis. */
  readonly expiresAt: number;
}

export class SiteCache {
  private readonly map = new Map<string, Cached>();

  constructor(private readonly capacity: number, private readonly now: () => number = () => performance.now()) {}

  /** The record with its remaining lifetime, or undefined (absent or expired). */
  get(key: string): SiteRecord | undefined {
    const c = this.map.get(key);
    if (!c) return undefined;
    const left = c.expiresAt - this.now();
    if (left <= 0) {
      this.map.delete(key);
      return undefined;
    }
    // most recently used goes last
    this.map.delete(key);
    this.map.set(key, c);
    return withTtl(c.record, Math.ceil(left / 1000));
  }

  /** The record as cached (expired or not), without touching its place. */
  peek(key: string): SiteRecord | undefined {
    return this.map.get(key)?.record;
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  /** pttlMs: the key's remaining lifetime in Redis (from PTTL, or the PX just written); <= 0 is not cached. */
  set(key: string, record: SiteRecord, pttlMs: number): void {
    if (this.capacity === 0 || pttlMs <= 0) return;
    this.map.delete(key);
    this.map.set(key, { record, expiresAt: this.now() + pttlMs });
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as string);
  }

  delete(key: string): boolean {
    return this.map.delete(key);
  }

  clear(): void {
    this.map.clear();
  }

  get size(): number {
    return this.map.size;
  }
}
