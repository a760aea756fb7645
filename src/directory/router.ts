// The call-request path (claims 1-8, 10-17, 19): where does this client go?
//
//   1. the local table (claim 2);
//   2. on a miss, a QUERY multicast to the cluster, sent `count` times
//      `intervalMs` apart, then `timeoutMs` of waiting after the last (claims
//      3, 4, 12, 13); a REPLY names the endpoint (claims 1, 10, 16, 17). The
//      first QUERY asks only the client's rank-0 directory to answer, the
//      next one the first two, the last one everyone (docs/protocol.md,
//      "Ranks"), so a cluster of any size sends about one REPLY per QUERY;
//   3. the table again: an UPDATE from a node that decided meanwhile counts;
//   4. agreement (issue 11): select an endpoint locally (claims 1, 10) and
//      propose it to the client's arbiter, the rank-0 ready node, by a CLAIM
//      (a direct query to the node that makes and keeps the client's entry,
//      claim 19); the arbiter stores the first proposal and answers every
//      proposal with the entry it then holds, so concurrent first calls of
//      one client at different nodes reach one endpoint whatever the
//      selection policy. The arbiter may be this node. For a while after a
//      node became an arbiter, a proposal for a client it took over asks the
//      client's earlier arbiter first and carries that answer on to it (a
//      handover, agreement.handoverMs);
//   5. the winner stores the entry and multicasts an UPDATE (claims 5, 11,
//      14); the others store the winner's entry.
// The misses of one routeBatch call share QUERY and CLAIM frames (many
// clients per frame) and one timer, and the UPDATEs of one turn of the
// event loop share frames, so a reconnect storm costs frames per batch, not
// per client; a lone call request's QUERY goes out at once. Concurrent call requests for
// one client share one resolution. I/O is injected (Directory, ClusterLink),
// so this runs on the native addon or on the in-memory doubles alike.
import { type ClientKey, clientKeyBytes, formatClientKey } from '../codec/client-key';
import { type Endpoint, sameEndpoint } from '../codec/endpoint';
import type { Entry } from '../codec/messages';
import type { EndpointSet, EndpointState } from '../selection/endpoint-set';
import type { SelectionPolicy } from '../selection/selection-policy';
import type { ClusterLink, KeyedEntry, Member, Peer, ReplyBatch, ReplyEntry } from '../transport/cluster-link';
import { type Logger, silentLogger } from '../util/logger';
import type { CrossSite, CrossSiteDecision } from './cross-site';
import type { Directory, StoredEntry } from './directory';
import { clientRankHash, rankScore } from './ranks';

export type RouteSource =
  /** the local table had the entry */
  | 'local'
  /** a directory answered the multicast QUERY (or its UPDATE arrived while we waited) */
  | 'remote'
  /** the client's arbiter answered with an entry another node made (claim 19) */
  | 'direct'
  /** nobody knew the client: this node selected the endpoint, the arbiter agreed, and it was announced */
  | 'selected'
  /** the client's endpoint failed: this node selected another and announced it */
  | 'rerouted'
  /** sites (docs/sites.md): another site had decided the client first; this node adopted that entry */
  | 'site';

export interface Route {
  readonly endpoint: Endpoint;
  readonly source: RouteSource;
  readonly version: number;
  readonly originNode: number;
}

export interface AgreementOptions {
  /** Propose new entries to the client's arbiter before connecting (off: decide alone, as before agreement). */
  readonly enabled: boolean;
  /** Resend unanswered proposals this often. */
  readonly retryMs: number;
  /** Give up on the arbiters and decide alone after this long (counted and logged: a partition). */
  readonly timeoutMs: number;
  /**
   * A node counts among the arbiters once it has been ready this long (every
   * node computes it from the HELLOs' ready_for_ms, so all switch to a new
   * arbiter at about one moment). Undefined or 0: at once.
   */
  readonly arbiterDelayMs?: number;
  /**
   * For this long after a node became an arbiter, a proposal for a client it
   * took over goes to the client's earlier arbiter first and carries that
   * one's answer on to it (a handover): a claim begun with the old view and
   * one begun with the new meet at the old arbiter. Undefined or 0: none.
   */
  readonly handoverMs?: number;
}

export interface RouterOptions {
  readonly nodeId: number;
  /** QUERY multicasts per miss (claim 4: "a predetermined number of times"). */
  readonly queryCount: number;
  /** Wait between two QUERYs of one miss. */
  readonly queryIntervalMs: number;
  /** Wait after the last QUERY before deciding (claim 4). */
  readonly queryTimeoutMs: number;
  /** Times an UPDATE is multicast, queryIntervalMs apart (lossy links). */
  readonly updateRepeats: number;
  /** Lifetime of entries this node makes. */
  readonly entryTtlSeconds: number;
  /** How long an endpoint that refused a connection is not selected. */
  readonly failureHoldDownMs: number;
  readonly agreement: AgreementOptions;
}

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
  /** Clients asked about in QUERYs (each retry again). */
  queriesSent: number;
  /** QUERY frames sent (several clients may share one). */
  queryFrames: number;
  queryRetries: number;
  remoteHits: number;
  lateUpdateHits: number;
  /** Misses nobody answered in the QUERY phase. */
  queryTimeouts: number;
  /** Proposals sent to remote arbiters (each resend again). */
  claimsSent: number;
  claimFrames: number;
  claimRetries: number;
  /** Proposals this node settled itself, being the client's arbiter. */
  claimsLocal: number;
  /** Proposals that won: this node's entry stands. */
  claimsWon: number;
  /** Proposals that lost to an entry another node made first: adopted. */
  claimsLost: number;
  /** The arbiter stopped being alive or ready during a claim: the next rank took over. */
  arbiterChanges: number;
  /** Proposals for a client whose arbiter joined within agreement.handoverMs: asked of its earlier arbiter first, and that answer carried on. */
  claimsHandedOver: number;
  /** This node's own first-entry proposals that waited in its handover as an arbiter (they had skipped the earlier arbiter). */
  heldForHandover: number;
  /**
   * Handovers whose last arbiter held another endpoint than the first one
   * answered with (a proposer that no longer counted the handover got there
   * first): the last one's endpoint announced above both versions.
   */
  handoverRepairs: number;
  /** Proposals that waited because no ready node was an arbiter yet (a cluster that has just started). */
  arbiterWaits: number;
  /** No arbiter answered within agreement.timeoutMs: decided alone (a partition). */
  agreementTimeouts: number;
  /** An arbiter answered with an entry another node made (claim 19's direct answer). */
  directHits: number;
  selected: number;
  rerouted: number;
  /** Entries announced in UPDATEs (first copies). */
  updatesSent: number;
  updateFrames: number;
  /** Extra copies of UPDATEs (updateRepeats). */
  updateRepeats: number;
  /** REPLY entries received. */
  repliesReceived: number;
  /** REPLY entries for no outstanding question (stored by the version rule all the same). */
  repliesUnmatched: number;
  /** REPLY entries older than a withdraw marker held here: not used. */
  repliesWithdrawn: number;
  /** Call requests that waited for the bulk sync at start. */
  heldForSync: number;
  /** Sites: proposals and moves the site directory answered before they were taken, and routes that took another site's entry instead. */
  siteConfirmed: number;
  siteAdopted: number;
  noEndpoint: number;
  tableFull: number;
}

