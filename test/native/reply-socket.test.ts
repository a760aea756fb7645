// The reply socket (native/multicast_socket.h): REPLYs to a node's unicast
// address and port are steered by the kernel to a socket the JS thread reads
// itself; every other frame still reaches the I/O thread; the port stays the
// node's own; a REPLY there is verified like any frame, in the same replay
// window as the I/O thread's.
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import { encodeFrame } from '../../src/codec/frame';
import { encodeQuery, encodeReply, encodeUpdate, MessageType } from '../../src/codec/messages';
import { readCompactReply } from '../../src/transport/native-link';
import { addonOrSkip } from '../helpers/addon';
import { frameType, rawSender, sendRaw, sleep, testGroup, testKeyring, TestNode, testNodes, until } from '../helpers/loopback';

const alice = parseClientKey('2:192.0.2.7/alice');
const bob = parseClientKey('2:192.0.2.8/bob');
const lns1 = { address: '198.51.100.10', port: 1701, name: 'lns-1' };

describe('reply socket: REPLYs read by the JS thread (addon in process)', function () {
  this.timeout(20_000);
  const open = testNodes();

  it('reads a REPLY to the unicast port on the JS thread; a unicast QUERY to the same port still reaches the I/O thread', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring());
    a.store(alice, lns1, 4, 1);
    b.store(bob, lns1, 2, 2);
    b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 7, answerRank: 0 }) }]);
    const f = await b.waitFrame((x) => frameType(x) === MessageType.Reply, 5000);
    assert.equal(readCompactReply(f.data, b.endpointOf).queryId, 7);
    assert.equal(b.responder.stats().repliesRead, 1, 'read from the reply socket');
    // a QUERY unicast to b's address and port: answered by b's I/O thread
    const s = await rawSender();
    const port = b.responder.address().port;
    const q = encodeFrame({ type: MessageType.Query, keyId: 1, senderNode: 9, bootEpoch: 1, sequence: 1n, timestampMs: BigInt(Date.now()) }, encodeQuery({ keys: [bob], queryId: 3, answerRank: 0 }), testKeyring());
    await sendRaw(s, q, port, '127.0.0.1');
    await until(() => b.responder.stats().queriesAnswered === 1, 5000, 'the unicast QUERY answered');
    s.close();
    assert.equal(b.responder.stats().repliesRead, 1, 'the QUERY did not go to the reply socket');
  });

  it('with replySocket off, a REPLY comes through the I/O thread as before', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring(), { replySocket: false });
    a.store(alice, lns1);
    b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 8, answerRank: 0 }) }]);
    const f = await b.waitFrame((x) => frameType(x) === MessageType.Reply, 5000);
    assert.equal(readCompactReply(f.data, b.endpointOf).queryId, 8);
    assert.equal(b.responder.stats().repliesRead, 0);
    assert.equal(b.responder.stats().delivered, 1);
  });

  it('refuses a forged, stale or replayed REPLY there, in one replay window with the I/O thread', async () => {
    const net = testGroup();
    const ring = testKeyring();
    const b = open(2, net, ring);
    const port = b.responder.address().port;
    const s = await rawSender();
    const body = encodeReply({ queryId: 1, entries: [{ clientKey: alice, endpoint: lns1, version: 1, originNode: 7, ttlSeconds: 60 }] });
    const h = { type: MessageType.Reply, keyId: 1, senderNode: 7, bootEpoch: 1000, sequence: 10n, timestampMs: BigInt(Date.now()) };
    await sendRaw(s, encodeFrame(h, body, testKeyring(0x43)), port, '127.0.0.1'); // wrong secret
    await sendRaw(s, encodeFrame({ ...h, sequence: 11n, timestampMs: BigInt(Date.now() - 60_000) }, body, ring), port, '127.0.0.1'); // stale
    const good = encodeFrame(h, body, ring);
    await sendRaw(s, good, port, '127.0.0.1');
    await sendRaw(s, good, port, '127.0.0.1'); // replayed
    // an UPDATE of node 7 multicast (I/O thread) with sequence 20, then a
    // REPLY with the same sequence to the reply socket: one window, refused
    const upd = encodeFrame({ ...h, type: MessageType.Update, sequence: 20n }, encodeUpdate({ entries: [{ clientKey: bob, endpoint: lns1, version: 1, originNode: 7, ttlSeconds: 60 }] }), ring);
    await sendRaw(s, upd, net.port, net.group);
    await until(() => b.responder.stats().updatesApplied === 1, 5000, 'the UPDATE');
    await sendRaw(s, encodeFrame({ ...h, sequence: 20n }, body, ring), port, '127.0.0.1');
    await sendRaw(s, Buffer.from([0xaf, 0xd1, 1, 2, 0, 0]), port, '127.0.0.1'); // a short datagram of type REPLY
    await until(() => b.responder.stats().received === 7, 5000, '7 datagrams');
    await sleep(50);
    s.close();
    const st = b.responder.stats();
    const v = st.verdicts;
    assert.deepEqual({ badTag: v.badTag, stale: v.stale, replay: v.replay, accepted: v.accepted }, { badTag: 1, stale: 1, replay: 2, accepted: 2 });
    assert.equal(st.repliesRead, 1, 'only the good REPLY, once');
    assert.equal(b.frames.filter((f) => frameType(f) === MessageType.Reply).length, 1);
  });

  it('keeps the port its own: a second node or a socket already on it fails with EADDRINUSE', async function () {
    const a = addonOrSkip(this);
    const net = testGroup();
    const b = open(2, net, testKeyring());
    const port = b.responder.address().port;
    assert.throws(() => open(3, net, testKeyring(), { unicastPort: port }), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE' && e.syscall === 'bind');
    const dgram = await import('node:dgram');
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', r));
    try {
      assert.throws(() => open(4, net, testKeyring(), { unicastPort: taken.address().port }), (e: NodeJS.ErrnoException) => e.code === 'EADDRINUSE');
    } finally {
      taken.close();
    }
    void a;
  });

  it('frees the port when closed: a node started again on it binds at once', () => {
    const net = testGroup();
    const b = new TestNode(2, net, testKeyring());
    const port = b.responder.address().port;
    b.close(); // the object is still referenced: its sockets must not wait for the collector
    const again = open(2, net, testKeyring(), { unicastPort: port });
    assert.equal(again.responder.address().port, port);
    void b;
  });

  describe('pollReplies (the reply spin)', () => {
    it('returns a REPLY read on the calling thread, which onFrames then does not get again', async () => {
      const net = testGroup();
      const a = open(1, net, testKeyring());
      const b = open(2, net, testKeyring());
      a.store(alice, lns1, 3, 1);
      b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 11, answerRank: 0 }) }]);
      // up to 5 s (1 s at a time, the most one call takes): the REPLY is read here, however slow the machine
      let got = b.responder.pollReplies(1_000_000);
      for (let i = 0; i < 4 && got && got.length === 0; i++) got = b.responder.pollReplies(1_000_000);
      assert.ok(got, 'b has a reply socket');
      assert.equal(got.length, 1);
      const r = readCompactReply(got[0].data, b.endpointOf);
      assert.equal(r.queryId, 11);
      assert.equal(r.entries[0].version, 3);
      assert.equal(got[0].unicast, true);
      assert.equal(b.responder.stats().repliesRead, 1);
      await sleep(50);
      assert.equal(b.frames.filter((f) => frameType(f) === MessageType.Reply).length, 0, 'not delivered twice');
    });

    it('with nothing to read, returns [] once the time is up, not before', () => {
      const b = open(2, testGroup(), testKeyring());
      const t0 = process.hrtime.bigint();
      assert.deepEqual(b.responder.pollReplies(2000), []);
      assert.ok(Number(process.hrtime.bigint() - t0) >= 2_000_000, 'spun its 2 ms');
      assert.deepEqual(b.responder.pollReplies(0), [], '0: one read, at once');
    });

    it('refuses a forged REPLY there like the event loop does (counted, not returned)', async () => {
      const net = testGroup();
      const b = open(2, net, testKeyring());
      const s = await rawSender();
      const body = encodeReply({ queryId: 5, entries: [{ clientKey: alice, endpoint: lns1, version: 1, originNode: 9, ttlSeconds: 60 }] });
      const forged = encodeFrame({ type: MessageType.Reply, keyId: 1, senderNode: 9, bootEpoch: 1, sequence: 1n, timestampMs: BigInt(Date.now()) }, body, testKeyring(0x66));
      await sendRaw(s, forged, b.responder.address().port, '127.0.0.1');
      s.close();
      assert.deepEqual(b.responder.pollReplies(200_000), []);
      assert.equal(b.responder.stats().verdicts.badTag, 1);
    });

    it('is null without a reply socket, and refuses a bad time', () => {
      const a = open(1, testGroup(), testKeyring(), { replySocket: false });
      assert.equal(a.responder.pollReplies(10), null);
      const b = open(2, testGroup(), testKeyring());
      for (const bad of [-1, Number.NaN, 2e6]) assert.throws(() => b.responder.pollReplies(bad), RangeError);
      assert.throws(() => b.responder.pollReplies('10' as unknown as number), TypeError);
    });
  });
});
