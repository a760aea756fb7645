// What the RADIUS API answers (docs/radius.md): an Access-Request's tunnel
// attributes after the node's whole call-request flow, and the reading of
// Accounting-Requests into session events. Every request ends in an answer
// FreeRADIUS's shipped policy acts on, and every refusal is counted by
// reason:
//
//   200  the tunnel attributes of the client's endpoint (rlm_rest: updated)
//   204  accept without tunnel attributes (bad input, radius.badRequest: accept),
//        or an accounting request taken
//   400  an accounting request that cannot be read
//   403  refused (bad input, radius.badRequest: reject): Access-Reject
//   503  no decision (not ready in answerTimeoutMs, no endpoint, closing):
//        FreeRADIUS applies its failure policy
//
// The HTTP edge is http-server.ts; the node behind is injected.
import { checkedClientKeyBytes, type ClientKey, formatClientKey } from '../codec/client-key';
import { ProtocolError } from '../codec/errors';
import type { Endpoint } from '../codec/endpoint';
import type { Route } from '../directory/router';
import { NoEndpointError } from '../directory/router';
import type { Logger } from '../util/logger';
import { accountingStatus, type RadiusAccounting } from './accounting';
import { clientKeyOf } from './radius-client-key';
import type { RadiusConfig } from './radius-config';
import { BadRadiusRequest, RequestAttributes } from './request-attributes';
import { replyJson, tunnelAttributes, type TunnelTable } from './tunnel-attributes';

export type ApiKind = 'access' | 'accounting';

export interface RadiusAnswer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  /** Close the connection after answering (the request was not read whole). */
  readonly close?: boolean;
}

export interface ApiPorts {
  /** The node's call-request flow (node.route). */
  route(key: ClientKey): Promise<Route>;
  tunnels(): TunnelTable;
  readonly accounting: RadiusAccounting;
  closing(): boolean;
}

/** Reasons a request is refused as bad input (counted; docs/radius.md lists them). */
export const BAD_REQUEST_REASONS = [
  'malformedHttp', 'slowRequest', 'oversized', 'unauthorized', 'notFound', 'badMethod', 'malformedJson',
  'noUserName', 'badUserName', 'noDiscriminator', 'badDiscriminator', 'noStatusType', 'noSessionId', 'badSessionId',
] as const;
export type BadRequestReason = (typeof BAD_REQUEST_REASONS)[number];

/** Why no decision was made (503). */
export const UNAVAILABLE_REASONS = ['timeout', 'noEndpoint', 'closing', 'error'] as const;
export type UnavailableReason = (typeof UNAVAILABLE_REASONS)[number];

export interface ApiCounters {
  requests: { access: number; accounting: number };
  /** Access-Requests by answer. */
  answers: { tunnel: number; noTunnel: number; refused: number; unavailable: number };
  badRequests: Record<BadRequestReason, number>;
  unavailable: Record<UnavailableReason, number>;
  /** Decisions whose endpoint this node has no tunnel attributes for (it is not in this node's endpoints). */
  unconfiguredEndpoint: number;
}

const zero = <K extends string>(keys: readonly K[]) => Object.fromEntries(keys.map((k) => [k, 0])) as Record<K, number>;
const MAX_SESSION_ID = 253;

export class RadiusApi {
  readonly counters: ApiCounters = {
    requests: { access: 0, accounting: 0 },
    answers: { tunnel: 0, noTunnel: 0, refused: 0, unavailable: 0 },
    badRequests: zero(BAD_REQUEST_REASONS),
    unavailable: zero(UNAVAILABLE_REASONS),
    unconfiguredEndpoint: 0,
  };
  /** Told of every decision's time (metrics). */
  observer?: (ms: number) => void;
  private readonly warnedEndpoints = new Set<string>();

  constructor(private readonly ports: ApiPorts, private o: RadiusConfig, private readonly log: Logger) {}

  reconfigure(o: RadiusConfig): void {
    this.o = o;
  }

  /**
   * Bad input, counted by reason. Access: 403 (reject) or 204 (accept
   * without tunnel attributes) as radius.badRequest says; accounting: 400.
   */
  refuse(kind: ApiKind, reason: BadRequestReason, message: string, close = false): RadiusAnswer {
    this.counters.badRequests[reason]++;
    this.log.debug({ api: kind, reason, message }, 'radius: bad request');
    if (kind === 'accounting') return { status: 400, body: { refused: reason, message }, close };
    if (this.o.badRequest === 'accept') {
      this.counters.answers.noTunnel++;
      return { status: 204, headers: { 'x-affinityd-refused': reason }, close };
    }
    this.counters.answers.refused++;
    return { status: 403, body: { refused: reason, message }, close };
  }

  private unavailable(reason: UnavailableReason, message: string): RadiusAnswer {
    this.counters.unavailable[reason]++;
    this.counters.answers.unavailable++;
    return { status: 503, body: { unavailable: reason, message } };
  }

