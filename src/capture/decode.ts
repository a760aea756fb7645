// One captured datagram of the cluster protocol, decoded for people: who
// sent it, what it says, and whether its tag verifies under a keyring.
import { formatClientKey } from '../codec/client-key';
import { formatEndpoint } from '../codec/endpoint';
import { classifyBody, type FrameHeader, HEADER_SIZE, inspectFrame, type Keyring, parseHeader, TAG_SIZE } from '../codec/frame';
import { decodeDigest, decodeOrUndefined, decodeSyncChunk, decodeSyncRequest, decodeWithdraw } from '../codec/cluster-messages';
import { MESSAGE_TYPE_NAMES, type Message, MessageType } from '../codec/messages';
import { type ReplayResult, ReplayWindow } from '../codec/replay-window';

export interface CapturedMessage {
  /** Capture time, ms since the epoch (with microseconds as a fraction). */
  readonly timeMs: number;
  readonly src: string;
  readonly dst: string;
  readonly header?: FrameHeader;
  readonly typeName: string;
  readonly message?: Message;
  /**
   * 'ok' (tag verified), 'unchecked' (no key file), or why the frame was
   * refused: badMagic, badVersion, badLength, truncated, oversize, unknownKey,
   * badTag, stale, unknownType, malformedBody.
   */
  readonly auth: string;
  /** When auth is 'replay': which rule of the replay window refused it. */
  readonly replay?: Exclude<ReplayResult, 'new'>;
  /** For SYNC_REQUEST, SYNC_CHUNK, WITHDRAW and DIGEST: what the body says, in brief. */
  readonly detail?: string;
}

/** A one-line summary of a cluster-maintenance body (types 4-7), or undefined. */
export function maintenanceDetail(type: number, body: Buffer): string | undefined {
  switch (type) {
    case MessageType.SyncRequest: {
      const r = decodeOrUndefined(decodeSyncRequest, body);
      return r && `rid ${r.requestId} from ${r.cursor} x${r.maxChunks}${r.bucketCount ? ` buckets ${[...Array(r.bucketCount).keys()].filter((b) => r.buckets[b >> 3] & (1 << (b & 7))).length}/${r.bucketCount}` : ''}${r.answerRank ? ` rank<${r.answerRank}` : ''}`;
    }
    case MessageType.SyncChunk: {
      const c = decodeOrUndefined(decodeSyncChunk, body);
      return c && `rid ${c.requestId} ${c.cursor}..${c.nextCursor} ${c.entries.length} entries ${c.withdrawals.length} markers${c.done ? ' done' : ''}`;
    }
    case MessageType.Withdraw: {
      const w = decodeOrUndefined(decodeWithdraw, body);
      return w && `${formatClientKey(w.clientKey)} v${w.version}/${w.originNode}`;
    }
    case MessageType.Digest: {
      const d = decodeOrUndefined(decodeDigest, body);
      return d && `${d.bucketCount} buckets, ${d.entries} entries`;
    }
  }
  return undefined;
}

/**
 * One datagram, judged as a node judges it (docs/protocol.md section 5), in
 * the same order: size, magic, version, length, key, tag, time (against the
 * capture time), replay (with `replay`, the window of every sender seen so
 * far; see CaptureDecoder), type, and the body, including the bodies of
 * types 4-7 that a node decodes in JavaScript. Without a keyring the key
 * and tag checks are skipped ('unchecked') and the rest still made.
 */
export function decodeCaptured(data: Buffer, timeMs: number, src: string, dst: string, keyring?: Keyring, maxSkewMs = 30_000, replay?: ReplayWindow): CapturedMessage {
  const { verdict, header } = parseHeader(data);
  if (!header) return { timeMs, src, dst, typeName: '?', auth: verdict };
  const typeName = MESSAGE_TYPE_NAMES[header.type] ?? `type-${header.type}`;
  let r;
  if (keyring) {
    // the time check is against the capture time, not the reader's clock
    r = inspectFrame(data, { keyring, nowMs: BigInt(Math.round(timeMs)), maxSkewMs });
    if (r.verdict !== 'accepted' && r.verdict !== 'unknownType' && r.verdict !== 'malformedBody') return { timeMs, src, dst, header, typeName, auth: r.verdict };
  } else {
    // no key: checks 7 and 8 are skipped, the time check (9) is still made, against the capture time
    const now = BigInt(Math.round(timeMs));
    const skew = header.timestampMs > now ? header.timestampMs - now : now - header.timestampMs;
    if (skew > BigInt(maxSkewMs)) return { timeMs, src, dst, header, typeName, auth: 'stale' };
    r = classifyBody(header, Buffer.from(data.subarray(HEADER_SIZE, data.length - TAG_SIZE)));
  }
  // replay is check 11 (docs/protocol.md section 5): after the time check, before the type and body
  // checks (12, 13), and only frames that passed 1 to 10 move the window. Checks 6 and 10 (ownFrame,
  // duplicateNode) compare with the receiver's own id: a capture has none, so they refuse nothing here.
  if (replay) {
    const seen = replay.check(header.senderNode, header.bootEpoch, header.sequence, timeMs);
    if (seen !== 'new') return { timeMs, src, dst, header, typeName, auth: 'replay', replay: seen };
  }
  if (r.verdict !== 'accepted') return { timeMs, src, dst, header, typeName, auth: r.verdict };
  let detail: string | undefined;
  if (r.body && header.type >= MessageType.SyncRequest && header.type <= MessageType.Digest) {
    // types 4-7: a node decodes these in JavaScript and refuses (counts) a body that does not decode
    detail = maintenanceDetail(header.type, r.body);
    if (detail === undefined) return { timeMs, src, dst, header, typeName, auth: 'malformedBody' };
  }
  return { timeMs, src, dst, header, typeName, message: r.message, auth: keyring ? 'ok' : 'unchecked', detail };
}

