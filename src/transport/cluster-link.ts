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

/** A frame for the cluster-maintenance path (sync, withdraw, digest). */
export interface MaintenanceFrame {
  readonly type: number;
  readonly body: Buffer;
  /** Unicast destination; absent: the group. */
  readonly to?: Peer;
}

/**
 * How sync, withdraw and digest handling talk to the cluster: whole frames
 * of the maintenance types, sent in one batch and delivered by type.
 */
export interface MaintenanceLink {
  /** Returns the frames the kernel took; failures are counted by the link. */
  send(frames: readonly MaintenanceFrame[]): number;
  /** Bodies of this type, as they arrive (already authenticated and fresh). */
  onMessage(type: number, handler: (body: Buffer, from: Peer, unicast: boolean) => void): void;
  /** Peers heard from recently, and configured ones. */
  peers(): Peer[];
}
