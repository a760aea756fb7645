// The sync sessions this node runs (bulk sync at start, digest repairs),
// keyed by request id, and the delivery of SYNC_CHUNKs to them.
import { decodeOrUndefined, decodeSyncChunk } from '../../codec/cluster-messages';
import { MessageType } from '../../codec/messages';
import type { MaintenanceLink, Peer } from '../../transport/cluster-link';
import type { EntryApplier } from './entry-applier';
import { type SessionOptions, SyncSession } from './sync-session';

export class SyncSessions {
  /** entriesReceived and chunksReceived count every SYNC_CHUNK that arrives, for a session or stray (what a join costs). */
  readonly counters = { opened: 0, malformedChunks: 0, strayChunks: 0, chunksReceived: 0, entriesReceived: 0 };
  private readonly open = new Map<number, SyncSession>();
  private nextId = 1 + Math.floor(Math.random() * 0x7fffffff);

  constructor(private readonly link: MaintenanceLink, private readonly applier: EntryApplier, private readonly o: SessionOptions) {
    link.onMessage(MessageType.SyncChunk, (body, from) => {
      const chunk = decodeOrUndefined(decodeSyncChunk, body);
      if (!chunk) return void this.counters.malformedChunks++;
      this.counters.chunksReceived++;
      this.counters.entriesReceived += chunk.entries.length;
      const s = this.open.get(chunk.requestId);
      if (!s) return void this.counters.strayChunks++; // late, or not ours
      s.handle(chunk, from);
    });
  }

  /** Pulls from source (or, without one, from the first peer to answer a multicast request). */
  start(why: 'sync' | 'repair', source?: Peer, bucketCount = 0, buckets: Iterable<number> = []): SyncSession {
    const id = this.nextId;
    this.nextId = (this.nextId % 0xfffffffe) + 1;
    const s = new SyncSession(id, this.link, this.applier, this.o, why, source, bucketCount, buckets);
    this.open.set(id, s);
    this.counters.opened++;
    void s.result.then(() => this.open.delete(id));
    return s;
  }

  /** Running sessions pulling from this peer. */
  pullingFrom(nodeId: number): boolean {
    for (const s of this.open.values()) if (s.source?.nodeId === nodeId) return true;
    return false;
  }

  get running(): number {
    return this.open.size;
  }

  cancelAll(): void {
    for (const s of [...this.open.values()]) s.cancel();
  }
}
