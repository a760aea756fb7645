// ClusterLink over the addon's Responder: QUERYs and UPDATEs are encoded by
// the reference codec and framed, signed and sent by the native side; REPLYs
// come back from the I/O thread already verified.
import type { ClientKey } from '../codec/client-key';
import { HEADER_SIZE, parseHeader, TAG_SIZE } from '../codec/frame';
import { decodeReply, encodeQuery, encodeUpdate, type Entry, MessageType, type Reply } from '../codec/messages';
import type { InboundFrame, NativeResponder, OutboundFrame } from '../native';
import type { ClusterLink, Peer } from './cluster-link';

export interface NativeLinkOptions {
  /** Peers for direct queries besides those heard from (e.g. where multicast is filtered). */
  readonly staticPeers?: readonly Peer[];
  /** Peers not heard from for this long are not asked directly. */
  readonly peerStaleMs?: number;
}

export class NativeLink implements ClusterLink {
  readonly counters = { sendErrors: 0, undecodableFrames: 0, otherFrames: 0 };
  lastSendError?: Error;
  private handler?: (reply: Reply, from: Peer) => void;

  constructor(private readonly responder: NativeResponder, private readonly o: NativeLinkOptions = {}) {}

  query(clientKey: ClientKey, queryId: number, to?: Peer): void {
    const body = encodeQuery({ clientKey, queryId });
    this.send(to ? { type: MessageType.Query, body, address: to.address, port: to.port } : { type: MessageType.Query, body });
  }

  update(entry: Entry): void {
    this.send({ type: MessageType.Update, body: encodeUpdate({ entry }) });
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

  /** The responder's onFrames callback. */
  deliver(frames: InboundFrame[]): void {
    for (const f of frames) {
      const { header } = parseHeader(f.data);
      if (!header || header.type !== MessageType.Reply) {
        this.counters.otherFrames++; // reserved types: no handler in this version
        continue;
      }
      let reply: Reply;
      try {
        reply = decodeReply(f.data.subarray(HEADER_SIZE, f.data.length - TAG_SIZE));
      } catch {
        this.counters.undecodableFrames++; // the native side checked it: should not happen
        continue;
      }
      this.handler?.(reply, { nodeId: header.senderNode, address: f.address, port: f.port });
    }
  }

  private send(frame: OutboundFrame): void {
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
