// The Prometheus side (issue 13, "also expected"): a scrape of a node that
// has done some of everything, its RADIUS API included (the affinityd_radius_
// series exist only while it runs), passes `promtool check metrics` with
// nothing to say; affinityd_build_info says which build runs; every
// affinityd_ metric is documented in docs/operations.md (affinityd_frames_sent_total
// was not) or, for RADIUS, docs/radius.md; the alerting rules in
// contrib/prometheus pass `promtool check rules` and their unit tests, and
// name only metrics a node exports. (The affinityd_site_ series need Redis:
// test/sites/views.test.ts runs promtool on them.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { call, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { testGroup, testKeyring } from '../helpers/loopback';
import { haveCommand, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const rules = join(root, 'contrib', 'prometheus', 'affinityd.rules.yml');

describe('Prometheus: metrics, build info, alerting rules (issue 13)', function () {
  this.timeout(60_000);
  let eps: TestEndpoint[] = [];
  const nodes: AffinityNode[] = [];
  let text = '';

  before(async function () {
    addonOrSkip(this);
    requireOrSkip(this, haveCommand('promtool'), 'promtool is not installed (apt-get install prometheus)');
    eps = [await startEndpoint('lns-a'), await startEndpoint('lns-b')];
    const net = testGroup();
    const keyring = testKeyring(0x71);
    for (const id of [1, 2]) {
      nodes.push(
        await createNode(
          {
            node: { id },
            cluster: { ...net, interface: '127.0.0.1' },
            sync: { retryMs: 100, retries: 2 },
            query: { count: 2, intervalMs: 10, timeoutMs: 20 },
            endpoints: eps.map((e) => ({ name: e.name, address: '127.0.0.1', port: e.port })),
            frontends: [{ name: 'calls', listen: { address: '127.0.0.1', port: 0 } }],
            management: { enabled: id === 1, port: 0 },
            // node 1 runs the RADIUS API (docs/radius.md) so that its series are in the scrape
            ...(id === 1 ? { radius: { enabled: true, listen: { address: '127.0.0.1', port: 0 } } } : {}),
          },
          { keyring },
        ),
      );
    }
    await Promise.all(nodes.map((n) => n.ready));
    const a = nodes[0];
    const port = a.frontends[0].address()!.port;
    for (let i = 0; i < 10; i++) await call(port, `2:192.0.2.${i + 1}/prom-${i}`);
    await nodes[1].route('2:192.0.2.77/from-b');
    await a.route('2:192.0.2.77/from-b'); // a remote hit
    a.withdraw('2:192.0.2.1/prom-0');
    a.snapshot();
    // the RADIUS API as FreeRADIUS's rlm_rest calls it: an Access-Request, a session's Start and Stop, bad input
    const radius = `http://127.0.0.1:${a.stats().radius!.listening!.port}/radius/v1`;
    const rest = (attrs: Record<string, string>) => JSON.stringify(Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { type: 'string', value: [v] }])));
    const post = async (path: string, body: string) => (await fetch(`${radius}/${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).status;
    assert.equal(await post('access', rest({ 'User-Name': 'radius-prom@example.net' })), 200);
    assert.equal(await post('accounting', rest({ 'User-Name': 'radius-prom@example.net', 'Acct-Status-Type': 'Start', 'Acct-Session-Id': 'p1' })), 204);
    assert.equal(await post('accounting', rest({ 'User-Name': 'radius-prom@example.net', 'Acct-Status-Type': 'Stop', 'Acct-Session-Id': 'p1' })), 204);
    assert.equal(await post('access', '{"User-Name": '), 403); // bad input: Access-Reject (radius.badRequest: reject), counted by reason
    const m = a.managementAddress()!.port;
    text = await (await fetch(`http://127.0.0.1:${m}/metrics`)).text();
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    for (const e of eps) e.server.close();
  });

  const families = () => [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => ({ name: x[1], type: x[2] }));

  it('promtool check metrics has nothing to say about a scrape', () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.stdout + r.stderr, '', 'promtool findings');
    assert.equal(r.status, 0);
    assert.ok(families().filter((f) => f.name.startsWith('affinityd_')).length >= 30, 'the node\'s own metrics are in the scrape');
    // the RADIUS API's series are in what promtool checked, with what the requests above did
    // (every one src/daemon/metrics.ts defines, so that a new one is checked too)
    const defined = new Set([...readFileSync(join(root, 'src', 'daemon', 'metrics.ts'), 'utf8').matchAll(/'(affinityd_radius_[a-z_]+)'/g)].map((x) => x[1]));
    assert.ok(defined.size >= 11, `the RADIUS metrics are found in src/daemon/metrics.ts (${defined.size})`);
    const scraped = new Set(families().map((f) => f.name));
    assert.deepEqual([...defined].filter((n) => !scraped.has(n)), [], 'every affinityd_radius_ metric is in the scrape promtool checked');
    assert.match(text, /^affinityd_radius_requests_total\{kind="access"\} [1-9]/m);
    assert.match(text, /^affinityd_radius_accounting_total\{status="start"\} 1$/m);
    assert.match(text, /^affinityd_radius_decision_seconds_count [1-9]/m);
  });

  it('affinityd_build_info carries the version, the revision and Node.js', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    const m = /^affinityd_build_info\{version="([^"]+)",revision="([^"]+)",nodejs="([^"]+)"\} 1$/m.exec(text);
    assert.ok(m, 'affinityd_build_info is exported');
    assert.equal(m[1], pkg.version);
    assert.equal(m[3], process.versions.node);
  });

  it('every affinityd_ metric is documented in docs/operations.md (the RADIUS API\'s in docs/radius.md, which it points to)', () => {
    const doc = readFileSync(join(root, 'docs', 'operations.md'), 'utf8') + readFileSync(join(root, 'docs', 'radius.md'), 'utf8');
    const missing = families()
      .map((f) => f.name)
      .filter((n) => n.startsWith('affinityd_'))
      .filter((n) => !doc.includes(`\`${n}\``) && !doc.includes(`\`${n}{`));
    assert.deepEqual(missing, []);
  });

  it('the alerting rules pass promtool check rules and their unit tests, and name only exported metrics', () => {
    const check = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /SUCCESS: \d+ rules found/);
    const t = spawnSync('promtool', ['test', 'rules', 'affinityd.rules.test.yml'], { cwd: join(root, 'contrib', 'prometheus'), encoding: 'utf8' });
    assert.equal(t.status, 0, t.stdout + t.stderr);
    const named = new Set([...readFileSync(rules, 'utf8').matchAll(/\b(affinityd_[a-z_]+)\b/g)].map((x) => x[1]));
    const exported = new Set(families().map((f) => f.name));
    assert.deepEqual([...named].filter((n) => !exported.has(n)), [], 'every metric a rule uses is exported');
  });
});
