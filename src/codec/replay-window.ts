// Replay protection, the reference for native/replay_window.cc (docs/protocol.md
// section 5.1): per sender, the newest boot epoch and a window of 1024
// sequences below the highest seen. Used offline by the capture summary.
export type ReplayResult = 'new' | 'replay' | 'oldEpoch' | 'tooOld';

export const REPLAY_WIDTH = 1024n;

interface Peer {
  epoch: number;
  top: bigint;
  seen: Set<bigint>;
}

export class ReplayWindow {
  private readonly peers = new Map<number, Peer>();

  check(node: number, epoch: number, seq: bigint): ReplayResult {
    const p = this.peers.get(node);
    if (!p || epoch > p.epoch) {
      this.peers.set(node, { epoch, top: seq, seen: new Set([seq]) });
      return 'new';
    }
    if (epoch < p.epoch) return 'oldEpoch';
    if (seq > p.top) {
      p.top = seq;
      p.seen.add(seq);
      for (const s of p.seen) if (p.top - s >= REPLAY_WIDTH) p.seen.delete(s);
      return 'new';
    }
    if (p.top - seq >= REPLAY_WIDTH) return 'tooOld';
    if (p.seen.has(seq)) return 'replay';
    p.seen.add(seq);
    return 'new';
  }
}
