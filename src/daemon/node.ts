// An affinityd node, wired from one configuration: the native table and
// responder, the directory over them and its maintenance, the router,
// endpoint selection, the front ends, and the operator's side (control
// sockets, metrics, service notifications). Behaviour lives in the parts;
// this file only connects them and runs their lifecycle. It is the library
// entry point (src/index.ts re-exports it).
import { checkedClientKeyBytes, checkedClientKeysInto, type ClientKey, parseClientKey } from '../codec/client-key';
import type { Keyring } from '../codec/frame';
import type { BulkSyncOutcome } from '../directory/maintenance/bulk-sync';
import { DirectoryMaintenance } from '../directory/maintenance/maintenance';
import { NativeDirectory } from '../directory/native-directory';
import { type Route, Router } from '../directory/router';
import { Frontend } from '../frontend/frontend';
import { LiveLinks } from '../links/live-links';
import { SplitDetector, type SplitView } from '../links/split-detector';
import { NodeState } from '../codec/messages';
import { native, type NativeResponder } from '../native';
import { EndpointSet } from '../selection/endpoint-set';
import { HealthChecks } from '../selection/health-checker';
import { createPolicy } from '../selection/policy';
import { NativeLink } from '../transport/native-link';
import type { Logger } from '../util/logger';
import { ChangeFeed, type ChangeEvent } from './change-feed';
import type { Config, ConfigInput } from './config';
import { IdentityWatch } from './identity-watch';
import { NodeMetrics } from './metrics';
import { collectStats, type NodeStats } from './node-stats';
import { peerStates } from './peer-states';
import type { NodeAdmin, PeerState, ReloadResult } from './node-view';
import { lifetimes, responderOptions, routerOptions } from './options';
import { type Readiness, readiness } from './readiness';
import { reloadNode, reloadNodeFromFile } from './reload';
import { type ServiceNotifier, silentNotifier } from './service-notifier';
import { OperatorSide } from './operator-side';
import { type SiteWiring, siteWiring } from './site-wiring';
import { SnapshotKeeper } from './snapshots';

export class AffinityNode implements NodeAdmin {
  readonly responder: NativeResponder;
  readonly directory: NativeDirectory;
  readonly link: NativeLink;
  readonly router: Router;
  readonly endpoints: EndpointSet;
  readonly maintenance: DirectoryMaintenance;
  readonly frontends: Frontend[];
  /** Every connection of a client that is up now, and where it went (front ends, RADIUS accounting, the API). */
  readonly links = new LiveLinks();
  readonly changes: ChangeFeed;
  readonly metrics: NodeMetrics;
  readonly snapshots: SnapshotKeeper;
  readonly health: HealthChecks;
  /** Live-split detection and repair over `links`. */
  readonly splits: SplitDetector;
  readonly identity: IdentityWatch;
  /** Sites joined through Redis (docs/sites.md), when sites.enabled. */
  readonly sites?: SiteWiring;
  private readonly operator: OperatorSide;
  private closed = false;
  /** Set by createNode from NodeOptions.configFile. */
  configFile?: string;
  config: Config;

