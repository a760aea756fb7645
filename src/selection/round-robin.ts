// Smooth weighted round robin (as nginx does it): each pick adds every
// candidate's weight to its credit, takes the highest, and charges it the
// total. Spreads picks in proportion to weight without bursts.
import type { EndpointState } from './endpoint-set';
import type { SelectionPolicy } from './selection-policy';

export class RoundRobin implements SelectionPolicy {
  readonly name = 'round-robin' as const;
  private credit = new Map<string, number>();

  select(_clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined {
    let best: EndpointState | undefined;
    let total = 0;
    for (const c of candidates) {
      if (c.endpoint.weight <= 0) continue;
      const credit = (this.credit.get(c.id) ?? 0) + c.endpoint.weight;
      this.credit.set(c.id, credit);
      total += c.endpoint.weight;
      if (!best || credit > this.credit.get(best.id)!) best = c;
    }
    if (best) this.credit.set(best.id, this.credit.get(best.id)! - total);
    return best;
  }
}
