// The shared vectors (test/vectors/*.json) through both codecs: the
// TypeScript reference and the native codec must agree byte for byte.
import assert from 'node:assert/strict';

import frameVectors from '../vectors/frames.json';
import messageVectors from '../vectors/messages.json';
import { encodeFrame, inspectFrame, type Keyring } from '../../src/codec/frame';
import { decodeMessage, encodeMessage } from '../../src/codec/messages';
import { ProtocolError } from '../../src/codec/errors';
import { addonOrSkip } from '../helpers/addon';
import { messageFromJson, messageToJson, nativeToJson, type MessageJson } from '../helpers/vector-json';

const hex = (s: string) => Buffer.from(s, 'hex');
const keyring: Keyring = {
  keys: frameVectors.keyring.keys.map((k) => ({ id: k.id, secret: hex(k.secret) })),
  sendKeyId: frameVectors.keyring.sendKeyId,
};
const header = (h: (typeof frameVectors.frames)[number]['header']) => ({ ...h, sequence: BigInt(h.sequence), timestampMs: BigInt(h.timestampMs) });

describe('shared vectors: TypeScript reference codec', () => {
  for (const v of messageVectors.valid) {
    it(`encodes and decodes: ${v.description}`, () => {
      const m = messageFromJson(v.message as MessageJson);
      assert.equal(encodeMessage(m).toString('hex'), v.body);
      assert.deepEqual(messageToJson(decodeMessage(v.type, hex(v.body))), v.message);
    });
  }
  for (const v of messageVectors.noncanonical) {
    it(`decodes a non-canonical body: ${v.description}`, () => {
      const m = decodeMessage(v.type, hex(v.body));
      assert.deepEqual(messageToJson(m), v.message);
      assert.equal(encodeMessage(m).toString('hex'), v.canonical);
    });
  }
  for (const v of messageVectors.malformed) {
    it(`refuses: ${v.description}`, () => {
      assert.throws(() => decodeMessage(v.type, hex(v.body)), (e: unknown) => e instanceof ProtocolError && e.code === 'malformedBody');
    });
  }
  for (const v of frameVectors.frames) {
    it(`frame: ${v.description} -> ${v.verdict}`, () => {
      if (['accepted', 'unknownType', 'malformedBody', 'ownFrame', 'duplicateNode', 'stale'].includes(v.verdict)) {
        assert.equal(encodeFrame(header(v.header), hex(v.body), keyring).toString('hex'), v.frame);
      }
      const r = inspectFrame(hex(v.frame), { keyring, nowMs: BigInt(frameVectors.nowMs), selfNode: frameVectors.selfNode, selfBootEpoch: frameVectors.selfBootEpoch });
      assert.equal(r.verdict, v.verdict);
    });
  }
});

describe('shared vectors: native codec (addon in process)', () => {
  let codec: ReturnType<typeof addonOrSkip>['codec'];
  before(function () {
    codec = addonOrSkip(this).codec;
  });
  for (const v of messageVectors.valid) {
    it(`decodes and re-encodes byte for byte: ${v.description}`, () => {
      const d = codec.decodeMessage(v.type, hex(v.body));
      assert.ok(d, 'native refused a valid body');
      assert.deepEqual(nativeToJson(v.type, d), v.message);
      assert.equal(codec.reencodeMessage(v.type, hex(v.body))?.toString('hex'), v.body);
    });
  }
  for (const v of messageVectors.noncanonical) {
    it(`decodes a non-canonical body: ${v.description}`, () => {
      const d = codec.decodeMessage(v.type, hex(v.body));
      assert.ok(d);
      assert.deepEqual(nativeToJson(v.type, d), v.message);
      assert.equal(codec.reencodeMessage(v.type, hex(v.body))?.toString('hex'), v.canonical);
    });
  }
  for (const v of messageVectors.malformed) {
    it(`refuses: ${v.description}`, () => {
      assert.equal(codec.decodeMessage(v.type, hex(v.body)), null);
    });
  }
  for (const v of frameVectors.frames) {
    it(`frame: ${v.description} -> ${v.verdict}`, () => {
      if (['accepted', 'unknownType', 'malformedBody', 'ownFrame', 'duplicateNode', 'stale'].includes(v.verdict)) {
        assert.equal(codec.buildFrame(header(v.header), hex(v.body), keyring).toString('hex'), v.frame);
      }
      assert.equal(codec.inspectFrame(hex(v.frame), keyring, BigInt(frameVectors.nowMs), frameVectors.selfNode, frameVectors.selfBootEpoch).verdict, v.verdict);
    });
  }
});