/** decodeCaptured over a stream of datagrams, with one replay window per sender as the nodes keep. */
export class CaptureDecoder {
  private readonly replay = new ReplayWindow();

  constructor(private readonly keyring?: Keyring, private readonly maxSkewMs = 30_000) {}

  decode(data: Buffer, timeMs: number, src: string, dst: string): CapturedMessage {
    return decodeCaptured(data, timeMs, src, dst, this.keyring, this.maxSkewMs, this.replay);
  }
}

const more = (n: number): string => (n > 1 ? ` (+${n - 1} more)` : '');

const STATE_NAMES = ['starting', 'ready', 'stopping'];

interface Described {
  key?: string;
  endpoint?: string;
  version?: number;
  queryId?: number;
  rank?: number;
  /** HELLO: the sender's state, HELLO interval, entries held and (READY) how long it has been ready. */
  state?: string;
  intervalMs?: number;
  entries?: number;
  readyForMs?: number;
}

function describe(m?: Message): Described {
  if (!m) return {};
  switch (m.type) {
    case MessageType.Query:
      return { key: formatClientKey(m.query.keys[0]) + more(m.query.keys.length), queryId: m.query.queryId, ...(m.query.answerRank ? { rank: m.query.answerRank } : {}) };
    case MessageType.Reply: {
      const e = m.reply.entries[0];
      return { key: formatClientKey(e.clientKey) + more(m.reply.entries.length), endpoint: formatEndpoint(e.endpoint), version: e.version, queryId: m.reply.queryId };
    }
    case MessageType.Update: {
      const e = m.update.entries[0];
      return { key: formatClientKey(e.clientKey) + more(m.update.entries.length), endpoint: formatEndpoint(e.endpoint), version: e.version };
    }
    case MessageType.Claim: {
      const e = m.claim.proposals[0];
      return { key: formatClientKey(e.clientKey) + more(m.claim.proposals.length), endpoint: formatEndpoint(e.endpoint), version: e.version, queryId: m.claim.claimId };
    }
    case MessageType.Hello: {
      const h = m.hello;
      return { state: STATE_NAMES[h.state], intervalMs: h.intervalMs, entries: h.entries, ...(h.readyForMs ? { readyForMs: h.readyForMs } : {}) };
    }
  }
}

/** One line in the manner of tcpdump. */
export function formatLine(c: CapturedMessage): string {
  const t = new Date(Math.floor(c.timeMs)).toISOString().slice(11, 23) + String(Math.round((c.timeMs % 1) * 1000)).padStart(3, '0');
  if (!c.header) return `${t} ${c.src} > ${c.dst} not affinityd (${c.auth})`;
  const d = describe(c.message);
  const parts = [`${t} node ${c.header.senderNode} ${c.src} > ${c.dst} ${c.typeName}`];
  if (d.key) parts.push(d.key);
  if (d.endpoint) parts.push(`-> ${d.endpoint}`);
  if (d.version !== undefined) parts.push(`v${d.version}`);
  if (d.queryId !== undefined) parts.push(`qid ${d.queryId}`);
  if (d.rank !== undefined) parts.push(`rank<${d.rank}`);
  if (d.state) parts.push(`${d.state}, ${d.entries} entries, interval ${d.intervalMs} ms${d.readyForMs ? `, ready for ${d.readyForMs} ms` : ''}`);
  if (c.detail) parts.push(c.detail);
  parts.push(`seq ${c.header.sequence}`, `key ${c.header.keyId}`, `auth ${c.auth}${c.replay && c.replay !== 'replay' ? ` (${c.replay})` : ''}`);
  return parts.join(' ');
}

/** One JSON object per message (--json). */
export function toJson(c: CapturedMessage): Record<string, unknown> {
  const d = describe(c.message);
  return {
    time: new Date(Math.floor(c.timeMs)).toISOString(),
    timeMs: c.timeMs,
    src: c.src,
    dst: c.dst,
    type: c.typeName,
    node: c.header?.senderNode,
    bootEpoch: c.header?.bootEpoch,
    sequence: c.header?.sequence.toString(),
    keyId: c.header?.keyId,
    ...d,
    ...(c.detail ? { detail: c.detail } : {}),
    auth: c.auth,
    ...(c.replay ? { replay: c.replay } : {}),
  };
}
