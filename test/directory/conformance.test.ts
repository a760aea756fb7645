// The two directories hold to the same rules (src/directory/directory.ts):
// the native one over the addon's table and the memory double that every
// test of the logic above them runs on. Each rule is one table of steps run
// against both; the results, what is held afterwards and the digests must
// agree. The native responder's UPDATE path keeps the same lifetime rule.
import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import type { Directory, Incoming } from '../../src/directory/directory';
import { MemoryDirectory } from '../../src/directory/memory-directory';
import { NativeDirectory } from '../../src/directory/native-directory';
import { addonOrSkip } from '../helpers/addon';

const L = { entrySeconds: 600, withdrawSeconds: 900, maxSeconds: 1200 };
const ep = (i: number) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 });
const key = (s: string) => clientKeyBytes(parseClientKey(s));
const now = () => Math.floor(Date.now() / 1000);

type Step = { op: 'apply'; key: string; x: Incoming } | { op: 'claim'; key: string; x: Incoming & { endpoint: ReturnType<typeof ep> } };

const steps: { description: string; steps: Step[]; expect: unknown[] }[] = [
  {
    description: 'version rule: higher version wins, ties go to the higher origin, equal is ignored',
    steps: [
      { op: 'apply', key: '0/a', x: { endpoint: ep(1), version: 2, originNode: 5, ttlSeconds: 100 } },
      { op: 'apply', key: '0/a', x: { endpoint: ep(2), version: 1, originNode: 9, ttlSeconds: 100 } },
      { op: 'apply', key: '0/a', x: { endpoint: ep(3), version: 2, originNode: 6, ttlSeconds: 100 } },
      { op: 'apply', key: '0/a', x: { endpoint: ep(3), version: 2, originNode: 6, ttlSeconds: 100 } },
    ],
    expect: ['inserted', 'ignored', 'replaced', 'ignored'],
  },
  {
    description: 'lifetime rule: 0 is the default (entries and markers have their own), nothing outlives the cap',
    steps: [
      { op: 'apply', key: '0/b', x: { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 0 } },
      { op: 'apply', key: '0/c', x: { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 99_999 } },
      { op: 'apply', key: '0/d', x: { version: 1, originNode: 1, ttlSeconds: 0 } },
    ],
    expect: ['inserted', 'inserted', 'inserted'],
  },
  {
    description: 'a marker deletes, keeps older entries out, and loses to a newer one',
    steps: [
      { op: 'apply', key: '0/e', x: { endpoint: ep(1), version: 3, originNode: 1, ttlSeconds: 100 } },
      { op: 'apply', key: '0/e', x: { version: 4, originNode: 2, ttlSeconds: 100 } },
      { op: 'apply', key: '0/e', x: { endpoint: ep(2), version: 3, originNode: 9, ttlSeconds: 100 } },
      { op: 'apply', key: '0/e', x: { endpoint: ep(2), version: 5, originNode: 1, ttlSeconds: 100 } },
    ],
    expect: ['inserted', 'replaced', 'ignored', 'replaced'],
  },
  {
    description: 'claims: the first proposal of a version wins over later ones of that version (whatever their origin); a move needs a higher version; a marker is overtaken one version above it',
    steps: [
      { op: 'claim', key: '0/f', x: { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 100 } },
      { op: 'claim', key: '0/f', x: { endpoint: ep(2), version: 1, originNode: 9, ttlSeconds: 100 } },
      { op: 'claim', key: '0/f', x: { endpoint: ep(3), version: 2, originNode: 4, ttlSeconds: 100 } },
      { op: 'claim', key: '0/f', x: { endpoint: ep(2), version: 2, originNode: 9, ttlSeconds: 100 } },
      { op: 'apply', key: '0/g', x: { version: 7, originNode: 3, ttlSeconds: 100 } },
      { op: 'claim', key: '0/g', x: { endpoint: ep(3), version: 1, originNode: 2, ttlSeconds: 100 } },
    ],
    expect: [
      { won: true, name: 'lns-1', version: 1, originNode: 1 },
      { won: false, name: 'lns-1', version: 1, originNode: 1 },
      { won: true, name: 'lns-3', version: 2, originNode: 4 },
      { won: false, name: 'lns-3', version: 2, originNode: 4 },
      'inserted',
      { won: true, name: 'lns-3', version: 8, originNode: 2 },
    ],
  },
];

