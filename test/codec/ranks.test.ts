// The shared rank vectors (test/vectors/ranks.json) through the TypeScript
// ranks and the native ones: both must give every node the same rank.
import assert from 'node:assert/strict';

import rankVectors from '../vectors/ranks.json';
import { fnv1a32, fmix32, rankOf, rankOrder, rankScore } from '../../src/directory/ranks';
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
      v.order.forEach((n, i) => assert.equal(rankOf(v.hash, n, nodes), i));
    });
    it(`native: ${v.description}`, function () {
      const codec = addonOrSkip(this).codec;
      v.order.forEach((n, i) => assert.equal(codec.rankOf(octets, n, nodes), i, `node ${n}`));
    });
  }
});
