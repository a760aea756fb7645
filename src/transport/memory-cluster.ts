// An in-memory cluster: the test double for ClusterLink and MaintenanceLink.
// Members' directories answer QUERYs (by the rank rule), settle CLAIMs and
// store UPDATEs as the native responder does, and the maintenance frames
// (sync, withdraw, digest) travel as real encoded bodies to the members'
// handlers, after an optional delay and with optional random loss, so the
// router and directory maintenance can be tested (and simulated) without
// sockets or the addon.
import { type ClientKey, clientKeyBytes } from '../codec/client-key';
import type { Entry } from '../codec/messages';
import type { Directory } from '../directory/directory';
import { clientRankHash, rankOf, rankScore } from '../directory/ranks';
import type { ClusterLink, MaintenanceFrame, MaintenanceLink, Member as LiveMember, Peer, ReplyBatch, ReplyEntry } from './cluster-link';

type Handler = (body: Buffer, from: Peer, unicast: boolean) => void;

interface Member {
  readonly nodeId: number;
  readonly directory: Directory;
  replyHandler?: (reply: ReplyBatch) => void;
  readonly handlers: Map<number, Handler>;
  /** Alive: it answers, stores and is counted in ranks. */
  up: boolean;
  /** Synced: counted among the arbiters. */
  ready: boolean;
  /** Cut off (the first seconds of a partition): still a member, but nothing reaches it or comes from it, and it is not heard. */
  mutedSinceMs?: number;
  /** When it became ready (Date.now()). */
  readySinceMs: number;
}

export type MemoryLink = ClusterLink & MaintenanceLink;

export class MemoryCluster {
  private readonly members = new Map<number, Member>();
  /** Probability that one message is lost, 0..1. */
  loss = 0;
  delayMs = 1;
  /** Lose every multicast (QUERY to the group, UPDATE, maintenance to the group), keep unicast. */
  dropMulticast = false;
  /** Messages sent, counted per frame-equivalent (one per call), and REPLY entries. */
  sent = { queries: 0, updates: 0, replies: 0, claims: 0, maintenance: 0, lost: 0 };

  constructor(private readonly random: () => number = Math.random) {}

  join(nodeId: number, directory: Directory): MemoryLink {
    const m: Member = { nodeId, directory, up: true, ready: true, readySinceMs: -Infinity, handlers: new Map() };
    this.members.set(nodeId, m);
    return {
      query: (clients, queryId, answerRank, to) => {
        this.sent.queries++;
        const keys = clients.map((c) => c.clientKey);
        for (const other of this.others(m, to)) this.deliver(() => this.answer(other, m, keys, queryId, to ? 0 : answerRank));
      },
      update: (entries) => {
        this.sent.updates++;
        for (const other of this.others(m)) this.deliver(() => other.up && entries.forEach((e) => this.store(other, e)));
      },
      claim: (to, claimId, proposals, handover = false) => {
        this.sent.claims++;
        if (this.dropClaims || this.dropClaimsFrom.has(nodeId)) return void this.sent.lost++;
        for (const other of this.others(m, to)) this.deliver(() => this.arbitrate(other, m, claimId, proposals, handover));
      },
      members: () =>
        [...this.members.values()]
          .filter((x) => x !== m && x.up)
          .map((x): LiveMember => ({ ...peer(x), ready: x.ready, lastHeardMs: x.mutedSinceMs ?? Date.now(), arbiter: x.ready && Date.now() - x.readySinceMs >= this.arbiterDelayMs, arbiterForMs: Date.now() - x.readySinceMs - this.arbiterDelayMs })),
      peers: () => [...this.members.values()].filter((x) => x !== m && x.up).map(peer),
      onReply: (h) => {
        m.replyHandler = h;
      },
      onMessage: (type, handler) => {
        m.handlers.set(type, handler);
      },
      send: (frames: readonly MaintenanceFrame[]) => {
        for (const f of frames) {
          this.sent.maintenance++;
          for (const other of this.others(m, f.to)) {
            const body = Buffer.from(f.body);
            this.deliver(() => other.up && other.handlers.get(f.type)?.(body, peer(m), !!f.to));
          }
        }
        return frames.length;
      },
    };
  }

  /** A stopped node neither answers nor stores, and is not a member. */
  setUp(nodeId: number, up: boolean): void {
    this.members.get(nodeId)!.up = up;
  }

  /**
   * Cuts a node off without it leaving the others' member lists (as in the
   * seconds before their peer time-out): nothing it sends or is sent
   * arrives, and it is no longer heard. undefined: heard again.
   */
  mute(nodeId: number, muted: boolean): void {
    this.members.get(nodeId)!.mutedSinceMs = muted ? Date.now() : undefined;
  }

  /** Every CLAIM (and so its answer) is lost while the arbiters are still heard: an asymmetric failure. */
  dropClaims = false;
  /** Every CLAIM these members send is lost (one proposer held back while the others go ahead). */
  readonly dropClaimsFrom = new Set<number>();
  /** Every REPLY to these members is lost (an arbiter settled, its answer did not arrive). */
  readonly dropRepliesTo = new Set<number>();
  /** Members that never hold in a handover (a third-party node; handoverHoldMs for the rest). */
  readonly noHold = new Set<number>();

