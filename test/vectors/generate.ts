// Writes the shared test vectors (messages.json, frames.json) from the
// TypeScript reference codec. Run: npx tsx test/vectors/generate.ts
// The files are committed; a change to them is a change to the wire format
// and must be reviewed as one.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { encodeFrame, type Keyring } from '../../src/codec/frame';
import { fnv1a32, fmix32, rankOrder, rankScore } from '../../src/directory/ranks';
import { encodeMessage } from '../../src/codec/messages';
import { messageFromJson, type MessageJson } from '../helpers/vector-json';

const entry = (clientKey: string, address: string, port: number, name: string, version: number, originNode: number, ttlSeconds: number) => ({
  clientKey, endpoint: { address, port, name }, version, originNode, ttlSeconds,
});

const valid: { description: string; type: number; message: MessageJson }[] = [
  { description: 'QUERY, IPv4 discriminator', type: 1, message: { query: { keys: ['2:192.0.2.7/alice'], queryId: 1, answerRank: 0 } } },
  { description: 'QUERY, null class, empty username, query id 0 (all defaults)', type: 1, message: { query: { keys: ['0/'], queryId: 0, answerRank: 0 } } },
  { description: 'QUERY, locally assigned 20 octets', type: 1, message: { query: { keys: ['1:000102030405060708090a0b0c0d0e0f10111213/carol'], queryId: 4294967295, answerRank: 0 } } },
  { description: 'QUERY, MAC discriminator', type: 1, message: { query: { keys: ['3:00:1b:21:3c:4d:5e/dave@example.net'], queryId: 127, answerRank: 0 } } },
  { description: 'QUERY, magic-number block of 8', type: 1, message: { query: { keys: ['4:deadbeefcafef00d/eve'], queryId: 128, answerRank: 0 } } },
  { description: 'QUERY, directory number 15 digits', type: 1, message: { query: { keys: ['5:441632960001234/frank'], queryId: 16384, answerRank: 0 } } },
  { description: 'QUERY, 64-octet multibyte username', type: 1, message: { query: { keys: ['2:10.1.2.3/' + 'ü'.repeat(32)], queryId: 9, answerRank: 0 } } },
  { description: 'REPLY, IPv4 endpoint', type: 2, message: { reply: { queryId: 77, entries: [entry('2:192.0.2.7/alice', '198.51.100.10', 1701, 'lns-1', 1, 11, 3600)] } } },
  { description: 'REPLY, IPv6 endpoint, unicode name, big numbers', type: 2, message: { reply: { queryId: 2147483648, entries: [entry('3:02:00:5e:10:00:01/ßob', '2001:db8::a', 65535, 'ämter-β', 4294967295, 4294967295, 4294967295)] } } },
  { description: 'REPLY, defaults: query id 0, version 0, no name', type: 2, message: { reply: { queryId: 0, entries: [entry('0/', '0.0.0.0', 1, '', 0, 0, 0)] } } },
  { description: 'UPDATE, IPv4', type: 3, message: { update: { entries: [entry('2:192.0.2.99/grace', '203.0.113.5', 443, 'edge-b', 2, 3, 600)] } } },
  { description: 'UPDATE, IPv4-mapped IPv6 endpoint', type: 3, message: { update: { entries: [entry('4:01020304/heidi', '::ffff:c000:207', 8080, 'mapped', 7, 1, 0)] } } },
  { description: 'QUERY of three clients, answer rank 1', type: 1, message: { query: { keys: ['2:192.0.2.7/alice', '0/', '5:4412345/bob'], queryId: 5, answerRank: 1 } } },
  { description: 'QUERY, answer rank 2', type: 1, message: { query: { keys: ['3:00:1b:21:3c:4d:5e/dave'], queryId: 6, answerRank: 2 } } },
  { description: 'REPLY of two entries', type: 2, message: { reply: { queryId: 9, entries: [entry('2:192.0.2.7/alice', '198.51.100.10', 1701, 'lns-1', 1, 11, 3600), entry('0/', '2001:db8::1', 1702, 'lns-2', 3, 2, 60)] } } },
  { description: 'UPDATE of three entries', type: 3, message: { update: { entries: [entry('0/a', '203.0.113.5', 443, 'a', 1, 1, 10), entry('0/b', '203.0.113.6', 443, 'b', 2, 1, 20), entry('0/c', '203.0.113.7', 443, 'c', 3, 1, 0)] } } },
  { description: 'CLAIM of one proposal', type: 8, message: { claim: { claimId: 77, proposals: [entry('2:192.0.2.7/alice', '198.51.100.10', 1701, 'lns-1', 1, 3, 3600)] } } },
  { description: 'CLAIM of two proposals, claim id 0', type: 8, message: { claim: { claimId: 0, proposals: [entry('0/x', '198.51.100.10', 1701, 'lns-1', 1, 3, 3600), entry('1:aa/y', '198.51.100.11', 1701, 'lns-2', 5, 3, 0)] } } },
  { description: 'CLAIM in a handover: two proposals, another node\'s entry', type: 8, message: { claim: { claimId: 78, proposals: [entry('2:192.0.2.7/alice', '198.51.100.10', 1701, 'lns-1', 1, 4, 3600), entry('0/x', '198.51.100.11', 1701, 'lns-2', 2, 3, 60)], handover: true } } },
  { description: 'HELLO, ready', type: 9, message: { hello: { state: 1, intervalMs: 500, entries: 123456, readyForMs: 1500 } } },
  { description: 'HELLO, ready for longer than 2^32 ms (saturated)', type: 9, message: { hello: { state: 1, intervalMs: 500, entries: 1, readyForMs: 4294967295 } } },
  { description: 'HELLO, starting, all defaults', type: 9, message: { hello: { state: 0, intervalMs: 0, entries: 0, readyForMs: 0 } } },
  { description: 'HELLO, stopping', type: 9, message: { hello: { state: 2, intervalMs: 1000, entries: 7, readyForMs: 0 } } },
];

