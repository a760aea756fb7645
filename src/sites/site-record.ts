// The value of a client's key in Redis: a site record (docs/sites.md,
// "Record format"). A fixed header that the server-side scripts read
// (format, kind, version, origin node), the name of the site that wrote it,
// then the entry or withdraw marker in the reference codec
// (proto/affinity.proto Entry / Withdraw, src/codec), so a node and Redis
// never disagree on a format. The lifetime is the key's PX, not a field: the
// body's ttl_seconds is written as 0 and read back from PTTL.
//
//   octet 0      format, 1
//   octet 1      kind: 1 entry, 2 withdraw marker
//   octets 2-5   version, unsigned 32 bits big-endian (the body's version)
//   octets 6-9   origin node, unsigned 32 bits big-endian (the body's origin_node)
//   octet 10     n, the length of the site name (1 to 32)
//   octets 11..  the site name, n octets of [A-Za-z0-9._-]
//   then         the body: an encoded Entry (kind 1) or Withdraw (kind 2)
import { type ClientKey, sameClientKey } from '../codec/client-key';
import { decodeWithdraw, encodeWithdraw, type Withdraw } from '../codec/cluster-messages';
import { sameEndpoint } from '../codec/endpoint';
import { ProtocolError } from '../codec/errors';
import { decode, decodeEntry, encode, type Entry, type PbEntry, plainEntry } from '../codec/messages';
import { protoType, schemaOf } from '../codec/proto';

export const RECORD_FORMAT = 1;
export const HEADER_OCTETS = 11;
export const MAX_SITE_NAME_OCTETS = 32;

export enum RecordKind {
  Entry = 1,
  Withdraw = 2,
}

/** What a site directory holds for a client: an entry or a withdraw marker, and the site that wrote it. */
export type SiteRecord =
  | { readonly kind: 'entry'; readonly entry: Entry; readonly site: string }
  | { readonly kind: 'withdraw'; readonly withdraw: Withdraw; readonly site: string };

const SITE_NAME = /^[A-Za-z0-9._-]{1,32}$/;

export function siteNameProblem(name: string): string | undefined {
  return SITE_NAME.test(name) ? undefined : `"${name}" must be 1 to ${MAX_SITE_NAME_OCTETS} characters of A-Z a-z 0-9 . _ -`;
}

const EntryType = protoType('Entry');
const ENTRY_SCHEMA = schemaOf(EntryType);

const bad = (why: string): never => {
  throw new ProtocolError('badSiteRecord', why);
};

export function recordClientKey(r: SiteRecord): ClientKey {
  return r.kind === 'entry' ? r.entry.clientKey : r.withdraw.clientKey;
}

export function recordVersion(r: SiteRecord): { version: number; originNode: number } {
  return r.kind === 'entry' ? r.entry : r.withdraw;
}

/** The version rule (docs/protocol.md section 9): does a beat b? Compare version, then origin node. */
export function beats(a: SiteRecord, b: SiteRecord): boolean {
  const x = recordVersion(a);
  const y = recordVersion(b);
  return x.version > y.version || (x.version === y.version && x.originNode > y.originNode);
}

/** Remaining lifetime in seconds of a record read with this PTTL (ms), rounded up; 0 if unknown. */
export function ttlFromPttl(pttlMs: number): number {
  return pttlMs > 0 ? Math.ceil(pttlMs / 1000) : 0;
}

export function withTtl(r: SiteRecord, ttlSeconds: number): SiteRecord {
  return r.kind === 'entry' ? { ...r, entry: { ...r.entry, ttlSeconds } } : { ...r, withdraw: { ...r.withdraw, ttlSeconds } };
}

