// Issue 11, "must show": bundle integrity with three `affinityd run` nodes in
// network namespaces. Each client's three links arrive at the three nodes
// within a few milliseconds of each other, with 20% of cluster datagrams
// dropped, under every selection policy: 0 split bundles, 0 failed links. A
// partition while links arrive on both sides: after the heal the live-split
// figures equal the split clients the endpoints count, and with splitRepair
// close the stray links are closed, redialed, and land whole. A duplicate
// node id for 10 s: logged at error on every node, and the real node heard
// again within 10 s after the impostor stops.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { request } from '../../src/control/client';
import type { PeerView } from '../../src/control/protocol';
import type { SplitView } from '../../src/links/split-detector';
import { addonOrSkip } from '../helpers/addon';
import { Lan, netnsUnavailable } from '../helpers/netns';
import { failures, GROUP, NetnsCluster, PORT, splits, started, tsx, UNICAST_PORT } from '../helpers/netns-cluster';
import { haveCommand, requireOrSkip } from '../helpers/require';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ms: number, ok: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await ok())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(200);
  }
  return Date.now() - t0;
}

describe('bundle integrity in network namespaces: agreement, live splits, node identity (issue 11)', function () {
  this.timeout(1_800_000);
  let lan: Lan | undefined;
  let dir = '';
  let c: NetnsCluster;
  let policy = 'round-robin';
  let repair = 'close';

  before(async function () {
    addonOrSkip(this);
    const why = netnsUnavailable();
    requireOrSkip(this, !why, why ?? '');
    requireOrSkip(this, haveCommand('nft'), 'nftables (nft) is not installed: apt-get install nftables');
    lan = new Lan(6); // h0-h2 nodes, h3 endpoints, h4 clients, h5 an impostor
    dir = mkdtempSync(join(tmpdir(), 'affinityd-bundles-'));
    // the LAN defaults for QUERYs and agreement; only the policy and the repair vary
    c = new NetnsCluster(lan, dir, 3, () => [`selection: { policy: ${policy} }`, `links: { splitRepair: ${repair}, checkIntervalMs: 500 }`, 'antiEntropy: { intervalMs: 1000 }', 'log: { level: info }'].join('\n'));
    await c.startEndpoints();
  });

  afterEach(function () {
    if (this.currentTest?.state !== 'failed' || !c) return;
    // what the nodes said that was not routine, for the failure's story
    for (let i = 0; i < 3; i++) {
      const odd = (c.logs[i] ?? []).filter((l) => /"level":(40|50|60)/.test(l));
      console.log(`      node ${i + 1}: ${odd.length} warnings/errors; last: ${odd.slice(-5).join('\n        ')}`);
    }
  });

  after(() => {
    c?.stopAll();
    lan?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function restartAll(): Promise<void> {
    for (let i = 0; i < 3; i++) await c.kill(i, 'SIGKILL');
    for (let i = 0; i < 3; i++) await c.start(i);
  }

  const sum = async (f: (s: any) => number) => (await Promise.all([0, 1, 2].map((i) => c.stats(i)))).reduce((a, s) => a + f(s), 0); // eslint-disable-line @typescript-eslint/no-explicit-any

  for (const p of ['round-robin', 'least-connections', 'rendezvous']) {
    it(`2,000 clients x 3 links at the three nodes at once, 20% of cluster datagrams lost: 0 split, 0 failed (${p})`, async () => {
      policy = p;
      repair = 'report'; // nothing closed behind the test's back: a split must show as one
      await restartAll();
      c.addLoss(20);
      const t0 = Date.now();
      const b = c.bundles({ clients: 2000, links: 3, prefix: `agree-${p}`, gapMs: 1, startGapMs: 2 }, 600_000);
      const secs = (Date.now() - t0) / 1000;
      const dropped = c.removeLoss();
      const won = await sum((s) => s.router.claimsWon);
      const lost = await sum((s) => s.router.claimsLost);
      const timeouts = await sum((s) => s.router.agreementTimeouts);
      const retries = await sum((s) => s.router.claimRetries);
      const handedOver = await sum((s) => s.router.claimsHandedOver);
      const repairs = await sum((s) => s.router.handoverRepairs);
      const rerouted = await sum((s) => s.router.rerouted);
      console.log(
        `      ${p}: 2000 bundles x 3 links in ${secs.toFixed(1)} s; ${dropped} cluster datagrams dropped; split bundles ${splits(b).length}, failed links ${failures(b).length}; ` +
          `proposals won ${won}, adopted ${lost}, resent ${retries}, decided alone ${timeouts}, handed over ${handedOver} (repaired ${repairs}), rerouted ${rerouted}`,
      );
      assert.ok(dropped > 2000, `the loss rule dropped only ${dropped}: the test did not test loss`);
      for (const x of splits(b).slice(0, 3)) {
        // the story of a split: what each node holds for the client now
        const held = await Promise.all([0, 1, 2].map((i) => request(c.control(i), { cmd: 'show-entry', client: x.key }).catch((e: Error) => e.message)));
        console.log(`      split ${x.key}: links landed ${JSON.stringify(x.landed)}; held: ${held.map((h, i) => `node ${i + 1} ${JSON.stringify(h)}`).join('; ')}`);
      }
      assert.deepEqual(failures(b).slice(0, 5), []);
      assert.deepEqual(splits(b).slice(0, 5), []);
    });
  }

  it('a partition while links arrive on both sides: after the heal the live-split figures equal the endpoints\' count; with close the redialed links land whole', async () => {
    policy = 'round-robin';
    repair = 'report';
    await restartAll();
    // one decision at node 1 alone first: its round-robin is then a step ahead
    // of node 2's, so the two sides of the cut choose differently
    assert.deepEqual(failures(c.bundles({ clients: 1, links: 1, prefix: 'offset', gapMs: 0, startGapMs: 0, fronts: [c.front(0)] })), []);
    c.partition([0]);
    // each client: one link through node 1, one through node 2, on either side of the cut
    const held = c.holdBundles({ clients: 60, links: 2, prefix: 'cut', gapMs: 0, startGapMs: 20, redialMs: 300, frontOf: [0, 1] });
    await until('every link connected', 120_000, async () => (await held.status()).every((x) => x.landed.every((l) => /^lns-/.test(l))));
    const during = await c.endpointReport();
    const cutDrops = c.heal();
    assert.ok(during.splitNow.length > 0, 'round-robin on both sides of a cut must have split some bundles');
    // the digests bring both sides to one entry per client, and the nodes find the stray links
    await until('every node agrees on every client', 60_000, async () => (await c.disagreement()).endpoints.length === 0);
    await sleep(1500); // a few live-split checks (every 500 ms)
    const views = (await Promise.all([0, 1, 2].map((i) => request(c.control(i), { cmd: 'show-splits' })))) as SplitView[][];
    const found = new Set(views.flat().map((v) => v.client));
    const atEndpoints = new Set((await c.endpointReport()).splitNow);
    console.log(`      cut: ${cutDrops} datagrams dropped; split at the endpoints ${atEndpoints.size} (of 60 clients), found by the nodes ${found.size}; detected ${await sum((s) => s.links.detected)}, stray links now ${await sum((s) => s.links.strayLinks)}`);
    assert.deepEqual([...found].sort(), [...atEndpoints].sort(), 'the nodes name exactly the clients split at the endpoints');
    assert.equal(await sum((s) => s.links.closed), 0, 'report only');
    // now close: the stray links are closed, the clients redial, and land on their agreed endpoint
    repair = 'close';
    for (let i = 0; i < 3; i++) {
      c.configFile(i);
      await request(c.control(i), { cmd: 'reload' });
    }
    // closing a stray link ends the split at the endpoints at once; the redial then lands the link again
    const healMs = await until('every link up again, every bundle whole', 60_000, async () => {
      const now = await held.status();
      return splits(now).length === 0 && failures(now).length === 0 && (await c.endpointReport()).splitNow.length === 0;
    });
    const final = await held.stop();
    const closed = await sum((s) => s.links.closed);
    console.log(`      with close: ${closed} stray links closed; every link redialed and every client whole at its endpoints ${healMs} ms after the reload; redials ${final.reduce((a, x) => a + x.redials, 0)}`);
    assert.equal(closed, atEndpoints.size, 'one stray link closed per split client (two links each)');
    assert.deepEqual(splits(final).map((x) => x.key), []);
    assert.deepEqual(failures(final), []);
  });

  it('a duplicate node id for 10 s: logged at error on every node; the real node heard again within 10 s after it stops', async () => {
    policy = 'rendezvous';
    repair = 'close';
    await restartAll();
    const h = lan!.hosts[5];
    const cfg = join(dir, 'impostor.yaml');
    writeFileSync(
      cfg,
      [
        'node: { id: 1 }',
        `cluster: { group: ${GROUP}, port: ${PORT}, unicastPort: ${UNICAST_PORT}, interface: ${h.ipv4}, keyFile: ${c.keyFile} }`,
        'endpoints:',
        `  - { name: lns-a, address: ${c.epHost}, port: 1701 }`,
      ].join('\n'),
    );
    const imp: ChildProcess = spawn(lan!.exec(5)[0], [...lan!.exec(5).slice(1), ...tsx('src/cli/main.ts'), 'run', '--config', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    const impLog: string[] = [];
    createInterface({ input: imp.stdout! }).on('line', (l) => impLog.push(l));
    await started(imp, /"msg":"node started"/, 'the impostor');
    await sleep(10_000);
    const errors = [0, 1, 2].map((i) => c.logs[i].filter((l) => /"level":50/.test(l) && /duplicate node id/.test(l)));
    const peers2 = (await request(c.control(1), { cmd: 'show-peers' })) as PeerView[];
    console.log(`      duplicate node id logged at error: node 1 ${errors[0].length}, node 2 ${errors[1].length}, node 3 ${errors[2].length}; the impostor ${impLog.filter((l) => /duplicate node id/.test(l)).length}`);
    for (const [i, e] of errors.entries()) assert.ok(e.length >= 1, `node ${i + 1} logged no error`);
    assert.ok(errors.every((e) => e.length <= 3), 'once per incident, not per frame');
    assert.ok(peers2.some((p) => p.nodeId === 1 && p.duplicateIncidents >= 1), JSON.stringify(peers2));
    imp.kill('SIGKILL');
    await new Promise((r) => imp.once('exit', r));
    const stoppedAt = Date.now();
    const heardMs = await until('the real node heard again, not flagged', 10_000, async () => {
      const ps = (await Promise.all([1, 2].map((i) => request(c.control(i), { cmd: 'show-peers' })))) as PeerView[][];
      return ps.every((list) => list.some((p) => p.nodeId === 1 && !p.duplicateNodeId && p.state === 'ready' && (p.lastHeardMsAgo ?? 1e9) < 1000));
    });
    const b = c.bundles({ clients: 30, links: 3, prefix: 'after-impostor', gapMs: 1, startGapMs: 5 });
    console.log(`      after the impostor stopped: node 1 heard as ready and single ${heardMs} ms later (${Date.now() - stoppedAt} ms); 30 bundles through it: ${splits(b).length} split`);
    assert.deepEqual(failures(b), []);
    assert.deepEqual(splits(b), []);
  });
});
