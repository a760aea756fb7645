// Client key: the RFC 1990 endpoint discriminator (class and address) plus the
// username. The same rules as native/client_key.cc; docs/protocol.md defines them.
import { isIPv4 } from 'node:net';

import { ProtocolError } from './errors';

/** RFC 1990 section 5.1.3 endpoint discriminator classes. */
export enum DiscriminatorClass {
  Null = 0,
  LocallyAssigned = 1,
  Ipv4Address = 2,
  Ieee802Address = 3,
  MagicNumberBlock = 4,
  DirectoryNumber = 5,
}

export const MAX_ADDRESS_OCTETS = 20;
export const MAX_USERNAME_OCTETS = 64;
export const MAX_KEY_OCTETS = 2 + MAX_ADDRESS_OCTETS + MAX_USERNAME_OCTETS;

export interface EndpointDiscriminator {
  readonly class: DiscriminatorClass;
  readonly address: Buffer;
}

/** Who a client is. Every link of one client's bundle carries the same key. */
export interface ClientKey {
  readonly discriminator: EndpointDiscriminator;
  readonly username: string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function badLength(cls: number, n: number, rule: string): never {
  throw new ProtocolError('badAddressLength', `discriminator class ${cls} needs ${rule}, got ${n} octets`);
}

/** Throws ProtocolError if the discriminator breaks its class's rule. (Hot path: no allocation.) */
export function validateDiscriminator(cls: number, address: Uint8Array): void {
  const n = address.length;
  switch (cls) {
    case DiscriminatorClass.Null:
      if (n !== 0) badLength(cls, n, 'an empty address');
      return;
    case DiscriminatorClass.LocallyAssigned:
      if (n < 1 || n > MAX_ADDRESS_OCTETS) badLength(cls, n, '1 to 20 octets');
      return;
    case DiscriminatorClass.Ipv4Address:
      if (n !== 4) badLength(cls, n, '4 octets');
      return;
    case DiscriminatorClass.Ieee802Address:
      if (n !== 6) badLength(cls, n, '6 octets');
      return;
    case DiscriminatorClass.MagicNumberBlock:
      if (n < 4 || n > MAX_ADDRESS_OCTETS || n % 4 !== 0) badLength(cls, n, '4 to 20 octets, a multiple of 4');
      return;
    case DiscriminatorClass.DirectoryNumber:
      if (n < 1 || n > 15) badLength(cls, n, '1 to 15 digits');
      for (let i = 0; i < n; i++) {
        if (address[i] < 0x30 || address[i] > 0x39) throw new ProtocolError('badAddress', 'a directory number holds only the digits 0-9');
      }
      return;
    default:
      throw new ProtocolError('badClass', `discriminator class must be 0 to 5, got ${cls}`);
  }
}

/** Username octets, checked: well-formed UTF-8, at most 64 octets. */
export function validateUsernameBytes(bytes: Uint8Array): string {
  if (bytes.length > MAX_USERNAME_OCTETS) {
    throw new ProtocolError('usernameTooLong', `username is ${bytes.length} octets; at most ${MAX_USERNAME_OCTETS}`);
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new ProtocolError('usernameNotUtf8', 'username is not well-formed UTF-8');
  }
}

/** Builds a checked client key. Throws ProtocolError, never truncates. */
export function clientKey(discriminator: EndpointDiscriminator, username: string): ClientKey {
  validateDiscriminator(discriminator.class, discriminator.address);
  const bytes = Buffer.from(username, 'utf8');
  // A lone surrogate in a JS string encodes as U+FFFD: refuse it rather than
  // store a different name than the caller gave.
  if (!username.isWellFormed()) throw new ProtocolError('usernameNotUtf8', 'username has a lone surrogate');
  validateUsernameBytes(bytes);
  return { discriminator: { class: discriminator.class, address: Buffer.from(discriminator.address) }, username };
}

/**
 * The canonical octet string of a key, as the table stores it:
 * [class][address length][address][username UTF-8].
 */
export function clientKeyBytes(key: ClientKey): Buffer {
  const user = Buffer.from(key.username, 'utf8');
  const a = key.discriminator.address;
  const out = Buffer.allocUnsafe(2 + a.length + user.length);
  out[0] = key.discriminator.class;
  out[1] = a.length;
  a.copy(out, 2);
  user.copy(out, 2 + a.length);
  return out;
}

/**
 * clientKeyBytes with every rule checked, in one pass and one allocation:
 * for the hot path, where keys come from callers. A well-formed JS string
 * always encodes to well-formed UTF-8, so only its length needs checking.
 */
export function checkedClientKeyBytes(key: ClientKey): Buffer {
  // one key (route()): no offsets, no arrays, only the key's own octets
  const user = checkedKeyLength(key);
  const out = Buffer.allocUnsafe(2 + key.discriminator.address.length + user);
  writeKey(out, 0, key, user);
  return out;
}

/**
 * Checks a key's rules; returns its username's UTF-8 octets. They equal the
 * string's length exactly when it is pure ASCII (any other character takes
 * more octets than UTF-16 units), which writeKey copies by hand.
 */
function checkedKeyLength(k: ClientKey): number {
  validateDiscriminator(k.discriminator.class, k.discriminator.address);
  const u = k.username;
  let user = u.length;
  for (let i = 0; i < u.length; i++) {
    if (u.charCodeAt(i) < 0x80) continue;
    if (!u.isWellFormed()) throw new ProtocolError('usernameNotUtf8', 'username has a lone surrogate');
    user = Buffer.byteLength(u, 'utf8');
    break;
  }
  if (user > MAX_USERNAME_OCTETS) throw new ProtocolError('usernameTooLong', `username is ${user} octets; at most ${MAX_USERNAME_OCTETS}`);
  return user;
}

/** A checked key's canonical octets at `o` (user: checkedKeyLength's answer); short keys by plain loops, which beat Buffer.write and TypedArray.set at these sizes. */
function writeKey(out: Buffer, o: number, k: ClientKey, user: number): void {
  const a = k.discriminator.address;
  out[o++] = k.discriminator.class;
  out[o++] = a.length;
  for (let j = 0; j < a.length; j++) out[o++] = a[j];
  const u = k.username;
  if (user === u.length) for (let j = 0; j < u.length; j++) out[o++] = u.charCodeAt(j);
  else out.write(u, o, 'utf8');
}

/**
 * Many keys, checked, into one buffer: key i at offsets[i]..offsets[i+1]
 * (the layout of the native batch lookup). The hot path of routeBatch.
 */
export function checkedClientKeysInto(keys: readonly ClientKey[]): { buffer: Buffer; offsets: Uint32Array } {
  const n = keys.length;
  const offsets = new Uint32Array(n + 1);
  const userLen = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    userLen[i] = checkedKeyLength(k);
    offsets[i + 1] = offsets[i] + 2 + k.discriminator.address.length + userLen[i];
  }
  const buffer = Buffer.allocUnsafe(offsets[n]);
  for (let i = 0; i < n; i++) writeKey(buffer, offsets[i], keys[i], userLen[i]);
  return { buffer, offsets };
}

