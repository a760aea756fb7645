// Who is calling: the client key of a new front-end connection, from the
// call-request preamble, a PROXY v2 header, or the TCP peer address.
import { isIPv4, isIPv6, type Socket } from 'node:net';

import { type ClientKey, clientKey, DiscriminatorClass } from '../codec/client-key';
import { addressBytes } from '../codec/endpoint';
import { ProtocolError } from '../codec/errors';
import type { FrontendConfig } from './frontend-config';
import { decodeCallRequest, preambleLength, REQUEST_MAGIC } from './preamble';
import { parseProxyHeader, proxyHeaderLength } from './proxy-v2';

export interface Identity {
  readonly key: ClientKey;
  /** Octets the client sent after the identity: forwarded to the endpoint. */
  readonly rest: Buffer;
}

/** The connection ended or was a proxy health check: nothing to route, nothing wrong. */
export class NoCallError extends Error {
  constructor(readonly reason: 'proxyLocal' | 'clientClosed') {
    super(reason);
  }
}

/**
 * A discriminator for a network address: IPv4 as class 2 (IPv4 address);
 * IPv6 as class 1 (locally assigned) with its 16 octets, RFC 1990 having no
 * IPv6 class; an IPv4-mapped IPv6 address as the IPv4 address.
 */
export function addressDiscriminator(octets: Buffer): { class: DiscriminatorClass; address: Buffer } {
  if (octets.length === 16 && octets.subarray(0, 10).every((b) => b === 0) && octets[10] === 0xff && octets[11] === 0xff) {
    return { class: DiscriminatorClass.Ipv4Address, address: octets.subarray(12) };
  }
  return octets.length === 4
    ? { class: DiscriminatorClass.Ipv4Address, address: octets }
    : { class: DiscriminatorClass.LocallyAssigned, address: octets };
}

const NOTHING = Buffer.alloc(0);

/** The octets of a peer address as the kernel reports it: dotted IPv4 split by hand (once per call), IPv6 parsed. */
function peerAddressBytes(a: string): Buffer {
  if (isIPv4(a)) {
    const p = a.split('.');
    return Buffer.from([Number(p[0]), Number(p[1]), Number(p[2]), Number(p[3])]);
  }
  return addressBytes(a);
}

export function readIdentity(socket: Socket, fe: FrontendConfig): Promise<Identity> {
  if (fe.identity === 'peer-address') {
    const a = socket.remoteAddress ?? '';
    if (!isIPv4(a) && !isIPv6(a)) return Promise.reject(new ProtocolError('badIdentity', `peer address "${a}" is not an IP address`));
    return Promise.resolve({ key: clientKey(addressDiscriminator(peerAddressBytes(a)), fe.username), rest: NOTHING });
  }
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const done = (err?: Error, id?: Identity) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (err) reject(err);
      else resolve(id!);
    };
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      try {
        if (fe.identity === 'preamble') {
          const n = preambleLength(buf, REQUEST_MAGIC, fe.maxPreambleOctets);
          if (n) done(undefined, { key: decodeCallRequest(buf.subarray(0, n)), rest: Buffer.from(buf.subarray(n)) });
        } else {
          const n = proxyHeaderLength(buf, fe.maxPreambleOctets);
          if (!n) return;
          const h = parseProxyHeader(buf.subarray(0, n));
          if (h.local) return done(new NoCallError('proxyLocal'));
          const tlv = fe.usernameTlv ? h.tlvs.get(fe.usernameTlv) : undefined;
          const username = tlv ? tlv.toString('utf8') : fe.username;
          done(undefined, { key: clientKey(addressDiscriminator(h.sourceAddress!), username), rest: Buffer.from(buf.subarray(n)) });
        }
      } catch (e) {
        done(e instanceof ProtocolError ? e : new ProtocolError('badIdentity', (e as Error).message));
      }
    };
    const onEnd = () => done(new NoCallError('clientClosed'));
    const onError = (e: Error) => done(e);
    const timer = setTimeout(
      () => done(new ProtocolError('identityTimeout', `no ${fe.identity === 'preamble' ? 'call-request preamble' : 'PROXY header'} within ${fe.identityTimeoutMs} ms`)),
      fe.identityTimeoutMs,
    );
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.resume();
  });
}
