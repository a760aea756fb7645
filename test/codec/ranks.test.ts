// The shared rank vectors (test/vectors/ranks.json) through the TypeScript
// ranks and the native ones: both must give every node the same rank.
import assert from 'node:assert/strict';

import rankVectors from '../vectors/ranks.json';
import { fnv1a32, fmix32, rankFirst, rankOf, rankOrder, rankScore } from '../../src/directory/ranks';
import { addonOrSkip } from '../helpers/addon';

describe('shared rank vectors', () => {
  for (const v of rankVectors.cases) {
    const octets = Buffer.from(v.octets, 'hex');
    const nodes = Object.keys(v.scores).map(Number);
    it(`TypeScript: ${v.description}`, () => {
      assert.equal(fnv1a32(octets), v.hash);
      for (const n of nodes) {
        assert.equal(fmix32(n), (v.fmixOfNodes as unknown as Record<string, number>)[n]);
        assert.equal(rankScore(v.hash, n), (v.scores as unknown as Record<string, number>)[n]);
      }
      assert.deepEqual(rankOrder(v.hash, nodes), v.order);
      assert.equal(rankFirst(v.hash, nodes), v.order[0]);
      v.order.forEach((n, i) => assert.equal(rankOf(v.hash, n, nodes), i));
    });
    it(`native: ${v.description}`, function () {
      const codec = addonOrSkip(this).codec;
      v.order.forEach((n, i) => assert.equal(codec.rankOf(octets, n, nodes), i, `node ${n}`));
    });
  }
});

describe('rankFirst (the arbiter without sorting)', () => {
  it('is rankOrder()[0] for 2,000 random clients and node sets, ties to the higher id; undefined for none', () => {
    let seed = 7;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    for (let i = 0; i < 2000; i++) {
      const ids = Array.from({ length: 1 + (rnd() % 16) }, () => 1 + (rnd() % 40));
      const h = rnd();
      assert.equal(rankFirst(h, ids), rankOrder(h, ids)[0], `hash ${h}, nodes ${ids.join(',')}`);
    }
    assert.equal(rankFirst(123, []), undefined);
  });
});
