// The native responder on loopback multicast, two nodes in this process.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { encodeFrame, parseHeader } from '../../src/codec/frame';
import { encodeQuery, encodeReply, encodeUpdate, MessageType } from '../../src/codec/messages';
import { readCompactReply } from '../../src/transport/native-link';
import { standaloneResponderOptions } from '../../src/daemon/options';
import { addonOrSkip } from '../helpers/addon';
import { frameType, rawSender, sendRaw, sleep, testGroup, testKeyring, TestNode, testNodes, until } from '../helpers/loopback';

const alice = parseClientKey('2:192.0.2.7/alice');
const lns1 = { address: '198.51.100.10', port: 1701, name: 'lns-1' };

describe('native responder on loopback multicast (addon in process)', function () {
  this.timeout(20_000);
  const open = testNodes();

  it('answers a QUERY from its table with a REPLY to the querier, from the I/O thread', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring());
    a.store(alice, lns1, 4, 1);
    assert.equal(b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 99, answerRank: 0 }) }]), 1);
    const f = await b.waitFrame((x) => frameType(x) === MessageType.Reply, 2000);
    assert.equal(f.unicast, true, 'the reply comes to the unicast socket');
    // decoded once, by b's I/O thread, with the endpoint interned in b's registry
    const r = readCompactReply(f.data, b.endpointOf);
    assert.equal(r.senderNode, 1);
    assert.equal(r.queryId, 99);
    assert.deepEqual(r.entries[0].keyBytes, clientKeyBytes(alice));
    assert.deepEqual(r.entries[0].endpoint, lns1);
    assert.equal(r.entries[0].version, 4);
    assert.ok(r.entries[0].ttlSeconds > 590 && r.entries[0].ttlSeconds <= 600);
    assert.equal(a.responder.stats().queriesAnswered, 1);
  });

  it('stays silent for a key it does not hold, and counts it', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring());
    b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 1, answerRank: 0 }) }]);
    await until(() => a.responder.stats().queriesUnanswered === 1, 2000, 'the unanswered query');
    await sleep(50);
    assert.equal(b.frames.length, 0);
  });

  it('applies a multicast UPDATE in every other node, and ignores its own', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring());
    const c = open(3, net, testKeyring());
    const body = encodeUpdate({ entries: [{ clientKey: alice, endpoint: lns1, version: 2, originNode: 1, ttlSeconds: 120 }] });
    a.responder.send([{ type: MessageType.Update, body }]);
    const out = new Uint32Array(5);
    await until(() => b.table.lookup(clientKeyBytes(alice), out) && c.table.lookup(clientKeyBytes(alice), out), 2000, 'the update in b and c');
    assert.equal(out[1], 2);
    assert.equal(out[4] - out[3], 120);
    await sleep(100);
    // its own copy is dropped by the kernel's filter before the I/O thread
    // wakes (multicast_socket.h DropOwnFrames): not even counted as ownFrame
    assert.equal(a.responder.stats().received, 0, 'a never read its own frame');
    assert.equal(a.table.stats().size, 0, 'the sender stores its entry itself, not from its own multicast');
  });

  it('refuses and counts frames under a wrong key, replayed, stale, or garbage; the table is unchanged', async () => {
    const net = testGroup();
    const ring = testKeyring();
    const a = open(1, net, ring);
    const s = await rawSender();
    const body = encodeUpdate({ entries: [{ clientKey: alice, endpoint: lns1, version: 1, originNode: 5, ttlSeconds: 60 }] });
    const h = { type: MessageType.Update, keyId: 1, senderNode: 5, bootEpoch: 1000, sequence: 10n, timestampMs: BigInt(Date.now()) };
    const good = encodeFrame(h, body, ring);
    await sendRaw(s, encodeFrame(h, body, testKeyring(0x43)), net.port, net.group); // wrong secret
    await sendRaw(s, encodeFrame({ ...h, keyId: 9 }, body, testKeyring(0x42, 9)), net.port, net.group); // unknown key id
    await sendRaw(s, encodeFrame({ ...h, sequence: 11n, timestampMs: BigInt(Date.now() - 60_000) }, body, ring), net.port, net.group); // stale
    await sendRaw(s, Buffer.alloc(60, 0x41), net.port, net.group); // 60 octets of garbage
    await until(() => a.responder.stats().received === 4, 2000, '4 datagrams');
    assert.equal(a.table.stats().size, 0, 'no bad frame changed the table');
    await sendRaw(s, good, net.port, net.group);
    await sendRaw(s, good, net.port, net.group); // replayed
    // another run of node 5 (an older boot epoch, fresh): its own window, so a
    // second process with one id never locks the other out; replayed: refused
    const older = encodeFrame({ ...h, bootEpoch: 999, sequence: 50n }, body, ring);
    await sendRaw(s, older, net.port, net.group);
    await sendRaw(s, older, net.port, net.group);
    // up to 4 runs of one id are kept; a fifth, older, while all 4 are in use, is refused
    for (const e of [1001, 1002]) await sendRaw(s, encodeFrame({ ...h, bootEpoch: e, sequence: 1n }, body, ring), net.port, net.group);
    await sendRaw(s, encodeFrame({ ...h, bootEpoch: 998, sequence: 1n }, body, ring), net.port, net.group);
    await until(() => a.responder.stats().received === 11, 2000, '11 datagrams');
    s.close();
    const v = a.responder.stats().verdicts;
    assert.deepEqual(
      { badTag: v.badTag, unknownKey: v.unknownKey, stale: v.stale, badMagic: v.badMagic, accepted: v.accepted, replay: v.replay },
      { badTag: 1, unknownKey: 1, stale: 1, badMagic: 1, accepted: 4, replay: 3 },
    );
    assert.equal(a.table.stats().size, 1);
    assert.equal(a.responder.stats().updatesApplied, 1);
    // the peer table knows node 5 from its good frames; the bad frames
    // before the first created nothing, the three refused after are charged to it
    const peers = a.responder.peers();
    assert.equal(peers.length, 1);
    assert.deepEqual(
      { nodeId: peers[0].nodeId, address: peers[0].address, accepted: peers[0].accepted, authFailures: peers[0].authFailures, lastSequence: peers[0].lastSequence, bootEpoch: peers[0].bootEpoch },
      { nodeId: 5, address: '127.0.0.1', accepted: 4, authFailures: 3, lastSequence: 1, bootEpoch: 1002 },
    );
  });

  it('accepts frames under every key of its keyring and sends under the new one after rotation', async () => {
    const net = testGroup();
    const k1 = { id: 1, secret: Buffer.alloc(32, 1) };
    const k2 = { id: 2, secret: Buffer.alloc(32, 2) };
    const a = open(1, net, { keys: [k1], sendKeyId: 1 });
    const b = open(2, net, { keys: [k1, k2], sendKeyId: 1 });
    a.store(alice, lns1);
    // b rotates to send under key 2 before a knows key 2: refused
    b.responder.setKeyring({ keys: [k1, k2], sendKeyId: 2 });
    b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 1, answerRank: 0 }) }]);
    await until(() => a.responder.stats().verdicts.unknownKey === 1, 2000, 'the unknown key');
    a.responder.setKeyring({ keys: [k1, k2], sendKeyId: 2 });
    // b now accepts key 2 only: a REPLY reaches it only if a sends under key 2
    b.responder.setKeyring({ keys: [k2], sendKeyId: 2 });
    b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 2, answerRank: 0 }) }]);
    const f = await b.waitFrame((x) => frameType(x) === MessageType.Reply, 2000);
    assert.equal(readCompactReply(f.data, b.endpointOf).queryId, 2);
  });

  it('delivers REPLYs to JS in bounded batches and counts what does not fit', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring(), { queueCapacity: 16, maxBatch: 4 });
    const ring = testKeyring();
    const body = encodeReply({ queryId: 1, entries: [{ clientKey: alice, endpoint: lns1, version: 1, originNode: 7, ttlSeconds: 60 }] });
    const frames = Array.from({ length: 200 }, (_, i) =>
      encodeFrame({ type: MessageType.Reply, keyId: 1, senderNode: 7, bootEpoch: 1, sequence: BigInt(i + 1), timestampMs: BigInt(Date.now()) }, body, ring).toString('hex'),
    );
    // 200 REPLYs sent by another process while this JS thread is blocked in
    // spawnSync: nothing drains the 16-frame queue until they are all in
    const sender = `const d=require('dgram').createSocket('udp4');const f=${JSON.stringify(frames)};let i=0;` +
      `d.bind(0,'127.0.0.1',()=>{d.setMulticastInterface('127.0.0.1');const next=()=>i<f.length?d.send(Buffer.from(f[i++],'hex'),${net.port},'${net.group}',next):d.close();next();});`;
    const r = spawnSync(process.execPath, ['-e', sender], { timeout: 20_000 });
    assert.equal(r.status, 0, String(r.stderr));
    // still blocked: let the I/O thread read them all (at most 5 s)
    for (let i = 0; i < 100 && a.responder.stats().received < 200; i++) spawnSync('sleep', ['0.05']);
    assert.equal(a.responder.stats().received, 200, 'the I/O thread read every datagram');
    await until(() => a.frames.length === a.responder.stats().delivered, 3000, 'delivery');
    const st = a.responder.stats();
    assert.equal(st.delivered + st.queueFull, 200);
    assert.ok(st.queueFull > 0, 'some frames could not be queued');
    assert.ok(st.delivered >= 16);
  });

  it('stops hearing the group after leaving it and hears it again after joining', async () => {
    const net = testGroup();
    const a = open(1, net, testKeyring());
    const b = open(2, net, testKeyring());
    const upd = (v: number) => [{ type: MessageType.Update, body: encodeUpdate({ entries: [{ clientKey: alice, endpoint: lns1, version: v, originNode: 2, ttlSeconds: 60 }] }) }];
    a.responder.setMembership(false);
    b.responder.send(upd(1));
    await sleep(100);
    assert.equal(a.responder.stats().received, 0);
    a.responder.setMembership(true);
    b.responder.send(upd(2));
    await until(() => a.responder.stats().updatesApplied === 1, 2000, 'the update after joining');
  });

  it('reports socket errors with errno code, syscall and address', function () {
    const a = addonOrSkip(this);
    const t = new a.AffinityTable(16, 4);
    const base = standaloneResponderOptions({ nodeId: 1, bootEpoch: 1, port: 4000, keyring: testKeyring(), group: '239.1.1.1', interface: '127.0.0.1' });
    assert.throws(() => new a.Responder(t, { ...base, group: '10.0.0.1', interface: '127.0.0.1' }, () => {}), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && /not a multicast/.test(e.message));
    assert.throws(() => new a.Responder(t, { ...base, group: '239.1.1.1', interface: 'nonsense' }, () => {}), (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.syscall!.startsWith('inet_pton'));
    assert.throws(() => new a.Responder(t, { ...base, group: 'ff15::1', interface: 'nosuchif0' }, () => {}), (e: NodeJS.ErrnoException) => e.code === 'ENODEV' && (e as { address?: string }).address === 'nosuchif0');
    assert.throws(() => new a.Responder(t, { ...base, group: '239.1.1.1', interface: '192.0.2.123' }, () => {}), (e: NodeJS.ErrnoException) => e.code === 'EADDRNOTAVAIL' && e.syscall === 'bind');
    assert.throws(() => new a.Responder(t, { ...base, group: '239.1.1.1', interface: '127.0.0.1', keyring: { keys: [], sendKeyId: 1 } }, () => {}), /names no key/);
    const { ...noSkew } = base;
    delete (noSkew as Partial<typeof base>).maxSkewMs;
    assert.throws(() => new a.Responder(t, noSkew as typeof base, () => {}), /maxSkewMs must be a number/, 'every option is required: the defaults are the schema\'s');
  });
});
