// What the access log says about one call (docs/operations.md, "Logs"):
// built up as the call goes, turned into a log line only when one is
// written. The peer's address is read once at accept (the kernel forgets it
// when the socket closes); the client key and the addresses are formatted
// into strings only for a line, not for every call.
import type { Socket } from 'node:net';

import { type ClientKey, formatClientKey } from '../codec/client-key';

/** Milliseconds to 0.001 for the logs. */
export const ms = (x: number): number => Math.round(x * 1000) / 1000;

export class CallRecord {
  /** The client, once its identity was read. */
  client?: ClientKey;
  /** Accept to identity read, and identity to route decision (ms). */
  identifyMs?: number;
  routeMs?: number;
  private readonly address: string | undefined;
  private readonly port: number | undefined;
  private readonly v6: boolean;

  constructor(
    readonly frontend: string,
    s: Socket,
    /** performance.now() at accept. */
    readonly t0: number,
  ) {
    this.address = s.remoteAddress;
    this.port = s.remotePort;
    this.v6 = this.address !== undefined && s.remoteFamily === 'IPv6';
  }

  /** The client's address:port as the kernel reports it ([v6]:port). */
  peer(): string | undefined {
    if (this.address === undefined) return undefined;
    return this.v6 ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  /** Milliseconds since accept, to 0.001. */
  sinceAccept(now = performance.now()): number {
    return ms(now - this.t0);
  }

  // Each line is one object literal: an object spread with fields added
  // after it (`{ ...fields, outcome }`) makes V8 build new hidden classes
  // for every call, which costs more than the rest of the line.

  /** A call refused (at warn, msg `call refused`). */
  refused(reason: string, detail: string): object {
    return {
      frontend: this.frontend, peer: this.peer(), client: this.clientText(), identifyMs: this.identifyMs, routeMs: this.routeMs,
      outcome: 'refused', reason, detail, totalMs: this.sinceAccept(),
    };
  }

  /** A call answered with a redirect (msg `call`). */
  redirected(endpoint: string, source: string): object {
    return {
      frontend: this.frontend, peer: this.peer(), client: this.clientText(), identifyMs: this.identifyMs, routeMs: this.routeMs,
      endpoint, source, outcome: 'redirected', totalMs: this.sinceAccept(),
    };
  }

  /** A call whose client left while its endpoint was being connected (msg `call`). */
  clientLeft(endpoint: string, source: string, attempts: number): object {
    return {
      frontend: this.frontend, peer: this.peer(), client: this.clientText(), identifyMs: this.identifyMs, routeMs: this.routeMs,
      endpoint, source, outcome: 'clientLeft', attempts, totalMs: this.sinceAccept(),
    };
  }

  /** A call that was connected to its endpoint, when it ends (msg `call`). */
  connected(endpoint: string, source: string, attempts: number, connectMs: number, setupMs: number, bytesFromClient: number, bytesToClient: number, end: string): object {
    return {
      frontend: this.frontend, peer: this.peer(), client: this.clientText(), identifyMs: this.identifyMs, routeMs: this.routeMs,
      endpoint, source, outcome: 'connected', attempts, connectMs, setupMs, totalMs: this.sinceAccept(), bytesFromClient, bytesToClient, end,
    };
  }

  private clientText(): string | undefined {
    return this.client && formatClientKey(this.client);
  }
}
