// affinityd behind a real FreeRADIUS 3.2, configured as docs/radius.md
// tells an operator (Debian's shipped configuration plus contrib/freeradius/),
// asked by radclient: the tunnel attributes arrive in the Access-Accept
// (Tunnel-Password decrypted by radclient equals the file), accounting moves
// the live links, bad input is rejected, and the failure policy holds when
// affinityd is not running, stalls, or cannot decide: fail-closed rejects,
// fail-open accepts without tunnel attributes.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { showEntries } from '../../src/control/commands';
import type { ConfigInput } from '../../src/daemon/config';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import {
  checkFreeradius, freeradiusUnavailable, FreeradiusProcess, freeUdpPorts, prepareFreeradius, radclient, type RadReply, USER_PASSWORD,
} from '../fixtures/freeradius';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';
import { requireOrSkip } from '../helpers/require';

const ENDPOINTS = [
  { name: 'lns-a', address: '198.51.100.10', port: 1701 },
  { name: 'lns-b', address: '198.51.100.11', port: 1701 },
  { name: 'lns-c', address: '198.51.100.12', port: 1701 },
];
const PASSWORD = 'tun\\nel "pass" %{User-Name}';
const silent = { error() {}, info() {}, warn() {}, debug() {} };

/** A free TCP port on loopback (listened on, read, released). */
function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

const tunnelOf = (r: RadReply) => r.attrs.get('Tunnel-Server-Endpoint:1')?.[0];
const userOf = (r: RadReply) => r.attrs.get('Class')?.[0];

