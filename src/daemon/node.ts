// An affinityd node: the native table and responder, the router over them,
// endpoint selection and the front ends, the cluster's upkeep (bulk sync,
// withdrawals, digests) and the operator's side (control sockets, metrics,
// reload, service notifications), wired from one configuration.
// This is the library entry point (src/index.ts re-exports it).
import { existsSync } from 'node:fs';

import { AntiEntropy } from '../cluster/anti-entropy';
import { BulkSync, type BulkSyncOutcome } from '../cluster/bulk-sync';
import { EntryApplier } from '../cluster/entry-applier';
import { SyncServer } from '../cluster/sync-server';
import { SyncSessions } from '../cluster/sync-sessions';
import { Withdrawals } from '../cluster/withdrawals';
import { ControlServer } from '../control/server';
import { checkedClientKeyBytes, checkedClientKeysInto, type ClientKey, parseClientKey } from '../codec/client-key';
import type { Keyring } from '../codec/frame';
import { NativeDirectory } from '../directory/native-directory';
import { type Route, Router } from '../directory/router';
import { Frontend, type Logger } from '../frontend/frontend';
import { native, type NativeAffinityTable, type NativeResponder } from '../native';
import { EndpointSet } from '../selection/endpoint-set';
import { HealthChecker } from '../selection/health-checker';
import { createPolicy } from '../selection/policy';
import { LiveLinks } from '../links/live-links';
import { NativeLink } from '../transport/native-link';
import { type Config, type ConfigInput, loadConfigFile, loadKeyFile, resolveConfig } from './config';
import { ChangeFeed } from './change-feed';
import { ManagementServer } from './management';
import { NodeMetrics } from './metrics';
import { type ServiceNotifier, silentNotifier } from './service-notifier';
import { loadSnapshot, writeSnapshot } from './snapshot';

export interface NodeOptions {
  /** The cluster keyring; default: read from cluster.keyFile. */
  keyring?: Keyring;
  /** Structured logger (pino or compatible); default: silent. */
  logger?: Logger;
  /** Default: the start time in seconds, which grows across restarts. */
  bootEpoch?: number;
  /** Where READY/RELOADING/STOPPING/WATCHDOG go (systemd); default: nowhere. */
  notifier?: ServiceNotifier;
  /** The file the configuration came from: reload (SIGHUP, the control socket) re-reads it. */
  configFile?: string;
}

/** What a configuration reload did. */
export interface ReloadResult {
  /** Settings now in effect. */
  applied: string[];
  /** Settings that changed but need a restart to take effect (the old values stay). */
  needRestart: string[];
}

/** Settings a running node cannot change (sockets, table sizes, identity). */
const RESTART_ONLY = [
  'node', 'cluster.group', 'cluster.port', 'cluster.interface', 'cluster.localAddress', 'cluster.unicastPort', 'cluster.ttl',
  'cluster.loopback', 'cluster.maxSkewMs', 'cluster.busyPollMicros', 'cluster.peers', 'directory.capacity', 'directory.endpointCapacity',
  'directory.queueCapacity', 'directory.snapshotFile', 'directory.maxTtlSeconds', 'directory.withdrawTtlSeconds', 'frontends', 'control',
  'management', 'sync',
] as const;

const pick = (o: unknown, path: string): unknown => path.split('.').reduce((x: any, k) => x?.[k], o); // eslint-disable-line @typescript-eslint/no-explicit-any
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

const silent: Logger = { info() {}, warn() {}, debug() {} };

