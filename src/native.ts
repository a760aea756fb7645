// The only file that loads the addon (build/Release/affinityd.node). It
// declares what the native side exports, so the JS/C++ boundary is visible in
// one place. Arguments are validated by callers in TypeScript; the native
// side re-checks types and ranges and throws TypeError/RangeError.
//
// AFFINITYD_NATIVE_BUILD names another build folder to load it from
// (<folder>/Release/affinityd.node; a relative folder is taken from the
// package root): `npm run test:sanitize` sets it to the AddressSanitizer and
// UndefinedBehaviorSanitizer build in build-sanitize/build.
import { isAbsolute, join } from 'node:path';

import type { Keyring } from './codec/frame';
import { packageRoot } from './util/package-root';

/** Result of AffinityTable.upsert (native/affinity_table.h UpsertResult). */
export enum UpsertResult {
  Inserted = 0,
  Replaced = 1,
  /** The stored entry is as new or newer (version rule). */
  Ignored = 2,
  /** No room for a new key; counted in stats().full. */
  Full = 3,
  BadKey = 4,
}

export interface NativeEntry {
  readonly key: Buffer;
  readonly endpointId: number;
  readonly version: number;
  readonly originNode: number;
  readonly createdSeconds: number;
  readonly expiresSeconds: number;
  /**
   * The entry's home slot. entries(slot) lists this entry again (with any entries of
   * the same home listed before it); the page's cursor resumes after the page.
   */
  readonly slot: number;
  /** The key's digest hash (native/table_digest.h DigestKeyHash); bucket = keyHash % buckets. */
  readonly keyHash: number;
}

export interface TableStats {
  size: number;
  capacity: number;
  slots: number;
  memoryBytes: number;
  /** Of memoryBytes, the part advised for transparent huge pages (tables from 4 MiB; 0 where the kernel refuses). */
  hugePageBytes: number;
  endpoints: number;
  endpointCapacity: number;
  inserted: number;
  replaced: number;
  ignored: number;
  full: number;
  removed: number;
  expired: number;
  readRetries: number;
}

export interface NativeAffinityTable {
  /** Canonical key (client-key.ts clientKeyBytes); times in unix seconds. */
  upsert(key: Buffer, endpointId: number, version: number, originNode: number, ttlSeconds: number, nowSeconds?: number): UpsertResult;
  /**
   * Many entries in one call (bulk sync, snapshots): key i at offsets[i]..offsets[i+1],
   * fields[4i..4i+3] = endpointId, version, originNode, ttlSeconds; results[i] = UpsertResult.
   * A key with bad offsets or an endpoint id not interned is BadKey. Returns entries stored.
   */
  upsertBatch(keys: Buffer, offsets: Uint32Array, count: number, fields: Uint32Array, results: Uint8Array | null, nowSeconds?: number): number;
  /**
   * out = [endpointId, version, originNode, createdSeconds, expiresSeconds].
   * A withdraw marker (endpointId 0xFFFFFFFF) is a miss unless includeWithdrawn.
   */
  lookup(key: Buffer, out: Uint32Array, nowSeconds?: number, includeWithdrawn?: boolean): boolean;
  /**
   * First writer wins (native/affinity_table.h Claim): stores the entry unless
   * the key has a live entry of this version or higher; out = what the key
   * now holds [endpointId, version, originNode, createdSeconds, expiresSeconds].
   */
  claim(key: Buffer, endpointId: number, version: number, originNode: number, ttlSeconds: number, out: Uint32Array, nowSeconds?: number): UpsertResult;
  /** Keys concatenated in `keys`, key i at offsets[i]..offsets[i+1]; -1 in endpoints on a miss. */
  lookupBatch(
    keys: Buffer, offsets: Uint32Array, count: number, endpoints: Int32Array,
    versions: Uint32Array | null, origins?: Uint32Array | null, nowSeconds?: number,
  ): number;
  remove(key: Buffer): boolean;
  clear(): number;
  /**
   * Removes up to maxEntries expired entries, examining at most maxEntries (every entry when
   * the table is full); returns how many it removed.
   */
  sweep(nowSeconds: number | undefined, maxEntries: number): number;
  /**
   * Live entries and withdraw markers (endpointId 0xFFFFFFFF) by home slot from cursor: a walk
   * from 0 to done lists every entry present for the whole walk exactly once. A page holds at
   * most max entries (more only if a single home slot holds more than max).
   */
  entries(cursor: number, max: number, nowSeconds?: number): { cursor: number; done: boolean; entries: NativeEntry[] };
  /** bucketCount (1..128) digests of 8 octets, little-endian (native/table_digest.h). */
  digest(bucketCount: number, nowSeconds?: number): Buffer;
  /** digest() on a worker thread: the JS thread does not wait for the walk. */
  digestAsync(bucketCount: number, nowSeconds?: number): Promise<Buffer>;
  /** Returns the endpoint's id, or -1 when the registry is full. */
  internEndpoint(address: Buffer, port: number, name: Buffer): number;
  endpoint(id: number): { address: Buffer; port: number; name: Buffer } | null;
  stats(): TableStats;
}

