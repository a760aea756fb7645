// The call-request path (claims 1-8, 10-17, 19 of docs/claims.md): where does this client go?
//
//   1. the local table (claim 2);
//   2. on a miss, a QUERY multicast to the cluster, sent `count` times
//      `intervalMs` apart, then `timeoutMs` of waiting after the last (claims
//      3, 4, 12, 13); a REPLY names the endpoint (claims 1, 10, 16, 17);
//   3. the table again: an UPDATE from a node that decided meanwhile counts;
//   4. optionally a QUERY sent directly to each known peer (claim 19);
//   5. otherwise select an endpoint locally, store the entry and multicast an
//      UPDATE (claims 1, 5, 11, 14).
// Concurrent call requests for one client share one resolution. I/O is
// injected (LocalDirectory, ClusterLink), so this runs on the native addon or
// on the in-memory double alike.
import { type ClientKey, clientKeyBytes, sameClientKey } from '../codec/client-key';
import { type Endpoint, sameEndpoint } from '../codec/endpoint';
import type { Entry, Reply } from '../codec/messages';
import type { EndpointSet } from '../selection/endpoint-set';
import type { SelectionPolicy } from '../selection/policy';
import type { ClusterLink, Peer } from '../transport/cluster-link';
import type { LocalDirectory, StoredEntry } from './local-directory';

export type RouteSource =
  /** the local table had the entry */
  | 'local'
  /** a directory answered the multicast QUERY (or its UPDATE arrived while we waited) */
  | 'remote'
  /** a peer answered a direct (unicast) QUERY */
  | 'direct'
  /** nobody knew the client: this node selected the endpoint and announced it */
  | 'selected'
  /** the client's endpoint failed: this node selected another and announced it */
  | 'rerouted';

export interface Route {
  readonly endpoint: Endpoint;
  readonly source: RouteSource;
  readonly version: number;
  readonly originNode: number;
}

export interface RouterOptions {
  readonly nodeId: number;
  /** QUERY multicasts per miss (claim 4: "a predetermined number of times"). */
  readonly queryCount: number;
  /** Wait between two QUERYs of one miss. */
  readonly queryIntervalMs: number;
  /** Wait after the last QUERY before deciding locally (claim 4). */
  readonly queryTimeoutMs: number;
  /** Ask known peers directly before deciding locally (claim 19). */
  readonly directQuery: boolean;
  readonly directTimeoutMs: number;
  /** Rounds of direct QUERYs (each to every known peer, then directTimeoutMs of waiting). Default 1. */
  readonly directCount?: number;
  /** Times an UPDATE is multicast, queryIntervalMs apart (lossy links). Default 1. */
  readonly updateRepeats?: number;
  /** Lifetime of entries this node makes, and of REPLYs without one. */
  readonly entryTtlSeconds: number;
  /** How long an endpoint that refused a connection is not selected. */
  readonly failureHoldDownMs: number;
}

const routeOf = (e: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, source: RouteSource): Route => ({ endpoint: e.endpoint, source, version: e.version, originNode: e.originNode });

/** No endpoint can take the client: all are down, drained or none configured. */
export class NoEndpointError extends Error {
  readonly code = 'ENOENDPOINT';
  constructor(message: string) {
    super(message);
    this.name = 'NoEndpointError';
  }
}

export interface RouterCounters {
  routes: number;
  localHits: number;
  misses: number;
  coalesced: number;
  queriesSent: number;
  queryRetries: number;
  remoteHits: number;
  lateUpdateHits: number;
  directQueries: number;
  directHits: number;
  queryTimeouts: number;
  selected: number;
  rerouted: number;
  updatesSent: number;
  /** Extra copies of UPDATEs (updateRepeats). */
  updateRepeats: number;
  repliesReceived: number;
  repliesUnmatched: number;
  repliesWrongKey: number;
  /** REPLYs older than a withdraw marker held here: not used. */
  repliesWithdrawn: number;
  /** Call requests that waited for the bulk sync at start. */
  heldForSync: number;
  noEndpoint: number;
  tableFull: number;
}

interface Pending {
  readonly key: ClientKey;
  readonly keyBytes: Buffer;
  readonly promise: Promise<Route>;
  phase: 'multicast' | 'direct';
  answer?: Route;
  wake?: () => void;
}

