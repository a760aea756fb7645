// QUERY->REPLY rate and latency of the native responder against a dgram JS
// responder, in one run, both driven by the native load generator
// (native/tools/query_loadgen.cc) with 1 and with 16 queries in flight; and
// the floor: the same client against a UDP echo server that does no work,
// reached the same way (through the multicast group; also plain unicast).
// The native responder runs twice: as deployed by default, and with a 50 us
// busy poll (a latency/CPU trade-off an operator can choose).
// Usage: tsx bench/responder.ts [entries] [seconds]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { fmt, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);
const seconds = Number(process.argv[3] ?? 3);
const root = join(__dirname, '..');
const build = join(root, 'build-native');

function buildLoadgen(): string {
  execFileSync('cmake', ['-S', join(root, 'native', 'tools'), '-B', build, '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'pipe' });
  execFileSync('cmake', ['--build', build, '--target', 'query_loadgen'], { stdio: 'pipe' });
  return join(build, 'query_loadgen');
}

async function withServer<T>(cmd: string[], env: Record<string, string>, fn: () => T): Promise<{ result: T; stats: unknown }> {
  const child = spawn(cmd[0], cmd.slice(1), { cwd: root, stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  // listened for from the start: a server that exits while its last line is
  // read would otherwise leave nothing to wait on, and Node would end this
  // process with status 0 and no result (what CI saw on a busy machine)
  const exited = new Promise((r) => child.once('exit', r));
  const lines = createInterface({ input: child.stdout! });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.value !== 'ready') throw new Error(`${cmd.join(' ')} did not start: ${first.value}`);
  const result = fn();
  child.stdin!.end();
  const last = (await it.next()).value as string | undefined;
  const stats = last ? JSON.parse(last) : {};
  await exited;
  return { result, stats };
}

type Load = { repliesPerSecond: number; p50us: number; p99us: number; p999us: number; lost: number; answered: number };

function load(loadgen: string, group: string, port: number, inflight: number, extra: string[] = []): Load {
  const r = spawnSync(loadgen, ['--group', group, '--port', String(port), '--keys', String(entries), '--inflight', String(inflight), '--seconds', String(seconds), ...extra], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loadgen failed: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout);
}

async function main(): Promise<void> {
  const loadgen = buildLoadgen();
  const echo = join(build, 'udp_echo');
  execFileSync('cmake', ['--build', build, '--target', 'udp_echo'], { stdio: 'pipe' });
  const group = '239.255.91.1';
  const out: Record<string, Load> = {};
  const node = (fixture: string) => [process.execPath, '--import', 'tsx', join(__dirname, 'fixtures', fixture)];
  const runs: [string, (port: number) => string[], Record<string, string>, string[]][] = [
    // the floor over the responders' own path: a multicast QUERY in, a unicast answer out
    ['echoFloor', (port) => [echo, String(port), group], {}, ['--raw']],
    // and over plain unicast, for reference
    ['echoUnicast', (port) => [echo, String(port)], {}, ['--raw']],
    ['native', (port) => [...node('native-responder.ts'), group, String(port), String(entries)], { BUSY_POLL_US: '0' }, []],
    ['nativeBusyPoll', (port) => [...node('native-responder.ts'), group, String(port), String(entries)], { BUSY_POLL_US: '50' }, []],
    ['jsDgram', (port) => [...node('js-responder.ts'), group, String(port), String(entries)], {}, []],
  ];
  for (const [name, cmd, env, extra] of runs) {
    const port = 31000 + Math.floor(Math.random() * 1000);
    // every server is reached through the group but the unicast echo
    const target = name === 'echoUnicast' ? ['--target', `127.0.0.1:${port}`] : [];
    await withServer(cmd(port), env, () => {
      out[`${name}Inflight1`] = load(loadgen, group, port, 1, [...extra, ...target]);
      out[`${name}Inflight16`] = load(loadgen, group, port, 16, [...extra, ...target]);
    });
  }
  const ratio = (a: string, b: string) => Number((out[a].repliesPerSecond / out[b].repliesPerSecond).toFixed(2));
  const result = {
    entries,
    seconds,
    ...out,
    ratioNativeToJsInflight1: ratio('nativeInflight1', 'jsDgramInflight1'),
    ratioNativeToJsInflight16: ratio('nativeInflight16', 'jsDgramInflight16'),
    ratioNativeToEchoInflight16: ratio('nativeInflight16', 'echoFloorInflight16'),
  };
  for (const [k, v] of Object.entries(out)) {
    console.log(`${k.padEnd(22)} ${fmt(v.repliesPerSecond).padStart(9)} replies/s  p50 ${v.p50us} us  p99 ${v.p99us} us  p99.9 ${v.p999us} us  lost ${v.lost}`);
  }
  console.log(
    `native/jsDgram: ${result.ratioNativeToJsInflight1}x with 1 in flight, ${result.ratioNativeToJsInflight16}x with 16; ` +
      `native/echo floor: ${result.ratioNativeToEchoInflight16}x with 16`,
  );
  writeResult(`responder-${entries}`, result);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
