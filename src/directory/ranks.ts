// Ranks (docs/protocol.md, "Ranks"): for each client, every node of the
// cluster has a place in one order that every node computes alike from the
// client key and the node ids alone (rendezvous hashing). Rank 0 is the
// client's arbiter, which settles concurrent first calls (CLAIM), and the one
// directory that answers a first QUERY; the bulk sync of a starting node is
// served by the rank-0 node for the starting node's id. Chosen for a third
// party's ease: 32-bit FNV-1a over the key, MurmurHash3's finalizer per node.

/** FNV-1a, 32 bits, over octets. */
export function fnv1a32(p: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i], 0x01000193);
  return h >>> 0;
}

/** MurmurHash3's 32-bit finalizer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The rank hash of a client key (its canonical octets). */
export const clientRankHash = (canonicalKey: Uint8Array): number => fnv1a32(canonicalKey);

/** The rank hash of a node id (for what is ranked per node, such as serving its bulk sync): its 4 octets, big-endian. */
export function nodeRankHash(nodeId: number): number {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(nodeId >>> 0);
  return fnv1a32(b);
}

/** A node's score for a rank hash: higher ranks first; equal scores go to the higher node id. */
export const rankScore = (rankHash: number, nodeId: number): number => fmix32((rankHash ^ fmix32(nodeId >>> 0)) >>> 0);

/** Node ids in rank order (rank 0 first). */
export function rankOrder(rankHash: number, nodeIds: readonly number[]): number[] {
  return nodeIds
    .map((id) => ({ id, s: rankScore(rankHash, id) }))
    .sort((a, b) => b.s - a.s || b.id - a.id)
    .map((x) => x.id);
}

/** The first node in rank order (rank 0: rankOrder(...)[0]) without sorting or allocating; undefined for none. */
export function rankFirst(rankHash: number, nodeIds: readonly number[]): number | undefined {
  let best: number | undefined;
  let bestScore = 0;
  for (const id of nodeIds) {
    const s = rankScore(rankHash, id);
    if (best === undefined || s > bestScore || (s === bestScore && id > best)) {
      best = id;
      bestScore = s;
    }
  }
  return best;
}

/** The rank of node `self` among `self` and `others` (0: first). */
export function rankOf(rankHash: number, self: number, others: readonly number[]): number {
  const mine = rankScore(rankHash, self);
  let rank = 0;
  for (const id of others) {
    if (id === self) continue;
    const s = rankScore(rankHash, id);
    if (s > mine || (s === mine && id > self)) rank++;
  }
  return rank;
}
