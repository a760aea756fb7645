// Joins a client connection to its endpoint: each direction carried with
// backpressure (a write the other side's buffer cannot take stops the reader
// until that side drains), half-close carried across (a FIN from one side
// ends the other's writing side only), and an idle time-out. When one side
// closes for good (both directions done, reset, or destroyed), the other is
// ended gracefully, and destroyed if it has not closed LINGER_MS later.
// Resolves when both are closed.
//
// Built for the cost of a call (docs/design.md, "Front ends"):
// - The endpoint's octets are read into a buffer of the call's own (net's
//   `onread`) and written to the client from there; the buffer is used again
//   for the next read whenever that write went to the kernel at once, so a
//   busy call reads without allocating (Node's default allocates 64 KiB per
//   read, and that allocation rate drives V8 into repeated full collections
//   in a node with a large heap). Its size follows the traffic: the power of
//   two that holds the last read, doubled after a read that filled it, from
//   MIN_READ to MAX_READ, so an idle call keeps a small one.
// - The client's octets arrive as Node's 'data' chunks (an accepted socket
//   cannot be given `onread`) and are written to the endpoint.
// - Three listeners per direction instead of pipe()'s eight and its unpipe on
//   close; one idle timer, on the client socket, instead of one per socket
//   (every octet either way is a read or a write on the client socket, and
//   each of those re-arms it); the linger timer cleared when the other closes.
import type { Socket } from 'node:net';

export interface SpliceResult {
  bytesFromClient: number;
  bytesToClient: number;
  reason: 'closed' | 'idleTimeout' | 'error';
}

/** When one side of a call is done for good, how long the other has to finish (also the kernel splice's). */
export const LINGER_MS = 5000;
/** Read buffer of one call's endpoint direction: smallest and largest size (octets). */
export const MIN_READ = 4096;
export const MAX_READ = 65536;

/** The size for the next read after one of n octets into a buffer of `size`. */
export function nextReadSize(n: number, size: number): number {
  if (n >= size) return Math.min(size * 2, MAX_READ);
  let s = MIN_READ;
  while (s < n) s *= 2;
  return s;
}

/**
 * The endpoint side of a call: give `onread` to net.connect, then splice().
 * Octets the endpoint sends before the splice begins (none in practice: the
 * splice starts in the same turn as the connect event) are kept and sent first.
 */
export class EndpointReads {
  private next: Buffer = Buffer.allocUnsafeSlow(MIN_READ);
  private client?: Socket;
  private early?: Buffer[];
  readonly onread = {
    buffer: (): Buffer => this.next,
    callback: (n: number, buf: Buffer): boolean => this.read(n, buf),
  };

  private read(n: number, buf: Buffer): boolean {
    const client = this.client;
    if (!client) {
      // kept as read, and never read into again: the next read gets a new buffer
      (this.early ??= []).push(buf.subarray(0, n));
      this.next = Buffer.allocUnsafeSlow(buf.length);
      return false; // stop reading until the splice begins
    }
    const more = client.write(buf.subarray(0, n));
    const size = nextReadSize(n, buf.length);
    // reuse the buffer only if none of it is still queued for the client
    this.next = size === buf.length && client.writableLength === 0 ? buf : Buffer.allocUnsafeSlow(size);
    return more; // false: the client's buffer is full (read again on its drain) or it is closed
  }

  /**
   * For a call handed to the kernel splice (splice-pump.ts): the octets read
   * so far, which the pump writes to the client first; no read comes here
   * after the caller stops the socket's reading.
   */
  takeEarly(): Buffer[] {
    const early = this.early ?? [];
    this.early = undefined;
    return early;
  }

  /** Starts carrying the endpoint's octets to the client. */
  attach(client: Socket, upstream: Socket): void {
    this.client = client;
    if (this.early) {
      for (const b of this.early) client.write(b);
      this.early = undefined;
      upstream.resume();
    }
  }
}

/** Carries the client's octets to the endpoint: 'data' chunks, paused while the endpoint's buffer is full. */
function carryFromClient(client: Socket, upstream: Socket): void {
  client.on('data', (chunk: Buffer) => {
    // false: the endpoint's buffer is full (wait for drain), or it is closed (nothing more goes anywhere)
    if (!upstream.write(chunk)) client.pause();
  });
  upstream.on('drain', () => client.resume());
  client.on('end', () => upstream.end());
}

export function splice(client: Socket, upstream: Socket, reads: EndpointReads, idleTimeoutMs: number): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let reason: SpliceResult['reason'] = 'closed';
    let open = 2;
    let linger: NodeJS.Timeout | undefined;
    const fail = (why: SpliceResult['reason']) => {
      if (reason === 'closed') reason = why;
      client.destroy();
      upstream.destroy();
    };
    const onError = () => fail('error');
    const closed = (other: Socket) => {
      if (--open > 0) {
        if (!other.destroyed) {
          other.end();
          linger = setTimeout(() => other.destroy(), LINGER_MS).unref();
        }
        return;
      }
      if (linger) clearTimeout(linger);
      resolve({ bytesFromClient: upstream.bytesWritten, bytesToClient: client.bytesWritten, reason });
    };
    client.setTimeout(idleTimeoutMs, () => fail('idleTimeout'));
    client.on('error', onError);
    upstream.on('error', onError);
    client.once('close', () => closed(upstream));
    upstream.once('close', () => closed(client));
    carryFromClient(client, upstream);
    // the endpoint's direction: reads go to the client in EndpointReads; FIN and drain here
    reads.attach(client, upstream);
    client.on('drain', () => upstream.resume());
    upstream.on('end', () => client.end());
    client.resume();
  });
}
