// Weighted rendezvous (highest random weight) hashing: each endpoint scores
// -weight / ln(u), u uniform in (0,1) from a hash of (client key, endpoint);
// the highest score wins. Every node computes the same choice from the same
// key and endpoint list, so two nodes that miss for one client at the same
// moment pick the same endpoint without talking, and removing an endpoint
// moves only the clients that were on it.
//
// The hash is not cryptographic and need not be: it only spreads clients.
// It is computed on every first call of a reconnect storm, so it is two
// 32-bit passes over the key (FNV-1a and a second FNV-1a from another
// offset basis) and MurmurHash3's finalizer per endpoint: about 60 ns, where
// SHA-256 cost 3 us per endpoint (docs/design.md, "Selection").
import type { EndpointState } from './endpoint-set';
import type { SelectionPolicy } from './selection-policy';
import { fmix32, fnv1a32 } from '../directory/ranks';

const enc = new TextEncoder();

/** A second 32-bit FNV-1a pass, from another offset basis, for the low bits of u. */
function fnv1a32b(p: Uint8Array): number {
  let h = 0x050c5d1f;
  for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i], 0x01000193);
  return h >>> 0;
}

/** The two hashes of an endpoint id (its UTF-8 octets), cached: endpoint ids are few. */
const idHashes = new Map<string, readonly [number, number]>();
function endpointHashes(id: string): readonly [number, number] {
  let h = idHashes.get(id);
  if (!h) {
    const b = enc.encode(id);
    h = [fnv1a32(b), fnv1a32b(b)];
    if (idHashes.size > 4096) idHashes.clear();
    idHashes.set(id, h);
  }
  return h;
}

/**
 * u in (0,1) for (client key, endpoint id): 53 bits, the high 32 from
 * fmix32(FNV-1a(key) ^ FNV-1a(id)), the low 21 from the top of
 * fmix32(FNV-1a'(key) ^ FNV-1a'(id) ^ 0x9e3779b9) (FNV-1a' starts from
 * offset basis 0x050c5d1f); u = (x + 0.5) / 2^53.
 */
export function unitHash(clientKey: Uint8Array, endpointId: string): number {
  return unitHashOf(fnv1a32(clientKey), fnv1a32b(clientKey), endpointHashes(endpointId));
}

function unitHashOf(ka: number, kb: number, e: readonly [number, number]): number {
  const hi = fmix32((ka ^ e[0]) >>> 0);
  const lo = fmix32((kb ^ e[1] ^ 0x9e3779b9) >>> 0) >>> 11;
  return (hi * 2097152 + lo + 0.5) / 9007199254740992;
}

export class Rendezvous implements SelectionPolicy {
  readonly name = 'rendezvous' as const;

  select(clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined {
    const ka = fnv1a32(clientKey);
    const kb = fnv1a32b(clientKey);
    let best: EndpointState | undefined;
    let bestScore = -Infinity;
    for (const c of candidates) {
      if (c.endpoint.weight <= 0) continue;
      const score = -c.endpoint.weight / Math.log(unitHashOf(ka, kb, endpointHashes(c.id)));
      // ties (practically impossible) break by id so every node agrees
      if (score > bestScore || (score === bestScore && best && c.id < best.id)) {
        best = c;
        bestScore = score;
      }
    }
    return best;
  }
}
