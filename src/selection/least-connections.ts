// Least connections, weighted: the endpoint with the fewest connections per
// unit of weight; ties go to the first listed. Local state only, so two nodes
// may choose differently for one client at the same moment (the version rule
// then settles on one entry).
import type { EndpointState } from './endpoint-set';
import type { SelectionPolicy } from './selection-policy';

export class LeastConnections implements SelectionPolicy {
  readonly name = 'least-connections' as const;

  select(_clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined {
    let best: EndpointState | undefined;
    for (const c of candidates) {
      if (c.endpoint.weight <= 0) continue;
      if (!best || c.connections / c.endpoint.weight < best.connections / best.endpoint.weight) best = c;
    }
    return best;
  }
}
