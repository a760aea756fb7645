// The secrets and certificates a node needs to reach Redis, read from the
// files the configuration names. The password file and a TLS private key
// follow the cluster key's rule (readSecretFile: no access for group or
// others); certificates are public and only need to be readable.
import { readFileSync } from 'node:fs';

import { ConfigError, readSecretFile } from '../daemon/config';
import type { SitesConfig } from './sites-config';

export interface SiteSecrets {
  /** undefined: no AUTH. */
  readonly password?: string;
  /** undefined: plain TCP. */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer; readonly serverName?: string };
}

function readPublic(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConfigError([`cannot read the ${what}: ${(e as Error).message}`], path);
  }
}

/** Throws ConfigError naming the file and what is wrong with it. */
export function loadSiteSecrets(s: SitesConfig): SiteSecrets {
  const r = s.redis;
  let password: string | undefined;
  if (r.passwordFile) {
    // one line; a trailing newline (echo > file) is not part of the password
    password = readSecretFile(r.passwordFile, 'Redis password file').toString('utf8').replace(/\r?\n$/, '');
    if (!password) throw new ConfigError(['the Redis password file is empty'], r.passwordFile);
    if (/[\r\n]/.test(password)) throw new ConfigError(['the Redis password file has more than one line'], r.passwordFile);
  }
  if (!r.tls.enabled) return { password };
  return {
    password,
    tls: {
      ca: r.tls.caFile ? readPublic(r.tls.caFile, 'Redis CA file') : undefined,
      cert: r.tls.certFile ? readPublic(r.tls.certFile, 'Redis client certificate') : undefined,
      key: r.tls.keyFile ? readSecretFile(r.tls.keyFile, 'Redis client key file') : undefined,
      serverName: r.tls.serverName || undefined,
    },
  };
}