export class Router {
  readonly counters: RouterCounters = {
    routes: 0, localHits: 0, misses: 0, coalesced: 0, queriesSent: 0, queryRetries: 0, remoteHits: 0,
    lateUpdateHits: 0, directQueries: 0, directHits: 0, queryTimeouts: 0, selected: 0, rerouted: 0,
    updatesSent: 0, updateRepeats: 0, repliesReceived: 0, repliesUnmatched: 0, repliesWrongKey: 0, repliesWithdrawn: 0, heldForSync: 0,
    noEndpoint: 0, tableFull: 0,
  };
  /**
   * Told of every route that did not come from the local table (misses and
   * reroutes), with the time it took: monitoring and metrics.
   */
  observer?: (key: ClientKey, route: Route, ms: number) => void;
  private readonly pending = new Map<string, Pending>();
  private readonly byQueryId = new Map<number, Pending>();
  private nextQueryId = 1 + Math.floor(Math.random() * 0x7fffffff);

  constructor(
    private o: RouterOptions,
    private readonly directory: LocalDirectory,
    private readonly link: ClusterLink,
    private readonly endpoints: EndpointSet,
    private policy: SelectionPolicy,
  ) {
    link.onReply((reply, from) => this.handleReply(reply, from));
  }

  /**
   * Where this client's call request goes. Rejects with NoEndpointError.
   * keyBytes: the key's canonical octets, if the caller has them already.
   */
  route(key: ClientKey, keyBytes: Buffer = clientKeyBytes(key)): Promise<Route> {
    if (this.gate) {
      this.counters.heldForSync++;
      return this.gate.then(() => this.route(key, keyBytes));
    }
    this.counters.routes++;
    const local = this.directory.lookup(keyBytes);
    if (local) {
      if (!this.endpoints.isDown(local.endpoint)) {
        this.counters.localHits++;
        return Promise.resolve(routeOf(local, 'local'));
      }
      // held down after a refused connection: move the client, without
      // counting another failure against the endpoint
      return this.moveOff(key, keyBytes, local.endpoint);
    }
    const k = keyBytes.toString('latin1');
    const p = this.pending.get(k);
    if (p) {
      this.counters.coalesced++;
      return p.promise;
    }
    const pending: Pending = {
      key,
      keyBytes,
      phase: 'multicast',
      promise: undefined as unknown as Promise<Route>,
    };
    const t0 = performance.now();
    (pending as { promise: Promise<Route> }).promise = this.resolveMiss(pending)
      .then((r) => {
        this.observer?.(key, r, performance.now() - t0);
        return r;
      })
      .finally(() => this.pending.delete(k));
    this.pending.set(k, pending);
    return pending.promise;
  }

  /**
   * Many call requests at once: clients in the local table are answered from
   * one batch lookup; the others go the whole way, as route() takes them.
   * keys/offsets: the canonical keys laid out as checkedClientKeysInto does.
   */
  routeBatch(clients: readonly ClientKey[], keys: Buffer, offsets: Uint32Array): Promise<Route[]> {
    if (this.gate) {
      this.counters.heldForSync += clients.length;
      return this.gate.then(() => this.routeBatch(clients, keys, offsets));
    }
    const out: (Route | Promise<Route> | undefined)[] = new Array(clients.length);
    const checkHealth = this.endpoints.anyDown();
    const hits = this.directory.lookupMany(keys, offsets, (i, endpoint, version, originNode) => {
      if (!checkHealth || !this.endpoints.isDown(endpoint)) out[i] = { endpoint, source: 'local', version, originNode };
    });
    let local = 0;
    if (hits < clients.length || checkHealth) {
      for (let i = 0; i < clients.length; i++) {
        if (out[i] === undefined) out[i] = this.route(clients[i], Buffer.from(keys.subarray(offsets[i], offsets[i + 1])));
        else local++;
      }
    } else {
      local = hits;
    }
    this.counters.localHits += local;
    this.counters.routes += local;
    return local < clients.length ? Promise.all(out as (Route | Promise<Route>)[]) : Promise.resolve(out as Route[]);
  }

  /**
   * The client's endpoint refused or did not answer: take it out for the
   * hold-down time, move the client to another endpoint with a higher version,
   * and announce it. If another node already moved the client, go there.
   */
  /** An endpoint refused a call: out of selection (and /readyz) for the hold-down. */
  endpointFailed(e: Endpoint): void {
    this.endpoints.markFailed(e, this.o.failureHoldDownMs);
  }