/** query: QUERYs out; site: claimed in the site directory (sites), not yet proposed; claim: proposed to the arbiter; done: resolved. */
type Phase = 'query' | 'claim' | 'site' | 'done';

/**
 * One client's miss under way. A class of fixed shape, settled by the
 * router's done()/failed() rather than closures of its own: a storm holds
 * tens of thousands at once, and what each one costs is young-generation
 * garbage that the collector copies while the miss waits.
 */
class Pending {
  phase: Phase;
  /** This node's proposal, in the claim phase. */
  proposal?: KeyedEntry = undefined;
  /** Sites: the proposal is another site's entry, which the site directory answered with. */
  adopted = false;
  /** Counted among the QUERY time-outs already (agree() may run again while no arbiter is counted). */
  timedOut = false;
  /**
   * A handover (agreement.handoverMs): the arbiters still to be asked after
   * the one asked now, each with the answer of the one before.
   */
  chain?: number[] = undefined;
  /** The proposal is an earlier arbiter's answer with another node's entry, not this node's own: it cannot win here. */
  relayed = false;
  /** A handover: the first arbiter's answer, which it now holds (compared with the last one's). */
  firstAnswer?: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'> = undefined;
  /** Call requests for the same client that came while this one was under way (coalesced). */
  also?: { resolve(r: Route): void; reject(e: Error): void }[] = undefined;
  readonly t0 = performance.now();

  constructor(
    readonly clientKey: ClientKey,
    readonly keyBytes: Buffer,
    readonly k: string,
    /** A move off a failed endpoint (reroute) rather than a first entry. */
    readonly moveFrom: Endpoint | undefined,
    readonly resolve: (r: Route) => void,
    readonly reject: (e: Error) => void,
  ) {
    this.phase = moveFrom ? 'claim' : 'query';
  }
}

/** The misses of one turn of the event loop, in their QUERY phase together. */
interface QueryBatch {
  readonly queryId: number;
  readonly pendings: Pending[];
  /** pendings[0 .. answered) have left the query phase (wake looks on from here). */
  answered: number;
  wake?: () => void;
}

/** Proposals waiting for one arbiter's answer. */
interface ClaimRound {
  readonly claimId: number;
  arbiter: Peer;
  readonly pendings: Map<string, Pending>;
  readonly startedMs: number;
  /** The proposals are an earlier arbiter's answers, carried on in a handover (the CLAIM says so). */
  readonly handover?: boolean;
  timer?: NodeJS.Timeout;
  /** CLAIM frames sent so far (the retry interval doubles each time). */
  tries?: number;
  /** When the first CLAIM went out, until its answer time is sampled. */
  sentMs?: number;
}

/** How often a proposal that found no arbiter counted yet (a cluster just started) looks again. */
const ARBITER_WAIT_MS = 25;

const isArbiter = (m: Member): boolean => m.arbiter ?? m.ready;

/** A node counted among the arbiters, and for how long (ms; Infinity: longer than any handover). */
interface Arbiter {
  readonly nodeId: number;
  readonly forMs: number;
}

/** Resends of an unanswered CLAIM back off to at most this far apart (unless the measured answer time is longer). */
const MAX_CLAIM_BACKOFF_MS = 100;

/** The counter a route's source adds to (rerouted ones are counted when the move begins). */
type CountedSource = 'selected' | 'directHits' | 'remoteHits' | 'lateUpdateHits' | 'siteAdopted';

const routeOf = (e: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, source: RouteSource): Route => ({ endpoint: e.endpoint, source, version: e.version, originNode: e.originNode });

export class Router {
  readonly counters: RouterCounters = {
    routes: 0, localHits: 0, misses: 0, coalesced: 0, queriesSent: 0, queryFrames: 0, queryRetries: 0, remoteHits: 0, lateUpdateHits: 0,
    queryTimeouts: 0, claimsSent: 0, claimFrames: 0, claimRetries: 0, claimsLocal: 0, claimsWon: 0, claimsLost: 0, arbiterChanges: 0, claimsHandedOver: 0, heldForHandover: 0, handoverRepairs: 0, arbiterWaits: 0,
    agreementTimeouts: 0, directHits: 0, selected: 0, rerouted: 0, updatesSent: 0, updateFrames: 0, updateRepeats: 0, repliesReceived: 0,
    repliesUnmatched: 0, repliesWithdrawn: 0, heldForSync: 0, siteConfirmed: 0, siteAdopted: 0, noEndpoint: 0, tableFull: 0,
  };
  /**
   * Sites (docs/sites.md), set by the node when `sites.enabled`: a first
   * entry is claimed in the site directory before the site agrees on it, a
   * move is published there before it is taken.
   */
  crossSite?: CrossSite;
  /** Told of every route that did not come from the local table (misses and reroutes), with the time it took: monitoring and metrics. */
  observer?: (key: ClientKey, route: Route, ms: number) => void;
  /**
   * This node's table is synced (the bulk sync at start is done): only then,
   * and from agreement.arbiterDelayMs later, does it count itself among the
   * arbiters (a starting node must not settle a client whose entry it has
   * not received yet, nor before the others count it).
   */
  get ready(): boolean {
    return this.readyAt !== undefined;
  }
  set ready(v: boolean) {
    if (!v) this.readyAt = undefined;
    else if (this.readyAt === undefined) this.readyAt = performance.now();
  }
  /** When this node became ready (performance.now()); -Infinity: from the start. */
  private readyAt: number | undefined = -Infinity;
  private readonly pending = new Map<string, Pending>();
  /** The misses of the routeBatch call under way. */
  private forming?: Pending[];
  /** The misses that follow the first one in this turn of the event loop. */
  private turn?: Pending[];
  private readonly queries = new Map<number, QueryBatch>();
  private readonly claims = new Map<number, ClaimRound>();
  private announce?: KeyedEntry[];
  private nextId = 1 + Math.floor(Math.random() * 0x7fffffff);
  /** One Endpoint object per configured endpoint: proposals share it (the directory knows its id by the object). */
  private readonly plain = new WeakMap<Endpoint, Endpoint>();
  /** Smoothed answer time of CLAIMs and its variation (RFC 6298's estimator, in ms); 0 before the first sample. */
  private claimSrtt = 0;
  private claimRttvar = 0;
  private gate?: Promise<void>;