export interface ResponderOptions {
  nodeId: number;
  bootEpoch: number;
  group: string;
  port: number;
  /** IPv4: the interface's address; IPv6: its name. */
  interface: string;
  localAddress?: string;
  unicastPort?: number;
  ttl: number;
  loopback: boolean;
  receiveBufferBytes: number;
  maxSkewMs: number;
  defaultTtlSeconds: number;
  maxTtlSeconds: number;
  queueCapacity: number;
  sweepIntervalMs?: number;
  /** Frames handed to JS per callback (timers and I/O run between batches). */
  maxBatch: number;
  /** After traffic, keep reading this long before sleeping: lower latency for a core's worth of CPU. 0 (default): off. */
  busyPollMicros: number;
  /** REPLYs on a socket of their own (same address and port, steered by the kernel), read by the JS thread: no hop through the I/O thread. false: through the I/O thread. */
  replySocket: boolean;
  /** How often the I/O thread multicasts a HELLO. */
  helloIntervalMs: number;
  /** A peer not heard from for this long is out of the ranks (QUERY answers, CLAIMs). */
  peerTimeoutMs: number;
  /** This node settles CLAIMs only once it has been ready this long (docs/protocol.md "Arbiters"). */
  arbiterDelayMs: number;
  /**
   * For this long after it became an arbiter, while an older arbiter is
   * alive, a client it holds nothing for is settled only from a CLAIM marked
   * handover (docs/protocol.md "Handover"): agreement.handoverMs plus
   * agreement.timeoutMs. 0 or absent: off.
   */
  handoverHoldMs?: number;
  keyring: Keyring;
}

/**
 * A frame the responder passed to JS: authenticated, fresh, not replayed;
 * a REPLY comes decoded (first octet 0x52, native/inbound_queue.h CompactReply).
 */
export interface InboundFrame {
  readonly data: Buffer;
  readonly address: string;
  readonly port: number;
  /** Arrived on the node's unicast socket (a reply or a direct query). */
  readonly unicast: boolean;
}

export interface OutboundFrame {
  type: number;
  body: Buffer;
  /** Unicast destination; absent: the group. */
  address?: string;
  port?: number;
}

