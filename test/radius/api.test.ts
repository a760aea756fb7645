// The RADIUS API of real nodes on loopback, spoken to as FreeRADIUS's
// rlm_rest speaks (JSON bodies of attributes): decisions through the whole
// call-request flow, accounting and releases across two nodes, every kind of
// bad input answered and counted, the failure answers (503), the token, and
// the secrets kept out of logs, stats and metrics.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { formatClientKey, parseClientKey } from '../../src/codec/client-key';
import { showEntries } from '../../src/control/commands';
import type { ConfigInput } from '../../src/daemon/config';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { RadiusAccounting } from '../../src/radius/accounting';
import { RadiusHttpServer } from '../../src/radius/http-server';
import { RadiusApi } from '../../src/radius/radius-api';
import { LiveLinks } from '../../src/links/live-links';
import { resolveConfig } from '../../src/daemon/config';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';

const ENDPOINTS = [
  { name: 'lns-a', address: '198.51.100.10', port: 1701 },
  { name: 'lns-b', address: '198.51.100.11', port: 1701 },
  { name: 'lns-c', address: '198.51.100.12', port: 1701 },
];

/** A logger that keeps every line (JSON), to check what is never logged. */
function recordingLogger() {
  const lines: string[] = [];
  const rec = (level: string) => (o: object, msg?: string) => lines.push(JSON.stringify({ level, ...o, msg }));
  return { lines, logger: { error: rec('error'), info: rec('info'), warn: rec('warn'), debug: rec('debug') } };
}

const rest = (attrs: Record<string, string | number>) => JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { type: typeof v === 'number' ? 'integer' : 'string', value: [v] }])));

