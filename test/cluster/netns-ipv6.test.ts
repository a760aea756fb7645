// The QUERY/REPLY exchange over IPv6 multicast between two hosts in network
// namespaces this test creates (IPv6 multicast does not loop back on lo).
import assert from 'node:assert/strict';

import { addonOrSkip } from '../helpers/addon';
import { ChildNode } from '../helpers/child-node';
import { Lan, netnsUnavailable } from '../helpers/netns';
import { requireOrSkip } from '../helpers/require';

const keyring = { keys: [{ id: 1, secret: '22'.repeat(32) }], sendKeyId: 1 };

describe('IPv6 between two network namespaces', function () {
  this.timeout(30_000);
  let lan: Lan | undefined;
  const nodes: ChildNode[] = [];
  before(function () {
    addonOrSkip(this);
    const why = netnsUnavailable();
    requireOrSkip(this, !why, why ?? '');
  });
  after(() => {
    nodes.forEach((n) => n.kill());
    lan?.destroy();
  });

  it('answers a QUERY multicast to ff15::a:1 with a unicast REPLY over IPv6', async () => {
    lan = new Lan(2);
    const port = 24000 + Math.floor(Math.random() * 1000);
    const [a, b] = [0, 1].map((i) => new ChildNode(`host${i}`, lan!.exec(i)));
    nodes.push(a, b);
    await Promise.all(nodes.map((n) => n.wait((e) => e.event === 'ready', 10_000, 'ready')));
    const opened = await Promise.all(
      [a, b].map((n, i) =>
        n.request({ op: 'open', keyring, options: { nodeId: i + 1, bootEpoch: 1, group: 'ff15::a:1', port, interface: lan!.hosts[i].ifname, localAddress: lan!.hosts[i].ipv6 } }, 'opened'),
      ),
    );
    assert.equal(opened[1].address.family, 'IPv6');
    await a.request({ op: 'store', key: '3:00:1b:21:3c:4d:5e/v6user', endpoint: { address: '2001:db8::10', port: 1701, name: 'lns-v6' }, version: 2, origin: 1 }, 'stored');
    await b.request({ op: 'query', key: '3:00:1b:21:3c:4d:5e/v6user', queryId: 6 }, 'sent');
    const reply = await b.wait((e) => e.event === 'frame' && e.message?.reply?.queryId === 6, 3000, 'the REPLY');
    assert.equal(reply.from, lan.hosts[0].ipv6);
    assert.equal(reply.unicast, true);
    assert.deepEqual(reply.message.reply.entries[0].endpoint, { address: '2001:db8::10', port: 1701, name: 'lns-v6' });
    // and an UPDATE multicast over IPv6 reaches the other directory
    await b.request({ op: 'update', key: '2:10.9.9.9/w', endpoint: { address: '2001:db8::11', port: 443, name: '' }, version: 1, origin: 2 }, 'sent');
    for (let i = 0; ; i++) {
      if ((await a.request({ op: 'lookup', key: '2:10.9.9.9/w' }, 'lookup')).found) break;
      assert.ok(i < 100, 'the UPDATE never arrived over IPv6');
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});
