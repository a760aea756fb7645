// The RFC 2868 tunnel attributes of each endpoint, and the answer FreeRADIUS
// adds to an Access-Accept: rlm_rest's JSON reply format, one tagged group
// (Tunnel-Type, Tunnel-Medium-Type, Tunnel-Server-Endpoint and the optional
// Tunnel-Assignment-Id, Tunnel-Preference, Tunnel-Password,
// Tunnel-Client-Auth-Id, Tunnel-Server-Auth-Id). Passwords are read from
// their files when the table is built (at start and on reload) and live only
// here: the table's description for stats and logs leaves them out.
import { isIP } from 'node:net';

import type { Endpoint } from '../codec/endpoint';
import type { TunnelConfig, TunnelledEndpoint } from './radius-config';
import { readSecretFile } from './secret-file';

/** RFC 2868 allows Tunnel-Password data up to 240 octets after its salt; affinityd takes at most 128. */
export const MAX_TUNNEL_PASSWORD_OCTETS = 128;

export interface TunnelAttributes {
  readonly type: string;
  readonly medium: string;
  readonly serverEndpoint: string;
  readonly assignmentId?: string;
  readonly preference?: number;
  readonly password?: string;
  readonly clientAuthId?: string;
  readonly serverAuthId?: string;
}

/** One attribute of rlm_rest's JSON reply: set (:=), never expanded by FreeRADIUS. */
interface ReplyValue {
  op: ':=';
  do_xlat: false;
  value: string | number;
}

/** The defaults of docs/radius.md for what the configuration leaves out. */
export function tunnelAttributes(e: Pick<Endpoint, 'address'>, t: TunnelConfig = {}, password?: string): TunnelAttributes {
  return {
    type: t.type ?? 'L2TP',
    medium: t.medium ?? (isIP(e.address) === 6 ? 'IPv6' : 'IPv4'),
    serverEndpoint: t.serverEndpoint ?? e.address,
    ...(t.assignmentId !== undefined && { assignmentId: t.assignmentId }),
    ...(t.preference !== undefined && { preference: t.preference }),
    ...(password !== undefined && { password }),
    ...(t.clientAuthId !== undefined && { clientAuthId: t.clientAuthId }),
    ...(t.serverAuthId !== undefined && { serverAuthId: t.serverAuthId }),
  };
}

// FreeRADIUS reads a string value from JSON with its own escapes (\n, \\,
// octal \101): a backslash must be doubled to arrive as itself.
const radiusString = (s: string): string => s.replaceAll('\\', '\\\\');

/** The JSON object rlm_rest applies to the reply list (tag 0: untagged). */
export function replyJson(t: TunnelAttributes, tag: number): Record<string, ReplyValue> {
  const name = (attr: string) => `reply:${attr}${tag ? `:${tag}` : ''}`;
  const out: Record<string, ReplyValue> = {};
  const set = (attr: string, value: string | number | undefined) => {
    if (value === undefined) return;
    out[name(attr)] = { op: ':=', do_xlat: false, value: typeof value === 'string' ? radiusString(value) : value };
  };
  set('Tunnel-Type', t.type);
  set('Tunnel-Medium-Type', t.medium);
  set('Tunnel-Server-Endpoint', t.serverEndpoint);
  set('Tunnel-Assignment-Id', t.assignmentId);
  set('Tunnel-Preference', t.preference);
  set('Tunnel-Password', t.password);
  set('Tunnel-Client-Auth-Id', t.clientAuthId);
  set('Tunnel-Server-Auth-Id', t.serverAuthId);
  return out;
}

const endpointId = (e: Pick<Endpoint, 'address' | 'port'>) => `${e.address}|${e.port}`;

/**
 * Every configured endpoint's tunnel attributes, by address and port (the
 * identity the table stores), and the way back from a Tunnel-Server-Endpoint
 * an accounting request reports to the endpoint.
 */
export class TunnelTable {
  private readonly byEndpoint = new Map<string, { endpoint: Endpoint; attributes: TunnelAttributes }>();
  private readonly byServerEndpoint = new Map<string, Endpoint>();

  /** Reads every password file: throws SecretFileError (naming the file, never the content). */
  constructor(endpoints: readonly TunnelledEndpoint[]) {
    for (const e of endpoints) {
      const pw = e.tunnel?.passwordFile ? readSecretFile(e.tunnel.passwordFile, 'tunnel password', 1, MAX_TUNNEL_PASSWORD_OCTETS) : undefined;
      const endpoint: Endpoint = { address: e.address, port: e.port, name: e.name };
      const attributes = tunnelAttributes(e, e.tunnel, pw);
      this.byEndpoint.set(endpointId(e), { endpoint, attributes });
      const se = attributes.serverEndpoint.toLowerCase();
      if (!this.byServerEndpoint.has(se)) this.byServerEndpoint.set(se, endpoint);
    }
  }

  /** The attributes of a configured endpoint; undefined for one this node does not know. */
  attributes(e: Pick<Endpoint, 'address' | 'port'>): TunnelAttributes | undefined {
    return this.byEndpoint.get(endpointId(e))?.attributes;
  }

  /** The configured endpoint a Tunnel-Server-Endpoint names (the first, if several share it). */
  endpointFor(serverEndpoint: string): Endpoint | undefined {
    return this.byServerEndpoint.get(serverEndpoint.trim().toLowerCase());
  }

  /** For logs and stats: which endpoints send a password, never the password. */
  describe(): { endpoint: string; serverEndpoint: string; password: boolean }[] {
    return [...this.byEndpoint.values()].map((x) => ({ endpoint: x.endpoint.name, serverEndpoint: x.attributes.serverEndpoint, password: x.attributes.password !== undefined }));
  }
}