  private static badKey(e: unknown): BadRadiusRequest | undefined {
    if (e instanceof BadRadiusRequest) return e;
    if (e instanceof ProtocolError) return new BadRadiusRequest(/^username/.test(e.code) ? 'badUserName' : 'badDiscriminator', e.message);
    return undefined;
  }

  /** An Access-Request FreeRADIUS has accepted: where does the user's session go? */
  async access(body: Buffer): Promise<RadiusAnswer> {
    this.counters.requests.access++;
    const t0 = performance.now();
    let key: ClientKey;
    let keyBytes: Buffer;
    try {
      key = clientKeyOf(RequestAttributes.parse(body), this.o);
      keyBytes = checkedClientKeyBytes(key);
    } catch (e) {
      const bad = RadiusApi.badKey(e);
      if (bad) return this.refuse('access', bad.reason as BadRequestReason, bad.message);
      throw e;
    }
    if (this.ports.closing()) return this.unavailable('closing', 'the node is shutting down');
    this.ports.accounting.noteAccess(keyBytes);
    let route: Route;
    let timer: NodeJS.Timeout | undefined;
    try {
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), this.o.answerTimeoutMs)));
      const r = await Promise.race([this.ports.route(key), late]);
      if (r === 'late') {
        // the decision goes on and is stored; FreeRADIUS must not wait for it
        return this.unavailable('timeout', `no decision within radius.answerTimeoutMs (${this.o.answerTimeoutMs} ms)`);
      }
      route = r;
    } catch (e) {
      if (e instanceof NoEndpointError) return this.unavailable('noEndpoint', e.message);
      const bad = RadiusApi.badKey(e);
      if (bad) return this.refuse('access', bad.reason as BadRequestReason, bad.message);
      this.log.warn({ client: formatClientKey(key), err: (e as Error).message }, 'radius: routing failed');
      return this.unavailable('error', 'the decision failed; see the node log');
    } finally {
      clearTimeout(timer);
    }
    const attrs = this.ports.tunnels().attributes(route.endpoint) ?? this.unconfigured(route.endpoint);
    this.counters.answers.tunnel++;
    this.observer?.(performance.now() - t0);
    return {
      status: 200,
      body: replyJson(attrs, this.o.tunnelTag),
      headers: { 'x-affinityd-endpoint': encodeURIComponent(route.endpoint.name), 'x-affinityd-source': route.source },
    };
  }

  /** The entry names an endpoint this node has no configuration for (the nodes' endpoint lists differ). */
  private unconfigured(e: Endpoint) {
    this.counters.unconfiguredEndpoint++;
    const id = `${e.name}=${e.address}:${e.port}`;
    if (!this.warnedEndpoints.has(id) && this.warnedEndpoints.size < 1000) {
      this.warnedEndpoints.add(id);
      this.log.warn({ endpoint: id }, 'radius: a client\'s entry names an endpoint this node does not have: answering default tunnel attributes without a password (configure the same endpoints on every node)');
    }
    return tunnelAttributes(e);
  }

  /** An Accounting-Request: Start, Stop, Interim-Update, Accounting-On/-Off. */
  accountingRequest(body: Buffer): RadiusAnswer {
    this.counters.requests.accounting++;
    try {
      const req = RequestAttributes.parse(body);
      const statusText = req.single('Acct-Status-Type', 'noStatusType');
      if (statusText === undefined) throw new BadRadiusRequest('noStatusType', 'the request has no Acct-Status-Type');
      const status = accountingStatus(statusText);
      const nas = req.single('NAS-Identifier', 'malformedJson') ?? req.single('NAS-IP-Address', 'malformedJson') ?? req.single('NAS-IPv6-Address', 'malformedJson') ?? '';
      if (status === 'accounting-on' || status === 'accounting-off' || status === 'other') {
        this.ports.accounting.handle({ status, nas });
        return { status: 204 };
      }
      const sessionId = req.single('Acct-Session-Id', 'badSessionId');
      if (sessionId === undefined || sessionId === '') throw new BadRadiusRequest('noSessionId', 'the request has no Acct-Session-Id');
      if (sessionId.length > MAX_SESSION_ID) throw new BadRadiusRequest('badSessionId', `Acct-Session-Id is longer than ${MAX_SESSION_ID} characters`);
      if (status === 'stop') {
        // a Stop ends its session whatever else is wrong with it
        this.ports.accounting.handle({ status, nas, sessionId });
        return { status: 204 };
      }
      const key = clientKeyOf(req, this.o);
      const keyBytes = checkedClientKeyBytes(key);
      const serverEndpoint = req.text('Tunnel-Server-Endpoint', 'malformedJson')?.[0];
      this.ports.accounting.handle({ status, nas, sessionId, key, keyBytes, serverEndpoint });
      return { status: 204 };
    } catch (e) {
      const bad = RadiusApi.badKey(e);
      if (bad) return this.refuse('accounting', bad.reason as BadRequestReason, bad.message);
      throw e;
    }
  }
}
