// The control protocol: one JSON object per line each way over a Unix
// stream socket. A request names a command; the answer is one line
// {ok: true, result} or {ok: false, error}; `monitor` answers with a line
// per change until the client closes. Two levels, as HAProxy's stats
// sockets have: the admin socket takes every command; the read-only socket
// refuses the ones that change something. Who may connect is the socket
// file's mode (0660) and owner: the kernel checks it.

export type ControlLevel = 'admin' | 'read-only';

export interface EntryFilter {
  /** Exact username. */
  username?: string;
  /** Discriminator in text form (`2:192.0.2.7`). */
  discriminator?: string;
  /** Endpoint name, or address:port. */
  endpoint?: string;
  /** Include withdraw markers. */
  withdrawn?: boolean;
}

export type ControlRequest =
  | { cmd: 'show-entries'; filter?: EntryFilter; limit?: number }
  | { cmd: 'show-entry'; client: string }
  | { cmd: 'show-peers' }
  | { cmd: 'show-splits' }
  | { cmd: 'show-stats' }
  /** confirm (default true): ask the cluster afterwards whether any node still holds the cleared entries (clear.ts). */
  | { cmd: 'clear'; client?: string; all?: boolean; confirm?: boolean }
  | { cmd: 'monitor' }
  | { cmd: 'reload' }
  | { cmd: 'set-log-level'; level: string };

export type ControlCommand = ControlRequest['cmd'];

/** Commands that change the node: admin socket only. */
export const ADMIN_COMMANDS: ReadonlySet<ControlCommand> = new Set(['clear', 'reload', 'set-log-level']);

export const COMMANDS: readonly ControlCommand[] = ['show-entries', 'show-entry', 'show-peers', 'show-splits', 'show-stats', 'clear', 'monitor', 'reload', 'set-log-level'];

export interface EntryView {
  client: string;
  /** `name=address:port`, or null for a withdraw marker. */
  endpoint: string | null;
  endpointName: string | null;
  version: number;
  originNode: number;
  expiresInSeconds: number;
  /** Links of the client live at this node (front-end calls, RADIUS sessions). */
  liveLinks: number;
}

export interface PeerView {
  nodeId: number;
  address: string;
  port: number;
  lastHeardMsAgo: number | null;
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
  /** configured-only (never heard) | in-sync | differs | repairing | syncing-from | unknown */
  syncState: string;
  /** The peer this node's bulk sync took the table from. */
  bulkSyncSource?: boolean;
}

/** Longest request line the server reads. */
export const MAX_REQUEST_OCTETS = 64 * 1024;

export const DEFAULT_SOCKET = '/run/affinityd/control.sock';
