import assert from 'node:assert/strict';

import {
  clientKey,
  clientKeyBytes,
  clientKeyFromBytes,
  checkedClientKeyBytes,
  checkedClientKeysInto,
  DiscriminatorClass,
  formatClientKey,
  parseClientKey,
  parseDiscriminator,
} from '../../src/codec/client-key';
import { ProtocolError } from '../../src/codec/errors';

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ProtocolError, `expected a ProtocolError, got ${e}`);
    return e.code;
  }
  assert.fail('expected a ProtocolError');
};

describe('client key (pure)', () => {
  it('parses and formats every discriminator class', () => {
    for (const text of ['0/', '1:0a0b/u', '2:192.0.2.7/alice', '3:00:1b:21:3c:4d:5e/b', '4:01020304aabbccdd/c', '5:15551234567/d']) {
      assert.equal(formatClientKey(parseClientKey(text)), text);
    }
  });

  it('keeps a username with slashes and at-signs whole', () => {
    const k = parseClientKey('2:10.0.0.1/realm/user@example.net');
    assert.equal(k.username, 'realm/user@example.net');
  });

  it('refuses each class rule with a clear reason, never truncates', () => {
    assert.equal(code(() => parseDiscriminator('2:10.0.0')), 'badAddress');
    assert.equal(code(() => parseDiscriminator('6:00')), 'badDiscriminatorText');
    assert.equal(code(() => parseDiscriminator('1:' + '00'.repeat(21))), 'badAddressLength');
    assert.equal(code(() => parseDiscriminator('4:010203040506')), 'badAddressLength');
    assert.equal(code(() => parseDiscriminator('5:12a4')), 'badAddress');
    assert.equal(code(() => parseDiscriminator('5:' + '1'.repeat(16))), 'badAddressLength');
    assert.equal(code(() => parseDiscriminator('0:00')), 'badAddressLength');
    assert.equal(code(() => parseDiscriminator('3:00:11:22')), 'badAddress');
    assert.equal(code(() => clientKey({ class: DiscriminatorClass.Null, address: Buffer.alloc(0) }, 'x'.repeat(65))), 'usernameTooLong');
    assert.equal(code(() => clientKey({ class: DiscriminatorClass.Null, address: Buffer.alloc(0) }, '\ud800')), 'usernameNotUtf8');
    assert.equal(code(() => parseClientKey('2:10.0.0.1')), 'badClientKeyText');
  });

  it('counts the username limit in octets, not characters', () => {
    const d = { class: DiscriminatorClass.Null, address: Buffer.alloc(0) };
    clientKey(d, 'é'.repeat(32)); // 64 octets
    assert.equal(code(() => clientKey(d, 'é'.repeat(32) + 'a')), 'usernameTooLong');
  });

  it('round-trips the canonical octets', () => {
    const k = parseClientKey('3:02:00:5e:10:00:01/ßob');
    const b = clientKeyBytes(k);
    assert.deepEqual([...b.subarray(0, 2)], [3, 6]);
    assert.equal(formatClientKey(clientKeyFromBytes(b)), '3:02:00:5e:10:00:01/ßob');
    assert.equal(code(() => clientKeyFromBytes(Buffer.from([2, 9, 1]))), 'badKeyBytes');
    assert.equal(code(() => clientKeyFromBytes(Buffer.from([2, 3, 1, 2, 3]))), 'badAddressLength');
  });

  it('checks and lays out keys on the hot path exactly as clientKeyBytes does, one at a time or many', () => {
    const keys = ['0:/bob', '1:6162/alice', '2:192.0.2.1/ßob@example', '5:555/😀x', `4:00000001/${'u'.repeat(64)}`, `3:02:00:5e:10:00:01/${'é'.repeat(32)}`].map(parseClientKey);
    const { buffer, offsets } = checkedClientKeysInto(keys);
    keys.forEach((k, i) => {
      assert.deepEqual(checkedClientKeyBytes(k), clientKeyBytes(k));
      assert.deepEqual(buffer.subarray(offsets[i], offsets[i + 1]), clientKeyBytes(k));
    });
    // keys built around clientKey()'s checks are refused with the same codes
    const raw = (cls: number, address: number[], username: string) => ({ discriminator: { class: cls, address: Buffer.from(address) }, username });
    for (const [k, want] of [
      [raw(2, [1, 2, 3], 'x'), 'badAddressLength'],
      [raw(9, [], 'x'), 'badClass'],
      [raw(0, [], 'u'.repeat(65)), 'usernameTooLong'],
      [raw(0, [], 'é'.repeat(33)), 'usernameTooLong'],
      [raw(0, [], 'a\ud800'), 'usernameNotUtf8'],
    ] as const) {
      assert.equal(code(() => checkedClientKeyBytes(k)), want);
      assert.equal(code(() => checkedClientKeysInto([keys[0], k])), want);
    }
  });

  it('distinguishes keys that differ only by where the address ends', () => {
    const a = clientKeyBytes(clientKey({ class: 1, address: Buffer.from('ab') }, 'c'));
    const b = clientKeyBytes(clientKey({ class: 1, address: Buffer.from('a') }, 'bc'));
    assert.notDeepEqual(a, b);
  });
});
