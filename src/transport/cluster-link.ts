// How the router talks to the other nodes. NativeLink (native-link.ts) sends
// through the addon; MemoryCluster (memory-cluster.ts) is the test double.
import type { ClientKey } from '../codec/client-key';
import type { Entry, Reply } from '../codec/messages';

/** Another node, as far as sending to it goes. */
export interface Peer {
  readonly nodeId: number;
  readonly address: string;
  readonly port: number;
}

export interface ClusterLink {
  /** Multicasts a QUERY, or sends it to one peer (a direct query). */
  query(clientKey: ClientKey, queryId: number, to?: Peer): void;
  /** Multicasts an UPDATE. */
  update(entry: Entry): void;
  /** Peers a direct query may go to: heard from, or configured. */
  peers(): Peer[];
  /** REPLYs for this node, as they arrive. */
  onReply(handler: (reply: Reply, from: Peer) => void): void;
}
