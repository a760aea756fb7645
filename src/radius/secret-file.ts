// Secrets of the RADIUS API that live in files of their own: the bearer
// token FreeRADIUS sends and each endpoint's Tunnel-Password. A file must not
// be accessible to group or others, as the cluster key file; its content is
// never put in an error, a log line or a stats answer.
import { readFileSync, statSync } from 'node:fs';

import type { RadiusConfig, TunnelledEndpoint } from './radius-config';

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Why a secret file cannot be used (the content is never quoted). */
export class SecretFileError extends Error {
  constructor(readonly file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.name = 'SecretFileError';
  }
}

/**
 * The secret in `file`: its text without one trailing newline, checked to be
 * UTF-8 of `min` to `max` octets with no control characters.
 */
export function readSecretFile(file: string, what: string, min: number, max: number): string {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new SecretFileError(file, `cannot read the ${what} file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!st.isFile()) throw new SecretFileError(file, `the ${what} file is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretFileError(file, `the ${what} file is accessible to group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`);
  }
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new SecretFileError(file, `cannot read the ${what} file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let n = raw.length;
  if (n > 0 && raw[n - 1] === 0x0a) n--;
  if (n > 0 && raw[n - 1] === 0x0d) n--;
  const bytes = raw.subarray(0, n);
  if (bytes.length < min || bytes.length > max) throw new SecretFileError(file, `the ${what} must be ${min} to ${max} octets (the file holds ${bytes.length})`);
  let secret: string;
  try {
    secret = strictUtf8.decode(bytes);
  } catch {
    throw new SecretFileError(file, `the ${what} is not UTF-8 text`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(secret)) throw new SecretFileError(file, `the ${what} holds a control character (one line of text is expected)`);
  return secret;
}

/** Token length bounds (radius.tokenFile). */
export const MIN_TOKEN_OCTETS = 16;
export const MAX_TOKEN_OCTETS = 1024;

/**
 * The RADIUS secrets a configuration names, checked as the node will read
 * them (check-config, start, reload); only files of an enabled API are read.
 */
export function radiusSecretProblems(c: { radius: RadiusConfig; endpoints: readonly TunnelledEndpoint[] }, maxPasswordOctets: number): string[] {
  if (!c.radius.enabled) return [];
  const problems: string[] = [];
  const check = (file: string, what: string, min: number, max: number, where: string) => {
    try {
      readSecretFile(file, what, min, max);
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
  };
  if (c.radius.tokenFile) check(c.radius.tokenFile, 'token', MIN_TOKEN_OCTETS, MAX_TOKEN_OCTETS, 'radius.tokenFile');
  c.endpoints.forEach((e, i) => {
    if (e.tunnel?.passwordFile) check(e.tunnel.passwordFile, 'tunnel password', 1, maxPasswordOctets, `endpoints.${i}.tunnel.passwordFile`);
  });
  return problems;
}