  constructor(
    private o: RouterOptions,
    private readonly directory: Directory,
    private readonly link: ClusterLink,
    private readonly endpoints: EndpointSet,
    private policy: SelectionPolicy,
    private readonly log: Logger = silentLogger,
  ) {
    link.onReply((r) => this.handleReply(r));
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
      return this.moveOff(key, keyBytes, local);
    }
    return this.resolve(key, keyBytes);
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
    // the misses among them share QUERY, CLAIM and UPDATE frames and one timer
    const batch: Pending[] = [];
    this.forming = batch;
    const hits = this.directory.lookupMany(keys, offsets, (i, endpoint, version, originNode) => {
      if (!checkHealth || !this.endpoints.isDown(endpoint)) out[i] = { endpoint, source: 'local', version, originNode };
    });
    let local = 0;
    try {
      if (hits < clients.length || checkHealth) {
        for (let i = 0; i < clients.length; i++) {
          if (out[i] === undefined) out[i] = this.route(clients[i], Buffer.from(keys.subarray(offsets[i], offsets[i + 1])));
          else local++;
        }
      } else {
        local = hits;
      }
    } finally {
      this.forming = undefined;
    }
    if (batch.length) void this.queryPhase(batch);
    this.counters.localHits += local;
    this.counters.routes += local;
    return local < clients.length ? Promise.all(out as (Route | Promise<Route>)[]) : Promise.resolve(out as Route[]);
  }

  /** An endpoint refused a call: out of selection (and /readyz) for the hold-down. */
  endpointFailed(e: Endpoint): void {
    this.endpoints.markFailed(e, this.o.failureHoldDownMs);
  }

  /**
   * The client's endpoint refused or did not answer: take it out for the
   * hold-down time and move the client to another endpoint at a higher
   * version, agreed with its arbiter like a first entry (so two nodes that
   * see the failure at once still move it to one place). If another node
   * moved the client already, go there.
   */
  reroute(key: ClientKey, failed: Endpoint): Promise<Route> {
    this.endpointFailed(failed);
    const keyBytes = clientKeyBytes(key);
    const current = this.directory.lookup(keyBytes);
    if (current && !sameEndpoint(current.endpoint, failed) && !this.endpoints.isDown(current.endpoint)) return Promise.resolve(routeOf(current, 'local'));
    return this.moveOff(key, keyBytes, current ?? { endpoint: failed, version: 0, originNode: 0, expiresSeconds: 0 });
  }

  /** New query timing, agreement and selection (a configuration reload); misses under way keep their schedule. */
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
    this.ready = false;
    const gate = until.then(
      () => undefined,
      () => undefined,
    );
    this.gate = gate;
    void gate.then(() => {
      if (this.gate === gate) {
        this.gate = undefined;
        this.ready = true;
      }
    });
  }

  /** Outstanding misses (for stats and tests). */
  inFlight(): number {
    return this.pending.size;
  }

  // ---- a miss ----

  private resolve(key: ClientKey, keyBytes: Buffer, moveFrom?: Endpoint): Promise<Route> {
    const k = keyBytes.toString('latin1');
    const existing = this.pending.get(k);
    if (existing) {
      this.counters.coalesced++;
      return new Promise((resolve, reject) => (existing.also ??= []).push({ resolve, reject }));
    }
    return new Promise<Route>((resolve, reject) => {
      const p = new Pending(key, keyBytes, k, moveFrom, resolve, reject);
      this.pending.set(k, p);
      if (moveFrom) {
        this.counters.rerouted++;
        this.agree([p], (this.directory.peek(keyBytes)?.version ?? 0) + 1);
        return;
      }
      this.counters.misses++;
      // inside routeBatch the misses go together; the first miss of a turn
      // of the event loop goes out at once, and the ones that follow in the
      // same turn (a storm) share one batch, sent when the turn's I/O is done
      if (this.forming) this.forming.push(p);
      else if (this.turn) this.turn.push(p);
      else {
        this.turn = [];
        setImmediate(() => {
          const b = this.turn!;
          this.turn = undefined;
          if (b.length) void this.queryPhase(b);
        });
        void this.queryPhase([p]);
      }
    });
  }

  /** p's route is known: every call request waiting for it goes there. */
  private done(p: Pending, r: Route): void {
    if (p.phase === 'done') return;
    this.pending.delete(p.k);
    p.phase = 'done';
    this.observer?.(p.clientKey, r, performance.now() - p.t0);
    p.resolve(r);
    if (p.also) for (const w of p.also) w.resolve(r);
  }

  /** p cannot be routed (no endpoint, a site directory's error): every call request waiting for it is told. */
  private failed(p: Pending, e: Error): void {
    if (p.phase === 'done') return;
    this.pending.delete(p.k);
    p.phase = 'done';
    p.reject(e);
    if (p.also) for (const w of p.also) w.reject(e);
  }

  /** Moves the client off an endpoint that cannot take it. */
  private moveOff(key: ClientKey, keyBytes: Buffer, current: StoredEntry): Promise<Route> {
    return this.resolve(key, keyBytes, current.endpoint);
  }

  private newId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId % 0xfffffffe) + 1;
    return id;
  }

  /**
   * QUERYs go out on a fixed schedule (start + i * interval) so that send
   * costs and timer lag do not add up over the retries; the time-out is
   * measured from the moment the last QUERY actually went out (claim 4).
   */
  private async queryPhase(pendings: Pending[]): Promise<void> {
    const b: QueryBatch = { queryId: this.newId(), pendings, answered: 0 };
    this.queries.set(b.queryId, b);
    try {
      const start = performance.now();
      for (let i = 0; i < this.o.queryCount; i++) {
        const open = pendings.filter((p) => p.phase === 'query');
        if (open.length === 0) return;
        const last = i === this.o.queryCount - 1;
        // ranks below i+1 answer the (i+1)-th QUERY; everyone the last
        this.link.query(open, b.queryId, last ? 0 : i + 1);
        this.counters.queryFrames++;
        this.counters.queriesSent += open.length;
        if (i > 0) this.counters.queryRetries += open.length;
        const deadline = last ? performance.now() + this.o.queryTimeoutMs : start + (i + 1) * this.o.queryIntervalMs;
        await this.until(b, deadline, last);
      }
      // unanswered: agree() reads the table once more (an UPDATE from a node
      // that decided while we waited is as good as a REPLY) and proposes
      const open = pendings.filter((p) => p.phase === 'query');
      if (open.length) this.agree(open);
    } finally {
      // late REPLYs still count as facts about the cluster (stored), not as answers
      setTimeout(() => this.queries.delete(b.queryId), this.o.queryTimeoutMs + this.o.queryIntervalMs).unref();
    }
  }

  /**
   * Resolves at the deadline, or earlier when every pending of b is
   * answered. With exact, never before the deadline on the monotonic clock:
   * Node's timers have millisecond granularity and may fire a fraction
   * early, so the rest is made up with setImmediate (claim 4's time-out).
   */
  private until(b: QueryBatch, deadline: number, exact: boolean): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      let immediate: NodeJS.Immediate | undefined;
      let drained = false;
      const finish = () => {
        clearTimeout(timer);
        if (immediate) clearImmediate(immediate);
        b.wake = undefined;
        resolve();
      };
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
          finish();
        } else if (left < 1 && exact) {
          immediate = setImmediate(arm);
        } else {
          timer = setTimeout(arm, exact ? Math.floor(left) : left);
        }
      };
      b.wake = () => {
        // a pending never goes back to the query phase: look on from the first one that was still in it
        const ps = b.pendings;
        while (b.answered < ps.length && ps[b.answered].phase !== 'query') b.answered++;
        if (b.answered === ps.length) finish();
      };
      arm();
    });
  }

  // ---- agreement ----

  /**
   * This node's proposal for p: the policy's choice among healthy endpoints
   * (`healthy`, taken once for a batch of proposals), at `version`.
   */
  private propose(p: Pending, version: number, healthy: readonly EndpointState[]): KeyedEntry {
    const from = p.moveFrom;
    const candidates = from ? healthy.filter((s) => !sameEndpoint(s.endpoint, from)) : healthy;
    const chosen = this.policy.select(p.keyBytes, candidates);
    if (!chosen) {
      this.counters.noEndpoint++;
      throw new NoEndpointError(`no endpoint can take the client: ${this.endpoints.states.length} configured, none healthy`);
    }
    let endpoint = this.plain.get(chosen.endpoint);
    if (!endpoint) {
      endpoint = { address: chosen.endpoint.address, port: chosen.endpoint.port, name: chosen.endpoint.name };
      this.plain.set(chosen.endpoint, endpoint);
    }
    return { clientKey: p.clientKey, keyBytes: p.keyBytes, endpoint, version, originNode: this.o.nodeId, ttlSeconds: this.o.entryTtlSeconds };
  }

  /**
   * A handover is under way: some arbiter counted now (this node too) became
   * one within agreement.handoverMs (this node: plus agreement.timeoutMs, its
   * hold), so proposals for the clients it took over still go through their
   * earlier arbiter. False with handovers off.
   */
  handingOver(): boolean {
    const handoverMs = this.o.agreement.handoverMs ?? 0;
    if (!this.o.agreement.enabled || !handoverMs) return false;
    const members = this.link.members();
    return this.holding(members) || this.arbiters(members).some((a) => a.forMs < handoverMs);
  }

  /**
   * This node is in its own handover as an arbiter (the native responder's
   * handoverHoldMs: agreement.handoverMs plus agreement.timeoutMs after it
   * became one) while an older arbiter is alive: it makes no first entry
   * from a proposal that skipped that arbiter.
   */
  private holding(members: readonly Member[]): boolean {
    const a = this.o.agreement;
    if (!a.handoverMs || !this.selfArbiter()) return false;
    const mine = performance.now() - this.readyAt! - (a.arbiterDelayMs ?? 0);
    return mine < a.handoverMs + a.timeoutMs && members.some((m) => isArbiter(m) && (m.arbiterForMs ?? Infinity) > mine);
  }

  /** This node counts among the arbiters: ready for agreement.arbiterDelayMs. */
  private selfArbiter(): boolean {
    return this.readyAt !== undefined && performance.now() - this.readyAt >= (this.o.agreement.arbiterDelayMs ?? 0);
  }

  /**
   * The nodes that may settle a client, oldest arbiter first, each with how
   * long it has been one: the members counted as arbiters and, when it is
   * one, this node. Empty while every ready node is younger than
   * arbiterDelayMs (a cluster that has just started). The same for every
   * client: taken once per batch of proposals.
   */
  private arbiters(members: readonly Member[]): Arbiter[] {
    const out: Arbiter[] = [];
    for (const m of members) if (isArbiter(m)) out.push({ nodeId: m.nodeId, forMs: m.arbiterForMs ?? Infinity });
    if (this.selfArbiter()) out.push({ nodeId: this.o.nodeId, forMs: performance.now() - this.readyAt! - (this.o.agreement.arbiterDelayMs ?? 0) });
    return out.sort((a, b) => (a.forMs === b.forMs ? a.nodeId - b.nodeId : a.forMs > b.forMs ? -1 : 1));
  }

  /**
   * The arbiters a proposal for the client goes to, in order: the client's
   * arbiter as it was agreement.handoverMs ago (rank 0 among the arbiters
   * that old), then each newer arbiter that took the client over since,
   * ending with its arbiter now (rank 0 among all). Mostly one. 'wait' when
   * ready nodes exist but none is an arbiter yet (settling before the others
   * count the same arbiters could settle one client twice); this node when
   * it is alone or agreement is off.
   *
   * Why a chain: a node becomes an arbiter at one moment for every node only
   * to within a network delay, and a proposal begun just before that moment
   * may still be resent to the old arbiter well after it. A proposal begun
   * after it asks the old arbiter first and carries that answer on, so both
   * meet at the old arbiter, and the new one first stores what the old one
   * settled (docs/design.md, "Agreement").
   */
  private chainOf(keyBytes: Buffer, members: readonly Member[], arbiters: readonly Arbiter[]): number[] | 'wait' {
    if (!this.o.agreement.enabled) return [this.o.nodeId];
    if (arbiters.length === 0) return members.some((m) => m.ready) || (this.ready && members.length > 0) ? 'wait' : [this.o.nodeId];
    const h = clientRankHash(keyBytes);
    const handoverMs = this.o.agreement.handoverMs ?? 0;
    const chain: number[] = [];
    let best = 0;
    let bestScore = 0;
    const beats = (a: Arbiter, s: number) => chain.length === 0 || s > bestScore || (s === bestScore && a.nodeId > best); // rankFirst's order
    // the client's arbiter as it was a handover ago: the leader among the arbiters that old
    for (const a of arbiters) {
      if (a.forMs < handoverMs) continue;
      const s = rankScore(h, a.nodeId);
      if (!beats(a, s)) continue;
      chain[0] = best = a.nodeId;
      bestScore = s;
    }
    // then each younger one that took the client over, oldest first
    for (const a of arbiters) {
      if (a.forMs >= handoverMs) continue;
      const s = rankScore(h, a.nodeId);
      if (!beats(a, s)) continue;
      chain.push((best = a.nodeId));
      bestScore = s;
    }
    return chain;
  }

  /**
   * Proposes an entry for each pending to its arbiter (or settles it here),
   * grouped by arbiter. With sites on, a first entry is claimed in the site
   * directory first, and the site agrees on what it answered (this node's
   * proposal, or another site's entry): nothing is stored before then, so no
   * link of the site can be sent anywhere else meanwhile.
   */
  private agree(ps: Pending[], moveVersion?: number): void {
    const proposed: Pending[] = [];
    const healthy = this.endpoints.healthy();
    for (const p of ps) {
      if (p.phase === 'done' || p.phase === 'site') continue;
      p.phase = 'claim';
      // one read for both questions: the native I/O thread may store the
      // winner's UPDATE at any moment, and a first entry proposed above it
      // would be a move that beats it
      const held = moveVersion === undefined ? this.directory.peek(p.keyBytes) : undefined;
      if (held?.endpoint) {
        this.take(p, held as StoredEntry, 'remote', 'lateUpdateHits', false);
        continue;
      }
      if (moveVersion === undefined && !p.timedOut) {
        p.timedOut = true;
        this.counters.queryTimeouts++;
      }
      try {
        // above a live withdraw marker, so the new entry beats the delete everywhere
        p.proposal = this.propose(p, moveVersion ?? (held?.version ?? 0) + 1, healthy);
      } catch (e) {
        this.failed(p, e as Error);
        continue;
      }
      proposed.push(p);
    }
    if (!this.crossSite || moveVersion !== undefined || proposed.length === 0) return this.toArbiters(proposed, moveVersion);
    for (const p of proposed) p.phase = 'site';
    this.crossSite.decide(proposed.map((p) => p.proposal!)).then(
      (ds) => {
        const next: Pending[] = [];
        ds.forEach((d, i) => {
          const p = proposed[i];
          if (p.phase !== 'site') return;
          this.counters.siteConfirmed++;
          p.phase = 'claim';
          p.proposal = this.keyed(p, d.entry);
          p.adopted = d.from === 'other-site';
          next.push(p);
        });
        this.toArbiters(next, moveVersion);
      },
      (e) => proposed.forEach((p) => this.failed(p, e as Error)),
    );
  }

  /** The proposals to their arbiters, by arbiter; while no arbiter is counted yet (a cluster just started), again a moment later. */
  private toArbiters(ps: Pending[], moveVersion: number | undefined, again = false): void {
    const members = this.link.members();
    const arbiters = this.arbiters(members);
    const byArbiter = new Map<number, Pending[]>();
    const waiting: Pending[] = [];
    for (const p of ps) {
      if (p.phase !== 'claim') continue;
      if (again && moveVersion === undefined) {
        // an UPDATE from a node that decided while this one waited is as good as a REPLY
        const held = this.directory.peek(p.keyBytes);
        if (held?.endpoint) {
          this.take(p, held as StoredEntry, 'remote', 'lateUpdateHits', false);
          continue;
        }
      }
      if (!this.enchain(p, members, arbiters, byArbiter)) waiting.push(p);
    }
    if (waiting.length) {
      // the cluster has just started: ask again once an arbiter is counted
      this.counters.arbiterWaits += waiting.length;
      setTimeout(() => this.toArbiters(waiting, moveVersion, true), ARBITER_WAIT_MS).unref();
    }
    this.dispatch(byArbiter, members, performance.now());
  }

  /** p's chain of arbiters (chainOf), its first arbiter's list in byArbiter; false: no arbiter counted yet. */
  private enchain(p: Pending, members: readonly Member[], arbiters: readonly Arbiter[], byArbiter: Map<number, Pending[]>): boolean {
    const chain = this.chainOf(p.keyBytes, members, arbiters);
    if (chain === 'wait') return false;
    if (chain.length > 1) this.counters.claimsHandedOver++;
    p.chain = chain.length > 1 ? chain.slice(1) : undefined;
    const list = byArbiter.get(chain[0]);
    if (list) list.push(p);
    else byArbiter.set(chain[0], [p]);
    return true;
  }

  /** Proposals by arbiter: one CLAIM round per remote arbiter, settled here for this node. handover: carried on from an earlier arbiter. */
  private dispatch(byArbiter: Map<number, Pending[]>, members: readonly Member[], startedMs: number, handover = false): void {
    for (const [arbiter, list] of byArbiter) {
      if (arbiter === this.o.nodeId) {
        // settled here; those with a newer arbiter after this one go on to it together
        const onward = new Map<number, Pending[]>();
        let held: Pending[] | undefined;
        const holding = !handover && this.holding(members);
        for (const p of list) {
          // in this node's own handover, a first entry that skipped the earlier arbiter waits, as the responder makes remote ones wait
          if (holding && !p.moveFrom && !this.directory.peek(p.keyBytes)?.endpoint) (held ??= []).push(p);
          else this.settleHere(p, onward);
        }
        if (held) {
          this.counters.heldForHandover += held.length;
          const again = held;
          setTimeout(() => this.toArbiters(again, undefined, true), ARBITER_WAIT_MS).unref();
        }
        if (onward.size) this.dispatch(onward, this.link.members(), performance.now(), true);
        continue;
      }
      const m = members.find((x) => x.nodeId === arbiter);
      // the next arbiter of a chain left meanwhile: the next rank now
      if (!m) this.reclaim(list, startedMs);
      else this.sendClaims({ claimId: this.newId(), arbiter: m, pendings: new Map(list.map((p) => [p.k, p])), startedMs, handover }, false);
    }
  }

  /**
   * An arbiter of p's chain other than the last answered with e: e goes on
   * to the next one as p's proposal (into onward, by arbiter). An entry not
   * this node's own proposal is relayed: p can then only adopt. answered:
   * false when the arbiter was passed over unheard (e is p's proposal).
   */
  private handOn(p: Pending, e: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'> & { ttlSeconds?: number }, onward: Map<number, Pending[]>, answered = true): void {
    const next = p.chain!.shift()!;
    if (p.chain!.length === 0) p.chain = undefined;
    if (answered) p.firstAnswer ??= { endpoint: e.endpoint, version: e.version, originNode: e.originNode };
    const mine = p.proposal!;
    if (!sameEndpoint(e.endpoint!, mine.endpoint) || e.version !== mine.version || e.originNode !== mine.originNode) {
      p.proposal = this.keyed(p, e);
      p.relayed = true;
      p.adopted = false;
    }
    const list = onward.get(next);
    if (list) list.push(p);
    else onward.set(next, [p]);
  }

  /**
   * This node is the arbiter (or agreement is off, or nobody answered): first
   * writer wins in the local directory. An earlier arbiter of p's chain
   * (a handover): the entry goes on to the next one, into onward if given.
   */
  private settleHere(p: Pending, onward?: Map<number, Pending[]>): void {
    if (p.phase !== 'claim') return;
    this.counters.claimsLocal++;
    const c = this.directory.claim(p.keyBytes, p.proposal!);
    if (c.result === 'full') {
      // no room to remember it (counted: affinityd_table_full_total):
      // the choice stands and is announced, so the other nodes store it
      this.counters.tableFull++;
      if (p.chain) return this.passOn(p, p.proposal!, onward);
      return this.settle(p, p.proposal!, !p.relayed, p.proposal);
    }
    if (p.chain) return this.passOn(p, c.entry, onward);
    // the claim stored the winner here already: settle without storing again
    this.settle(p, c.entry, c.won && !p.relayed, c.entry);
  }

  /** A proposal's answer from an earlier arbiter of its chain, carried on to the next: with others (onward) or at once. */
  private passOn(p: Pending, e: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, onward?: Map<number, Pending[]>): void {
    if (onward) return this.handOn(p, e, onward);
    const one = new Map<number, Pending[]>();
    this.handOn(p, e, one);
    this.dispatch(one, this.link.members(), performance.now(), true);
  }

  private sendClaims(r: ClaimRound, retry: boolean): void {
    const open = [...r.pendings.values()].filter((p) => p.phase === 'claim');
    if (open.length === 0) {
      this.claims.delete(r.claimId);
      return;
    }
    this.claims.set(r.claimId, r);
    this.link.claim(r.arbiter, r.claimId, open.map((p) => p.proposal!), r.handover);
    this.counters.claimFrames++;
    this.counters.claimsSent += open.length;
    if (retry) this.counters.claimRetries += open.length;
    clearTimeout(r.timer);
    // resent after the retransmission time-out, then twice as long each time
    // up to 100 ms (or the time-out itself, when the arbiter answers slower):
    // a busy arbiter settling thousands of proposals (a storm) is not flooded
    // with copies of what it is already answering, and random loss still
    // gets a dozen tries a second
    r.tries = (r.tries ?? 0) + 1;
    if (r.tries === 1) r.sentMs = performance.now();
    // the tick waits for one I/O phase first: timers run before I/O in a turn
    // of the event loop, and after a stall (a storm's busy loop, GC) the
    // answer may already be waiting to be read
    const rto = this.claimRto();
    r.timer = setTimeout(() => setImmediate(() => this.claimTick(r)), Math.min(this.o.agreement.timeoutMs, rto * 2 ** (r.tries - 1), Math.max(rto, MAX_CLAIM_BACKOFF_MS)));
    r.timer.unref();
  }

  /**
   * How long a CLAIM waits for its answer before it is resent: RFC 6298's
   * SRTT + 4 RTTVAR over the answer times of CLAIMs sent once (Karn's rule),
   * never below agreement.retryMs. An idle cluster answers in well under a
   * millisecond, so this is retryMs; an arbiter busy with a storm answers in
   * tens of milliseconds, and resending every retryMs would double its work.
   */
  private claimRto(): number {
    return Math.max(this.o.agreement.retryMs, this.claimSrtt + 4 * this.claimRttvar);
  }

  private sampleClaimRtt(ms: number): void {
    if (this.claimSrtt === 0) {
      this.claimSrtt = ms;
      this.claimRttvar = ms / 2;
    } else {
      this.claimRttvar = 0.75 * this.claimRttvar + 0.25 * Math.abs(this.claimSrtt - ms);
      this.claimSrtt = 0.875 * this.claimSrtt + 0.125 * ms;
    }
  }

  /** No answer yet: ask again, move to the next arbiter if this one is gone, or give up and decide here. */
  private claimTick(r: ClaimRound): void {
    const open = [...r.pendings.values()].filter((p) => p.phase === 'claim');
    if (open.length === 0) return void this.claims.delete(r.claimId);
    const members = this.link.members();
    const arbiter = members.find((m) => m.nodeId === r.arbiter.nodeId && isArbiter(m));
    const waited = performance.now() - r.startedMs;
    const timeout = this.o.agreement.timeoutMs;
    if (arbiter && waited >= timeout) {
      // Lost CLAIMs or answers are only a delay: while the arbiter is heard
      // (HELLOs), keep asking. Decide alone when it has been silent for the
      // time-out too (a partition, before the peer time-out removes it), or
      // after four time-outs of asking one that is heard but never answers.
      const silentMs = arbiter.lastHeardMs === undefined ? Infinity : Date.now() - arbiter.lastHeardMs;
      if (silentMs >= timeout || waited >= 4 * timeout) {
        this.claims.delete(r.claimId);
        // an earlier arbiter of a handover that does not answer is passed over: the proposal goes on as it is
        const onward = new Map<number, Pending[]>();
        const alone: Pending[] = [];
        for (const p of open) {
          if (p.chain) this.handOn(p, p.proposal!, onward, false);
          else alone.push(p);
        }
        if (alone.length) {
          this.counters.agreementTimeouts += alone.length;
          this.log.warn(
            { arbiter: r.arbiter.nodeId, clients: alone.length, waitedMs: Math.round(waited), arbiterSilentMs: Number.isFinite(silentMs) ? Math.round(silentMs) : null },
            silentMs >= timeout ? 'agreement: the arbiter is not heard; deciding alone (a partition? live-split detection will tell)' : 'agreement: the arbiter is heard but never answered; deciding alone (unicast blocked? live-split detection will tell)',
          );
          for (const p of alone) {
            // no longer a handover: what this node settles is its own proposal, or the relayed entry it adopts
            this.settleHere(p);
          }
        }
        this.dispatch(onward, members, performance.now(), true);
        return;
      }
    }
    if (!arbiter) {
      // the arbiter left or stopped being ready: its proposals go to the next rank
      this.claims.delete(r.claimId);
      this.counters.arbiterChanges += open.length;
      return this.reclaim(open, r.startedMs);
    }
    if (!r.handover) {
      // An arbiter heard for the first time, older than the one asked (this
      // node has just started and had not heard it): the proposal goes to it
      // now, since the one asked, outranked or in its handover, answers no
      // first entry. Never away from an older arbiter to a younger one (a
      // handover ending meanwhile): the older one may have settled the
      // client already, and the chain carries that on.
      const arbiters = this.arbiters(members);
      const ageOf = (id: number) => arbiters.find((a) => a.nodeId === id)?.forMs ?? -Infinity;
      const askedAge = ageOf(r.arbiter.nodeId);
      const moved = open.filter((p) => {
        const chain = this.chainOf(p.keyBytes, members, arbiters);
        return chain !== 'wait' && chain[0] !== r.arbiter.nodeId && ageOf(chain[0]) > askedAge;
      });
      if (moved.length) {
        for (const p of moved) r.pendings.delete(p.k);
        this.counters.arbiterChanges += moved.length;
        this.reclaim(moved, r.startedMs);
        if (moved.length === open.length) {
          clearTimeout(r.timer);
          this.claims.delete(r.claimId);
          return;
        }
      }
    }
    this.sendClaims(r, true);
  }

  /**
   * Proposals whose arbiter left, sent as they are to the next rank, through
   * a handover if one is under way (or settled here); while no arbiter is
   * counted yet, again a moment later.
   */
  private reclaim(ps: Pending[], startedMs: number): void {
    const members = this.link.members();
    const arbiters = this.arbiters(members);
    const waiting: Pending[] = [];
    const regroup = new Map<number, Pending[]>();
    for (const p of ps) {
      if (p.phase !== 'claim') continue;
      if (!this.enchain(p, members, arbiters, regroup)) waiting.push(p);
    }
    if (waiting.length) setTimeout(() => this.reclaim(waiting, startedMs), ARBITER_WAIT_MS).unref();
    this.dispatch(regroup, members, startedMs);
  }

  /**
   * The agreed entry for p: stored here by the version rule (a newer one
   * already held, made without this arbiter, stands), announced if it is
   * this node's, and the route taken.
   */
  private settle(p: Pending, agreed: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, won: boolean, held?: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>): void {
    if (p.phase === 'done' || p.phase === 'site') return;
    if (won) this.counters.claimsWon++;
    else this.counters.claimsLost++;
    const first = p.firstAnswer;
    if (first?.endpoint && !sameEndpoint(first.endpoint, agreed.endpoint!)) {
      // A handover ended on another entry than its first arbiter holds: a
      // node whose view had the handover over already went to the last
      // arbiter directly, first. Every link connects to the last one's
      // endpoint; announced above both versions, it also replaces the
      // first arbiter's entry (which would answer QUERYs) everywhere.
      this.counters.handoverRepairs++;
      this.log.warn(
        { client: formatClientKey(p.clientKey), first: { endpoint: first.endpoint.name, version: first.version, originNode: first.originNode }, last: { endpoint: agreed.endpoint!.name, version: agreed.version, originNode: agreed.originNode } },
        'handover: the new arbiter held another entry than the earlier one answered with; announcing its endpoint above both',
      );
      const repaired = { endpoint: agreed.endpoint, version: Math.max(first.version, agreed.version) + 1, originNode: this.o.nodeId };
      const stored = this.directory.apply(p.keyBytes, repaired as Omit<ReplyEntry, 'keyBytes'>);
      if (stored === 'full') this.counters.tableFull++;
      const now = stored === 'ignored' ? (this.directory.lookup(p.keyBytes) ?? repaired) : repaired;
      return this.take(p, now, p.moveFrom ? 'rerouted' : 'direct', 'directHits', stored !== 'ignored');
    }
    if (!held) {
      const stored = this.directory.apply(p.keyBytes, agreed as Omit<ReplyEntry, 'keyBytes'>);
      if (stored === 'full') this.counters.tableFull++;
      // stored: the agreed entry is the one held; ignored: something at least as new is
      held = stored === 'ignored' ? (this.directory.lookup(p.keyBytes) ?? agreed) : agreed;
    }
    // ours: this node's proposal stands (another site's entry, when the site directory answered with it)
    const ours = won && held.version === agreed.version && (held.originNode === this.o.nodeId || !!p.adopted);
    if (ours && p.adopted) this.take(p, held, 'site', 'siteAdopted', true);
    else if (ours) this.take(p, held, p.moveFrom ? 'rerouted' : 'selected', p.moveFrom ? undefined : 'selected', true);
    else this.take(p, held, p.moveFrom ? 'rerouted' : 'direct', 'directHits', false);
  }

  /**
   * The route the site decided for p, taken. With sites on, a move is
   * published in the site directory first (by the version rule): a newer
   * entry another site made meanwhile is adopted instead. (First entries
   * were claimed there before the site agreed on them: agree().)
   * announce: this node made the entry and announces it (UPDATE).
   */
  private take(p: Pending, held: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, source: RouteSource, counter: CountedSource | undefined, announce: boolean): void {
    if (!this.crossSite || !p.moveFrom || !announce) {
      if (counter) this.counters[counter]++;
      if (announce) this.announceLater(this.keyed(p, held));
      return this.done(p, routeOf(held, source));
    }
    p.phase = 'site';
    void this.crossSite.move(this.keyed(p, held)).then((d) => this.moved(p, held, d));
  }

  /** The site directory's answer to a move this node made: it stands (announced), or another site's newer entry is stored, announced and taken. */
  private moved(p: Pending, held: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'>, d: CrossSiteDecision): void {
    if (p.phase !== 'site') return;
    this.counters.siteConfirmed++;
    if (d.from === 'site') {
      this.announceLater(this.keyed(p, held));
      return this.done(p, routeOf(held, 'rerouted'));
    }
    const stored = this.directory.apply(p.keyBytes, d.entry);
    if (stored === 'full') this.counters.tableFull++;
    const now = stored === 'ignored' ? (this.directory.lookup(p.keyBytes) ?? d.entry) : d.entry;
    if (stored !== 'ignored') this.announceLater(this.keyed(p, now));
    this.counters.siteAdopted++;
    this.done(p, routeOf(now, 'site'));
  }

  private keyed(p: Pending, e: Pick<StoredEntry, 'endpoint' | 'version' | 'originNode'> & { ttlSeconds?: number }): KeyedEntry {
    return { clientKey: p.clientKey, keyBytes: p.keyBytes, endpoint: e.endpoint, version: e.version, originNode: e.originNode, ttlSeconds: e.ttlSeconds || this.o.entryTtlSeconds };
  }

  /**
   * An entry decided elsewhere (sites: a conflict Redis resolved), stored by
   * the version rule and, if it changed the table, announced (UPDATE) so
   * every node of the site holds it.
   */
  adopt(e: KeyedEntry): void {
    const r = this.directory.apply(e.keyBytes, e);
    if (r === 'full') this.counters.tableFull++;
    else if (r !== 'ignored') this.announceLater(e);
  }

  /** UPDATEs of one turn of the event loop share frames; repeated updateRepeats times for lossy links. */
  private announceLater(e: KeyedEntry): void {
    if (!this.announce) {
      this.announce = [];
      queueMicrotask(() => {
        const entries = this.announce!;
        this.announce = undefined;
        this.link.update(entries);
        this.counters.updateFrames++;
        this.counters.updatesSent += entries.length;
        for (let i = 1; i < this.o.updateRepeats; i++) {
          setTimeout(() => {
            // again, unless the entry has moved on meanwhile (then the newer one was announced)
            const still = entries.filter((x) => {
              const now = this.directory.lookup(x.keyBytes);
              return now?.version === x.version && now.originNode === x.originNode;
            });
            if (still.length === 0) return;
            this.link.update(still);
            this.counters.updateRepeats += still.length;
          }, i * this.o.queryIntervalMs).unref();
        }
      });
    }
    this.announce.push(e);
  }

  // ---- answers ----

  /** A REPLY arrived: to a QUERY batch, to a CLAIM round, or late. */
  handleReply(r: ReplyBatch): void {
    this.counters.repliesReceived += r.entries.length;
    const round = this.claims.get(r.queryId);
    if (round) return this.claimAnswer(round, r);
    const batch = this.queries.get(r.queryId);
    for (const e of r.entries) {
      // any REPLY is a fact about the cluster: keep it (version rule, lifetime rule)
      const stored = this.directory.apply(e.keyBytes, e);
      if (stored === 'full') this.counters.tableFull++;
      const p = batch && this.pending.get(e.keyBytes.toString('latin1'));
      if (!p || p.phase !== 'query') {
        if (!batch) this.counters.repliesUnmatched++;
        continue;
      }
      // stored: the REPLY's entry is the one held; ignored: look at what is
      const held = stored === 'inserted' || stored === 'replaced' ? e : this.directory.lookup(e.keyBytes);
      if (!held && stored === 'ignored') {
        // a withdraw marker here is newer: the entry the peer holds was deleted
        // (it missed the WITHDRAW); not an answer, the client gets a new entry
        this.counters.repliesWithdrawn++;
        continue;
      }
      this.take(p, held ?? e, 'remote', 'remoteHits', false);
    }
    batch?.wake?.();
  }

  private claimAnswer(round: ClaimRound, r: ReplyBatch): void {
    if (round.tries === 1 && round.sentMs !== undefined) {
      this.sampleClaimRtt(performance.now() - round.sentMs);
      round.sentMs = undefined; // one sample per round
    }
    let onward: Map<number, Pending[]> | undefined;
    for (const e of r.entries) {
      const k = e.keyBytes.toString('latin1');
      const p = round.pendings.get(k);
      if (!p || p.phase !== 'claim') continue;
      // answered: out of the round (a storm's round holds thousands, answered over many frames)
      round.pendings.delete(k);
      if (p.chain) {
        // an earlier arbiter of a handover: its answer goes on to the next
        this.handOn(p, e, (onward ??= new Map()));
        continue;
      }
      const mine = p.proposal!;
      const won = !p.relayed && sameEndpoint(e.endpoint, mine.endpoint) && (p.adopted ? e.version === mine.version && e.originNode === mine.originNode : e.originNode === this.o.nodeId && e.version >= mine.version);
      this.settle(p, e, won);
    }
    if (onward) this.dispatch(onward, this.link.members(), performance.now(), true);
    // every proposal answered; ones settled another way leave it at the next tick
    if (round.pendings.size === 0) {
      clearTimeout(round.timer);
      this.claims.delete(round.claimId);
    }
  }
}

export type { ReplyEntry };
