// The `sites:` section of the configuration (docs/configuration.md, "Sites"):
// its type, its JSON-schema block (src/daemon/config.ts embeds it), and the
// rules across its fields. Kept here so that the site layer owns its
// settings and config.ts only includes them.
import { DEFAULT_KEY_PREFIX, keyPrefixProblem } from './site-key';
import { siteNameProblem } from './site-record';

export type RedisMode = 'standalone' | 'cluster';

export interface SitesConfig {
  /** Join other sites through Redis; off: this cluster is one site and Redis is never used. */
  enabled: boolean;
  /** This site's name (in every record it writes, in logs and metrics). */
  site: string;
  /** A call never waits for Redis longer than this; then the site decides alone. */
  budgetMs: number;
  /** Calls or probes in a row that fail (no answer within the budget, or an error) before Redis counts as down. */
  failuresBeforeDown: number;
  /** A probe of Redis this often while it is up (finds a hung server with no traffic). */
  heartbeatMs: number;
  /** Reconnection and probe back-off while down: from minMs doubling to maxMs, +-20% jitter. */
  retry: { minMs: number; maxMs: number };
  /** Records of other sites kept in the tracked cache. */
  cacheCapacity: number;
  /** Own records waiting to be written back after Redis was unreachable. */
  journalCapacity: number;
  redis: {
    mode: RedisMode;
    /** standalone: the server; cluster: one or more seed nodes. */
    nodes: { host: string; port: number }[];
    /** ACL user; '' is the default user (AUTH with a password only, or none). */
    username: string;
    /** The password, in a file not accessible to group or others (as the cluster key); '' is none. */
    passwordFile: string;
    /** Every key starts with this (several deployments may share one Redis). */
    keyPrefix: string;
    connectTimeoutMs: number;
    tls: {
      enabled: boolean;
      /** CA certificates to trust ('' : the system's). */
      caFile: string;
      /** Client certificate and key, for servers that ask for one (tls-auth-clients); the key file has the password file's mode rule. */
      certFile: string;
      keyFile: string;
      /** Name to check the server's certificate against ('': the host). */
      serverName: string;
    };
  };
}

const int = (min: number, max: number, dflt: number) => ({ type: 'integer', minimum: min, maximum: max, default: dflt });
const str = (dflt: string) => ({ type: 'string', default: dflt });

export const SITES_SCHEMA = {
  // the connection, the site's name and its timing are set up at start: a running node keeps them until restarted
  type: 'object', additionalProperties: false, default: {}, restart: true,
  properties: {
    enabled: { type: 'boolean', default: false },
    site: str(''),
    budgetMs: int(1, 60_000, 100),
    failuresBeforeDown: int(1, 1000, 3),
    heartbeatMs: int(10, 3_600_000, 1000),
    retry: {
      type: 'object', additionalProperties: false, default: {},
      properties: { minMs: int(1, 3_600_000, 100), maxMs: int(1, 3_600_000, 5000) },
    },
    cacheCapacity: int(0, 100_000_000, 100_000),
    journalCapacity: int(0, 100_000_000, 1_000_000),
    redis: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        mode: { enum: ['standalone', 'cluster'], default: 'standalone' },
        nodes: {
          type: 'array', default: [{ host: '127.0.0.1', port: 6379 }],
          items: {
            type: 'object', additionalProperties: false, required: ['host'],
            properties: { host: { type: 'string', minLength: 1 }, port: int(1, 65535, 6379) },
          },
        },
        username: str(''),
        passwordFile: str(''),
        keyPrefix: str(DEFAULT_KEY_PREFIX),
        connectTimeoutMs: int(1, 600_000, 2000),
        tls: {
          type: 'object', additionalProperties: false, default: {},
          properties: { enabled: { type: 'boolean', default: false }, caFile: str(''), certFile: str(''), keyFile: str(''), serverName: str('') },
        },
      },
    },
  },
} as const;

/** Rules across the fields of `sites`; each problem names its setting. */
export function sitesConfigProblems(s: SitesConfig): string[] {
  const p: string[] = [];
  const prefixProblem = keyPrefixProblem(s.redis.keyPrefix);
  if (prefixProblem) p.push(`sites.redis.keyPrefix: ${prefixProblem}`);
  if (s.retry.minMs > s.retry.maxMs) p.push('sites.retry.minMs: must not exceed sites.retry.maxMs');
  const t = s.redis.tls;
  if (!t.certFile !== !t.keyFile) p.push('sites.redis.tls: certFile and keyFile go together');
  if (!t.enabled && (t.caFile || t.certFile || t.serverName)) p.push('sites.redis.tls: files or serverName set but tls.enabled is false');
  if (!s.enabled) return p;
  if (!s.site) p.push('sites.site: required when sites.enabled (this site\'s name)');
  else {
    const nameProblem = siteNameProblem(s.site);
    if (nameProblem) p.push(`sites.site: ${nameProblem}`);
  }
  if (s.redis.nodes.length === 0) p.push('sites.redis.nodes: at least one Redis node');
  if (s.redis.mode === 'standalone' && s.redis.nodes.length > 1) p.push('sites.redis.nodes: standalone mode takes one node (use mode: cluster for seed nodes)');
  return p;
}
