// ClusterLink and MaintenanceLink over the addon's Responder: QUERYs, CLAIMs
// and UPDATEs are encoded by the reference codec, packed many clients to a
// frame, and framed, signed and sent by the native side; REPLYs come back
// from the I/O thread already verified. Who is alive comes from the native
// peer table, kept from every accepted frame and the HELLOs.
import type { Endpoint } from '../codec/endpoint';
import { HEADER_SIZE, parseHeader, TAG_SIZE } from '../codec/frame';
import { MessageType, NodeState } from '../codec/messages';
import type { InboundFrame, NativeResponder, OutboundFrame } from '../native';
import { ReplySpin } from './reply-spin';
import type { ClusterLink, KeyedClient, KeyedEntry, MaintenanceFrame, MaintenanceLink, Member, Peer, ReplyBatch, ReplyEntry } from './cluster-link';

/** First octet of a REPLY the I/O thread decoded (native/inbound_queue.h CompactReply); frames start with 0xAF. */
const COMPACT_REPLY = 0x52;
/** The same layout: proposals this node stored as arbiter (only while monitored). */
const CLAIM_SETTLED = 0x43;

/**
 * Reads a CompactReply: canonical keys and the table registry's endpoint ids.
 * Each keyBytes is a view into d (the addon copied the frame for us): a
 * reader that keeps a key beyond the REPLY's handling copies it.
 */
export function readCompactReply(d: Buffer, endpointOf: (id: number) => Endpoint): { senderNode: number; queryId: number; entries: ReplyEntry[] } {
  const count = d.readUInt16BE(10);
  const entries: ReplyEntry[] = new Array(count);
  let at = 12;
  for (let i = 0; i < count; i++) {
    const len = d[at];
    const keyBytes = d.subarray(at + 1, at + 1 + len);
    at += 1 + len;
    entries[i] = { keyBytes, endpoint: endpointOf(d.readUInt32BE(at)), version: d.readUInt32BE(at + 4), originNode: d.readUInt32BE(at + 8), ttlSeconds: d.readUInt32BE(at + 12) };
    at += 16;
  }
  return { senderNode: d.readUInt32BE(2), queryId: d.readUInt32BE(6), entries };
}


export interface NativeLinkOptions {
  /** Peers for direct questions besides those heard from (e.g. where multicast is filtered). */
  readonly staticPeers?: readonly Peer[];
  /** A node not heard from for this long is not alive (not a member, not an arbiter). */
  readonly peerTimeoutMs: number;
  /** The Endpoint a registry id names (REPLYs arrive with ids). */
  readonly endpointOf: (id: number) => Endpoint;
  /** The registry id of an Endpoint, interning it (-1: the registry is full). */
  readonly endpointId: (e: Endpoint) => number;
  /** A ready peer counts among the arbiters once it has been ready this long. */
  readonly arbiterDelayMs: number;
  /** The reply spin's largest window (cluster.replySpinMicros; 0 or absent: off). */
  readonly replySpinMicros?: number;
}

/** Canonical keys laid end to end, as sendList takes them. */
function keysOf(items: readonly { keyBytes: Buffer }[]): { keys: Buffer; offsets: Uint32Array } {
  const offsets = new Uint32Array(items.length + 1);
  for (let i = 0; i < items.length; i++) offsets[i + 1] = offsets[i] + items[i].keyBytes.length;
  return { keys: Buffer.concat(items.map((x) => x.keyBytes), offsets[items.length]), offsets };
}

