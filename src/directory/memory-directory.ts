// An in-memory LocalDirectory with the same version rule as the native
// table: the test double for router tests and the simulator.
import type { Endpoint } from '../codec/endpoint';
import type { LocalDirectory, StoredEntry, StoreResult } from './local-directory';

export const newer = (v: number, o: number, sv: number, so: number): boolean => (v !== sv ? v > sv : o > so);

export class MemoryDirectory implements LocalDirectory {
  readonly entries = new Map<string, StoredEntry>();
  /** Withdraw markers, by the same key; an entry and a marker never coexist. */
  readonly markers = new Map<string, { version: number; originNode: number; expiresSeconds: number }>();

  constructor(private readonly capacity = Infinity, private readonly nowSeconds = () => Math.floor(Date.now() / 1000)) {}

  lookup(key: Buffer): StoredEntry | undefined {
    const e = this.entries.get(key.toString('latin1'));
    return e && e.expiresSeconds > this.nowSeconds() ? e : undefined;
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

  store(key: Buffer, endpoint: Endpoint, version: number, originNode: number, ttlSeconds: number): StoreResult {
    const k = key.toString('latin1');
    const now = this.nowSeconds();
    const old = this.entries.get(k) ?? this.markers.get(k);
    const live = old && old.expiresSeconds > now;
    if (live && !newer(version, originNode, old.version, old.originNode)) return 'ignored';
    if (!old && this.entries.size + this.markers.size >= this.capacity) return 'full';
    this.markers.delete(k);
    this.entries.set(k, { endpoint, version, originNode, expiresSeconds: now + ttlSeconds });
    return old ? 'replaced' : 'inserted';
  }

  withdraw(key: Buffer, version: number, originNode: number, ttlSeconds: number): StoreResult {
    const k = key.toString('latin1');
    const now = this.nowSeconds();
    const old = this.entries.get(k) ?? this.markers.get(k);
    if (old && old.expiresSeconds > now && !newer(version, originNode, old.version, old.originNode)) return 'ignored';
    if (!old && this.entries.size + this.markers.size >= this.capacity) return 'full';
    this.entries.delete(k);
    this.markers.set(k, { version, originNode, expiresSeconds: now + ttlSeconds });
    return old ? 'replaced' : 'inserted';
  }

  withdrawnVersion(key: Buffer): number {
    const m = this.markers.get(key.toString('latin1'));
    return m && m.expiresSeconds > this.nowSeconds() ? m.version : 0;
  }

  remove(key: Buffer): boolean {
    return this.entries.delete(key.toString('latin1'));
  }
}
