// One pull of (part of) a peer's table: ask from a cursor for a window of
// chunks, apply each chunk, ask for the next window when this one is in; ask
// again from the last good cursor when nothing arrives for retryMs. Chunks
// are idempotent (the version rule), so duplicates and chunks from other
// peers are applied too, but only the source's in-order chunks advance.
//
// With no source given the first request is multicast (and sent to every
// known peer, static ones included) and the first peer to answer becomes the
// source (bulk sync at start); no answer after `retries` asks means this node
// is alone.
import { bucketBitmap, encodeSyncRequest, type SyncChunk } from '../../codec/cluster-messages';
import { MessageType } from '../../codec/messages';
import type { MaintenanceLink, Peer } from '../../transport/cluster-link';
import type { EntryApplier } from './entry-applier';

export interface SessionOptions {
  readonly windowChunks: number;
  readonly retryMs: number;
  readonly retries: number;
}

export type SessionEnd =
  /** the source's walk reached the end of its table */
  | 'complete'
  /** no peer answered the first request (bulk sync only) */
  | 'alone'
  /** the source stopped answering */
  | 'source-lost'
  /** stopped from outside (time-out, shutdown) */
  | 'cancelled';

export interface SessionResult {
  readonly end: SessionEnd;
  readonly source?: Peer;
  readonly chunks: number;
  readonly entries: number;
  readonly ms: number;
  /**
   * How many ranks were asked to answer before a source was found: 1 when
   * the first ask was answered in time, more when it was asked again
   * (each ask invites one more rank), 0 when every peer was asked. What the
   * first window can cost: that many peers' windows.
   */
  readonly widestAsk: number;
}

export class SyncSession {
  source?: Peer;
  private cursor = 0;
  private windowLeft = 0;
  private tries = 0;
  private widestAsk = 1;
  private chunks = 0;
  private entries = 0;
  private timer?: NodeJS.Timeout;
  private finish!: (r: SessionResult) => void;
  private readonly started = performance.now();
  private readonly buckets: Buffer;
  readonly result: Promise<SessionResult>;

  constructor(
    readonly requestId: number,
    private readonly link: MaintenanceLink,
    private readonly applier: EntryApplier,
    private readonly o: SessionOptions,
    private readonly why: 'sync' | 'repair',
    source?: Peer,
    private readonly bucketCount = 0,
    buckets: Iterable<number> = [],
  ) {
    this.source = source;
    this.buckets = bucketCount ? bucketBitmap(bucketCount, buckets) : Buffer.alloc(0);
    this.result = new Promise((resolve) => (this.finish = resolve));
    this.ask();
  }

  /** A SYNC_CHUNK arrived with this session's request id. */
  handle(chunk: SyncChunk, from: Peer): void {
    this.applier.apply(chunk.entries, chunk.withdrawals, from.nodeId, this.why);
    this.entries += chunk.entries.length + chunk.withdrawals.length;
    this.chunks++;
    if (!this.source) {
      if (chunk.cursor !== 0) return;
      this.source = from; // the first peer to answer serves the rest
    }
    if (from.nodeId !== this.source.nodeId || chunk.cursor !== this.cursor) return;
    this.cursor = chunk.nextCursor;
    this.tries = 0;
    if (chunk.done) return this.end('complete');
    if (--this.windowLeft <= 0) this.ask();
    else this.arm();
  }

  cancel(): void {
    this.end('cancelled');
  }

  private ask(): void {
    this.windowLeft = this.o.windowChunks;
    // the first multicast ask is answered by the rank-0 node for this asker only, the next by two, the last by everyone
    const answerRank = this.source || this.tries >= this.o.retries - 1 ? 0 : this.tries + 1;
    if (!this.source && this.widestAsk !== 0) this.widestAsk = answerRank === 0 ? 0 : Math.max(this.widestAsk, answerRank);
    const body = encodeSyncRequest({ requestId: this.requestId, cursor: this.cursor, maxChunks: this.o.windowChunks, bucketCount: this.bucketCount, buckets: this.buckets, answerRank });
    // with no source yet: the group, and directly every configured peer not
    // heard on the group (static peers are how a node reaches a cluster
    // whose multicast is filtered); a peer heard on the group has the ask
    // already, and a second copy would only make it answer twice
    const members = this.link.members();
    const unheard = this.source ? [] : this.link.peers().filter((p) => !members.some((m) => m.nodeId === p.nodeId || (m.address === p.address && m.port === p.port)));
    const to = this.source ? [this.source] : [undefined, ...unheard];
    this.link.send(to.map((peer) => ({ type: MessageType.SyncRequest, body, to: peer })));
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (++this.tries >= this.o.retries) return this.end(this.source ? 'source-lost' : 'alone');
      this.ask();
    }, this.o.retryMs);
  }

  private end(end: SessionEnd): void {
    clearTimeout(this.timer);
    this.finish({ end, source: this.source, chunks: this.chunks, entries: this.entries, ms: performance.now() - this.started, widestAsk: this.widestAsk });
  }
}
