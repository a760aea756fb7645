// Tunnel attributes per endpoint, the reply FreeRADIUS applies, the secret
// files, and the radius section of the configuration.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, loadConfigFile, resolveConfig } from '../../src/daemon/config';
import { readSecretFile } from '../../src/radius/secret-file';
import { replyJson, tunnelAttributes, TunnelTable } from '../../src/radius/tunnel-attributes';

describe('radius: tunnel attributes and their configuration', () => {
  let dir = '';
  before(() => (dir = mkdtempSync(join(tmpdir(), 'affinityd-tunnel-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = (name: string, content: string | Buffer, mode = 0o600) => {
    const f = join(dir, name);
    writeFileSync(f, content);
    chmodSync(f, mode);
    return f;
  };

  it('defaults: L2TP, the medium of the address family, the address as the server endpoint, nothing else', () => {
    assert.deepEqual(tunnelAttributes({ address: '198.51.100.10' }), { type: 'L2TP', medium: 'IPv4', serverEndpoint: '198.51.100.10' });
    assert.deepEqual(tunnelAttributes({ address: '2001:db8::7' }), { type: 'L2TP', medium: 'IPv6', serverEndpoint: '2001:db8::7' });
  });

  it('the reply: one tagged group, set (:=) and never expanded; backslashes doubled for FreeRADIUS; tag 0 untagged', () => {
    const t = tunnelAttributes({ address: '198.51.100.10' }, { serverEndpoint: 'lns1.example.net', assignmentId: 'pool\\a', preference: 5, clientAuthId: 'lac', serverAuthId: 'lns' }, 's3cr%{et}');
    assert.deepEqual(replyJson(t, 1), {
      'reply:Tunnel-Type:1': { op: ':=', do_xlat: false, value: 'L2TP' },
      'reply:Tunnel-Medium-Type:1': { op: ':=', do_xlat: false, value: 'IPv4' },
      'reply:Tunnel-Server-Endpoint:1': { op: ':=', do_xlat: false, value: 'lns1.example.net' },
      'reply:Tunnel-Assignment-Id:1': { op: ':=', do_xlat: false, value: 'pool\\\\a' },
      'reply:Tunnel-Preference:1': { op: ':=', do_xlat: false, value: 5 },
      'reply:Tunnel-Password:1': { op: ':=', do_xlat: false, value: 's3cr%{et}' },
      'reply:Tunnel-Client-Auth-Id:1': { op: ':=', do_xlat: false, value: 'lac' },
      'reply:Tunnel-Server-Auth-Id:1': { op: ':=', do_xlat: false, value: 'lns' },
    });
    assert.deepEqual(Object.keys(replyJson(tunnelAttributes({ address: '192.0.2.1' }), 0)), ['reply:Tunnel-Type', 'reply:Tunnel-Medium-Type', 'reply:Tunnel-Server-Endpoint']);
  });

  it('the table reads password files, maps server endpoints back, and never describes a password', () => {
    const pw = secret('lns-a.secret', 'tunnel-secret-A\n');
    const t = new TunnelTable([
      { name: 'lns-a', address: '198.51.100.10', port: 1701, tunnel: { passwordFile: pw, serverEndpoint: 'LNS-A.example.net' } },
      { name: 'lns-b', address: '198.51.100.11', port: 1701 },
    ]);
    assert.equal(t.attributes({ address: '198.51.100.10', port: 1701 })?.password, 'tunnel-secret-A');
    assert.equal(t.attributes({ address: '198.51.100.10', port: 1702 }), undefined);
    assert.equal(t.endpointFor('lns-a.example.net ')?.name, 'lns-a');
    assert.equal(t.endpointFor('198.51.100.11')?.name, 'lns-b');
    assert.doesNotMatch(JSON.stringify(t.describe()), /tunnel-secret-A/);
  });

  it('secret files: mode, size, text; an error names the file, never the content', () => {
    assert.equal(readSecretFile(secret('ok', 'abc\r\n'), 'x', 1, 10), 'abc');
    const cases: [string, RegExp][] = [
      [secret('open', 'hunter2-secret', 0o644), /accessible to group or others \(mode 644\)/],
      [secret('empty', '\n'), /1 to 10 octets \(the file holds 0\)/],
      [secret('long', 'hunter2-secret'), /1 to 10 octets \(the file holds 14\)/],
      [secret('binary', Buffer.from([0x68, 0xff, 0x32])), /not UTF-8/],
      [secret('twolines', 'hunter2\nx'), /control character/],
      [join(dir, 'missing'), /cannot read the x file: ENOENT/],
    ];
    for (const [file, why] of cases) {
      assert.throws(() => readSecretFile(file, 'x', 1, 10), (e: Error) => why.test(e.message) && !/hunter2/.test(e.message), file);
    }
  });

  it('the radius section: defaults, and each bad setting named with its reason', () => {
    const c = resolveConfig({ node: { id: 1 } });
    assert.deepEqual(c.radius, {
      enabled: false, listen: { address: '127.0.0.1', port: 9148 }, tokenFile: '', maxRequestOctets: 65536, answerTimeoutMs: 1500, badRequest: 'reject',
      username: { realm: 'keep', realmFormat: 'suffix', realmDelimiter: '@' }, discriminator: { class: 'none', attribute: 'Calling-Station-Id' },
      tunnelTag: 1, accounting: { releaseGraceSeconds: 60 },
    });
    const problems = (input: unknown) => {
      try {
        resolveConfig({ node: { id: 1 }, ...(input as object) });
      } catch (e) {
        return (e as ConfigError).problems;
      }
      return [];
    };
    assert.deepEqual(problems({ radius: { enabled: true, listen: { address: '10.0.0.5' } } }), [
      'radius.tokenFile: required when radius.listen.address is not a loopback address (anyone who reaches the API could place clients)',
    ]);
    assert.deepEqual(problems({ radius: { enabled: true, listen: { address: '10.0.0.5' }, tokenFile: '/etc/affinityd/radius.token' } }), []);
    assert.deepEqual(problems({ radius: { discriminator: { class: 'phone' }, badRequest: 'maybe', tunnelTag: 32, colour: 1 } }), [
      'radius.colour: unknown setting',
      'radius.badRequest: must be one of reject, accept',
      'radius.discriminator.class: must be one of none, locally-assigned, ipv4-address, ieee-802-address, directory-number',
      'radius.tunnelTag: must be <= 31',
    ]);
    assert.deepEqual(problems({ endpoints: [{ address: '198.51.100.10', port: 1701, tunnel: { type: 'SSH', preference: -1 } }] }), [
      'endpoints.0.tunnel.type: must be one of PPTP, L2F, L2TP, ATMP, VTP, AH, IP, MIN-IP, ESP, GRE, DVS, IP-in-IP',
      'endpoints.0.tunnel.preference: must be >= 0',
    ]);
    assert.deepEqual(problems({ endpoints: [{ address: '198.51.100.10', port: 1701, tunnel: { medium: 'IPv6', assignmentId: 'a\tb' } }] }), [
      'endpoints.0.tunnel.assignmentId: at most 252 octets, no control characters',
      'endpoints.0.tunnel.medium: IPv6 does not fit the address 198.51.100.10; set tunnel.serverEndpoint too',
    ]);
  });

  it('check-config reads the token and password files of an enabled API', () => {
    const key = secret('cluster.key', `1 ${'ab'.repeat(32)} send\n`);
    const open = secret('lns.secret', 'secret-for-lns', 0o640);
    const file = join(dir, 'a.yaml');
    writeFileSync(
      file,
      [
        'node: { id: 1 }',
        `cluster: { keyFile: ${key} }`,
        'endpoints:',
        `  - { name: lns-a, address: 198.51.100.10, port: 1701, tunnel: { passwordFile: ${open} } }`,
        `radius: { enabled: true, tokenFile: ${join(dir, 'no-token')} }`,
      ].join('\n'),
    );
    assert.throws(() => loadConfigFile(file), (e: ConfigError) => {
      assert.equal(e.problems.length, 2);
      assert.match(e.problems[0], /^radius.tokenFile: .*no-token: cannot read the token file: ENOENT/);
      assert.match(e.problems[1], /^endpoints.0.tunnel.passwordFile: .*accessible to group or others/);
      return !/secret-for-lns/.test(e.message);
    });
  });
});
