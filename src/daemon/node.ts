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
import { native, type NativeResponder } from '../native';
import { EndpointSet } from '../selection/endpoint-set';
import { HealthChecks } from '../selection/health-checker';
import { createPolicy } from '../selection/policy';
import { NativeLink } from '../transport/native-link';
import type { Logger } from '../util/logger';
import { ChangeFeed, type ChangeEvent } from './change-feed';
import { type Config, type ConfigInput, loadConfigFile, loadKeyFile, resolveConfig } from './config';
import { NodeMetrics } from './metrics';
import { collectStats, type NodeStats } from './node-stats';
import { peerStates } from './peer-states';
import type { NodeAdmin, PeerState, ReloadResult } from './node-view';
import { lifetimes, responderOptions, routerOptions } from './options';
import { type Readiness, readiness } from './readiness';
import { applyReload } from './reload';
import { type ServiceNotifier, silentNotifier } from './service-notifier';
import { OperatorSide } from './operator-side';
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
  private readonly operator: OperatorSide;
  private closed = false;
  /** Set by createNode from NodeOptions.configFile. */
  configFile?: string;
  config: Config;

  /** Use createNode(). */
  constructor(config: Config, keyring: Keyring, private readonly log: Logger, bootEpoch: number, private readonly notifier: ServiceNotifier = silentNotifier) {
    this.config = config;
    const c = config;
    const a = native();
    const table = new a.AffinityTable(c.directory.capacity, c.directory.endpointCapacity);
    this.directory = new NativeDirectory(table, lifetimes(c));
    let link: NativeLink | undefined;
    this.responder = new a.Responder(table, responderOptions(c, bootEpoch, keyring), (frames) => link?.deliver(frames));
    this.link = link = new NativeLink(this.responder, { staticPeers: c.cluster.peers.map((p) => ({ nodeId: 0, ...p })) });
    this.endpoints = new EndpointSet(c.endpoints);
    this.router = new Router(routerOptions(c), this.directory, this.link, this.endpoints, createPolicy(c.selection.policy));
    this.maintenance = new DirectoryMaintenance(this.directory, this.link, { nodeId: c.node.id, sync: c.sync, antiEntropy: c.antiEntropy }, log);
    this.snapshots = new SnapshotKeeper(this.directory, c.directory.snapshotFile, log);
    this.frontends = c.frontends.map((f) => new Frontend(f, this.router, this.endpoints, log));
    this.health = new HealthChecks(this.endpoints, c.selection.healthCheck, log);
    const m = this.maintenance;
    this.changes = new ChangeFeed(c.node.id, { applier: m.applier, withdrawals: m.withdrawals, link: this.link, responder: this.responder });
    this.metrics = new NodeMetrics(this);
    this.router.observer = (key, route, ms) => {
      this.metrics.routeDecision.observe({ source: route.source }, ms / 1000);
      this.changes.route(key, route, ms);
    };
    for (const f of this.frontends) f.onCallSetup = (ms) => this.metrics.callSetup.observe({ frontend: f.config.name }, ms / 1000);
    this.operator = new OperatorSide(this, this.metrics, notifier, log);
  }

  get nodeId(): number {
    return this.config.node.id;
  }

  /** True once close() has begun. */
  get isClosing(): boolean {
    return this.closed;
  }

  /**
   * Where a call request from this client goes (claims 1-8). The key is
   * checked (ProtocolError if it breaks a rule). Rejects with NoEndpointError
   * when no endpoint can take the client.
   */
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

  /** 'syncing' until the bulk sync at start is done or timed out; then 'ready'. */
  get syncState(): 'syncing' | 'ready' {
    return this.maintenance.syncState;
  }

  /** Resolves when the node is ready (see syncState), with how the sync went. */
  get ready(): Promise<BulkSyncOutcome | undefined> {
    return this.maintenance.ready;
  }

  /** Where the management listener (/metrics, /healthz, /readyz) listens, when on. */
  managementAddress(): { address: string; port: number } | undefined {
    return this.operator.managementAddress();
  }

  /** The unicast address other nodes reach this one at. */
  address(): { address: string; port: number } {
    return this.responder.address();
  }

  /** Saves the directory now (also on an interval and at close, with directory.snapshotFile). */
  snapshot(): number {
    return this.snapshots.save();
  }

  stats(): NodeStats {
    return collectStats({
      nodeId: this.nodeId, router: this.router, responder: this.responder, directory: this.directory, link: this.link,
      frontends: this.frontends, endpoints: this.endpoints, healthChecks: this.health.checks,
      maintenance: this.maintenance, snapshots: this.snapshots, peersHeard: this.link.peers().filter((p) => p.nodeId !== 0).length, radius: this.operator.radius,
    });
  }

  peers(): PeerState[] {
    return peerStates(this.responder.peers(), this.maintenance, this.config.cluster.peers);
  }

  readiness(): Readiness {
    return readiness({
      syncState: this.syncState,
      closing: this.closed,
      frontends: this.frontends.map((f) => ({ name: f.config.name, listening: !!f.address() })),
      healthyEndpoints: this.endpoints.healthy().length,
    });
  }

  subscribeChanges(listener: (e: ChangeEvent) => void): () => void {
    return this.changes.subscribe(listener);
  }

  /**
   * Applies a new configuration (SIGHUP, `affinityd reload`), validated
   * whole first: if anything in it is wrong nothing changes (the error is
   * thrown). The directory is never touched. See reload.ts.
   */
  reload(input: ConfigInput | Config, keyring?: Keyring): ReloadResult {
    const next = resolveConfig(input);
    const ring = keyring ?? (next.cluster.keyFile ? loadKeyFile(next.cluster.keyFile) : undefined);
    this.notifier.notify('RELOADING=1', `MONOTONIC_USEC=${Math.round(performance.timeOrigin * 1000 + performance.now() * 1000)}`);
    try {
      const r = applyReload(this, this.config, next, ring, this.operator.radius);
      this.config = r.effective;
      this.log.info({ applied: r.applied, needRestart: r.needRestart }, 'configuration reloaded');
      return { applied: r.applied, needRestart: r.needRestart };
    } finally {
      this.notifier.notify('READY=1', `STATUS=${this.statusLine()}`);
    }
  }

  /** Re-reads the configuration file and applies it; a file that does not load or validate changes nothing (logged, thrown). */
  reloadFromFile(): ReloadResult {
    if (!this.configFile) throw new Error('reload: this node was not started from a configuration file');
    try {
      return this.reload(loadConfigFile(this.configFile));
    } catch (e) {
      this.log.warn({ file: this.configFile, err: (e as Error).message }, 'configuration reload refused: the running configuration stays');
      throw e;
    }
  }

  /** Changes the log level now (pino levels); the configuration file is not touched. */
  setLogLevel(level: Config['log']['level']): void {
    const l = this.log as Logger & { level?: string };
    if (!('level' in l)) throw new Error('this node\'s logger has no adjustable level');
    l.level = level;
    this.config = { ...this.config, log: { level } };
  }

  private statusLine(): string {
    return `${this.syncState}; ${this.directory.stats().size} entries; ${this.link.peers().length} peer(s)`;
  }

  async start(): Promise<this> {
    this.snapshots.load();
    const ready = this.maintenance.start();
    if (this.config.sync.enabled && this.config.sync.holdCalls) this.router.holdUntil(ready);
    this.health.start();
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
    this.log.info({ node: this.nodeId, group: this.config.cluster.group, port: this.config.cluster.port, unicast: this.address() }, 'node started');
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
    this.snapshots.stop();
    this.health.stop();
    this.maintenance.stop();
    await this.operator.close();
    await Promise.all(this.frontends.map((f) => f.close(drainMs)));
    this.snapshots.save();
    this.responder.close();
    this.log.info({ node: this.nodeId }, 'node closed');
  }
}