async function post(n: AffinityNode, path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const a = n.stats().radius!.listening!;
  const r = await fetch(`http://127.0.0.1:${a.port}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.text();
  return { status: r.status, headers: r.headers, json: text ? JSON.parse(text) : undefined };
}
const access = (n: AffinityNode, attrs: Record<string, string | number>, headers?: Record<string, string>) => post(n, '/radius/v1/access', rest(attrs), headers);
const acct = (n: AffinityNode, attrs: Record<string, string | number>) => post(n, '/radius/v1/accounting', rest(attrs));

/** Raw bytes to the API; resolves with everything it answered before closing. */
function raw(n: AffinityNode, bytes: string | Buffer, endAfter = true): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(n.stats().radius!.listening!.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.write(bytes, () => endAfter && s.end());
    s.setTimeout(15_000, () => s.destroy());
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('radius: the decision API of real nodes (loopback)', function () {
  this.timeout(60_000);
  let dir = '';
  const nodes: AffinityNode[] = [];
  const log = recordingLogger();
  const net = testGroup();

  async function start(id: number, radius: ConfigInput['radius'] = {}, extra: ConfigInput = {}): Promise<AffinityNode> {
    const n = await createNode(
      {
        node: { id },
        cluster: { ...net, interface: '127.0.0.1' },
        sync: { retryMs: 50, retries: 2 },
        query: { count: 2, intervalMs: 10, timeoutMs: 20 },
        endpoints: ENDPOINTS.map((e, i) => ({ ...e, ...(i === 0 ? { tunnel: { passwordFile: join(dir, 'lns-a.secret'), assignmentId: 'pool-a', preference: 3 } } : {}) })),
        radius: { enabled: true, listen: { address: '127.0.0.1', port: 0 }, ...radius },
        ...extra,
      },
      { keyring: testKeyring(0x51), logger: log.logger },
    );
    nodes.push(n);
    await n.ready;
    return n;
  }

  before(function () {
    addonOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'affinityd-radius-api-'));
    writeFileSync(join(dir, 'lns-a.secret'), 'Tunnel\\Secret-7\n');
    chmodSync(join(dir, 'lns-a.secret'), 0o600);
    writeFileSync(join(dir, 'token'), 'token-0123456789abcdef\n');
    chmodSync(join(dir, 'token'), 0o600);
  });
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('answers the tunnel attributes of the client\'s endpoint; a second node answers the same for the same client', async () => {
    const [n1, n2] = [await start(1), await start(2)];
    const attrs = { 'User-Name': 'alice@example.net', 'Calling-Station-Id': '+1 555 0100', 'NAS-IP-Address': '192.0.2.1' };
    const r1 = await access(n1, attrs);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers.get('x-affinityd-source'), 'selected');
    const name = decodeURIComponent(r1.headers.get('x-affinityd-endpoint')!);
    const ep = ENDPOINTS.find((e) => e.name === name)!;
    const expected: Record<string, unknown> = {
      'reply:Tunnel-Type:1': { op: ':=', do_xlat: false, value: 'L2TP' },
      'reply:Tunnel-Medium-Type:1': { op: ':=', do_xlat: false, value: 'IPv4' },
      'reply:Tunnel-Server-Endpoint:1': { op: ':=', do_xlat: false, value: ep.address },
    };
    if (name === 'lns-a') {
      expected['reply:Tunnel-Assignment-Id:1'] = { op: ':=', do_xlat: false, value: 'pool-a' };
      expected['reply:Tunnel-Preference:1'] = { op: ':=', do_xlat: false, value: 3 };
      expected['reply:Tunnel-Password:1'] = { op: ':=', do_xlat: false, value: 'Tunnel\\\\Secret-7' };
    }
    assert.deepEqual(r1.json, expected);
    const r2 = await access(n2, attrs);
    assert.equal(r2.status, 200);
    // node 1's UPDATE may have reached node 2 already
    assert.match(r2.headers.get('x-affinityd-source')!, /^(remote|local)$/);
    assert.deepEqual(r2.json, r1.json);
    assert.equal((await access(n1, attrs)).headers.get('x-affinityd-source'), 'local');
    const e = showEntries(n2, { username: 'alice@example.net' });
    assert.equal(e.entries[0].client, '0/alice@example.net', 'the default key: the null class and User-Name');
    assert.equal(e.entries[0].endpointName, name);
    assert.deepEqual(n1.stats().radius!.answers, { tunnel: 2, noTunnel: 0, refused: 0, unavailable: 0 });
  });

  it('sends the Tunnel-Password of the endpoint but never logs it, shows it in stats or in metrics', async () => {
    const n = await start(1, { discriminator: { class: 'directory-number' } });
    // find a user that lands on lns-a (the endpoint with a password)
    let found = false;
    for (let i = 0; i < 60 && !found; i++) {
      const r = await access(n, { 'User-Name': `pw-${i}`, 'Calling-Station-Id': `4711${i}` });
      found = r.json['reply:Tunnel-Password:1']?.value === 'Tunnel\\\\Secret-7';
    }
    assert.ok(found, 'no client landed on lns-a in 60 tries');
    const metrics = await n.metrics.text();
    for (const where of [log.lines.join('\n'), JSON.stringify(n.stats()), metrics]) assert.doesNotMatch(where, /Secret-7/);
    assert.match(metrics, /affinityd_radius_access_answers_total\{answer="tunnel"\} \d+/);
  });

  it('a reload re-reads the password files; a reload with an unusable one changes nothing', async () => {
    const n = await start(1);
    let user = '';
    for (let i = 0; i < 60 && !user; i++) {
      const r = await access(n, { 'User-Name': `rot-${i}` });
      if (r.json['reply:Tunnel-Password:1']) user = `rot-${i}`;
    }
    assert.ok(user, 'no client landed on lns-a in 60 tries');
    const file = join(dir, 'lns-a.secret');
    try {
      writeFileSync(file, 'rotated-secret\n');
      assert.ok(n.reload(n.config).applied.some((a) => /password files/.test(a)));
      assert.equal((await access(n, { 'User-Name': user })).json['reply:Tunnel-Password:1'].value, 'rotated-secret');
      writeFileSync(file, 'leaked-secret\n');
      chmodSync(file, 0o644);
      assert.throws(() => n.reload(n.config), (e: Error) => /accessible to group or others/.test(e.message) && !/leaked-secret/.test(e.message));
      assert.equal((await access(n, { 'User-Name': user })).json['reply:Tunnel-Password:1'].value, 'rotated-secret', 'the running configuration stays');
    } finally {
      writeFileSync(file, 'Tunnel\\Secret-7\n');
      chmodSync(file, 0o600);
    }
  });

  it('refuses bad input with 403 (reject), each counted by reason; with badRequest: accept, 204 and no tunnel', async () => {
    const n = await start(1, { discriminator: { class: 'directory-number' } });
    const cases: [Record<string, string | number>, string][] = [
      [{ 'Calling-Station-Id': '4711' }, 'noUserName'],
      [{ 'User-Name': 'x'.repeat(65), 'Calling-Station-Id': '4711' }, 'badUserName'],
      [{ 'User-Name': 'bob' }, 'noDiscriminator'],
      [{ 'User-Name': 'bob', 'Calling-Station-Id': 'not-a-number' }, 'badDiscriminator'],
    ];
    for (const [attrs, reason] of cases) {
      const r = await access(n, attrs);
      assert.equal(r.status, 403, reason);
      assert.equal(r.json.refused, reason);
    }
    const bad = await post(n, '/radius/v1/access', '{"User-Name": ');
    assert.equal(bad.status, 403);
    assert.equal(bad.json.refused, 'malformedJson');
    const s = n.stats().radius!;
    assert.equal(s.badRequests.noUserName, 1);
    assert.equal(s.badRequests.badUserName, 1);
    assert.equal(s.badRequests.noDiscriminator, 1);
    assert.equal(s.badRequests.badDiscriminator, 1);
    assert.equal(s.badRequests.malformedJson, 1);
    assert.equal(s.answers.refused, 5);
    assert.equal(showEntries(n).matched, 0, 'no entry for a refused request');
    await n.close();

    const m = await start(2, { discriminator: { class: 'directory-number' }, badRequest: 'accept' });
    const r = await access(m, { 'User-Name': 'bob', 'Calling-Station-Id': 'nope' });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('x-affinityd-refused'), 'badDiscriminator');
    assert.equal(m.stats().radius!.answers.noTunnel, 1);
  });

  it('malformed and oversized HTTP, a wrong path or method: an answer and a count, and the node keeps serving', async () => {
    const n = await start(1, { maxRequestOctets: 2048 });
    assert.match(await raw(n, 'HELLO\r\n\r\n'), /^HTTP\/1.1 400 Bad Request/);
    assert.match(await raw(n, 'POST /radius/v1/access HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'), /^HTTP\/1.1 400/);
    assert.match(await raw(n, `POST /radius/v1/access HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1.1 4\d\d/);
    // declared too long: answered at once, connection closed
    const declared = await raw(n, 'POST /radius/v1/access HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{', false);
    assert.match(declared, /^HTTP\/1.1 403 Forbidden[\s\S]*connection: close[\s\S]*"refused":"oversized"/i);
    // chunked, no length given: cut off when it passes the limit
    const chunk = 'a'.repeat(1000);
    const chunked = await raw(n, `POST /radius/v1/accounting HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${`3e8\r\n${chunk}\r\n`.repeat(5)}0\r\n\r\n`);
    assert.match(chunked, /^HTTP\/1.1 400 Bad Request[\s\S]*"refused":"oversized"/);
    assert.equal((await post(n, '/radius/v1/nothing', '{}')).status, 404);
    const get = await fetch(`http://127.0.0.1:${n.stats().radius!.listening!.port}/radius/v1/access`);
    assert.equal(get.status, 405);
    const s = n.stats().radius!;
    assert.equal(s.badRequests.malformedHttp, 2);
    assert.equal(s.badRequests.oversized, 3, 'a header block over 16 KiB, a declared body and a chunked body');
    assert.equal(s.badRequests.notFound, 1);
    assert.equal(s.badRequests.badMethod, 1);
    assert.equal((await access(n, { 'User-Name': 'still-here' })).status, 200);
  });

  it('a request that does not arrive whole in time is cut off and counted', async () => {
    const api = new RadiusApi({ route: () => Promise.reject(new Error('unused')), tunnels: () => { throw new Error('unused'); }, accounting: new RadiusAccounting({ links: new LiveLinks(), held: () => undefined, withdraw() {}, reassert() {}, endpointFor: () => undefined }, { releaseGraceSeconds: 1, maxSessions: 1 }, recordingLogger().logger), closing: () => false }, resolveConfig({ node: { id: 1 } }).radius, recordingLogger().logger);
    const server = new RadiusHttpServer(api, { maxRequestOctets: 4096, requestTimeoutMs: 300 }, recordingLogger().logger);
    const { port } = await server.listen(0, '127.0.0.1');
    try {
      const answer = await new Promise<string>((resolve) => {
        const s = connect(port, '127.0.0.1');
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('close', () => resolve(got));
        s.write('POST /radius/v1/access HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"a'); // and nothing more
      });
      assert.match(answer, /^HTTP\/1.1 408/);
      assert.equal(api.counters.badRequests.slowRequest, 1);
    } finally {
      await server.close();
    }
  });

  it('with a token: requests without it or with a wrong one get 401, counted', async () => {
    const n = await start(1, { tokenFile: join(dir, 'token') });
    assert.equal((await access(n, { 'User-Name': 'u' })).status, 401);
    assert.equal((await access(n, { 'User-Name': 'u' }, { authorization: 'Bearer token-0123456789abcdeX' })).status, 401);
    assert.equal((await access(n, { 'User-Name': 'u' }, { authorization: 'Bearer token-0123456789abcdef' })).status, 200);
    assert.equal(n.stats().radius!.badRequests.unauthorized, 2);
  });

  it('no decision in answerTimeoutMs, or no endpoint that can take the client: 503 (the FreeRADIUS failure policy), counted', async () => {
    // a miss takes the QUERY rounds (2 x 10 ms + 20 ms, then direct rounds): more than 1 ms
    const n = await start(1, { answerTimeoutMs: 1 });
    const slow = await access(n, { 'User-Name': 'slow' });
    assert.equal(slow.status, 503);
    assert.equal(slow.json.unavailable, 'timeout');
    await until(() => showEntries(n, { username: 'slow' }).matched === 1, 'the decision to finish after the answer');
    assert.equal((await access(n, { 'User-Name': 'slow' })).status, 200, 'the next request is a local hit');
    await n.close();
    const m = await start(2, {}, { endpoints: ENDPOINTS.map((e) => ({ ...e, weight: 0 })) });
    const none = await access(m, { 'User-Name': 'nobody' });
    assert.equal(none.status, 503);
    assert.equal(none.json.unavailable, 'noEndpoint');
    assert.deepEqual(m.stats().radius!.unavailable, { timeout: 0, noEndpoint: 1, closing: 0, error: 0 });
  });

  it('accounting: Start and Stop move the live-link counts; the entry is released after the grace time', async () => {
    const n = await start(1, { accounting: { releaseGraceSeconds: 1 } });
    const user = { 'User-Name': 'carol', 'NAS-IP-Address': '192.0.2.1' };
    const r = await access(n, user);
    const server = r.json['reply:Tunnel-Server-Endpoint:1'].value;
    assert.equal((await acct(n, { ...user, 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'a1', 'Tunnel-Server-Endpoint': server })).status, 204);
    assert.equal((await acct(n, { ...user, 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'a2' })).status, 204);
    assert.equal(showEntries(n, { username: 'carol' }).entries[0].liveLinks, 2);
    await acct(n, { ...user, 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 'a1' });
    assert.equal(showEntries(n, { username: 'carol' }).entries[0].liveLinks, 1);
    const stoppedAt = performance.now(); // before the Stop: the grace time starts when the node reads it
    await acct(n, { ...user, 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 'a2' });
    assert.equal(showEntries(n, { username: 'carol' }).entries[0].liveLinks, 0);
    await until(() => showEntries(n, { username: 'carol' }).matched === 0, 'the release');
    assert.ok(performance.now() - stoppedAt >= 1000 - 2, 'released before the grace time');
    const s = n.stats().radius!;
    assert.equal(s.accounting.released, 1);
    assert.equal(s.requests.accounting, 4);
    // bad accounting input: 400, counted
    const noId = await acct(n, { ...user, 'Acct-Status-Type': 'Start' });
    assert.equal(noId.status, 400);
    assert.equal(noId.json.refused, 'noSessionId');
    assert.equal((await acct(n, user)).json.refused, 'noStatusType');
    assert.equal((await acct(n, { 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'x' })).json.refused, 'noUserName');
    assert.equal((await acct(n, { 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 'never-started' })).status, 204, 'a Stop needs no User-Name');
    assert.equal(n.stats().radius!.accounting.stopUnknown, 1);
  });

  it('a client accounted at two nodes keeps its entry until its last link anywhere stops', async () => {
    const [n1, n2] = [await start(1, { accounting: { releaseGraceSeconds: 1 } }), await start(2, { accounting: { releaseGraceSeconds: 1 } })];
    const user = { 'User-Name': 'dave' };
    const endpoint = decodeURIComponent((await access(n1, user)).headers.get('x-affinityd-endpoint')!);
    assert.equal(decodeURIComponent((await access(n2, user)).headers.get('x-affinityd-endpoint')!), endpoint);
    await acct(n1, { ...user, 'NAS-Identifier': 'lac-1', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 's' });
    await acct(n2, { ...user, 'NAS-Identifier': 'lac-2', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 's' });
    await acct(n1, { ...user, 'NAS-Identifier': 'lac-1', 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 's' });
    // node 1 releases after the grace time; node 2, with a live session, stores the entry again
    await until(() => n1.stats().radius!.accounting.released === 1, 'node 1 to release');
    await until(() => n2.stats().radius!.accounting.reasserted === 1, 'node 2 to store the entry again');
    for (const n of [n1, n2]) await until(() => showEntries(n, { username: 'dave' }).entries[0]?.endpointName === endpoint, `node ${n.config.node.id} to hold the entry again`);
    assert.deepEqual([n1, n2].map((n) => showEntries(n, { username: 'dave' }).entries[0].liveLinks), [0, 1]);
    await acct(n2, { ...user, 'NAS-Identifier': 'lac-2', 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 's' });
    for (const n of [n1, n2]) await until(() => showEntries(n, { username: 'dave' }).matched === 0, `node ${n.config.node.id} to release`);
    assert.equal(n1.stats().radius!.accounting.reasserted, 0);
  });

  it('an operator clear of a client with live sessions here is answered by storing it again', async () => {
    const n = await start(1);
    await access(n, { 'User-Name': 'erin' });
    await acct(n, { 'User-Name': 'erin', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'e1' });
    assert.equal(n.withdraw(formatClientKey(parseClientKey('0/erin'))), true);
    await until(() => showEntries(n, { username: 'erin' }).matched === 1, 'the entry to come back');
    assert.equal(n.stats().radius!.accounting.reasserted, 1);
  });

  it('closing: the API stops listening with the node', async () => {
    const n = await start(1);
    const port = n.stats().radius!.listening!.port;
    await n.close();
    nodes.splice(nodes.indexOf(n), 1);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/radius/v1/access`, { method: 'POST', body: '{}' }));
  });
});