// Bodies that decode although an encoder would never write them; the
// decoded message and its canonical re-encoding are given.
const hx = (s: string) => s.replace(/\s+/g, '');
const noncanonical: { description: string; type: number; body: string; message: MessageJson }[] = [
  { description: 'unknown varint field 15 is skipped', type: 1, body: hx('0a08 0802 12040a000001 1003 7801'), message: { query: { keys: ['2:10.0.0.1/'], queryId: 3, answerRank: 0 } } },
  { description: 'fields in reverse order', type: 1, body: hx('1003 0a08 0802 12040a000001'), message: { query: { keys: ['2:10.0.0.1/'], queryId: 3, answerRank: 0 } } },
  { description: 'repeated scalar: the last one wins', type: 1, body: hx('1001 0a08 0802 12040a000001 1002'), message: { query: { keys: ['2:10.0.0.1/'], queryId: 2, answerRank: 0 } } },
  { description: 'repeated sub-message: the last one wins', type: 1, body: hx('0a08 0802 12040a000001 0a08 0802 12040a000002'), message: { query: { keys: ['2:10.0.0.2/'], queryId: 0, answerRank: 0 } } },
  { description: 'explicit default written (query id 0)', type: 1, body: hx('0a00 1000'), message: { query: { keys: ['0/'], queryId: 0, answerRank: 0 } } },
  { description: 'non-minimal varint (5 octets) for a uint32', type: 1, body: hx('0a00 10 8180808000'), message: { query: { keys: ['0/'], queryId: 1, answerRank: 0 } } },
  { description: 'unknown length-delimited, fixed32 and fixed64 fields skipped', type: 1, body: hx('0a00 3a03616263 2d01020304 3101020304050607 08 1004'), message: { query: { keys: ['0/'], queryId: 4, answerRank: 0 } } },
  { description: 'QUERY: the first key is field 1 wherever it stands; further keys (field 4) keep their order', type: 1, body: hx('2203 1a0162 0a03 1a0161 2203 1a0163'), message: { query: { keys: ['0/a', '0/b', '0/c'], queryId: 0, answerRank: 0 } } },
];

