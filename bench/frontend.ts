// Connections through a node's front end, against connecting to the
// endpoint directly and against HAProxy with a source stick table, in one
// run and with the same client: new connections per second (connect, read
// the endpoint's greeting, close; 8 at a time), their latency, and bulk
// throughput on one connection (256 MiB up, echoed back down).
//
// A fourth path, a bare Node splice (bench/fixtures/frontend-splice.ts:
// accept, connect, pipe), shows what any front end on Node's net reaches here.
// The paths are measured in interleaved rounds (direct, Node splice,
// affinityd, HAProxy, then again), so a burst of other work on this shared machine
// lands on all of them; each ratio is taken within a round, and the median
// and range over the rounds are reported. For each path it also reports the
// CPU time per connection and per MiB of every process (from /proc): the
// proxy, the endpoint and this client, which says where the time goes and
// whether the client is the bottleneck.
//
// Each bulk transfer is made by a fresh client process
// (bench/fixtures/frontend-bulk-client.ts), after the proxy and the endpoint
// are idle again (settle()). This process has just made thousands of
// connections; as the bulk client it spent 900-2,400 us of CPU per MiB
// against 740-1,200 for a fresh process in the same kind of run (and
// 310-410 after setup phases of 0.3 s), was the bottleneck, and single
// rounds ranged 0.5x-1.2x HAProxy within one run (0.81-0.98x with the fresh
// client). For the endpoint and the client it also reports KiB per read and
// per write system call.
//
// The node runs from the compiled dist/ (built here if a source is newer),
// with the Node options of the shipped unit (contrib/systemd/affinityd.service),
// as `affinityd run` runs; HAProxy is tuned for the job as a user would tune
// it for a TCP relay: kernel splicing (`option splice-auto`) and 64 KiB
// buffers (`tune.bufsize 65536`), threads as many as cores (its default).
// docs/design.md ("Front ends") has the measurements behind these choices.
// Neither proxy writes a log line: HAProxy has no `log` target, and the node
// keeps its default access log (it builds each call's line) into a silent
// logger. Every connection comes from 127.0.0.1: one client to the node
// (peer-address identity) and one source to HAProxy's stick table, so each
// sends all of them to one endpoint, as the direct path and the bare splice
// do (the same endpoint process); same client, payload and concurrency.
// With --compare-node-flags="FLAGS", a second node started with those Node
// options is measured in the same rounds ("affinityd+flags"), to show what
// a change of the unit would do. With --compare-splice-node, a second node
// whose front end carries calls through Node's sockets (`splice: node`) is
// measured in the same rounds ("affinityd-splice-node"), against the default
// kernel splice.
// Usage: tsx bench/frontend.ts [seconds per measurement] [rounds] [--compare-node-flags="..."] [--compare-splice-node]
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';

import { fmt, ioCalls, writeResult } from './lib';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const seconds = Number(positional[0] ?? 3);
const rounds = Number(positional[1] ?? (seconds < 2 ? 2 : 4));
const compareFlags = process.argv
  .find((a) => a.startsWith('--compare-node-flags='))
  ?.slice('--compare-node-flags='.length)
  .split(/\s+/)
  .filter(Boolean);
const compareSpliceNode = process.argv.includes('--compare-splice-node');
const CONCURRENCY = 8;
const BULK_OCTETS = 256 << 20;
const root = join(__dirname, '..');

function start(cmd: string[], ready: RegExp, env?: Record<string, string>): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd[0], cmd.slice(1), { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => ready.test(l) && resolve({ child, line: l }));
    child.once('exit', (c) => reject(new Error(`${cmd.join(' ')} exited ${c}`)));
  });
}

/** Compiles dist/ if any source of the node or the fixtures is newer than its output. */
function ensureCompiled(): void {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) {
        const out = join(root, 'dist', relative(root, p).replace(/\.ts$/, '.js'));
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(p).mtimeMs) stale.push(relative(root, p));
      }
    }
  };
  walk(join(root, 'src'));
  walk(join(root, 'bench', 'fixtures'));
  if (!stale.length) return;
  console.log(`compiling dist/ (${stale.length} sources newer than their output, e.g. ${stale[0]})`);
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
}

/** The Node options in the shipped unit's ExecStart (between the node binary and the script). */
function unitNodeFlags(): string[] {
  const unit = readFileSync(join(root, 'contrib', 'systemd', 'affinityd.service'), 'utf8');
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
  const words = line.trim().split(/\s+/).slice(1);
  const flags: string[] = [];
  for (const w of words) {
    if (!w.startsWith('-')) break;
    flags.push(w);
  }
  return flags;
}

