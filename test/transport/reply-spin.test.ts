// The reply spin's window (src/transport/reply-spin.ts), without the addon:
// it starts at the maximum, halves on a fruitless spin, is off below the
// smallest useful window except for one probe in PROBE_EVERY QUERYs, and
// grows back when REPLYs come within the maximum. Then in a node: spins
// counted, and none with the setting at 0.
import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { MIN_SPIN_MICROS, PROBE_EVERY, ReplySpin } from '../../src/transport/reply-spin';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';

const lns1 = { name: 'lns-1', address: '198.51.100.10', port: 1701 };

describe('reply spin window (pure)', () => {
  it('starts at the maximum and halves on each spin that caught nothing, then is off', () => {
    const s = new ReplySpin(50);
    assert.equal(s.take(), 50);
    s.spun(false);
    assert.equal(s.take(), 25);
    s.spun(false);
    assert.equal(s.take(), 12.5);
    s.spun(false); // 6.25 < MIN_SPIN_MICROS
    assert.equal(s.window, 0);
  });

  it('while off, probes with the smallest window once in PROBE_EVERY QUERYs (misses cost little)', () => {
    const s = new ReplySpin(50);
    for (let i = 0; i < 3; i++) s.spun(false);
    const budgets = Array.from({ length: 4 * PROBE_EVERY }, () => {
      const b = s.take();
      if (b > 0) s.spun(false); // a probe that caught nothing: still off
      return b;
    });
    assert.deepEqual(
      budgets.filter((b) => b > 0),
      [MIN_SPIN_MICROS, MIN_SPIN_MICROS, MIN_SPIN_MICROS, MIN_SPIN_MICROS],
    );
    assert.equal(budgets.indexOf(MIN_SPIN_MICROS), PROBE_EVERY - 1);
  });

  it('a probe that catches a REPLY turns the spin back on, doubling up to the maximum', () => {
    const s = new ReplySpin(50);
    for (let i = 0; i < 3; i++) s.spun(false);
    let b = 0;
    while (b === 0) b = s.take();
    s.spun(true);
    assert.equal(s.take(), MIN_SPIN_MICROS);
    s.spun(true);
    assert.equal(s.take(), 20);
    s.spun(true);
    assert.equal(s.take(), 40);
    s.spun(true);
    assert.equal(s.take(), 50, 'never beyond the maximum');
  });

  it('a REPLY through the event loop within the maximum grows the window to cover it; a later one does not', () => {
    const s = new ReplySpin(50);
    s.spun(false);
    s.spun(false);
    assert.equal(s.window, 12.5);
    s.replyAfter(80); // beyond the maximum: a spin would not have caught it
    assert.equal(s.window, 12.5);
    s.replyAfter(37.2);
    assert.equal(s.window, 38);
    s.replyAfter(10);
    assert.equal(s.window, 50);
  });

  it('0 (or a maximum below the smallest useful window) never spins', () => {
    for (const max of [0, MIN_SPIN_MICROS - 1]) {
      const s = new ReplySpin(max);
      for (let i = 0; i < 3 * PROBE_EVERY; i++) {
        assert.equal(s.take(), 0);
        s.replyAfter(1);
        s.spun(true);
      }
      assert.equal(s.window, 0);
    }
  });

  it('refuses a negative or non-finite maximum', () => {
    assert.throws(() => new ReplySpin(-1), RangeError);
    assert.throws(() => new ReplySpin(Number.NaN), RangeError);
  });
});

describe('reply spin in a node (addon, two nodes on loopback)', function () {
  this.timeout(60_000);

  for (const replySpinMicros of [50, 0]) {
    it(`remote hits with cluster.replySpinMicros ${replySpinMicros}: ${replySpinMicros ? 'spins counted, each with or without a REPLY' : 'no spin'}, every hit remote`, async function () {
      addonOrSkip(this);
      const net = testGroup();
      const nodes: AffinityNode[] = [];
      try {
        for (const id of [1, 2]) {
          nodes.push(await createNode({ node: { id }, cluster: { ...net, interface: '127.0.0.1', replySpinMicros }, endpoints: [lns1], sync: { enabled: false }, antiEntropy: { enabled: false } }, { keyring: testKeyring() }));
        }
        const [a, b] = nodes;
        const keys = Array.from({ length: 50 }, (_, i) => parseClientKey(`2:192.0.2.${i}/spin-${i}`));
        for (const k of keys) b.directory.apply(clientKeyBytes(k), { endpoint: lns1, version: 1, originNode: 2, ttlSeconds: 600 });
        for (const k of keys) assert.equal((await a.route(k)).source, 'remote');
        const c = a.link.counters;
        if (replySpinMicros) {
          assert.ok(c.replySpins >= 1, `spun (${c.replySpins} spins for 50 QUERYs)`);
          assert.ok(c.replySpinHits <= c.replySpins);
          assert.ok(c.replySpinMicrosSpent > 0);
        } else {
          assert.deepEqual([c.replySpins, c.replySpinHits, c.replySpinMicrosSpent], [0, 0, 0]);
        }
        assert.equal(a.responder.stats().repliesRead, 50, 'every REPLY read from the reply socket, by a spin or by the event loop');
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });
  }

  it('with the spin on at three nodes, the links of one client arriving at all three at once still reach one endpoint', async function () {
    addonOrSkip(this);
    const net = testGroup();
    const eps = ['198.51.100.10', '198.51.100.11', '198.51.100.12'].map((address, i) => ({ name: `lns-${i}`, address, port: 1701 }));
    const nodes: AffinityNode[] = [];
    try {
      for (const id of [1, 2, 3]) {
        nodes.push(await createNode({ node: { id }, cluster: { ...net, interface: '127.0.0.1', replySpinMicros: 50 }, endpoints: eps, selection: { policy: 'round-robin' }, sync: { enabled: false }, antiEntropy: { enabled: false } }, { keyring: testKeyring() }));
      }
      // every node sees the others ready (HELLOs every 500 ms)
      for (let t = 0; t < 200 && nodes.some((n) => n.link.members().filter((m) => m.ready).length < 2); t++) await new Promise((r) => setTimeout(r, 50));
      const split: string[] = [];
      for (let i = 0; i < 100; i++) {
        const k = parseClientKey(`0/spin-race-${i}`);
        const r = await Promise.all(nodes.map((n) => n.route(k)));
        if (new Set(r.map((x) => x.endpoint.name)).size > 1) split.push(`${i}: ${r.map((x) => `${x.source}:${x.endpoint.name}`).join(' ')}`);
      }
      assert.deepEqual(split, []);
      // and a later call at each node goes where the first ones went
      for (let i = 0; i < 100; i++) {
        const k = parseClientKey(`0/spin-race-${i}`);
        assert.equal(new Set((await Promise.all(nodes.map((n) => n.route(k)))).map((x) => x.endpoint.name)).size, 1);
      }
      assert.ok(nodes.some((n) => n.link.counters.replySpins > 0), 'the spin ran');
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});