describe('radius: through a real FreeRADIUS 3.2 (loopback, radclient)', function () {
  this.timeout(180_000);
  let dir = '';
  const cleanup: (() => Promise<unknown> | void)[] = [];
  const net = testGroup();

  before(function () {
    addonOrSkip(this);
    const why = freeradiusUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-freeradius-'));
    writeFileSync(join(dir, 'lns-a.secret'), PASSWORD + '\n');
    chmodSync(join(dir, 'lns-a.secret'), 0o600);
    for (const [f, t] of [['token', 'token-for-freeradius-0123456789'], ['other-token', 'a-different-token-0123456789']]) {
      writeFileSync(join(dir, f), t);
      chmodSync(join(dir, f), 0o600);
    }
  });
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  async function node(port: number, radius: ConfigInput['radius'] = {}, id = 1): Promise<AffinityNode> {
    const n = await createNode(
      {
        node: { id },
        cluster: { ...net, interface: '127.0.0.1' },
        sync: { retryMs: 50, retries: 2 },
        query: { count: 2, intervalMs: 10, timeoutMs: 20 },
        endpoints: ENDPOINTS.map((e, i) => ({ ...e, ...(i === 0 ? { tunnel: { passwordFile: join(dir, 'lns-a.secret'), assignmentId: 'pool-a' } } : {}) })),
        radius: { enabled: true, listen: { address: '127.0.0.1', port }, ...radius },
      },
      { keyring: testKeyring(0x52), logger: silent },
    );
    cleanup.push(() => n.close());
    await n.ready;
    return n;
  }

  async function freeradius(url: string, o: { failOpen?: boolean; token?: string } = {}) {
    const [auth, acct, inner] = await freeUdpPorts(3);
    const sub = mkdtempSync(join(dir, 'fr-'));
    const raddb = prepareFreeradius({ dir: sub, mode: { kind: 'affinityd', url, failOpen: o.failOpen, token: o.token }, ports: { auth, acct, inner }, echoUserInClass: true });
    checkFreeradius(raddb);
    const fr = new FreeradiusProcess(raddb);
    cleanup.push(() => fr.stop());
    await fr.ready;
    return { fr, auth: `127.0.0.1:${auth}`, acct: `127.0.0.1:${acct}` };
  }

  const users = (n: number, prefix: string, extra: Record<string, string> = {}) =>
    Array.from({ length: n }, (_, i) => ({ 'User-Name': `${prefix}-${i}@example.net`, 'User-Password': USER_PASSWORD, 'NAS-Identifier': 'lac-1', ...extra }));

  it('an Access-Accept carries the tunnel attributes affinityd chose (the password exactly as in its file); accounting moves the live links', async () => {
    const port = await freeTcpPort();
    const n = await node(port, { accounting: { releaseGraceSeconds: 1 } });
    const r = await freeradius(`http://127.0.0.1:${port}`);
    const { replies, stdout } = await radclient(r.auth, 'auth', users(30, 'tun'), dir);
    assert.equal(replies.length, 30, stdout.slice(-2000));
    const byUser = new Map(replies.map((x) => [userOf(x)!, x]));
    let withPassword = 0;
    for (const [user, reply] of byUser) {
      assert.equal(reply.code, 'Access-Accept', user);
      const entry = showEntries(n, { username: user }).entries[0];
      const ep = ENDPOINTS.find((e) => e.name === entry.endpointName)!;
      assert.equal(tunnelOf(reply), ep.address, user);
      assert.deepEqual(reply.attrs.get('Tunnel-Type:1'), ['L2TP']);
      assert.deepEqual(reply.attrs.get('Tunnel-Medium-Type:1'), ['IPv4']);
      if (ep.name === 'lns-a') {
        withPassword++;
        assert.deepEqual(reply.attrs.get('Tunnel-Password:1'), [PASSWORD], 'decrypted by radclient: the file\'s content, not expanded or unescaped');
        assert.deepEqual(reply.attrs.get('Tunnel-Assignment-Id:1'), ['pool-a']);
      } else {
        assert.equal(reply.attrs.get('Tunnel-Password:1'), undefined);
      }
    }
    assert.ok(withPassword > 0 && withPassword < 30, `${withPassword} of 30 users on lns-a: rendezvous should spread them`);
    const starts = [...byUser].map(([user, reply]) => ({ 'User-Name': user, 'NAS-Identifier': 'lac-1', 'Acct-Status-Type': '=Start', 'Acct-Session-Id': `s-${user}`, 'Tunnel-Server-Endpoint:1': tunnelOf(reply)! }));
    const started = await radclient(r.acct, 'acct', starts, dir);
    assert.equal(started.replies.filter((x) => x.code === 'Accounting-Response').length, 30);
    assert.equal(showEntries(n).entries.reduce((s, e) => s + e.liveLinks, 0), 30);
    assert.equal(n.stats().radius!.accounting.elsewhere, 0);
    const stops = starts.map((s) => ({ ...s, 'Acct-Status-Type': '=Stop' }));
    const t0 = performance.now();
    await radclient(r.acct, 'acct', stops, dir);
    assert.equal(showEntries(n).entries.reduce((s, e) => s + e.liveLinks, 0), 0);
    while (showEntries(n).matched > 0 && performance.now() - t0 < 10_000) await new Promise((res) => setTimeout(res, 50));
    assert.equal(showEntries(n).matched, 0, 'every entry released after the grace time');
    assert.equal(n.stats().radius!.accounting.released, 30);
  });

  it('an attribute that makes no valid discriminator: Access-Reject, or with badRequest: accept an Access-Accept without tunnel attributes', async () => {
    for (const badRequest of ['reject', 'accept'] as const) {
      const port = await freeTcpPort();
      const n = await node(port, { discriminator: { class: 'directory-number' }, badRequest });
      const r = await freeradius(`http://127.0.0.1:${port}`);
      const good = users(2, `good-${badRequest}`, { 'Calling-Station-Id': '+49 30 1234567' });
      const bad = users(2, `bad-${badRequest}`, { 'Calling-Station-Id': 'ISDN-line-7' });
      const { replies } = await radclient(r.auth, 'auth', [...good, ...bad], dir);
      const byUser = new Map(replies.map((x) => [userOf(x) ?? '', x]));
      for (const g of good) {
        assert.equal(byUser.get(g['User-Name'])?.code, 'Access-Accept');
        assert.ok(tunnelOf(byUser.get(g['User-Name'])!));
      }
      const badReplies = replies.filter((x) => !good.some((g) => g['User-Name'] === userOf(x)));
      assert.equal(badReplies.length, 2);
      for (const x of badReplies) {
        assert.equal(x.code, badRequest === 'reject' ? 'Access-Reject' : 'Access-Accept');
        assert.equal(tunnelOf(x), undefined);
      }
      assert.equal(n.stats().radius!.badRequests.badDiscriminator, 2);
      assert.equal(showEntries(n, { discriminator: '5:49301234567' }).matched, 2);
      for (const c of cleanup.splice(0).reverse()) await c();
    }
  });

  it('the failure policy: affinityd not running, stalled past the module timeout, or answering 503: fail-closed rejects, fail-open accepts without a tunnel; accounting is still answered', async () => {
    const port = await freeTcpPort();
    for (const failOpen of [false, true]) {
      const r = await freeradius(`http://127.0.0.1:${port}`, { failOpen });
      const expect = (replies: RadReply[], n: number, what: string) => {
        assert.equal(replies.length, n, `${what}: every request answered`);
        for (const x of replies) {
          assert.equal(x.code, failOpen ? 'Access-Accept' : 'Access-Reject', what);
          assert.equal(tunnelOf(x), undefined, what);
        }
      };
      const label = failOpen ? 'fail-open' : 'fail-closed';
      // 1. nothing listens: FreeRADIUS started anyway (pool start = 0) and answers at once
      let t0 = performance.now();
      expect((await radclient(r.auth, 'auth', users(3, `down-${label}`), dir, { retries: 1, timeoutSeconds: 8 })).replies, 3, `${label}, not running`);
      const downMs = performance.now() - t0;
      const acct = await radclient(r.acct, 'acct', [{ 'User-Name': 'x', 'Acct-Status-Type': '=Start', 'Acct-Session-Id': 'x1', 'NAS-Identifier': 'lac-1' }], dir);
      assert.equal(acct.replies[0]?.code, 'Accounting-Response', 'the LAC still gets its Accounting-Response');
      // 2. stalled: accepts connections and never answers; FreeRADIUS gives up after the module's timeout (2 s)
      const stalled: Socket[] = [];
      const stall: TcpServer = createTcpServer((s) => stalled.push(s));
      await new Promise<void>((res) => stall.listen(port, '127.0.0.1', () => res()));
      await new Promise((res) => setTimeout(res, 1200)); // past the pool's retry_delay (1 s) after the failed connections
      t0 = performance.now();
      expect((await radclient(r.auth, 'auth', users(2, `stall-${label}`), dir, { retries: 1, timeoutSeconds: 8 })).replies, 2, `${label}, stalled`);
      const stallMs = performance.now() - t0;
      assert.ok(stallMs >= 2000 - 50, `answered after ${stallMs.toFixed(0)} ms: before the module's 2-s timeout`);
      assert.ok(stallMs > downMs, 'a stalled affinityd costs the timeout; a stopped one does not');
      for (const s of stalled) s.destroy();
      await new Promise<void>((res) => stall.close(() => res()));
      // 3. affinityd runs but cannot decide: no endpoint may take the client (503)
      const n = await node(port, {}, 7);
      for (const s of n.endpoints.states) s.checkedDown = true;
      await new Promise((res) => setTimeout(res, 1200));
      expect((await radclient(r.auth, 'auth', users(2, `none-${label}`), dir)).replies, 2, `${label}, 503`);
      assert.equal(n.stats().radius!.unavailable.noEndpoint, 2);
      for (const s of n.endpoints.states) s.checkedDown = false;
      const back = await radclient(r.auth, 'auth', users(1, `back-${label}`), dir);
      assert.equal(back.replies[0]?.code, 'Access-Accept');
      assert.ok(tunnelOf(back.replies[0]), 'affinityd back: tunnel attributes again');
      for (const c of cleanup.splice(0).reverse()) await c();
    }
  });

  it('FreeRADIUS sends the token of the shipped policy; a wrong token falls to the failure policy', async () => {
    const port = await freeTcpPort();
    const n = await node(port, { tokenFile: join(dir, 'token') });
    const good = await freeradius(`http://127.0.0.1:${port}`, { token: 'token-for-freeradius-0123456789' });
    const ok = await radclient(good.auth, 'auth', users(2, 'tok'), dir);
    assert.deepEqual(ok.replies.map((x) => [x.code, !!tunnelOf(x)]), [['Access-Accept', true], ['Access-Accept', true]]);
    const wrong = await freeradius(`http://127.0.0.1:${port}`, { token: 'a-different-token-0123456789' });
    const refused = await radclient(wrong.auth, 'auth', users(2, 'tok-wrong'), dir);
    assert.deepEqual(refused.replies.map((x) => x.code), ['Access-Reject', 'Access-Reject']);
    assert.equal(n.stats().radius!.badRequests.unauthorized, 2);
  });

  it('affinityd is never sent the user\'s password (rlm_json leaves it out of the body)', async () => {
    const bodies: string[] = [];
    const stub: HttpServer = createHttpServer((req, res) => {
      let b = '';
      req.on('data', (d) => (b += d));
      req.on('end', () => {
        bodies.push(b);
        res.writeHead(204).end();
      });
    });
    const port = await freeTcpPort();
    await new Promise<void>((res) => stub.listen(port, '127.0.0.1', () => res()));
    cleanup.push(() => new Promise<void>((res) => stub.close(() => res())));
    const r = await freeradius(`http://127.0.0.1:${port}`);
    const { replies } = await radclient(r.auth, 'auth', users(2, 'pw', { 'Calling-Station-Id': '4711' }), dir);
    assert.deepEqual(replies.map((x) => x.code), ['Access-Accept', 'Access-Accept']);
    assert.equal(bodies.length, 2);
    for (const b of bodies) {
      const doc = JSON.parse(b);
      assert.ok(doc['User-Name'] && doc['Calling-Station-Id'], b);
      assert.equal(doc['User-Password'], undefined);
      assert.doesNotMatch(b, new RegExp(USER_PASSWORD));
    }
  });
});
