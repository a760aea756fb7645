// From the `sites:` configuration to a running site directory: what the
// daemon calls (the password and TLS files are read here, with the cluster
// key's mode rule).
import { RedisSiteDirectory, type RedisSiteDirectoryOptions, type SiteLogger } from './redis-site-directory';
import { loadSiteSecrets, type SiteSecrets } from './site-secrets';
import type { SitesConfig } from './sites-config';

/** What the site directory needs to know of the node it serves. */
export interface SiteNodeContext {
  readonly nodeId: number;
  /** directory.entryTtlSeconds: lifetime of entries given without one. */
  readonly entryTtlSeconds: number;
  /** Lifetime of withdraw markers given without one (directory.withdrawTtlSeconds, or maxTtlSeconds when that is 0). */
  readonly withdrawTtlSeconds: number;
  readonly holds?: (keyBytes: Buffer) => boolean;
  readonly log?: SiteLogger;
}

export function siteDirectoryOptions(s: SitesConfig, node: SiteNodeContext, secrets: SiteSecrets = loadSiteSecrets(s)): RedisSiteDirectoryOptions {
  return {
    site: s.site,
    nodeId: node.nodeId,
    connection: {
      mode: s.redis.mode,
      nodes: s.redis.nodes,
      username: s.redis.username,
      secrets,
      keyPrefix: s.redis.keyPrefix,
      connectTimeoutMs: s.redis.connectTimeoutMs,
      retry: s.retry,
      clientName: `affinityd-${s.site}-${node.nodeId}`,
    },
    budgetMs: s.budgetMs,
    failuresBeforeDown: s.failuresBeforeDown,
    heartbeatMs: s.heartbeatMs,
    retry: s.retry,
    cacheCapacity: s.cacheCapacity,
    journalCapacity: s.journalCapacity,
    entryTtlSeconds: node.entryTtlSeconds,
    withdrawTtlSeconds: node.withdrawTtlSeconds,
    holds: node.holds,
    log: node.log,
  };
}

/** The site directory of a configuration, not started; undefined when sites are off. Throws ConfigError for unreadable secrets. */
export function createSiteDirectory(s: SitesConfig, node: SiteNodeContext): RedisSiteDirectory | undefined {
  if (!s.enabled) return undefined;
  return new RedisSiteDirectory(siteDirectoryOptions(s, node));
}
