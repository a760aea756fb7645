// The connection to Redis, standalone or a Redis Cluster, through node-redis
// (`@redis/client`; docs/sites.md, "Why node-redis"): RESP3 with key
// tracking in every connection's handshake (tracking.ts), AUTH with an ACL
// user or a password, TLS, reconnection with back-off, and no offline
// queue: a command while disconnected fails at once instead of waiting, so
// no call ever waits for a connection. Scripts run with EVALSHA (EVAL when
// the server does not have them yet, e.g. after a restart), one key each.
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  createCluster,
  ErrorReply,
  ReconnectStrategyError,
  RESP_TYPES,
  RootNodesUnavailableError,
  SocketClosedUnexpectedlyError,
  type RedisArgument,
  type RedisClientOptions,
  type RedisClientType,
  type RedisClusterType,
} from '@redis/client';

import calculateSlot from 'cluster-key-slot';

import { type Backoff, backoffMs } from './backoff';
import type { Script } from './scripts';
import type { SiteSecrets } from './site-secrets';
import type { RedisMode } from './sites-config';
import { TrackingProvider, type TrackingHooks } from './tracking';

export interface RedisConnectionOptions {
  readonly mode: RedisMode;
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username?: string;
  readonly secrets: SiteSecrets;
  readonly keyPrefix: string;
  readonly connectTimeoutMs: number;
  readonly retry: Backoff;
  /** CLIENT SETNAME, so that an operator sees which node a connection is (CLIENT LIST). */
  readonly clientName?: string;
  /** Commands waiting in one connection's queue before more are refused (a hung server). */
  readonly queueCapacity?: number;
}

export interface ConnectionHooks extends TrackingHooks {
  /** A connection-level failure (refused, reset, TLS, AUTH), for the state and the log. */
  failed(reason: string): void;
  /** A connection became ready (tracking is on): a good moment to probe. */
  ready(): void;
}

/** How a failed command failed: the connection (Redis unreachable or unusable), or the server said no. */
export type FailureKind = 'connection' | 'server';

const UNAVAILABLE_REPLY = /^(CLUSTERDOWN|LOADING|MASTERDOWN|READONLY|NOAUTH|WRONGPASS)\b/;

export function failureKind(e: unknown): FailureKind {
  if (e instanceof ErrorReply) return UNAVAILABLE_REPLY.test(e.message) ? 'connection' : 'server';
  return 'connection';
}

export function describeFailure(e: unknown): string {
  if (e instanceof ClientOfflineError || e instanceof ClientClosedError) return 'not connected';
  if (e instanceof SocketClosedUnexpectedlyError) return 'connection lost';
  if (e instanceof ConnectionTimeoutError) return 'connect timed out';
  if (e instanceof RootNodesUnavailableError) return 'no cluster node reachable';
  if (e instanceof ReconnectStrategyError) return describeFailure(e.originalError);
  const err = e as NodeJS.ErrnoException;
  return err?.message ? (err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message) : String(e);
}

const BUFFERS = { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.SIMPLE_STRING]: Buffer } as const;

type Client = RedisClientType<{}, {}, {}, 3, {}>; // eslint-disable-line @typescript-eslint/no-empty-object-type
type Cluster = RedisClusterType<{}, {}, {}, 3, {}>; // eslint-disable-line @typescript-eslint/no-empty-object-type

export class RedisConnection {
  private client?: Client;
  private cluster?: Cluster;
  private closed = false;
  /** The cluster client's first discovery is done: slots and masters are known. */
  private clusterReady = false;
  private connectAttempt = 0;
  private connectTimer?: NodeJS.Timeout;
  private readonly tracking: TrackingProvider;

  constructor(private readonly o: RedisConnectionOptions, private readonly hooks: ConnectionHooks) {
    this.tracking = new TrackingProvider(o.keyPrefix, hooks);
  }

