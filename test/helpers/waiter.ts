/** Items as they arrive, and promises for the first one that matches. */
export class Waiter<T> {
  readonly items: T[] = [];
  private waiters: { pred: (x: T) => boolean; resolve: (x: T) => void }[] = [];

  push(x: T): void {
    this.items.push(x);
    this.waiters = this.waiters.filter((w) => (w.pred(x) ? (w.resolve(x), false) : true));
  }

  /** The first item (already here, or still to come) that matches, within timeoutMs. */
  wait(pred: (x: T) => boolean, timeoutMs: number, describe: () => string): Promise<T> {
    const have = this.items.find(pred);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve: (x: T) => (clearTimeout(timer), resolve(x)) };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((o) => o !== w);
        reject(new Error(describe()));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
}