/** CPU time (user + system) of a process so far, in microseconds; 0 where /proc is missing. */
function cpuUs(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) / 100) * 1e6; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return 0;
  }
}

function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

function oneConnection(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const s = connect({ host: '127.0.0.1', port });
    s.once('data', () => {
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      s.destroy();
      resolve(us);
    });
    s.once('error', reject);
  });
}

interface Setup {
  perSecond: number;
  p50us: number;
  p99us: number;
}

async function setupRate(port: number): Promise<Setup & { connections: number }> {
  for (let i = 0; i < 100; i++) await oneConnection(port); // warm
  const lat: number[] = [];
  const t0 = Date.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < end) lat.push(await oneConnection(port));
    }),
  );
  const elapsed = (Date.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { perSecond: Math.round(lat.length / elapsed), p50us: Math.round(lat[Math.floor(lat.length / 2)]), p99us: Math.round(lat[Math.floor(lat.length * 0.99)]), connections: lat.length };
}

interface Bulk {
  /** MiB/s through one connection, both directions counted (BULK_OCTETS up, the same echoed down). */
  mibps: number;
  /** the client's CPU over the transfer, and its read and write system calls */
  cpuUs: number;
  reads: number;
  writes: number;
}

/** One bulk transfer by a fresh client process (bench/fixtures/frontend-bulk-client.ts says why). */
function throughput(port: number): Promise<Bulk> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [join(root, 'dist/bench/fixtures/frontend-bulk-client.js'), String(port), String(BULK_OCTETS)], { timeout: 300_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`bulk client: ${stderr || err.message}`));
      resolve(JSON.parse(stdout) as Bulk);
    });
  });
}

interface PathRound {
  setup: Setup;
  throughputMiBps: number;
  /** CPU microseconds per connection (setup phase) and per MiB carried (bulk phase), by process. */
  cpuPerConnectionUs: { proxy: number; endpoint: number; client: number };
  cpuPerMiBUs: { proxy: number; endpoint: number; client: number };
  /**
   * KiB per read and per write system call of the endpoint and the client
   * during the bulk phase (the echo endpoint reads what the proxy writes to
   * it; small reads mean a proxy that passes octets on in small pieces, and
   * more CPU per MiB in the processes at either end).
   */
  kibPerCall: { endpointRead: number; endpointWrite: number; clientRead: number; clientWrite: number };
  /** How long the proxy and the endpoint took to be idle after the connections (settle()). */
  settleMs: number;
}

/**
 * Waits until the proxy and the endpoint are idle after the connections
 * (the last calls' ends, access-log lines and collections are done), so
 * that the bulk phase measures one connection's octets and not the tail of
 * the setup phase; that tail is charged to the connections (CPU per
 * connection is read after it). Idle: under 5 ms of CPU in 100 ms for both;
 * at most 3 s. Returns how long it took.
 */
async function settle(proxyPid: number | undefined, endpointPid: number): Promise<number> {
  const t0 = Date.now();
  let last = [cpuUs(proxyPid), cpuUs(endpointPid)];
  while (Date.now() - t0 < 3000) {
    await new Promise((r) => setTimeout(r, 100));
    const now = [cpuUs(proxyPid), cpuUs(endpointPid)];
    const busy = Math.max(now[0] - last[0], now[1] - last[1]);
    last = now;
    if (busy < 5000) break;
  }
  return Date.now() - t0;
}

