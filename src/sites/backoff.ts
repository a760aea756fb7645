// Exponential back-off with jitter, for reconnecting to Redis and probing it
// while it is down: minMs, doubling per attempt, at most maxMs, each wait
// spread by +-20% so that the nodes of every site do not knock at the same
// moment when Redis returns.
export interface Backoff {
  readonly minMs: number;
  readonly maxMs: number;
}

export function backoffMs(b: Backoff, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(b.maxMs, b.minMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}
