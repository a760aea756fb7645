// An in-memory cluster: the test double for ClusterLink and
// MaintenanceLink. Members' directories answer QUERYs and store UPDATEs as
// the native responder does, and the maintenance frames (sync, withdraw,
// digest) travel as real encoded bodies to the members' handlers, after an
// optional delay and with optional random loss, so the router and directory
// maintenance can be tested (and simulated) without sockets or the addon.
import { type ClientKey, clientKeyBytes } from '../codec/client-key';
import type { Entry, Reply } from '../codec/messages';
import type { Directory } from '../directory/directory';
import type { ClusterLink, MaintenanceFrame, MaintenanceLink, Peer } from './cluster-link';

type Handler = (body: Buffer, from: Peer, unicast: boolean) => void;

interface Member {
  readonly nodeId: number;
  readonly directory: Directory;
  replyHandler?: (reply: Reply, from: Peer) => void;
  readonly handlers: Map<number, Handler>;
  up: boolean;
}

export type MemoryLink = ClusterLink & MaintenanceLink;

export class MemoryCluster {
  private readonly members = new Map<number, Member>();
  /** Probability that one message is lost, 0..1. */
  loss = 0;
  delayMs = 1;
  /** Lose every multicast (QUERY to the group, UPDATE, maintenance to the group), keep unicast. */
  dropMulticast = false;
  sent = { queries: 0, updates: 0, replies: 0, maintenance: 0, lost: 0 };

  constructor(private readonly random: () => number = Math.random) {}

  join(nodeId: number, directory: Directory): MemoryLink {
    const m: Member = { nodeId, directory, up: true, handlers: new Map() };
    this.members.set(nodeId, m);
    const peer = (x: Member): Peer => ({ nodeId: x.nodeId, address: `memory:${x.nodeId}`, port: 0 });
    return {
      query: (key, queryId, to) => {
        this.sent.queries++;
        for (const other of this.others(m, to)) this.deliver(() => this.answer(other, m, key, queryId));
      },
      update: (entry) => {
        this.sent.updates++;
        for (const other of this.others(m)) this.deliver(() => other.up && this.store(other, entry));
      },
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

  /** A stopped node neither answers nor stores. */
  setUp(nodeId: number, up: boolean): void {
    this.members.get(nodeId)!.up = up;
  }

  /** Who a frame from m reaches: one member (unicast) or every other (multicast, unless dropMulticast). */
  private others(m: Member, to?: Peer): Member[] {
    if (!to && this.dropMulticast) return [];
    return [...this.members.values()].filter((x) => x !== m && (!to || to.nodeId === x.nodeId));
  }

  private deliver(fn: () => void): void {
    if (this.random() < this.loss) {
      this.sent.lost++;
      return;
    }
    setTimeout(fn, this.delayMs);
  }

  private answer(directory: Member, querier: Member, key: ClientKey, queryId: number): void {
    if (!directory.up) return;
    const e = directory.directory.lookup(clientKeyBytes(key));
    if (!e) return; // silence is a miss
    const ttlSeconds = Math.max(1, e.expiresSeconds - Math.floor(Date.now() / 1000));
    const reply: Reply = { queryId, entry: { clientKey: key, endpoint: e.endpoint, version: e.version, originNode: e.originNode, ttlSeconds } };
    this.sent.replies++;
    this.deliver(() => querier.replyHandler?.(reply, { nodeId: directory.nodeId, address: `memory:${directory.nodeId}`, port: 0 }));
  }

  private store(m: Member, e: Entry): void {
    m.directory.apply(clientKeyBytes(e.clientKey), e);
  }
}
