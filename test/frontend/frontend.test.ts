// Front ends against bad and slow clients and endpoints: every case gets a
// clear answer or a counted close, and the node keeps serving everyone else.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';

import { IPv4Address, IPv4ProxyAddress, TransportProtocol, Command, V2ProxyProtocol } from 'proxy-protocol-js';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import type { AffinityNode } from '../../src/daemon/create-node';
import { CallStatus, decodeCallResponse, encodeCallRequest, PREAMBLE_HEADER, preambleLength, REQUEST_MAGIC, RESPONSE_MAGIC } from '../../src/frontend/preamble';
import { addonOrSkip } from '../helpers/addon';
import { call, startCluster, startEndpoint, type TestEndpoint } from '../helpers/cluster';
import { sleep, until } from '../helpers/loopback';

const raw = (port: number, data: Buffer | null, endAfterWrite = false): Promise<{ data: Buffer; closedMs: number }> =>
  new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    s.on('connect', () => {
      if (data) s.write(data);
      if (endAfterWrite) s.end();
    });
    s.on('data', (d) => chunks.push(d));
    s.on('close', () => resolve({ data: Buffer.concat(chunks), closedMs: Date.now() - t0 }));
    s.on('error', reject);
  });

function proxyV2(src: [number, number, number, number], srcPort: number, dstPort: number, tlvs: [number, Buffer][] = [], command = Command.PROXY): Buffer {
  const data = Buffer.concat(tlvs.map(([t, v]) => Buffer.concat([Buffer.from([t, v.length >> 8, v.length & 255]), v])));
  const h = new V2ProxyProtocol(command, TransportProtocol.STREAM, new IPv4ProxyAddress(IPv4Address.createFrom(src), srcPort, IPv4Address.createFrom([127, 0, 0, 1]), dstPort), data).build();
  const b = Buffer.from(h);
  b.writeUInt16BE(b.length - 16, 14); // the length must cover the TLVs
  return b;
}

