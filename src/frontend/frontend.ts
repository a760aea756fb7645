// A front-end TCP listener: accepts call requests, learns who is calling
// (identity.ts), asks the router where the client goes, connects it there
// and splices both directions; or, in redirect mode, answers with the
// endpoint and closes. Every connection ends in a counted outcome.
import { connect, createServer, type NetConnectOpts, type Server, type Socket } from 'node:net';

import { type Endpoint, formatEndpoint } from '../codec/endpoint';
import { type ClientKey, clientKeyBytes, formatClientKey } from '../codec/client-key';
import { ProtocolError } from '../codec/errors';
import type { FrontendConfig } from './frontend-config';
import { NoEndpointError, type Route, type Router } from '../directory/router';
import type { EndpointSet } from '../selection/endpoint-set';
import { CallRecord, ms } from './call-record';
import { NoCallError, readIdentity } from './identity';
import { CallStatus, encodeCallResponse } from './preamble';
import { EndpointReads, splice } from './splice';
import { CLOSE_WAIT_MS, type SplicedCall, SplicePump } from './splice-pump';
import type { LiveLinks } from '../links/live-links';
import type { Logger } from '../util/logger';

export interface FrontendCounters {
  accepted: number;
  active: number;
  identified: number;
  /** Closed before routing, by reason: malformedPreamble, oversizePreamble, badProxyHeader, badIdentity, identityTimeout, ... */
  refused: Record<string, number>;
  proxyHealthChecks: number;
  clientClosedEarly: number;
  redirected: number;
  rejectedNoEndpoint: number;
  endpointConnectFailures: number;
  spliced: number;
  idleTimeouts: number;
  bytesFromClients: number;
  bytesToClients: number;
  /** Calls closed because they were stray links of a split bundle (links.splitRepair close). */
  splitClosed: number;
}


