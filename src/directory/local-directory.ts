// The local affinity table as the router sees it. NativeDirectory wraps the
// addon's table; MemoryDirectory (memory-directory.ts) is the test double.
import type { Endpoint } from '../codec/endpoint';

export interface StoredEntry {
  readonly endpoint: Endpoint;
  readonly version: number;
  readonly originNode: number;
  /** Unix seconds. */
  readonly expiresSeconds: number;
}

export type StoreResult = 'inserted' | 'replaced' | 'ignored' | 'full';

export interface LocalDirectory {
  /** The live entry for a canonical client key. */
  lookup(key: Buffer): StoredEntry | undefined;
  /**
   * Many keys at once (key i at offsets[i]..offsets[i+1] of keys): calls
   * hit(i, ...) for each key with a live entry. Returns the number of hits.
   */
  lookupMany(keys: Buffer, offsets: Uint32Array, hit: (i: number, endpoint: Endpoint, version: number, originNode: number) => void): number;
  /** Stores by the version rule (docs/protocol.md section 9). */
  store(key: Buffer, endpoint: Endpoint, version: number, originNode: number, ttlSeconds: number): StoreResult;
  remove(key: Buffer): boolean;
  /**
   * Stores a withdraw marker by the version rule: the client's entry is
   * deleted as of this version, and older entries cannot come back while the
   * marker lives (ttlSeconds).
   */
  withdraw(key: Buffer, version: number, originNode: number, ttlSeconds: number): StoreResult;
  /** The version of the client's live withdraw marker, or 0 if it has none. */
  withdrawnVersion(key: Buffer): number;
}