describe('front ends against bad clients and endpoints', function () {
  this.timeout(30_000);
  let endpoints: TestEndpoint[];
  let node: AffinityNode;
  let refusing: Server;
  let hanging: Server;
  let hangingPort: number;
  let refusingPort: number;
  const fe = (i: number) => node.frontends[i].address()!.port;

  before(async function () {
    addonOrSkip(this);
    endpoints = await Promise.all(['lns-a', 'lns-b'].map(startEndpoint));
    // an address that refuses: a port we bind and close again
    refusing = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => refusing.once('listening', r));
    refusingPort = (refusing.address() as { port: number }).port;
    await new Promise((r) => refusing.close(r));
    // an endpoint that accepts and never says anything
    hanging = createServer((s) => s.on('error', () => s.destroy())).listen(0, '127.0.0.1');
    await new Promise((r) => hanging.once('listening', r));
    hangingPort = (hanging.address() as { port: number }).port;
    const c = await startCluster(1, endpoints, () => ({
      frontends: [
        { listen: { address: '127.0.0.1', port: 0 }, identity: 'preamble', identityTimeoutMs: 300, idleTimeoutMs: 400, maxPreambleOctets: 256 },
        { listen: { address: '127.0.0.1', port: 0 }, identity: 'preamble', redirect: true },
        { listen: { address: '127.0.0.1', port: 0 }, identity: 'peer-address', username: 'by-peer' },
        { listen: { address: '127.0.0.1', port: 0 }, identity: 'proxy-v2', usernameTlv: 0xe0, identityTimeoutMs: 300 },
      ],
    }));
    node = c.nodes[0];
  });
  after(async () => {
    await node?.close();
    endpoints?.forEach((e) => e.server.close());
    hanging?.close();
  });

  const counters = (i = 0) => node.frontends[i].counters;

  it('refuses a connection that does not start with a preamble, and counts it', async () => {
    const r = await raw(fe(0), Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    assert.equal(r.data.length, 0, 'no answer to a stranger');
    assert.equal(counters().refused.malformedPreamble, 1);
  });

  it('refuses an oversized preamble before reading it', async () => {
    const h = Buffer.alloc(PREAMBLE_HEADER);
    REQUEST_MAGIC.copy(h);
    h.writeUInt16BE(60000, 4);
    await raw(fe(0), h);
    assert.equal(counters().refused.oversizePreamble, 1);
  });

  it('answers a preamble with an invalid client key with REJECTED and the reason', async () => {
    // class 2 with a 5-octet address, valid protobuf
    const body = Buffer.from('0a0908021205c000020701', 'hex');
    const h = Buffer.alloc(PREAMBLE_HEADER);
    REQUEST_MAGIC.copy(h);
    h.writeUInt16BE(body.length, 4);
    const r = await call(fe(0), Buffer.concat([h, body]));
    assert.equal(r.response?.status, CallStatus.Rejected);
    assert.match(r.response!.reason!, /class 2 needs 4 octets/);
    assert.equal(counters().refused.badAddressLength, 1);
  });

  it('times out a client that sends nothing, with a REJECTED answer', async () => {
    const r = await raw(fe(0), null);
    assert.ok(r.closedMs >= 250, `closed after ${r.closedMs} ms`);
    assert.equal(r.data.subarray(0, 4).toString(), 'AFCA');
    assert.equal(counters().refused.identityTimeout, 1);
  });

  it('counts a client that connects and closes without a word', async () => {
    const before = counters().clientClosedEarly;
    await raw(fe(0), null, true);
    await until(() => counters().clientClosedEarly === before + 1, 1000, 'the early close');
  });

  it('moves a client off an endpoint that refuses, announces it, and connects it elsewhere', async () => {
    const key = '2:198.51.100.1/refused';
    const k = clientKeyBytes(parseClientKey(key));
    node.directory.apply(k, { endpoint: { address: '127.0.0.1', port: refusingPort, name: 'gone' }, version: 3, originNode: 9, ttlSeconds: 600 });
    const failures = counters().endpointConnectFailures;
    const r = await call(fe(0), key);
    assert.equal(r.response?.status, CallStatus.Accepted);
    assert.match(r.greeting!, /^endpoint lns-[ab]$/);
    assert.equal(counters().endpointConnectFailures, failures + 1);
    assert.equal(node.directory.lookup(k)!.version, 4, 'rerouted with a higher version');
    assert.equal(node.router.counters.rerouted, 1);
  });

  it('closes a call whose endpoint hangs after the idle time-out, and counts it', async () => {
    const key = '2:198.51.100.2/hangs';
    node.directory.apply(clientKeyBytes(parseClientKey(key)), { endpoint: { address: '127.0.0.1', port: hangingPort, name: 'hangs' }, version: 1, originNode: 9, ttlSeconds: 600 });
    const idle = counters().idleTimeouts;
    const t0 = Date.now();
    const r = await call(fe(0), key, { keepOpen: true });
    assert.equal(r.response?.status, CallStatus.Accepted);
    assert.equal(r.greeting, undefined, 'the endpoint never spoke');
    await r.closed;
    const took = Date.now() - t0;
    assert.ok(took >= 380 && took < 3000, `closed after ${took} ms; the idle time-out is 400`);
    // counted once both sides are closed, a moment after the client sees its close
    await until(() => counters().idleTimeouts === idle + 1, 1000, 'the idle time-out to be counted');
  });

  it('keeps serving good clients while bad ones hang around', async () => {
    const silent = [raw(fe(0), null), raw(fe(0), null)];
    const good = await Promise.all(Array.from({ length: 20 }, (_, i) => call(fe(0), `2:203.0.113.${i + 1}/good`)));
    assert.ok(good.every((g) => /^endpoint lns-/.test(g.greeting ?? '')));
    await Promise.all(silent);
  });

  it('carries data both ways with backpressure and half-close', async () => {
    const r = await call(fe(0), '2:203.0.113.200/bulk', { keepOpen: true });
    const s = r.socket;
    const payload = Buffer.alloc(8 << 20, 7);
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    const done = new Promise((res) => s.on('end', res));
    s.end(payload); // half-close: the echo must still come back in full
    await done;
    assert.equal(Buffer.concat(got).length, payload.length);
  });

  it('redirect mode answers with the endpoint and closes', async () => {
    const r = await call(fe(1), '2:203.0.113.7/redirected');
    assert.equal(r.response?.status, CallStatus.Redirect);
    assert.equal(r.response!.endpoint!.address, '127.0.0.1');
    assert.equal(r.greeting, undefined);
    assert.equal(counters(1).redirected, 1);
  });

  it('peer-address mode takes the TCP peer address as the discriminator', async () => {
    const s = connect({ host: '127.0.0.1', port: fe(2) });
    const line = await new Promise<string>((res) => s.on('data', (d) => res(d.toString())));
    s.destroy();
    assert.match(line, /^endpoint lns-/);
    assert.ok(node.directory.lookup(clientKeyBytes(parseClientKey('2:127.0.0.1/by-peer'))));
  });

  it('proxy-v2 mode takes the source address and a TLV username; a LOCAL header is a counted health check; garbage is refused', async () => {
    const s = connect({ host: '127.0.0.1', port: fe(3) });
    s.write(proxyV2([192, 0, 2, 44], 5555, fe(3), [[0xe0, Buffer.from('carol@isp')], [0x04, Buffer.from('x')]]));
    const line = await new Promise<string>((res) => s.on('data', (d) => res(d.toString())));
    s.destroy();
    assert.match(line, /^endpoint lns-/);
    assert.ok(node.directory.lookup(clientKeyBytes(parseClientKey('2:192.0.2.44/carol@isp'))));
    await raw(fe(3), proxyV2([127, 0, 0, 1], 1, 1, [], Command.LOCAL));
    assert.equal(counters(3).proxyHealthChecks, 1);
    await raw(fe(3), Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'));
    assert.equal(counters(3).refused.badProxyHeader, 1);
    await sleep(10);
  });
});

/**
 * The fds of this process a call or the splice pump could leave open: TCP
 * sockets, pipes, epoll and eventfd instances (sorted). The node's UDP
 * sockets are left out: the responder closes them when it is collected.
 */
function callFds(): string[] {
  const tcp = new Set<string>();
  for (const f of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    try {
      for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
        const inode = line.trim().split(/\s+/)[9];
        if (inode) tcp.add(inode);
      }
    } catch {
      // no IPv6
    }
  }
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let l: string;
    try {
      l = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the directory's own fd, closed meanwhile
    }
    const sock = /^socket:\[(\d+)\]$/.exec(l);
    if ((sock && tcp.has(sock[1])) || l.startsWith('pipe:') || l === 'anon_inode:[eventpoll]' || l === 'anon_inode:[eventfd]') out.push(`${fd} ${l}`);
  }
  return out.sort();
}

