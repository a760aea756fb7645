// The affinity database of a node, behind one interface: everything that
// reads or changes it (the router, directory maintenance, snapshots, the
// control commands) goes through a Directory. NativeDirectory
// (native-directory.ts) holds it in the addon's lock-free table, which the
// native responder also reads and writes; MemoryDirectory
// (memory-directory.ts) is the double every test of the logic above it runs
// on.
//
// One rule for storing what arrives, whatever it came in (docs/protocol.md
// section 9): an entry or a withdraw marker replaces what is held if its
// (version, origin node) is greater or what is held has expired (the version
// rule); its lifetime is the remaining lifetime it carries, 0 meaning the
// receiver's default, capped at the receiver's maximum (lifetimes.ts). The
// native responder applies UPDATEs by the same rule in C++
// (native/responder.cc); test/directory/conformance.test.ts holds both
// directories to it.
import type { Endpoint } from '../codec/endpoint';
import type { Lifetimes } from './lifetimes';

/** What a directory holds for a client: an entry, or a withdraw marker (no endpoint). */
export interface Held {
  /** Absent for a withdraw marker: the entry was deleted as of this version. */
  readonly endpoint?: Endpoint;
  readonly version: number;
  readonly originNode: number;
  /** Unix seconds; dead at this second. */
  readonly expiresSeconds: number;
}

/** A live entry. */
export interface StoredEntry extends Held {
  readonly endpoint: Endpoint;
}

/** An entry or marker as a walk returns it. */
export interface DirectoryRecord extends Held {
  /** Canonical client key octets. */
  readonly key: Buffer;
  /** The key's digest bucket hash (docs/protocol.md, "DIGEST"): bucket = keyHash % buckets. */
  readonly keyHash: number;
  /** The cursor a walk starts at to begin with this record. */
  readonly at: number;
}

/** An entry (with an endpoint) or a withdraw marker (without) arriving from anywhere. */
export interface Incoming {
  readonly endpoint?: Endpoint;
  readonly version: number;
  readonly originNode: number;
  /** Remaining lifetime in seconds; 0: the receiver's default. */
  readonly ttlSeconds: number;
}

export type ApplyResult =
  /** stored, and the client had nothing live here */
  | 'inserted'
  /** stored over an older or expired entry or marker */
  | 'replaced'
  /** not stored: what is held is as new or newer (version rule) */
  | 'ignored'
  /** not stored: the table or the endpoint registry is full (counted) */
  | 'full';

/** The outcome of a claim (first writer wins): the entry the client now has here. */
export interface ClaimOutcome {
  /** True if this proposal was stored; false if a live entry was there first. */
  readonly won: boolean;
  /** The client's entry after the claim (the proposal, possibly raised above a marker, or the first writer's). */
  readonly entry: StoredEntry;
  /** 'full' when the proposal could not be stored (then entry is the proposal, unstored). */
  readonly result: ApplyResult;
}

export interface DirectoryStats {
  /** Entries and withdraw markers held. */
  size: number;
  capacity: number;
  endpoints: number;
  endpointCapacity: number;
  memoryBytes: number;
  /** Of memoryBytes, the part advised for transparent huge pages (docs/operations.md). */
  hugePageBytes: number;
  inserted: number;
  replaced: number;
  ignored: number;
  full: number;
  removed: number;
  expired: number;
  readRetries: number;
}

/** What any part of a node may read. */
export interface DirectoryReader {
  /** The client's live entry (a withdraw marker is a miss). */
  lookup(key: Buffer): StoredEntry | undefined;
  /**
   * Many clients at once (key i at offsets[i]..offsets[i+1] of keys): calls
   * hit(i, ...) for each with a live entry; returns the number of hits.
   */
  lookupMany(keys: Buffer, offsets: Uint32Array, hit: (i: number, endpoint: Endpoint, version: number, originNode: number) => void): number;
  /** The client's live entry or withdraw marker. */
  peek(key: Buffer): Held | undefined;
  /**
   * Up to max live entries and markers from cursor (0: the start), in the
   * directory's own order; resume at `cursor`; `done` at the end. Entries
   * that change during a walk may be seen in either state or not at all.
   */
  walk(cursor: number, max: number, nowSeconds?: number): { cursor: number; done: boolean; records: DirectoryRecord[] };
  /** Bucket digests of everything held (docs/protocol.md "DIGEST"), computed off the JS thread where possible. */
  digest(buckets: number): Promise<Buffer>;
  stats(): DirectoryStats;
}

/** The whole affinity database. */
export interface Directory extends DirectoryReader {
  /** The lifetime rule this directory stores with (lifetimes.ts). */
  readonly lifetimes: Lifetimes;
  /** Stores an entry or a withdraw marker by the version rule, with the lifetime rule. */
  apply(key: Buffer, x: Incoming): ApplyResult;
  /**
   * First writer wins (docs/protocol.md "CLAIM"): stores the proposal unless
   * the client has a live entry of the same or a higher version, which then
   * stands (so among proposals of one version, for a new client or for one
   * move, the first stored wins). A live withdraw marker does not stop a
   * claim: the proposal is stored one version above it. Atomic with respect
   * to every other writer of this directory.
   */
  claim(key: Buffer, proposal: Incoming & { readonly endpoint: Endpoint }): ClaimOutcome;
  /** Forgets everything held here, without telling anyone (tests; a node that must rebuild). */
  clear(): number;
}