const malformed: { description: string; type: number; body: string }[] = [
  { description: 'empty QUERY: client key missing', type: 1, body: '' },
  { description: 'client key with wire type 0', type: 1, body: hx('0801') },
  { description: 'query id with wire type 2', type: 1, body: hx('0a00 1200') },
  { description: 'varint cut off', type: 1, body: hx('0a00 1080') },
  { description: 'length past the end', type: 1, body: hx('0a05 0802') },
  { description: 'group (wire type 3)', type: 1, body: hx('0a00 1b 1c') },
  { description: 'wire type 7', type: 1, body: hx('0a00 1f00') },
  { description: 'field number 0', type: 1, body: hx('0a00 0000') },
  { description: 'query id in 6 octets', type: 1, body: hx('0a00 10 818080808000') },
  { description: 'query id above 2^32', type: 1, body: hx('0a00 10 8080808010') },
  { description: 'discriminator class 6', type: 1, body: hx('0a02 0806') },
  { description: 'IPv4 discriminator of 5 octets', type: 1, body: hx('0a09 0802 12050a00000101') },
  { description: 'MAC discriminator of 4 octets', type: 1, body: hx('0a08 0803 12040a000001') },
  { description: 'magic-number block of 6 octets', type: 1, body: hx('0a0a 0804 1206010203040506') },
  { description: 'null class with an address', type: 1, body: hx('0a03 120101') },
  { description: 'locally assigned with no address', type: 1, body: hx('0a02 0801') },
  { description: 'directory number with a letter', type: 1, body: hx('0a05 0805 1201 41') },
  { description: 'directory number of 16 digits', type: 1, body: hx('0a14 0805 1210 31323334353637383930313233343536') },
  { description: 'username of 65 octets', type: 1, body: '0a43' + '1a41' + '61'.repeat(65) },
  { description: 'username: overlong UTF-8', type: 1, body: hx('0a04 1a02 c0af') },
  { description: 'username: UTF-8 surrogate', type: 1, body: hx('0a05 1a03 eda080') },
  { description: 'username: cut-off UTF-8 sequence', type: 1, body: hx('0a04 1a02 e282') },
  { description: 'nested wire error in an unused earlier client key', type: 1, body: hx('0a02 1280 0a00') },
  { description: 'REPLY without entry', type: 2, body: hx('0801') },
  { description: 'REPLY entry without endpoint', type: 2, body: hx('12020a00') },
  { description: 'REPLY entry without client key', type: 2, body: hx('120a 1208 0a047f000001 1001') },
  { description: 'endpoint address of 5 octets', type: 3, body: hx('0a0d 0a00 1209 0a057f00000101 1001') },
  { description: 'endpoint port 0', type: 3, body: hx('0a0a 0a00 1206 0a047f000001') },
  { description: 'endpoint port 65536', type: 3, body: hx('0a0e 0a00 120a 0a047f000001 10808004') },
  { description: 'endpoint name of 65 octets', type: 3, body: '0a4f' + '0a00' + '124b' + '0a047f000001' + '1001' + '1a41' + '62'.repeat(65) },
  { description: 'endpoint name: bad UTF-8', type: 3, body: hx('0a0f 0a00 120b 0a047f000001 1001 1a01ff') },
  { description: 'UPDATE without entry', type: 3, body: '' },
  { description: 'QUERY: only further keys, no first key', type: 1, body: hx('2200') },
  { description: 'QUERY: a further key is malformed (class 6)', type: 1, body: hx('0a00 2202 0806') },
  { description: 'REPLY: only further entries, no first entry', type: 2, body: hx('1a0a 0a00 1206 0a047f000001') },
  { description: 'UPDATE: a further entry has no endpoint', type: 3, body: hx('0a0c 0a00 1208 0a047f000001 1001 1202 0a00') },
  { description: 'CLAIM without a proposal', type: 8, body: hx('0801') },
  { description: 'CLAIM proposal without endpoint', type: 8, body: hx('1202 0a00') },
  { description: 'HELLO state 3', type: 9, body: hx('0803') },
  { description: 'HELLO state with wire type 2', type: 9, body: hx('0a00') },
];