export function encodeRecord(r: SiteRecord): Buffer {
  const problem = siteNameProblem(r.site);
  if (problem) throw new ProtocolError('badSiteName', `site name ${problem}`);
  const body = r.kind === 'entry' ? encode(EntryType, plainEntry({ ...r.entry, ttlSeconds: 0 })) : encodeWithdraw({ ...r.withdraw, ttlSeconds: 0 });
  const v = recordVersion(r);
  const site = Buffer.from(r.site, 'ascii');
  const out = Buffer.allocUnsafe(HEADER_OCTETS + site.length + body.length);
  out[0] = RECORD_FORMAT;
  out[1] = r.kind === 'entry' ? RecordKind.Entry : RecordKind.Withdraw;
  out.writeUInt32BE(v.version, 2);
  out.writeUInt32BE(v.originNode, 6);
  out[10] = site.length;
  site.copy(out, HEADER_OCTETS);
  body.copy(out, HEADER_OCTETS + site.length);
  return out;
}

/**
 * Decodes a record with every rule checked; ttlSeconds is filled from the
 * key's PTTL. Throws ProtocolError (code badSiteRecord, or the codec's) for
 * anything that is not a well-formed record of this format.
 */
export function decodeRecord(value: Uint8Array, pttlMs = 0): SiteRecord {
  if (value.length < HEADER_OCTETS) bad(`a record has at least ${HEADER_OCTETS} octets, got ${value.length}`);
  if (value[0] !== RECORD_FORMAT) bad(`record format ${value[0]} is not ${RECORD_FORMAT}`);
  const kind = value[1];
  if (kind !== RecordKind.Entry && kind !== RecordKind.Withdraw) bad(`record kind ${kind} is not 1 (entry) or 2 (withdraw)`);
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  const version = buf.readUInt32BE(2);
  const originNode = buf.readUInt32BE(6);
  const n = value[10];
  if (n < 1 || n > MAX_SITE_NAME_OCTETS || HEADER_OCTETS + n > value.length) bad(`site name length ${n} does not fit`);
  const site = buf.toString('latin1', HEADER_OCTETS, HEADER_OCTETS + n);
  if (siteNameProblem(site)) bad('site name has characters outside A-Z a-z 0-9 . _ -');
  const body = value.subarray(HEADER_OCTETS + n);
  const ttlSeconds = ttlFromPttl(pttlMs);
  let r: SiteRecord;
  if (kind === RecordKind.Entry) {
    const e = decodeEntry(decode<PbEntry>(EntryType, ENTRY_SCHEMA, body));
    r = { kind: 'entry', entry: { ...e, ttlSeconds }, site };
  } else {
    r = { kind: 'withdraw', withdraw: { ...decodeWithdraw(body), ttlSeconds }, site };
  }
  const v = recordVersion(r);
  if (v.version !== version || v.originNode !== originNode) {
    bad(`header says v${version}/${originNode}, body says v${v.version}/${v.originNode}`);
  }
  return r;
}

/** A record read from the key of `key`: it must be that client's. */
export function decodeRecordFor(key: ClientKey, value: Uint8Array, pttlMs = 0): SiteRecord {
  const r = decodeRecord(value, pttlMs);
  if (!sameClientKey(recordClientKey(r), key)) bad('the record names another client than its key');
  return r;
}

/** Same decision: same kind, version, origin, and (for entries) endpoint. Lifetimes and sites aside. */
export function sameRecord(a: SiteRecord, b: SiteRecord): boolean {
  if (a.kind !== b.kind) return false;
  const x = recordVersion(a);
  const y = recordVersion(b);
  if (x.version !== y.version || x.originNode !== y.originNode) return false;
  if (a.kind === 'entry' && b.kind === 'entry') {
    return sameEndpoint(a.entry.endpoint, b.entry.endpoint);
  }
  return true;
}

/** The same decision for the client: both withdrawn, or both entries to the same endpoint (versions aside). */
export function sameDecision(a: SiteRecord, b: SiteRecord): boolean {
  if (a.kind !== b.kind) return false;
  return a.kind === 'withdraw' || sameEndpoint(a.entry.endpoint, (b as Extract<SiteRecord, { kind: 'entry' }>).entry.endpoint);
}
