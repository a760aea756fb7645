// Strict wire-format check of a protobuf body, run before protobufjs decodes
// it. protobufjs is lenient in ways a network protocol must not be (it does not
// check a known field's wire type, accepts over-long varints, reads groups);
// the rules here are docs/protocol.md section 7.2 "Decoding rules", the same ones
// native/protobuf_wire.h enforces, so both codecs refuse the same bodies.
import { ProtocolError } from './errors';

/** Known fields of a message: wire type, and the schema of an embedded message. */
export interface WireSchema {
  readonly [field: number]: { readonly wireType: 0 | 2; readonly message?: WireSchema; readonly uint32?: boolean };
}

const malformed = (why: string): never => {
  throw new ProtocolError('malformedBody', why);
};

// Values above 2^53 lose precision as numbers, but only "is it above 2^32?"
// is asked of them, which stays exact.
function varint(buf: Uint8Array, pos: number, end: number, maxOctets: number): [number, number] {
  let v = 0;
  for (let i = 0; i < maxOctets; i++) {
    if (pos >= end) malformed('varint runs past the end');
    const b = buf[pos++];
    if (i === 9 && b > 1) malformed('varint above 64 bits');
    v += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) return [v, pos];
  }
  return malformed(`varint longer than ${maxOctets} octets`);
}

/** Throws ProtocolError('malformedBody') unless buf follows the rules for schema. */
export function checkWire(buf: Uint8Array, schema: WireSchema): void {
  walk(buf, 0, buf.length, schema);
}

function walk(buf: Uint8Array, pos: number, end: number, schema: WireSchema): void {
  while (pos < end) {
    let tag: number;
    [tag, pos] = varint(buf, pos, end, 5);
    if (tag > 0xffffffff) malformed('tag above 32 bits');
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) malformed('field number 0');
    const known = schema[field];
    if (known && known.wireType !== wireType) malformed(`field ${field} has wire type ${wireType}`);
    switch (wireType) {
      case 0: {
        let v: number;
        [v, pos] = varint(buf, pos, end, known ? 5 : 10);
        if (known && v > 0xffffffff) malformed(`field ${field} above 32 bits`);
        break;
      }
      case 1:
        if (end - pos < 8) malformed('fixed64 runs past the end');
        pos += 8;
        break;
      case 5:
        if (end - pos < 4) malformed('fixed32 runs past the end');
        pos += 4;
        break;
      case 2: {
        let len: number;
        [len, pos] = varint(buf, pos, end, 5);
        if (len > end - pos) malformed('length runs past the end');
        if (known?.message) walk(buf, pos, pos + len, known.message);
        pos += len;
        break;
      }
      default:
        malformed(`wire type ${wireType} is not allowed`);
    }
  }
}
