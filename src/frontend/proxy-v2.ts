// PROXY protocol v2 (haproxy's doc/proxy-protocol.txt) as HAProxy sends it in
// front of a node: proxy-protocol-js parses the header and addresses; the
// TLVs after them (type, 16-bit length, value) are walked here.
import { V2ProxyProtocol } from 'proxy-protocol-js';

import { ProtocolError } from '../codec/errors';

export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
export const V2_FIXED = 16;

export interface ProxyHeader {
  /** LOCAL: a health check from the proxy itself, no client behind it. */
  readonly local: boolean;
  readonly sourceAddress?: Buffer; // 4 or 16 octets
  readonly sourcePort?: number;
  readonly tlvs: Map<number, Buffer>;
}

/** Octets of the header at the start of buf: 0 if more are needed. Throws on a non-PROXY start or over max. */
export function proxyHeaderLength(buf: Buffer, maxOctets: number): number {
  const have = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, have).equals(V2_SIGNATURE.subarray(0, have))) {
    throw new ProtocolError('badProxyHeader', 'the connection does not start with a PROXY protocol v2 signature');
  }
  if (buf.length < V2_FIXED) return 0;
  const total = V2_FIXED + buf.readUInt16BE(14);
  if (total > maxOctets) throw new ProtocolError('badProxyHeader', `PROXY header of ${total} octets exceeds ${maxOctets}`);
  return buf.length >= total ? total : 0;
}

export function parseProxyHeader(header: Buffer): ProxyHeader {
  const cmd = header[12] & 0x0f;
  if (header[12] >> 4 !== 2) throw new ProtocolError('badProxyHeader', 'PROXY protocol version is not 2');
  if (cmd === 0) return { local: true, tlvs: new Map() };
  let p: V2ProxyProtocol;
  try {
    p = V2ProxyProtocol.parse(new Uint8Array(header));
  } catch (e) {
    throw new ProtocolError('badProxyHeader', `PROXY header: ${(e as { message?: string }).message ?? e}`);
  }
  const addr = p.proxyAddress as unknown as { sourceAddress?: { address: number[] }; sourcePort?: number };
  const family = header[13] >> 4;
  if ((family !== 1 && family !== 2) || !addr.sourceAddress) {
    throw new ProtocolError('badProxyHeader', 'PROXY header carries no IPv4 or IPv6 source address');
  }
  const tlvs = new Map<number, Buffer>();
  const data = Buffer.from(p.data ?? []);
  for (let i = 0; i < data.length; ) {
    if (i + 3 > data.length) throw new ProtocolError('badProxyHeader', 'PROXY TLV cut off');
    const len = data.readUInt16BE(i + 1);
    if (i + 3 + len > data.length) throw new ProtocolError('badProxyHeader', 'PROXY TLV runs past the header');
    tlvs.set(data[i], data.subarray(i + 3, i + 3 + len));
    i += 3 + len;
  }
  return { local: false, sourceAddress: Buffer.from(addr.sourceAddress.address), sourcePort: addr.sourcePort, tlvs };
}
