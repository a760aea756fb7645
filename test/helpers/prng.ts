/** Deterministic PRNG (xorshift128+) so a failing fuzz run can be repeated by its seed. */
export class Prng {
  private s0: bigint;
  private s1: bigint;
  constructor(readonly seed: number) {
    this.s0 = BigInt(seed) ^ 0x9e3779b97f4a7c15n;
    this.s1 = (BigInt(seed) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn || 1n;
  }
  next64(): bigint {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= (x << 23n) & 0xffffffffffffffffn;
    this.s1 = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (this.s1 + y) & 0xffffffffffffffffn;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Number(this.next64() % BigInt(n));
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)];
  }
}