const key = (id: number, fill: number) => ({ id, secret: Buffer.alloc(32, fill) });
const keyring: Keyring = { keys: [key(1, 0x11), key(2, 0x22)], sendKeyId: 1 };
const ringJson = (k: Keyring) => ({ keys: k.keys.map((x) => ({ id: x.id, secret: x.secret.toString('hex') })), sendKeyId: k.sendKeyId });
const now = 1_790_000_000_000n;
const h = (type: number, over: Partial<{ keyId: number; senderNode: number; bootEpoch: number; sequence: bigint; timestampMs: bigint }> = {}) => ({
  type, keyId: 1, senderNode: 7, bootEpoch: 1_789_999_000, sequence: 42n, timestampMs: now, ...over,
});
const body0 = encodeMessage(messageFromJson(valid[0].message));
const body7 = encodeMessage(messageFromJson(valid[7].message));
const body10 = encodeMessage(messageFromJson(valid[10].message));

type FrameVector = { description: string; header: ReturnType<typeof h>; body: string; frame: string; verdict: string };
const frames: FrameVector[] = [];
const addFrame = (description: string, header: ReturnType<typeof h>, body: Buffer, verdict: string, mutate?: (f: Buffer) => Buffer) => {
  let f = encodeFrame(header, body, keyring);
  if (mutate) f = mutate(Buffer.from(f));
  frames.push({ description, header, body: body.toString('hex'), frame: f.toString('hex'), verdict });
};
addFrame('QUERY under key 1', h(1), body0, 'accepted');
addFrame('REPLY under key 2 (rotation: both keys accepted)', h(2, { keyId: 2, sequence: 2n ** 64n - 1n }), body7, 'accepted');
addFrame('UPDATE', h(3, { senderNode: 4294967295 }), body10, 'accepted');
addFrame('SYNC_REQUEST with an empty body (a JS-side type, passed on)', h(4), Buffer.alloc(0), 'accepted');
addFrame('type 10 is unknown', h(10), Buffer.alloc(0), 'unknownType');
addFrame('HELLO', h(9), encodeMessage(messageFromJson({ hello: { state: 1, intervalMs: 500, entries: 3, readyForMs: 20 } })), 'accepted');
addFrame('from this node id in another boot epoch (selfNode 99): another process with this id', h(1, { senderNode: 99, bootEpoch: 1 }), body0, 'duplicateNode');
addFrame('type 0 is unknown', h(0), Buffer.alloc(0), 'unknownType');
addFrame('QUERY with a malformed body, validly signed', h(1), Buffer.from('0801', 'hex'), 'malformedBody');
addFrame('from this node (selfNode 99)', h(1, { senderNode: 99 }), body0, 'ownFrame');
addFrame('timestamp 31 s ahead', h(1, { timestampMs: now + 31_000n }), body0, 'stale');
addFrame('timestamp 30 s behind (the window edge is accepted)', h(1, { timestampMs: now - 30_000n }), body0, 'accepted');
addFrame('one body bit flipped', h(1), body0, 'badTag', (f) => { f[40] ^= 1; return f; });
addFrame('tag bit flipped', h(1), body0, 'badTag', (f) => { f[f.length - 1] ^= 0x80; return f; });
addFrame('key id 3 unknown', h(1), body0, 'unknownKey', (f) => { f.writeUInt16BE(3, 4); return f; });
addFrame('bad magic', h(1), body0, 'badMagic', (f) => { f[0] = 0xaa; return f; });
addFrame('version 2', h(1), body0, 'badVersion', (f) => { f[2] = 2; return f; });
addFrame('body length one too long', h(1), body0, 'badLength', (f) => { f.writeUInt16BE(f.readUInt16BE(6) + 1, 6); return f; });
addFrame('47 octets: shorter than header and tag', h(1), body0, 'truncated', (f) => f.subarray(0, 47));
addFrame('1401 octets', h(1), body0, 'oversize', (f) => Buffer.concat([f, Buffer.alloc(1401 - f.length)]));