export class AffinityNode {
  readonly table: NativeAffinityTable;
  readonly responder: NativeResponder;
  readonly directory: NativeDirectory;
  readonly link: NativeLink;
  readonly router: Router;
  readonly endpoints: EndpointSet;
  readonly frontends: Frontend[];
  /** Every connection of a client that is up now, and where it went (front ends, RADIUS accounting, the API). */
  readonly links = new LiveLinks();
  health?: HealthChecker;
  readonly changes: ChangeFeed;
  readonly metrics: NodeMetrics;
  management?: ManagementServer;
  readonly controls: ControlServer[] = [];
  /** Set by createNode from NodeOptions.configFile. */
  configFile?: string;
  readonly applier: EntryApplier;
  readonly syncServer: SyncServer;
  readonly sessions: SyncSessions;
  readonly withdrawals: Withdrawals;
  readonly antiEntropy?: AntiEntropy;
  /** Set at start when sync.enabled. */
  bulkSync?: BulkSync;
  readonly snapshots = { loaded: 0, expiredOnLoad: 0, damaged: 0, written: 0, writeErrors: 0, lastWrittenEntries: 0 };
  private snapshotTimer?: NodeJS.Timeout;
  private closed = false;
  private watchdogTimer?: NodeJS.Timeout;
  config: Config;

  /** Use createNode(). */
  constructor(config: Config, keyring: Keyring, private readonly log: Logger, bootEpoch: number, private readonly notifier: ServiceNotifier = silentNotifier) {
    this.config = config;
    const a = native();
    const c = config;
    this.table = new a.AffinityTable(c.directory.capacity, c.directory.endpointCapacity);
    this.directory = new NativeDirectory(this.table);
    let link: NativeLink | undefined;
    this.responder = new a.Responder(
      this.table,
      {
        nodeId: c.node.id,
        bootEpoch,
        group: c.cluster.group,
        port: c.cluster.port,
        interface: c.cluster.interface,
        localAddress: c.cluster.localAddress || undefined,
        unicastPort: c.cluster.unicastPort,
        ttl: c.cluster.ttl,
        loopback: c.cluster.loopback,
        maxSkewMs: c.cluster.maxSkewMs,
        defaultTtlSeconds: c.directory.entryTtlSeconds,
        maxTtlSeconds: c.directory.maxTtlSeconds,
        queueCapacity: c.directory.queueCapacity,
        busyPollMicros: c.cluster.busyPollMicros,
        keyring,
      },
      (frames) => link?.deliver(frames),
    );
    this.link = link = new NativeLink(this.responder, { staticPeers: c.cluster.peers.map((p) => ({ nodeId: 0, ...p })) });
    this.endpoints = new EndpointSet(c.endpoints);
    this.router = new Router(
      routerOptions(c),
      this.directory,
      this.link,
      this.endpoints,
      createPolicy(c.selection.policy),
    );
    const withdrawTtl = c.directory.withdrawTtlSeconds || c.directory.maxTtlSeconds;
    this.applier = new EntryApplier(this.directory, { defaultTtlSeconds: c.directory.entryTtlSeconds, maxTtlSeconds: c.directory.maxTtlSeconds, withdrawTtlSeconds: withdrawTtl }, log);
    this.syncServer = new SyncServer(this.directory, this.link);
    this.sessions = new SyncSessions(this.link, this.applier, { windowChunks: c.sync.windowChunks, retryMs: c.sync.retryMs, retries: c.sync.retries });
    this.withdrawals = new Withdrawals(this.directory, this.link, { nodeId: c.node.id, ttlSeconds: withdrawTtl, maxTtlSeconds: c.directory.maxTtlSeconds });
    if (c.antiEntropy.enabled) {
      this.antiEntropy = new AntiEntropy(this.directory, this.link, this.sessions, { nodeId: c.node.id, intervalMs: c.antiEntropy.intervalMs, buckets: c.antiEntropy.buckets });
    }
    this.frontends = c.frontends.map((f) => new Frontend(f, this.router, this.endpoints, log));
    if (c.selection.healthCheck.enabled) this.health = new HealthChecker(this.endpoints, c.selection.healthCheck, log);
    this.changes = new ChangeFeed(c.node.id, { applier: this.applier, withdrawals: this.withdrawals, link: this.link, responder: this.responder });
    this.metrics = new NodeMetrics(this);
    this.router.observer = (key, route, ms) => {
      this.metrics.routeDecision.observe({ source: route.source }, ms / 1000);
      this.changes.route(key, route, ms);
    };
    for (const f of this.frontends) f.onCallSetup = (ms) => this.metrics.callSetup.observe({ frontend: f.config.name }, ms / 1000);
  }

