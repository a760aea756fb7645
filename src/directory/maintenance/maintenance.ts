// Directory maintenance: what keeps one node's directory in step with the
// cluster's, beside the hot path (QUERY, REPLY, UPDATE, CLAIM). Bulk sync at
// start, answering other nodes' sync requests, withdraw markers, digest
// comparison and repair; one object a node creates and starts, and which
// runs on any Directory and any MaintenanceLink (the memory doubles too).
import type { Logger } from '../../util/logger';
import type { MaintenanceLink } from '../../transport/cluster-link';
import type { Directory } from '../directory';
import { AntiEntropy, type AntiEntropyOptions } from './anti-entropy';
import { BulkSync, type BulkSyncOutcome } from './bulk-sync';
import { EntryApplier } from './entry-applier';
import { SyncServer } from './sync-server';
import { SyncSessions } from './sync-sessions';
import { Withdrawals } from './withdrawals';

export interface MaintenanceOptions {
  readonly nodeId: number;
  readonly sync: { readonly enabled: boolean; readonly timeoutMs: number; readonly windowChunks: number; readonly retryMs: number; readonly retries: number };
  readonly antiEntropy: { readonly enabled: boolean; readonly intervalMs: number; readonly buckets: number };
}

/** What a node knows of its sync with one peer (`affinityd show peers`). */
export type PeerSyncState = 'syncing-from' | 'repairing' | 'in-sync' | 'differs' | 'unknown';

export class DirectoryMaintenance {
  readonly applier: EntryApplier;
  readonly syncServer: SyncServer;
  readonly sessions: SyncSessions;
  readonly withdrawals: Withdrawals;
  /** Absent when digests are off at start (a reload cannot turn them on). */
  readonly antiEntropy?: AntiEntropy;
  /** Set by start() when bulk sync is on. */
  bulkSync?: BulkSync;
  private digestsOn: boolean;
  private started = false;

  constructor(directory: Directory, link: MaintenanceLink, private readonly o: MaintenanceOptions, private readonly log: Logger) {
    this.applier = new EntryApplier(directory, log);
    this.syncServer = new SyncServer(directory, link, { nodeId: o.nodeId, ready: () => this.syncState === 'ready' });
    this.sessions = new SyncSessions(link, this.applier, o.sync);
    this.withdrawals = new Withdrawals(directory, link, { nodeId: o.nodeId });
    if (o.antiEntropy.enabled) this.antiEntropy = new AntiEntropy(directory, link, this.sessions, this.digestOptions(o.antiEntropy));
    this.digestsOn = o.antiEntropy.enabled;
  }

  private digestOptions(a: MaintenanceOptions['antiEntropy']): AntiEntropyOptions {
    return { nodeId: this.o.nodeId, intervalMs: a.intervalMs, buckets: a.buckets };
  }

  /**
   * Starts the bulk sync (when on), and the digests once it is over (a
   * digest compared against a half-synced table would pull the sender's
   * whole table again); resolves when the node is ready.
   */
  start(): Promise<BulkSyncOutcome | undefined> {
    this.started = true;
    if (this.o.sync.enabled) this.bulkSync = new BulkSync(this.sessions, this.o.sync.timeoutMs, this.log);
    void this.ready.then(() => {
      if (this.started && this.digestsOn) this.antiEntropy?.start();
    });
    return this.ready;
  }

  stop(): void {
    this.started = false;
    this.antiEntropy?.stop();
    this.bulkSync?.stop();
    this.sessions.cancelAll();
  }

  /** New digest settings (a configuration reload). */
  reconfigure(a: MaintenanceOptions['antiEntropy']): void {
    this.digestsOn = a.enabled;
    this.antiEntropy?.reconfigure(this.digestOptions(a), a.enabled && this.started && this.syncState === 'ready');
  }

  /** 'syncing' until the bulk sync at start is done or timed out; then 'ready'. */
  get syncState(): 'syncing' | 'ready' {
    return this.bulkSync?.state ?? 'ready';
  }

  /** Resolves when the node is ready, with how the bulk sync went (undefined without one). */
  get ready(): Promise<BulkSyncOutcome | undefined> {
    return this.bulkSync?.ready ?? Promise.resolve(undefined);
  }

  peerSyncState(nodeId: number): PeerSyncState {
    if (this.sessions.pullingFrom(nodeId)) return this.syncState === 'syncing' ? 'syncing-from' : 'repairing';
    const d = this.antiEntropy?.peerDigests.get(nodeId);
    if (!d) return 'unknown';
    return d.matched ? 'in-sync' : 'differs';
  }

  /** The peer the bulk sync took the table from, once it is done. */
  get syncSource(): number | undefined {
    return this.syncState === 'syncing' ? undefined : this.bulkSync?.outcome?.sourceNode;
  }

  stats() {
    return {
      state: this.syncState,
      outcome: this.bulkSync?.outcome,
      server: { ...this.syncServer.counters },
      sessions: { ...this.sessions.counters, running: this.sessions.running },
      applied: { ...this.applier.counters },
      withdrawals: { ...this.withdrawals.counters },
      antiEntropy: this.antiEntropy ? { ...this.antiEntropy.counters } : undefined,
    };
  }
}
