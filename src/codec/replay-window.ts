// Replay protection, the reference for native/replay_window.cc (docs/protocol.md
// section 5.1): per sender and per boot epoch of it (up to 4 at once), a
// window of 1024 sequences below the highest seen. A run not held takes a
// free slot, or the least recently used one if that is idle for twice the
// timestamp window or if the run is newer than every one held. Used offline
// by the capture summary, with the capture's clock.
export type ReplayResult = 'new' | 'replay' | 'oldEpoch' | 'tooOld';

export const REPLAY_WIDTH = 1024n;
export const REPLAY_EPOCHS = 4;

interface Run {
  epoch: number;
  top: bigint;
  seen: Set<bigint>;
  lastMs: number;
}

export class ReplayWindow {
  private readonly peers = new Map<number, Run[]>();

  constructor(private readonly idleMs = 60_000) {}

  check(node: number, epoch: number, seq: bigint, nowMs: number): ReplayResult {
    let runs = this.peers.get(node);
    if (!runs) this.peers.set(node, (runs = []));
    let run = runs.find((r) => r.epoch === epoch);
    if (!run) {
      const newest = Math.max(-1, ...runs.map((r) => r.epoch));
      if (runs.length >= REPLAY_EPOCHS) {
        const lru = runs.reduce((a, b) => (b.lastMs < a.lastMs ? b : a));
        if (!(epoch > newest) && nowMs - lru.lastMs < this.idleMs) return 'oldEpoch';
        runs.splice(runs.indexOf(lru), 1);
      }
      runs.push({ epoch, top: seq, seen: new Set([seq]), lastMs: nowMs });
      return 'new';
    }
    if (seq > run.top) {
      run.top = seq;
      run.seen.add(seq);
      for (const s of run.seen) if (run.top - s >= REPLAY_WIDTH) run.seen.delete(s);
      run.lastMs = nowMs;
      return 'new';
    }
    if (run.top - seq >= REPLAY_WIDTH) return 'tooOld';
    if (run.seen.has(seq)) return 'replay';
    run.seen.add(seq);
    run.lastMs = nowMs;
    return 'new';
  }
}
