// Reference codec of the cluster-maintenance messages (docs/protocol.md,
// "Bulk sync, withdraw and digests"): SYNC_REQUEST, SYNC_CHUNK, WITHDRAW and
// DIGEST. These never take the hot path, so only this codec exists: the
// native responder passes them to JS after checking the frame.
import type { ClientKey } from './client-key';
import {
  checkedKey,
  decode,
  decodeClientKey,
  decodeEntry,
  encode,
  type Entry,
  malformed,
  type PbClientKey,
  type PbEntry,
  plainClientKey,
  plainEntry,
  put,
  u32,
} from './messages';
import { ProtocolError } from './errors';
import { protoType, schemaOf } from './proto';

/** At most this many digest buckets (native/table_digest.h kMaxDigestBuckets). */
export const MAX_DIGEST_BUCKETS = 128;

export interface SyncRequest {
  readonly requestId: number;
  /** The serving node's table position to start from; 0: the start. */
  readonly cursor: number;
  /** Chunks to send before waiting for the next request (at least 1). */
  readonly maxChunks: number;
  /** 0: every entry. Otherwise only keys whose bucket's bit is set in `buckets`. */
  readonly bucketCount: number;
  readonly buckets: Buffer;
  /**
   * A multicast request: 0 every node answers; k > 0 only the nodes ranked
   * below k for the asking node (docs/protocol.md "Ranks"). Absent: 0.
   */
  readonly answerRank?: number;
}

export interface Withdraw {
  readonly clientKey: ClientKey;
  readonly version: number;
  readonly originNode: number;
  /** Marker lifetime; 0: the receiver's default. */
  readonly ttlSeconds: number;
}

export interface SyncChunk {
  readonly requestId: number;
  readonly cursor: number;
  readonly nextCursor: number;
  readonly done: boolean;
  readonly entries: readonly Entry[];
  readonly withdrawals: readonly Withdraw[];
}

export interface Digest {
  readonly bucketCount: number;
  /** bucketCount digests, 8 octets each, little-endian (as table.digest() returns them). */
  readonly buckets: Buffer;
  readonly entries: number;
}

const T = {
  SyncRequest: protoType('SyncRequest'),
  SyncChunk: protoType('SyncChunk'),
  Withdraw: protoType('Withdraw'),
  Digest: protoType('Digest'),
  Entry: protoType('Entry'),
};
const SCHEMA = {
  SyncRequest: schemaOf(T.SyncRequest),
  SyncChunk: schemaOf(T.SyncChunk),
  Withdraw: schemaOf(T.Withdraw),
  Digest: schemaOf(T.Digest),
};

function checkBuckets(bucketCount: number, buckets: Uint8Array, octetsPerBucket: number | 'bitmap'): void {
  if (bucketCount > MAX_DIGEST_BUCKETS) malformed(`bucket_count ${bucketCount} is above ${MAX_DIGEST_BUCKETS}`);
  const want = octetsPerBucket === 'bitmap' ? Math.ceil(bucketCount / 8) : bucketCount * octetsPerBucket;
  if (buckets.length !== want) malformed(`buckets has ${buckets.length} octets, ${want} expected for ${bucketCount} buckets`);
}

// ---- SYNC_REQUEST ----

export function encodeSyncRequest(r: SyncRequest): Buffer {
  const o = {};
  put(o, 'requestId', u32(r.requestId, 'requestId'));
  put(o, 'cursor', u32(r.cursor, 'cursor'));
  put(o, 'maxChunks', u32(r.maxChunks, 'maxChunks'));
  put(o, 'bucketCount', u32(r.bucketCount, 'bucketCount'));
  put(o, 'buckets', r.buckets);
  put(o, 'answerRank', u32(r.answerRank ?? 0, 'answerRank'));
  return encode(T.SyncRequest, o);
}

export function decodeSyncRequest(body: Uint8Array): SyncRequest {
  const m = decode<{ requestId: number; cursor: number; maxChunks: number; bucketCount: number; buckets: Uint8Array; answerRank: number }>(T.SyncRequest, SCHEMA.SyncRequest, body);
  if (m.bucketCount > 0) checkBuckets(m.bucketCount, m.buckets, 'bitmap');
  else if (m.buckets.length > 0) malformed('buckets without bucket_count');
  return { requestId: m.requestId, cursor: m.cursor, maxChunks: Math.max(1, m.maxChunks), bucketCount: m.bucketCount, buckets: Buffer.from(m.buckets), answerRank: m.answerRank };
}

/** Is a key with this DigestKeyHash asked for by the request? */
export function wantsKey(r: SyncRequest, keyHash: number): boolean {
  if (r.bucketCount === 0) return true;
  const b = keyHash % r.bucketCount;
  return (r.buckets[b >> 3] & (1 << (b & 7))) !== 0;
}

/** A bucket bitmap with the given buckets set. */
export function bucketBitmap(bucketCount: number, buckets: Iterable<number>): Buffer {
  const out = Buffer.alloc(Math.ceil(bucketCount / 8));
  for (const b of buckets) out[b >> 3] |= 1 << (b & 7);
  return out;
}

// ---- WITHDRAW ----

