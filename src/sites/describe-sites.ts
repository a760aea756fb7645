// One line about the sites configuration, for `affinityd check-config`.
import type { SiteSecrets } from './site-secrets';
import type { SitesConfig } from './sites-config';

export function describeSites(s: SitesConfig, secrets: SiteSecrets): string {
  const r = s.redis;
  const who = r.username ? `as ${r.username}` : 'as the default user';
  const auth = secrets.password ? `${who} with the password from ${r.passwordFile}` : 'without a password';
  const tls = secrets.tls ? `TLS${r.tls.caFile ? ` (CA ${r.tls.caFile})` : ''}${secrets.tls.cert ? ' with a client certificate' : ''}` : 'plain TCP';
  return (
    `sites: site ${s.site}, Redis ${r.mode} at ${r.nodes.map((n) => `${n.host}:${n.port}`).join(', ')}, ${auth}, ${tls}, ` +
    `keys ${r.keyPrefix}*, budget ${s.budgetMs} ms\n`
  );
}
