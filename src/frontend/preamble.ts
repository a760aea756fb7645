// The call-request preamble on a front-end TCP connection (docs/frontend.md):
//   request:  "AFCR" | u16 length | CallRequest (protobuf)
//   response: "AFCA" | u16 length | CallResponse (protobuf)
import { type ClientKey, clientKey as checkedClientKey, validateDiscriminator, validateUsernameBytes } from '../codec/client-key';
import { addressBytes, addressText, type Endpoint, endpointNameFromBytes } from '../codec/endpoint';
import { ProtocolError } from '../codec/errors';
import { protoType, schemaOf } from '../codec/proto';
import { checkWire } from '../codec/wire-check';

export const REQUEST_MAGIC = Buffer.from('AFCR', 'latin1');
export const RESPONSE_MAGIC = Buffer.from('AFCA', 'latin1');
export const PREAMBLE_HEADER = 6;

export enum CallStatus {
  Accepted = 1,
  Redirect = 2,
  Rejected = 3,
}

const Request = protoType('CallRequest');
const Response = protoType('CallResponse');
const REQUEST_SCHEMA = schemaOf(Request);
const RESPONSE_SCHEMA = schemaOf(Response);

function frame(magic: Buffer, body: Uint8Array): Buffer {
  const out = Buffer.alloc(PREAMBLE_HEADER + body.length);
  magic.copy(out, 0);
  out.writeUInt16BE(body.length, 4);
  out.set(body, PREAMBLE_HEADER);
  return out;
}

export function encodeCallRequest(key: ClientKey): Buffer {
  const k = checkedClientKey(key.discriminator, key.username);
  const ck: Record<string, unknown> = {};
  if (k.discriminator.class) ck.discriminatorClass = k.discriminator.class;
  if (k.discriminator.address.length) ck.discriminatorAddress = k.discriminator.address;
  if (k.username) ck.username = Buffer.from(k.username, 'utf8');
  return frame(REQUEST_MAGIC, Request.encode({ clientKey: ck }).finish());
}

/**
 * How many octets the preamble at the start of buf takes: 0 if more are
 * needed; throws ProtocolError if it is not a preamble or is over maxOctets.
 */
export function preambleLength(buf: Buffer, magic: Buffer, maxOctets: number): number {
  const have = Math.min(buf.length, 4);
  if (!buf.subarray(0, have).equals(magic.subarray(0, have))) {
    throw new ProtocolError('malformedPreamble', 'the connection does not start with a call-request preamble');
  }
  if (buf.length < PREAMBLE_HEADER) return 0;
  const total = PREAMBLE_HEADER + buf.readUInt16BE(4);
  if (total > maxOctets) throw new ProtocolError('oversizePreamble', `preamble of ${total} octets exceeds ${maxOctets}`);
  return buf.length >= total ? total : 0;
}

export function decodeCallRequest(preamble: Buffer): ClientKey {
  const body = preamble.subarray(PREAMBLE_HEADER);
  checkWire(body, REQUEST_SCHEMA);
  const m = Request.decode(body) as unknown as { clientKey: { discriminatorClass: number; discriminatorAddress: Uint8Array; username: Uint8Array } | null };
  if (!m.clientKey) throw new ProtocolError('malformedPreamble', 'call request without a client key');
  const address = Buffer.from(m.clientKey.discriminatorAddress);
  validateDiscriminator(m.clientKey.discriminatorClass, address);
  const username = validateUsernameBytes(Buffer.from(m.clientKey.username));
  return { discriminator: { class: m.clientKey.discriminatorClass, address }, username };
}

export interface CallResponse {
  status: CallStatus;
  endpoint?: Endpoint;
  reason?: string;
}

export function encodeCallResponse(r: CallResponse): Buffer {
  const o: Record<string, unknown> = { status: r.status };
  if (r.endpoint) {
    const ep: Record<string, unknown> = { address: addressBytes(r.endpoint.address), port: r.endpoint.port };
    if (r.endpoint.name) ep.name = Buffer.from(r.endpoint.name, 'utf8');
    o.endpoint = ep;
  }
  if (r.reason) o.reason = Buffer.from(r.reason, 'utf8');
  return frame(RESPONSE_MAGIC, Response.encode(o).finish());
}

export function decodeCallResponse(preamble: Buffer): CallResponse {
  const body = preamble.subarray(PREAMBLE_HEADER);
  checkWire(body, RESPONSE_SCHEMA);
  const m = Response.decode(body) as unknown as { status: number; endpoint: { address: Uint8Array; port: number; name: Uint8Array } | null; reason: Uint8Array };
  const out: CallResponse = { status: m.status };
  if (m.endpoint) out.endpoint = { address: addressText(Buffer.from(m.endpoint.address)), port: m.endpoint.port, name: endpointNameFromBytes(Buffer.from(m.endpoint.name)) };
  if (m.reason?.length) out.reason = Buffer.from(m.reason).toString('utf8');
  return out;
}