function plainWithdraw(w: Withdraw): Record<string, unknown> {
  const o: Record<string, unknown> = { clientKey: plainClientKey(checkedKey(w.clientKey)) };
  put(o, 'version', u32(w.version, 'version'));
  put(o, 'originNode', u32(w.originNode, 'originNode'));
  put(o, 'ttlSeconds', u32(w.ttlSeconds, 'ttlSeconds'));
  return o;
}

interface PbWithdraw { clientKey: PbClientKey | null; version: number; originNode: number; ttlSeconds: number }

function withdrawFrom(m: PbWithdraw): Withdraw {
  return { clientKey: decodeClientKey(m.clientKey), version: m.version, originNode: m.originNode, ttlSeconds: m.ttlSeconds };
}

export function encodeWithdraw(w: Withdraw): Buffer {
  return encode(T.Withdraw, plainWithdraw(w));
}

export function decodeWithdraw(body: Uint8Array): Withdraw {
  return withdrawFrom(decode<PbWithdraw>(T.Withdraw, SCHEMA.Withdraw, body));
}

// ---- SYNC_CHUNK ----

/**
 * Builds SYNC_CHUNK bodies of at most maxBody octets: add() entries and
 * markers until it returns false (this one did not fit), then finish().
 */
export class SyncChunkWriter {
  private readonly entries: Record<string, unknown>[] = [];
  private readonly withdrawals: Record<string, unknown>[] = [];
  private size: number;

  constructor(private readonly requestId: number, private readonly cursor: number, private readonly maxBody: number) {
    // request_id, cursor, next_cursor (5 + 1 octets each at most) and done (2)
    this.size = 20;
  }

  get count(): number {
    return this.entries.length + this.withdrawals.length;
  }

  /** false: it does not fit; finish this chunk and start the next one with it. */
  addEntry(e: Entry): boolean {
    return this.add(this.entries, plainEntry(e), T.Entry);
  }

  addWithdraw(w: Withdraw): boolean {
    return this.add(this.withdrawals, plainWithdraw(w), T.Withdraw);
  }

  private add(list: Record<string, unknown>[], plain: Record<string, unknown>, type: typeof T.Entry): boolean {
    const n = type.encode(plain).finish().length;
    const cost = 1 + (n < 128 ? 1 : 2) + n;
    if (this.size + cost > this.maxBody) return false;
    this.size += cost;
    list.push(plain);
    return true;
  }

  finish(nextCursor: number, done: boolean): Buffer {
    const o = { entries: this.entries, withdrawals: this.withdrawals };
    put(o, 'requestId', u32(this.requestId, 'requestId'));
    put(o, 'cursor', u32(this.cursor, 'cursor'));
    put(o, 'nextCursor', u32(nextCursor, 'nextCursor'));
    if (done) (o as Record<string, unknown>).done = true;
    return encode(T.SyncChunk, o);
  }
}

export function decodeSyncChunk(body: Uint8Array): SyncChunk {
  const m = decode<{ requestId: number; cursor: number; nextCursor: number; done: boolean; entries: PbEntry[]; withdrawals: PbWithdraw[] }>(
    T.SyncChunk,
    SCHEMA.SyncChunk,
    body,
  );
  return {
    requestId: m.requestId,
    cursor: m.cursor,
    nextCursor: m.nextCursor,
    done: m.done,
    entries: m.entries.map((e) => decodeEntry(e)),
    withdrawals: m.withdrawals.map(withdrawFrom),
  };
}

// ---- DIGEST ----

export function encodeDigest(d: Digest): Buffer {
  if (d.bucketCount < 1 || d.bucketCount > MAX_DIGEST_BUCKETS || d.buckets.length !== d.bucketCount * 8) {
    throw new RangeError(`a digest has 1 to ${MAX_DIGEST_BUCKETS} buckets of 8 octets`);
  }
  const o = {};
  put(o, 'bucketCount', u32(d.bucketCount, 'bucketCount'));
  put(o, 'buckets', d.buckets);
  put(o, 'entries', u32(d.entries, 'entries'));
  return encode(T.Digest, o);
}

export function decodeDigest(body: Uint8Array): Digest {
  const m = decode<{ bucketCount: number; buckets: Uint8Array; entries: number }>(T.Digest, SCHEMA.Digest, body);
  if (m.bucketCount < 1) malformed('bucket_count is 0');
  checkBuckets(m.bucketCount, m.buckets, 8);
  return { bucketCount: m.bucketCount, buckets: Buffer.from(m.buckets), entries: m.entries };
}

/**
 * Decodes a body, or returns undefined if it breaks a protocol rule (the
 * caller counts it); any other error is a bug and is thrown.
 */
export function decodeOrUndefined<T>(decode: (body: Uint8Array) => T, body: Uint8Array): T | undefined {
  try {
    return decode(body);
  } catch (e) {
    if (e instanceof ProtocolError) return undefined;
    throw e;
  }
}

/** Buckets whose digests differ between two digests of the same bucket count. */
export function differingBuckets(a: Buffer, b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 8 <= a.length && i + 8 <= b.length; i += 8) if (a.compare(b, i, i + 8, i, i + 8) !== 0) out.push(i / 8);
  return out;
}
