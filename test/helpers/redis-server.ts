// Real redis-server processes for the site tests, started and always
// stopped by the test: one server (optionally with a password, ACL users,
// TLS), or a Redis Cluster of masters made with `redis-cli --cluster
// create`. Nothing is persisted (no RDB, no AOF), so a restart is a server
// that comes back empty. Servers listen on loopback unless told otherwise
// (a network namespace's address, with `prefix` running them inside it).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { createClient, type RedisClientType, RESP_TYPES } from '@redis/client';

import { haveCommand } from './require';

type PlainClient = RedisClientType<{}, {}, {}, 2, {}>; // eslint-disable-line @typescript-eslint/no-empty-object-type

export function redisUnavailable(): string | undefined {
  if (!haveCommand('redis-server')) return 'redis-server is not installed: apt-get install redis-server';
  if (!haveCommand('redis-cli')) return 'redis-cli is not installed: apt-get install redis-tools';
  return undefined;
}

/** Does this redis-server speak TLS (Debian 12's is built with it)? */
export function redisHasTls(): boolean {
  try {
    return /libssl/.test(execFileSync('ldd', [execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim()], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

/** A free port whose cluster-bus port (+10000) is free too. */
export async function freeRedisPort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20000 + Math.floor(Math.random() * 25000);
    if ((await portFree(p, host)) && (await portFree(p + 10000, host))) return p;
  }
  throw new Error('no free port pair found for redis-server');
}

export interface RedisTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  /** Ask clients for a certificate (tls-auth-clients yes). */
  readonly authClients: boolean;
}

export interface RedisServerOptions {
  /** Working directory (cluster config files live here). */
  readonly dir: string;
  readonly host?: string;
  readonly port?: number;
  /** Extra configuration, as command-line directives: ['--requirepass', 'x']. */
  readonly args?: readonly string[];
  readonly tls?: RedisTlsFiles;
  readonly cluster?: boolean;
  /** Run under this command, e.g. ['ip', 'netns', 'exec', NS]. */
  readonly prefix?: readonly string[];
  /** For redis-cli: AUTH as this user / password. */
  readonly auth?: { readonly user?: string; readonly password: string };
}

export class RedisServer {
  proc?: ChildProcess;
  log: string[] = [];

  private constructor(readonly o: RedisServerOptions, readonly host: string, readonly port: number) {}

  static async start(o: RedisServerOptions): Promise<RedisServer> {
    const host = o.host ?? '127.0.0.1';
    const s = new RedisServer(o, host, o.port ?? (await freeRedisPort(host)));
    await s.launch();
    return s;
  }

  private args(): string[] {
    const a = ['--bind', this.host, '--save', '', '--appendonly', 'no', '--dir', this.o.dir, '--loglevel', 'notice', '--protected-mode', 'no'];
    if (this.o.tls) {
      const t = this.o.tls;
      a.push('--port', '0', '--tls-port', String(this.port), '--tls-cert-file', t.cert, '--tls-key-file', t.key, '--tls-ca-cert-file', t.ca, '--tls-auth-clients', t.authClients ? 'yes' : 'no');
      if (this.o.cluster) a.push('--tls-cluster', 'yes');
    } else {
      a.push('--port', String(this.port));
    }
    if (this.o.cluster) a.push('--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${this.port}.conf`, '--cluster-node-timeout', '2000');
    return [...a, ...(this.o.args ?? [])];
  }

  /** Starts the process and resolves when it accepts connections. */
  async launch(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true });
    const cmd = [...(this.o.prefix ?? []), 'redis-server', ...this.args()];
    const p = spawn(cmd[0], cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = p;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`redis-server :${this.port} did not start: ${this.log.slice(-20).join('\n')}`)), 20_000);
      for (const stream of [p.stdout!, p.stderr!]) {
        createInterface({ input: stream }).on('line', (l) => {
          this.log.push(l);
          if (/Ready to accept connections/.test(l)) {
            clearTimeout(t);
            resolve();
          }
        });
      }
      p.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`redis-server :${this.port} exited with ${code}: ${this.log.slice(-20).join('\n')}`));
      });
    });
  }

  get running(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Ends the process (SIGKILL: no goodbye to clients) and waits for it. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }

  /** Stops answering without closing any connection (a hung server), until resume(). */
  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  /** Killed and started again on the same port: it comes back empty. */
  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  private cliArgs(): string[] {
    const a = [...(this.o.prefix ?? []), 'redis-cli', '-h', this.host, '-p', String(this.port)];
    if (this.o.tls) a.push('--tls', '--cacert', this.o.tls.ca, ...(this.o.tls.authClients ? ['--cert', this.o.tls.cert, '--key', this.o.tls.key] : []));
    if (this.o.auth) a.push(...(this.o.auth.user ? ['--user', this.o.auth.user] : []), '--pass', this.o.auth.password, '--no-auth-warning');
    return a;
  }

  /** redis-cli against this server; returns its output. */
  cli(...args: string[]): string {
    const a = this.cliArgs();
    return execFileSync(a[0], [...a.slice(1), ...args], { encoding: 'utf8' });
  }

  /** redis-cli's output as octets (values that are not text). */
  cliBuffer(...args: string[]): Buffer {
    const a = this.cliArgs();
    return execFileSync(a[0], [...a.slice(1), ...args]);
  }

  /**
   * Many keys' values as octets, through a plain client of its own (not the
   * code under test), one MGET per 500 keys.
   */
  async values(keys: readonly string[]): Promise<(Buffer | null)[]> {
    const c = createClient({
      socket: { host: this.host, port: this.port, ...(this.o.tls ? { tls: true, ca: readFileSync(this.o.tls.ca), cert: readFileSync(this.o.tls.cert), key: readFileSync(this.o.tls.key) } : {}) },
      username: this.o.auth?.user,
      password: this.o.auth?.password,
    }).withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
    await c.connect();
    try {
      const out: (Buffer | null)[] = [];
      for (let i = 0; i < keys.length; i += 500) out.push(...((await c.mGet(keys.slice(i, i + 500))) as (Buffer | null)[]));
      return out;
    } finally {
      c.destroy();
    }
  }

  /** A plain client of its own (not the code under test), for checks that must be quick: the caller destroys it. */
  async plainClient(): Promise<PlainClient> {
    const c: PlainClient = createClient({
      socket: { host: this.host, port: this.port, ...(this.o.tls ? { tls: true, ca: readFileSync(this.o.tls.ca), cert: readFileSync(this.o.tls.cert), key: readFileSync(this.o.tls.key) } : {}) },
      username: this.o.auth?.user,
      password: this.o.auth?.password,
    });
    await c.connect();
    return c;
  }

  /** A key's value as octets (null: no such key). */
  getRaw(key: string): Buffer | null {
    if (this.cli('EXISTS', key).trim() !== '1') return null;
    const a = this.cliArgs();
    const out = execFileSync(a[0], [...a.slice(1), '--raw', 'GET', key]);
    return out.subarray(0, out.length - 1); // redis-cli ends the value with a newline
  }
}