export interface ResponderStats {
  verdicts: Record<string, number>;
  received: number;
  queriesAnswered: number;
  queriesUnanswered: number;
  updatesApplied: number;
  updatesIgnored: number;
  tableFull: number;
  endpointsFull: number;
  queueFull: number;
  delivered: number;
  /** REPLYs the JS thread read from the reply socket itself (counted in delivered too). */
  repliesRead: number;
  sent: number;
  sendErrors: number;
  swept: number;
  nextSequence: number;
  /** Clients held here but left to a higher rank (QUERY answer_rank). */
  queriesDeferred: number;
  repliesSent: number;
  /** CLAIM proposals stored here (this node as arbiter), and answered with the entry held. */
  claimsWon: number;
  claimsLost: number;
  /** CLAIM frames left unanswered because this node was not ready. */
  claimsNotReady: number;
  /** Proposals left unanswered in a handover: not marked handover, for a client this young arbiter holds nothing for. */
  claimsHeldForHandover: number;
  /** First-entry proposals left unanswered because an arbiter past its handover outranks this node for the client (the proposer has not heard it yet). */
  claimsNotArbiter: number;
  hellosSent: number;
  hellosReceived: number;
}

/** What a node knows of another, from the frames it accepted from it. */
export interface PeerInfo {
  nodeId: number;
  /** Where its frames come from: its unicast socket. */
  address: string;
  port: number;
  lastHeardMs: number;
  bootEpoch: number;
  lastSequence: number;
  accepted: number;
  /** Frames claiming to be from it that failed authentication, time or replay checks. */
  authFailures: number;
  /** Its state from its last HELLO (messages.ts NodeState); STARTING until one arrives. */
  state: number;
  /** READY: how long it has been ready, from its HELLOs' ready_for_ms (0 otherwise). */
  readyForMs: number;
  /** Frames with its node id come from two sources (address or boot epoch) at once: a duplicate node id. */
  duplicate: boolean;
  /** Incidents of a duplicate node id seen for it (each logged once). */
  duplicateIncidents: number;
}

export interface NativeResponder {
  peers(): PeerInfo[];
  /** Frames the kernel took; throws an errno error if it took none. */
  send(frames: OutboundFrame[]): number;
  setKeyring(keyring: Keyring): void;
  /** Join (true) or leave (false) the group; unicast keeps working. */
  setMembership(joined: boolean): void;
  /** While on, UPDATEs that changed the table are also passed to onFrames (for monitoring). */
  setChangeFeed(on: boolean): void;
  /** This node's state (messages.ts NodeState): sent in HELLOs; only a ready node settles CLAIMs and counts in ranks. */
  setState(state: number): void;
  /**
   * A QUERY (type 1: keys only), UPDATE (3) or CLAIM (8) for many clients,
   * packed natively from canonical keys (key i at offsets[i]..offsets[i+1])
   * and, for entries, fields[4i..4i+3] = endpointId, version, originNode,
   * ttlSeconds; to one node or the group. Items with a key that is not
   * canonical or an endpoint id not interned are skipped.
   */
  sendList(type: number, id: number, answerRank: number, keys: Buffer, offsets: Uint32Array, count: number, fields: Uint32Array | null, address?: string, port?: number): { sent: number; skipped: number; error?: string };
  /**
   * The reply spin (src/transport/reply-spin.ts): reads the reply socket on
   * the calling thread until REPLYs are read or maxMicros (0..1e6) pass, and
   * returns them ([] if none came) for the caller to hand to onFrames; null
   * when the node has no reply socket.
   */
  pollReplies(maxMicros: number): InboundFrame[] | null;
  /** Frames with this node's id from another process (a duplicate node id). */
  selfConflict(): { frames: number; incidents: number; lastMs: number; address: string; port: number; bootEpoch: number };
  stats(): ResponderStats;
  address(): { address: string; port: number; family: 'IPv4' | 'IPv6' };
  /** Stops the I/O thread and closes the sockets; the process can then exit. */
  close(): void;
}

/**
 * A front end's data plane (native/splice_pump.h): carries spliced calls with
 * splice(2) on a thread of its own. Each ended call is reported to onDone.
 */
