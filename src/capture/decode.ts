// One captured datagram of the cluster protocol, decoded for people: who
// sent it, what it says, and whether its tag verifies under a keyring.
import { formatClientKey } from '../codec/client-key';
import { formatEndpoint } from '../codec/endpoint';
import { classifyBody, type FrameHeader, HEADER_SIZE, inspectFrame, type Keyring, parseHeader, TAG_SIZE } from '../codec/frame';
import { decodeDigest, decodeOrUndefined, decodeSyncChunk, decodeSyncRequest, decodeWithdraw } from '../codec/cluster-messages';
import { MESSAGE_TYPE_NAMES, type Message, MessageType } from '../codec/messages';

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
  /** For SYNC_REQUEST, SYNC_CHUNK, WITHDRAW and DIGEST: what the body says, in brief. */
  readonly detail?: string;
}

/** A one-line summary of a cluster-maintenance body (types 4-7), or undefined. */
export function maintenanceDetail(type: number, body: Buffer): string | undefined {
  switch (type) {
    case MessageType.SyncRequest: {
      const r = decodeOrUndefined(decodeSyncRequest, body);
      return r && `rid ${r.requestId} from ${r.cursor} x${r.maxChunks}${r.bucketCount ? ` buckets ${[...Array(r.bucketCount).keys()].filter((b) => r.buckets[b >> 3] & (1 << (b & 7))).length}/${r.bucketCount}` : ''}`;
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

export function decodeCaptured(data: Buffer, timeMs: number, src: string, dst: string, keyring?: Keyring, maxSkewMs = 30_000): CapturedMessage {
  const { verdict, header } = parseHeader(data);
  if (!header) return { timeMs, src, dst, typeName: '?', auth: verdict };
  const typeName = MESSAGE_TYPE_NAMES[header.type] ?? `type-${header.type}`;
  if (keyring) {
    // the time check is against the capture time, not the reader's clock
    const r = inspectFrame(data, { keyring, nowMs: BigInt(Math.round(timeMs)), maxSkewMs });
    const detail = r.verdict === 'accepted' && r.body ? maintenanceDetail(header.type, r.body) : undefined;
    return { timeMs, src, dst, header, typeName, message: r.message, auth: r.verdict === 'accepted' ? 'ok' : r.verdict, detail };
  }
  const r = classifyBody(header, Buffer.from(data.subarray(HEADER_SIZE, data.length - TAG_SIZE)));
  const detail = r.verdict === 'accepted' && r.body ? maintenanceDetail(header.type, r.body) : undefined;
  return { timeMs, src, dst, header, typeName, message: r.message, auth: r.verdict === 'accepted' ? 'unchecked' : r.verdict, detail };
}

const more = (n: number): string => (n > 1 ? ` (+${n - 1} more)` : '');

function describe(m?: Message): { key?: string; endpoint?: string; version?: number; queryId?: number; rank?: number } {
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
    case MessageType.Hello:
      return {};
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
  if (c.message?.type === MessageType.Hello) parts.push(`${['starting', 'ready', 'stopping'][c.message.hello.state]}, ${c.message.hello.entries} entries`);
  if (c.detail) parts.push(c.detail);
  parts.push(`seq ${c.header.sequence}`, `key ${c.header.keyId}`, `auth ${c.auth}`);
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
  };
}