  /** Use createNode(). */
  constructor(config: Config, keyring: Keyring, readonly log: Logger, bootEpoch: number, readonly notifier: ServiceNotifier = silentNotifier) {
    this.config = config;
    const [c, a] = [config, native()];
    const table = new a.AffinityTable(c.directory.capacity, c.directory.endpointCapacity);
    this.directory = new NativeDirectory(table, lifetimes(c));
    let link: NativeLink | undefined;
    this.responder = new a.Responder(table, responderOptions(c, bootEpoch, keyring), (frames) => link?.deliver(frames));
    this.link = link = new NativeLink(this.responder, { staticPeers: c.cluster.peers.map((p) => ({ nodeId: 0, ...p })), peerTimeoutMs: c.cluster.peerTimeoutMs, arbiterDelayMs: c.agreement.arbiterDelayMs, replySpinMicros: c.cluster.replySpinMicros, endpointOf: (id) => this.directory.endpointOf(id), endpointId: (e) => this.directory.endpointId(e) });
    this.endpoints = new EndpointSet(c.endpoints);
    this.router = new Router(routerOptions(c), this.directory, this.link, this.endpoints, createPolicy(c.selection.policy), log);
    this.maintenance = new DirectoryMaintenance(this.directory, this.link, { nodeId: c.node.id, sync: c.sync, antiEntropy: c.antiEntropy }, log);
    this.snapshots = new SnapshotKeeper(this.directory, c.directory.snapshotFile, log);
    this.frontends = c.frontends.map((f) => new Frontend(f, this.router, this.endpoints, log, this.links));
    this.splits = new SplitDetector(this.links, this.directory, { repair: c.links.splitRepair, intervalMs: c.links.checkIntervalMs }, log);
    this.identity = new IdentityWatch(c.node.id, this.responder, log);
    this.health = new HealthChecks(this.endpoints, c.selection.healthCheck, log);
    this.changes = new ChangeFeed(c.node.id, { applier: this.maintenance.applier, withdrawals: this.maintenance.withdrawals, link: this.link, responder: this.responder });
    this.metrics = new NodeMetrics(this);
    this.router.observer = (key, route, ms) => {
      this.metrics.routeDecision.observe({ source: route.source }, ms / 1000);
      this.changes.route(key, route, ms);
    };
    for (const f of this.frontends) f.onCallSetup = (ms) => this.metrics.callSetup.observe({ frontend: f.config.name }, ms / 1000);
    this.sites = siteWiring(c, { directory: this.directory, router: this.router, links: this.links, withdrawals: this.maintenance.withdrawals, metrics: this.metrics }, log);
    this.operator = new OperatorSide(this, this.metrics, notifier, log);
  }

  get nodeId(): number { return this.config.node.id; }

  /** True once close() has begun. */
  get isClosing(): boolean { return this.closed; }

  /** Where a call request from this client goes (claims 1-8): ProtocolError for a bad key, NoEndpointError when no endpoint can take it. */
  route(key: ClientKey | string): Promise<Route> {
    const k = typeof key === 'string' ? parseClientKey(key) : key;
    return this.router.route(k, checkedClientKeyBytes(k));
  }

  /** route() for many clients at once; clients in the local table cost one native batch lookup. */
  routeBatch(keys: readonly (ClientKey | string)[]): Promise<Route[]> {
    const ks = keys.map((k) => (typeof k === 'string' ? parseClientKey(k) : k));
    const { buffer, offsets } = checkedClientKeysInto(ks);
    return this.router.routeBatch(ks, buffer, offsets);
  }

  /** Deletes the client's entry on every node (a WITHDRAW at a higher version); false if it had none. */
  withdraw(key: ClientKey | string): boolean {
    const k = typeof key === 'string' ? parseClientKey(key) : key;
    checkedClientKeyBytes(k);
    return this.maintenance.withdrawals.withdraw(k);
  }

  /** Deletes every entry on every node; returns how many this node held. */
  withdrawAll(): number {
    return this.maintenance.withdrawals.withdrawAll();
  }
  get clearing(): NodeAdmin['clearing'] { return { link: this.link, withdrawals: this.maintenance.withdrawals, sites: this.sites }; } // clear's confirmation (control/clear.ts)
  /** 'syncing' until the bulk sync at start is done or timed out; then 'ready'. */
  get syncState(): 'syncing' | 'ready' {
    return this.maintenance.syncState;
  }

  /** Resolves when the node is ready (see syncState), with how the sync went. */
  get ready(): Promise<BulkSyncOutcome | undefined> {
    return this.maintenance.ready;
  }

  /** Where the management listener (/metrics, /healthz, /readyz) listens, when on. */
  managementAddress(): { address: string; port: number } | undefined { return this.operator.managementAddress(); }

  /** The unicast address other nodes reach this one at. */
  address(): { address: string; port: number } { return this.responder.address(); }

  /** Saves the directory now (also on an interval and at close, with directory.snapshotFile). */
  snapshot(): number {
    return this.snapshots.save();
  }

