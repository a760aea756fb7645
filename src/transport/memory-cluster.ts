// An in-memory cluster: the test double for ClusterLink. Nodes' directories
// answer QUERYs and store UPDATEs as the native responder does, after an
// optional delay and with optional random loss, so the router's logic can be
// tested (and simulated) without sockets or the addon.
import { type ClientKey, clientKeyBytes } from '../codec/client-key';
import type { Entry, Reply } from '../codec/messages';
import type { LocalDirectory } from '../directory/local-directory';
import type { ClusterLink, Peer } from './cluster-link';

interface Member {
  readonly nodeId: number;
  readonly directory: LocalDirectory;
  replyHandler?: (reply: Reply, from: Peer) => void;
  up: boolean;
}

export class MemoryCluster {
  private readonly members = new Map<number, Member>();
  /** Probability that one message is lost, 0..1. */
  loss = 0;
  delayMs = 1;
  /** Lose every multicast (QUERY to the group, UPDATE), keep unicast. */
  dropMulticast = false;
  sent = { queries: 0, updates: 0, replies: 0, lost: 0 };

  constructor(private readonly random: () => number = Math.random) {}

  join(nodeId: number, directory: LocalDirectory): ClusterLink {
    const m: Member = { nodeId, directory, up: true };
    this.members.set(nodeId, m);
    const peer = (x: Member): Peer => ({ nodeId: x.nodeId, address: `memory:${x.nodeId}`, port: 0 });
    return {
      query: (key, queryId, to) => {
        this.sent.queries++;
        for (const other of this.members.values()) {
          if (other === m || (to && to.nodeId !== other.nodeId)) continue;
          if (!to && this.dropMulticast) continue;
          this.deliver(() => this.answer(other, m, key, queryId));
        }
      },
      update: (entry) => {
        this.sent.updates++;
        for (const other of this.members.values()) {
          if (other !== m && !this.dropMulticast) this.deliver(() => other.up && this.store(other, entry));
        }
      },
      peers: () => [...this.members.values()].filter((x) => x !== m && x.up).map(peer),
      onReply: (h) => {
        m.replyHandler = h;
      },
    };
  }

  /** A stopped node neither answers nor stores. */
  setUp(nodeId: number, up: boolean): void {
    this.members.get(nodeId)!.up = up;
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
    m.directory.store(clientKeyBytes(e.clientKey), e.endpoint, e.version, e.originNode, e.ttlSeconds);
  }
}
