// Issue 6, "must show": three `affinityd run` nodes in network namespaces
// under faults. 20% of cluster datagrams lost over 10,000 clients; a node
// killed with SIGKILL and restarted (bulk sync, entries lost: 0); a partition
// that both halves route through, then healed (digests repair every split);
// floods of garbage, oversized, forged and replayed frames (answers stay in
// bounds, every bad frame counted, no entry changed); key rotation with
// traffic running (no message lost). Selection is round-robin here, which
// makes different choices at different nodes: only the protocol keeps a
// bundle together, not a shared hash.
//
// On a busy machine (CI, other tests, stress-ng on both cores) everything
// here is slower, and nothing here may fail for that (issue 13, item 10):
// each test asserts what must hold (no split, no link lost, no entry lost,
// every bad frame counted), waits for convergence with a bound that only
// catches a hang, reports its timings, and bounds the one latency it judges
// by a floor measured in the same run (QUERY answers under the flood against
// the same probe without it). Each test is self-contained: it does not rely
// on the previous one having converged.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { request } from '../../src/control/client';
import { addonOrSkip } from '../helpers/addon';
import { Lan, netnsUnavailable } from '../helpers/netns';
import { type Bundle, failures, GROUP, NetnsCluster, PORT, splits, tsx, UNICAST_PORT } from '../helpers/netns-cluster';
import { haveCommand, requireOrSkip } from '../helpers/require';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits for what must happen are bounded only to catch a hang: a busy machine is slow, not wrong. */
const HANG_MS = 300_000;

/** Runs a fixture in host h and resolves with its one JSON line. */
function fixture(c: NetnsCluster, h: number, script: string, arg: object): { child: ChildProcess; result: Promise<any> } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const child = spawn(c.lan.exec(h)[0], [...c.lan.exec(h).slice(1), ...tsx(script), JSON.stringify(arg)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const result = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l)));
    child.once('exit', (code) => code !== 0 && reject(new Error(`${script} exited ${code}: ${err}`)));
  });
  return { child, result };
}

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(200);
  }
  return Date.now() - t0;
}