  /** True once close() has begun. */
  get isClosing(): boolean {
    return this.closed;
  }

  /**
   * Applies a new configuration (SIGHUP, \`affinityd reload\`): endpoints,
   * selection, query timing, entry lifetimes, health checks, digests,
   * snapshots' interval, log level and the key file. The new configuration
   * is validated whole first; if anything in it is wrong, nothing changes
   * (the error is thrown). The table is never touched. Settings that need
   * sockets or memory reopened are reported in needRestart and keep their
   * old values.
   */
  reload(input: ConfigInput | Config, keyring?: Keyring): ReloadResult {
    const next = resolveConfig(input);
    const ring = keyring ?? (next.cluster.keyFile ? loadKeyFile(next.cluster.keyFile) : undefined);
    const old = this.config;
    const needRestart: string[] = RESTART_ONLY.filter((k) => !same(pick(old, k), pick(next, k)));
    // digests off at start: nothing runs that a reload could turn on
    if (!this.antiEntropy && !same(old.antiEntropy, next.antiEntropy)) needRestart.push('antiEntropy');
    const applied: string[] = [];
    this.notifier.notify('RELOADING=1', `MONOTONIC_USEC=${Math.round(performance.timeOrigin * 1000 + performance.now() * 1000)}`);
    try {
      // everything that can throw is done above; from here on it only applies
      if (!same(old.endpoints, next.endpoints)) {
        const r = this.endpoints.replace(next.endpoints);
        applied.push(`endpoints (+${r.added} -${r.removed})`);
      }
      if (!same(old.query, next.query) || !same(old.selection.policy, next.selection.policy) || !same(old.directory.entryTtlSeconds, next.directory.entryTtlSeconds) || old.selection.failureHoldDownMs !== next.selection.failureHoldDownMs) {
        this.router.reconfigure(routerOptions(next), createPolicy(next.selection.policy));
        applied.push('query, selection');
      }
      if (!same(old.selection.healthCheck, next.selection.healthCheck)) {
        this.health?.stop();
        this.health = next.selection.healthCheck.enabled ? new HealthChecker(this.endpoints, next.selection.healthCheck, this.log) : undefined;
        this.health?.start();
        if (!next.selection.healthCheck.enabled) for (const st of this.endpoints.states) st.checkedDown = false;
        applied.push('selection.healthCheck');
      }
      if (!same(old.antiEntropy, next.antiEntropy) && this.antiEntropy) {
        this.antiEntropy.reconfigure({ nodeId: next.node.id, intervalMs: next.antiEntropy.intervalMs, buckets: next.antiEntropy.buckets }, next.antiEntropy.enabled);
        applied.push('antiEntropy');
      }
      if (old.directory.snapshotIntervalSeconds !== next.directory.snapshotIntervalSeconds && this.snapshotTimer) {
        clearInterval(this.snapshotTimer);
        this.snapshotTimer = setInterval(() => this.snapshot(), next.directory.snapshotIntervalSeconds * 1000);
        this.snapshotTimer.unref();
        applied.push('directory.snapshotIntervalSeconds');
      }
      if (ring) {
        this.responder.setKeyring(ring);
        applied.push(`keyring (${ring.keys.length} key(s), sending with key ${ring.sendKeyId})`);
      }
      if (old.log.level !== next.log.level) {
        this.setLogLevel(next.log.level);
        applied.push('log.level');
      }
      // what could not be applied keeps its old value, so the running config says what is in effect
      const effective = structuredClone(next);
      for (const k of needRestart) {
        const parts = k.split('.');
        const last = parts.pop()!;
        const dst = parts.reduce((x: any, p) => x[p], effective); // eslint-disable-line @typescript-eslint/no-explicit-any
        dst[last] = structuredClone(pick(old, k));
      }
      this.config = effective;
    } finally {
      this.notifier.notify('READY=1', `STATUS=${this.statusLine()}`);
    }
    this.log.info({ applied, needRestart }, 'configuration reloaded');
    return { applied, needRestart };
  }