export class NativeLink implements ClusterLink, MaintenanceLink {
  readonly counters = { sendErrors: 0, undecodableFrames: 0, otherFrames: 0, itemsSkipped: 0, replySpins: 0, replySpinHits: 0, replySpinMicrosSpent: 0 };
  private spin?: ReplySpin;
  private spinQueued = false;
  /** performance.now() when the last QUERY went out, until a REPLY comes (-1: none waiting). */
  private queriedAt = -1;
  private readonly handlers = new Map<number, (body: Buffer, from: Peer, unicast: boolean) => void>();
  lastSendError?: Error;
  private handler?: (reply: ReplyBatch) => void;
  private cached?: { atMs: number; members: Member[] };
  /** Proposals this node stored as the clients' arbiter (while the responder's change feed is on). */
  onClaimSettled?: (settled: ReplyBatch) => void;
  /** See REPLYs before the router; one that returns true keeps the REPLY (the clear confirmation's answers). */
  private readonly taps = new Set<(reply: ReplyBatch) => boolean>();

  constructor(private readonly responder: NativeResponder, private readonly o: NativeLinkOptions) {
    if (o.replySpinMicros) this.spin = new ReplySpin(o.replySpinMicros);
  }

  // QUERYs, UPDATEs and CLAIMs are packed natively from canonical keys and
  // endpoint ids (native/messages.h PackList, byte-identical to the
  // reference codec: test/codec/pack.test.ts): no protobuf encoding in JS
  // on the hot path, many clients to a frame.
  query(clients: readonly KeyedClient[], queryId: number, answerRank: number, to?: Peer): void {
    const { keys, offsets } = keysOf(clients);
    this.sendList(MessageType.Query, queryId, answerRank, keys, offsets, clients.length, null, to);
    this.afterQuery();
  }

  /**
   * The reply spin: once per turn of the event loop that sent a QUERY, in
   * its check phase (after the turn's other I/O), read the reply socket for
   * the spin's window before the loop goes to sleep.
   */
  private afterQuery(): void {
    if (!this.spin) return; // off: nothing to time or queue on the hot path
    this.queriedAt = performance.now();
    if (this.spinQueued) return;
    const budget = this.spin.take();
    if (budget === 0) return;
    this.spinQueued = true;
    setImmediate(this.spinNow, budget);
  }

  private readonly spinNow = (budget: number): void => {
    this.spinQueued = false;
    if (!this.spin) return;
    const t0 = performance.now();
    const frames = this.responder.pollReplies(budget);
    if (frames === null) {
      this.spin = undefined; // no reply socket: REPLYs come through the I/O thread
      return;
    }
    this.counters.replySpins++;
    this.counters.replySpinMicrosSpent += Math.round((performance.now() - t0) * 1000);
    this.spin.spun(frames.length > 0);
    if (frames.length === 0) return;
    this.counters.replySpinHits++;
    this.queriedAt = -1;
    this.deliver(frames);
  };

  update(entries: readonly KeyedEntry[]): void {
    this.sendEntries(MessageType.Update, 0, entries);
  }

  claim(to: Peer, claimId: number, proposals: readonly KeyedEntry[], handover = false): void {
    this.sendEntries(MessageType.Claim, claimId, proposals, to, handover ? 1 : 0);
  }

