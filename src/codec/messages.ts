// The reference codec of every message body: protobufjs over proto/affinity.proto,
// with the protocol's strict wire rules (wire-check.ts) and semantic rules
// (client keys, endpoints). native/messages.cc must agree byte for byte.
import type * as protobuf from 'protobufjs';

import {
  type ClientKey,
  type DiscriminatorClass,
  validateDiscriminator,
  validateUsernameBytes,
  clientKey as checkedClientKey,
} from './client-key';
import { addressBytes, addressText, type Endpoint, endpointNameFromBytes, validateEndpoint } from './endpoint';
import { ProtocolError } from './errors';
import { protoType, schemaOf } from './proto';
import { checkWire, type WireSchema } from './wire-check';

/** Frame header octet 3. */
export enum MessageType {
  Query = 1,
  Reply = 2,
  Update = 3,
  /** Bulk sync and digest repair: send me your entries (cluster-messages.ts). */
  SyncRequest = 4,
  /** A part of a table, unicast to the node that asked. */
  SyncChunk = 5,
  /** An entry is deleted as of a version. */
  Withdraw = 6,
  /** Bucket digests of a table, for anti-entropy. */
  Digest = 7,
  /** A proposed entry for a new client, to its arbiter (agreement). */
  Claim = 8,
  /** A node is alive, and its state. */
  Hello = 9,
}

export const MESSAGE_TYPE_NAMES: Record<number, string> = {
  1: 'QUERY',
  2: 'REPLY',
  3: 'UPDATE',
  4: 'SYNC_REQUEST',
  5: 'SYNC_CHUNK',
  6: 'WITHDRAW',
  7: 'DIGEST',
  8: 'CLAIM',
  9: 'HELLO',
};

/** A node's state as HELLO announces it (proto NodeState). */
export enum NodeState {
  /** syncing its table: not an arbiter yet */
  Starting = 0,
  Ready = 1,
  /** leaving: count it out at once */
  Stopping = 2,
}

/** One affinity entry as it travels between nodes. */
export interface Entry {
  readonly clientKey: ClientKey;
  readonly endpoint: Endpoint;
  readonly version: number;
  readonly originNode: number;
  /** Remaining lifetime in seconds; 0: the receiver's default. */
  readonly ttlSeconds: number;
}

/** Is there an entry for these clients? At least one key. */
export interface Query {
  readonly keys: readonly ClientKey[];
  readonly queryId: number;
  /** 0: every directory holding an entry answers; k > 0: only those ranked below k (docs/protocol.md, "Ranks"). */
  readonly answerRank: number;
}

/** A directory's entries for the clients of a QUERY or a CLAIM. At least one entry. */
export interface Reply {
  readonly queryId: number;
  readonly entries: readonly Entry[];
}

/** Store these entries. At least one. */
export interface Update {
  readonly entries: readonly Entry[];
}

/** Proposed entries for new clients, to their arbiter. At least one. */
export interface Claim {
  readonly claimId: number;
  readonly proposals: readonly Entry[];
  /** The proposals are an earlier arbiter's answers, carried on to the client's new arbiter (docs/protocol.md "Handover"). */
  readonly handover?: boolean;
}

export interface Hello {
  readonly state: NodeState;
  readonly intervalMs: number;
  readonly entries: number;
  /** READY: milliseconds since the sender became ready (saturating at 2^32-1); 0 otherwise. Arbiters count from it. */
  readonly readyForMs?: number;
}

export type Message =
  | { readonly type: MessageType.Query; readonly query: Query }
  | { readonly type: MessageType.Reply; readonly reply: Reply }
  | { readonly type: MessageType.Update; readonly update: Update }
  | { readonly type: MessageType.Claim; readonly claim: Claim }
  | { readonly type: MessageType.Hello; readonly hello: Hello };

const T = {
  ClientKey: protoType('ClientKey'),
  Entry: protoType('Entry'),
  Endpoint: protoType('Endpoint'),
  Query: protoType('Query'),
  Reply: protoType('Reply'),
  Update: protoType('Update'),
  Claim: protoType('Claim'),
  Hello: protoType('Hello'),
};
const SCHEMA = { Query: schemaOf(T.Query), Reply: schemaOf(T.Reply), Update: schemaOf(T.Update), Claim: schemaOf(T.Claim), Hello: schemaOf(T.Hello) };

// ---- encoding: proto3 scalars at their default are left out (protobufjs
// writes a field that is set even at its default, so they are never set) ----

export type Plain = Record<string, unknown>;
export function put(o: Plain, k: string, v: number | Uint8Array): Plain {
  if (typeof v === 'number' ? v !== 0 : v.length > 0) o[k] = v;
  return o;
}