async function measure(port: number, proxyPid: number | undefined, endpointPid: number): Promise<PathRound> {
  const c0 = [cpuUs(proxyPid), cpuUs(endpointPid), selfCpuUs()];
  const setup = await setupRate(port);
  const settleMs = await settle(proxyPid, endpointPid);
  const c1 = [cpuUs(proxyPid), cpuUs(endpointPid), selfCpuUs()];
  const io1 = ioCalls(endpointPid);
  const bulk = await throughput(port);
  const c2 = [cpuUs(proxyPid), cpuUs(endpointPid), selfCpuUs() + bulk.cpuUs];
  const io2 = ioCalls(endpointPid);
  const kib = (calls: number) => r2(BULK_OCTETS / 1024 / calls);
  const mib = (2 * BULK_OCTETS) / (1 << 20);
  const per = (a: number[], b: number[], n: number) => ({
    proxy: proxyPid ? Math.round((b[0] - a[0]) / n) : 0,
    endpoint: Math.round((b[1] - a[1]) / n),
    client: Math.round((b[2] - a[2]) / n),
  });
  const { connections, ...s } = setup;
  return { setup: s, throughputMiBps: Math.round(bulk.mibps), cpuPerConnectionUs: per(c0, c1, connections), cpuPerMiBUs: per(c1, c2, mib), kibPerCall: { endpointRead: kib(io2[0] - io1[0]), endpointWrite: kib(io2[1] - io1[1]), clientRead: kib(bulk.reads), clientWrite: kib(bulk.writes) }, settleMs };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
const r2 = (x: number) => Number(x.toFixed(2));

async function main(): Promise<void> {
  ensureCompiled();
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'affinityd-bench-'));
  try {
    // fixed ports stay below the ephemeral range (32768-60999 here), which
    // the client's thousands of connections cycle through
    const o = Math.floor(Math.random() * 500);
    const epPorts = [21100 + o, 21600 + o, 22100 + o];
    const eps = await start([process.execPath, 'dist/bench/fixtures/frontend-endpoint.js', '127.0.0.1', ...epPorts.map((p, i) => `ep${i}:${p}`)], /^ready$/);
    children.push(eps.child);
    const nodeFlags = unitNodeFlags();
    const startNode = async (flags: string[], env?: Record<string, string>) => {
      // a group of its own for each node: they are separate clusters with the same node id
      const group = `239.255.93.${1 + Math.floor(Math.random() * 250)}`;
      const n = await start([process.execPath, ...flags, 'dist/bench/fixtures/frontend-node.js', group, String(34000 + Math.floor(Math.random() * 1000)), '127.0.0.1', ...epPorts.map(String)], /^ready /, env);
      children.push(n.child);
      return n;
    };
    const node = await startNode(nodeFlags);
    const [, nodePort, decisionUs] = node.line.split(' ');
    const compared = compareFlags ? await startNode([...nodeFlags, ...compareFlags]) : undefined;
    const spliceNode = compareSpliceNode ? await startNode(nodeFlags, { AFFINITYD_BENCH_SPLICE: 'node' }) : undefined;
    const floor = await start([process.execPath, 'dist/bench/fixtures/frontend-splice.js', String(epPorts[0])], /^ready /);
    children.push(floor.child);
    let haproxy: { port: number; pid: number } | undefined;
    let haproxySkip = '';
    const hp = 23000 + Math.floor(Math.random() * 1000);
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 4000',
        '  tune.bufsize 65536',
        'defaults',
        '  mode tcp',
        '  option splice-auto',
        '  timeout connect 2s',
        '  timeout client 30s',
        '  timeout server 30s',
        'frontend calls',
        `  bind 127.0.0.1:${hp}`,
        '  default_backend eps',
        'backend eps',
        '  balance roundrobin',
        '  stick-table type ip size 1m expire 30m',
        '  stick on src',
        ...epPorts.map((p, i) => `  server ep${i} 127.0.0.1:${p}`),
        '',
      ].join('\n'),
    );
    try {
      const h = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      h.stderr!.on('data', (d) => (err += d));
      h.on('error', (e) => (err += e.message));
      children.push(h);
      for (let i = 0; ; i++) {
        try {
          await oneConnection(hp);
          break;
        } catch (e) {
          if (i >= 30) throw new Error(`${(e as Error).message}; haproxy says: ${err.trim() || '(nothing)'}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      haproxy = { port: hp, pid: h.pid! };
    } catch (e) {
      haproxySkip = `HAProxy not measured: ${(e as Error).message}`;
    }
    const paths: { name: string; port: number; pid?: number }[] = [
      { name: 'direct', port: epPorts[0] },
      { name: 'node-splice', port: Number(floor.line.split(' ')[1]), pid: floor.child.pid },
      { name: 'affinityd', port: Number(nodePort), pid: node.child.pid },
      ...(compared ? [{ name: 'affinityd+flags', port: Number(compared.line.split(' ')[1]), pid: compared.child.pid }] : []),
      ...(spliceNode ? [{ name: 'affinityd-splice-node', port: Number(spliceNode.line.split(' ')[1]), pid: spliceNode.child.pid }] : []),
      ...(haproxy ? [{ name: 'haproxy', port: haproxy.port, pid: haproxy.pid }] : []),
    ];
    const byRound: Record<string, PathRound[]> = {};
    for (let r = 0; r < rounds; r++) {
      for (const p of paths) {
        const m = await measure(p.port, p.pid, eps.child.pid!);
        (byRound[p.name] ??= []).push(m);
        console.log(
          `round ${r + 1}/${rounds} ${p.name.padEnd(10)} ${fmt(m.setup.perSecond).padStart(8)} conn/s  p50 ${m.setup.p50us} us  p99 ${m.setup.p99us} us  settled in ${m.settleMs} ms  bulk ${m.throughputMiBps} MiB/s` +
            `  | CPU us/conn proxy ${m.cpuPerConnectionUs.proxy} endpoint ${m.cpuPerConnectionUs.endpoint} client ${m.cpuPerConnectionUs.client}` +
            `; us/MiB proxy ${m.cpuPerMiBUs.proxy} endpoint ${m.cpuPerMiBUs.endpoint} client ${m.cpuPerMiBUs.client}` +
            `; KiB per read/write endpoint ${m.kibPerCall.endpointRead}/${m.kibPerCall.endpointWrite} client ${m.kibPerCall.clientRead}/${m.kibPerCall.clientWrite}`,
        );
      }
    }
    // per path: medians over the rounds (and the range)
    const summary = (xs: PathRound[]) => {
      const pick = (f: (x: PathRound) => number) => median(xs.map(f));
      return {
        setup: { perSecond: pick((x) => x.setup.perSecond), p50us: pick((x) => x.setup.p50us), p99us: pick((x) => x.setup.p99us) },
        setupPerSecondRange: range(xs.map((x) => x.setup.perSecond)),
        throughputMiBps: pick((x) => x.throughputMiBps),
        throughputMiBpsRange: range(xs.map((x) => x.throughputMiBps)),
        cpuPerConnectionUs: { proxy: pick((x) => x.cpuPerConnectionUs.proxy), endpoint: pick((x) => x.cpuPerConnectionUs.endpoint), client: pick((x) => x.cpuPerConnectionUs.client) },
        cpuPerMiBUs: { proxy: pick((x) => x.cpuPerMiBUs.proxy), endpoint: pick((x) => x.cpuPerMiBUs.endpoint), client: pick((x) => x.cpuPerMiBUs.client) },
        rounds: xs,
      };
    };
    const out = Object.fromEntries(Object.entries(byRound).map(([k, v]) => [k, summary(v)]));
    // a ratio within each round, then the median and range over the rounds
    const ratio = (a: string, b: string, f: (x: PathRound) => number) => {
      if (!byRound[a] || !byRound[b]) return undefined;
      const xs = byRound[a].map((x, i) => f(x) / f(byRound[b][i]));
      return { median: r2(median(xs)), range: range(xs).map(r2) as [number, number], rounds: xs.map(r2) };
    };
    const setupVsDirect = ratio('affinityd', 'direct', (x) => x.setup.perSecond)!;
    const setupVsHaproxy = ratio('affinityd', 'haproxy', (x) => x.setup.perSecond);
    const bulkVsDirect = ratio('affinityd', 'direct', (x) => x.throughputMiBps)!;
    const bulkVsHaproxy = ratio('affinityd', 'haproxy', (x) => x.throughputMiBps);
    // the bare Node splice, for what any front end on Node's net can reach here
    const floorVsHaproxy = { setup: ratio('node-splice', 'haproxy', (x) => x.setup.perSecond), bulk: ratio('node-splice', 'haproxy', (x) => x.throughputMiBps) };
    const vsFloor = { setup: ratio('affinityd', 'node-splice', (x) => x.setup.perSecond)!, bulk: ratio('affinityd', 'node-splice', (x) => x.throughputMiBps)! };
    const flagged = compared
      ? {
          flags: compareFlags,
          setupVsHaproxy: ratio('affinityd+flags', 'haproxy', (x) => x.setup.perSecond),
          bulkVsHaproxy: ratio('affinityd+flags', 'haproxy', (x) => x.throughputMiBps),
          cpuPerMiBVsUnitFlags: ratio('affinityd+flags', 'affinityd', (x) => x.cpuPerMiBUs.proxy),
          cpuPerConnectionVsUnitFlags: ratio('affinityd+flags', 'affinityd', (x) => x.cpuPerConnectionUs.proxy),
        }
      : undefined;
    const result = {
      seconds,
      rounds,
      concurrency: CONCURRENCY,
      bulkMiB: (2 * BULK_OCTETS) / (1 << 20),
      nodeFlags,
      haproxyConfig: haproxy ? readFileSync(cfg, 'utf8') : undefined,
      ...out,
      decisionUs: Number(decisionUs),
      decisionShareOfSetupLatency: Number((Number(decisionUs) / out.affinityd.setup.p50us).toFixed(4)),
      setupRateVsDirect: setupVsDirect.median,
      setupRateVsHaproxy: setupVsHaproxy?.median,
      throughputVsDirect: bulkVsDirect.median,
      throughputVsHaproxy: bulkVsHaproxy?.median,
      ratios: { setupVsDirect, setupVsHaproxy, bulkVsDirect, bulkVsHaproxy, nodeSpliceVsHaproxy: floorVsHaproxy, vsNodeSplice: vsFloor },
      comparedNodeFlags: flagged,
      comparedSpliceNode: spliceNode
        ? {
            setupVsHaproxy: ratio('affinityd-splice-node', 'haproxy', (x) => x.setup.perSecond),
            bulkVsHaproxy: ratio('affinityd-splice-node', 'haproxy', (x) => x.throughputMiBps),
            kernelVsNode: {
              setup: ratio('affinityd', 'affinityd-splice-node', (x) => x.setup.perSecond),
              bulk: ratio('affinityd', 'affinityd-splice-node', (x) => x.throughputMiBps),
              cpuPerConnection: ratio('affinityd', 'affinityd-splice-node', (x) => x.cpuPerConnectionUs.proxy),
              cpuPerMiB: ratio('affinityd', 'affinityd-splice-node', (x) => x.cpuPerMiBUs.proxy),
            },
          }
        : undefined,
      haproxySkipped: haproxySkip || undefined,
    };
    console.log(`node options from the unit: ${nodeFlags.join(' ') || '(none)'}`);
    console.log(`\nmedians over ${rounds} rounds (${seconds} s of connections, ${CONCURRENCY} at a time, and ${result.bulkMiB} MiB of bulk per path and round):`);
    for (const [name, r] of Object.entries(out)) {
      console.log(
        `${name.padEnd(10)} ${fmt(r.setup.perSecond).padStart(8)} conn/s (${r.setupPerSecondRange.join('-')})  setup p50 ${r.setup.p50us} us  p99 ${r.setup.p99us} us  ` +
          `bulk ${r.throughputMiBps} MiB/s (${r.throughputMiBpsRange.join('-')})  | CPU ${r.cpuPerConnectionUs.proxy} us/conn, ${r.cpuPerMiBUs.proxy} us/MiB in the proxy`,
      );
    }
    if (haproxySkip) console.log(haproxySkip);
    const show = (x?: { median: number; range: [number, number] }) => (x ? `${x.median}x (${x.range[0]}-${x.range[1]})` : '-');
    console.log(
      `affinityd vs HAProxy: ${show(setupVsHaproxy)} conn/s, ${show(bulkVsHaproxy)} bulk; vs direct: ${show(setupVsDirect)} conn/s, ${show(bulkVsDirect)} bulk; ` +
        `endpoint decision ${result.decisionUs} us = ${(result.decisionShareOfSetupLatency * 100).toFixed(1)}% of setup latency`,
    );
    console.log(`a bare Node splice vs HAProxy: ${show(floorVsHaproxy.setup)} conn/s, ${show(floorVsHaproxy.bulk)} bulk; affinityd vs that splice: ${show(vsFloor.setup)} conn/s, ${show(vsFloor.bulk)} bulk`);
    if (flagged) {
      console.log(
        `affinityd with ${flagged.flags!.join(' ')}: ${show(flagged.setupVsHaproxy)} HAProxy's conn/s, ${show(flagged.bulkVsHaproxy)} its bulk; ` +
          `proxy CPU ${show(flagged.cpuPerConnectionVsUnitFlags)} per connection and ${show(flagged.cpuPerMiBVsUnitFlags)} per MiB of the node as the unit starts it`,
      );
    }
    const sn = result.comparedSpliceNode;
    if (sn) {
      console.log(
        `affinityd with splice: node: ${show(sn.setupVsHaproxy)} HAProxy's conn/s, ${show(sn.bulkVsHaproxy)} its bulk; the kernel splice against it: ` +
          `${show(sn.kernelVsNode.setup)} conn/s, ${show(sn.kernelVsNode.bulk)} bulk, proxy CPU ${show(sn.kernelVsNode.cpuPerConnection)} per connection and ${show(sn.kernelVsNode.cpuPerMiB)} per MiB`,
      );
    }
    writeResult('frontend', result);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
