// Agreement on real sockets, three nodes in this process on loopback: first
// calls of one client at the three nodes at the same moment reach one
// endpoint under the policies that choose from local state. The native I/O
// threads store CLAIMs and UPDATEs while the JS thread decides, so this is
// where races between the two show (the memory doubles cannot show them).
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';

const endpoints = ['198.51.100.10', '198.51.100.11', '198.51.100.12'].map((address, i) => ({ name: `lns-${i}`, address, port: 1701 }));

describe('agreement on loopback, three nodes in one process', function () {
  this.timeout(120_000);
  for (const policy of ['round-robin', 'least-connections'] as const) {
    it(`300 clients whose first calls reach the three nodes at once: one endpoint each (${policy})`, async function () {
      addonOrSkip(this);
      const net = testGroup();
      const nodes: AffinityNode[] = [];
      try {
        for (let id = 1; id <= 3; id++) {
          nodes.push(await createNode({ node: { id }, cluster: { ...net, interface: '127.0.0.1' }, endpoints, selection: { policy }, sync: { enabled: false }, antiEntropy: { enabled: false } }, { keyring: testKeyring() }));
        }
        // every node sees the others ready (HELLOs every 500 ms)
        for (let t = 0; t < 100 && nodes.some((n) => n.link.members().filter((m) => m.ready).length < 2); t++) await new Promise((r) => setTimeout(r, 50));
        const split: string[] = [];
        for (let i = 0; i < 300; i++) {
          const k = parseClientKey(`0/race-${policy}-${i}`);
          const r = await Promise.all(nodes.map((n) => n.route(k)));
          if (new Set(r.map((x) => x.endpoint.name)).size > 1) split.push(`${i}: ${r.map((x) => `${x.source}:${x.endpoint.name}:v${x.version}/${x.originNode}`).join(' ')}`);
        }
        assert.deepEqual(split, []);
        const c = nodes.map((n) => n.router.counters);
        assert.equal(c.reduce((s, x) => s + x.agreementTimeouts, 0), 0);
        assert.ok(c.reduce((s, x) => s + x.claimsWon, 0) >= 300, 'every client was agreed on');
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });
  }
});
