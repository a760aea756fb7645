// The capture summary over frames made by the reference codec (pure).
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import { encodeFrame, type Keyring } from '../../src/codec/frame';
import { encodeQuery, encodeReply, encodeUpdate, MessageType } from '../../src/codec/messages';
import { bucketBitmap, encodeDigest, encodeSyncRequest, encodeWithdraw, SyncChunkWriter } from '../../src/codec/cluster-messages';
import { decodeCaptured, formatLine } from '../../src/capture/decode';
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
    const add = (data: Buffer, ms: number, src: string, dst: string) => b.add(decodeCaptured(data, T + ms, src, dst, ring));
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
    assert.match(text, /split bundles: 1\n {2}2:192\.0\.2\.7\/alice: lns-1=198\.51\.100\.1:1701 \(node 3, v1\) vs lns-2=198\.51\.100\.2:1701 \(node 4, v1\)/);
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
    // a broken body of such a type is shown without a detail, not thrown over
    assert.match(line(MessageType.Digest, Buffer.from([0x08, 0x00])), / DIGEST seq \d+ key 1 auth ok$/);
  });
});
