// The codec of SYNC_REQUEST, SYNC_CHUNK, WITHDRAW and DIGEST (pure, no addon).
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import {
  bucketBitmap,
  decodeDigest,
  decodeOrUndefined,
  decodeSyncChunk,
  decodeSyncRequest,
  decodeWithdraw,
  differingBuckets,
  encodeDigest,
  encodeSyncRequest,
  encodeWithdraw,
  SyncChunkWriter,
  wantsKey,
} from '../../src/codec/cluster-messages';
import { ProtocolError } from '../../src/codec/errors';
import { protoType } from '../../src/codec/proto';
import { CHUNK_BODY_MAX } from '../../src/directory/maintenance/sync-server';
import { Prng } from '../helpers/prng';

const k = (i: number) => parseClientKey(`5:${String(1e9 + i)}/${'u'.repeat(i % 60)}${i}`);

describe('cluster-maintenance messages (pure)', () => {
  it('SYNC_REQUEST round-trips; a bucket bitmap selects keys by their hash', () => {
    const r = { requestId: 7, cursor: 12345, maxChunks: 16, bucketCount: 20, buckets: bucketBitmap(20, [0, 9, 19]), answerRank: 0 };
    const back = decodeSyncRequest(encodeSyncRequest(r));
    assert.deepEqual(back, r);
    assert.equal(decodeSyncRequest(encodeSyncRequest({ ...r, answerRank: 2 })).answerRank, 2);
    assert.deepEqual([0, 9, 19, 20, 29, 1].map((h) => wantsKey(back, h)), [true, true, true, true, true, false]);
    assert.equal(wantsKey({ ...r, bucketCount: 0 }, 5), true, 'no buckets: every key');
    assert.equal(decodeSyncRequest(encodeSyncRequest({ ...r, maxChunks: 0 })).maxChunks, 1);
  });

  it('refuses a bitmap of the wrong size, or buckets above 128', () => {
    const bad = (o: object) => assert.throws(() => decodeSyncRequest(protoType('SyncRequest').encode(o).finish()), ProtocolError);
    bad({ bucketCount: 20, buckets: Buffer.alloc(2) });
    bad({ bucketCount: 0, buckets: Buffer.alloc(2) });
    bad({ bucketCount: 200, buckets: Buffer.alloc(25) });
    const dg = (o: object) => assert.throws(() => decodeDigest(protoType('Digest').encode(o).finish()), ProtocolError);
    dg({ bucketCount: 4, buckets: Buffer.alloc(31) });
    dg({ bucketCount: 0, buckets: Buffer.alloc(0) });
  });

  it('WITHDRAW and DIGEST round-trip; differing buckets are found', () => {
    const w = { clientKey: k(3), version: 9, originNode: 2, ttlSeconds: 60 };
    assert.deepEqual(decodeWithdraw(encodeWithdraw(w)), w);
    const a = Buffer.alloc(64, 1);
    const b = Buffer.from(a);
    b[8 * 3 + 5] ^= 1;
    b[8 * 7] ^= 0x80;
    assert.deepEqual(decodeDigest(encodeDigest({ bucketCount: 8, buckets: a, entries: 99 })), { bucketCount: 8, buckets: a, entries: 99 });
    assert.deepEqual(differingBuckets(a, b), [3, 7]);
    assert.throws(() => encodeDigest({ bucketCount: 8, buckets: Buffer.alloc(63), entries: 0 }), RangeError);
  });

  it('a chunk writer never goes above the body limit and every entry it took decodes back', () => {
    const ep = { address: '2001:db8::1', port: 1701, name: 'n'.repeat(64) };
    let i = 0;
    const all: number[] = [];
    while (i < 500) {
      const w = new SyncChunkWriter(1, i, CHUNK_BODY_MAX);
      const took: number[] = [];
      for (; i < 500; i++) {
        const ok = i % 5 === 0 ? w.addWithdraw({ clientKey: k(i), version: i, originNode: 1, ttlSeconds: 5 }) : w.addEntry({ clientKey: k(i), endpoint: ep, version: i, originNode: 1, ttlSeconds: 5 });
        if (!ok) break;
        took.push(i);
      }
      assert.ok(took.length > 0);
      const body = w.finish(i, i === 500);
      assert.ok(body.length <= CHUNK_BODY_MAX, `chunk of ${body.length} octets`);
      const c = decodeSyncChunk(body);
      assert.equal(c.entries.length + c.withdrawals.length, took.length);
      all.push(...c.entries.map((e) => e.version), ...c.withdrawals.map((x) => x.version));
      assert.equal(c.done, i === 500);
    }
    assert.deepEqual(all.sort((a, b) => a - b), [...Array(500).keys()]);
  });
});

describe('cluster-maintenance messages under fuzzing (pure)', () => {
  it('decodes 40,000 random and mutated bodies of types 4-7 to a value or a counted refusal, never an exception', () => {
    const rng = new Prng(Number(process.env.FUZZ_SEED ?? 6));
    const ep = { address: '198.51.100.7', port: 1701, name: 'lns' };
    const w = new SyncChunkWriter(5, 0, CHUNK_BODY_MAX);
    for (let i = 0; i < 8; i++) w.addEntry({ clientKey: k(i), endpoint: ep, version: i, originNode: 2, ttlSeconds: 9 });
    w.addWithdraw({ clientKey: k(99), version: 3, originNode: 1, ttlSeconds: 9 });
    const seeds: [string, Buffer, (b: Uint8Array) => unknown][] = [
      ['SYNC_REQUEST', encodeSyncRequest({ requestId: 1, cursor: 5, maxChunks: 4, bucketCount: 16, buckets: bucketBitmap(16, [1, 2]) }), decodeSyncRequest],
      ['SYNC_CHUNK', w.finish(77, false), decodeSyncChunk],
      ['WITHDRAW', encodeWithdraw({ clientKey: k(5), version: 2, originNode: 1, ttlSeconds: 30 }), decodeWithdraw],
      ['DIGEST', encodeDigest({ bucketCount: 8, buckets: Buffer.alloc(64, 3), entries: 5 }), decodeDigest],
    ];
    let accepted = 0;
    let refused = 0;
    for (const [name, valid, dec] of seeds) {
      assert.ok(decodeOrUndefined(dec, valid) !== undefined, `${name} seed decodes`);
      for (let i = 0; i < 10_000; i++) {
        let b: Buffer;
        if (i % 3 === 0) b = rng.bytes(rng.int(200));
        else {
          b = Buffer.from(valid);
          for (let m = 1 + rng.int(4); m > 0 && b.length; m--) b[rng.int(b.length)] = rng.int(256);
          if (i % 3 === 2) b = b.subarray(0, rng.int(b.length + 1));
        }
        try {
          if (decodeOrUndefined(dec, b) === undefined) refused++;
          else accepted++;
        } catch (e) {
          assert.fail(`${name} body ${b.toString('hex')} threw ${(e as Error).stack}`);
        }
      }
    }
    assert.ok(refused > 10_000 && accepted > 1000, `accepted ${accepted}, refused ${refused}`);
  });
});
