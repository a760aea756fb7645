// Weighted rendezvous (highest random weight) hashing: each endpoint scores
// -weight / ln(u), u uniform in (0,1) from a hash of (client key, endpoint);
// the highest score wins. Every node computes the same choice from the same
// key and endpoint list, so two nodes that miss for one client at the same
// moment pick the same endpoint without talking, and removing an endpoint
// moves only the clients that were on it.
import { createHash } from 'node:crypto';

import type { EndpointState } from './endpoint-set';
import type { SelectionPolicy } from './selection-policy';

/** u in (0,1): the first 53 bits of SHA-256(key || 0x00 || endpoint id). */
export function unitHash(clientKey: Buffer, endpointId: string): number {
  const d = createHash('sha256').update(clientKey).update(Buffer.of(0)).update(endpointId).digest();
  const x = d.readUIntBE(0, 6) * 32 + (d[6] >> 3); // 53 bits
  return (x + 0.5) / 2 ** 53;
}

export class Rendezvous implements SelectionPolicy {
  readonly name = 'rendezvous' as const;

  select(clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined {
    let best: EndpointState | undefined;
    let bestScore = -Infinity;
    for (const c of candidates) {
      if (c.endpoint.weight <= 0) continue;
      const score = -c.endpoint.weight / Math.log(unitHash(clientKey, c.id));
      // ties (practically impossible) break by id so every node agrees
      if (score > bestScore || (score === bestScore && best && c.id < best.id)) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  }
}
