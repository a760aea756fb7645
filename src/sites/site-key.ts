// The key layout of the site directory in Redis (docs/sites.md, "Key
// layout"): one Redis key per client key, `PREFIX` + the client key's text
// form (`affinityd:2:192.0.2.7/alice`), so an operator can read a client's
// record with redis-cli. The text form is a one-to-one function of the
// canonical key octets (client-key.ts), so every node names a client alike.
// No hash tag: every key is one slot of its own in a Redis Cluster, and every
// script touches one key.
import { type ClientKey, formatClientKey, parseClientKey } from '../codec/client-key';
import { ProtocolError } from '../codec/errors';

export const DEFAULT_KEY_PREFIX = 'affinityd:';

/** Printable ASCII without braces (a `{` would make a hash tag and pin every key to one slot) or spaces. */
const PREFIX_RULE = /^[\x21-\x7a\x7c\x7e]{1,64}$/;

/** Why a prefix is unusable, or undefined if it is fine. */
export function keyPrefixProblem(prefix: string): string | undefined {
  if (!PREFIX_RULE.test(prefix)) return `"${prefix}" must be 1 to 64 printable ASCII characters without spaces, "{" or "}"`;
  return undefined;
}

export function siteKey(prefix: string, key: ClientKey): string {
  return prefix + formatClientKey(key);
}

/** The client key a Redis key names; throws ProtocolError if it names none. */
export function clientKeyOfSiteKey(prefix: string, redisKey: string): ClientKey {
  if (!redisKey.startsWith(prefix)) throw new ProtocolError('badSiteKey', `"${redisKey}" does not start with ${prefix}`);
  return parseClientKey(redisKey.slice(prefix.length));
}