describe('faults in network namespaces: loss, SIGKILL, partition, floods, key rotation', function () {
  this.timeout(1_800_000);
  let lan: Lan | undefined;
  let dir = '';
  let c: NetnsCluster;
  const lossy: Bundle[] = [];

  before(async function () {
    addonOrSkip(this);
    const why = netnsUnavailable();
    requireOrSkip(this, !why, why ?? '');
    requireOrSkip(this, haveCommand('nft'), 'nftables (nft) is not installed: apt-get install nftables');
    lan = new Lan(6); // h0-h2 nodes, h3 endpoints, h4 clients and prober, h5 the attacker
    dir = mkdtempSync(join(tmpdir(), 'affinityd-faults-'));
    c = new NetnsCluster(lan, dir, 3, () =>
      [
        // time-outs with room for a 2-core VM running three nodes, 10,000 clients and their endpoints
        'query: { count: 6, intervalMs: 15, timeoutMs: 50, updateRepeats: 3 }',
        'selection: { policy: round-robin }',
        // timeoutMs bounds a sync that hangs, not a slow one (a busy machine took 18 s for 10,000 entries)
        'sync: { timeoutMs: 300000, retryMs: 200, retries: 5 }',
        'antiEntropy: { intervalMs: 1000, buckets: 64 }',
        'log: { level: info }',
      ].join('\n'),
    );
    await c.startEndpoints();
    for (let i = 0; i < 3; i++) await c.start(i);
  });

  after(() => {
    c?.stopAll();
    lan?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('20% of cluster datagrams lost on every link: no split bundle over 10,000 clients', async () => {
    c.addLoss(20);
    const t0 = Date.now();
    lossy.push(...c.bundles({ clients: 10_000, links: 2, prefix: 'lossy', gapMs: 5, startGapMs: 3, sequential: true }));
    const secs = (Date.now() - t0) / 1000;
    const dropped = c.removeLoss();
    console.log(`      10000 bundles x 2 links in ${secs.toFixed(1)} s; ${dropped} cluster datagrams dropped by nftables; links that failed: ${failures(lossy).length}; split bundles: ${splits(lossy).length}`);
    assert.ok(dropped > 10_000, `the loss rule dropped only ${dropped}: the test did not test loss`);
    assert.deepEqual(failures(lossy).slice(0, 5), []);
    assert.deepEqual(splits(lossy).slice(0, 5), []);
    // and once the loss stops, the digests bring every node the entries it missed
    const left = await c.disagreement();
    const convergeMs = await until('every node holds every entry after the loss', HANG_MS, async () => {
      const d = await c.disagreement();
      return d.differing.length === 0 && d.missing === 0;
    });
    console.log(`      right after: ${left.missing} clients missing at some node, ${left.differing.length} held differently; all nodes identical ${convergeMs} ms later`);
  });

  it('a node killed with SIGKILL and restarted syncs and routes its clients as before: entries lost 0', async () => {
    // start from a cluster that agrees (the previous test waits for it too, but may have failed before)
    const agreeMs = await until('every node agrees before the kill', HANG_MS, async () => {
      const d = await c.disagreement();
      return d.differing.length === 0 && d.missing === 0;
    });
    const before = await c.entries(0);
    const landed = lossy.filter((b) => b.landed.every((l) => /^lns-[abc]$/.test(l))).length;
    assert.ok(before.size >= landed, `node 1 holds ${before.size} entries for ${landed} bundles that landed (agreed after ${agreeMs} ms)`);
    await c.kill(2, 'SIGKILL');
    const t0 = Date.now();
    await c.start(2); // resolves at "bulk sync done"
    const startMs = Date.now() - t0;
    const s = await c.stats(2);
    assert.equal(s.sync.state, 'ready');
    assert.equal(s.sync.outcome.end, 'complete', JSON.stringify(s.sync.outcome));
    const after = await c.entries(2);
    let lost = 0;
    for (const [client, e] of before) {
      const x = after.get(client);
      if (!x || x.endpoint !== e.endpoint || x.version !== e.version) lost++;
    }
    console.log(
      `      restarted node synced ${after.size} entries from node ${s.sync.outcome.sourceNode} in ${Math.round(s.sync.outcome.ms)} ms ` +
        `(${s.sync.outcome.entries} received, the other peer's first window included; process start to ready ${startMs} ms); entries lost: ${lost}`,
    );
    assert.equal(lost, 0);
    // its clients come back through it and land where their bundles are
    const again = c.bundles({ clients: 300, links: 1, prefix: 'lossy', gapMs: 0, startGapMs: 2, fronts: [c.front(2)] });
    const was = new Map(lossy.map((b) => [b.key, b.landed[0]]));
    const moved = again.filter((b) => b.landed[0] !== was.get(b.key));
    assert.deepEqual(moved.slice(0, 5), []);
    assert.equal((await c.stats(2)).router.selected, 0, 'the restarted node made no new entry for a known client');
  });

  it('a partition with calls on both sides, then healed: every node agrees, split bundles 0', async () => {
    c.partition([0]); // {node 1} | {node 2, node 3}
    await sleep(300);
    // links of one bundle on both sides of the cut: unavoidable splits while cut
    const across = c.bundles({ clients: 150, links: 2, prefix: 'cut', gapMs: 5, startGapMs: 2, sequential: true, fronts: [c.front(0), c.front(1)] });
    const onlyA = c.bundles({ clients: 100, links: 2, prefix: 'sideA', gapMs: 5, startGapMs: 2, sequential: true, fronts: [c.front(0)] });
    const onlyB = c.bundles({ clients: 100, links: 2, prefix: 'sideB', gapMs: 5, startGapMs: 2, sequential: true, fronts: [c.front(1), c.front(2)] });
    const during = splits(across).length;
    const split = await c.disagreement();
    const dropped = c.heal();
    const healMs = await until('every node agrees after the heal', HANG_MS, async () => {
      const d = await c.disagreement();
      return d.differing.length === 0 && d.missing === 0;
    });
    const repaired = (await Promise.all([0, 1, 2].map((i) => c.stats(i)))).reduce((n, s) => n + s.sync.applied.conflictsRepaired, 0);
    console.log(
      `      while cut: ${during} of 150 bundles across the cut split, ${split.endpoints.length} clients held with two endpoints ` +
        `(${split.differing.length} with two versions), ${dropped} datagrams dropped; ` +
        `after the heal every node agreed in ${healMs} ms; repairs counted: ${repaired}; split bundles after the heal: 0`,
    );
    assert.deepEqual([...failures(across), ...failures(onlyA), ...failures(onlyB)].slice(0, 5), []);
    assert.deepEqual([...splits(onlyA), ...splits(onlyB)], [], 'one side alone never splits');
    assert.ok(split.endpoints.length > 0, 'the partition made conflicting entries (else it tested nothing)');
    assert.ok(repaired >= split.endpoints.length, `${repaired} repairs counted for ${split.endpoints.length} clients with two endpoints`);
    assert.ok(c.logs.flat().some((l) => l.includes('split bundle repaired')), 'repairs are logged');
    // a new link of every client, at any node, now lands on one endpoint
    const later = c.bundles({ clients: 150, links: 3, prefix: 'cut', gapMs: 0, startGapMs: 1 });
    assert.deepEqual(splits(later), []);
  });

  it('floods of garbage, oversized, forged and replayed frames: answers stay in bounds, every bad frame counted, no entry changes', async () => {
    const keys = lossy.slice(0, 200).map((b) => b.key);
    const before = await c.entries(0);
    const s0 = await c.stats(0);
    // UDP datagrams the kernel dropped in node 1's namespace (socket buffer full, bad checksum)
    const drops = () => {
      const r = readFileSync(`/proc/${c.procs[0]!.pid}/net/snmp`, 'utf8');
      const lines = r.split('\n').filter((l) => l.startsWith('Udp:'));
      const [names, values] = lines.map((l) => l.split(/\s+/));
      return Number(values[names.indexOf('RcvbufErrors')]) + Number(values[names.indexOf('InErrors')]);
    };
    const d0 = drops();
    const baseline = await fixture(c, 4, 'test/fixtures/prober.ts', {
      nodeId: 99, group: GROUP, port: PORT, interface: c.lan.hosts[4].ipv4, keyHex: '5e'.repeat(32), keyId: 1,
      target: { address: c.lan.hosts[0].ipv4, port: UNICAST_PORT }, keys, count: 400, everyMs: 2,
    }).result;
    const flood = fixture(c, 5, 'test/fixtures/flood.ts', { group: GROUP, port: PORT, interface: c.lan.hosts[5].ipv4, captureMs: 1500, count: 20_000, claimNode: 2, replaySkipNode: 1 });
    // traffic for the attacker to capture, then probe while it floods
    c.bundles({ clients: 50, links: 1, prefix: 'capture-me', gapMs: 0, startGapMs: 10 });
    await sleep(1500);
    const probe = await fixture(c, 4, 'test/fixtures/prober.ts', {
      nodeId: 98, group: GROUP, port: PORT, interface: c.lan.hosts[4].ipv4, keyHex: '5e'.repeat(32), keyId: 1,
      target: { address: c.lan.hosts[0].ipv4, port: UNICAST_PORT }, keys, count: 1000, everyMs: 2,
    }).result;
    const { sent, ms: floodMs } = (await flood.result) as { sent: Record<string, number>; ms: number };
    // the same probe again without the flood: with the one before, the floor of this run
    const quietAfter = await fixture(c, 4, 'test/fixtures/prober.ts', {
      nodeId: 97, group: GROUP, port: PORT, interface: c.lan.hosts[4].ipv4, keyHex: '5e'.repeat(32), keyId: 1,
      target: { address: c.lan.hosts[0].ipv4, port: UNICAST_PORT }, keys, count: 400, everyMs: 2,
    }).result;
    const quietP99 = Math.max(baseline.p99Ms, quietAfter.p99Ms);
    await sleep(500);
    const s1 = await c.stats(0);
    const dv = (k: string) => (s1.responder.verdicts[k] ?? 0) - (s0.responder.verdicts[k] ?? 0);
    const kernelDrops = drops() - d0;
    console.log(
      `      flood sent ${JSON.stringify(sent)} in ${(floodMs / 1000).toFixed(1)} s; node 1 counted badMagic ${dv('badMagic')}, truncated ${dv('truncated')}, oversize ${dv('oversize')}, badTag ${dv('badTag')}, unknownKey ${dv('unknownKey')}, ` +
        `replay ${dv('replay')}, stale ${dv('stale')}; kernel drops ${kernelDrops}\n` +
        `      QUERY answers at node 1: p99 ${baseline.p99Ms.toFixed(2)} ms quiet before, ${quietAfter.p99Ms.toFixed(2)} ms quiet after, ${probe.p99Ms.toFixed(2)} ms under the flood ` +
        `(${(probe.p99Ms / quietP99).toFixed(1)}x the quiet p99; max ${probe.maxMs.toFixed(2)}); answered ${probe.answered}/${probe.sent}`,
    );
    assert.ok(sent.garbage > 1000 && sent.replay > 1000, 'the flood ran');
    // every bad datagram is counted: by a verdict, or by the kernel when the socket buffer was full
    const bad = sent.garbage + sent.oversize + sent.wrongKey + sent.unknownKeyId + sent.replay;
    const counted = dv('badMagic') + dv('truncated') + dv('oversize') + dv('badTag') + dv('unknownKey') + dv('replay') + dv('stale');
    assert.ok(counted <= bad + 50, `counted ${counted} of ${bad} sent: more than was sent?`);
    assert.ok(counted + kernelDrops >= bad, `${bad} bad datagrams sent, ${counted} counted + ${kernelDrops} dropped by the kernel`);
    assert.ok(dv('badMagic') + dv('truncated') <= sent.garbage && dv('oversize') <= sent.oversize && dv('unknownKey') <= sent.unknownKeyId);
    // the peer the forger claimed to be is charged with the failures
    const peers = (await request(c.control(0), { cmd: 'show-peers' })) as { nodeId: number; authFailures: number }[];
    assert.ok(peers.find((p) => p.nodeId === 2)!.authFailures >= dv('badTag') * 0.9);
    // every QUERY answered (the prober waits for late answers too), and the flood does not make
    // answers an order slower than the same probe without it, on this machine, in this run
    assert.ok(probe.answered >= probe.sent * 0.99, `${probe.answered} of ${probe.sent} answered`);
    assert.ok(probe.p99Ms <= Math.max(50, 10 * quietP99), `p99 ${probe.p99Ms.toFixed(2)} ms under the flood; quiet p99 ${quietP99.toFixed(2)} ms`);
    // no entry changed
    const after = await c.entries(0);
    for (const [client, e] of before) assert.equal(after.get(client)?.endpoint, e.endpoint, client);
  });

  it('key rotation with traffic running: no message refused, no bundle split', async () => {
    const s0 = await Promise.all([0, 1, 2].map((i) => c.stats(i)));
    const traffic = fixture(c, 4, 'test/fixtures/bundle-client.ts', { fronts: [0, 1, 2].map((i) => c.front(i)), clients: 600, links: 2, prefix: 'rotate', gapMs: 5, startGapMs: 8, sequential: true });
    const reloadAll = async (step: string) => {
      for (let i = 0; i < 3; i++) {
        const n = c.logs[i].length;
        c.procs[i]!.kill('SIGHUP');
        await until(`node ${i + 1} reloads (${step})`, HANG_MS, async () => c.logs[i].slice(n).some((l) => l.includes('configuration reloaded')));
      }
    };
    const k1 = `1 ${'5e'.repeat(32)}`;
    const k2 = `2 ${'a7'.repeat(32)}`;
    await sleep(500);
    c.setKeys(`${k1} send`, k2); // 1: everyone learns key 2
    await reloadAll('learn key 2');
    await sleep(500);
    c.setKeys(k1, `${k2} send`); // 2: everyone sends with key 2
    await reloadAll('send with key 2');
    await sleep(500);
    c.setKeys(`${k2} send`); // 3: key 1 is retired
    await reloadAll('retire key 1');
    const b = (await traffic.result) as Bundle[];
    const s1 = await Promise.all([0, 1, 2].map((i) => c.stats(i)));
    const refused = s1.map((s, i) => ['badTag', 'unknownKey'].reduce((n, k) => n + (s.responder.verdicts[k] ?? 0) - (s0[i].responder.verdicts[k] ?? 0), 0));
    const sent = s1.reduce((n, s, i) => n + s.responder.sent - s0[i].responder.sent, 0);
    console.log(`      600 bundles through three key changes; ${sent} frames sent; refused for their key: ${refused.join(', ')}`);
    assert.deepEqual(refused, [0, 0, 0]);
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
    assert.ok(sent > 1000);
  });
});
