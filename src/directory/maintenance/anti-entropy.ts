// Digest comparison (split-bundle detection and repair): on an interval
// (with jitter, so nodes do not compute at once) every node sends the bucket
// digests of its table to one other node alive, picked at random (gossip, as
// Cassandra and Dynamo do it), so what a node sends and receives stays about
// one digest per interval however big the cluster. A node whose buckets
// differ from the sender's pulls the sender's entries in those buckets and
// applies them by the version rule, and sends the sender its own digest so
// it pulls the other way. Both end with the newer entry of every client: a
// client with two endpoints (a partition, lost UPDATEs) is repaired, counted
// and logged (entry-applier.ts); a difference reaches every node in about
// log2(N) intervals.
import { decodeDigest, decodeOrUndefined, type Digest, differingBuckets, encodeDigest } from '../../codec/cluster-messages';
import { MessageType } from '../../codec/messages';
import type { MaintenanceLink, Peer } from '../../transport/cluster-link';
import type { DirectoryReader } from '../directory';
import type { SyncSessions } from './sync-sessions';

export interface AntiEntropyOptions {
  readonly nodeId: number;
  readonly intervalMs: number;
  /** Digest buckets (1..128): more buckets, smaller repairs, a bigger DIGEST. */
  readonly buckets: number;
}

export class AntiEntropy {
  /** digestsIgnored: DIGESTs that came while this node was not comparing (syncing at start, or digests turned off). */
  readonly counters = { digestErrors: 0, digestsSent: 0, digestsReceived: 0, digestsIgnored: 0, digestsMatched: 0, digestMismatches: 0, bucketsPulled: 0, repairs: 0, malformed: 0 };
  private timer?: NodeJS.Timeout;
  private readonly lastSentTo = new Map<number, number>();
  private own?: { atMs: number; buckets: number; digest: Promise<Buffer> };
  private stopped = true;
  /** Per peer: when its last DIGEST came and whether it matched this node's table. */
  readonly peerDigests = new Map<number, { atMs: number; matched: boolean; differingBuckets: number }>();

  constructor(
    private readonly directory: DirectoryReader,
    private readonly link: MaintenanceLink,
    private readonly sessions: SyncSessions,
    private o: AntiEntropyOptions,
  ) {
    link.onMessage(MessageType.Digest, (body, from) => this.handle(body, from));
  }

  start(): void {
    if (!this.stopped) return; // running already (one timer chain only)
    this.stopped = false;
    const next = () => {
      this.timer = setTimeout(() => {
        const peers = this.link.members();
        if (peers.length) void this.send(peers[Math.floor(Math.random() * peers.length)]).catch(() => this.counters.digestErrors++);
        next();
      }, this.o.intervalMs * (0.8 + 0.4 * Math.random()));
      this.timer.unref();
    };
    next();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** New interval or bucket count (a configuration reload); enabled false stops sending. */
  reconfigure(o: AntiEntropyOptions, enabled: boolean): void {
    this.stop();
    this.o = o;
    if (enabled) this.start();
  }

  /**
   * This node's digest: one walk of the table (about 20 ms per 100k entries),
   * on a worker thread so the JS thread never waits for it, and reused for
   * up to a second so that the digests of several peers arriving together
   * cost one walk.
   */
  private digest(buckets: number): Promise<Buffer> {
    const now = Date.now();
    const maxAge = Math.min(1000, this.o.intervalMs / 2);
    if (!this.own || this.own.buckets !== buckets || now - this.own.atMs > maxAge) {
      this.own = { atMs: now, buckets, digest: this.directory.digest(buckets) };
    }
    return this.own.digest;
  }

  /** Sends this node's digest to one peer now (or, without one, multicasts it: tools and tests). */
  async send(to?: Peer): Promise<void> {
    if (to) this.lastSentTo.set(to.nodeId, Date.now());
    const buckets = await this.digest(this.o.buckets);
    if (this.stopped) return;
    const d: Digest = { bucketCount: this.o.buckets, buckets, entries: this.directory.stats().size };
    if (this.link.send([{ type: MessageType.Digest, body: encodeDigest(d), to }]) > 0) this.counters.digestsSent++;
  }

  private handle(body: Buffer, from: Peer): void {
    const d = decodeOrUndefined(decodeDigest, body);
    if (!d) return void this.counters.malformed++;
    if (from.nodeId === this.o.nodeId) return;
    this.counters.digestsReceived++;
    // not started: a node still taking its table in at start would find
    // nearly every bucket different and pull the sender's whole table a
    // second time (and make the sender pull a half table back)
    if (this.stopped) return void this.counters.digestsIgnored++;
    void this.digest(d.bucketCount).then((own) => {
      if (this.stopped) return;
      const diff = differingBuckets(own, d.buckets);
      this.peerDigests.set(from.nodeId, { atMs: Date.now(), matched: diff.length === 0, differingBuckets: diff.length });
      if (diff.length === 0) {
        this.counters.digestsMatched++;
        return;
      }
      this.counters.digestMismatches++;
      if (this.sessions.pullingFrom(from.nodeId)) return;
      this.counters.repairs++;
      this.counters.bucketsPulled += diff.length;
      this.sessions.start('repair', from, d.bucketCount, diff);
      // and let the peer pull from us, unless we told it recently
      const last = this.lastSentTo.get(from.nodeId) ?? 0;
      if (Date.now() - last > this.o.intervalMs / 2) void this.send(from).catch(() => this.counters.digestErrors++);
    }, () => this.counters.digestErrors++);
  }
}