  reroute(key: ClientKey, failed: Endpoint): Promise<Route> {
    this.endpointFailed(failed);
    return this.moveOff(key, clientKeyBytes(key), failed);
  }

  /** Moves the client off an endpoint that cannot take it (see reroute). */
  private moveOff(key: ClientKey, keyBytes: Buffer, failed: Endpoint): Promise<Route> {
    const current = this.directory.lookup(keyBytes);
    if (current && !sameEndpoint(current.endpoint, failed) && !this.endpoints.isDown(current.endpoint)) {
      return Promise.resolve(routeOf(current, 'local'));
    }
    this.counters.rerouted++;
    try {
      const r = this.decide(key, keyBytes, (current?.version ?? 0) + 1, 'rerouted', failed);
      this.observer?.(key, r, 0);
      return Promise.resolve(r);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** A REPLY arrived (from the multicast QUERY or a direct one). */
  handleReply(reply: Reply, _from: Peer): void {
    this.counters.repliesReceived++;
    const p = this.byQueryId.get(reply.queryId);
    const e = reply.entry;
    if (p && !sameClientKey(e.clientKey, p.key)) {
      this.counters.repliesWrongKey++;
      return;
    }
    // Any REPLY is a fact about the cluster: keep it (version rule).
    const keyBytes = p?.keyBytes ?? clientKeyBytes(e.clientKey);
    const stored = this.directory.store(keyBytes, e.endpoint, e.version, e.originNode, e.ttlSeconds || this.o.entryTtlSeconds);
    if (stored === 'full') this.counters.tableFull++;
    if (!p || p.answer) {
      if (!p) this.counters.repliesUnmatched++;
      return;
    }
    const held = this.directory.lookup(keyBytes);
    if (!held && stored === 'ignored') {
      // a withdraw marker here is newer: the entry the peer holds was deleted
      // (it missed the WITHDRAW); not an answer, the client gets a new entry
      this.counters.repliesWithdrawn++;
      return;
    }
    const winner = held ?? { endpoint: e.endpoint, version: e.version, originNode: e.originNode };
    p.answer = routeOf(winner, p.phase === 'direct' ? 'direct' : 'remote');
    p.wake?.();
  }

  /** New query timing and selection (a configuration reload); misses under way keep their schedule. */
  reconfigure(o: RouterOptions, policy: SelectionPolicy): void {
    if (o.nodeId !== this.o.nodeId) throw new Error('the node id cannot change while running');
    this.o = o;
    this.policy = policy;
  }

  /**
   * Holds every call request until `until` settles (the bulk sync at start):
   * a node that routed before it knew the cluster's table would make new
   * entries for clients that already have one.
   */
  holdUntil(until: Promise<unknown>): void {
    const gate = until.then(
      () => undefined,
      () => undefined,
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) this.gate = undefined;
    });
  }

  private gate?: Promise<void>;

  /** Outstanding misses (for stats and tests). */
  inFlight(): number {
    return this.pending.size;
  }

  private async resolveMiss(p: Pending): Promise<Route> {
    this.counters.misses++;
    const queryId = this.nextQueryId;
    this.nextQueryId = (this.nextQueryId % 0xfffffffe) + 1;
    this.byQueryId.set(queryId, p);
    try {
      // QUERYs go out on a fixed schedule (start + i * interval) so that send
      // costs and timer lag do not add up over the retries; the time-out is
      // measured from the moment the last QUERY actually went out (claim 4).
      const start = performance.now();
      for (let i = 0; i < this.o.queryCount; i++) {
        this.link.query(p.key, queryId);
        this.counters.queriesSent++;
        if (i > 0) this.counters.queryRetries++;
        const last = i === this.o.queryCount - 1;
        const deadline = last ? performance.now() + this.o.queryTimeoutMs : start + (i + 1) * this.o.queryIntervalMs;
        if (await this.answered(p, deadline - performance.now(), last)) {
          this.counters.remoteHits++;
          return p.answer!;
        }
      }
      const late = this.lateUpdate(p);
      if (late) return late;
      if (this.o.directQuery) {
        const peers = this.link.peers().filter((x) => x.nodeId !== this.o.nodeId);
        p.phase = 'direct';
        for (let round = 0; peers.length > 0 && round < (this.o.directCount ?? 1); round++) {
          for (const peer of peers) {
            this.link.query(p.key, queryId, peer);
            this.counters.directQueries++;
          }
          if (await this.answered(p, this.o.directTimeoutMs)) {
            this.counters.directHits++;
            return p.answer!;
          }
          const meanwhile = this.lateUpdate(p);
          if (meanwhile) return meanwhile;
        }
      }
      this.counters.queryTimeouts++;
      // above a withdraw marker's version, so the new entry beats it everywhere
      return this.decide(p.key, p.keyBytes, this.directory.withdrawnVersion(p.keyBytes) + 1, 'selected');
    } finally {
      this.byQueryId.delete(queryId);
    }
  }

