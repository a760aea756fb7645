// A REPLY that arrives while the querier's JS thread is stalled (GC, a busy
// loop, an overloaded host) is still an answer: the time-out timer that fires
// first after the stall lets the pending I/O be handled before it decides.
import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';

describe('router under a stalled JS thread (addon, loopback)', function () {
  this.timeout(20_000);
  const nodes: AffinityNode[] = [];
  before(async function () {
    addonOrSkip(this);
    const net = testGroup();
    const keyring = testKeyring(0x2c);
    for (const id of [1, 2]) {
      nodes.push(
        await createNode(
          {
            node: { id },
            cluster: { ...net, interface: '127.0.0.1' },
            // no direct round: a time-out here means deciding alone
            // one QUERY, so the stall falls after the last one, inside its time-out
            query: { count: 1, intervalMs: 10, timeoutMs: 20, updateRepeats: 1 },
            agreement: { enabled: false },
            selection: { policy: 'round-robin' },
            sync: { enabled: false },
            endpoints: ['198.51.100.1', '198.51.100.2', '198.51.100.3'].map((address, i) => ({ name: `lns-${i}`, address, port: 1701 })),
          },
          { keyring },
        ),
      );
    }
  });
  after(async () => Promise.all(nodes.map((n) => n.close())));

  it('counts a REPLY that came in time but waited behind the stall, instead of deciding alone', async () => {
    const [a, b] = nodes;
    for (let i = 0; i < 5; i++) {
      const key = `1:0b0${i}/stalled${i}`;
      const made = await a.route(key);
      // b must ask: wait for a's UPDATE to land there, then forget it
      const k = clientKeyBytes(parseClientKey(key));
      for (let t = 0; t < 200 && !b.directory.lookup(k); t++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(b.directory.lookup(k), "a's UPDATE reached b");
      b.directory.clear();
      const pending = b.route(key); // the first QUERY goes out now
      const end = Date.now() + 150; // far past the time-out (20 ms)
      while (Date.now() < end) {
        /* stalled; a's I/O thread answers meanwhile */
      }
      const r = await pending;
      assert.equal(r.source, 'remote', `call ${i}: decided ${r.source} after the stall`);
      assert.deepEqual(r.endpoint, made.endpoint);
    }
    assert.equal(b.router.counters.selected, 0);
  });
});
