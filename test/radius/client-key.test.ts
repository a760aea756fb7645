// The client key of a RADIUS request, and the reading of FreeRADIUS's JSON
// bodies (pure): tables of {description, input, expected}.
import assert from 'node:assert/strict';

import { formatClientKey } from '../../src/codec/client-key';
import { clientKeyOf, type KeyMapping } from '../../src/radius/radius-client-key';
import { BadRadiusRequest, RequestAttributes } from '../../src/radius/request-attributes';

const body = (o: unknown) => Buffer.from(JSON.stringify(o));
const rest = (attrs: Record<string, string | number>, type = 'string') =>
  body(Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { type, value: [v] }])));

const mapping = (over: { username?: Partial<KeyMapping['username']>; discriminator?: Partial<KeyMapping['discriminator']> } = {}): KeyMapping => ({
  username: { realm: 'keep', realmFormat: 'suffix', realmDelimiter: '@', ...over.username },
  discriminator: { class: 'none', attribute: 'Calling-Station-Id', ...over.discriminator },
});

function keyOf(b: Buffer, m: KeyMapping): string {
  return formatClientKey(clientKeyOf(RequestAttributes.parse(b), m));
}

function refusal(b: Buffer, m: KeyMapping): string {
  try {
    keyOf(b, m);
  } catch (e) {
    if (e instanceof BadRadiusRequest) return e.reason;
    throw e;
  }
  return 'accepted';
}

