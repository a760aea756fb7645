// The protocol's key hash H64 (docs/protocol.md, "The key hash"), the same
// function as native/key_hash.h HashKey: a seeded 64x64->128 multiply-fold
// over the octets read as little-endian 64-bit words. Digests place keys in
// buckets with it and fold entries into bucket digests; ranks (which node
// answers or arbitrates for a client) are derived from it. BigInt keeps it
// exact; the native side computes it where speed matters.
const M64 = (1n << 64n) - 1n;
const K0 = 0xa0761d6478bd642fn;
const K1 = 0xe7037ed1a0b428dbn;
const K2 = 0x8ebc6af09c88c6e3n;

/** Seeds the protocol uses (docs/protocol.md). */
export const BUCKET_SEED = 0x6166666e64696731n; // "affndig1": which digest bucket a key is in
export const ENTRY_SEED = 0x6166666e64656e31n; // "affnden1": an entry's contribution to its bucket

function mulFold(a: bigint, b: bigint): bigint {
  const r = a * b;
  return (r & M64) ^ (r >> 64n);
}

function word(p: Uint8Array, from: number, len: number): bigint {
  let w = 0n;
  for (let i = len - 1; i >= 0; i--) w = (w << 8n) | BigInt(p[from + i]);
  return w;
}

/** H64(octets, seed): a 64-bit unsigned BigInt. */
export function keyHash64(p: Uint8Array, seed: bigint): bigint {
  const n = p.length;
  let h = (seed ^ ((K0 * BigInt(n + 1)) & M64)) & M64;
  let i = 0;
  for (; i + 16 <= n; i += 16) h = mulFold(word(p, i, 8) ^ K1 ^ h, word(p, i + 8, 8) ^ K2 ^ seed);
  const rest = n - i;
  let a = 0n;
  let b = 0n;
  if (rest > 8) {
    a = word(p, i, 8);
    b = word(p, i + 8, rest - 8);
  } else if (rest > 0) {
    a = word(p, i, rest);
  }
  h = mulFold(a ^ K1 ^ h, b ^ K2 ^ seed);
  return mulFold(h ^ K0, BigInt(n) ^ K1);
}

/** The digest bucket hash of a canonical key: the upper 32 bits of H64(key, BUCKET_SEED). */
export function bucketHash(canonicalKey: Uint8Array): number {
  return Number(keyHash64(canonicalKey, BUCKET_SEED) >> 32n);
}
