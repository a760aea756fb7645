// The protobuf schema (proto/*.proto), loaded once at run time with
// protobufjs (byte-identical to generated static code, and one description
// of the messages), and the wire-check schema derived from it.
import { join } from 'node:path';

import * as protobuf from 'protobufjs';

import { packageRoot } from '../util/package-root';
import type { WireSchema } from './wire-check';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(packageRoot(), 'proto', target.replace(/^.*\//, ''));
root.loadSync(['affinity.proto', 'call_request.proto']);

export function protoType(name: string): protobuf.Type {
  return root.lookupType(`affinityd.v1.${name}`);
}

/** Known fields of a message and their wire types, for checkWire. */
export function schemaOf(type: protobuf.Type): WireSchema {
  const s: Record<number, { wireType: 0 | 2; message?: WireSchema }> = {};
  for (const f of type.fieldsArray) {
    f.resolve();
    if (f.resolvedType instanceof protobuf.Type) s[f.id] = { wireType: 2, message: schemaOf(f.resolvedType) };
    else s[f.id] = { wireType: f.type === 'bytes' || f.type === 'string' ? 2 : 0 };
  }
  return s;
}