export function plainClientKey(k: ClientKey): Plain {
  const o: Plain = {};
  put(o, 'discriminatorClass', k.discriminator.class);
  put(o, 'discriminatorAddress', k.discriminator.address);
  put(o, 'username', Buffer.from(k.username, 'utf8'));
  return o;
}

export function plainEndpoint(e: Endpoint): Plain {
  validateEndpoint(e);
  const endpoint: Plain = {};
  put(endpoint, 'address', addressBytes(e.address));
  put(endpoint, 'port', e.port);
  put(endpoint, 'name', Buffer.from(e.name, 'utf8'));
  return endpoint;
}

/** An Endpoint message alone (what digests hash, and what the native registry pre-encodes). */
export function encodeEndpoint(e: Endpoint): Buffer {
  return encode(T.Endpoint, plainEndpoint(e));
}

export function plainEntry(e: Entry): Plain {
  const o: Plain = { clientKey: plainClientKey(checkedKey(e.clientKey)), endpoint: plainEndpoint(e.endpoint) };
  put(o, 'version', u32(e.version, 'version'));
  put(o, 'originNode', u32(e.originNode, 'originNode'));
  put(o, 'ttlSeconds', u32(e.ttlSeconds, 'ttlSeconds'));
  return o;
}

export function u32(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new ProtocolError('badField', `${name} must be an integer from 0 to 2^32-1, got ${v}`);
  }
  return v;
}

export function checkedKey(k: ClientKey): ClientKey {
  return checkedClientKey(k.discriminator, k.username);
}

export function encode(type: protobuf.Type, o: Plain): Buffer {
  return Buffer.from(type.encode(o).finish());
}

function atLeastOne<T>(list: readonly T[], what: string): readonly T[] {
  if (list.length === 0) throw new ProtocolError('badField', `at least one ${what} is needed`);
  return list;
}

export function encodeQuery(q: Query): Buffer {
  const [first, ...more] = atLeastOne(q.keys, 'client key');
  const o: Plain = { clientKey: plainClientKey(checkedKey(first)) };
  put(o, 'queryId', u32(q.queryId, 'queryId'));
  put(o, 'answerRank', u32(q.answerRank, 'answerRank'));
  if (more.length) o.moreKeys = more.map((k) => plainClientKey(checkedKey(k)));
  return encode(T.Query, o);
}

export function encodeReply(r: Reply): Buffer {
  const [first, ...more] = atLeastOne(r.entries, 'entry');
  const o: Plain = {};
  put(o, 'queryId', u32(r.queryId, 'queryId'));
  o.entry = plainEntry(first);
  if (more.length) o.moreEntries = more.map(plainEntry);
  return encode(T.Reply, o);
}

export function encodeUpdate(u: Update): Buffer {
  const [first, ...more] = atLeastOne(u.entries, 'entry');
  const o: Plain = { entry: plainEntry(first) };
  if (more.length) o.moreEntries = more.map(plainEntry);
  return encode(T.Update, o);
}

export function encodeClaim(c: Claim): Buffer {
  const o: Plain = {};
  put(o, 'claimId', u32(c.claimId, 'claimId'));
  o.proposals = atLeastOne(c.proposals, 'proposal').map(plainEntry);
  if (c.handover) o.handover = true;
  return encode(T.Claim, o);
}

export function encodeHello(h: Hello): Buffer {
  const o: Plain = {};
  put(o, 'state', u32(h.state, 'state'));
  put(o, 'intervalMs', u32(h.intervalMs, 'intervalMs'));
  put(o, 'entries', u32(h.entries, 'entries'));
  put(o, 'readyForMs', u32(h.readyForMs ?? 0, 'readyForMs'));
  return encode(T.Hello, o);
}

export function encodeMessage(m: Message): Buffer {
  switch (m.type) {
    case MessageType.Query:
      return encodeQuery(m.query);
    case MessageType.Reply:
      return encodeReply(m.reply);
    case MessageType.Update:
      return encodeUpdate(m.update);
    case MessageType.Claim:
      return encodeClaim(m.claim);
    case MessageType.Hello:
      return encodeHello(m.hello);
  }
}

/**
 * Octets an Entry adds to a REPLY, UPDATE or CLAIM body beside the others
 * (its tag, length and encoding), so senders can fill frames to the limit.
 */
export function entryCost(e: Entry): number {
  const n = T.Entry.encode(plainEntry(e)).finish().length;
  return 1 + varintLength(n) + n;
}

/** Octets a client key adds to a QUERY body. */
export function keyCost(k: ClientKey): number {
  const n = T.ClientKey.encode(plainClientKey(k)).finish().length;
  return 1 + varintLength(n) + n;
}

const varintLength = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

