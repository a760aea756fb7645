// A cluster of `affinityd run` processes in network namespaces (netns.ts):
// nodes on hosts 0..n-1, endpoints on host n, clients (and anything else a
// test runs) on the hosts after. Each node has a control socket in the test's
// directory (Unix sockets do not care about network namespaces), so the test
// reads every node's table and counters the way an operator would.
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { request } from '../../src/control/client';
import type { EntryView } from '../../src/control/protocol';
import type { Lan } from './netns';

/** Hosts in namespaces: one LAN (netns.ts Lan), or several sites joined by a router (netns-sites.ts SitesNet). */
export type Hosts = Pick<Lan, 'hosts' | 'exec'>;

const root = join(__dirname, '..', '..');
export const tsx = (script: string): string[] => [process.execPath, '--import', 'tsx', join(root, script)];

export const GROUP = '239.255.77.78';
export const PORT = 7447;
export const UNICAST_PORT = 7448;
export const FRONT_PORT = 1723;

/** Resolves when a line matches; rejects if the process exits first. */
export function started(child: ChildProcess, pattern: RegExp, what: string, timeoutMs = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const t = setTimeout(() => reject(new Error(`${what} did not start: ${seen.slice(-1500)}`)), timeoutMs);
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (l) => {
        seen += l + '\n';
        if (pattern.test(l)) {
          clearTimeout(t);
          resolve();
        }
      });
    }
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${what} exited with ${code}: ${seen.slice(-1500)}`));
    });
  });
}

export type Bundle = { key: string; landed: string[] };

export class NetnsCluster {
  readonly procs: (ChildProcess | undefined)[] = [];
  readonly logs: string[][] = [];
  readonly others: ChildProcess[] = [];
  readonly keyFile: string;

  constructor(readonly lan: Hosts, readonly dir: string, readonly nodes: number, public yaml: (i: number) => string = () => '') {
    this.keyFile = join(dir, 'cluster.key');
    this.setKeys(`1 ${'5e'.repeat(32)} send`);
  }

  get epHost(): string {
    return this.lan.hosts[this.nodes].ipv4;
  }

  setKeys(...lines: string[]): void {
    writeFileSync(this.keyFile, lines.join('\n') + '\n');
    chmodSync(this.keyFile, 0o600);
  }

  control(i: number): string {
    return join(this.dir, `node${i + 1}.sock`);
  }

  front(i: number): string {
    return `${this.lan.hosts[i].ipv4}:${FRONT_PORT}`;
  }

  private endpointServer?: ChildProcess;
  private endpointLines?: AsyncIterator<string>;

  async startEndpoints(): Promise<void> {
    const h = this.nodes;
    const eps = spawn(this.lan.exec(h)[0], [...this.lan.exec(h).slice(1), ...tsx('test/fixtures/endpoint-server.ts'), this.epHost, 'lns-a:1701', 'lns-b:1702', 'lns-c:1703'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.others.push(eps);
    this.endpointServer = eps;
    this.endpointLines = createInterface({ input: eps.stdout! })[Symbol.asyncIterator]();
    await started(eps, /^ready$/, 'endpoints');
  }

  /** What the endpoints see now: clients whose live links are on more than one endpoint, and every client ever split. */
  async endpointReport(): Promise<{ splitNow: string[]; everSplit: string[] }> {
    this.endpointServer!.stdin!.write('report\n');
    for (;;) {
      const { value, done } = await this.endpointLines!.next();
      if (done) throw new Error('the endpoint server ended');
      if (value.startsWith('{')) return JSON.parse(value);
    }
  }

  /** Long-lived bundles (test/fixtures/held-bundles.ts) from the client host; stop() ends them and resolves with where their links are. */
  holdBundles(o: { clients: number; links: number; prefix: string; gapMs: number; startGapMs: number; redialMs: number; keyBase?: number; frontOf?: number[] }): {
    status: () => Promise<{ key: string; landed: string[]; redials: number }[]>;
    stop: () => Promise<{ key: string; landed: string[]; redials: number }[]>;
  } {
    const h = this.nodes + 1;
    const fronts = Array.from({ length: this.nodes }, (_, i) => this.front(i));
    const p = spawn(this.lan.exec(h)[0], [...this.lan.exec(h).slice(1), ...tsx('test/fixtures/held-bundles.ts'), JSON.stringify({ ...o, fronts })], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.others.push(p);
    const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
    const next = async () => JSON.parse((await lines.next()).value);
    return {
      status: () => {
        p.stdin!.write('status\n');
        return next();
      },
      stop: () => {
        p.stdin!.end();
        return next();
      },
    };
  }

  configFile(i: number): string {
    const h = this.lan.hosts[i];
    const file = join(this.dir, `node${i + 1}.yaml`);
    writeFileSync(
      file,
      [
        `node: { id: ${i + 1} }`,
        `cluster: { group: ${GROUP}, port: ${PORT}, unicastPort: ${UNICAST_PORT}, interface: ${h.ipv4}, keyFile: ${this.keyFile} }`,
        'endpoints:',
        `  - { name: lns-a, address: ${this.epHost}, port: 1701 }`,
        `  - { name: lns-b, address: ${this.epHost}, port: 1702 }`,
        `  - { name: lns-c, address: ${this.epHost}, port: 1703 }`,
        'frontends:',
        // the test's clients share the machine: when it is busy their preamble comes late, and that is
        // not the silent client identityTimeoutMs guards against (test/frontend tests that one)
        `  - { listen: { address: ${h.ipv4}, port: ${FRONT_PORT} }, identity: preamble, identityTimeoutMs: 120000 }`,
        `control: { socket: ${this.control(i)} }`,
        this.yaml(i),
      ].join('\n'),
    );
    return file;
  }

  /** Starts node i and resolves once it is ready (bulk sync done; with the sync off, once it says it started). */
  async start(i: number, ready: RegExp = /"msg":"bulk sync (done|timed out)/): Promise<void> {
    const cfg = this.configFile(i);
    const p = spawn(this.lan.exec(i)[0], [...this.lan.exec(i).slice(1), ...tsx('src/cli/main.ts'), 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs[i] = p;
    const log: string[] = (this.logs[i] = []);
    createInterface({ input: p.stdout! }).on('line', (l) => log.push(l));
    await started(p, ready, `node ${i + 1}`, 120_000); // a bound for a hang, not a speed
  }

  kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }

  stats(i: number): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return request(this.control(i), { cmd: 'show-stats' });
  }

  async entries(i: number): Promise<Map<string, EntryView>> {
    const r = (await request(this.control(i), { cmd: 'show-entries', limit: 10_000_000 })) as { entries: EntryView[] };
    return new Map(r.entries.map((e) => [e.client, e]));
  }

  /**
   * Clients whose entries differ between the nodes (endpoint or version);
   * of those, the ones held with different endpoints (split bundles); and
   * how many clients some node lacks.
   */
  async disagreement(): Promise<{ differing: string[]; endpoints: string[]; missing: number }> {
    const tables = await Promise.all(Array.from({ length: this.nodes }, (_, i) => this.entries(i)));
    const all = new Set(tables.flatMap((t) => [...t.keys()]));
    const differing: string[] = [];
    const endpoints: string[] = [];
    let missing = 0;
    for (const c of all) {
      const views = tables.map((t) => t.get(c));
      if (views.some((v) => !v)) missing++;
      const have = views.filter((v): v is EntryView => !!v);
      if (new Set(have.map((v) => `${v.endpoint}|${v.version}|${v.originNode}`)).size > 1) differing.push(c);
      if (new Set(have.map((v) => v.endpoint)).size > 1) endpoints.push(c);
    }
    return { differing, endpoints, missing };
  }

  /** Runs bundle-client.ts in the clients' host; timeoutMs only catches a hang (a busy machine is slow, not wrong). */
  bundles(o: { clients: number; links: number; prefix: string; gapMs: number; startGapMs: number; sequential?: boolean; keyBase?: number; fronts?: string[] }, timeoutMs = 900_000): Bundle[] {
    const clientHost = this.nodes + 1;
    const fronts = o.fronts ?? Array.from({ length: this.nodes }, (_, i) => this.front(i));
    const r = spawnSync(this.lan.exec(clientHost)[0], [...this.lan.exec(clientHost).slice(1), ...tsx('test/fixtures/bundle-client.ts'), JSON.stringify({ ...o, fronts })], {
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 256 * 1024 * 1024,
    });
    if (r.status !== 0) throw new Error(`bundle client: ${r.status} ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  nft(i: number, ...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.lan.hosts[i].ns, 'nft', ...args], { encoding: 'utf8' });
  }

  /** Drops pct % of the cluster's datagrams arriving at every node. */
  addLoss(pct: number): void {
    for (let i = 0; i < this.nodes; i++) {
      this.nft(i, 'add', 'table', 'inet', 'loss');
      this.nft(i, 'add', 'chain', 'inet', 'loss', 'in', '{ type filter hook input priority 0; }');
      this.nft(i, 'add', 'rule', 'inet', 'loss', 'in', 'udp', 'dport', `{ ${PORT}, ${UNICAST_PORT} }`, 'numgen', 'random', 'mod', '100', '<', String(pct), 'counter', 'drop');
    }
  }

  /** Deletes an nftables table on every node; returns the packets its counter saw. */
  private dropTable(name: string): number {
    let dropped = 0;
    for (let i = 0; i < this.nodes; i++) {
      dropped += Number(/packets (\d+)/.exec(this.nft(i, 'list', 'table', 'inet', name))?.[1] ?? 0);
      this.nft(i, 'delete', 'table', 'inet', name);
    }
    return dropped;
  }

  /** Removes the loss rules; returns the datagrams they dropped. */
  removeLoss(): number {
    return this.dropTable('loss');
  }

  /** Cuts the cluster in two: no UDP between a node of `side` and one not in it. */
  partition(side: number[]): void {
    for (let i = 0; i < this.nodes; i++) {
      const others = Array.from({ length: this.nodes }, (_, j) => j).filter((j) => side.includes(j) !== side.includes(i)).map((j) => this.lan.hosts[j].ipv4);
      this.nft(i, 'add', 'table', 'inet', 'cut');
      this.nft(i, 'add', 'chain', 'inet', 'cut', 'in', '{ type filter hook input priority 0; }');
      this.nft(i, 'add', 'rule', 'inet', 'cut', 'in', 'ip', 'saddr', `{ ${others.join(', ')} }`, 'meta', 'l4proto', 'udp', 'counter', 'drop');
    }
  }

  /** Ends the partition; returns the datagrams it dropped. */
  heal(): number {
    return this.dropTable('cut');
  }

  stopAll(): void {
    for (const p of [...this.procs, ...this.others]) p?.kill('SIGKILL');
  }
}

/** Bundles whose links all landed, on more than one endpoint (a link that failed is a failure, counted apart). */
export const splits = (b: Bundle[]): Bundle[] => b.filter((x) => x.landed.every((l) => /^lns-[abc]$/.test(l)) && new Set(x.landed).size > 1);
export const failures = (b: Bundle[]): string[] => b.flatMap((x) => x.landed).filter((l) => !/^lns-[abc]$/.test(l));
