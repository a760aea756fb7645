// Answers SYNC_REQUESTs: walks the table from the asked cursor and sends the
// entries and withdraw markers (only those in the asked buckets, for a
// repair) in SYNC_CHUNKs, unicast to the asking node, up to the asked number
// of chunks. The asker drives the pace (sync-session.ts); this side keeps no
// state between requests, so a lost request or chunk costs one re-ask.
import { clientKeyFromBytes } from '../../codec/client-key';
import { decodeOrUndefined, decodeSyncRequest, type SyncRequest, SyncChunkWriter, wantsKey } from '../../codec/cluster-messages';
import { MessageType } from '../../codec/messages';
import type { MaintenanceFrame, MaintenanceLink, Peer } from '../../transport/cluster-link';
import type { DirectoryReader, DirectoryRecord } from '../directory';
import { nodeRankHash, rankOf } from '../ranks';

/** Body octets per chunk: a frame of at most 1400 (docs/protocol.md). */
export const CHUNK_BODY_MAX = 1400 - 32 - 16;
/** A request never gets more chunks than this, whatever it asks. */
export const MAX_WINDOW_CHUNKS = 64;

export class SyncServer {
  readonly counters = { requests: 0, malformed: 0, chunksSent: 0, entriesSent: 0, leftToOthers: 0 };

  /**
   * nodeId and ready: this node, and whether its own table is synced (a
   * node still syncing ranks after every ready one).
   */
  constructor(private readonly directory: DirectoryReader, private readonly link: MaintenanceLink, private readonly self: { nodeId: number; ready: () => boolean }) {
    link.onMessage(MessageType.SyncRequest, (body, from) => this.handle(body, from));
  }

  private handle(body: Buffer, from: Peer): void {
    const r = decodeOrUndefined(decodeSyncRequest, body);
    if (!r) return void this.counters.malformed++;
    this.counters.requests++;
    if (r.answerRank) {
      // an ask that only the first ranks answer (multicast, or unicast to a
      // configured peer): one full window, not one per peer
      const ready = this.link.members().filter((m) => m.ready && m.nodeId !== from.nodeId).map((m) => m.nodeId);
      const rank = this.self.ready() ? rankOf(nodeRankHash(from.nodeId), this.self.nodeId, ready) : ready.length;
      if (rank >= r.answerRank) return void this.counters.leftToOthers++;
    }
    const frames = this.chunks(r).map((b): MaintenanceFrame => ({ type: MessageType.SyncChunk, body: b, to: from }));
    this.counters.chunksSent += this.link.send(frames);
  }

  /** The chunk bodies answering r (exported for tests through the class). */
  chunks(r: SyncRequest, nowSeconds = Math.floor(Date.now() / 1000)): Buffer[] {
    const out: Buffer[] = [];
    const max = Math.min(r.maxChunks, MAX_WINDOW_CHUNKS);
    let w = new SyncChunkWriter(r.requestId, r.cursor, CHUNK_BODY_MAX);
    let cursor = r.cursor;
    for (;;) {
      const page = this.directory.walk(cursor, 256, nowSeconds);
      for (const e of page.records) {
        if (!wantsKey(r, e.keyHash)) continue;
        if (this.add(w, e, nowSeconds)) continue;
        // full: this entry starts the next chunk
        out.push(w.finish(e.at, false));
        if (out.length === max) return out;
        w = new SyncChunkWriter(r.requestId, e.at, CHUNK_BODY_MAX);
        this.add(w, e, nowSeconds);
      }
      cursor = page.cursor;
      if (page.done) {
        out.push(w.finish(cursor, true));
        return out;
      }
    }
  }

  private add(w: SyncChunkWriter, e: DirectoryRecord, now: number): boolean {
    const clientKey = clientKeyFromBytes(e.key);
    const ttlSeconds = Math.max(1, e.expiresSeconds - now);
    const ok = e.endpoint
      ? w.addEntry({ clientKey, endpoint: e.endpoint, version: e.version, originNode: e.originNode, ttlSeconds })
      : w.addWithdraw({ clientKey, version: e.version, originNode: e.originNode, ttlSeconds });
    if (ok) this.counters.entriesSent++;
    return ok;
  }
}
