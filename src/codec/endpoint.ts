// Endpoint: where a client goes, a backend's network address with a name.
import ipaddr from 'ipaddr.js';

import { ProtocolError } from './errors';

export const MAX_ENDPOINT_NAME_OCTETS = 64;

export interface Endpoint {
  /** IPv4 dotted quad or IPv6 text (RFC 5952 form when it comes off the wire). */
  readonly address: string;
  readonly port: number;
  readonly name: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** 4 octets for IPv4, 16 for IPv6. Throws ProtocolError for anything else. */
export function addressBytes(address: string): Buffer {
  if (!ipaddr.isValid(address)) throw new ProtocolError('badEndpointAddress', `"${address}" is not an IP address`);
  return Buffer.from(ipaddr.parse(address).toByteArray());
}

export function addressText(bytes: Uint8Array): string {
  if (bytes.length !== 4 && bytes.length !== 16) {
    throw new ProtocolError('badEndpointAddress', `an endpoint address is 4 or 16 octets, got ${bytes.length}`);
  }
  const a = ipaddr.fromByteArray([...bytes]);
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
}

export function validateEndpoint(e: Endpoint): void {
  addressBytes(e.address);
  if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) {
    throw new ProtocolError('badEndpointPort', `endpoint port must be 1 to 65535, got ${e.port}`);
  }
  if (!e.name.isWellFormed() || Buffer.byteLength(e.name, 'utf8') > MAX_ENDPOINT_NAME_OCTETS) {
    throw new ProtocolError('badEndpointName', `endpoint name must be UTF-8 of at most ${MAX_ENDPOINT_NAME_OCTETS} octets`);
  }
}

export function endpointNameFromBytes(bytes: Uint8Array): string {
  if (bytes.length > MAX_ENDPOINT_NAME_OCTETS) {
    throw new ProtocolError('badEndpointName', `endpoint name is ${bytes.length} octets; at most ${MAX_ENDPOINT_NAME_OCTETS}`);
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ProtocolError('badEndpointName', 'endpoint name is not well-formed UTF-8');
  }
}

export function formatEndpoint(e: Endpoint): string {
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return `${e.name ? e.name + '=' : ''}${host}:${e.port}`;
}

/** The same backend: same port and name, and the same address (textual forms of one IPv6 address compare equal). */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  if (a === b) return true;
  if (a.port !== b.port || a.name !== b.name) return false;
  // the common case, on the path of every claim answer, without parsing
  if (a.address === b.address) return true;
  return addressBytes(a.address).equals(addressBytes(b.address));
}
