// 100,000 random and mutated frames through both codecs: neither crashes,
// both give every frame the same verdict, and where a body decodes both
// decode it to the same message.
import assert from 'node:assert/strict';

import { inspectFrame, type Keyring, VERDICTS } from '../../src/codec/frame';
import { addonOrSkip } from '../helpers/addon';
import { fuzzFrame } from '../helpers/fuzz-frames';
import { Prng } from '../helpers/prng';
import { messageToJson, nativeToJson } from '../helpers/vector-json';

const COUNT = 100_000;

describe('fuzz: both codecs agree on 100,000 random and mutated frames', function () {
  this.timeout(300_000);

  it('gives each frame one verdict in both codecs, and decodes accepted bodies alike', function () {
    const codec = addonOrSkip(this).codec;
    const seed = Number(process.env.AFFINITYD_FUZZ_SEED ?? 20261126);
    const rng = new Prng(seed);
    const keyring: Keyring = { keys: [{ id: 7, secret: Buffer.alloc(32, 0x5a) }], sendKeyId: 7 };
    let seq = 1n;
    const now = 1_790_000_000_000n;
    const ctx = { keyring, senderNode: 3, bootEpoch: 100, nextSequence: () => seq++, nowMs: () => now, selfNode: 9 };
    const tally: Record<string, number> = Object.fromEntries(VERDICTS.map((v) => [v, 0]));
    let decodedCompared = 0;
    for (let i = 0; i < COUNT; i++) {
      const { kind, frame } = fuzzFrame(rng, ctx);
      // every other frame as a node in another boot epoch than the frames' own id: a duplicate id
      const selfBootEpoch = i % 2 ? 100 : 200;
      const ts = inspectFrame(frame, { keyring, nowMs: now, selfNode: 9, selfBootEpoch });
      const nat = codec.inspectFrame(frame, keyring, now, 9, selfBootEpoch);
      if (ts.verdict !== nat.verdict) {
        assert.fail(`seed ${seed} frame ${i} (${kind}): TypeScript says ${ts.verdict}, native says ${nat.verdict}\n${frame.toString('hex')}`);
      }
      tally[ts.verdict]++;
      if (ts.message && ts.body) {
        const d = codec.decodeMessage(ts.header!.type, ts.body);
        assert.ok(d, `seed ${seed} frame ${i}: native refused a body TypeScript decoded`);
        assert.deepEqual(nativeToJson(ts.header!.type, d), messageToJson(ts.message), `seed ${seed} frame ${i}`);
        decodedCompared++;
      }
    }
    console.log(`      seed ${seed}: ${JSON.stringify(tally)}; ${decodedCompared} decoded bodies compared`);
    assert.equal(Object.values(tally).reduce((a, b) => a + b, 0), COUNT);
    // The generator must reach every stage, or the agreement proves little.
    for (const v of ['accepted', 'ownFrame', 'duplicateNode', 'malformedBody', 'badTag', 'badMagic', 'truncated', 'oversize', 'badLength', 'unknownKey', 'unknownType', 'stale']) {
      assert.ok(tally[v] > 50, `fuzz reached ${v} only ${tally[v]} times`);
    }
    assert.ok(decodedCompared > 5000, `only ${decodedCompared} decoded bodies compared`);
  });
});
