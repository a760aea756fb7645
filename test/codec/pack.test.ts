// The native packer (native/messages.h PackList: what the responder's
// sendList sends for the router's QUERYs, CLAIMs and UPDATEs) against the
// reference codec: every body it makes decodes to the items given, in
// order, and is exactly the reference codec's encoding of that message;
// no body is over the limit; lists split only where the next item does not fit.
import assert from 'node:assert/strict';

import { clientKeyBytes, clientKeyFromBytes, formatClientKey, parseClientKey } from '../../src/codec/client-key';
import { decodeClaim, decodeQuery, decodeUpdate, encodeClaim, encodeEndpoint, encodeQuery, encodeUpdate, MessageType } from '../../src/codec/messages';
import { addonOrSkip } from '../helpers/addon';
import { Prng } from '../helpers/prng';

const MAX_BODY = 1352;
const endpoints = [
  { address: '198.51.100.10', port: 1701, name: 'lns-1' },
  { address: '2001:db8::7', port: 65535, name: 'ämter-β' },
  { address: '0.0.0.0', port: 1, name: '' },
];

function randomKey(rng: Prng, i: number): string {
  switch (rng.int(5)) {
    case 0: return `0/${'u'.repeat(rng.int(64))}`;
    case 1: return `2:10.${rng.int(256)}.${rng.int(256)}.${i % 256}/user${i}`;
    case 2: return `3:02:00:5e:10:00:${(i % 256).toString(16).padStart(2, '0')}/${'ß'.repeat(rng.int(32))}`;
    case 3: return `5:${String(1e9 + i).slice(0, 1 + rng.int(15))}/p${i}`;
    default: return `1:${Buffer.from(rng.bytes(1 + rng.int(20))).toString('hex')}/${'x'.repeat(rng.int(64))}`;
  }
}

describe('native packer against the reference codec', function () {
  this.timeout(60_000);
  let codec: ReturnType<typeof addonOrSkip>['codec'];
  before(function () {
    codec = addonOrSkip(this).codec;
  });

  for (const type of [MessageType.Query, MessageType.Update, MessageType.Claim]) {
    it(`type ${type}: random lists of 1 to 300 items, 200 times`, () => {
      const rng = new Prng(900 + type);
      for (let round = 0; round < 200; round++) {
        const n = 1 + rng.int(300);
        const keys = Array.from({ length: n }, (_, i) => parseClientKey(randomKey(rng, round * 1000 + i)));
        const bytes = keys.map(clientKeyBytes);
        const offsets = new Uint32Array(n + 1);
        bytes.forEach((b, i) => (offsets[i + 1] = offsets[i] + b.length));
        const fields = new Uint32Array(4 * n);
        for (let i = 0; i < n; i++) fields.set([rng.int(3), rng.int(2) ? rng.int(5) : 4294967295, rng.int(2) ? 1 + rng.int(9) : 0, rng.int(3) ? rng.int(100_000) : 0], 4 * i);
        const id = rng.int(2) ? rng.int(1 << 30) : 0;
        // a QUERY's answer rank; a CLAIM's handover flag (docs/protocol.md "Handover")
        const rank = type === MessageType.Query ? rng.int(4) : type === MessageType.Claim ? rng.int(2) : 0;
        const bodies = codec.packList(type, id, rank, Buffer.concat(bytes), offsets, n, type === MessageType.Query ? null : fields, endpoints.map(encodeEndpoint));
        const got: string[] = [];
        for (const [bi, b] of bodies.entries()) {
          assert.ok(b.length <= MAX_BODY, `body ${bi} is ${b.length} octets`);
          if (type === MessageType.Query) {
            const q = decodeQuery(b);
            assert.deepEqual([q.queryId, q.answerRank], [id, rank]);
            assert.equal(encodeQuery(q).toString('hex'), b.toString('hex'), 'the reference encoding');
            got.push(...q.keys.map(formatClientKey));
          } else {
            const m = type === MessageType.Update ? decodeUpdate(b).entries : decodeClaim(b).proposals;
            if (type === MessageType.Claim) assert.deepEqual([decodeClaim(b).claimId, decodeClaim(b).handover], [id, rank === 1]);
            const again = type === MessageType.Update ? encodeUpdate({ entries: m }) : encodeClaim({ claimId: id, proposals: m, handover: rank === 1 });
            assert.equal(again.toString('hex'), b.toString('hex'), 'the reference encoding');
            for (const e of m) {
              const i = got.length;
              assert.deepEqual(e.endpoint, endpoints[fields[4 * i]]);
              assert.deepEqual([e.version, e.originNode, e.ttlSeconds], [fields[4 * i + 1], fields[4 * i + 2], fields[4 * i + 3]]);
              got.push(formatClientKey(e.clientKey));
            }
          }
          // split only where the next item did not fit
          if (bi < bodies.length - 1) assert.ok(b.length > MAX_BODY - 200, `body ${bi} ended early at ${b.length} octets`);
        }
        assert.deepEqual(got, keys.map(formatClientKey));
        assert.equal(formatClientKey(clientKeyFromBytes(bytes[0])), got[0]);
      }
    });
  }

  it('skips a key that is not canonical and an endpoint id not known, and packs the rest', () => {
    const good = clientKeyBytes(parseClientKey('0/good'));
    const bad = Buffer.from([6, 0]); // class 6
    const keys = Buffer.concat([good, bad, good]);
    const offsets = new Uint32Array([0, good.length, good.length + 2, keys.length]);
    const fields = new Uint32Array([0, 1, 1, 0, 0, 1, 1, 0, 9, 1, 1, 0]);
    const bodies = codec.packList(MessageType.Update, 0, 0, keys, offsets, 3, fields, [encodeEndpoint(endpoints[0])]);
    assert.equal(bodies.length, 1);
    assert.deepEqual(decodeUpdate(bodies[0]).entries.map((e) => formatClientKey(e.clientKey)), ['0/good']);
  });
});
