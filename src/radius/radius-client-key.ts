// The client key of a RADIUS request: the username from User-Name (realm
// kept, stripped or lower-cased) and the endpoint discriminator from a
// configured attribute, mapped to an RFC 1990 class. Every link of a bundle
// must map to the same key, so each rule is exact and documented in
// docs/radius.md; a value that does not fit is refused (counted by reason),
// never guessed at. Pure: no I/O.
import { type ClientKey, DiscriminatorClass, type EndpointDiscriminator, MAX_USERNAME_OCTETS, validateDiscriminator } from '../codec/client-key';
import { ProtocolError } from '../codec/errors';
import type { RadiusConfig } from './radius-config';
import { BadRadiusRequest, type RequestAttributes } from './request-attributes';

export type KeyMapping = Pick<RadiusConfig, 'username' | 'discriminator'>;

/** The username of User-Name after the realm rule. Throws BadRadiusRequest(noUserName | badUserName). */
export function usernameOf(req: RequestAttributes, o: KeyMapping['username']): string {
  const raw = req.single('User-Name', 'badUserName');
  if (raw === undefined || raw === '') throw new BadRadiusRequest('noUserName', 'the request has no User-Name');
  let name = raw;
  if (o.realm !== 'keep') {
    const d = o.realmDelimiter;
    const at = o.realmFormat === 'suffix' ? raw.lastIndexOf(d) : raw.indexOf(d);
    if (at >= 0) {
      const [user, realm] = o.realmFormat === 'suffix' ? [raw.slice(0, at), raw.slice(at + 1)] : [raw.slice(at + 1), raw.slice(0, at)];
      if (o.realm === 'strip') name = user;
      else name = o.realmFormat === 'suffix' ? `${user}${d}${realm.toLowerCase()}` : `${realm.toLowerCase()}${d}${user}`;
    }
    if (name === '') throw new BadRadiusRequest('badUserName', `User-Name has nothing but a realm (${o.realmFormat} "${d}")`);
  }
  if (!name.isWellFormed()) throw new BadRadiusRequest('badUserName', 'User-Name holds a lone surrogate');
  const n = Buffer.byteLength(name, 'utf8');
  if (n > MAX_USERNAME_OCTETS) throw new BadRadiusRequest('badUserName', `the username is ${n} octets; at most ${MAX_USERNAME_OCTETS}`);
  return name;
}

const MAC_FORMS = [
  /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i,
  /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/i,
  /^([0-9a-f]{12})$/i,
];

/** The discriminator from the configured attribute. Throws BadRadiusRequest(noDiscriminator | badDiscriminator). */
export function discriminatorOf(req: RequestAttributes, o: KeyMapping['discriminator']): EndpointDiscriminator {
  if (o.class === 'none') return { class: DiscriminatorClass.Null, address: Buffer.alloc(0) };
  const attr = o.attribute;
  const a = req.get(attr);
  if (!a || a.values.length === 0) throw new BadRadiusRequest('noDiscriminator', `the request has no ${attr} (radius.discriminator.attribute)`);
  if (a.values.length > 1) throw new BadRadiusRequest('badDiscriminator', `${attr} appears ${a.values.length} times`);
  const bad = (why: string): never => {
    throw new BadRadiusRequest('badDiscriminator', `${attr} is not a valid ${o.class} discriminator: ${why}`);
  };
  let cls: DiscriminatorClass;
  let address: Buffer;
  switch (o.class) {
    case 'locally-assigned': {
      cls = DiscriminatorClass.LocallyAssigned;
      const v = a.values[0];
      // FreeRADIUS writes octets attributes as 0x-prefixed hex
      if (a.type === 'octets' && typeof v === 'string' && /^0x([0-9a-f]{2})*$/i.test(v)) address = Buffer.from(v.slice(2), 'hex');
      else address = req.octets(attr)![0];
      break;
    }
    case 'ipv4-address': {
      cls = DiscriminatorClass.Ipv4Address;
      const v = req.single(attr, 'badDiscriminator')!;
      const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(v);
      if (!m || m.slice(1).some((x) => Number(x) > 255 || (x.length > 1 && x[0] === '0'))) bad('expected a dotted-quad IPv4 address');
      address = Buffer.from(m!.slice(1).map(Number));
      break;
    }
    case 'ieee-802-address': {
      cls = DiscriminatorClass.Ieee802Address;
      const v = req.single(attr, 'badDiscriminator')!.trim();
      const m = MAC_FORMS.map((re) => re.exec(v)).find((x) => x);
      if (!m) bad('expected a MAC address (00:11:22:33:44:55, 00-11-22-33-44-55, 0011.2233.4455 or 001122334455)');
      address = Buffer.from(m!.slice(1).join(''), 'hex');
      break;
    }
    case 'directory-number': {
      cls = DiscriminatorClass.DirectoryNumber;
      const v = req.single(attr, 'badDiscriminator')!;
      // visual separators of E.123 and a leading + are not part of the number
      const digits = v.trim().replace(/^\+/, '').replace(/[\s.()-]/g, '');
      if (!/^[0-9]{1,15}$/.test(digits)) bad('expected 1 to 15 digits (spaces, dots, dashes, parentheses and a leading + are ignored)');
      address = Buffer.from(digits, 'latin1');
      break;
    }
  }
  try {
    validateDiscriminator(cls, address);
  } catch (e) {
    if (e instanceof ProtocolError) bad(e.message);
    throw e;
  }
  return { class: cls, address };
}

/** The client key of an Access-Request or Accounting-Request. Throws BadRadiusRequest. */
export function clientKeyOf(req: RequestAttributes, o: KeyMapping): ClientKey {
  const username = usernameOf(req, o.username);
  return { discriminator: discriminatorOf(req, o.discriminator), username };
}