  stats(): NodeStats {
    return collectStats({
      nodeId: this.nodeId, router: this.router, responder: this.responder, directory: this.directory, link: this.link,
      frontends: this.frontends, endpoints: this.endpoints, healthChecks: this.health.checks,
      maintenance: this.maintenance, snapshots: this.snapshots, peersHeard: this.link.members().length,
      splits: this.splits, liveLinks: this.links.size, identity: this.identity, radius: this.operator.radius, sites: this.sites,
    });
  }

  peers(): PeerState[] {
    return peerStates(this.responder.peers(), this.maintenance, this.config.cluster.peers, this.config.cluster.peerTimeoutMs);
  }

  /** Clients whose live links are on different endpoints (`affinityd show splits`). */
  splitClients(): SplitView[] {
    return this.splits.views();
  }

  readiness(): Readiness {
    return readiness({
      syncState: this.syncState,
      closing: this.closed,
      frontends: this.frontends.map((f) => ({ name: f.config.name, listening: !!f.address() })),
      healthyEndpoints: this.endpoints.healthy().length,
      duplicateNodeId: this.identity.selfDuplicate,
      warnings: this.sites?.warnings(),
    });
  }

  subscribeChanges(listener: (e: ChangeEvent) => void): () => void {
    return this.changes.subscribe(listener);
  }

  /** Applies a new configuration (SIGHUP, `affinityd reload`); see reload.ts. */
  reload(input: ConfigInput | Config, keyring?: Keyring): ReloadResult {
    return reloadNode(this, input, keyring, this.operator.radius);
  }

  reloadFromFile(): ReloadResult {
    return reloadNodeFromFile(this, this.operator.radius);
  }

  /** Changes the log level now (pino levels); the configuration file is not touched. */
  setLogLevel(level: Config['log']['level']): void {
    const l = this.log as Logger & { level?: string };
    if (!('level' in l)) throw new Error('this node\'s logger has no adjustable level');
    l.level = level;
    this.config = { ...this.config, log: { level } };
  }

  statusLine(): string {
    return `${this.syncState}; ${this.directory.stats().size} entries; ${this.link.peers().length} peer(s)`;
  }

  async start(): Promise<this> {
    this.snapshots.load();
    const ready = this.maintenance.start();
    // not an arbiter, nor first to answer, until the table is synced
    this.router.ready = false;
    if (this.config.sync.enabled && this.config.sync.holdCalls) this.router.holdUntil(ready);
    void ready.then(() => {
      if (this.closed) return;
      this.router.ready = true;
      this.responder.setState(NodeState.Ready);
    });
    this.health.start();
    this.splits.start();
    this.identity.start();
    this.sites?.start();
    this.snapshots.every(this.config.directory.snapshotIntervalSeconds);
    try {
      for (const f of this.frontends) {
        const a = await f.listen();
        this.log.info({ frontend: f.config.name, ...a, identity: f.config.identity }, 'front end listening');
      }
      await this.operator.open(this.config);
    } catch (e) {
      await this.close();
      throw e;
    }
    this.log.info({ group: this.config.cluster.group, port: this.config.cluster.port, unicast: this.address() }, 'node started');
    void ready.then(() => {
      if (!this.closed) this.notifier.notify('READY=1', `STATUS=${this.statusLine()}`);
    });
    return this;
  }

  /** Stops the front ends (after drainMs for open calls), saves the directory, then stops the responder. */
  async close(drainMs = 0): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notifier.notify('STOPPING=1', 'STATUS=draining front ends');
    this.responder.setState(NodeState.Stopping); // peers count this node out at once
    this.changes.close();
    this.splits.stop();
    this.identity.stop();
    this.snapshots.stop();
    this.health.stop();
    this.maintenance.stop();
    await this.operator.close();
    await Promise.all(this.frontends.map((f) => f.close(drainMs)));
    await this.sites?.close();
    this.snapshots.save();
    this.responder.close();
    this.log.info({}, 'node closed'); // the node id is in every line (the logger's base), not twice
  }
}
