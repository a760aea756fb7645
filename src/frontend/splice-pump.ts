// The kernel splice (a front end's `splice: kernel`, the default): a
// connected call is handed to the native splice pump (native/splice_pump.h),
// which moves its octets with splice(2) through a pipe per direction on a
// thread of its own, without copies through user space or JS (docs/design.md,
// "Front ends"). Same contract as splice.ts: the call's SpliceResult when it
// ends, and a close for live-split repair.
//
// The hand-over, in one JS turn (libuv reads only in the event loop, which
// does not run in between, so no octet can be read by Node after it):
// 1. Node's reading of both sockets is stopped; what Node read and did not
//    deliver is taken: the client's octets waiting in its readable buffer
//    (after the identity) and the endpoint's early octets (EndpointReads).
// 2. The pump dup()s both fds and is given those octets, with the preamble's
//    ACCEPTED answer and the client's octets after its identity, to write
//    before anything it splices.
// 3. Node's sockets are destroyed: that closes Node's fds only (no FIN, no
//    RST: the connection's file description lives on in the pump's dup), and
//    libuv takes them out of its epoll set as it closes them. Nothing was
//    written through Node, so no write of Node's is lost with them.
import type { Socket } from 'node:net';

import { native, type NativeSplicePump } from '../native';
import { type EndpointReads, LINGER_MS, type SpliceResult } from './splice';

/** A call being spliced, by either splice. */
export interface SplicedCall {
  readonly done: Promise<SpliceResult>;
  /** Ends the call now (live-split repair); `done` resolves with reason closed. */
  close(): void;
}

const REASONS: readonly SpliceResult['reason'][] = ['closed', 'idleTimeout', 'error'];
/** Ended calls per report from the pump's thread: bounds one turn of the event loop. */
const MAX_BATCH = 256;
/** How long a close waits for the reports of the calls it closes (a bound against a hang, not a delay; the Node splice's calls too, frontend.ts). */
export const CLOSE_WAIT_MS = 5000;

interface Handle {
  fd?: number;
  readStop?: () => number;
}

/** A connected TCP socket's fd, if Node has one for it (undefined: destroyed, or not a plain fd). */
export function socketFd(s: Socket): number | undefined {
  const fd = (s as unknown as { _handle?: Handle | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

function stopReading(s: Socket): void {
  (s as unknown as { _handle: Handle })._handle.readStop?.();
}

export class SplicePump {
  private pump?: NativeSplicePump;
  private readonly calls = new Map<number, (r: SpliceResult) => void>();
  private closed = false;
  private allDone?: () => void;

  /** Calls being spliced now. */
  get size(): number {
    return this.calls.size;
  }

  stats(): ReturnType<NativeSplicePump['stats']> | undefined {
    return this.pump?.stats();
  }

  /**
   * Takes over a connected call (see the file's comment); `toClient` and
   * `toEndpoint` are written first. Undefined when either socket has no fd:
   * the caller splices it in Node then, nothing having changed.
   */
  take(client: Socket, upstream: Socket, reads: EndpointReads, toClient: Buffer | undefined, toEndpoint: Buffer, idleTimeoutMs: number): SplicedCall | undefined {
    const clientFd = socketFd(client);
    const endpointFd = socketFd(upstream);
    if (clientFd === undefined || endpointFd === undefined) return undefined;
    if (this.closed) {
      client.destroy();
      upstream.destroy();
      return { done: Promise.resolve({ bytesFromClient: 0, bytesToClient: 0, reason: 'closed' }), close: () => undefined };
    }
    let pump: NativeSplicePump;
    try {
      pump = this.pump ??= this.open();
    } catch {
      // no thread or fd for the pump (the host is out of them): this call
      // is spliced in Node, nothing having changed; the next one tries again
      return undefined;
    }
    // 1. what Node read and did not deliver. read() may ask libuv to read
    // again; the readStop after it takes that back before the loop runs.
    const up: Buffer[] = toEndpoint.length ? [toEndpoint] : [];
    for (let b: Buffer | null; (b = client.read() as Buffer | null) !== null; ) up.push(b);
    stopReading(client);
    stopReading(upstream);
    const early = reads.takeEarly();
    const down = toClient ? [toClient, ...early] : early;
    let id: number;
    try {
      // 2.
      id = pump.add(clientFd, endpointFd, join(up), join(down), idleTimeoutMs);
    } catch {
      // out of fds: the node cannot carry this call
      client.destroy();
      upstream.destroy();
      return { done: Promise.resolve({ bytesFromClient: 0, bytesToClient: 0, reason: 'error' }), close: () => undefined };
    }
    // 3.
    client.destroy();
    upstream.destroy();
    if (this.calls.size === 0) pump.ref();
    const done = new Promise<SpliceResult>((resolve) => this.calls.set(id, resolve));
    return { done, close: () => pump.closeCall(id) };
  }

  /** Closes every call (each reported as closed), then the pump's thread. */
  async close(): Promise<void> {
    this.closed = true;
    const pump = this.pump;
    if (!pump) return;
    if (this.calls.size > 0) {
      const reported = new Promise<void>((r) => (this.allDone = r));
      pump.closeAll();
      await Promise.race([reported, new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    }
    pump.close();
    // left unreported only if the wait above ran out: closed with the pump
    for (const resolve of this.calls.values()) resolve({ bytesFromClient: 0, bytesToClient: 0, reason: 'closed' });
    this.calls.clear();
  }

  private open(): NativeSplicePump {
    const pump = new (native().SplicePump)({ lingerMs: LINGER_MS, pipeSize: 0, maxBatch: MAX_BATCH }, (done) => this.report(done));
    pump.unref(); // until a call is open
    return pump;
  }

  private report(done: Float64Array): void {
    for (let i = 0; i + 4 < done.length; i += 5) {
      const resolve = this.calls.get(done[i]);
      if (!resolve) continue;
      this.calls.delete(done[i]);
      resolve({ bytesFromClient: done[i + 1], bytesToClient: done[i + 2], reason: REASONS[done[i + 3]] ?? 'error' });
    }
    if (this.calls.size === 0) {
      this.pump?.unref();
      this.allDone?.();
    }
  }
}

function join(bufs: Buffer[]): Buffer | null {
  if (bufs.length === 0) return null;
  return bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
}
