// Node identity (issue 11): a node id must be unique in the cluster. The
// native responder notices frames with this node's id from another process
// (a duplicate id, kDuplicateNode) and, for every other id, frames from two
// sources taking turns (two processes with one id). This watch reads both
// every second, logs each incident once at error, counts it, and says while
// it lasts, for `show peers` and /readyz. Frames of both processes are still
// accepted (the replay window keeps one run per boot epoch), so when the
// impostor stops the real node is heard again at once.
import type { PeerInfo } from '../native';
import type { Logger } from '../util/logger';

interface Source {
  selfConflict(): { frames: number; incidents: number; lastMs: number; address: string; port: number; bootEpoch: number };
  peers(): PeerInfo[];
}

/** How long after the last such frame a duplicate of this node's own id still counts as present. */
const SELF_QUIET_MS = 10_000;

export class IdentityWatch {
  readonly counters = { selfIncidents: 0, selfFrames: 0, peerIncidents: 0 };
  private timer?: NodeJS.Timeout;
  private readonly peerIncidents = new Map<number, number>();

  constructor(private readonly nodeId: number, private readonly source: Source, private readonly log: Logger) {}

  start(): void {
    this.timer = setInterval(() => this.check(), 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Another process is sending with this node's id now (or did within the last 10 s). */
  get selfDuplicate(): { address: string; port: number; bootEpoch: number } | undefined {
    const c = this.source.selfConflict();
    return c.frames > 0 && Date.now() - c.lastMs < SELF_QUIET_MS ? { address: c.address, port: c.port, bootEpoch: c.bootEpoch } : undefined;
  }

  check(): void {
    const c = this.source.selfConflict();
    if (c.incidents > this.counters.selfIncidents) {
      this.log.error(
        { node: this.nodeId, from: `${c.address}:${c.port}`, bootEpoch: c.bootEpoch },
        'duplicate node id: another process sends with this node\'s id; node.id must be unique in the cluster',
      );
    }
    this.counters.selfIncidents = c.incidents;
    this.counters.selfFrames = c.frames;
    for (const p of this.source.peers()) {
      const before = this.peerIncidents.get(p.nodeId) ?? 0;
      if (p.duplicateIncidents > before) {
        this.counters.peerIncidents += p.duplicateIncidents - before;
        this.log.error({ peer: p.nodeId, address: `${p.address}:${p.port}`, bootEpoch: p.bootEpoch }, 'duplicate node id: two processes send with this peer\'s id');
      }
      this.peerIncidents.set(p.nodeId, p.duplicateIncidents);
    }
  }
}
