// Connections through a node's front end, against connecting to the
// endpoint directly and against HAProxy with a source stick table, in one
// run and with the same client: new connections per second (connect, read
// the endpoint's greeting, close; 8 at a time), their latency, and bulk
// throughput on one connection (64 MiB up, echoed back down).
// Usage: tsx bench/frontend.ts [seconds]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { fmt, writeResult } from './lib';

const seconds = Number(process.argv[2] ?? 3);
const root = join(__dirname, '..');

function start(cmd: string[], ready: RegExp): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(cmd[0], cmd.slice(1), { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => ready.test(l) && resolve({ child, line: l }));
    child.once('exit', (c) => reject(new Error(`${cmd.join(' ')} exited ${c}`)));
  });
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

async function setupRate(port: number): Promise<{ perSecond: number; p50us: number; p99us: number }> {
  const lat: number[] = [];
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < end) lat.push(await oneConnection(port));
    }),
  );
  lat.sort((a, b) => a - b);
  return { perSecond: Math.round(lat.length / seconds), p50us: lat[Math.floor(lat.length / 2)], p99us: lat[Math.floor(lat.length * 0.99)] };
}

function throughput(port: number): Promise<number> {
  const total = 64 << 20;
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = -1; // the greeting line is not payload
    let t0 = 0n;
    s.on('data', (d) => {
      if (got < 0) {
        got = d.length - d.indexOf('\n') - 1;
        t0 = process.hrtime.bigint();
        const chunk = Buffer.alloc(1 << 16, 1);
        let sent = 0;
        const pump = () => {
          while (sent < total) {
            sent += chunk.length;
            if (!s.write(chunk)) return void s.once('drain', pump);
          }
        };
        pump();
        return;
      }
      got += d.length;
      if (got >= total) {
        const mbps = (2 * total) / (1 << 20) / (Number(process.hrtime.bigint() - t0) / 1e9);
        s.destroy();
        resolve(mbps);
      }
    });
    s.on('error', reject);
  });
}

async function main(): Promise<void> {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'affinityd-bench-'));
  try {
    // fixed ports stay below the ephemeral range (32768-60999 here), which
    // the client's thousands of connections cycle through
    const o = Math.floor(Math.random() * 500);
    const epPorts = [21100 + o, 21600 + o, 22100 + o];
    const eps = await start([process.execPath, '--import', 'tsx', 'test/fixtures/endpoint-server.ts', '127.0.0.1', ...epPorts.map((p, i) => `ep${i}:${p}`)], /^ready$/);
    children.push(eps.child);
    const node = await start(
      [process.execPath, '--import', 'tsx', 'bench/fixtures/frontend-node.ts', '239.255.93.1', String(34000 + Math.floor(Math.random() * 1000)), '127.0.0.1', ...epPorts.map(String)],
      /^ready /,
    );
    children.push(node.child);
    const [, nodePort, decisionUs] = node.line.split(' ');
    let haproxyPort: number | undefined;
    let haproxySkip = '';
    const hp = 23000 + Math.floor(Math.random() * 1000);
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, ['global', '  maxconn 4000', 'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 30s', '  timeout server 30s', 'frontend calls', `  bind 127.0.0.1:${hp}`, '  default_backend eps', 'backend eps', '  balance roundrobin', '  stick-table type ip size 1m expire 30m', '  stick on src', ...epPorts.map((p, i) => `  server ep${i} 127.0.0.1:${p}`), ''].join('\n'));
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
      haproxyPort = hp;
    } catch (e) {
      haproxySkip = `HAProxy not measured: ${(e as Error).message}`;
    }
    const paths: [string, number][] = [['direct', epPorts[0]], ['affinityd', Number(nodePort)], ...(haproxyPort ? [['haproxy', haproxyPort] as [string, number]] : [])];
    const out: Record<string, { setup: Awaited<ReturnType<typeof setupRate>>; throughputMiBps: number }> = {};
    for (const [name, port] of paths) out[name] = { setup: await setupRate(port), throughputMiBps: Math.round(await throughput(port)) };
    const ratio = (a: string, b: string, f: (x: (typeof out)[string]) => number) => (out[a] && out[b] ? Number((f(out[a]) / f(out[b])).toFixed(2)) : undefined);
    const result = {
      seconds,
      ...out,
      decisionUs: Number(decisionUs),
      decisionShareOfSetupLatency: Number((Number(decisionUs) / out.affinityd.setup.p50us).toFixed(4)),
      setupRateVsDirect: ratio('affinityd', 'direct', (x) => x.setup.perSecond),
      setupRateVsHaproxy: ratio('affinityd', 'haproxy', (x) => x.setup.perSecond),
      throughputVsDirect: ratio('affinityd', 'direct', (x) => x.throughputMiBps),
      throughputVsHaproxy: ratio('affinityd', 'haproxy', (x) => x.throughputMiBps),
      haproxySkipped: haproxySkip || undefined,
    };
    for (const [name, r] of Object.entries(out)) {
      console.log(`${name.padEnd(10)} ${fmt(r.setup.perSecond).padStart(8)} conn/s  setup p50 ${r.setup.p50us.toFixed(0)} us  p99 ${r.setup.p99us.toFixed(0)} us  bulk ${r.throughputMiBps} MiB/s`);
    }
    if (haproxySkip) console.log(haproxySkip);
    console.log(
      `affinityd vs direct: ${result.setupRateVsDirect}x conn/s, ${result.throughputVsDirect}x bulk; vs HAProxy: ${result.setupRateVsHaproxy ?? '-'}x conn/s, ${result.throughputVsHaproxy ?? '-'}x bulk; ` +
        `endpoint decision ${result.decisionUs} us = ${(result.decisionShareOfSetupLatency * 100).toFixed(1)}% of setup latency`,
    );
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