const dir = __dirname;
const messages = {
  comment: 'Shared vectors: both codecs must encode `message` to `body` and decode `body` to `message` (valid), decode to `message` and re-encode canonically (noncanonical), or refuse (malformed). Regenerate with npx tsx test/vectors/generate.ts.',
  valid: valid.map((v) => ({ ...v, body: encodeMessage(messageFromJson(v.message)).toString('hex') })),
  noncanonical: noncanonical.map((v) => ({ ...v, canonical: encodeMessage(messageFromJson(v.message)).toString('hex') })),
  malformed,
};
writeFileSync(join(dir, 'messages.json'), JSON.stringify(messages, null, 2) + '\n');
writeFileSync(
  join(dir, 'frames.json'),
  JSON.stringify(
    { comment: 'Shared frame vectors, checked at nowMs as node selfNode in boot epoch selfBootEpoch, maxSkewMs 30000; sequence and timestamp as decimal strings.', nowMs: now.toString(), selfNode: 99, selfBootEpoch: 1_789_999_000, keyring: ringJson(keyring),
      frames: frames.map((f) => ({ ...f, header: { ...f.header, sequence: f.header.sequence.toString(), timestampMs: f.header.timestampMs.toString() } })) },
    null, 2) + '\n',
);

// Ranks (docs/protocol.md "Ranks"): the rank hash of the octets, each
// node's score, and the order (rank 0 first).
const rankCases: { description: string; octets: Buffer; nodes: number[] }[] = [
  { description: 'client 2:192.0.2.7/alice among nodes 1, 2, 3', octets: clientKeyBytes(parseClientKey('2:192.0.2.7/alice')), nodes: [1, 2, 3] },
  { description: 'client 0/ (null class, empty username) among 1..8', octets: clientKeyBytes(parseClientKey('0/')), nodes: [1, 2, 3, 4, 5, 6, 7, 8] },
  { description: 'client 5:441632960001234/frank among large ids', octets: clientKeyBytes(parseClientKey('5:441632960001234/frank')), nodes: [7, 4294967295, 100000, 65536] },
  { description: 'client 3:00:1b:21:3c:4d:5e/dave among 16 nodes', octets: clientKeyBytes(parseClientKey('3:00:1b:21:3c:4d:5e/dave')), nodes: Array.from({ length: 16 }, (_, i) => i + 1) },
  { description: 'node 4 (a bulk sync asker: its id as 4 octets) among 1, 2, 3, 5', octets: Buffer.from([0, 0, 0, 4]), nodes: [1, 2, 3, 5] },
];
const ranks = {
  comment: 'Rank vectors: hash = FNV-1a-32(octets); score(node) = fmix32(hash ^ fmix32(node)); order: by score, highest first, equal scores by the higher node id. Regenerate with npx tsx test/vectors/generate.ts.',
  cases: rankCases.map((c) => {
    const hash = fnv1a32(c.octets);
    return {
      description: c.description,
      octets: c.octets.toString('hex'),
      hash,
      fmixOfNodes: Object.fromEntries(c.nodes.map((n) => [n, fmix32(n)])),
      scores: Object.fromEntries(c.nodes.map((n) => [n, rankScore(hash, n)])),
      order: rankOrder(hash, c.nodes),
    };
  }),
};
writeFileSync(join(dir, 'ranks.json'), JSON.stringify(ranks, null, 2) + '\n');
console.log(`wrote ${valid.length + noncanonical.length + malformed.length} message vectors, ${frames.length} frame vectors and ${ranks.cases.length} rank vectors`);
