// Random and mutated frames for the fuzz tests. Each generator returns a
// datagram; the expected verdict is whatever the reference codec says, and
// the tests check that the native codec (and a live node) agree with it.
import { encodeFrame, HEADER_SIZE, type Keyring, TAG_SIZE } from '../../src/codec/frame';
import { encodeMessage } from '../../src/codec/messages';
import { messageFromJson, type MessageJson } from './vector-json';
import messageVectors from '../vectors/messages.json';
import type { Prng } from './prng';

const seeds: { type: number; body: Buffer }[] = [
  ...messageVectors.valid.map((v) => ({ type: v.type, body: encodeMessage(messageFromJson(v.message as MessageJson)) })),
  ...messageVectors.noncanonical.map((v) => ({ type: v.type, body: Buffer.from(v.body, 'hex') })),
  ...messageVectors.malformed.map((v) => ({ type: v.type, body: Buffer.from(v.body, 'hex') })),
];

export interface FuzzContext {
  keyring: Keyring;
  senderNode: number;
  bootEpoch: number;
  /** Strictly increasing, so no validly signed frame is a replay. */
  nextSequence: () => bigint;
  nowMs: () => bigint;
  /** The receiver's node id: frames from it are ownFrame. */
  selfNode: number;
}

function mutate(rng: Prng, b: Buffer): Buffer {
  let out = Buffer.from(b);
  const n = 1 + rng.int(4);
  for (let i = 0; i < n; i++) {
    switch (rng.int(6)) {
      case 0: // flip a bit
        if (out.length) out[rng.int(out.length)] ^= 1 << rng.int(8);
        break;
      case 1: // set a random octet
        if (out.length) out[rng.int(out.length)] = rng.int(256);
        break;
      case 2: // insert octets
        out = Buffer.concat([out.subarray(0, rng.int(out.length + 1)), rng.bytes(1 + rng.int(4)), out.subarray(rng.int(out.length + 1))]);
        break;
      case 3: // delete a range
        if (out.length) {
          const a = rng.int(out.length);
          out = Buffer.concat([out.subarray(0, a), out.subarray(a + 1 + rng.int(4))]);
        }
        break;
      case 4: // truncate
        out = out.subarray(0, rng.int(out.length + 1));
        break;
      default: // an extreme varint octet
        if (out.length) out[rng.int(out.length)] = rng.pick([0x00, 0x7f, 0x80, 0xff]);
    }
  }
  return out;
}

export type FuzzKind = 'random' | 'mutatedFrame' | 'signedValid' | 'signedMutatedBody' | 'signedRandomBody' | 'header';

export function fuzzFrame(rng: Prng, c: FuzzContext): { kind: FuzzKind; frame: Buffer } {
  const seed = rng.pick(seeds);
  const sign = (type: number, body: Buffer, over: Partial<{ keyId: number; senderNode: number; timestampMs: bigint }> = {}) =>
    encodeFrame(
      { type, keyId: c.keyring.sendKeyId, senderNode: c.senderNode, bootEpoch: c.bootEpoch, sequence: c.nextSequence(), timestampMs: c.nowMs(), ...over },
      body.subarray(0, 1352),
      c.keyring,
    );
  const r = rng.int(100);
  if (r < 15) return { kind: 'random', frame: rng.bytes(rng.pick([0, 1, 31, 47, 48, 64, 200, 1400, 1401, 1500].map((x) => x + rng.int(3)))) };
  if (r < 30) return { kind: 'mutatedFrame', frame: mutate(rng, sign(seed.type, seed.body)) };
  if (r < 45) return { kind: 'signedValid', frame: sign(seed.type, seed.body) };
  if (r < 80) return { kind: 'signedMutatedBody', frame: sign(seed.type, mutate(rng, seed.body)) };
  if (r < 90) return { kind: 'signedRandomBody', frame: sign(rng.pick([1, 2, 3, 8, 9]), rng.bytes(rng.int(64))) };
  // header fields the reference must judge: type, key id, timestamp, sender
  const type = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 200, 255]);
  const choice = rng.int(4);
  if (choice === 0) return { kind: 'header', frame: sign(type, seed.body) };
  if (choice === 1) {
    const f = sign(type, seed.body);
    f.writeUInt16BE(rng.int(65536), 4); // key id changed after signing
    return { kind: 'header', frame: f };
  }
  if (choice === 2) return { kind: 'header', frame: sign(seed.type, seed.body, { timestampMs: c.nowMs() + BigInt(rng.int(120_001) - 60_000) }) };
  return { kind: 'header', frame: sign(seed.type, seed.body, { senderNode: c.selfNode }) };
}

export const frameOverhead = HEADER_SIZE + TAG_SIZE;
