// Two nodes in two processes on loopback multicast. A stores an UPDATE from
// B; B's QUERY is answered by A while A's JS thread is busy in a 2-second
// loop: the reply can only have come from A's native I/O thread.
import assert from 'node:assert/strict';

import { addonOrSkip } from '../helpers/addon';
import { ChildNode } from '../helpers/child-node';
import { testGroup } from '../helpers/loopback';

const keyring = { keys: [{ id: 1, secret: '11'.repeat(32) }], sendKeyId: 1 };

describe('two processes on loopback multicast', function () {
  this.timeout(30_000);
  let a: ChildNode | undefined;
  let b: ChildNode | undefined;
  before(function () {
    addonOrSkip(this);
  });
  afterEach(() => {
    a?.kill();
    b?.kill();
  });

  it('A answers B\'s QUERY from its native thread while A\'s JS thread is busy for 2 s', async () => {
    const net = testGroup();
    const options = (nodeId: number) => ({ nodeId, bootEpoch: 1, ...net, interface: '127.0.0.1' });
    a = new ChildNode('A');
    b = new ChildNode('B');
    await Promise.all([a.wait((e) => e.event === 'ready', 10_000, 'ready'), b.wait((e) => e.event === 'ready', 10_000, 'ready')]);
    await a.request({ op: 'open', options: options(1), keyring }, 'opened');
    await b.request({ op: 'open', options: options(2), keyring }, 'opened');

    // B multicasts an UPDATE; A's native thread stores it (A's JS does nothing)
    await b.request({ op: 'update', key: '2:192.0.2.7/alice', endpoint: { address: '198.51.100.10', port: 1701, name: 'lns-1' }, version: 3, origin: 2 }, 'sent');
    for (let i = 0; ; i++) {
      const l = await a.request({ op: 'lookup', key: '2:192.0.2.7/alice' }, 'lookup');
      if (l.found) {
        assert.equal(l.port, 1701);
        break;
      }
      assert.ok(i < 100, 'A never stored the UPDATE');
      await new Promise((r) => setTimeout(r, 10));
    }

    a.send({ op: 'busy', ms: 2000 });
    const busy = await a.wait((e) => e.event === 'busy-start', 5000, 'busy-start');
    const sent = await b.request({ op: 'query', key: '2:192.0.2.7/alice', queryId: 4242 }, 'sent');
    const reply = await b.wait((e) => e.event === 'frame' && e.message?.reply?.queryId === 4242, 1500, 'the REPLY');
    assert.ok(!a.events.some((e) => e.event === 'busy-end'), 'A was still in its busy loop when B got the REPLY');
    assert.equal(reply.header.senderNode, 1);
    assert.equal(reply.unicast, true);
    assert.deepEqual(reply.message.reply.entries[0].endpoint, { address: '198.51.100.10', port: 1701, name: 'lns-1' });
    const rtt = reply.at - sent.at;
    console.log(`      REPLY ${rtt.toFixed(2)} ms after the QUERY, while A was busy (busy since ${busy.at.toFixed(0)} ms in A's clock)`);
    await a.wait((e) => e.event === 'busy-end', 5000, 'busy-end');
  });

  it('a process that closes its node exits by itself', async () => {
    const net = testGroup();
    a = new ChildNode('A');
    await a.wait((e) => e.event === 'ready', 10_000, 'ready');
    await a.request({ op: 'open', options: { nodeId: 1, bootEpoch: 1, ...net, interface: '127.0.0.1' }, keyring }, 'opened');
    a.send({ op: 'close' });
    const code = await Promise.race([a.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
    assert.equal(code, 0, `the process did not exit by itself: ${a.stderr}`);
  });
});
