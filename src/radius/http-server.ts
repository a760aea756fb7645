// The HTTP edge of the RADIUS API: POST /radius/v1/access and
// /radius/v1/accounting (docs/radius.md). It checks what HTTP can check (the
// bearer token, the path, the method, the body's size, a whole request within
// the time allowed) and hands the body to RadiusApi. Malformed HTTP, an
// oversized body and a wrong token each get an answer and a count, never a
// crash. Plain node:http: two routes need no framework, and rlm_rest keeps
// its connections open (HTTP/1.1 keep-alive), so a request costs no TCP setup.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

import type { Logger } from '../util/logger';
import type { ApiKind, RadiusAnswer, RadiusApi } from './radius-api';

export const ACCESS_PATH = '/radius/v1/access';
export const ACCOUNTING_PATH = '/radius/v1/accounting';

export interface HttpServerOptions {
  maxRequestOctets: number;
  /** Required as `Authorization: Bearer TOKEN` when set. */
  token?: string;
  /** A whole request (headers and body) must arrive within this. */
  requestTimeoutMs?: number;
}

export class RadiusHttpServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  readonly counters = { connections: 0, internalErrors: 0 };

  constructor(private readonly api: RadiusApi, private readonly o: HttpServerOptions, private readonly log: Logger) {
    this.server = createServer(
      {
        // a request's headers and body must come quickly: FreeRADIUS sends them at once
        headersTimeout: o.requestTimeoutMs ?? 10_000,
        requestTimeout: o.requestTimeoutMs ?? 10_000,
        // how often the two time-outs above are checked (Node's default is 30 s)
        connectionsCheckingInterval: Math.min(1000, Math.ceil((o.requestTimeoutMs ?? 10_000) / 2)),
        maxHeaderSize: 16 * 1024,
        // rlm_rest closes idle connections after 60 s (pool idle_timeout): be later
        keepAliveTimeout: 75_000,
      },
      (req, res) => this.request(req, res),
    );
    this.server.on('connection', (s: Socket) => {
      this.counters.connections++;
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      // timeouts and resets of idle keep-alive connections are not bad requests
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return void socket.destroy();
      const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const reason = timeout ? 'slowRequest' : err.code === 'HPE_HEADER_OVERFLOW' ? 'oversized' : 'malformedHttp';
      this.api.counters.badRequests[reason]++;
      if (socket.writable) socket.end(`HTTP/1.1 ${timeout ? '408 Request Timeout' : '400 Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      socket.destroySoon();
    });
  }

  private request(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const kind: ApiKind | undefined = path === ACCESS_PATH ? 'access' : path === ACCOUNTING_PATH ? 'accounting' : undefined;
    if (!kind) {
      this.api.counters.badRequests.notFound++;
      return this.send(res, { status: 404, body: { error: `not found: POST ${ACCESS_PATH} or ${ACCOUNTING_PATH}` } }, req);
    }
    if (req.method !== 'POST') {
      this.api.counters.badRequests.badMethod++;
      return this.send(res, { status: 405, headers: { allow: 'POST' }, body: { error: 'POST only' } }, req);
    }
    if (this.o.token !== undefined && !this.authorized(req.headers.authorization)) {
      this.api.counters.badRequests.unauthorized++;
      return this.send(res, { status: 401, headers: { 'www-authenticate': 'Bearer' }, body: { error: 'a bearer token is required (radius.tokenFile)' } }, req);
    }
    const max = this.o.maxRequestOctets;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) return this.send(res, this.api.refuse(kind, 'oversized', `the body is ${declared} octets; at most ${max} (radius.maxRequestOctets)`, true), req);
    const chunks: Buffer[] = [];
    let n = 0;
    let over = false;
    req.on('data', (d: Buffer) => {
      if (over) return;
      n += d.length;
      if (n > max) {
        over = true;
        chunks.length = 0;
        this.send(res, this.api.refuse(kind, 'oversized', `the body is over ${max} octets (radius.maxRequestOctets)`, true), req);
        return;
      }
      chunks.push(d);
    });
    req.on('end', () => {
      if (over) return;
      const body = Buffer.concat(chunks, n);
      if (kind === 'accounting') return this.send(res, this.guard(() => this.api.accountingRequest(body)), req);
      this.api.access(body).then(
        (a) => this.send(res, a, req),
        (e: Error) => this.send(res, this.internal(e), req),
      );
    });
    req.on('error', () => {});
  }

  private guard(f: () => RadiusAnswer): RadiusAnswer {
    try {
      return f();
    } catch (e) {
      return this.internal(e as Error);
    }
  }

  /** A bug, not bad input: 500 (FreeRADIUS applies its failure policy), logged. */
  private internal(e: Error): RadiusAnswer {
    this.counters.internalErrors++;
    this.log.warn({ err: e.message, stack: e.stack }, 'radius: internal error answering a request');
    return { status: 500, body: { error: 'internal error; see the node log' } };
  }

  private authorized(header: string | undefined): boolean {
    const want = Buffer.from(`Bearer ${this.o.token}`);
    const got = Buffer.from(header ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  private send(res: ServerResponse, a: RadiusAnswer, req: IncomingMessage): void {
    if (res.headersSent || res.destroyed) return;
    const body = a.body === undefined ? undefined : JSON.stringify(a.body);
    const headers: Record<string, string | number> = { ...a.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    if (a.close) {
      headers.connection = 'close';
      // the rest of an oversized body is read and dropped until the response is out
      req.resume();
    }
    res.writeHead(a.status, headers).end(body);
  }

  listen(port: number, address: string): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        const a = this.server.address() as { address: string; port: number };
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  address(): { address: string; port: number } | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}