function run(d: Directory, s: Step[]): unknown[] {
  return s.map((x) => {
    if (x.op === 'apply') return d.apply(key(x.key), x.x);
    const c = d.claim(key(x.key), x.x);
    return { won: c.won, name: c.entry.endpoint.name, version: c.entry.version, originNode: c.entry.originNode };
  });
}

function held(d: Directory): string[] {
  const out: string[] = [];
  let cursor = 0;
  for (;;) {
    const page = d.walk(cursor, 2);
    for (const r of page.records) out.push(`${r.key.toString('latin1')} ${r.endpoint?.name ?? 'marker'} v${r.version}/${r.originNode} ttl${r.expiresSeconds - now()}`);
    cursor = page.cursor;
    if (page.done) return out.sort();
  }
}

describe('directories: native and memory hold to the same rules', () => {
  let directories: () => Directory[];
  before(function () {
    const a = addonOrSkip(this);
    directories = () => [new NativeDirectory(new a.AffinityTable(1000, 64), L), new MemoryDirectory(L)];
  });

  for (const t of steps) {
    it(t.description, async () => {
      const [n, m] = directories();
      assert.deepEqual(run(n, t.steps), t.expect, 'native');
      assert.deepEqual(run(m, t.steps), t.expect, 'memory');
      const hn = held(n);
      assert.deepEqual(hn, held(m), 'the same entries and markers, with the same lifetimes');
      assert.deepEqual((await n.digest(16)).toString('hex'), (await m.digest(16)).toString('hex'), 'the same digests');
      assert.equal(n.stats().size, m.stats().size);
    });
  }

  it('the lifetime rule gives default, cap and marker default (on both)', () => {
    for (const d of directories()) {
      d.apply(key('0/b'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 0 });
      d.apply(key('0/c'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 99_999 });
      d.apply(key('0/d'), { version: 1, originNode: 1, ttlSeconds: 0 });
      const ttl = (k: string) => d.peek(key(k))!.expiresSeconds - now();
      assert.ok(Math.abs(ttl('0/b') - L.entrySeconds) <= 1);
      assert.ok(Math.abs(ttl('0/c') - L.maxSeconds) <= 1);
      assert.ok(Math.abs(ttl('0/d') - L.withdrawSeconds) <= 1);
    }
  });

  it('a paged walk sees every record once, and a digest does not depend on the order things arrived in', async () => {
    const [n, m] = directories();
    const [n2, m2] = directories();
    const items = Array.from({ length: 300 }, (_, i) => ({ k: key(`5:${1000 + i}/u${i}`), x: { endpoint: ep(1 + (i % 4)), version: 1 + (i % 3), originNode: 1 + (i % 5), ttlSeconds: 500 } }));
    for (const { k, x } of items) [n, m].forEach((d) => d.apply(k, x));
    for (const { k, x } of [...items].reverse()) [n2, m2].forEach((d) => d.apply(k, x));
    for (const d of [n, m]) {
      const seen = held(d);
      assert.equal(seen.length, 300);
      assert.equal(new Set(seen).size, 300);
    }
    const digests = await Promise.all([n, m, n2, m2].map((d) => d.digest(64)));
    for (const d of digests) assert.equal(d.toString('hex'), digests[0].toString('hex'));
  });

  it('a full directory refuses a new client and keeps the ones it has (on both)', function () {
    const a = addonOrSkip(this);
    for (const d of [new NativeDirectory(new a.AffinityTable(2, 8), L), new MemoryDirectory(L, 2)]) {
      assert.equal(d.apply(key('0/x1'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 50 }), 'inserted');
      assert.equal(d.apply(key('0/x2'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 50 }), 'inserted');
      assert.equal(d.apply(key('0/x3'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 50 }), 'full');
      assert.equal(d.claim(key('0/x3'), { endpoint: ep(1), version: 1, originNode: 1, ttlSeconds: 50 }).result, 'full');
      assert.equal(d.lookup(key('0/x1'))?.endpoint.name, 'lns-1');
    }
  });
});
