// The narrow views of a node that its operator-facing parts use: the
// control sockets, the metrics and the management listener read a NodeView;
// only the admin control socket gets a NodeAdmin. They depend on these
// interfaces, not on the node (src/daemon/node.ts implements them), so the
// node can wire them without an import circle.
import type { DirectoryReader } from '../directory/directory';
import type { KeyedClient, MaintenanceFrame, ReplyBatch } from '../transport/cluster-link';
import type { ChangeEvent } from './change-feed';
import type { Config } from './config';
import type { NodeStats } from './node-stats';
import type { SplitView } from '../links/split-detector';
import type { Readiness } from './readiness';

/** What this node knows of another node (`affinityd show peers`). */
export interface PeerState {
  nodeId: number;
  /** Where its frames come from (its unicast socket), or the configured address. */
  address: string;
  port: number;
  /** Date.now() of the last frame accepted from it; 0: never heard (a configured peer). */
  lastHeardMs: number;
  bootEpoch: number;
  lastSequence: number;
  accepted: number;
  authFailures: number;
  /** What it says of itself in its HELLOs: starting | ready | stopping; gone: not heard for the peer time-out; unknown: never heard */
  state: string;
  /** Frames with its id come from two processes now: a duplicate node id. */
  duplicateNodeId: boolean;
  /** Incidents of a duplicate id seen for it (each logged once at error). */
  duplicateIncidents: number;
  /** configured-only | syncing-from | repairing | in-sync | differs | unknown */
  syncState: string;
  /** The peer this node's bulk sync took the table from. */
  bulkSyncSource?: boolean;
}

/** What a configuration reload did. */
export interface ReloadResult {
  /** Settings now in effect. */
  applied: string[];
  /** Settings that changed but need a restart to take effect (the old values stay). */
  needRestart: string[];
}

export interface NodeView {
  readonly nodeId: number;
  readonly directory: DirectoryReader;
  /** Live links of each client at this node (`show entries` LINKS). */
  readonly links: { countFor(keyBytes: Buffer): number };
  /** The configuration in effect. */
  readonly config: Config;
  readonly isClosing: boolean;
  stats(): NodeStats;
  peers(): PeerState[];
  readiness(): Readiness;
  /** Clients whose live links are on different endpoints (live splits). */
  splitClients(): SplitView[];
  /** A stream of table changes (`affinityd monitor`); costs nothing while nobody listens. */
  subscribeChanges(listener: (e: ChangeEvent) => void): () => void;
}

/** What `clear` uses of the cluster side to confirm a withdrawal (src/control/clear.ts). */
export interface ClearCluster {
  readonly link: {
    /** Nodes alive now. */
    members(): readonly { readonly nodeId: number }[];
    query(clients: readonly KeyedClient[], queryId: number, answerRank: number): void;
    /** Sees REPLYs before the router (which still gets them unless the tap returns true); returns the remover. */
    tapReplies(tap: (r: ReplyBatch) => boolean): () => void;
    send(frames: readonly MaintenanceFrame[]): number;
  };
  readonly withdrawals: { readonly counters: { readonly sent: number } };
  /** With sites: the withdraws handed to the site directory (Redis), by outcome. */
  readonly sites?: {
    readonly withdraws: { readonly stored: number; readonly superseded: number; readonly kept: number; readonly failed: number };
    withdrawsSettled(timeoutMs: number): Promise<number>;
  };
}

export interface NodeAdmin extends NodeView {
  /** Deletes the client's entry on every node; false if it had none. */
  withdraw(client: string): boolean;
  /** Deletes every entry on every node; returns how many this node held. */
  withdrawAll(): number;
  /** Re-reads the configuration file and applies what can change (SIGHUP). */
  reloadFromFile(): ReloadResult;
  setLogLevel(level: Config['log']['level']): void;
  /** What `clear` uses to confirm a withdrawal with the cluster (src/control/clear.ts). */
  readonly clearing: ClearCluster;
}
