// The `radius:` section of the configuration and the `tunnel:` attributes of
// an endpoint: types, JSON schema (merged into src/daemon/config.ts) and the
// cross-field rules. docs/configuration.md and docs/radius.md describe them.
import { isIP } from 'node:net';


/** RFC 2868 Tunnel-Type names, as FreeRADIUS' dictionary spells them. */
export const TUNNEL_TYPES = ['PPTP', 'L2F', 'L2TP', 'ATMP', 'VTP', 'AH', 'IP', 'MIN-IP', 'ESP', 'GRE', 'DVS', 'IP-in-IP'] as const;
/** RFC 2868 Tunnel-Medium-Type names, as FreeRADIUS' dictionary spells them. */
export const TUNNEL_MEDIUM_TYPES = [
  'IPv4', 'IPv6', 'NSAP', 'HDLC', 'BBN-1822', 'IEEE-802', 'E.163', 'E.164', 'F.69', 'X.121', 'IPX', 'Appletalk', 'DecNet-IV', 'Banyan-Vines', 'E.164-NSAP',
] as const;

/**
 * Where the endpoint discriminator comes from (RFC 1990 classes):
 * `none` is the null class (0): the username alone identifies the client.
 */
export const DISCRIMINATOR_SOURCES = ['none', 'locally-assigned', 'ipv4-address', 'ieee-802-address', 'directory-number'] as const;
export type DiscriminatorSource = (typeof DISCRIMINATOR_SOURCES)[number];

/** An endpoint's RFC 2868 tunnel attributes; absent ones take the defaults of docs/radius.md. */
export interface TunnelConfig {
  type?: (typeof TUNNEL_TYPES)[number];
  medium?: (typeof TUNNEL_MEDIUM_TYPES)[number];
  serverEndpoint?: string;
  assignmentId?: string;
  preference?: number;
  /** A file holding the Tunnel-Password (mode 0600); never logged. */
  passwordFile?: string;
  clientAuthId?: string;
  serverAuthId?: string;
}

/** What the RADIUS API reads of a configured endpoint. */
export interface TunnelledEndpoint {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tunnel?: TunnelConfig;
}

export interface RadiusConfig {
  enabled: boolean;
  listen: { address: string; port: number };
  /** A file holding the bearer token FreeRADIUS must send; '' = none (loopback only). */
  tokenFile: string;
  maxRequestOctets: number;
  /** affinityd answers 503 (the FreeRADIUS failure policy) when a decision takes longer. */
  answerTimeoutMs: number;
  /** Bad input to the access API: 403 (Access-Reject) or 204 (Access-Accept without tunnel attributes). */
  badRequest: 'reject' | 'accept';
  username: { realm: 'keep' | 'strip' | 'lowercase'; realmFormat: 'suffix' | 'prefix'; realmDelimiter: string };
  discriminator: { class: DiscriminatorSource; attribute: string };
  /** RFC 2868 tag of the tunnel attributes (0: untagged). */
  tunnelTag: number;
  accounting: { releaseGraceSeconds: number };
}

const text = (max: number) => ({ type: 'string', minLength: 1, maxLength: max });

export const TUNNEL_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { enum: TUNNEL_TYPES },
    medium: { enum: TUNNEL_MEDIUM_TYPES },
    // a RADIUS attribute carries at most 253 octets; the tag takes one
    serverEndpoint: text(252),
    assignmentId: text(252),
    preference: { type: 'integer', minimum: 0, maximum: 16_777_215 },
    passwordFile: text(4096),
    clientAuthId: text(252),
    serverAuthId: text(252),
  },
} as const;

export const RADIUS_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  default: {},
  // a listener and its limits: a running node keeps them until restarted
  // (the endpoints' tunnel attributes and password files do change on reload)
  restart: true,
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: {
      type: 'object', additionalProperties: false, default: {},
      properties: { address: { type: 'string', default: '127.0.0.1' }, port: { type: 'integer', minimum: 0, maximum: 65535, default: 9148 } },
    },
    tokenFile: { type: 'string', default: '' },
    maxRequestOctets: { type: 'integer', minimum: 1024, maximum: 1_048_576, default: 65_536 },
    answerTimeoutMs: { type: 'integer', minimum: 1, maximum: 60_000, default: 1500 },
    badRequest: { enum: ['reject', 'accept'], default: 'reject' },
    username: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        realm: { enum: ['keep', 'strip', 'lowercase'], default: 'keep' },
        realmFormat: { enum: ['suffix', 'prefix'], default: 'suffix' },
        realmDelimiter: { type: 'string', minLength: 1, maxLength: 1, default: '@' },
      },
    },
    discriminator: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        class: { enum: DISCRIMINATOR_SOURCES, default: 'none' },
        attribute: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$', default: 'Calling-Station-Id' },
      },
    },
    tunnelTag: { type: 'integer', minimum: 0, maximum: 31, default: 1 },
    accounting: {
      type: 'object', additionalProperties: false, default: {},
      properties: { releaseGraceSeconds: { type: 'integer', minimum: 0, maximum: 86_400, default: 60 } },
    },
  },
} as const;

export const isLoopback = (address: string): boolean => address === '::1' || (isIP(address) === 4 && address.startsWith('127.'));

/** Cross-field rules (the schema has checked the shapes). */
export function radiusConfigProblems(c: { radius: RadiusConfig; endpoints: readonly TunnelledEndpoint[] }): string[] {
  const r = c.radius;
  const problems: string[] = [];
  if (!isIP(r.listen.address)) problems.push(`radius.listen.address: "${r.listen.address}" is not an IP address`);
  else if (r.enabled && !isLoopback(r.listen.address) && !r.tokenFile) {
    problems.push('radius.tokenFile: required when radius.listen.address is not a loopback address (anyone who reaches the API could place clients)');
  }
  c.endpoints.forEach((e, i) => {
    const t = e.tunnel;
    if (!t) return;
    for (const k of ['serverEndpoint', 'assignmentId', 'clientAuthId', 'serverAuthId'] as const) {
      const v = t[k];
      // eslint-disable-next-line no-control-regex
      if (v !== undefined && (Buffer.byteLength(v) > 252 || /[\x00-\x1f\x7f]/.test(v))) {
        problems.push(`endpoints.${i}.tunnel.${k}: at most 252 octets, no control characters`);
      }
    }
    if (t.medium && t.serverEndpoint === undefined) {
      const fam = isIP(e.address);
      if ((t.medium === 'IPv4' && fam !== 4) || (t.medium === 'IPv6' && fam !== 6)) {
        problems.push(`endpoints.${i}.tunnel.medium: ${t.medium} does not fit the address ${e.address}; set tunnel.serverEndpoint too`);
      }
    }
  });
  return problems;
}