  /** An UPDATE from a node that decided while we waited is as good as a REPLY. */
  private lateUpdate(p: Pending): Route | undefined {
    const late = this.directory.lookup(p.keyBytes);
    if (!late) return undefined;
    this.counters.lateUpdateHits++;
    return routeOf(late, 'remote');
  }

  /**
   * Resolves true as soon as p has an answer, false after ms. With exact,
   * never before ms have passed on the monotonic clock: Node's timers have
   * millisecond granularity and may fire a fraction early, so the rest of the
   * wait is made up, with setImmediate for a sub-millisecond remainder (a
   * 1-ms timer would overshoot instead). Claim 4's time-out uses it.
   */
  private answered(p: Pending, ms: number, exact = false): Promise<boolean> {
    if (p.answer) return Promise.resolve(true);
    const deadline = performance.now() + Math.max(0, ms);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      let drained = false;
      const arm = () => {
        const left = deadline - performance.now();
        if (left <= 0 || (!exact && timer)) {
          if (!drained) {
            // Timers run before I/O in an event-loop turn: after a stall (GC,
            // a busy loop, an overloaded host) a REPLY that arrived in time
            // may still wait behind this timer. Let one I/O phase run first,
            // so the time-out only counts answers that really came late.
            drained = true;
            immediate = setImmediate(arm);
            return;
          }
          p.wake = undefined;
          resolve(false);
        } else if (left < 1 && exact) {
          immediate = setImmediate(arm);
        } else {
          timer = setTimeout(arm, exact ? Math.floor(left) : left);
        }
      };
      p.wake = () => {
        clearTimeout(timer);
        if (immediate) clearImmediate(immediate);
        p.wake = undefined;
        resolve(true);
      };
      arm();
    });
  }

  /** Select locally, store, announce (claims 1, 5, 11, 14). */
  private decide(key: ClientKey, keyBytes: Buffer, version: number, source: 'selected' | 'rerouted', exclude?: Endpoint): Route {
    const candidates = this.endpoints.healthy().filter((s) => !exclude || !sameEndpoint(s.endpoint, exclude));
    const chosen = this.policy.select(keyBytes, candidates);
    if (!chosen) {
      this.counters.noEndpoint++;
      throw new NoEndpointError(`no endpoint can take the client: ${this.endpoints.states.length} configured, none healthy`);
    }
    const endpoint: Endpoint = { address: chosen.endpoint.address, port: chosen.endpoint.port, name: chosen.endpoint.name };
    const stored = this.directory.store(keyBytes, endpoint, version, this.o.nodeId, this.o.entryTtlSeconds);
    if (stored === 'ignored') {
      // A newer entry arrived in the same instant: it wins, as everywhere else.
      const winner = this.directory.lookup(keyBytes)!;
      return routeOf(winner, 'remote');
    }
    if (stored === 'full') this.counters.tableFull++;
    const entry: Entry = { clientKey: key, endpoint, version, originNode: this.o.nodeId, ttlSeconds: this.o.entryTtlSeconds };
    this.link.update(entry);
    this.counters.updatesSent++;
    for (let i = 1; i < (this.o.updateRepeats ?? 1); i++) {
      // again later, unless the entry has moved on meanwhile (then the newer one was announced)
      setTimeout(() => {
        const now = this.directory.lookup(keyBytes);
        if (now?.version !== version || now.originNode !== this.o.nodeId) return;
        this.link.update(entry);
        this.counters.updateRepeats++;
      }, i * this.o.queryIntervalMs).unref();
    }
    if (source === 'selected') this.counters.selected++;
    return { endpoint, source, version, originNode: this.o.nodeId };
  }
}
