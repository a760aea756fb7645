// Is Redis usable? Up or down, with the reason, as the operator sees it
// (/readyz warnings, `show peers`, the log). Pure: the site directory feeds
// it what happens; it decides the transitions.
//
//   down -> up    only when a probe answered within the budget and the
//                 journal was written back (never on an ordinary answer:
//                 after a gap in key tracking the node must catch up first)
//   up -> down    at once on a connection failure or a gap in key tracking;
//                 after failuresBeforeDown calls or probes in a row without
//                 an answer within the budget, or with an error reply
import type { SiteState } from './site-directory';

export class Availability {
  private current: SiteState;
  private failuresInARow = 0;
  private readonly listeners = new Set<(s: SiteState) => void>();

  constructor(private readonly failuresBeforeDown: number, private readonly now: () => number = Date.now) {
    this.current = { state: 'down', reason: 'connecting', sinceMs: now() };
  }

  get state(): SiteState {
    return this.current;
  }

  get isUp(): boolean {
    return this.current.state === 'up';
  }

  onChange(l: (s: SiteState) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** An answer within the budget. */
  answered(): void {
    this.failuresInARow = 0;
  }

  /** No answer within the budget, or an error reply: down after failuresBeforeDown in a row. Returns true if it went down. */
  failed(reason: string): boolean {
    this.failuresInARow++;
    if (this.failuresInARow < this.failuresBeforeDown) return false;
    return this.down(this.failuresBeforeDown > 1 ? `${reason} (${this.failuresInARow} in a row)` : reason);
  }

  /** Down now (a connection failure, a gap in tracking). While down, a newer reason replaces the old one. Returns true on a transition. */
  down(reason: string): boolean {
    if (this.current.state === 'down') {
      if (this.current.reason !== reason) this.current = { ...this.current, reason };
      return false;
    }
    this.set({ state: 'down', reason, sinceMs: this.now() });
    return true;
  }

  /** Returns true on a transition. */
  up(): boolean {
    this.failuresInARow = 0;
    if (this.current.state === 'up') return false;
    this.set({ state: 'up', sinceMs: this.now() });
    return true;
  }

  private set(s: SiteState): void {
    this.current = s;
    for (const l of this.listeners) l(s);
  }
}
