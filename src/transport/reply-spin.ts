// The reply spin: after a QUERY goes out, the JS thread reads the reply
// socket for a few microseconds before it goes back to sleep in the event
// loop. A REPLY that comes within that window is handled without the
// thread's wake-up, the larger part of a remote hit's tail on a busy
// machine (docs/design.md, "The reply spin").
//
// Spinning costs CPU and pays only while REPLYs come quickly, so the window
// adapts the way KVM's halt polling does (halt_poll_ns): it grows (doubling,
// or at once to the wait seen, up to the configured maximum) when a REPLY
// came within the maximum, and halves when a spin ended with nothing. Below
// the smallest useful window the spin is off, except for one probe of that
// smallest window every PROBE_EVERY QUERYs: a REPLY that comes through the
// event loop is late by the very wake-up the spin saves, so it alone would
// rarely show that spinning pays again. Misses (nobody knows the client) and
// a cold cluster therefore cost a few fruitless spins, then one short probe
// in PROBE_EVERY QUERYs. Pure: no clock, no I/O.

/** A window below this is not worth a spin (one read of the socket is a few microseconds). */
export const MIN_SPIN_MICROS = 10;
/** While the spin is off, one QUERY in this many gets a probe of MIN_SPIN_MICROS. */
export const PROBE_EVERY = 8;

export class ReplySpin {
  private windowUs: number;
  private sinceProbe = 0;

  constructor(readonly maxMicros: number) {
    if (!Number.isFinite(maxMicros) || maxMicros < 0) throw new RangeError(`reply spin: maxMicros must be >= 0, got ${maxMicros}`);
    this.windowUs = maxMicros >= MIN_SPIN_MICROS ? maxMicros : 0;
  }

  /** The current window in microseconds (0: off, probing). */
  get window(): number {
    return this.windowUs;
  }

  /** Microseconds the spin about to run may take (0: no spin this time). */
  take(): number {
    if (this.windowUs > 0) return this.windowUs;
    if (this.maxMicros < MIN_SPIN_MICROS) return 0;
    if (++this.sinceProbe < PROBE_EVERY) return 0;
    this.sinceProbe = 0;
    return MIN_SPIN_MICROS;
  }

  /** A spin ended: with a REPLY, or with nothing after its whole budget. */
  spun(gotReply: boolean): void {
    if (gotReply) this.grow();
    else this.windowUs = this.windowUs / 2 >= MIN_SPIN_MICROS ? this.windowUs / 2 : 0;
  }

  /**
   * A REPLY reached the event loop latencyUs after the QUERY went out (no
   * spin caught it): within the maximum, the window grows to cover it.
   */
  replyAfter(latencyUs: number): void {
    if (latencyUs <= this.maxMicros) this.grow(Math.ceil(latencyUs));
  }

  private grow(atLeast = 0): void {
    if (this.maxMicros < MIN_SPIN_MICROS) return;
    this.windowUs = Math.min(this.maxMicros, Math.max(MIN_SPIN_MICROS, this.windowUs * 2, atLeast));
  }
}
