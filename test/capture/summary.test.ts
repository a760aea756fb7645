// The capture summary over frames made by the reference codec (pure).
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import { encodeFrame, type Keyring } from '../../src/codec/frame';
import { encodeQuery, encodeReply, encodeUpdate, MessageType } from '../../src/codec/messages';
import { bucketBitmap, encodeDigest, encodeSyncRequest, encodeWithdraw, SyncChunkWriter } from '../../src/codec/cluster-messages';
import { CaptureDecoder, decodeCaptured, formatLine } from '../../src/capture/decode';
import { formatSummary, SummaryBuilder } from '../../src/capture/summary';

const ring: Keyring = { keys: [{ id: 1, secret: Buffer.alloc(32, 1) }], sendKeyId: 1 };
const other: Keyring = { keys: [{ id: 1, secret: Buffer.alloc(32, 2) }], sendKeyId: 1 };
const T = 1_790_000_000_000;
const key = parseClientKey('2:192.0.2.7/alice');
const ep = (n: number) => ({ address: `198.51.100.${n}`, port: 1701, name: `lns-${n}` });
let seq = 1n;
const frame = (node: number, type: number, body: Buffer, k = ring, s = seq++) =>
  encodeFrame({ type, keyId: 1, senderNode: node, bootEpoch: 5, sequence: s, timestampMs: BigInt(T) }, body, k);