  private clientOptions(): RedisClientOptions {
    const t = this.o.secrets.tls;
    const socket = {
      connectTimeout: this.o.connectTimeoutMs,
      reconnectStrategy: (retries: number) => (this.closed ? false : backoffMs(this.o.retry, retries)),
      ...(t ? { tls: true as const, ca: t.ca, cert: t.cert, key: t.key, servername: t.serverName } : {}),
    };
    return {
      socket,
      username: this.o.username || undefined,
      password: this.o.secrets.password,
      name: this.o.clientName,
      disableOfflineQueue: true,
      disableClientInfo: true,
      maintNotifications: 'disabled',
      commandsQueueMaxLength: this.o.queueCapacity ?? 100_000,
    } as RedisClientOptions;
  }

  /** Connects in the background; failures go to hooks.failed, and it keeps trying with back-off until close(). */
  start(): void {
    if (this.o.mode === 'standalone') {
      const n = this.o.nodes[0];
      const base = this.clientOptions();
      const c = createClient({ ...base, socket: { ...base.socket, host: n.host, port: n.port }, RESP: 3, clientSideCache: this.tracking } as RedisClientOptions) as unknown as Client;
      c.on('error', (e: unknown) => this.hooks.failed(describeFailure(e)));
      c.on('ready', () => this.hooks.ready());
      this.client = c;
      // node-redis retries the first connection by itself (reconnectStrategy)
      c.connect().catch((e: unknown) => this.hooks.failed(describeFailure(e)));
      return;
    }
    this.connectCluster();
  }

  // A cluster client gives up when no seed node answers: try again with back-off.
  private connectCluster(): void {
    if (this.closed) return;
    const base = this.clientOptions();
    const cl = createCluster({
      rootNodes: this.o.nodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
      defaults: base,
      RESP: 3,
      clientSideCache: this.tracking,
    } as never) as unknown as Cluster;
    cl.on('error', (e: unknown) => this.hooks.failed(describeFailure(e)));
    cl.on('node-error', (e: unknown, node: { host?: string; port?: number }) => this.hooks.failed(`${node?.host}:${node?.port}: ${describeFailure(e)}`));
    // a node client that comes back after a reconnection: probe (the first ones come before the slots are known)
    cl.on('node-ready', () => this.clusterReady && this.hooks.ready());
    this.cluster = cl;
    this.clusterReady = false;
    cl.connect().then(
      () => {
        this.connectAttempt = 0;
        this.clusterReady = true;
        if (this.closed) cl.destroy();
        else this.hooks.ready();
      },
      (e: unknown) => {
        this.hooks.failed(describeFailure(e));
        if (this.cluster === cl) this.cluster = undefined;
        try {
          cl.destroy();
        } catch {
          /* never opened */
        }
        if (!this.closed) this.connectTimer = setTimeout(() => this.connectCluster(), backoffMs(this.o.retry, this.connectAttempt++));
      },
    );
  }

  private send(key: string | undefined, args: RedisArgument[]): Promise<unknown> {
    if (this.client) return this.client.sendCommand(args, { typeMapping: BUFFERS });
    if (this.cluster) return this.cluster.sendCommand(key, false, args, { typeMapping: BUFFERS });
    return Promise.reject(new ClientOfflineError());
  }

  /** Runs a script on one key; replies with Buffers for strings. */
  async script(s: Script, key: string, args: readonly RedisArgument[]): Promise<unknown> {
    try {
      return await this.send(key, ['EVALSHA', s.sha1, '1', key, ...args]);
    } catch (e) {
      if (!(e instanceof ErrorReply && e.message.startsWith('NOSCRIPT'))) throw e;
      return this.send(key, ['EVAL', s.source, '1', key, ...args]);
    }
  }

