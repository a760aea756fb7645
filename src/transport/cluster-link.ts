// How the router and directory maintenance talk to the other nodes.
// NativeLink (native-link.ts) sends through the addon; MemoryCluster
// (memory-cluster.ts) is the test double.
import type { ClientKey } from '../codec/client-key';
import type { Endpoint } from '../codec/endpoint';
import type { Entry } from '../codec/messages';

/** Another node, as far as sending to it goes. */
export interface Peer {
  readonly nodeId: number;
  readonly address: string;
  readonly port: number;
}

/** A node alive now: heard within the peer time-out and not stopping (docs/protocol.md, "HELLO"). */
export interface Member extends Peer {
  /** It announced READY: its table is synced, it answers and arbitrates. */
  readonly ready: boolean;
  /** When a frame of its was last accepted (ms since the epoch); undefined: not known. */
  readonly lastHeardMs?: number;
  /**
   * Counted among the arbiters: ready for at least agreement.arbiterDelayMs,
   * as its HELLOs say (docs/protocol.md "Arbiters"). undefined: as ready.
   */
  readonly arbiter?: boolean;
  /**
   * How long it has counted among the arbiters (ms), as its HELLOs say
   * (agreement.handoverMs). undefined: longer than any handover.
   */
  readonly arbiterForMs?: number;
}

/** One entry of a REPLY, as the router needs it (the native side decodes REPLYs once). */
export interface ReplyEntry {
  /** Canonical client key octets. */
  readonly keyBytes: Buffer;
  readonly endpoint: Endpoint;
  readonly version: number;
  readonly originNode: number;
  /** Remaining lifetime; 0: the receiver's default. */
  readonly ttlSeconds: number;
}

/** A client, with its canonical key octets (what the native side packs frames from). */
export interface KeyedClient {
  readonly clientKey: ClientKey;
  readonly keyBytes: Buffer;
}

/** An entry to send, with its client's canonical key octets. */
export type KeyedEntry = Entry & { readonly keyBytes: Buffer };

/** A REPLY: a directory's entries for a QUERY (query id) or a CLAIM (claim id). */
export interface ReplyBatch {
  readonly queryId: number;
  readonly from: Peer;
  readonly entries: readonly ReplyEntry[];
}

export interface ClusterLink {
  /**
   * Asks about these clients: multicast, or to one peer. answerRank: 0 every
   * directory holding an entry answers; k > 0 only those ranked below k.
   * Keys are packed into as many frames as they need.
   */
  query(clients: readonly KeyedClient[], queryId: number, answerRank: number, to?: Peer): void;
  /** Multicasts UPDATEs for these entries (as many frames as they need). */
  update(entries: readonly KeyedEntry[]): void;
  /**
   * Sends proposals for new clients (or moves) to their arbiter (docs/protocol.md, "CLAIM");
   * handover: they are an earlier arbiter's answers, carried on (docs/protocol.md, "Handover").
   */
  claim(to: Peer, claimId: number, proposals: readonly KeyedEntry[], handover?: boolean): void;
  /** REPLYs for this node, as they arrive. */
  onReply(handler: (reply: ReplyBatch) => void): void;
  /** The other nodes alive now. */
  members(): readonly Member[];
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
  /** The other nodes alive now (as ClusterLink.members). */
  members(): readonly Member[];
}