describe('a node that stops with calls open', function () {
  this.timeout(30_000);

  for (const splice of ['kernel', 'node'] as const) {
    it(`closes them, counts them and leaves no fd behind (splice: ${splice})`, async function () {
      addonOrSkip(this);
      const [ep] = await Promise.all([startEndpoint('lns-a')]);
      const before = callFds();
      const { nodes: [node] } = await startCluster(1, [ep], () => ({ frontends: [{ listen: { address: '127.0.0.1', port: 0 }, identity: 'preamble', splice }] }));
      const port = node.frontends[0].address()!.port;
      const n = 10;
      const calls = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          new Promise<{ ended: Promise<void>; data: Buffer }>((resolve, reject) => {
            const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
            const ping = Buffer.from(`ping-${i}\n`);
            // the preamble and the first octets of the call in one write: those octets reach the endpoint first
            s.on('connect', () => s.write(Buffer.concat([encodeCallRequest(parseClientKey(`2:198.51.100.${i + 1}/open`)), ping])));
            const ended = new Promise<void>((r) => {
              s.once('end', () => r());
              s.once('close', () => r());
            });
            let data = Buffer.alloc(0);
            s.on('data', (d) => {
              data = Buffer.concat([data, d]);
              if (data.subarray(data.length - ping.length).equals(ping)) resolve({ ended, data });
            });
            s.on('error', reject);
            void ended.then(() => s.destroy());
          }),
        ),
      );
      for (const [i, c] of calls.entries()) {
        // the ACCEPTED answer first, then the endpoint's greeting, then the echo of what followed the preamble
        const k = preambleLength(c.data, RESPONSE_MAGIC, 4096);
        assert.equal(decodeCallResponse(c.data.subarray(0, k)).status, CallStatus.Accepted);
        assert.equal(c.data.subarray(k).toString(), `endpoint lns-a\nping-${i}\n`);
      }
      const f = node.frontends[0];
      assert.equal(f.counters.active, n);
      await node.close();
      // every call recorded (counters, access-log line) before close() returns: a daemon exits right after it
      assert.equal(f.counters.active, 0);
      assert.equal(f.counters.spliced, n);
      assert.equal(f.counters.bytesFromClients, n * 'ping-0\n'.length, 'every call reported by the time the node has closed');
      await Promise.all(calls.map((c) => c.ended)); // every client saw its call end
      await until(() => callFds().length === before.length, 10_000, 'the fds to close').catch(() => undefined);
      assert.deepEqual(callFds(), before, 'every TCP socket, pipe, epoll and eventfd of the node and of its calls is closed');
      ep.server.close();
    });
  }
});