  /**
   * `SET key value NX GET PX px`, and `PTTL key` pipelined right behind it
   * (one write, one round trip; Redis runs a connection's pipelined
   * commands back to back). Returns the value that was there (null: this one
   * is stored now) and the key's remaining lifetime after. Plain commands,
   * not a script: Redis 7.0 honours NOLOOP for them, so the writer is not
   * told of its own write. Not a MULTI: node-redis returns a transaction's
   * replies as text, and a record is octets.
   */
  async setNxGet(key: string, value: Buffer, px: number): Promise<[Buffer | null, number]> {
    const set = this.send(key, ['SET', key, value, 'NX', 'GET', 'PX', String(px)]);
    const pttl = this.send(key, ['PTTL', key]);
    // both settle before either is looked at (no unhandled rejection from the second)
    const [a, b] = await Promise.allSettled([set, pttl]);
    if (a.status === 'rejected') throw a.reason;
    return [(a.value as Buffer | null) ?? null, b.status === 'fulfilled' ? Number(b.value) : -2];
  }

  /** A plain command on one key (the benchmark's bare SET NX). */
  command(key: string, args: readonly RedisArgument[]): Promise<unknown> {
    return this.send(key, [...args]);
  }

  /**
   * PING every server (every master of a cluster), then run a script on a
   * key each one serves: a master that answers PING but cannot serve its
   * keys (CLUSTERDOWN while it rejoins, an ACL that refuses the scripts)
   * fails the probe. Rejects on the first failure.
   */
  async probe(script: Script, prefix: string): Promise<void> {
    if (this.client) {
      await this.client.sendCommand(['PING']);
      await this.script(script, `${prefix}probe`, []);
      return;
    }
    const cl = this.cluster;
    if (!cl || !cl.isOpen || !this.clusterReady) throw new ClientOfflineError();
    await Promise.all(
      cl.masters.map(async (m) => {
        await (await cl.nodeClient(m)).sendCommand(['PING']);
        await this.script(script, this.probeKey(prefix, m.address), []);
      }),
    );
  }

  private readonly probeKeys = new Map<string, string>();

  /** A key under the prefix whose slot this master serves now. */
  private probeKey(prefix: string, address: string): string {
    const cl = this.cluster!;
    const known = this.probeKeys.get(address);
    if (known && cl.getSlotMaster(calculateSlot(known))?.address === address) return known;
    for (let n = 0; n < 100_000; n++) {
      const k = `${prefix}probe:${n}`;
      if (cl.getSlotMaster(calculateSlot(k))?.address === address) {
        this.probeKeys.set(address, k);
        return k;
      }
    }
    throw new Error(`no slot of ${address} found`);
  }

  /**
   * SCRIPT LOAD on every server (every master), so that the first calls
   * after a (re)start of Redis do not pay the NOSCRIPT round trip. Failures
   * are left to the EVAL fallback.
   */
  async loadScripts(scripts: readonly Script[]): Promise<void> {
    const clients: Client[] = [];
    if (this.client) clients.push(this.client);
    else if (this.cluster?.isOpen) {
      const cl = this.cluster;
      clients.push(...(await Promise.all(cl.masters.map((m) => cl.nodeClient(m)))));
    }
    await Promise.all(clients.flatMap((c) => scripts.map((s) => c.sendCommand(['SCRIPT', 'LOAD', s.source]))));
  }

  /** The servers this node talks to, and whether each connection is ready now. */
  servers(): { address: string; ready: boolean }[] {
    if (this.client) {
      const n = this.o.nodes[0];
      return [{ address: `${n.host}:${n.port}`, ready: this.client.isReady }];
    }
    if (this.cluster?.isOpen) return this.cluster.masters.map((m) => ({ address: m.address, ready: !!m.client?.isReady }));
    return this.o.nodes.map((n) => ({ address: `${n.host}:${n.port}`, ready: false }));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.connectTimer);
    for (const c of [this.client, this.cluster]) {
      try {
        c?.destroy();
      } catch {
        /* not open */
      }
    }
    this.client = undefined;
    this.cluster = undefined;
  }
}