describe('radius: client key from attributes (pure)', () => {
  const good: { description: string; input: Buffer; m: KeyMapping; expected: string }[] = [
    { description: 'default: the null class and User-Name as it is', input: rest({ 'User-Name': 'alice@Example.NET', 'Calling-Station-Id': '555' }), m: mapping(), expected: '0/alice@Example.NET' },
    { description: 'realm stripped (suffix, last @)', input: rest({ 'User-Name': 'a@b@example.net' }), m: mapping({ username: { realm: 'strip' } }), expected: '0/a@b' },
    { description: 'realm lower-cased (suffix)', input: rest({ 'User-Name': 'Alice@Example.NET' }), m: mapping({ username: { realm: 'lowercase' } }), expected: '0/Alice@example.net' },
    { description: 'prefix realm stripped (first delimiter)', input: rest({ 'User-Name': 'CORP\\bob\\x' }), m: mapping({ username: { realm: 'strip', realmFormat: 'prefix', realmDelimiter: '\\' } }), expected: '0/bob\\x' },
    { description: 'prefix realm lower-cased', input: rest({ 'User-Name': 'CORP/bob' }), m: mapping({ username: { realm: 'lowercase', realmFormat: 'prefix', realmDelimiter: '/' } }), expected: '0/corp/bob' },
    { description: 'no realm to strip: the name as it is', input: rest({ 'User-Name': 'carol' }), m: mapping({ username: { realm: 'strip' } }), expected: '0/carol' },
    { description: 'directory number: separators and a leading + dropped', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '+1 (555) 010-0199' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: '5:15550100199/u' },
    { description: 'directory number: dots', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '030.1234.5678' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: '5:03012345678/u' },
    { description: 'MAC with colons', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '00:1B:21:3c:4d:5e' }), m: mapping({ discriminator: { class: 'ieee-802-address' } }), expected: '3:00:1b:21:3c:4d:5e/u' },
    { description: 'MAC with dashes', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '00-1b-21-3c-4d-5e' }), m: mapping({ discriminator: { class: 'ieee-802-address' } }), expected: '3:00:1b:21:3c:4d:5e/u' },
    { description: 'MAC, Cisco dotted', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '001b.213c.4d5e' }), m: mapping({ discriminator: { class: 'ieee-802-address' } }), expected: '3:00:1b:21:3c:4d:5e/u' },
    { description: 'MAC, bare hex', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '001B213C4D5E' }), m: mapping({ discriminator: { class: 'ieee-802-address' } }), expected: '3:00:1b:21:3c:4d:5e/u' },
    { description: 'IPv4 from an ipaddr attribute', input: body({ 'User-Name': { type: 'string', value: ['u'] }, 'Framed-IP-Address': { type: 'ipaddr', value: ['192.0.2.7'] } }), m: mapping({ discriminator: { class: 'ipv4-address', attribute: 'Framed-IP-Address' } }), expected: '2:192.0.2.7/u' },
    { description: 'locally assigned from a string', input: rest({ 'User-Name': 'u', 'NAS-Port-Id': 'eth0.100:7' }), m: mapping({ discriminator: { class: 'locally-assigned', attribute: 'NAS-Port-Id' } }), expected: `1:${Buffer.from('eth0.100:7').toString('hex')}/u` },
    { description: 'locally assigned from octets (0x hex)', input: body({ 'User-Name': { type: 'string', value: ['u'] }, 'Class': { type: 'octets', value: ['0x0a0b0c'] } }), m: mapping({ discriminator: { class: 'locally-assigned', attribute: 'Class' } }), expected: '1:0a0b0c/u' },
    { description: 'rlm_json single values (not arrays)', input: body({ 'User-Name': { type: 'string', value: 'dave' } }), m: mapping(), expected: '0/dave' },
    { description: 'short form: plain strings', input: body({ 'User-Name': 'erin', 'Calling-Station-Id': ['4711'] }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: '5:4711/erin' },
    { description: 'attribute names are case-insensitive; a tag suffix is ignored', input: body({ 'user-name': 'frank', 'CALLING-STATION-ID:1': '42' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: '5:42/frank' },
    { description: 'a body with octets that are not UTF-8 elsewhere still reads User-Name', input: Buffer.concat([Buffer.from('{"Filter-Id":{"type":"string","value":["\xff\xfe"]},"User-Name":{"type":"string","value":["gr', 'latin1'), Buffer.from('ü', 'utf8'), Buffer.from('n"]}}')]), m: mapping(), expected: '0/grün' },
    { description: 'a 64-octet username', input: rest({ 'User-Name': 'x'.repeat(64) }), m: mapping(), expected: `0/${'x'.repeat(64)}` },
  ];
  for (const t of good) it(t.description, () => assert.equal(keyOf(t.input, t.m), t.expected));

  const bad: { description: string; input: Buffer; m: KeyMapping; expected: string }[] = [
    { description: 'no User-Name', input: rest({ 'Calling-Station-Id': '555' }), m: mapping(), expected: 'noUserName' },
    { description: 'an empty User-Name', input: rest({ 'User-Name': '' }), m: mapping(), expected: 'noUserName' },
    { description: 'two User-Names', input: body({ 'User-Name': { type: 'string', value: ['a', 'b'] } }), m: mapping(), expected: 'badUserName' },
    { description: 'a 65-octet username', input: rest({ 'User-Name': 'x'.repeat(65) }), m: mapping(), expected: 'badUserName' },
    { description: 'a username that is not UTF-8', input: Buffer.from('{"User-Name":{"type":"string","value":["caf\xe9"]}}', 'latin1'), m: mapping(), expected: 'badUserName' },
    { description: 'a lone surrogate (a \\u escape)', input: Buffer.from('{"User-Name":"a\\ud800b"}'), m: mapping(), expected: 'badUserName' },
    { description: 'nothing left once the realm is stripped', input: rest({ 'User-Name': '@example.net' }), m: mapping({ username: { realm: 'strip' } }), expected: 'badUserName' },
    { description: 'the discriminator attribute is missing', input: rest({ 'User-Name': 'u' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: 'noDiscriminator' },
    { description: 'letters in a directory number', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '555-CALL-NOW' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: 'badDiscriminator' },
    { description: '16 digits', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '1234567890123456' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: 'badDiscriminator' },
    { description: 'a number with nothing but separators', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '+ -' }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: 'badDiscriminator' },
    { description: 'a MAC of five octets', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '00:11:22:33:44' }), m: mapping({ discriminator: { class: 'ieee-802-address' } }), expected: 'badDiscriminator' },
    { description: 'an IPv4 address with a leading zero', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '192.0.2.07' }), m: mapping({ discriminator: { class: 'ipv4-address' } }), expected: 'badDiscriminator' },
    { description: 'an IPv4 octet over 255', input: rest({ 'User-Name': 'u', 'Calling-Station-Id': '192.0.2.256' }), m: mapping({ discriminator: { class: 'ipv4-address' } }), expected: 'badDiscriminator' },
    { description: 'a locally assigned value over 20 octets', input: rest({ 'User-Name': 'u', 'NAS-Port-Id': 'x'.repeat(21) }), m: mapping({ discriminator: { class: 'locally-assigned', attribute: 'NAS-Port-Id' } }), expected: 'badDiscriminator' },
    { description: 'the discriminator attribute twice', input: body({ 'User-Name': 'u', 'Calling-Station-Id': ['1', '2'] }), m: mapping({ discriminator: { class: 'directory-number' } }), expected: 'badDiscriminator' },
    { description: 'not JSON', input: Buffer.from('User-Name=alice'), m: mapping(), expected: 'malformedJson' },
    { description: 'a JSON array', input: Buffer.from('[{"User-Name":"a"}]'), m: mapping(), expected: 'malformedJson' },
    { description: 'an attribute value of the wrong shape', input: body({ 'User-Name': { type: 'string', value: [{ nested: true }] } }), m: mapping(), expected: 'malformedJson' },
    { description: 'a null value', input: body({ 'User-Name': null }), m: mapping(), expected: 'malformedJson' },
    { description: 'an empty body', input: Buffer.alloc(0), m: mapping(), expected: 'malformedJson' },
    { description: 'JSON nested 60,000 deep', input: Buffer.from(`{"User-Name":${'['.repeat(60_000)}${']'.repeat(60_000)}}`), m: mapping(), expected: 'malformedJson' },
  ];
  for (const t of bad) it(`refuses ${t.description} (${t.expected})`, () => assert.equal(refusal(t.input, t.m), t.expected));

  it('every link of a bundle maps to one key whatever the MAC or number spelling', () => {
    const m = mapping({ discriminator: { class: 'ieee-802-address' } });
    const spellings = ['00:1b:21:3c:4d:5e', '00-1B-21-3C-4D-5E', '001b.213c.4d5e', '001b213c4d5e'];
    assert.equal(new Set(spellings.map((s) => keyOf(rest({ 'User-Name': 'u', 'Calling-Station-Id': s }), m))).size, 1);
  });
});