  /** A node that is not ready (syncing) is alive but no arbiter, and settles no CLAIM. */
  setReady(nodeId: number, ready: boolean): void {
    const m = this.members.get(nodeId)!;
    if (ready && !m.ready) m.readySinceMs = Date.now();
    m.ready = ready;
  }

  /** A ready member counts as an arbiter (and settles CLAIMs) once it has been ready this long (agreement.arbiterDelayMs). */
  arbiterDelayMs = 0;

  /**
   * For this long after a member became an arbiter, while an older one is
   * up, it leaves unanswered a proposal not marked handover for a client it
   * holds nothing for (the native responder's handoverHoldMs). 0: off.
   */
  handoverHoldMs = 0;

  /** Who a frame from m reaches: one member (unicast) or every other (multicast, unless dropMulticast). */
  private others(m: Member, to?: Peer): Member[] {
    if (!to && this.dropMulticast) return [];
    if (m.mutedSinceMs !== undefined) return [];
    return [...this.members.values()].filter((x) => x !== m && x.mutedSinceMs === undefined && (!to || to.nodeId === x.nodeId));
  }

  private deliver(fn: () => void): void {
    if (this.random() < this.loss) {
      this.sent.lost++;
      return;
    }
    setTimeout(fn, this.delayMs);
  }

  /** The directory's answer to a QUERY, by the rank rule (docs/protocol.md "Ranks"). */
  private answer(d: Member, querier: Member, keys: readonly ClientKey[], queryId: number, answerRank: number): void {
    if (!d.up) return;
    const others = [...this.members.values()].filter((x) => x.up && x.ready && x !== querier && x !== d).map((x) => x.nodeId);
    const entries: ReplyEntry[] = [];
    for (const key of keys) {
      const keyBytes = clientKeyBytes(key);
      const e = d.directory.lookup(keyBytes);
      if (!e) continue; // silence is a miss
      // a directory that is not ready ranks itself after every ready one
      const rank = d.ready ? rankOf(clientRankHash(keyBytes), d.nodeId, others) : others.length;
      if (answerRank > 0 && rank >= answerRank) continue;
      entries.push({ keyBytes, endpoint: e.endpoint, version: e.version, originNode: e.originNode, ttlSeconds: Math.max(1, e.expiresSeconds - Math.floor(Date.now() / 1000)) });
    }
    this.reply(d, querier, queryId, entries);
  }

  /** The arbiter's answer to a CLAIM: first writer wins, every proposal answered; a node that is not ready stays silent. */
  private arbitrate(d: Member, claimant: Member, claimId: number, proposals: readonly Entry[], handover: boolean): void {
    if (!d.up || !d.ready || Date.now() - d.readySinceMs < this.arbiterDelayMs) return;
    const hold =
      !handover && this.handoverHoldMs > 0 && !this.noHold.has(d.nodeId) && Date.now() - d.readySinceMs < this.arbiterDelayMs + this.handoverHoldMs &&
      [...this.members.values()].some((x) => x !== d && x.up && x.ready && x.readySinceMs < d.readySinceMs && Date.now() - x.readySinceMs >= this.arbiterDelayMs);
    // the arbiters past their handover: a first entry is theirs when they outrank d
    const established = handover ? [] : [...this.members.values()].filter((x) => x !== d && x.up && x.ready && Date.now() - x.readySinceMs >= this.arbiterDelayMs + this.handoverHoldMs).map((x) => x.nodeId);
    const entries = proposals.flatMap((p): ReplyEntry[] => {
      const keyBytes = clientKeyBytes(p.clientKey);
      if ((hold || established.length) && !d.directory.lookup(keyBytes)) {
        if (hold) return [];
        const h = clientRankHash(keyBytes);
        const mine = rankScore(h, d.nodeId);
        if (established.some((id) => rankScore(h, id) > mine || (rankScore(h, id) === mine && id > d.nodeId))) return [];
      }
      const c = d.directory.claim(keyBytes, p);
      return [{ keyBytes, endpoint: c.entry.endpoint, version: c.entry.version, originNode: c.entry.originNode, ttlSeconds: Math.max(1, c.entry.expiresSeconds - Math.floor(Date.now() / 1000)) }];
    });
    this.reply(d, claimant, claimId, entries);
  }

  private reply(d: Member, to: Member, queryId: number, entries: ReplyEntry[]): void {
    if (entries.length === 0) return;
    this.sent.replies += entries.length;
    if (this.dropRepliesTo.has(to.nodeId)) return void this.sent.lost++;
    this.deliver(() => to.replyHandler?.({ queryId, from: peer(d), entries }));
  }

  private store(m: Member, e: Entry): void {
    m.directory.apply(clientKeyBytes(e.clientKey), e);
  }
}

const peer = (x: { nodeId: number }): Peer => ({ nodeId: x.nodeId, address: `memory:${x.nodeId}`, port: 0 });