  /**
   * Re-reads the configuration file and applies it (reload()). A file that
   * does not load or validate changes nothing: the error is logged and thrown.
   */
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
    const t = this.table.stats();
    return `${this.syncState}; ${t.size} entries; ${this.link.peers().length} peer(s)`;
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

  /**
   * Deletes the client's entry on every node (a WITHDRAW at a higher
   * version); its next call request gets a new entry. False if it had none.
   */
  withdraw(key: ClientKey | string): boolean {
    const k = typeof key === 'string' ? parseClientKey(key) : key;
    checkedClientKeyBytes(k);
    return this.withdrawals.withdraw(k);
  }

  /** Deletes every entry on every node; returns how many this node held. */
  withdrawAll(): number {
    return this.withdrawals.withdrawAll();
  }

  /** 'syncing' until the bulk sync at start is done or timed out; then 'ready'. */
  get syncState(): 'syncing' | 'ready' {
    return this.bulkSync?.state ?? 'ready';
  }

  /** Resolves when the node is ready (see syncState), with how the sync went. */
  get ready(): Promise<BulkSyncOutcome | undefined> {
    return this.bulkSync?.ready ?? Promise.resolve(undefined);
  }

  /** The unicast address other nodes reach this one at. */
  address(): { address: string; port: number } {
    return this.responder.address();
  }

  /** Saves the table now (also on an interval and at close, with directory.snapshotFile). */
  snapshot(): number {
    const file = this.config.directory.snapshotFile;
    if (!file) return 0;
    try {
      const n = writeSnapshot(this.directory, file);
      this.snapshots.written++;
      this.snapshots.lastWrittenEntries = n;
      return n;
    } catch (e) {
      this.snapshots.writeErrors++;
      this.log.warn({ err: (e as Error).message, file }, 'snapshot not written');
      return 0;
    }
  }

  private loadSnapshotAtStart(): void {
    const file = this.config.directory.snapshotFile;
    if (!file || !existsSync(file)) return;
    try {
      const r = loadSnapshot(this.directory, file);
      this.snapshots.loaded = r.loaded;
      this.snapshots.expiredOnLoad = r.expired;
      this.log.info({ file, ...r }, 'snapshot loaded');
    } catch (e) {
      // a damaged snapshot is reported and skipped: the cluster still knows the entries
      this.snapshots.damaged++;
      this.log.warn({ file, err: (e as Error).message }, 'snapshot damaged: starting without it');
    }
  }

  stats() {
    return {
      snapshots: { ...this.snapshots },
      node: this.config.node.id,
      router: { ...this.router.counters, inFlight: this.router.inFlight() },
      responder: this.responder.stats(),
      table: this.table.stats(),
      link: { ...this.link.counters },
      frontends: this.frontends.map((f) => ({ name: f.config.name, address: f.address(), ...f.counters })),
      endpoints: this.endpoints.states.map((s) => ({
        name: s.endpoint.name,
        connections: s.connections,
        down: s.downUntil > Date.now() || !!s.checkedDown,
        checkedDown: !!s.checkedDown,
        failures: s.failures,
      })),
      healthChecks: this.health?.checks ?? 0,
      sync: {
        state: this.syncState,
        outcome: this.bulkSync?.outcome,
        server: { ...this.syncServer.counters },
        sessions: { ...this.sessions.counters, running: this.sessions.running },
        applied: { ...this.applier.counters },
      },
      withdrawals: { ...this.withdrawals.counters },
      antiEntropy: this.antiEntropy ? { ...this.antiEntropy.counters } : undefined,
    };
  }

