// The RADIUS API of a node, wired: the HTTP listener, the decision over the
// node's call-request flow (node.route), accounting over the node's live
// links, releases through node.withdraw, and the tunnel attributes of its
// endpoints. The node's operator side opens and closes it with its other
// listeners; docs/radius.md is its contract.
import type { Histogram } from 'prom-client';

import type { ClientKey } from '../codec/client-key';
import type { Endpoint } from '../codec/endpoint';
import type { Entry } from '../codec/messages';
import type { Config } from '../daemon/config';
import type { NativeDirectory } from '../directory/native-directory';
import type { Route } from '../directory/router';
import type { LiveLinks } from '../links/live-links';
import type { Logger } from '../util/logger';
import { RadiusAccounting } from './accounting';
import { RadiusHttpServer } from './http-server';
import { RadiusApi } from './radius-api';
import { MAX_TOKEN_OCTETS, MIN_TOKEN_OCTETS, readSecretFile } from './secret-file';
import { TunnelTable } from './tunnel-attributes';

export type RadiusStats = ReturnType<RadiusService['stats']>;

/** What the RADIUS API uses of its node (src/daemon/node.ts provides it). */
export interface RadiusHost {
  readonly config: Config;
  readonly links: LiveLinks;
  readonly directory: Pick<NativeDirectory, 'lookup' | 'peek' | 'apply' | 'onWithdrawn'>;
  readonly link: { update(entries: readonly (Entry & { readonly keyBytes: Buffer })[]): void };
  readonly metrics: { readonly radiusDecision: Histogram };
  readonly isClosing: boolean;
  /** The whole call-request flow. */
  route(key: ClientKey): Promise<Route>;
  /** Deletes the client's entry on every node. */
  withdraw(key: ClientKey): boolean;
}

export class RadiusService {
  readonly api: RadiusApi;
  readonly accounting: RadiusAccounting;
  readonly http: RadiusHttpServer;

  private constructor(private readonly node: RadiusHost, private tunnels: TunnelTable, token: string | undefined, log: Logger) {
    const c = node.config;
    this.accounting = new RadiusAccounting(
      {
        links: node.links,
        held: (keyBytes) => node.directory.lookup(keyBytes)?.endpoint,
        withdraw: (key) => void node.withdraw(key),
        reassert: (key, keyBytes, endpoint) => this.reassert(key, keyBytes, endpoint),
        endpointFor: (se) => this.tunnels.endpointFor(se),
      },
      RadiusService.accountingOptions(c),
      log,
    );
    node.directory.onWithdrawn = (keyBytes) => this.accounting.withdrawn(keyBytes);
    this.api = new RadiusApi(
      { route: (key) => node.route(key), tunnels: () => this.tunnels, accounting: this.accounting, closing: () => node.isClosing },
      c.radius,
      log,
    );
    this.api.observer = (ms) => node.metrics.radiusDecision.observe(ms / 1000);
    this.http = new RadiusHttpServer(this.api, { maxRequestOctets: c.radius.maxRequestOctets, token }, log);
  }

  private static accountingOptions(c: Config) {
    // a NAS that never sends Stop must not exhaust memory: room for four sessions per table entry
    return { releaseGraceSeconds: c.radius.accounting.releaseGraceSeconds, maxSessions: 4 * c.directory.capacity };
  }

  /** Reads the token and password files, listens. Throws (SecretFileError, EADDRINUSE...) without listening. */
  static async start(node: RadiusHost, log: Logger): Promise<RadiusService> {
    const r = node.config.radius;
    const token = r.tokenFile ? readSecretFile(r.tokenFile, 'token', MIN_TOKEN_OCTETS, MAX_TOKEN_OCTETS) : undefined;
    const s = new RadiusService(node, new TunnelTable(node.config.endpoints), token, log);
    const a = await s.http.listen(r.listen.port, r.listen.address);
    log.info({ ...a, token: token !== undefined, tunnels: s.tunnels.describe() }, 'radius API listening');
    return s;
  }

  /**
   * A configuration reload: the endpoints' tunnel attributes and password
   * files are read now (throwing if one is bad, changing nothing); the
   * returned function puts them in effect and says so. The rest of `radius`
   * needs a restart.
   */
  prepare(next: Config): () => string {
    const tunnels = new TunnelTable(next.endpoints);
    return () => {
      this.tunnels = tunnels;
      return 'endpoint tunnel attributes and password files (radius)';
    };
  }

  /** Stores the endpoint of a client's live sessions above whatever this node holds, and announces it. */
  private reassert(key: ClientKey, keyBytes: Buffer, endpoint: Endpoint): void {
    const c = this.node.config;
    const nodeId = c.node.id;
    const version = (this.node.directory.peek(keyBytes)?.version ?? 0) + 1;
    const ttlSeconds = c.directory.entryTtlSeconds;
    const r = this.node.directory.apply(keyBytes, { endpoint, version, originNode: nodeId, ttlSeconds });
    if (r === 'full' || r === 'ignored') return;
    const entry = { clientKey: key, keyBytes, endpoint, version, originNode: nodeId, ttlSeconds };
    this.node.link.update([entry]);
    // repeated as the router repeats its UPDATEs, unless the entry moved on meanwhile
    for (let i = 1; i < c.query.updateRepeats; i++) {
      setTimeout(() => {
        const now = this.node.directory.lookup(keyBytes);
        if (now?.version === version && now.originNode === nodeId) this.node.link.update([entry]);
      }, i * c.query.intervalMs).unref();
    }
  }

  stats() {
    return {
      listening: this.http.address(),
      ...this.api.counters,
      http: { ...this.http.counters },
      accounting: { ...this.accounting.counters, liveSessions: this.accounting.liveSessions, pendingReleases: this.accounting.pendingReleases },
    };
  }

  async close(): Promise<void> {
    this.accounting.close();
    await this.http.close();
  }
}