export interface NativeSplicePump {
  /**
   * Takes over a call: dup()s both socket fds (the caller then closes its
   * sockets); toEndpoint / toClient are written before any spliced octet of
   * their direction. Returns the call's id; throws an errno error (a failed
   * dup) and then has taken nothing.
   */
  add(clientFd: number, endpointFd: number, toEndpoint: Buffer | null, toClient: Buffer | null, idleTimeoutMs: number): number;
  /** Closes a call (reported with reason closed); an id that ended already is ignored. */
  closeCall(id: number): void;
  /** Closes every open call (each reported). */
  closeAll(): void;
  /** Whether the pump keeps the event loop alive (as open sockets do): on while calls are open. */
  ref(): void;
  unref(): void;
  stats(): { callsAdded: number; callsDone: number; callsOpen: number; pipesCreated: number; pipesPooled: number };
  /** Closes every call without reporting them, joins the thread, frees the pipes. */
  close(): void;
}

export interface SplicePumpOptions {
  /** When one side is done for good, how long the other has to finish. */
  lingerMs: number;
  /** F_SETPIPE_SZ for each pipe; 0: the kernel's default. */
  pipeSize: number;
  /** Ended calls reported per onDone call at most. */
  maxBatch: number;
}

export interface NativeCodec {
  decodeMessage(type: number, body: Buffer): Record<string, unknown> | null;
  reencodeMessage(type: number, body: Buffer): Buffer | null;
  inspectFrame(frame: Buffer, keyring: Keyring, nowMs: bigint | number, selfNode: number, selfEpoch?: number): {
    verdict: string;
    header?: { type: number; keyId: number; bodyLength: number; senderNode: number; bootEpoch: number; sequence: bigint; timestampMs: bigint };
  };
  buildFrame(
    header: { type: number; keyId: number; senderNode: number; bootEpoch: number; sequence: bigint | number; timestampMs: bigint | number },
    body: Buffer,
    keyring: Keyring,
  ): Buffer;
  /** native/key_hash.h HashKey(bytes, seed): the hash docs/protocol.md section 9.1 defines. */
  keyHash(bytes: Buffer, seed: bigint): bigint;
  /** The rank of self among self and nodes for octets (a canonical client key, or a node id's 4 octets): native/ranks.h. */
  rankOf(octets: Buffer, self: number, nodes: number[]): number;
  /** The bodies sendList sends for these items; endpoints[i]: the Endpoint encoding of endpoint id i. */
  packList(type: number, id: number, answerRank: number, keys: Buffer, offsets: Uint32Array, count: number, fields: Uint32Array | null, endpoints: Buffer[]): Buffer[];
}

interface Addon {
  AffinityTable: new (capacity: number, endpointCapacity: number) => NativeAffinityTable;
  Responder: new (table: NativeAffinityTable, options: ResponderOptions, onFrames: (frames: InboundFrame[]) => void) => NativeResponder;
  /** onDone: 5 numbers per ended call: id, bytesFromClient, bytesToClient, reason (0 closed, 1 idleTimeout, 2 error), errno. */
  SplicePump: new (options: SplicePumpOptions, onDone: (done: Float64Array) => void) => NativeSplicePump;
  codec: NativeCodec;
  /** sd_notify(3): sends `state` (e.g. "READY=1") to the AF_UNIX datagram socket at socketPath ('@' = abstract). */
  notifyService(socketPath: string, state: string): void;
  limits: { maxFrameSize: number; maxBodySize: number };
}

let addon: Addon | undefined;

/** Loads the addon on first use, with a message that says how to build it. */
export function native(): Addon {
  if (addon) return addon;
  const folder = process.env.AFFINITYD_NATIVE_BUILD || 'build';
  const path = join(isAbsolute(folder) ? folder : join(packageRoot(), folder), 'Release', 'affinityd.node');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    addon = require(path) as Addon;
  } catch (e) {
    const err = new Error(
      `affinityd: cannot load the native addon at ${path} (${(e as Error).message}). ` +
        'Build it with `npm install` or `npm run build:native` (needs g++, make and python3).',
    );
    (err as NodeJS.ErrnoException).code = 'AFFINITYD_NO_ADDON';
    throw err;
  }
  return addon;
}
