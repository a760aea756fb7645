// Frames: the fixed 32-octet header, the protobuf body and a 16-octet tag
// (HMAC-SHA256 truncated) over both. docs/protocol.md "Frame" is the
// byte-by-byte definition; native/frame.cc is the other implementation.
import { createHmac, timingSafeEqual } from 'node:crypto';

import { ProtocolError } from './errors';
import { decodeMessage, type Message, MessageType } from './messages';

export const MAGIC = 0xafd1;
export const PROTOCOL_VERSION = 1;
export const HEADER_SIZE = 32;
export const TAG_SIZE = 16;
export const MAX_FRAME_SIZE = 1400;
export const MAX_BODY_SIZE = MAX_FRAME_SIZE - HEADER_SIZE - TAG_SIZE;
/** Octets of a keyring secret (the HMAC key), not of a client key (client-key.ts MAX_KEY_OCTETS). */
export const MIN_SECRET_OCTETS = 16;
export const MAX_SECRET_OCTETS = 64;

/** Why a frame was refused; the order is the order of the checks. Same names as native/wire.h. */
export type Verdict =
  | 'accepted'
  | 'oversize'
  | 'truncated'
  | 'badMagic'
  | 'badVersion'
  | 'badLength'
  | 'ownFrame'
  | 'unknownKey'
  | 'badTag'
  | 'stale'
  | 'duplicateNode'
  | 'replay'
  | 'unknownType'
  | 'malformedBody';

export const VERDICTS: readonly Verdict[] = [
  'accepted', 'oversize', 'truncated', 'badMagic', 'badVersion', 'badLength', 'ownFrame',
  'unknownKey', 'badTag', 'stale', 'duplicateNode', 'replay', 'unknownType', 'malformedBody',
];

export interface FrameHeader {
  readonly type: number;
  readonly keyId: number;
  readonly bodyLength: number;
  readonly senderNode: number;
  readonly bootEpoch: number;
  readonly sequence: bigint;
  readonly timestampMs: bigint;
}

/** Cluster keys; every key is accepted on receive, frames are sent under sendKeyId. */
export interface Keyring {
  readonly keys: readonly { readonly id: number; readonly secret: Buffer }[];
  readonly sendKeyId: number;
}

export function validateKeyring(k: Keyring): void {
  const ids = new Set<number>();
  for (const key of k.keys) {
    if (!Number.isInteger(key.id) || key.id < 0 || key.id > 0xffff) {
      throw new ProtocolError('badKeyId', `key id must be 0 to 65535, got ${key.id}`);
    }
    if (ids.has(key.id)) throw new ProtocolError('badKeyId', `key id ${key.id} appears twice`);
    ids.add(key.id);
    if (key.secret.length < MIN_SECRET_OCTETS || key.secret.length > MAX_SECRET_OCTETS) {
      throw new ProtocolError('badKey', `key ${key.id} must be ${MIN_SECRET_OCTETS} to ${MAX_SECRET_OCTETS} octets`);
    }
  }
  if (!ids.has(k.sendKeyId)) throw new ProtocolError('badKeyId', `sendKeyId ${k.sendKeyId} names no key`);
}

function tag(secret: Buffer, data: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(data).digest().subarray(0, TAG_SIZE);
}

/** Header (with bodyLength), body and tag under header.keyId. */
export function encodeFrame(header: Omit<FrameHeader, 'bodyLength'>, body: Uint8Array, keyring: Keyring): Buffer {
  if (body.length > MAX_BODY_SIZE) throw new ProtocolError('oversize', `body of ${body.length} octets exceeds ${MAX_BODY_SIZE}`);
  const key = keyring.keys.find((k) => k.id === header.keyId);
  if (!key) throw new ProtocolError('unknownKey', `no key with id ${header.keyId}`);
  const f = Buffer.alloc(HEADER_SIZE + body.length + TAG_SIZE);
  f.writeUInt16BE(MAGIC, 0);
  f.writeUInt8(PROTOCOL_VERSION, 2);
  f.writeUInt8(header.type, 3);
  f.writeUInt16BE(header.keyId, 4);
  f.writeUInt16BE(body.length, 6);
  f.writeUInt32BE(header.senderNode, 8);
  f.writeUInt32BE(header.bootEpoch, 12);
  f.writeBigUInt64BE(header.sequence, 16);
  f.writeBigUInt64BE(header.timestampMs, 24);
  f.set(body, HEADER_SIZE);
  tag(key.secret, f.subarray(0, HEADER_SIZE + body.length)).copy(f, HEADER_SIZE + body.length);
  return f;
}

