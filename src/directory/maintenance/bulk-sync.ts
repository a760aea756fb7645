// Bulk sync at start (issue 6): a node that starts or rejoins asks the
// cluster for its table before it takes calls, so that it routes every known
// client as the cluster does instead of making new entries for them. It is
// ready when one peer's whole table is in, when nobody answers (the first
// node of a cluster), or at the time-out, whichever comes first.
import type { Logger } from '../../util/logger';
import type { SessionEnd } from './sync-session';
import type { SyncSessions } from './sync-sessions';

export type SyncState = 'syncing' | 'ready';

export interface BulkSyncOutcome {
  /** How the sync ended: complete, alone (no peer answered) or timed-out. */
  readonly end: SessionEnd | 'timed-out';
  readonly sourceNode?: number;
  readonly entries: number;
  readonly chunks: number;
  readonly ms: number;
  readonly attempts: number;
  /** The widest first ask of any attempt (SessionResult.widestAsk; 0: every peer was asked). */
  readonly widestAsk: number;
}

export class BulkSync {
  state: SyncState = 'syncing';
  outcome?: BulkSyncOutcome;
  readonly ready: Promise<BulkSyncOutcome>;
  private stopped = false;
  private cancel?: () => void;

  constructor(sessions: SyncSessions, timeoutMs: number, log: Logger) {
    const started = performance.now();
    this.ready = new Promise<BulkSyncOutcome>((resolve) => {
      let attempts = 0;
      let entries = 0;
      let chunks = 0;
      let widestAsk = 1;
      const done = (o: BulkSyncOutcome) => {
        if (this.outcome) return;
        clearTimeout(timer);
        this.outcome = o;
        this.state = 'ready';
        resolve(o);
      };
      const timer = setTimeout(() => {
        this.cancel?.();
        done({ end: 'timed-out', entries, chunks, ms: performance.now() - started, attempts, widestAsk });
      }, timeoutMs);
      const attempt = () => {
        attempts++;
        const s = sessions.start('sync');
        this.cancel = () => s.cancel();
        void s.result.then((r) => {
          entries += r.entries;
          chunks += r.chunks;
          widestAsk = widestAsk === 0 || r.widestAsk === 0 ? 0 : Math.max(widestAsk, r.widestAsk);
          const o = { end: r.end, sourceNode: r.source?.nodeId, entries, chunks, ms: performance.now() - started, attempts, widestAsk };
          if (r.end === 'source-lost' && !this.stopped) {
            log.warn({ sourceNode: r.source?.nodeId, entries }, 'bulk sync: the source stopped answering; asking the cluster again');
            return attempt();
          }
          done(o);
        });
      };
      attempt();
    });
    void this.ready.then((o) => {
      // a node that failed to start (or stops while syncing) never became ready: do not say it did
      if (o.end === 'cancelled') return log.info({ ...o, ms: Math.round(o.ms) }, 'bulk sync stopped: the node is closing');
      log.info({ ...o, ms: Math.round(o.ms) }, o.end === 'timed-out' ? 'bulk sync timed out: ready without the whole table' : 'bulk sync done: ready');
    });
  }

  stop(): void {
    this.stopped = true;
    this.cancel?.();
  }
}
