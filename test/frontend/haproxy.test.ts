// A real HAProxy (Debian package) in front of a node, sending PROXY v2: the
// node takes the client's identity from it (source address as the
// discriminator, username from the unique-id TLV), and counts HAProxy's
// health checks (PROXY LOCAL) as such.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import type { AffinityNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { startCluster, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { until } from '../helpers/loopback';
import { haveCommand, requireOrSkip } from '../helpers/require';

const freePort = (): Promise<number> =>
  new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });

function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.on('data', (d) => {
      resolve(d.toString().trim());
      s.destroy();
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('no greeting through HAProxy')));
  });
}

describe('a real HAProxy in front of a node (PROXY v2)', function () {
  this.timeout(30_000);
  let haproxy: ChildProcess | undefined;
  let node: AffinityNode | undefined;
  let endpoints: TestEndpoint[] = [];
  let dir = '';

  before(function () {
    addonOrSkip(this);
    requireOrSkip(this, haveCommand('haproxy'), 'haproxy is not installed: apt-get install haproxy');
  });
  after(async () => {
    haproxy?.kill('SIGKILL');
    await node?.close();
    endpoints.forEach((e) => e.server.close());
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('takes the identity from the PROXY v2 header and TLV, and counts health checks', async () => {
    endpoints = await Promise.all(['lns-a', 'lns-b'].map(startEndpoint));
    const c = await startCluster(1, endpoints, () => ({
      frontends: [{ listen: { address: '127.0.0.1', port: 0 }, identity: 'proxy-v2', usernameTlv: 0x05 }],
    }));
    node = c.nodes[0];
    const nodePort = node.frontends[0].address()!.port;
    const listen = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'affinityd-haproxy-'));
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        '  maxconn 100',
        'defaults',
        '  mode tcp',
        '  timeout connect 2s',
        '  timeout client 10s',
        '  timeout server 10s',
        'frontend calls',
        `  bind 127.0.0.1:${listen}`,
        '  unique-id-format dave@isp.example',
        '  default_backend affinityd',
        'backend affinityd',
        `  server node1 127.0.0.1:${nodePort} send-proxy-v2 proxy-v2-options unique-id check check-send-proxy inter 200`,
        '',
      ].join('\n'),
    );
    haproxy = spawn('haproxy', ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    haproxy.stderr!.on('data', (d) => (err += d));
    await until(() => {
      try {
        return node!.frontends[0].counters.proxyHealthChecks > 0;
      } catch {
        return false;
      }
    }, 10_000, `HAProxy health checks (haproxy says: ${err})`);

    const first = await greeting(listen);
    const second = await greeting(listen);
    assert.match(first, /^endpoint lns-[ab]$/);
    assert.equal(second, first, 'the same client, the same endpoint');
    const entry = node.directory.lookup(clientKeyBytes(parseClientKey('2:127.0.0.1/dave@isp.example')));
    assert.ok(entry, 'the key came from the PROXY source address and the unique-id TLV');
    assert.equal(`endpoint ${entry.endpoint.name}`, first);
    const k = node.frontends[0].counters;
    assert.equal(k.identified, 2);
    assert.ok(k.proxyHealthChecks >= 1);
    assert.deepEqual(k.refused, {});
  });
});
