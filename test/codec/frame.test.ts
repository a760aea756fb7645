import assert from 'node:assert/strict';

import { encodeFrame, inspectFrame, type Keyring, validateKeyring } from '../../src/codec/frame';
import { parseClientKey } from '../../src/codec/client-key';
import { encodeQuery, MessageType } from '../../src/codec/messages';

const ring: Keyring = { keys: [{ id: 5, secret: Buffer.alloc(32, 1) }], sendKeyId: 5 };

describe('frame (pure)', () => {
  it('validates keyrings', () => {
    validateKeyring(ring);
    assert.throws(() => validateKeyring({ keys: [{ id: 1, secret: Buffer.alloc(15) }], sendKeyId: 1 }), /16 to 64/);
    assert.throws(() => validateKeyring({ keys: [{ id: 1, secret: Buffer.alloc(16) }], sendKeyId: 2 }), /names no key/);
    assert.throws(
      () => validateKeyring({ keys: [{ id: 1, secret: Buffer.alloc(16) }, { id: 1, secret: Buffer.alloc(16) }], sendKeyId: 1 }),
      /twice/,
    );
  });

  it('decodes what it encodes and refuses another key', () => {
    const body = encodeQuery({ keys: [parseClientKey('2:192.0.2.1/a')], queryId: 3, answerRank: 0 });
    const f = encodeFrame({ type: MessageType.Query, keyId: 5, senderNode: 1, bootEpoch: 2, sequence: 3n, timestampMs: 1000n }, body, ring);
    const ok = inspectFrame(f, { keyring: ring, nowMs: 1000 });
    assert.equal(ok.verdict, 'accepted');
    assert.equal(ok.message?.type, MessageType.Query);
    const other: Keyring = { keys: [{ id: 5, secret: Buffer.alloc(32, 2) }], sendKeyId: 5 };
    assert.equal(inspectFrame(f, { keyring: other, nowMs: 1000 }).verdict, 'badTag');
    assert.equal(inspectFrame(f, { keyring: ring, nowMs: 1000, selfNode: 1 }).verdict, 'ownFrame');
    assert.equal(inspectFrame(f, { keyring: ring, nowMs: 40_000 }).verdict, 'stale');
    assert.equal(inspectFrame(f, { keyring: ring, nowMs: 40_000, maxSkewMs: 60_000 }).verdict, 'accepted');
  });
});