/** Connects to an endpoint, its reads going to `reads`; rejects on refusal, error or time-out. */
function connectTo(e: Endpoint, timeoutMs: number, reads: EndpointReads): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // no Nagle toward the endpoint either: a call carries small frames both
    // ways. emitClose, autoDestroy and decodeStrings are the values net.Socket
    // sets on its copy of these options anyway; given here, its copy has them
    // already and V8 need not build new hidden classes for it on every call.
    const s = connect({
      host: e.address, port: e.port, allowHalfOpen: true, noDelay: true, onread: reads.onread,
      emitClose: false, autoDestroy: true, decodeStrings: false,
    } as NetConnectOpts);
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      s.destroy();
      reject(Object.assign(new Error(`connect to ${formatEndpoint(e)} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    // 'on' and left in place, not 'once' or removed: taking a listener off
    // turns the socket's listener table into a slow dictionary (a V8
    // 'delete'), for every call; the error listener is inert once connected
    // (the splice adds its own)
    s.on('connect', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(s);
    });
    s.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      reject(err);
    });
  });
}


export class Frontend {
  readonly counters: FrontendCounters = {
    accepted: 0, active: 0, identified: 0, refused: {}, proxyHealthChecks: 0, clientClosedEarly: 0, redirected: 0,
    rejectedNoEndpoint: 0, endpointConnectFailures: 0, spliced: 0, idleTimeouts: 0, bytesFromClients: 0, bytesToClients: 0, splitClosed: 0,
  };
  private nextCall = 1;
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  /** The kernel splice (`splice: kernel`); its thread starts with the first call. */
  private readonly pump?: SplicePump;
  /** Accepted sockets whose call went to the pump: their close does not end the call. */
  private readonly handedOver = new WeakSet<Socket>();
  /** Calls Node splices (`splice: node`), until their outcome is recorded: close() ends and awaits them. */
  private readonly nodeCalls = new Set<{ close(): void; recorded: Promise<void> }>();

  constructor(
    readonly config: FrontendConfig,
    private readonly router: Router,
    private readonly endpoints: EndpointSet,
    private readonly log: Logger,
    /** Where the calls this front end splices are registered while they are up (live-split detection). */
    private readonly links?: LiveLinks,
  ) {
    if (config.splice === 'kernel') this.pump = new SplicePump();
  }

  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      // noDelay: set on each accepted socket as it is accepted, without a call per connection from here
      const server = createServer({ allowHalfOpen: true, noDelay: true }, (s) =>
        this.handle(s).catch((e) => {
          // A bug, not a bad client: log it, count it, and keep serving everyone else.
          this.counters.refused.internalError = (this.counters.refused.internalError ?? 0) + 1;
          this.log.warn({ err: e, frontend: this.config.name }, 'call failed');
          s.destroy();
        }),
      );
      server.once('error', reject);
      server.listen(this.config.listen.port, this.config.listen.address, () => {
        server.off('error', reject);
        server.on('error', (e) => this.log.warn({ err: e, frontend: this.config.name }, 'front-end listener error'));
        this.server = server;
        resolve(this.address()!);
      });
    });
  }

  address(): { address: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  /** Stops accepting; with drain, waits for open connections, else closes them. */
  async close(drainMs = 0): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((r) => server.close(() => r()));
    if (drainMs > 0) {
      const end = Date.now() + drainMs;
      while (this.sockets.size + (this.pump?.size ?? 0) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    }
    // calls Node splices: both sides closed at once, and awaited until their
    // outcome is recorded (access-log line, counters), as the pump does below
    const recorded = [...this.nodeCalls].map((c) => (c.close(), c.recorded));
    for (const s of this.sockets) s.destroy();
    await Promise.race([Promise.all(recorded), new Promise((r) => setTimeout(r, CLOSE_WAIT_MS).unref())]);
    // its calls closed and reported (their access-log lines written), its thread joined
    await this.pump?.close();
    await closed;
  }

  private refuse(s: Socket, reason: string, detail: string, call?: CallRecord): void {
    this.counters.refused[reason] = (this.counters.refused[reason] ?? 0) + 1;
    // one line per refused call, at warn (docs/operations.md, "Logs")
    const c = call ?? new CallRecord(this.config.name, s, performance.now());
    this.log.warn(c.refused(reason, detail), 'call refused');
    if (this.config.identity === 'preamble' && reason !== 'malformedPreamble' && reason !== 'oversizePreamble') {
      s.end(encodeCallResponse({ status: CallStatus.Rejected, reason: detail }));
    } else {
      s.end();
    }
    setTimeout(() => s.destroy(), 1000).unref();
  }

  /** Told how long each call took from accept to connected at its endpoint (metrics). */
  onCallSetup?: (ms: number) => void;

  private async handle(s: Socket): Promise<void> {
    const t0 = performance.now();
    const call = new CallRecord(this.config.name, s, t0);
    this.counters.accepted++;
    this.counters.active++;
    this.sockets.add(s);
    s.once('close', () => {
      if (!this.handedOver.has(s)) this.counters.active--;
      this.sockets.delete(s);
    });
    s.on('error', () => s.destroy()); // a reset client: nothing else to do
    let key: ClientKey;
    let rest: Buffer;
    try {
      ({ key, rest } = await readIdentity(s, this.config));
    } catch (e) {
      if (e instanceof NoCallError) {
        if (e.reason === 'proxyLocal') this.counters.proxyHealthChecks++;
        else this.counters.clientClosedEarly++;
        // not a call (a proxy's health check, a client that left): debug only
        this.log.debug({ frontend: call.frontend, peer: call.peer(), reason: e.reason }, 'no call');
        s.end();
        return;
      }
      this.refuse(s, e instanceof ProtocolError ? e.code : 'badIdentity', (e as Error).message, call);
      return;
    }
    this.counters.identified++;
    // the canonical key octets, made once for the route decision and the live link
    const keyBytes = clientKeyBytes(key);
    call.client = key;
    call.identifyMs = call.sinceAccept();
    let route: Route;
    try {
      route = await this.router.route(key, keyBytes);
    } catch (e) {
      if (e instanceof NoEndpointError) {
        this.counters.rejectedNoEndpoint++;
        this.refuse(s, 'noEndpoint', e.message, call);
        return;
      }
      throw e;
    }
    call.routeMs = ms(performance.now() - t0 - call.identifyMs);
    if (this.config.redirect) {
      this.counters.redirected++;
      s.end(encodeCallResponse({ status: CallStatus.Redirect, endpoint: route.endpoint }));
      if (this.config.accessLog) this.log.info(call.redirected(formatEndpoint(route.endpoint), route.source), 'call');
      return;
    }
    await this.connectAndSplice(s, key, keyBytes, route, rest, call);
  }

  private async connectAndSplice(s: Socket, key: ClientKey, keyBytes: Buffer, route: Route, rest: Buffer, call: CallRecord): Promise<void> {
    const t0 = call.t0;
    let upstream: Socket | undefined;
    let reads: EndpointReads;
    let attempt = 1;
    const tc = performance.now();
    const left = () => {
      // the client went away while its endpoint was being connected: still one line for the call
      if (!this.config.accessLog) return;
      this.log.info(call.clientLeft(formatEndpoint(route.endpoint), route.source, attempt), 'call');
    };
    for (; ; attempt++) {
      if (s.destroyed) return left();
      try {
        reads = new EndpointReads();
        upstream = await connectTo(route.endpoint, this.config.connectTimeoutMs, reads);
        break;
      } catch (e) {
        this.counters.endpointConnectFailures++;
        this.log.warn(
          { frontend: call.frontend, client: formatClientKey(key), endpoint: formatEndpoint(route.endpoint), err: (e as Error).message, attempt },
          attempt >= this.config.connectAttempts ? 'endpoint refused the call' : 'endpoint refused the call; rerouting',
        );
        if (attempt >= this.config.connectAttempts) {
          // out for the hold-down like an endpoint a reroute left, so /readyz and selection see it
          this.router.endpointFailed(route.endpoint);
          this.refuse(s, 'endpointUnavailable', `endpoint ${formatEndpoint(route.endpoint)} unavailable: ${(e as Error).message}`, call);
          return;
        }
        try {
          route = await this.router.reroute(key, route.endpoint);
        } catch (err) {
          this.counters.rejectedNoEndpoint++;
          this.refuse(s, 'noEndpoint', (err as Error).message, call);
          return;
        }
      }
    }
    const connectMs = ms(performance.now() - tc);
    if (s.destroyed) {
      upstream.destroy();
      return left();
    }
    const state = this.endpoints.find(route.endpoint);
    if (state) state.connections++;
    const accepted = this.config.identity === 'preamble' ? encodeCallResponse({ status: CallStatus.Accepted, endpoint: route.endpoint }) : undefined;
    const spliced = this.startSplice(s, upstream, reads, accepted, rest);
    this.counters.spliced++;
    this.onCallSetup?.(performance.now() - t0);
    const setupMs = ms(performance.now() - t0);
    const linkId = `frontend:${this.config.name}:${this.nextCall++}`;
    this.links?.add({
      id: linkId, client: key, keyBytes, endpoint: route.endpoint, via: 'frontend',
      close: (why) => {
        this.counters.splitClosed++;
        this.log.warn({ frontend: this.config.name, client: formatClientKey(key), endpoint: formatEndpoint(route.endpoint), why }, 'call closed: a stray link of a split bundle');
        spliced.close();
      },
    });
    let recordedNow: (() => void) | undefined;
    const nodeCall = this.handedOver.has(s) ? undefined : { close: spliced.close, recorded: new Promise<void>((r) => (recordedNow = r)) };
    if (nodeCall) this.nodeCalls.add(nodeCall);
    const r = await spliced.done;
    if (this.handedOver.has(s)) this.counters.active--;
    this.links?.remove(linkId);
    if (this.config.accessLog) {
      // one line per call when it ends, as HAProxy's tcplog: who, where, how long, how much, how it ended
      this.log.info(call.connected(formatEndpoint(route.endpoint), route.source, attempt, connectMs, setupMs, r.bytesFromClient, r.bytesToClient, r.reason), 'call');
    }
    // looked up again: a configuration reload may have replaced the state object
    const after = this.endpoints.find(route.endpoint);
    if (after && after.connections > 0) after.connections--;
    if (r.reason === 'idleTimeout') this.counters.idleTimeouts++;
    this.counters.bytesFromClients += r.bytesFromClient;
    this.counters.bytesToClients += r.bytesToClient;
    if (nodeCall) {
      this.nodeCalls.delete(nodeCall);
      recordedNow?.();
    }
  }

  /**
   * Starts carrying the call both ways: `accepted` (the preamble's answer)
   * reaches the client and `rest` (its octets after the identity) the
   * endpoint before anything else. In the kernel when the front end splices
   * there (and both sockets have an fd), else in Node.
   */
  private startSplice(s: Socket, upstream: Socket, reads: EndpointReads, accepted: Buffer | undefined, rest: Buffer): SplicedCall {
    const kernel = this.pump?.take(s, upstream, reads, accepted, rest, this.config.idleTimeoutMs);
    if (kernel) {
      this.handedOver.add(s);
      return kernel;
    }
    if (accepted) s.write(accepted);
    if (rest.length) upstream.write(rest);
    return {
      done: splice(s, upstream, reads, this.config.idleTimeoutMs),
      close: () => {
        s.destroy();
        upstream.destroy();
      },
    };
  }
}
