// An affinityd node: the native table and responder, the router over them,
// endpoint selection and the front ends, wired from one configuration.
// This is the library entry point (src/index.ts re-exports it).
import { existsSync } from 'node:fs';

import { checkedClientKeyBytes, checkedClientKeysInto, type ClientKey, parseClientKey } from '../codec/client-key';
import type { Keyring } from '../codec/frame';
import { NativeDirectory } from '../directory/native-directory';
import { type Route, Router } from '../directory/router';
import { Frontend, type Logger } from '../frontend/frontend';
import { native, type NativeAffinityTable, type NativeResponder } from '../native';
import { EndpointSet } from '../selection/endpoint-set';
import { HealthChecker } from '../selection/health-checker';
import { createPolicy } from '../selection/policy';
import { NativeLink } from '../transport/native-link';
import { type Config, type ConfigInput, loadKeyFile, resolveConfig } from './config';
import { loadSnapshot, writeSnapshot } from './snapshot';
import { AntiEntropy } from '../cluster/anti-entropy';
import { BulkSync, type BulkSyncOutcome } from '../cluster/bulk-sync';
import { EntryApplier } from '../cluster/entry-applier';
import { SyncServer } from '../cluster/sync-server';
import { SyncSessions } from '../cluster/sync-sessions';
import { Withdrawals } from '../cluster/withdrawals';

export interface NodeOptions {
  /** The cluster keyring; default: read from cluster.keyFile. */
  keyring?: Keyring;
  /** Structured logger (pino or compatible); default: silent. */
  logger?: Logger;
  /** Default: the start time in seconds, which grows across restarts. */
  bootEpoch?: number;
}

const silent: Logger = { info() {}, warn() {}, debug() {} };

export class AffinityNode {
  readonly table: NativeAffinityTable;
  readonly responder: NativeResponder;
  readonly directory: NativeDirectory;
  readonly link: NativeLink;
  readonly router: Router;
  readonly endpoints: EndpointSet;
  readonly frontends: Frontend[];
  readonly health?: HealthChecker;
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

  /** Use createNode(). */
  constructor(readonly config: Config, keyring: Keyring, private readonly log: Logger, bootEpoch: number) {
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
      {
        nodeId: c.node.id,
        queryCount: c.query.count,
        queryIntervalMs: c.query.intervalMs,
        queryTimeoutMs: c.query.timeoutMs,
        directQuery: c.query.direct,
        directTimeoutMs: c.query.directTimeoutMs,
        entryTtlSeconds: c.directory.entryTtlSeconds,
        failureHoldDownMs: c.selection.failureHoldDownMs,
      },
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

  /** Stops the front ends (after drainMs for open calls), then the responder. */
  async close(drainMs = 0): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.snapshotTimer);
    this.health?.stop();
    this.antiEntropy?.stop();
    this.bulkSync?.stop();
    this.sessions.cancelAll();
    await Promise.all(this.frontends.map((f) => f.close(drainMs)));
    this.snapshot();
    this.responder.close();
    this.log.info({ node: this.config.node.id }, 'node closed');
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
    } catch (e) {
      await this.close();
      throw e;
    }
    this.log.info({ node: this.config.node.id, group: this.config.cluster.group, port: this.config.cluster.port, unicast: this.address() }, 'node started');
    return this;
  }
}

/** Validates the configuration, opens the sockets, starts the front ends. */
export async function createNode(input: ConfigInput | Config, o: NodeOptions = {}): Promise<AffinityNode> {
  const config = resolveConfig(input);
  const keyring = o.keyring ?? (config.cluster.keyFile ? loadKeyFile(config.cluster.keyFile) : undefined);
  if (!keyring) throw new Error('createNode: no keyring (give options.keyring or cluster.keyFile)');
  const node = new AffinityNode(config, keyring, o.logger ?? silent, o.bootEpoch ?? Math.floor(Date.now() / 1000));
  return node.start();
}
