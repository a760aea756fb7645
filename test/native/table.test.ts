// The native affinity table, in process.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { type NativeAffinityTable, UpsertResult } from '../../src/native';
import { addonOrSkip } from '../helpers/addon';

const key = (user: string) => clientKeyBytes(parseClientKey(`2:192.0.2.1/${user}`));
const NOW = 1_800_000_000;

describe('native affinity table (addon in process)', () => {
  let Table: new (capacity: number, endpoints: number) => NativeAffinityTable;
  let t: NativeAffinityTable;
  let epA: number;
  let epB: number;
  const out = new Uint32Array(5);

  before(function () {
    Table = addonOrSkip(this).AffinityTable;
  });
  beforeEach(() => {
    t = new Table(1000, 8);
    epA = t.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('a'));
    epB = t.internEndpoint(Buffer.from([10, 0, 0, 2]), 1701, Buffer.from('b'));
  });

  it('stores and finds an entry with all its fields', () => {
    assert.equal(t.upsert(key('u'), epA, 3, 42, 60, NOW), UpsertResult.Inserted);
    assert.equal(t.lookup(key('u'), out, NOW), true);
    assert.deepEqual([...out], [epA, 3, 42, NOW, NOW + 60]);
    assert.equal(t.lookup(key('v'), out, NOW), false);
  });

  it('applies the version rule: higher version wins, ties go to the higher origin node', () => {
    t.upsert(key('u'), epA, 5, 10, 60, NOW);
    assert.equal(t.upsert(key('u'), epB, 4, 99, 60, NOW), UpsertResult.Ignored);
    assert.equal(t.upsert(key('u'), epB, 5, 9, 60, NOW), UpsertResult.Ignored);
    assert.equal(t.upsert(key('u'), epB, 5, 10, 60, NOW), UpsertResult.Ignored, 'the same version from the same origin changes nothing');
    assert.equal(t.upsert(key('u'), epB, 5, 11, 60, NOW), UpsertResult.Replaced);
    t.lookup(key('u'), out, NOW);
    assert.deepEqual([out[0], out[1], out[2]], [epB, 5, 11]);
    assert.equal(t.upsert(key('u'), epA, 6, 1, 60, NOW), UpsertResult.Replaced);
    assert.equal(t.stats().size, 1);
  });

  it('expires entries by TTL, and an expired entry loses to any version', () => {
    t.upsert(key('u'), epA, 9, 1, 10, NOW);
    assert.equal(t.lookup(key('u'), out, NOW + 9), true);
    assert.equal(t.lookup(key('u'), out, NOW + 10), false);
    assert.equal(t.upsert(key('u'), epB, 1, 1, 10, NOW + 10), UpsertResult.Replaced);
    assert.equal(t.sweep(NOW + 100, 1 << 20), 1);
    assert.equal(t.stats().size, 0);
  });

  it('refuses a new key when full and counts it, never evicting a live entry', () => {
    const small = new Table(4, 2);
    const ep = small.internEndpoint(Buffer.from([10, 0, 0, 1]), 1, Buffer.alloc(0));
    for (let i = 0; i < 4; i++) assert.equal(small.upsert(key(`k${i}`), ep, 1, 1, 60, NOW), UpsertResult.Inserted);
    assert.equal(small.upsert(key('k4'), ep, 1, 1, 60, NOW), UpsertResult.Full);
    assert.equal(small.stats().full, 1);
    for (let i = 0; i < 4; i++) assert.equal(small.lookup(key(`k${i}`), out, NOW), true);
    // an existing key can still be updated when full
    assert.equal(small.upsert(key('k0'), ep, 2, 1, 60, NOW), UpsertResult.Replaced);
    // an expired entry makes room
    assert.equal(small.upsert(key('k5'), ep, 1, 1, 60, NOW + 61), UpsertResult.Inserted);
  });

  it('batch lookup agrees with single lookups, hits and misses mixed', () => {
    const keys: Buffer[] = [];
    for (let i = 0; i < 600; i++) {
      keys.push(key(`user${i}`));
      if (i % 3 !== 0) t.upsert(keys[i], i % 2 ? epA : epB, i, 1, 60, NOW);
    }
    const offsets = new Uint32Array(keys.length + 1);
    keys.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
    const endpoints = new Int32Array(keys.length);
    const versions = new Uint32Array(keys.length);
    const hits = t.lookupBatch(Buffer.concat(keys), offsets, keys.length, endpoints, versions, null, NOW);
    assert.equal(hits, 400);
    keys.forEach((k, i) => {
      const found = t.lookup(k, out, NOW);
      assert.equal(endpoints[i], found ? out[0] : -1);
      assert.equal(versions[i], found ? out[1] : 0);
    });
  });

  it('stores many entries in one batch call and reports each result', () => {
    const keys = [key('b0'), key('b1'), key('b0'), Buffer.alloc(1)];
    const offsets = new Uint32Array(keys.length + 1);
    keys.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
    const fields = new Uint32Array([epA, 1, 1, 60, epB, 1, 1, 60, epB, 2, 1, 60, epA, 1, 1, 60]);
    const results = new Uint8Array(keys.length);
    assert.equal(t.upsertBatch(Buffer.concat(keys), offsets, keys.length, fields, results, NOW), 3);
    assert.deepEqual([...results], [UpsertResult.Inserted, UpsertResult.Inserted, UpsertResult.Replaced, UpsertResult.BadKey]);
    t.lookup(key('b0'), out, NOW);
    assert.deepEqual([out[0], out[1]], [epB, 2]);
    assert.throws(() => t.upsertBatch(Buffer.alloc(0), new Uint32Array(1), 1, fields, null), RangeError);
  });

  it('treats malformed keys as misses in a batch and refuses them on upsert', () => {
    const bad = Buffer.alloc(1);
    const endpoints = new Int32Array(1);
    assert.equal(t.lookupBatch(bad, new Uint32Array([0, 1]), 1, endpoints, null, null, NOW), 0);
    assert.equal(endpoints[0], -1);
    assert.equal(t.upsert(Buffer.alloc(200), epA, 1, 1, 1, NOW), UpsertResult.BadKey);
    assert.throws(() => t.lookupBatch(bad, new Uint32Array([0, 5]), 1, endpoints, null, null, NOW), RangeError);
    assert.throws(() => t.upsert(key('x'), 999, 1, 1, 1, NOW), /not interned/);
    assert.throws(() => t.lookup(key('x'), new Uint32Array(2)), RangeError);
    assert.throws(() => t.lookup(key('x'), new Int32Array(5) as unknown as Uint32Array), TypeError);
  });

  it('removes without tombstones and keeps every other key reachable', () => {
    const keys = Array.from({ length: 500 }, (_, i) => key(`r${i}`));
    keys.forEach((k) => t.upsert(k, epA, 1, 1, 60, NOW));
    for (let i = 0; i < 500; i += 2) assert.equal(t.remove(keys[i]), true);
    for (let i = 0; i < 500; i++) assert.equal(t.lookup(keys[i], out, NOW), i % 2 === 1, `key ${i}`);
    // reinsert into reclaimed slots, many times over (churn)
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i += 2) t.upsert(keys[i], epB, round + 2, 1, 60, NOW);
      for (let i = 0; i < 500; i += 2) t.remove(keys[i]);
    }
    for (let i = 0; i < 500; i++) assert.equal(t.lookup(keys[i], out, NOW), i % 2 === 1);
    assert.equal(t.stats().size, 250);
  });

  it('iterates every live entry once, in pages', () => {
    for (let i = 0; i < 300; i++) t.upsert(key(`it${i}`), epA, 1, 1, i < 250 ? 60 : 1, NOW);
    const seen = new Set<string>();
    let cursor = 0;
    for (;;) {
      const page = t.entries(cursor, 37, NOW + 5);
      page.entries.forEach((e) => seen.add(e.key.toString('hex')));
      cursor = page.cursor;
      if (page.done) break;
    }
    assert.equal(seen.size, 250);
  });

  it('interns endpoints once and refuses when the registry is full', () => {
    assert.equal(t.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('a')), epA);
    const v6 = t.internEndpoint(Buffer.alloc(16, 1), 443, Buffer.from('six'));
    assert.deepEqual(t.endpoint(v6), { address: Buffer.alloc(16, 1), port: 443, name: Buffer.from('six') });
    for (let i = 3; i < 8; i++) t.internEndpoint(Buffer.from([10, 0, 1, i]), 1, Buffer.alloc(0));
    assert.equal(t.internEndpoint(Buffer.from([10, 9, 9, 9]), 1, Buffer.alloc(0)), -1);
    assert.throws(() => t.internEndpoint(Buffer.alloc(5), 1, Buffer.alloc(0)), RangeError);
    assert.throws(() => t.internEndpoint(Buffer.alloc(4), 0, Buffer.alloc(0)), RangeError);
    assert.throws(() => t.internEndpoint(Buffer.alloc(4), 1, Buffer.from([0xff])), RangeError);
  });

  it('reports memory per entry within the 160-octet aim', () => {
    const big = new Table(1 << 20, 16);
    const perEntry = big.stats().memoryBytes / (1 << 20);
    assert.ok(perEntry <= 160, `memory per entry ${perEntry}`);
  });

  it('keeps a large table in memory advised for huge pages, a small one on the heap; both work alike', () => {
    // madvise(MADV_HUGEPAGE) succeeds wherever the kernel has transparent huge
    // pages, whatever its mode; without them the table is the same memory in 4 KiB pages
    const thp = existsSync('/sys/kernel/mm/transparent_hugepage/enabled');
    const big = new Table(100_000, 16); // 12.8 MB of records, 2 MiB of slots
    const small = new Table(1_000, 16);
    assert.equal(small.stats().hugePageBytes, 0, 'a small table stays on the heap');
    if (thp) assert.ok(big.stats().hugePageBytes >= 100_000 * 128, `advised ${big.stats().hugePageBytes} of ${big.stats().memoryBytes} bytes`);
    else assert.equal(big.stats().hugePageBytes, 0);
    const ep = big.internEndpoint(Buffer.from([10, 0, 0, 9]), 1701, Buffer.from('lns'));
    const keys = Array.from({ length: 100_000 }, (_, i) => key(`huge-${i}`));
    for (const k of keys) assert.equal(big.upsert(k, ep, 1, 1, 60, NOW), UpsertResult.Inserted);
    assert.equal(big.upsert(key('one-too-many'), ep, 1, 1, 60, NOW), UpsertResult.Full);
    for (const k of keys) assert.equal(big.lookup(k, out, NOW), true);
    assert.equal(big.stats().size, 100_000);
  });

  it('withdraw markers: a miss for lookups, in the version rule, listed by entries()', () => {
    const W = 0xffffffff;
    t.upsert(key('w'), epA, 3, 1, 60, NOW);
    assert.equal(t.upsert(key('w'), W, 2, 9, 60, NOW), UpsertResult.Ignored, 'an older withdraw loses');
    assert.equal(t.upsert(key('w'), W, 4, 1, 60, NOW), UpsertResult.Replaced);
    assert.equal(t.lookup(key('w'), out, NOW), false);
    assert.equal(t.lookup(key('w'), out, NOW, true), true);
    assert.deepEqual([...out.subarray(0, 3)], [W, 4, 1]);
    const ends = new Int32Array(1);
    const k = key('w');
    assert.equal(t.lookupBatch(k, Uint32Array.of(0, k.length), 1, ends, null, null, NOW), 0);
    assert.equal(ends[0], -1);
    assert.equal(t.upsert(key('w'), epB, 3, 9, 60, NOW), UpsertResult.Ignored, 'an older UPDATE cannot bring it back');
    assert.equal(t.upsert(key('w'), epB, 5, 1, 60, NOW), UpsertResult.Replaced, 'a newer entry replaces the marker');
    t.upsert(key('m'), W, 1, 1, 60, NOW);
    const listed = t.entries(0, 10, NOW).entries;
    assert.deepEqual(listed.map((e) => e.endpointId).sort(), [epB, W].sort());
    for (const e of listed) {
      const again = t.entries(e.slot, 1, NOW).entries;
      assert.ok(again.some((x) => x.key.equals(e.key)), 'entries(slot) lists the entry again');
      assert.ok(again.every((x) => x.slot === e.slot), 'and only entries of the same home slot');
    }
  });

  it('digests: equal for the same entries in any order and any endpoint ids, different for any other', async () => {
    const u = new Table(1000, 8);
    const eb = u.internEndpoint(Buffer.from([10, 0, 0, 2]), 1701, Buffer.from('b')); // ids differ from t's
    const ea = u.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('a'));
    for (let i = 0; i < 200; i++) t.upsert(key(`d${i}`), i % 2 ? epA : epB, 1, 1, 60, NOW);
    for (let i = 199; i >= 0; i--) u.upsert(key(`d${i}`), i % 2 ? ea : eb, 1, 1, 60 + (i % 7), NOW);
    assert.equal(t.digest(16, NOW).equals(u.digest(16, NOW)), true, 'expiry is not part of a digest');
    assert.equal((await t.digestAsync(16, NOW)).equals(t.digest(16, NOW)), true, 'the worker-thread walk gives the same digest');
    await assert.rejects(async () => t.digestAsync(0), RangeError);
    const diff = (a: Buffer, b: Buffer) => [...Array(a.length / 8).keys()].filter((i) => !a.subarray(i * 8, i * 8 + 8).equals(b.subarray(i * 8, i * 8 + 8)));
    u.upsert(key('d5'), ea, 2, 1, 60, NOW); // another version
    const d1 = diff(t.digest(16, NOW), u.digest(16, NOW));
    assert.equal(d1.length, 1);
    const inBucket = t.entries(0, 1000, NOW).entries.find((e) => e.key.equals(key('d5')))!;
    assert.equal(inBucket.keyHash % 16, d1[0], 'entries() gives the bucket of a key');
    t.upsert(key('d5'), epA, 2, 1, 60, NOW);
    assert.equal(diff(t.digest(16, NOW), u.digest(16, NOW)).length, 0);
    u.upsert(key('d6'), 0xffffffff, 9, 1, 60, NOW); // a marker
    assert.equal(diff(t.digest(16, NOW), u.digest(16, NOW)).length, 1);
    assert.throws(() => t.digest(0), RangeError);
    assert.throws(() => t.digest(129), RangeError);
  });
});