describe('capture summary (pure)', () => {
  it('finds split bundles, replays, forged tags, unanswered queries, retries and reply latency', () => {
    const b = new SummaryBuilder();
    const d = new CaptureDecoder(ring);
    const add = (data: Buffer, ms: number, src: string, dst: string) => b.add(d.decode(data, T + ms, src, dst));
    const q = frame(1, MessageType.Query, encodeQuery({ keys: [key], queryId: 9, answerRank: 0 }));
    add(q, 0, '10.0.0.1:5000', '239.255.77.77:7447');
    add(frame(1, MessageType.Query, encodeQuery({ keys: [key], queryId: 9, answerRank: 0 })), 10, '10.0.0.1:5000', '239.255.77.77:7447'); // retry
    add(frame(2, MessageType.Reply, encodeReply({ queryId: 9, entries: [{ clientKey: key, endpoint: ep(1), version: 1, originNode: 2, ttlSeconds: 60 }] })), 10.25, '10.0.0.2:6000', '10.0.0.1:5000');
    add(frame(1, MessageType.Query, encodeQuery({ keys: [parseClientKey('2:192.0.2.8/bob')], queryId: 10, answerRank: 0 })), 20, '10.0.0.1:5000', '239.255.77.77:7447');
    const u1 = frame(3, MessageType.Update, encodeUpdate({ entries: [{ clientKey: key, endpoint: ep(1), version: 1, originNode: 3, ttlSeconds: 60 }] }));
    add(u1, 30, '10.0.0.3:7000', '239.255.77.77:7447');
    add(frame(4, MessageType.Update, encodeUpdate({ entries: [{ clientKey: key, endpoint: ep(2), version: 1, originNode: 4, ttlSeconds: 60 }] })), 31, '10.0.0.4:7000', '239.255.77.77:7447');
    add(u1, 40, '10.0.0.3:7000', '239.255.77.77:7447'); // the same frame again: a replay
    add(frame(5, MessageType.Update, encodeUpdate({ entries: [{ clientKey: key, endpoint: ep(9), version: 9, originNode: 5, ttlSeconds: 60 }] }), other), 50, '10.0.0.5:7000', '239.255.77.77:7447'); // forged
    const s = b.result();
    assert.equal(s.queries, 3);
    assert.equal(s.retries, 1);
    assert.equal(s.answered, 1);
    assert.deepEqual(s.unanswered, [{ node: 1, key: '2:192.0.2.8/bob', queryId: 10 }]);
    assert.ok(Math.abs(s.replyLatencyUs!.p50 - 10_250) < 1);
    assert.deepEqual(s.refused, { badTag: 1 });
    assert.deepEqual(s.replays, [{ node: 3, sequence: '5', result: 'replay' }]);
    assert.equal(s.splitBundles.length, 1);
    assert.deepEqual(s.splitBundles[0].endpoints.map((e) => e.node), [3, 4]);
    const text = formatSummary(s);
    assert.match(text, /split bundles \(one version naming two endpoints\): 1\n {2}2:192\.0\.2\.7\/alice: lns-1=198\.51\.100\.1:1701 \(node 3, v1\) vs lns-2=198\.51\.100\.2:1701 \(node 4, v1\)/);
    assert.match(text, /replays: node 3 sequence 5 \(replay\)/);
    assert.match(text, /failed checks: badTag 1/);
    assert.match(formatLine(decodeCaptured(q, T, '10.0.0.1:5000', '239.255.77.77:7447', ring)), /node 1 10\.0\.0\.1:5000 > 239\.255\.77\.77:7447 QUERY 2:192\.0\.2\.7\/alice qid 9 seq \d+ key 1 auth ok$/);
  });

  it('describes datagrams that are not frames of the protocol', () => {
    const c = decodeCaptured(Buffer.from('hello'), T, 'a:1', 'b:2');
    assert.equal(c.auth, 'truncated');
    assert.match(formatLine(c), /not affinityd \(truncated\)/);
  });

  it('describes the cluster-maintenance messages in a line each', () => {
    const line = (type: number, body: Buffer) => formatLine(decodeCaptured(frame(2, type, body), T, '10.0.0.2:6000', '239.255.77.77:7447', ring));
    assert.match(line(MessageType.Withdraw, encodeWithdraw({ clientKey: key, version: 4, originNode: 2, ttlSeconds: 60 })), / WITHDRAW 2:192\.0\.2\.7\/alice v4\/2 seq/);
    assert.match(line(MessageType.SyncRequest, encodeSyncRequest({ requestId: 7, cursor: 100, maxChunks: 16, bucketCount: 8, buckets: bucketBitmap(8, [1, 5]) })), / SYNC_REQUEST rid 7 from 100 x16 buckets 2\/8 seq/);
    const w = new SyncChunkWriter(7, 100, 1352);
    w.addEntry({ clientKey: key, endpoint: ep(1), version: 1, originNode: 2, ttlSeconds: 60 });
    assert.match(line(MessageType.SyncChunk, w.finish(140, true)), / SYNC_CHUNK rid 7 100\.\.140 1 entries 0 markers done seq/);
    assert.match(line(MessageType.Digest, encodeDigest({ bucketCount: 4, buckets: Buffer.alloc(32), entries: 12 })), / DIGEST 4 buckets, 12 entries seq/);
    // a body of such a type that a node refuses is shown as refused (issue 13, item 8: it said "auth ok")
    assert.match(line(MessageType.Digest, Buffer.from([0x08, 0x00])), / DIGEST seq \d+ key 1 auth malformedBody$/);
    const tooManyBuckets = encodeSyncRequest({ requestId: 1, cursor: 0, maxChunks: 1, bucketCount: 0, buckets: Buffer.alloc(0) });
    const bad = Buffer.concat([tooManyBuckets, Buffer.from([0x20, 0xc8, 0x01])]); // bucket_count 200 > 128
    assert.match(line(MessageType.SyncRequest, bad), / SYNC_REQUEST seq \d+ key 1 auth malformedBody$/);
  });

  it('shows a replayed frame as the node refuses it, in the line of every message, not only in the summary', () => {
    const d = new CaptureDecoder(ring);
    const req = frame(2, MessageType.SyncRequest, encodeSyncRequest({ requestId: 7, cursor: 0, maxChunks: 16, bucketCount: 0, buckets: Buffer.alloc(0) }));
    const lines = [req, req, req].map((f, i) => formatLine(d.decode(f, T + i, '10.0.0.2:6000', '239.255.77.77:7447')));
    assert.match(lines[0], /SYNC_REQUEST rid 7 from 0 x16 seq \d+ key 1 auth ok$/);
    assert.match(lines[1], /SYNC_REQUEST seq \d+ key 1 auth replay$/);
    assert.match(lines[2], /auth replay$/);
    // a sender's runs: up to 4 boot epochs are kept at once; an older one than all of them, while they
    // are all fresh, is refused too, and the line says why (docs/protocol.md section 5.1)
    const run = (epoch: number) => encodeFrame({ type: MessageType.Query, keyId: 1, senderNode: 2, bootEpoch: epoch, sequence: 999n, timestampMs: BigInt(T) }, encodeQuery({ keys: [key], queryId: 1, answerRank: 0 }), ring);
    for (const epoch of [6, 7, 8]) assert.match(formatLine(d.decode(run(epoch), T, '10.0.0.2:6000', '239.255.77.77:7447')), /auth ok$/);
    assert.match(formatLine(d.decode(run(4), T, '10.0.0.2:6000', '239.255.77.77:7447')), /auth replay \(oldEpoch\)$/);
    // a frame with a bad tag does not move the window: the genuine one after it is accepted
    const genuine = frame(6, MessageType.Query, encodeQuery({ keys: [key], queryId: 2, answerRank: 0 }), ring, 500n);
    const forged = frame(6, MessageType.Query, encodeQuery({ keys: [key], queryId: 2, answerRank: 0 }), other, 500n);
    assert.equal(d.decode(forged, T, 'a:1', 'b:2').auth, 'badTag');
    assert.equal(d.decode(genuine, T, 'a:1', 'b:2').auth, 'ok');
  });

  it('counts an ordinary move (higher version, another endpoint) as a move, not a split bundle', () => {
    const b = new SummaryBuilder();
    const d = new CaptureDecoder(ring);
    const upd = (node: number, version: number, n: number, origin = node) => frame(node, MessageType.Update, encodeUpdate({ entries: [{ clientKey: key, endpoint: ep(n), version, originNode: origin, ttlSeconds: 60 }] }));
    b.add(d.decode(upd(3, 1, 1), T, '10.0.0.3:7000', 'g:7447'));
    b.add(d.decode(upd(3, 1, 1), T + 1, '10.0.0.3:7000', 'g:7447')); // the same entry repeated (updateRepeats)
    b.add(d.decode(upd(3, 2, 2), T + 2, '10.0.0.3:7000', 'g:7447')); // moved off lns-1 by its origin
    b.add(d.decode(upd(4, 3, 3), T + 3, '10.0.0.4:7000', 'g:7447')); // moved again, by another node
    const s = b.result();
    assert.deepEqual(s.splitBundles, []);
    assert.deepEqual(s.moves.map((m) => [m.fromVersion, m.toVersion, m.node]), [[1, 2, 3], [2, 3, 4]]);
    assert.match(formatSummary(s), /moves \(a higher version naming another endpoint\): 2\n {2}2:192\.0\.2\.7\/alice: lns-1=198\.51\.100\.1:1701 \(v1\) -> lns-2=198\.51\.100\.2:1701 \(v2, node 3\)/);
    assert.match(formatSummary(s), /split bundles \(one version naming two endpoints\): none/);
  });
});
