// `affinityd run` through a life an operator gives it (issue 13): SIGTERM
// with a monitor attached (item 1: it crashed the node, exit 1, and the
// monitor left silently with 0); every log line one JSON object with unique
// keys (item 4: "level" and "node" came twice); a start that fails says so
// in one fatal JSON line naming the setting, and never that the node is
// ready (item 4: plain text, then "bulk sync done: ready"); one access-log
// line per call and refused calls at warn, /readyz 503 while every endpoint
// refuses (item 7).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { request } from '../../src/control/client';
import { addonOrSkip } from '../helpers/addon';
import { call, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { testGroup } from '../helpers/loopback';
import { CLI, jsonLineProblems, runNode, writeKeyFile } from '../helpers/run-node';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A TCP port that is free now (listened on and closed). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('affinityd run: stop, logs, failed starts, call logging (issue 13)', function () {
  this.timeout(120_000);
  let dir = '';
  let keyFile = '';
  let eps: TestEndpoint[] = [];
  const kill: (() => void)[] = [];

  before(async function () {
    addonOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'affinityd-life-'));
    keyFile = writeKeyFile(dir);
    eps = [await startEndpoint('lns-a'), await startEndpoint('lns-b')];
  });
  after(() => {
    for (const k of kill) k();
    for (const e of eps) e.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const config = async (name: string, o: { id?: number | null; extra?: string[]; endpoints?: string[]; front?: number; frontExtra?: string; management?: number; keyFile?: string } = {}) => {
    const net = testGroup();
    const front = o.front ?? (await freePort());
    const file = join(dir, `${name}.yaml`);
    const lines = [
      o.id === null ? '' : `node: { id: ${o.id ?? 3} }`,
      `cluster: { group: ${net.group}, port: ${net.port}, interface: 127.0.0.1, keyFile: ${o.keyFile ?? keyFile} }`,
      'sync: { retryMs: 100, retries: 2 }',
      'endpoints:',
      ...(o.endpoints ?? eps.map((e) => `  - { name: ${e.name}, address: 127.0.0.1, port: ${e.port} }`)),
      'frontends:',
      `  - { name: calls, listen: { address: 127.0.0.1, port: ${front} }${o.frontExtra ? ', ' + o.frontExtra : ''} }`,
      `control: { socket: ${join(dir, `${name}.sock`)}, readOnlySocket: ${join(dir, `${name}-ro.sock`)} }`,
      ...(o.management ? [`management: { enabled: true, address: 127.0.0.1, port: ${o.management} }`] : []),
      ...(o.extra ?? []),
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    return { file, front, socket: join(dir, `${name}.sock`), ro: join(dir, `${name}-ro.sock`) };
  };

  it('SIGTERM with a monitor attached: the node drains and exits 0; the monitor says the node ended its stream and exits 1', async () => {
    const c = await config('monitored');
    const node = runNode(c.file);
    kill.push(() => node.proc.kill('SIGKILL'));
    await node.line(/^bulk sync done: ready$/);
    const mon = spawn(CLI[0], [...CLI.slice(1), 'monitor', '--socket', c.ro], { stdio: ['ignore', 'pipe', 'pipe'] });
    kill.push(() => mon.kill('SIGKILL'));
    let monOut = '';
    let monErr = '';
    mon.stdout!.on('data', (d) => (monOut += d));
    mon.stderr!.on('data', (d) => (monErr += d));
    const monExit = new Promise<number | null>((r) => mon.once('exit', (code) => r(code)));
    // the monitor is attached once a route shows up in it
    for (let i = 0; !/selected/.test(monOut); i++) {
      assert.ok(i < 100, `the monitor showed nothing: ${monOut} ${monErr}`);
      await call(c.front, `2:192.0.2.1/monitored-${i}`);
      await sleep(100);
    }
    node.proc.kill('SIGTERM');
    assert.equal(await node.exited, 0, `the node exits 0 under SIGTERM; stderr: ${node.stderr()}`);
    assert.doesNotMatch(node.stderr() + node.log.items.join('\n'), /responder is closed|Error:/);
    assert.equal(await monExit, 1, 'the monitor does not end silently with 0');
    assert.match(monErr, /the node ended the stream: the node is stopping/);
  });

  it('a monitor interrupted by its user exits 0', async () => {
    const c = await config('monitor-sigint');
    const node = runNode(c.file);
    kill.push(() => node.proc.kill('SIGKILL'));
    await node.line(/^bulk sync done: ready$/);
    const mon = spawn(CLI[0], [...CLI.slice(1), 'monitor', '--socket', c.socket], { stdio: ['ignore', 'pipe', 'pipe'] });
    const monExit = new Promise<number | null>((r) => mon.once('exit', (code) => r(code)));
    let monErr = '';
    mon.stderr!.on('data', (d) => (monErr += d));
    for (let i = 0; !/watching .* \(Ctrl-C to stop\)/.test(monErr); i++) {
      assert.ok(i < 600, `the monitor did not start: ${monErr}`);
      await sleep(100);
    }
    mon.kill('SIGINT');
    assert.equal(await monExit, 0);
    node.proc.kill('SIGTERM');
    assert.equal(await node.exited, 0);
  });

  it('every log line is one JSON object with unique keys and a numeric level, from start to stop, access log included', async () => {
    const c = await config('logs', { management: await freePort() });
    const node = runNode(c.file);
    kill.push(() => node.proc.kill('SIGKILL'));
    await node.line(/^bulk sync done: ready$/);
    for (let i = 0; i < 5; i++) assert.match((await call(c.front, `2:192.0.2.9/logged-${i}`)).greeting ?? '', /^endpoint lns-[ab]$/);
    // a call that is not a call request: refused, logged at warn
    await new Promise<void>((resolve) => {
      const s = connect(c.front, '127.0.0.1', () => s.end('GET / HTTP/1.0\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    await request(c.socket, { cmd: 'clear', client: '2:192.0.2.9/logged-0', confirm: false });
    node.proc.kill('SIGHUP');
    await node.line(/^configuration reloaded$/);
    const lines = node.log.items;
    node.proc.kill('SIGTERM');
    assert.equal(await node.exited, 0);
    const all = node.log.items;
    assert.ok(all.length > 10, `${all.length} lines`);
    for (const l of all) {
      assert.deepEqual(jsonLineProblems(l), [], l);
      const o = JSON.parse(l);
      assert.equal(typeof o.level, 'number', l);
      assert.equal(o.node, 3, l);
    }
    const byMsg = (m: string) => lines.map((l) => JSON.parse(l)).filter((o) => o.msg === m);
    assert.deepEqual(byMsg('control socket listening').map((o) => o.access).sort(), ['admin', 'read-only']);
    // the access log: one line per call, at info, when the call ends
    await sleep(100);
    const calls = all.map((l) => JSON.parse(l)).filter((o) => o.msg === 'call');
    assert.equal(calls.length, 5, calls.map((o) => JSON.stringify(o)).join('\n'));
    for (const o of calls) {
      assert.equal(o.level, 30);
      assert.match(o.client, /^2:192\.0\.2\.9\/logged-\d$/);
      assert.match(o.endpoint, /^lns-[ab]=127\.0\.0\.1:\d+$/);
      assert.match(o.peer, /^127\.0\.0\.1:\d+$/);
      assert.equal(o.outcome, 'connected');
      assert.equal(o.frontend, 'calls');
      for (const k of ['identifyMs', 'routeMs', 'connectMs', 'setupMs', 'totalMs', 'bytesFromClient', 'bytesToClient']) assert.equal(typeof o[k], 'number', k);
      assert.ok(['selected', 'local', 'remote', 'direct', 'rerouted'].includes(o.source));
      assert.equal(o.end, 'closed');
    }
    const refused = all.map((l) => JSON.parse(l)).filter((o) => o.msg === 'call refused');
    assert.equal(refused.length, 1);
    assert.equal(refused[0].level, 40, 'refused calls at warn, as docs/operations.md says');
    assert.equal(refused[0].reason, 'malformedPreamble');
  });

  it('/readyz is 503 while every endpoint refuses its calls, and 200 again when one takes them', async () => {
    const dead = await freePort(); // nobody listens there: every connection is refused
    const mgmt = await freePort();
    const c = await config('refusing', {
      endpoints: [`  - { name: lns-dead, address: 127.0.0.1, port: ${dead} }`],
      extra: ['selection: { failureHoldDownMs: 1500 }'],
      management: mgmt,
      frontExtra: 'connectAttempts: 1',
    });
    const node = runNode(c.file);
    kill.push(() => node.proc.kill('SIGKILL'));
    await node.line(/^bulk sync done: ready$/);
    const readyz = async () => (await fetch(`http://127.0.0.1:${mgmt}/readyz`)).status;
    assert.equal(await readyz(), 200, 'ready before any call: nothing is known against the endpoint yet');
    const r = await call(c.front, '2:192.0.2.4/refused');
    assert.notEqual(r.response?.status, 1, 'the call was not connected');
    const body = await (await fetch(`http://127.0.0.1:${mgmt}/readyz`)).json();
    assert.deepEqual(body, { ready: false, reasons: ['no endpoint can take a client'] });
    const refused = await node.line(/^call refused$/);
    assert.equal(refused.level, 40);
    assert.equal(refused.reason, 'endpointUnavailable');
    // once the hold-down is over the endpoint may be tried again
    await sleep(1700);
    assert.equal(await readyz(), 200);
    node.proc.kill('SIGTERM');
    assert.equal(await node.exited, 0);
  });

  it('a start that fails says why in one fatal JSON line naming the setting, exits 1, and never says it is ready', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const busy = (taken.address() as { port: number }).port;
    try {
      const c = await config('busy-port', { front: busy });
      const node = runNode(c.file);
      kill.push(() => node.proc.kill('SIGKILL'));
      assert.equal(await node.exited, 1);
      const lines = node.log.items.map((l) => (assert.deepEqual(jsonLineProblems(l), [], l), JSON.parse(l)));
      const fatal = lines.filter((o) => o.level === 60);
      assert.equal(fatal.length, 1, node.log.items.join('\n'));
      assert.match(fatal[0].problems[0], new RegExp(`^frontends\\.0\\.listen \\(calls\\): .*EADDRINUSE.*127\\.0\\.0\\.1:${busy}`));
      assert.ok(!lines.some((o) => /^bulk sync (done|timed out)/.test(o.msg)), `a node that did not start said it was ready:\n${node.log.items.join('\n')}`);
      assert.ok(lines.some((o) => o.msg === 'bulk sync stopped: the node is closing'));
      assert.equal(node.stderr(), '', 'nothing in plain text');
    } finally {
      taken.close();
    }
    const noId = await config('no-id', { id: null });
    const n2 = runNode(noId.file);
    assert.equal(await n2.exited, 1);
    assert.equal(n2.log.items.length, 1, n2.log.items.join('\n'));
    const f2 = JSON.parse(n2.log.items[0]);
    assert.equal(f2.level, 60);
    assert.match(f2.problems[0], /^node\.id: required/);
    const badKey = await config('bad-key', { keyFile: join(dir, 'missing.key') });
    const n3 = runNode(badKey.file);
    assert.equal(await n3.exited, 1);
    assert.match(JSON.parse(n3.log.items.at(-1)!).problems[0], /^cluster\.keyFile \(.*missing\.key\): cannot read the key file/);
  });
});
