// Operations (issue 7) against a running node: every control command on the
// admin and the read-only socket (through the library client and the
// affinityd command line), the metrics scrape against the node's own
// counters after a known workload, /healthz and /readyz.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { monitor, request } from '../../src/control/client';
import type { EntryView, PeerView } from '../../src/control/protocol';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { call, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { testGroup, testKeyring } from '../helpers/loopback';

const root = join(__dirname, '..', '..');
// asynchronous: the node answering is in this process
const cli = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { encoding: 'utf8', cwd: root }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
const key = (i: number) => `2:10.1.${i >> 8}.${i & 255}/user${i}`;

/** The value of one sample of a Prometheus text exposition. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[3] ? m[3].split(',') : [];
    if (want.length === have.length && want.every((w) => have.includes(w))) return Number(m[4]);
  }
  throw new Error(`no sample ${name}${JSON.stringify(labels)} in the scrape`);
}

describe('operations: control sockets, metrics, health (a running node)', function () {
  this.timeout(60_000);
  let dir = '';
  let eps: TestEndpoint[] = [];
  let a: AffinityNode;
  let b: AffinityNode;
  let admin = '';
  let ro = '';
  let http = '';

  before(async function () {
    addonOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'affinityd-ops-'));
    admin = join(dir, 'control.sock');
    ro = join(dir, 'control-ro.sock');
    eps = [await startEndpoint('lns-a'), await startEndpoint('lns-b')];
    const net = testGroup();
    const keyring = testKeyring(0x51);
    const cfg = (id: number) => ({
      node: { id },
      cluster: { ...net, interface: '127.0.0.1' },
      query: { count: 2, intervalMs: 10, timeoutMs: 20 },
      sync: { retryMs: 100, retries: 2 },
      endpoints: eps.map((e) => ({ name: e.name, address: '127.0.0.1', port: e.port })),
      frontends: [{ name: 'calls', listen: { address: '127.0.0.1', port: 0 } }],
    });
    a = await createNode({ ...cfg(1), control: { socket: admin, readOnlySocket: ro }, management: { enabled: true, port: 0 } }, { keyring });
    b = await createNode(cfg(2), { keyring });
    await Promise.all([a.ready, b.ready]);
    http = `http://127.0.0.1:${a.managementAddress()!.port}`;
  });

  after(async () => {
    await a?.close();
    await b?.close();
    for (const e of eps) e.server.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates both sockets with mode 0660', () => {
    for (const p of [admin, ro]) {
      const st = statSync(p);
      assert.ok(st.isSocket());
      assert.equal(st.mode & 0o777, 0o660, p);
    }
  });

  it('a known workload: the scrape agrees with the node\'s counters', async () => {
    const port = a.frontends[0].address()!.port;
    for (let i = 0; i < 20; i++) {
      const r = await call(port, key(i));
      assert.match(r.greeting ?? '', /^endpoint lns-[ab]$/);
    }
    for (let i = 0; i < 5; i++) await call(port, key(i)); // again: local hits
    await a.route(key(500));
    // HELLOs keep arriving: counters that move on their own are read before and after the scrape
    const before = a.stats();
    const text = await (await fetch(`${http}/metrics`)).text();
    const s = a.stats();
    const between = (v: number | undefined, lo: number, hi: number, what: string) => assert.ok(v !== undefined && v >= lo && v <= hi, `${what}: ${v} not within ${lo}..${hi}`);
    assert.equal(sample(text, 'affinityd_calls_total', { frontend: 'calls' }), 25);
    assert.equal(sample(text, 'affinityd_calls_connected_total', { frontend: 'calls' }), 25);
    // octets: added when each call ends, so a call ending during the scrape moves them
    between(sample(text, 'affinityd_call_octets_total', { frontend: 'calls', direction: 'toClient' }), before.frontends[0].bytesToClients, s.frontends[0].bytesToClients, 'octets to clients');
    between(sample(text, 'affinityd_call_octets_total', { frontend: 'calls', direction: 'toEndpoint' }), before.frontends[0].bytesFromClients, s.frontends[0].bytesFromClients, 'octets to endpoints');
    assert.ok(s.frontends[0].bytesToClients > 0, 'the calls carried octets to their clients (the answer and greeting)');
    assert.equal(sample(text, 'affinityd_routes_total', { source: 'selected' }), 21);
    assert.equal(sample(text, 'affinityd_routes_total', { source: 'local' }), 5);
    assert.equal(sample(text, 'affinityd_route_misses_total'), 21);
    between(sample(text, 'affinityd_updates_sent_total'), before.router.updatesSent, s.router.updatesSent, 'updates sent');
    assert.equal(sample(text, 'affinityd_table_entries'), 21);
    between(sample(text, 'affinityd_frames_received_total', { verdict: 'accepted' }), before.responder.verdicts.accepted, s.responder.verdicts.accepted, 'frames accepted');
    assert.equal(sample(text, 'affinityd_route_decision_seconds_count', { source: 'selected' }), 21);
    assert.equal(sample(text, 'affinityd_call_setup_seconds_count', { frontend: 'calls' }), 25);
    assert.equal(sample(text, 'affinityd_ready'), 1);
    assert.equal(sample(text, 'affinityd_endpoint_up', { endpoint: 'lns-a' }), 1);
    assert.ok(sample(text, 'process_resident_memory_bytes') > 0, 'the default process metrics are there');
    assert.doesNotMatch(text, /user\d|username|discriminator/, 'no client identity in metrics');
    const h = await fetch(`${http}/healthz`);
    assert.equal(h.status, 200);
    const r = await fetch(`${http}/readyz`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { ready: true, reasons: [] });
    assert.equal((await fetch(`${http}/nope`)).status, 404);
  });

  it('show entries with filters, show entry, show peers, show stats (both levels)', async () => {
    for (const sock of [admin, ro]) {
      const all = (await request(sock, { cmd: 'show-entries' })) as { entries: EntryView[]; matched: number };
      assert.equal(all.matched, a.directory.stats().size);
      const one = (await request(sock, { cmd: 'show-entries', filter: { username: 'user3' } })) as { entries: EntryView[] };
      assert.deepEqual(one.entries.map((e) => e.client), [key(3)]);
      const byDisc = (await request(sock, { cmd: 'show-entries', filter: { discriminator: '2:10.1.0.4' } })) as { entries: EntryView[] };
      assert.deepEqual(byDisc.entries.map((e) => e.client), [key(4)]);
      const byEp = (await request(sock, { cmd: 'show-entries', filter: { endpoint: 'lns-a' }, limit: 3 })) as { entries: EntryView[]; matched: number; truncated: boolean };
      assert.ok(byEp.entries.every((e) => e.endpointName === 'lns-a'));
      assert.equal(byEp.truncated, byEp.matched > 3);
      const e = (await request(sock, { cmd: 'show-entry', client: key(3) })) as EntryView;
      assert.equal(e.originNode, 1);
      assert.ok(e.expiresInSeconds > 3500);
      assert.equal(await request(sock, { cmd: 'show-entry', client: key(9999) }), null);
      const peers = (await request(sock, { cmd: 'show-peers' })) as PeerView[];
      const pb = peers.find((p) => p.nodeId === 2)!;
      assert.ok(pb && pb.lastHeardMsAgo! < 60_000 && pb.accepted > 0 && pb.authFailures === 0, JSON.stringify(peers));
      const stats = (await request(sock, { cmd: 'show-stats' })) as ReturnType<AffinityNode['stats']>;
      assert.equal(stats.node, 1);
      assert.equal(stats.sync.state, 'ready');
    }
    await assert.rejects(request(admin, { cmd: 'show-entry', client: 'not a key' }), /DISCRIMINATOR\/USERNAME/);
  });

  it('refuses admin commands on the read-only socket, and bad requests, with a clear error', async () => {
    for (const req of [{ cmd: 'clear', all: true }, { cmd: 'reload' }, { cmd: 'set-log-level', level: 'debug' }] as const) {
      await assert.rejects(request(ro, req), /refused: .* needs the admin control socket/);
    }
    assert.equal(a.directory.stats().size > 0, true, 'nothing was cleared');
    await assert.rejects(request(admin, { cmd: 'bogus' } as never), /unknown command/);
    await assert.rejects(request(admin, { cmd: 'set-log-level', level: 'loud' }), /one of fatal/);
    await assert.rejects(request(admin, { cmd: 'reload' }), /not started from a configuration file/);
  });

  it('a hostile client: an endless line, garbage, and a crowd of connections get errors, never a crash', async () => {
    const { connect } = await import('node:net');
    const talk = (data: string | Buffer) =>
      new Promise<string>((resolve) => {
        const c = connect(admin);
        let got = '';
        c.on('data', (d) => (got += d));
        c.on('close', () => resolve(got));
        c.on('error', () => resolve(got));
        c.write(data, () => setTimeout(() => c.end(), 200));
      });
    assert.match(await talk(Buffer.alloc(70 * 1024, 0x41)), /request longer than 65536 octets/);
    assert.match(await talk('\u0000\u00ff{{{\n'), /not JSON/);
    assert.match(await talk('{"cmd":"show-entries","limit":-1}\n'), /limit: a whole number/);
    const crowd = await Promise.all(Array.from({ length: 80 }, () => new Promise<ReturnType<typeof connect>>((r) => { const c = connect(admin); c.on('connect', () => r(c)); c.on('error', () => r(c)); })));
    const refused = await new Promise<string>((resolve) => {
      const c = connect(admin);
      let got = '';
      c.on('data', (d) => (got += d));
      c.on('close', () => resolve(got));
    });
    assert.match(refused, /too many control connections/);
    for (const c of crowd) c.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(Array.isArray(((await request(admin, { cmd: 'show-entries', limit: 1 })) as { entries: unknown[] }).entries), 'still serving');
  });

  it('the command line: show entries (text and --json), and a refusal exits 1 with the reason', async () => {
    const t = await cli('show', 'entries', '--socket', ro, '--username', 'user7');
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^CLIENT +ENDPOINT +VERSION +ORIGIN +LINKS +EXPIRES IN\n2:10\.1\.0\.7\/user7 +lns-[ab]=127\.0\.0\.1:\d+ +1 +1 +0 +\d+s\n1 matching\n$/);
    const j = await cli('show', 'entries', '--socket', ro, '--json', '--endpoint', 'lns-b');
    assert.equal(j.status, 0, j.stderr);
    assert.ok(JSON.parse(j.stdout).entries.every((e: EntryView) => e.endpointName === 'lns-b'));
    const refused = await cli('clear', '--all', '--socket', ro);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /refused: clear changes the node/);
    const missing = await cli('show', 'peers', '--socket', join(dir, 'none.sock'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no such socket/);
  });

  it('monitor streams changes; clear one and clear all withdraw on every node', async () => {
    const events: Record<string, unknown>[] = [];
    const m = await monitor(ro, (e) => events.push(e));
    await a.route(key(600)); // selected here
    await b.route(key(601)); // b's decision, applied by a's I/O thread: its UPDATE, or its CLAIM if a is the client's arbiter
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
    };
    const fromB = (e: Record<string, unknown>) => (e.kind === 'update' || e.kind === 'claim') && e.client === key(601) && e.fromNode === 2;
    await until(() => events.some(fromB));
    assert.ok(events.some((e) => e.kind === 'selected' && e.client === key(600) && e.fromNode === 1), JSON.stringify(events));
    assert.ok(events.some(fromB), JSON.stringify(events));
    const one = (await request(admin, { cmd: 'clear', client: key(600) })) as { withdrawn: number; withdrawsSent: number; confirmation?: { confirmed: boolean } };
    assert.deepEqual([one.withdrawn, one.withdrawsSent, one.confirmation?.confirmed], [1, 1, true]);
    await until(() => events.some((e) => e.kind === 'withdraw'));
    assert.ok(events.some((e) => e.kind === 'withdraw' && e.client === key(600) && e.endpoint === undefined));
    await until(() => b.maintenance.withdrawals.counters.applied >= 1);
    assert.equal(b.directory.peek(clientKeyBytes(parseClientKey(key(600))))?.endpoint, undefined, 'b holds the marker');
    const held = a.directory.stats().size;
    const r = (await request(admin, { cmd: 'clear', all: true })) as { withdrawn: number };
    assert.equal(r.withdrawn, held - 1, 'every entry but the one already withdrawn');
    await until(() => b.maintenance.withdrawals.counters.applied >= held);
    const left = (await request(admin, { cmd: 'show-entries' })) as { matched: number };
    assert.equal(left.matched, 0);
    m.stop();
    await m.ended;
    await until(() => a.changes.listening === 0);
    assert.equal(a.changes.listening, 0, 'the feed is off again once the monitor left');
  });

  it('set-log-level on a node without an adjustable logger answers with the reason (the live change is in daemon.test.ts)', async () => {
    await assert.rejects(request(admin, { cmd: 'set-log-level', level: 'debug' }), /no adjustable level/);
  });
});