// ---- decoding: wire rules first, then protobufjs, then semantic rules ----

export interface PbClientKey { discriminatorClass: number; discriminatorAddress: Uint8Array; username: Uint8Array }
interface PbEndpoint { address: Uint8Array; port: number; name: Uint8Array }
export interface PbEntry { clientKey: PbClientKey | null; endpoint: PbEndpoint | null; version: number; originNode: number; ttlSeconds: number }

export const malformed = (why: string): never => {
  throw new ProtocolError('malformedBody', why);
};

export function decodeClientKey(k: PbClientKey | null): ClientKey {
  if (!k) return malformed('client key missing');
  const address = Buffer.from(k.discriminatorAddress);
  try {
    validateDiscriminator(k.discriminatorClass, address);
    // protobufjs leaves an absent bytes field as a plain empty array.
    const username = validateUsernameBytes(Buffer.from(k.username));
    return { discriminator: { class: k.discriminatorClass as DiscriminatorClass, address }, username };
  } catch (e) {
    return malformed((e as Error).message);
  }
}

export function decodeEntry(e: PbEntry | null): Entry {
  if (!e) return malformed('entry missing');
  const clientKey = decodeClientKey(e.clientKey);
  const ep = e.endpoint;
  if (!ep) return malformed('endpoint missing');
  let endpoint: Endpoint;
  try {
    if (ep.port < 1 || ep.port > 65535) throw new Error(`endpoint port ${ep.port} is not 1 to 65535`);
    endpoint = { address: addressText(Buffer.from(ep.address)), port: ep.port, name: endpointNameFromBytes(Buffer.from(ep.name)) };
  } catch (err) {
    return malformed((err as Error).message);
  }
  return { clientKey, endpoint, version: e.version, originNode: e.originNode, ttlSeconds: e.ttlSeconds };
}

export function decode<M>(type: protobuf.Type, schema: WireSchema, body: Uint8Array): M {
  checkWire(body, schema);
  try {
    return type.decode(body) as unknown as M;
  } catch (e) {
    return malformed(`protobuf: ${(e as Error).message}`);
  }
}

export function decodeQuery(body: Uint8Array): Query {
  const m = decode<{ clientKey: PbClientKey | null; queryId: number; answerRank: number; moreKeys: PbClientKey[] }>(T.Query, SCHEMA.Query, body);
  return { keys: [decodeClientKey(m.clientKey), ...m.moreKeys.map(decodeClientKey)], queryId: m.queryId, answerRank: m.answerRank };
}

export function decodeReply(body: Uint8Array): Reply {
  const m = decode<{ queryId: number; entry: PbEntry | null; moreEntries: PbEntry[] }>(T.Reply, SCHEMA.Reply, body);
  return { queryId: m.queryId, entries: [decodeEntry(m.entry), ...m.moreEntries.map(decodeEntry)] };
}

export function decodeUpdate(body: Uint8Array): Update {
  const m = decode<{ entry: PbEntry | null; moreEntries: PbEntry[] }>(T.Update, SCHEMA.Update, body);
  return { entries: [decodeEntry(m.entry), ...m.moreEntries.map(decodeEntry)] };
}

export function decodeClaim(body: Uint8Array): Claim {
  const m = decode<{ claimId: number; proposals: PbEntry[]; handover: boolean }>(T.Claim, SCHEMA.Claim, body);
  if (m.proposals.length === 0) malformed('a CLAIM has no proposal');
  return { claimId: m.claimId, proposals: m.proposals.map(decodeEntry), handover: !!m.handover };
}

export function decodeHello(body: Uint8Array): Hello {
  const m = decode<{ state: number; intervalMs: number; entries: number; readyForMs: number }>(T.Hello, SCHEMA.Hello, body);
  // an enum decodes as int32: a state of 2^32-1 arrives as -1
  if (!(m.state >= 0 && m.state <= NodeState.Stopping)) malformed(`HELLO state ${m.state} is not 0 to 2`);
  return { state: m.state, intervalMs: m.intervalMs, entries: m.entries, readyForMs: m.readyForMs };
}

/** Decodes a body of a type this codec knows; throws ProtocolError otherwise. */
export function decodeMessage(type: number, body: Uint8Array): Message {
  switch (type) {
    case MessageType.Query:
      return { type, query: decodeQuery(body) };
    case MessageType.Reply:
      return { type, reply: decodeReply(body) };
    case MessageType.Update:
      return { type, update: decodeUpdate(body) };
    case MessageType.Claim:
      return { type, claim: decodeClaim(body) };
    case MessageType.Hello:
      return { type, hello: decodeHello(body) };
    default:
      throw new ProtocolError('unknownType', `no body codec for message type ${type}`);
  }
}