/** A Redis Cluster of `masters` masters and no replicas. */
export class RedisClusterServers {
  private constructor(readonly servers: RedisServer[]) {}

  static async start(o: Omit<RedisServerOptions, 'cluster' | 'port'>, masters = 3): Promise<RedisClusterServers> {
    const servers: RedisServer[] = [];
    try {
      for (let i = 0; i < masters; i++) servers.push(await RedisServer.start({ ...o, dir: join(o.dir, `cluster-${i}`), cluster: true }));
      const c = new RedisClusterServers(servers);
      c.servers[0].cli('--cluster', 'create', ...servers.map((s) => `${s.host}:${s.port}`), '--cluster-replicas', '0', '--cluster-yes');
      await c.waitHealthy();
      return c;
    } catch (e) {
      for (const s of servers) await s.kill();
      throw e;
    }
  }

  /** Until every master says cluster_state:ok and knows all the others. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const ok = this.servers.every((s) => {
        try {
          return /cluster_state:ok/.test(s.cli('cluster', 'info')) && s.cli('cluster', 'nodes').trim().split('\n').length === this.servers.length;
        } catch {
          return false;
        }
      });
      if (ok) return;
      if (Date.now() > until) throw new Error('the Redis Cluster did not become healthy');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  get nodes(): { host: string; port: number }[] {
    return this.servers.map((s) => ({ host: s.host, port: s.port }));
  }

  async stop(): Promise<void> {
    for (const s of this.servers) await s.kill();
  }
}