/** Inverse of clientKeyBytes, with every rule checked. */
export function clientKeyFromBytes(bytes: Uint8Array): ClientKey {
  if (bytes.length < 2 || bytes[1] + 2 > bytes.length) {
    throw new ProtocolError('badKeyBytes', 'canonical key too short for its address length');
  }
  const address = Buffer.from(bytes.subarray(2, 2 + bytes[1]));
  validateDiscriminator(bytes[0], address);
  const username = validateUsernameBytes(bytes.subarray(2 + bytes[1]));
  return { discriminator: { class: bytes[0], address }, username };
}

/**
 * Text form of a discriminator, for CLIs and logs:
 * `0`, `1:0a0b0c` (hex), `2:192.0.2.7`, `3:00:11:22:33:44:55`, `4:hex`, `5:15551234567`.
 */
export function formatDiscriminator(d: EndpointDiscriminator): string {
  switch (d.class) {
    case DiscriminatorClass.Null:
      return '0';
    case DiscriminatorClass.Ipv4Address:
      return `2:${[...d.address].join('.')}`;
    case DiscriminatorClass.Ieee802Address:
      return `3:${[...d.address].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
    case DiscriminatorClass.DirectoryNumber:
      return `5:${d.address.toString('latin1')}`;
    default:
      return `${d.class}:${d.address.toString('hex')}`;
  }
}

/** Parses the text form of formatDiscriminator. Throws ProtocolError. */
export function parseDiscriminator(text: string): EndpointDiscriminator {
  const m = /^([0-5])(?::(.*))?$/s.exec(text.trim());
  if (!m) throw new ProtocolError('badDiscriminatorText', `discriminator "${text}" is not CLASS[:ADDRESS] with class 0-5`);
  const cls = Number(m[1]) as DiscriminatorClass;
  const rest = m[2] ?? '';
  let address: Buffer;
  switch (cls) {
    case DiscriminatorClass.Null:
      address = Buffer.alloc(0);
      if (rest !== '') throw new ProtocolError('badAddressLength', 'class 0 has no address');
      break;
    case DiscriminatorClass.Ipv4Address:
      if (!isIPv4(rest)) throw new ProtocolError('badAddress', `"${rest}" is not an IPv4 address`);
      address = Buffer.from(rest.split('.').map(Number));
      break;
    case DiscriminatorClass.Ieee802Address:
      if (!/^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(rest)) {
        throw new ProtocolError('badAddress', `"${rest}" is not a MAC address like 00:11:22:33:44:55`);
      }
      address = Buffer.from(rest.replace(/[:-]/g, ''), 'hex');
      break;
    case DiscriminatorClass.DirectoryNumber:
      address = Buffer.from(rest, 'latin1');
      break;
    default:
      if (!/^([0-9a-f]{2})*$/i.test(rest)) throw new ProtocolError('badAddress', `"${rest}" is not hex octets`);
      address = Buffer.from(rest, 'hex');
  }
  validateDiscriminator(cls, address);
  return { class: cls, address };
}

/** `DISCRIMINATOR/username`, e.g. `2:192.0.2.7/alice@example.net`. */
export function formatClientKey(key: ClientKey): string {
  return `${formatDiscriminator(key.discriminator)}/${key.username}`;
}

/** Parses formatClientKey's form; the username is everything after the first `/`. */
export function parseClientKey(text: string): ClientKey {
  const slash = text.indexOf('/');
  if (slash < 0) throw new ProtocolError('badClientKeyText', `client key "${text}" is not DISCRIMINATOR/USERNAME`);
  return clientKey(parseDiscriminator(text.slice(0, slash)), text.slice(slash + 1));
}

export function sameClientKey(a: ClientKey, b: ClientKey): boolean {
  return clientKeyBytes(a).equals(clientKeyBytes(b));
}
