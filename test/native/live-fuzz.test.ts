// 100,000 random and mutated frames sent to a live node: it keeps running,
// counts every datagram, and counts each under the reason the reference
// codec gives (replay cannot occur: every signed frame has a new sequence).
import assert from 'node:assert/strict';

import { inspectFrame, VERDICTS } from '../../src/codec/frame';
import { addonOrSkip } from '../helpers/addon';
import { fuzzFrame } from '../helpers/fuzz-frames';
import { rawSender, sendRaw, testGroup, testKeyring, TestNode, until } from '../helpers/loopback';
import { Prng } from '../helpers/prng';
import { parseClientKey } from '../../src/codec/client-key';
import { encodeQuery, MessageType } from '../../src/codec/messages';

const COUNT = 100_000;

describe('fuzz: 100,000 random and mutated frames through a live socket', function () {
  this.timeout(300_000);

  it('counts every datagram under the reference codec\'s reason, and keeps answering', async function () {
    addonOrSkip(this);
    const net = testGroup();
    const keyring = testKeyring(0x5a, 7);
    const node = new TestNode(9, net, keyring, { queueCapacity: 1 << 16 });
    const s = await rawSender();
    try {
      const seed = Number(process.env.AFFINITYD_FUZZ_SEED ?? 7);
      const rng = new Prng(seed);
      let seq = 1n;
      const ctx = { keyring, senderNode: 3, bootEpoch: 100, nextSequence: () => seq++, nowMs: () => BigInt(Date.now()), selfNode: 9 };
      const expected: Record<string, number> = Object.fromEntries(VERDICTS.map((v) => [v, 0]));
      let sent = 0;
      while (sent < COUNT) {
        const { frame } = fuzzFrame(rng, ctx);
        const now = Date.now();
        const r = inspectFrame(frame, { keyring, nowMs: now, selfNode: 9, selfBootEpoch: node.bootEpoch });
        // a timestamp within 1 s of the 30 s edge could be judged either way
        // by the time the node reads it: leave those out
        if (r.header && r.verdict === 'stale' || r.verdict === 'accepted') {
          const skew = Math.abs(Number(r.header!.timestampMs) - now);
          if (Math.abs(skew - 30_000) < 1000) continue;
        }
        expected[r.verdict]++;
        await sendRaw(s, frame, net.port, net.group);
        sent++;
        // pace so the kernel never drops: wait for the node to catch up
        if (sent % 512 === 0) await until(() => node.responder.stats().received >= sent - 128, 5000, 'the node to catch up');
      }
      await until(() => node.responder.stats().received === COUNT, 10_000, 'every datagram read');
      const st = node.responder.stats();
      console.log(`      seed ${seed}: ${JSON.stringify(st.verdicts)}`);
      for (const v of VERDICTS) assert.equal(st.verdicts[v], expected[v], `verdict ${v}`);
      assert.equal(Object.values(st.verdicts).reduce((a, b) => a + b, 0), COUNT, 'every datagram counted once');
      // still answering after the flood
      node.store(parseClientKey('2:10.0.0.1/after'), { address: '10.1.1.1', port: 1, name: '' });
      const b = new TestNode(10, net, keyring);
      try {
        b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [parseClientKey('2:10.0.0.1/after')], queryId: 1, answerRank: 0 }) }]);
        await b.waitFrame(() => true, 2000);
      } finally {
        b.close();
      }
    } finally {
      s.close();
      node.close();
    }
  });
});