/** Size, magic, version and length; the header if they pass. */
export function parseHeader(frame: Uint8Array): { verdict: Verdict; header?: FrameHeader } {
  if (frame.length > MAX_FRAME_SIZE) return { verdict: 'oversize' };
  if (frame.length < HEADER_SIZE + TAG_SIZE) return { verdict: 'truncated' };
  const b = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
  if (b.readUInt16BE(0) !== MAGIC) return { verdict: 'badMagic' };
  if (b[2] !== PROTOCOL_VERSION) return { verdict: 'badVersion' };
  const header: FrameHeader = {
    type: b[3],
    keyId: b.readUInt16BE(4),
    bodyLength: b.readUInt16BE(6),
    senderNode: b.readUInt32BE(8),
    bootEpoch: b.readUInt32BE(12),
    sequence: b.readBigUInt64BE(16),
    timestampMs: b.readBigUInt64BE(24),
  };
  if (header.bodyLength + HEADER_SIZE + TAG_SIZE !== frame.length) return { verdict: 'badLength' };
  return { verdict: 'accepted', header };
}

export interface InspectOptions {
  readonly keyring: Keyring;
  readonly nowMs: bigint | number;
  /** Frames with this node id (and selfBootEpoch, if given) are 'ownFrame'; 0 checks nothing. */
  readonly selfNode?: number;
  /** This node's boot epoch: its id with another epoch is 'duplicateNode' once authentic. */
  readonly selfBootEpoch?: number;
  readonly maxSkewMs?: number;
}

export interface Inspection {
  readonly verdict: Verdict;
  readonly header?: FrameHeader;
  /** The decoded body, for QUERY, REPLY and UPDATE frames that passed. */
  readonly message?: Message;
  readonly body?: Buffer;
}

/**
 * Every check a receiver makes except replay (which needs the history of a
 * sender; see replay-window.ts): the same verdicts as native/frame.cc.
 */
export function inspectFrame(frame: Uint8Array, o: InspectOptions): Inspection {
  const { verdict, header } = parseHeader(frame);
  if (!header) return { verdict };
  const selfId = !!o.selfNode && header.senderNode === o.selfNode;
  if (selfId && (!o.selfBootEpoch || header.bootEpoch === o.selfBootEpoch)) return { verdict: 'ownFrame', header };
  const key = o.keyring.keys.find((k) => k.id === header.keyId);
  if (!key) return { verdict: 'unknownKey', header };
  const end = HEADER_SIZE + header.bodyLength;
  const expect = tag(key.secret, frame.subarray(0, end));
  if (!timingSafeEqual(expect, frame.subarray(end, end + TAG_SIZE))) return { verdict: 'badTag', header };
  const now = BigInt(o.nowMs);
  const skew = header.timestampMs > now ? header.timestampMs - now : now - header.timestampMs;
  if (skew > BigInt(o.maxSkewMs ?? 30000)) return { verdict: 'stale', header };
  if (selfId) return { verdict: 'duplicateNode', header };
  const body = Buffer.from(frame.subarray(HEADER_SIZE, end));
  return classifyBody(header, body);
}

/** Type and body checks of a frame whose header and tag are already verified. */
export function classifyBody(header: FrameHeader, body: Buffer): Inspection {
  if (header.type < MessageType.Query || header.type > MessageType.Hello) return { verdict: 'unknownType', header };
  // sync, withdraw and digest bodies are checked where they are used (the JS side of a node)
  if (header.type >= MessageType.SyncRequest && header.type <= MessageType.Digest) return { verdict: 'accepted', header, body };
  try {
    return { verdict: 'accepted', header, body, message: decodeMessage(header.type, body) };
  } catch (e) {
    if (e instanceof ProtocolError) return { verdict: 'malformedBody', header, body };
    throw e;
  }
}