  /** Stops the front ends (after drainMs for open calls), saves the table, then stops the responder. */
  async close(drainMs = 0): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notifier.notify('STOPPING=1', 'STATUS=draining front ends');
    clearInterval(this.watchdogTimer);
    clearInterval(this.snapshotTimer);
    this.health?.stop();
    this.antiEntropy?.stop();
    this.bulkSync?.stop();
    this.sessions.cancelAll();
    await Promise.all(this.controls.map((c) => c.close()));
    await Promise.all(this.frontends.map((f) => f.close(drainMs)));
    await this.management?.close();
    this.snapshot();
    this.changes.close();
    this.responder.close();
    this.log.info({}, 'node closed'); // the node id is in every line (the logger's base)
  }

  async start(): Promise<this> {
    this.loadSnapshotAtStart();
    if (this.config.sync.enabled) {
      this.bulkSync = new BulkSync(this.sessions, this.config.sync.timeoutMs, this.log);
      if (this.config.sync.holdCalls) this.router.holdUntil(this.bulkSync.ready);
    }
    this.antiEntropy?.start();
    this.health?.start();
    if (this.config.directory.snapshotFile) {
      this.snapshotTimer = setInterval(() => this.snapshot(), this.config.directory.snapshotIntervalSeconds * 1000);
      this.snapshotTimer.unref();
    }
    try {
      for (const f of this.frontends) {
        const a = await f.listen();
        this.log.info({ frontend: f.config.name, ...a, identity: f.config.identity }, 'front end listening');
      }
      const hooks = { reload: () => this.reloadFromFile() };
      const cc = this.config.control;
      for (const [path, level, group] of [[cc.socket, 'admin', ''], [cc.readOnlySocket, 'read-only', cc.readOnlyGroup]] as const) {
        if (!path) continue;
        const c = new ControlServer(this, level, hooks, this.log);
        await c.listen(path, group);
        this.controls.push(c);
      }
      const m = this.config.management;
      if (m.enabled) {
        this.management = new ManagementServer(this, this.metrics);
        const a = await this.management.listen(m.port, m.address);
        this.log.info(a, 'management listening (/metrics, /healthz, /readyz)');
      }
    } catch (e) {
      await this.close();
      throw e;
    }
    this.log.info({ group: this.config.cluster.group, port: this.config.cluster.port, unicast: this.address() }, 'node started');
    void this.ready.then(() => {
      if (!this.closed) this.notifier.notify('READY=1', `STATUS=${this.statusLine()}`);
    });
    // the watchdog is fed from the JS thread: a stuck event loop (which
    // would stop calls being routed) is what it must catch
    const wd = this.notifier.watchdogIntervalMs();
    if (wd) {
      this.watchdogTimer = setInterval(() => this.notifier.notify('WATCHDOG=1'), wd);
      this.watchdogTimer.unref();
    }
    return this;
  }
}

function routerOptions(c: Config) {
  return {
    nodeId: c.node.id,
    queryCount: c.query.count,
    queryIntervalMs: c.query.intervalMs,
    queryTimeoutMs: c.query.timeoutMs,
    directQuery: c.query.direct,
    directTimeoutMs: c.query.directTimeoutMs,
    directCount: c.query.directCount,
    updateRepeats: c.query.updateRepeats,
    entryTtlSeconds: c.directory.entryTtlSeconds,
    failureHoldDownMs: c.selection.failureHoldDownMs,
  };
}

/** Validates the configuration, opens the sockets, starts the front ends. */
export async function createNode(input: ConfigInput | Config, o: NodeOptions = {}): Promise<AffinityNode> {
  const config = resolveConfig(input);
  const keyring = o.keyring ?? (config.cluster.keyFile ? loadKeyFile(config.cluster.keyFile) : undefined);
  if (!keyring) throw new Error('createNode: no keyring (give options.keyring or cluster.keyFile)');
  const node = new AffinityNode(config, keyring, o.logger ?? silent, o.bootEpoch ?? Math.floor(Date.now() / 1000), o.notifier);
  node.configFile = o.configFile;
  return node.start();
}
