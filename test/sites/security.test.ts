// Reaching Redis safely: an ACL user with only what the site directory
// needs (docs/sites.md gives the line), a wrong password and a user without
// the scripts are reported as the reason Redis is down, the password file
// follows the cluster key's mode rule, and TLS (Debian 12's redis-server is
// built with it) with the CA to trust, with and without client
// certificates.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ConfigError, resolveConfig } from '../../src/daemon/config';
import { RedisSiteDirectory } from '../../src/sites/redis-site-directory';
import { loadSiteSecrets } from '../../src/sites/site-secrets';
import { RedisServer, type RedisServerOptions, redisHasTls, redisUnavailable } from '../helpers/redis-server';
import { haveCommand, requireOrSkip } from '../helpers/require';
import { clientOf, entry, SITE_ACL, siteOptions, startSite, type TestSiteOptions, until } from '../helpers/sites';


describe('site directory: AUTH, ACL, TLS, the password file', function () {
  this.timeout(60_000);
  let dir = '';
  const servers: RedisServer[] = [];
  const sites: RedisSiteDirectory[] = [];
  const server = async (o: Omit<RedisServerOptions, 'dir'>) => {
    const s = await RedisServer.start({ dir, ...o });
    servers.push(s);
    return s;
  };
  const site = async (t: TestSiteOptions) => {
    const d = await startSite(t);
    sites.push(d);
    return d;
  };
  /** A directory that should not come up: started, and its state after a few probes. */
  const failing = async (t: TestSiteOptions) => {
    const d = new RedisSiteDirectory(siteOptions(t));
    sites.push(d);
    d.start();
    await until(() => d.state.state === 'down' && d.state.reason !== 'connecting' && d.counters.downs === 0 && (d.lastFailure !== undefined || d.counters.errors.server > 1), 10_000, 'a reason');
    await new Promise((r) => setTimeout(r, 500));
    return d;
  };
  const secretFile = (text: string, mode: number) => {
    const f = join(dir, `secret-${Math.random()}`);
    writeFileSync(f, text);
    chmodSync(f, mode);
    return f;
  };

  before(function () {
    const why = redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-sec-'));
  });

  afterEach(async () => {
    for (const s of sites.splice(0)) await s.close();
    for (const s of servers.splice(0)) await s.kill();
  });

  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('works as an ACL user with only the documented permissions', async () => {
    assert.ok(readFileSync(join(__dirname, '..', '..', 'docs', 'sites.md'), 'utf8').includes(`ACL SETUSER affinityd on >PASSWORD ${SITE_ACL}`), 'docs/sites.md gives this ACL rule');
    const r = await server({ args: ['--user', 'affinityd', 'on', '>s3cret-pass', ...SITE_ACL.split(' '), '--user', 'default', 'off'] });
    const password = loadSiteSecrets(resolveConfig({ node: { id: 1 }, sites: { redis: { passwordFile: secretFile('s3cret-pass\n', 0o600) } } }).sites).password;
    assert.equal(password, 's3cret-pass');
    const d = await site({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: r.port }], username: 'affinityd', secrets: { password } });
    const c = clientOf(1, 'acl');
    assert.equal((await d.claim([entry(c, 'lns-a')]))[0].outcome, 'won');
    assert.equal((await d.publish(entry(c, 'lns-b', 2, 1))).outcome, 'stored');
    assert.equal((await d.lookup([entry(c, 'lns-a').clientKey]))[0].outcome, 'found');
    // and nothing more: the user cannot touch other keys or run other commands
    const out = execFileSync('redis-cli', ['-p', String(r.port), '--user', 'affinityd', '--pass', 's3cret-pass', '--no-auth-warning', 'SET', 'other:key', 'x'], { encoding: 'utf8' });
    assert.match(out, /NOPERM/);
    const flush = execFileSync('redis-cli', ['-p', String(r.port), '--user', 'affinityd', '--pass', 's3cret-pass', '--no-auth-warning', 'FLUSHALL'], { encoding: 'utf8' });
    assert.match(flush, /NOPERM/);
  });

  it('says why Redis is down: a wrong password, a user without the scripts', async () => {
    const r = await server({
      args: ['--user', 'affinityd', 'on', '>right', ...SITE_ACL.split(' '), '--user', ...'weak on >weak ~affinityd:* -@all +ping +hello +client|setname +client|tracking +get'.split(' '), '--user', 'default', 'off'],
    });
    const wrong = await failing({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: r.port }], username: 'affinityd', secrets: { password: 'wrong' } });
    assert.equal(wrong.state.state, 'down');
    assert.match((wrong.state as { reason: string }).reason, /WRONGPASS/);
    const [o] = await wrong.claim([entry(clientOf(2, 'acl'), 'lns-a')]);
    assert.deepEqual(o.outcome === 'site-local' && o.reason, 'down');
    const weak = await failing({ site: 'north', nodeId: 2, nodes: [{ host: '127.0.0.1', port: r.port }], username: 'weak', secrets: { password: 'weak' } });
    assert.equal(weak.state.state, 'down');
    assert.match((weak.state as { reason: string }).reason, /NOPERM/);
  });

  it('counts no connection error at a start with Redis up; logs once when the reason it is down changes', async () => {
    const args = (pw: string) => ['--user', 'affinityd', 'on', `>${pw}`, ...SITE_ACL.split(' '), '--user', 'default', 'off'];
    const r = await server({ args: args('right') });
    const warns: { o: Record<string, unknown>; msg: string }[] = [];
    const log = { info() {}, warn: (o: object, msg: string) => void warns.push({ o: o as Record<string, unknown>, msg }) };
    const d = new RedisSiteDirectory({ ...siteOptions({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: r.port }], username: 'affinityd', secrets: { password: 'right' } }), log });
    sites.push(d);
    d.start();
    await until(() => d.state.state === 'up', 10_000, 'up');
    assert.equal(d.counters.errors.connection, 0, 'no connection error counted at start');
    assert.equal(d.lastFailure, undefined);
    // Redis stops, then comes back refusing the password (its ACL user lost or changed)
    await r.kill();
    await until(() => d.state.state === 'down', 10_000, 'down');
    await server({ port: r.port, args: args('changed') });
    await until(() => d.state.state === 'down' && /WRONGPASS/.test(d.state.reason), 10_000, 'the new reason');
    await new Promise((x) => setTimeout(x, 1000)); // more failed probes: still one line for the change
    const downs = warns.filter((w) => /site directory \(Redis\) down/.test(w.msg));
    const changed = warns.filter((w) => /still down, for another reason/.test(w.msg));
    assert.equal(downs.length, 1, JSON.stringify(warns));
    // each change said once (connection lost -> refused while it was stopped -> WRONGPASS), never a repeat
    assert.match(String(changed.at(-1)?.o.reason), /WRONGPASS/, JSON.stringify(warns));
    assert.equal(new Set(changed.map((w) => w.o.reason)).size, changed.length, JSON.stringify(warns));
    for (const w of changed) assert.notEqual(w.o.reason, w.o.before);
  });

  it('reads the password from a file only if group and others cannot', () => {
    const sites = (passwordFile: string) => resolveConfig({ node: { id: 1 }, sites: { redis: { passwordFile } } }).sites;
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      assert.throws(() => loadSiteSecrets(sites(secretFile('pw\n', mode))), (e: unknown) => e instanceof ConfigError && /accessible to group or others.*chmod 600/.test(e.message));
    }
    assert.equal(loadSiteSecrets(sites(secretFile('pw\n', 0o400))).password, 'pw');
    assert.equal(loadSiteSecrets(sites(secretFile('pw', 0o600))).password, 'pw');
    assert.throws(() => loadSiteSecrets(sites(secretFile('\n', 0o600))), /empty/);
    assert.throws(() => loadSiteSecrets(sites(secretFile('a\nb\n', 0o600))), /more than one line/);
    assert.throws(() => loadSiteSecrets(sites(join(dir, 'missing'))), /cannot read the Redis password file/);
    // a TLS client key has the same rule
    const tls = (keyFile: string) => resolveConfig({ node: { id: 1 }, sites: { redis: { tls: { enabled: true, certFile: secretFile('cert', 0o644), keyFile } } } }).sites;
    assert.throws(() => loadSiteSecrets(tls(secretFile('key', 0o644))), /Redis client key file is accessible to group or others/);
    assert.ok(loadSiteSecrets(tls(secretFile('key', 0o600))).tls?.key);
  });

  describe('TLS', () => {
    let pki: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string };

    before(function () {
      requireOrSkip(this, redisHasTls(), 'this redis-server is built without TLS');
      requireOrSkip(this, haveCommand('openssl'), 'openssl is not installed: apt-get install openssl');
      const f = (n: string) => join(dir, n);
      const ossl = (...a: string[]) => execFileSync('openssl', a, { stdio: 'ignore' });
      const key = (n: string) => ossl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', f(n));
      for (const ca of ['ca', 'other-ca']) {
        key(`${ca}.key`);
        ossl('req', '-x509', '-new', '-key', f(`${ca}.key`), '-out', f(`${ca}.crt`), '-days', '2', '-subj', `/CN=affinityd test ${ca}`);
      }
      writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:redis.test\n');
      for (const [n, ext] of [['server', 'server.ext'], ['client', undefined]] as const) {
        key(`${n}.key`);
        ossl('req', '-new', '-key', f(`${n}.key`), '-out', f(`${n}.csr`), '-subj', `/CN=${n}`);
        ossl('x509', '-req', '-in', f(`${n}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${n}.crt`), '-days', '2', ...(ext ? ['-extfile', f(ext)] : []));
        chmodSync(f(`${n}.key`), 0o600);
      }
      pki = { ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key'), otherCa: f('other-ca.crt') };
    });

    const tlsSecrets = (o: { ca?: string; client?: boolean; serverName?: string }) =>
      loadSiteSecrets(
        resolveConfig({
          node: { id: 1 },
          sites: {
            redis: {
              tls: {
                enabled: true,
                caFile: o.ca ?? '',
                certFile: o.client ? pki.clientCert : '',
                keyFile: o.client ? pki.clientKey : '',
                serverName: o.serverName ?? '',
              },
            },
          },
        }).sites,
      );

    it('speaks TLS to a server whose certificate the configured CA signed', async () => {
      const r = await server({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, authClients: false } });
      const d = await site({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.ca }) });
      assert.equal((await d.claim([entry(clientOf(1, 'tls'), 'lns-a')]))[0].outcome, 'won');
      // the server name is checked: a name the certificate has works, another does not
      await site({ site: 'north', nodeId: 2, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.ca, serverName: 'redis.test' }) });
      const wrongName = await failing({ site: 'north', nodeId: 3, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.ca, serverName: 'elsewhere.test' }) });
      assert.match((wrongName.state as { reason: string }).reason, /altnames|does not match|Hostname/i);
      // a CA that did not sign it: refused, and said so
      const untrusted = await failing({ site: 'north', nodeId: 4, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.otherCa }) });
      assert.match((untrusted.state as { reason: string }).reason, /certificate/i);
      // plain TCP to a TLS port never comes up
      const plain = await failing({ site: 'north', nodeId: 5, nodes: [{ host: '127.0.0.1', port: r.port }] });
      assert.equal(plain.state.state, 'down');
    });

    it('presents a client certificate to a server that asks for one', async () => {
      const r = await server({ tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, authClients: true } });
      const d = await site({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.ca, client: true }) });
      assert.equal((await d.claim([entry(clientOf(2, 'tls'), 'lns-b')]))[0].outcome, 'won');
      const without = await failing({ site: 'north', nodeId: 2, nodes: [{ host: '127.0.0.1', port: r.port }], secrets: tlsSecrets({ ca: pki.ca }) });
      assert.equal(without.state.state, 'down');
      assert.equal(without.counters.ups, 0);
    });
  });
});
