// The key hash and the DIGEST, as a third party would write them from
// docs/protocol.md alone (issue 13, item 9: the hash was defined only by a
// reference to native/key_hash.h). The implementation below uses nothing
// of src/ and nothing of native/: BigInt arithmetic from section 9.1, a
// canonical Endpoint encoding from section 7.1, canonical key octets from
// section 8.1. It is checked against the vectors the native code generated
// (test/vectors/key-hash.json), against the vectors printed in the document,
// against the native function on random input, and against the digest of a
// native table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { addonOrSkip } from '../helpers/addon';
import { Prng } from '../helpers/prng';

const root = join(__dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');
const vectors = JSON.parse(readFileSync(join(root, 'test', 'vectors', 'key-hash.json'), 'utf8')) as {
  hashes: { seed: string; input: string; hash: string }[];
  keys: { clientKey: string; canonical: string; hash: string; bucketHash: number }[];
  digest: { bucketCount: number; entries: { clientKey: string; endpoint: { address: string; port: number; name: string } | null; version: number; originNode: number }[]; buckets: string[] };
};

// ---- docs/protocol.md section 9.1, "The key hash" ----
const M64 = (1n << 64n) - 1n;
const K0 = 0xa0761d6478bd642fn;
const K1 = 0xe7037ed1a0b428dbn;
const K2 = 0x8ebc6af09c88c6e3n;
const fold = (a: bigint, b: bigint): bigint => {
  const m = a * b; // 128-bit product, not reduced
  return (m & M64) ^ (m >> 64n);
};
const word = (p: Uint8Array, i: number, c: number): bigint => {
  let w = 0n;
  for (let j = c - 1; j >= 0; j--) w = (w << 8n) | BigInt(p[i + j]);
  return w;
};
function keyHash(p: Uint8Array, seed: bigint): bigint {
  const n = p.length;
  let h = seed ^ ((K0 * BigInt(n + 1)) & M64);
  let i = 0;
  for (; i + 16 <= n; i += 16) h = fold(word(p, i, 8) ^ K1 ^ h, word(p, i + 8, 8) ^ K2 ^ seed);
  const r = n - i;
  const [a, b] = r > 8 ? [word(p, i, 8), word(p, i + 8, r - 8)] : [word(p, i, r), 0n];
  h = fold(a ^ K1 ^ h, b ^ K2 ^ seed);
  return fold(h ^ K0, BigInt(n) ^ K1);
}

// ---- section 9, DIGEST, with sections 7.1 and 8.1 ----
const BUCKET_SEED = 0x6166666e64696731n;
const ENTRY_SEED = 0x6166666e64656e31n;
const varint = (x: number): number[] => {
  const out: number[] = [];
  while (x > 127) {
    out.push((x & 127) | 128);
    x = Math.floor(x / 128);
  }
  return [...out, x];
};
/** Canonical key octets: [class][address length][address][username] (section 8.1), from the text form. */
function canonicalKey(text: string): Buffer {
  const slash = text.indexOf('/');
  const disc = text.slice(0, slash);
  const user = Buffer.from(text.slice(slash + 1), 'utf8');
  const cls = Number(disc.split(':')[0]);
  const rest = disc.slice(disc.indexOf(':') + 1);
  const addr =
    cls === 0 ? Buffer.alloc(0)
    : cls === 2 ? Buffer.from(rest.split('.').map(Number))
    : cls === 3 ? Buffer.from(rest.split(':').map((x) => parseInt(x, 16)))
    : cls === 5 ? Buffer.from(rest, 'latin1')
    : Buffer.from(rest, 'hex');
  return Buffer.concat([Buffer.from([cls, addr.length]), addr, user]);
}
function ipOctets(a: string): Buffer {
  if (!a.includes(':')) return Buffer.from(a.split('.').map(Number));
  const [head, tail] = a.split('::');
  const groups = (s?: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = groups(head);
  const t = groups(tail);
  const all = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return Buffer.from(all.flatMap((g) => [g >> 8, g & 255]));
}
/** The canonical encoding of an Endpoint body (section 7.1: field order, defaults omitted). */
function endpointBody(e: { address: string; port: number; name: string }): Buffer {
  const addr = ipOctets(e.address);
  const name = Buffer.from(e.name, 'utf8');
  return Buffer.from([
    0x0a, addr.length, ...addr,
    ...(e.port ? [0x10, ...varint(e.port)] : []),
    ...(name.length ? [0x1a, ...varint(name.length), ...name] : []),
  ]);
}
const u32be = (x: number) => Buffer.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
const bucketOf = (key: Buffer, count: number) => Number(keyHash(key, BUCKET_SEED) >> 32n) % count;
function digestOf(entries: typeof vectors.digest.entries, count: number): Buffer {
  const buckets = Array<bigint>(count).fill(0n);
  for (const e of entries) {
    const k = canonicalKey(e.clientKey);
    const term = keyHash(Buffer.concat([k, e.endpoint ? endpointBody(e.endpoint) : Buffer.from([0xff]), u32be(e.version), u32be(e.originNode)]), ENTRY_SEED);
    buckets[bucketOf(k, count)] ^= term;
  }
  const out = Buffer.alloc(8 * count);
  buckets.forEach((d, i) => out.writeBigUInt64LE(d, 8 * i));
  return out;
}

describe('the key hash and the digest, from docs/protocol.md alone (issue 13, item 9)', () => {
  it('reproduces every vector the native code generated', () => {
    assert.ok(vectors.hashes.length > 100);
    for (const v of vectors.hashes) assert.equal(keyHash(Buffer.from(v.input, 'hex'), BigInt('0x' + v.seed)).toString(16).padStart(16, '0'), v.hash, `seed ${v.seed}, ${v.input.length / 2} octets`);
    for (const k of vectors.keys) {
      assert.equal(canonicalKey(k.clientKey).toString('hex'), k.canonical, k.clientKey);
      assert.equal(keyHash(Buffer.from(k.canonical, 'hex'), BUCKET_SEED).toString(16).padStart(16, '0'), k.hash);
      assert.equal(Number(keyHash(Buffer.from(k.canonical, 'hex'), BUCKET_SEED) >> 32n), k.bucketHash);
    }
  });

  it('reproduces the vectors printed in the document, and its worked digest', () => {
    const section = doc.slice(doc.indexOf('### 9.1 The key hash'), doc.indexOf('## 10.'));
    const rows = [...section.matchAll(/^\| ([0-9a-f]{16}) \| (\(empty\)|[0-9a-f]+)[^|]*\| ([0-9a-f]{16})/gm)];
    assert.ok(rows.length >= 10, `${rows.length} vectors in the document`);
    for (const [, seed, input, hash] of rows) {
      const p = input === '(empty)' ? Buffer.alloc(0) : Buffer.from(input, 'hex');
      assert.equal(keyHash(p, BigInt('0x' + seed)).toString(16).padStart(16, '0'), hash, `seed ${seed}, P ${input}`);
    }
    const printed = /has `buckets` =\n`([0-9a-f ]+)`/.exec(section)![1].split(' ');
    assert.deepEqual(printed, vectors.digest.buckets);
    assert.deepEqual(digestOf(vectors.digest.entries, 4).toString('hex').match(/.{16}/g), vectors.digest.buckets);
    // the worked term: alice's key | Endpoint | version | origin
    assert.match(section, new RegExp(`\`${canonicalKey('2:192.0.2.7/alice').toString('hex')}\` \`${endpointBody({ address: '198.51.100.10', port: 1701, name: 'lns-1' }).toString('hex')}\` \`00000001\` \`00000003\``));
  });

  describe('against the addon', () => {
    before(function () {
      addonOrSkip(this);
    });
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const native = () => (require('../../src/native') as typeof import('../../src/native')).native();

    it('agrees with native/key_hash.h on 5,000 random inputs and seeds', () => {
      const rng = new Prng(13);
      const a = native();
      for (let i = 0; i < 5000; i++) {
        const p = rng.bytes(rng.int(100));
        const seed = (BigInt(rng.int(0x100000000)) << 32n) | BigInt(rng.int(0x100000000));
        assert.equal(keyHash(p, seed), a.codec.keyHash(p, seed), `${p.toString('hex')} seed ${seed.toString(16)}`);
      }
    });

    it('computes the digest a node computes, for a table of 2,000 entries and markers, in 1 to 128 buckets', () => {
      const a = native();
      const rng = new Prng(29);
      const t = new a.AffinityTable(4096, 16);
      const eps = [
        { address: '198.51.100.10', port: 1701, name: 'lns-1' },
        { address: '2001:db8::6', port: 65535, name: 'ämter-β' },
        { address: '203.0.113.7', port: 1, name: '' },
      ];
      const ids = eps.map((e) => t.internEndpoint(ipOctets(e.address), e.port, Buffer.from(e.name)));
      const entries: typeof vectors.digest.entries = [];
      for (let i = 0; i < 2000; i++) {
        const clientKey = i % 3 === 0 ? `2:10.${(i >> 8) & 255}.${i & 255}.1/user-${i}` : i % 3 === 1 ? `1:${(i + 0x1000).toString(16)}/ü${i}` : `5:${100000 + i}/`;
        const marker = rng.int(5) === 0;
        const e = rng.int(eps.length);
        const version = 1 + rng.int(1000);
        const originNode = 1 + rng.int(0xfffffffe);
        entries.push({ clientKey, endpoint: marker ? null : eps[e], version, originNode });
        t.upsert(canonicalKey(clientKey), marker ? 0xffffffff : ids[e], version, originNode, 600);
      }
      for (const count of [1, 7, 64, 128]) assert.equal(digestOf(entries, count).toString('hex'), t.digest(count).toString('hex'), `${count} buckets`);
      // and the bucket of every key is the one the table walk reports (keyHash % buckets)
      const walked = t.entries(0, 4096);
      for (const e of walked.entries.slice(0, 200)) assert.equal(Number(keyHash(e.key, BUCKET_SEED) >> 32n), e.keyHash);
    });
  });
});
