// `affinityd run` as an operator runs it: systemd readiness and watchdog
// notifications to a socket this test listens on, SIGHUP reloads (a good and
// a broken configuration) while calls keep running, the log level changed at
// run time, and SIGTERM draining, saving the table and saying STOPPING.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';

import { request } from '../../src/control/client';
import type { EntryView } from '../../src/control/protocol';
import { addonOrSkip } from '../helpers/addon';
import { call, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { testGroup } from '../helpers/loopback';
import { haveCommand, requireOrSkip } from '../helpers/require';
import { Waiter } from '../helpers/waiter';

const root = join(__dirname, '..', '..');

function lines(child: ChildProcess, stream: 'stdout' | 'stderr'): Waiter<string> {
  const w = new Waiter<string>();
  createInterface({ input: child[stream]! }).on('line', (l) => w.push(l));
  return w;
}

describe('affinityd run under a service manager (notify, SIGHUP, SIGTERM)', function () {
  this.timeout(90_000);
  let dir = '';
  let eps: TestEndpoint[] = [];
  const children: ChildProcess[] = [];

  before(async function () {
    addonOrSkip(this);
    requireOrSkip(this, haveCommand('python3'), 'python3 is needed to listen on an AF_UNIX datagram socket (apt-get install python3)');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-daemon-'));
    eps = [await startEndpoint('lns-a'), await startEndpoint('lns-b'), await startEndpoint('lns-c')];
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const e of eps) e.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('notifies READY, WATCHDOG, RELOADING and STOPPING; reloads keep every call and entry; a bad file changes nothing', async () => {
    const notifySock = join(dir, 'notify.sock');
    const listener = spawn('python3', [join(root, 'test/fixtures/notify-listener.py'), notifySock], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(listener);
    const notes = lines(listener, 'stdout');
    await notes.wait((l) => l === 'listening', 10_000, () => 'the notify listener did not start');

    const keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, `1 ${'6a'.repeat(32)} send\n`);
    chmodSync(keyFile, 0o600);
    const control = join(dir, 'control.sock');
    const snap = join(dir, 'table.snap');
    const net = testGroup();
    // a file may not ask for port 0 (nobody could call it): take a port that is free now
    const front = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port;
        srv.close(() => resolve(p));
      });
    });
    const config = (o: { weights?: number[]; level?: string; extra?: string } = {}) =>
      [
        'node: { id: 7 }',
        `cluster: { group: ${net.group}, port: ${net.port}, interface: 127.0.0.1, keyFile: ${keyFile} }`,
        'sync: { retryMs: 100, retries: 2 }',
        `directory: { snapshotFile: ${snap} }`,
        'endpoints:',
        ...eps.slice(0, o.weights?.length ?? 2).map((e, i) => `  - { name: ${e.name}, address: 127.0.0.1, port: ${e.port}, weight: ${o.weights?.[i] ?? 1} }`),
        'frontends:',
        `  - { name: calls, listen: { address: 127.0.0.1, port: ${front} } }`,
        `log: { level: ${o.level ?? 'info'} }`,
        `control: { socket: ${control} }`,
        o.extra ?? '',
      ].join('\n');
    const cfgFile = join(dir, 'affinityd.yaml');
    writeFileSync(cfgFile, config());

    const node = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'run', '--config', cfgFile], {
      env: { ...process.env, NOTIFY_SOCKET: notifySock, WATCHDOG_USEC: '300000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(node);
    const log = lines(node, 'stdout');
    const exited = new Promise<number | null>((r) => node.once('exit', (code) => r(code)));

    await notes.wait((l) => l.startsWith('READY=1'), 20_000, () => `no READY=1; notifications: ${notes.items.join(' / ')}; log: ${log.items.slice(-5).join('\n')}`);
    assert.match(notes.items.find((l) => l.startsWith('READY=1'))!, /STATUS=ready; \d+ entries/);
    await notes.wait((l) => l === 'WATCHDOG=1', 2000, () => 'no WATCHDOG=1 within 2 s with WatchdogSec 0.3 s');

    const stats = (await request(control, { cmd: 'show-stats' })) as { frontends: { address: { port: number } }[] };
    const port = stats.frontends[0].address.port;
    // calls keep coming while the configuration is reloaded twice
    const results: string[] = [];
    let stop = false;
    const caller = Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; !stop; i += 8) {
          const r = await call(port, `1:0a${(i % 40).toString(16).padStart(2, '0')}/caller${i % 40}`);
          results.push(r.greeting ?? `failed: ${JSON.stringify(r.response)}`);
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const before = (await request(control, { cmd: 'show-entries' })) as { entries: EntryView[] };

    // a good configuration: a third endpoint, new weights, debug logging
    writeFileSync(cfgFile, config({ weights: [1, 0, 2], level: 'debug' }));
    node.kill('SIGHUP');
    await log.wait((l) => l.includes('configuration reloaded'), 5000, () => 'no reload in the log');
    const reloaded = JSON.parse(log.items.find((l) => l.includes('configuration reloaded'))!);
    assert.deepEqual(reloaded.needRestart, []);
    assert.ok(reloaded.applied.some((a: string) => a.startsWith('endpoints (+1 -0)')), reloaded.applied.join(', '));
    assert.ok(reloaded.applied.includes('log.level'));
    const reloading = await notes.wait((l) => l.startsWith('RELOADING=1'), 2000, () => `no RELOADING=1: ${notes.items.join(' / ')}`);
    assert.match(reloading, /MONOTONIC_USEC=\d+/);
    const iR = notes.items.indexOf(reloading);
    await notes.wait((l) => l.startsWith('READY=1') && notes.items.indexOf(l) > iR, 2000, () => 'no READY=1 after RELOADING=1');

    // a broken one: refused whole, the running configuration stays
    writeFileSync(cfgFile, config({ weights: [1, 1, 1], extra: 'query: { count: 0 }' }));
    node.kill('SIGHUP');
    await log.wait((l) => l.includes('configuration reload refused'), 5000, () => 'no refusal in the log');
    assert.match(log.items.find((l) => l.includes('configuration reload refused'))!, /query\.count/);
    await assert.rejects(request(control, { cmd: 'reload' }), /query\.count/);
    writeFileSync(cfgFile, 'node: [not, a, mapping');
    await assert.rejects(request(control, { cmd: 'reload' }), /affinityd\.yaml/);

    // the log level, live, through the control socket
    await request(control, { cmd: 'set-log-level', level: 'warn' });
    const since = Date.now(); // the node logs with this clock: lines of calls that ended before the change may still be in the pipe
    const mark = log.items.length;
    await request(control, { cmd: 'clear', client: '1:0a00/caller0' }); // logged at info: not shown now
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(log.items.slice(mark).filter((l) => JSON.parse(l).level < 40 && JSON.parse(l).time >= since), [], 'nothing below warn after set-log-level warn');
    await request(control, { cmd: 'set-log-level', level: 'info' });
    stop = true;
    await caller;
    const after = (await request(control, { cmd: 'show-entries' })) as { entries: EntryView[] };
    assert.ok(results.length > 50, `only ${results.length} calls ran`);
    assert.deepEqual(results.filter((r) => !/^endpoint lns-[abc]$/.test(r)), [], 'no call failed across the reloads');
    for (const e of before.entries) {
      if (e.client === '1:0a00/caller0') continue; // cleared above, and made again by the next call
      const now = after.entries.find((x) => x.client === e.client);
      assert.equal(now?.endpoint, e.endpoint, `entry of ${e.client} kept`);
    }
    assert.equal(after.entries.length, 40, 'one entry per client, none lost');

    node.kill('SIGTERM');
    assert.equal(await exited, 0);
    await notes.wait((l) => l.startsWith('STOPPING=1'), 2000, () => 'no STOPPING=1');
    assert.ok(log.items.some((l) => l.includes('node closed')));
    assert.ok(existsSync(snap), 'the table was saved at shutdown');
    assert.ok(!log.items.some((l) => /6a6a6a6a/.test(l)), 'no key material in the log');
  });
});
