// ClusterLink over the addon's Responder: QUERYs and UPDATEs are encoded by
// the reference codec and framed, signed and sent by the native side; REPLYs
// come back from the I/O thread already verified.
import type { ClientKey } from '../codec/client-key';
import { HEADER_SIZE, parseHeader, TAG_SIZE } from '../codec/frame';
import { decodeReply, encodeQuery, encodeUpdate, type Entry, MessageType, type Reply } from '../codec/messages';
import type { InboundFrame, NativeResponder, OutboundFrame } from '../native';
import type { ClusterLink, MaintenanceFrame, MaintenanceLink, Peer } from './cluster-link';

export interface NativeLinkOptions {
  /** Peers for direct queries besides those heard from (e.g. where multicast is filtered). */
  readonly staticPeers?: readonly Peer[];
  /** Peers not heard from for this long are not asked directly. */
  readonly peerStaleMs?: number;
}

export class NativeLink implements ClusterLink, MaintenanceLink {
  readonly counters = { sendErrors: 0, undecodableFrames: 0, otherFrames: 0 };
  private readonly handlers = new Map<number, (body: Buffer, from: Peer, unicast: boolean) => void>();
  lastSendError?: Error;
  private handler?: (reply: Reply, from: Peer) => void;
  /** Sees REPLYs before the router; one that returns true keeps the REPLY (the clear confirmation's answers). */
  private readonly taps = new Set<(reply: Reply, from: Peer) => boolean>();

  constructor(private readonly responder: NativeResponder, private readonly o: NativeLinkOptions = {}) {}

  query(clientKey: ClientKey, queryId: number, to?: Peer): void {
    const body = encodeQuery({ clientKey, queryId });
    this.sendOne(to ? { type: MessageType.Query, body, address: to.address, port: to.port } : { type: MessageType.Query, body });
  }

  update(entry: Entry): void {
    this.sendOne({ type: MessageType.Update, body: encodeUpdate({ entry }) });
  }

  peers(): Peer[] {
    const now = Date.now();
    const stale = this.o.peerStaleMs ?? 60_000;
    const heard = this.responder.peers().filter((p) => now - p.lastHeardMs <= stale);
    const out: Peer[] = heard.map((p) => ({ nodeId: p.nodeId, address: p.address, port: p.port }));
    for (const s of this.o.staticPeers ?? []) {
      if (!out.some((p) => p.address === s.address && p.port === s.port)) out.push(s);
    }
    return out;
  }

  onReply(handler: (reply: Reply, from: Peer) => void): void {
    this.handler = handler;
  }

  /** Adds a tap (see taps); returns the function that removes it. */
  tapReplies(tap: (reply: Reply, from: Peer) => boolean): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  onMessage(type: number, handler: (body: Buffer, from: Peer, unicast: boolean) => void): void {
    this.handlers.set(type, handler);
  }

  send(frames: readonly MaintenanceFrame[]): number {
    if (frames.length === 0) return 0;
    const out: OutboundFrame[] = frames.map((f) => (f.to ? { type: f.type, body: f.body, address: f.to.address, port: f.to.port } : { type: f.type, body: f.body }));
    try {
      const n = this.responder.send(out);
      this.counters.sendErrors += frames.length - n;
      return n;
    } catch (e) {
      this.counters.sendErrors += frames.length;
      this.lastSendError = e as Error;
      return 0;
    }
  }

  /** The responder's onFrames callback. */
  deliver(frames: InboundFrame[]): void {
    for (const f of frames) {
      const { header } = parseHeader(f.data);
      if (header && header.type !== MessageType.Reply) {
        const h = this.handlers.get(header.type);
        if (h) h(f.data.subarray(HEADER_SIZE, f.data.length - TAG_SIZE), { nodeId: header.senderNode, address: f.address, port: f.port }, f.unicast);
        else this.counters.otherFrames++; // no handler: the feature is off on this node
        continue;
      }
      if (!header) {
        this.counters.undecodableFrames++;
        continue;
      }
      let reply: Reply;
      try {
        reply = decodeReply(f.data.subarray(HEADER_SIZE, f.data.length - TAG_SIZE));
      } catch {
        this.counters.undecodableFrames++; // the native side checked it: should not happen
        continue;
      }
      const from = { nodeId: header.senderNode, address: f.address, port: f.port };
      let kept = false;
      for (const t of this.taps) kept = t(reply, from) || kept;
      if (!kept) this.handler?.(reply, from);
    }
  }

  private sendOne(frame: OutboundFrame): void {
    try {
      this.responder.send([frame]);
    } catch (e) {
      // A refused send is a lost datagram to the protocol: the retries and
      // time-outs cover it. Counted, and the last error kept for diagnosis.
      this.counters.sendErrors++;
      this.lastSendError = e as Error;
    }
  }
}
