// How long what a directory stores lives (docs/protocol.md section 9,
// "Expiry"): what arrives carries its remaining lifetime; 0 means the
// receiver's default (entries and markers have their own); nothing from
// elsewhere lives longer than the receiver's maximum. The one place in
// TypeScript where this rule is written; native/responder.cc applies the
// same rule to the UPDATEs it stores.
export interface Lifetimes {
  /** Lifetime of an entry that carries none, and of the entries this node makes. */
  readonly entrySeconds: number;
  /** Lifetime of a withdraw marker that carries none, and of the markers this node makes. */
  readonly withdrawSeconds: number;
  /** No entry or marker lives longer here. */
  readonly maxSeconds: number;
}

/** The lifetime to store x with. */
export function lifetimeOf(l: Lifetimes, x: { readonly endpoint?: unknown; readonly ttlSeconds: number }): number {
  return Math.min(x.ttlSeconds || (x.endpoint ? l.entrySeconds : l.withdrawSeconds), l.maxSeconds);
}