  /** flag: a CLAIM's handover (sendList's answerRank slot, unused by CLAIMs otherwise). */
  private sendEntries(type: number, id: number, entries: readonly KeyedEntry[], to?: Peer, flag = 0): void {
    const { keys, offsets } = keysOf(entries);
    const fields = new Uint32Array(4 * entries.length);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      fields[4 * i] = this.o.endpointId(e.endpoint) >>> 0; // -1 (registry full): an id the native side refuses, counted
      fields[4 * i + 1] = e.version;
      fields[4 * i + 2] = e.originNode;
      fields[4 * i + 3] = e.ttlSeconds;
    }
    this.sendList(type, id, flag, keys, offsets, entries.length, fields, to);
  }

  private sendList(type: number, id: number, rank: number, keys: Buffer, offsets: Uint32Array, count: number, fields: Uint32Array | null, to?: Peer): void {
    try {
      const r = to ? this.responder.sendList(type, id, rank, keys, offsets, count, fields, to.address, to.port) : this.responder.sendList(type, id, rank, keys, offsets, count, fields);
      this.counters.itemsSkipped += r.skipped;
      if (r.error) {
        this.counters.sendErrors++;
        this.lastSendError = new Error(r.error);
      }
    } catch (e) {
      // a refused send is a lost datagram to the protocol: retries and time-outs cover it
      this.counters.sendErrors++;
      this.lastSendError = e as Error;
    }
  }

  /** Alive: heard within the peer time-out and not stopping; ready: it said so in its last HELLO; arbiter: ready for arbiterDelayMs. Cached for 10 ms. */
  members(): readonly Member[] {
    const now = Date.now();
    if (this.cached && now - this.cached.atMs < 10) return this.cached.members;
    const members = this.responder
      .peers()
      .filter((p) => now - p.lastHeardMs <= this.o.peerTimeoutMs && p.state !== NodeState.Stopping && !p.duplicate)
      .map((p) => {
        const ready = p.state === NodeState.Ready;
        return { nodeId: p.nodeId, address: p.address, port: p.port, ready, lastHeardMs: p.lastHeardMs, arbiter: ready && p.readyForMs >= this.o.arbiterDelayMs, arbiterForMs: p.readyForMs - this.o.arbiterDelayMs };
      });
    this.cached = { atMs: now, members };
    return members;
  }

  peers(): Peer[] {
    const out: Peer[] = this.members().map((p) => ({ nodeId: p.nodeId, address: p.address, port: p.port }));
    for (const s of this.o.staticPeers ?? []) {
      if (!out.some((p) => p.address === s.address && p.port === s.port)) out.push(s);
    }
    return out;
  }

  onReply(handler: (reply: ReplyBatch) => void): void {
    this.handler = handler;
  }

  /** Adds a tap (see taps); returns the function that removes it. */
  tapReplies(tap: (reply: ReplyBatch) => boolean): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  onMessage(type: number, handler: (body: Buffer, from: Peer, unicast: boolean) => void): void {
    this.handlers.set(type, handler);
  }

  send(frames: readonly MaintenanceFrame[]): number {
    return this.sendAll(frames.map((f) => this.frame(f.type, f.body, f.to)));
  }

  /** The responder's onFrames callback. */
  deliver(frames: InboundFrame[]): void {
    for (const f of frames) {
      if (f.data[0] === COMPACT_REPLY || f.data[0] === CLAIM_SETTLED) {
        const r = readCompactReply(f.data, this.o.endpointOf);
        const batch = { queryId: r.queryId, from: { nodeId: r.senderNode, address: f.address, port: f.port }, entries: r.entries };
        if (f.data[0] === COMPACT_REPLY) {
          if (this.spin && this.queriedAt >= 0) {
            // came through the event loop: would a spin of the largest window have caught it?
            this.spin.replyAfter((performance.now() - this.queriedAt) * 1000);
            this.queriedAt = -1;
          }
          let kept = false;
          for (const t of this.taps) kept = t(batch) || kept;
          if (!kept) this.handler?.(batch);
        }
        else this.onClaimSettled?.(batch);
        continue;
      }
      const { header } = parseHeader(f.data);
      if (!header) {
        this.counters.undecodableFrames++;
        continue;
      }
      const from = { nodeId: header.senderNode, address: f.address, port: f.port };
      const h = this.handlers.get(header.type);
      if (h) h(f.data.subarray(HEADER_SIZE, f.data.length - TAG_SIZE), from, f.unicast);
      else this.counters.otherFrames++; // no handler: the feature is off on this node
    }
  }

  private frame(type: number, body: Buffer, to?: Peer): OutboundFrame {
    return to ? { type, body, address: to.address, port: to.port } : { type, body };
  }

  /**
   * A refused send is a lost datagram to the protocol: the retries and
   * time-outs cover it. Counted, and the last error kept for diagnosis.
   */
  private sendAll(out: OutboundFrame[]): number {
    if (out.length === 0) return 0;
    try {
      const n = this.responder.send(out);
      this.counters.sendErrors += out.length - n;
      return n;
    } catch (e) {
      this.counters.sendErrors += out.length;
      this.lastSendError = e as Error;
      return 0;
    }
  }
}
