// The splice on its own, over real loopback sockets, both of them: the
// kernel splice (splice-pump.ts over native/splice_pump.h, the default) and
// the splice in Node (splice.ts). Every octet arrives intact and in order both
// ways (while the buffers of the Node splice's endpoint direction are
// reused), a slow reader holds the other side back instead of filling
// memory, a FIN crosses in either direction while the other keeps going,
// octets the endpoint sends before the splice begins and octets the client
// sends before it are not lost, a reset of either side ends the call, an idle
// call is closed; the kernel splice also: a close from JS, many calls at
// once, and the pump's close with calls open (no fd left behind).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, createServer, type NetConnectOpts, type Server, type Socket } from 'node:net';

import { readdirSync } from 'node:fs';

import { EndpointReads, MAX_READ, MIN_READ, nextReadSize, splice, type SpliceResult } from '../../src/frontend/splice';
import { type SplicedCall, SplicePump } from '../../src/frontend/splice-pump';
import { addonOrSkip } from '../helpers/addon';

/** Deterministic, non-repeating octets (so a reused buffer that leaked old data would show). */
function pattern(n: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function listen(handler: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer({ allowHalfOpen: true }, handler);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

/** Writes all of `data` with the writer's own backpressure; ends it if asked. */
function writeAll(s: Socket, data: Buffer, end: boolean, chunk = 1 << 16): Promise<{ sawBackpressure: boolean }> {
  return new Promise((resolve) => {
    let off = 0;
    let sawBackpressure = false;
    const pump = () => {
      while (off < data.length) {
        const part = data.subarray(off, off + chunk);
        off += part.length;
        if (!s.write(part)) {
          sawBackpressure = true;
          s.once('drain', pump);
          return;
        }
      }
      if (end) s.end();
      resolve({ sawBackpressure });
    };
    pump();
  });
}

function collect(s: Socket): Promise<Buffer> {
  const parts: Buffer[] = [];
  s.on('data', (d) => parts.push(d));
  return new Promise((resolve) => s.once('end', () => resolve(Buffer.concat(parts))));
}

describe('splice', () => {
  it('sizes the endpoint reads to the traffic, within its bounds', () => {
    const cases: [n: number, size: number, next: number][] = [
      [1, MIN_READ, MIN_READ], // a small read keeps the smallest buffer
      [MIN_READ, MIN_READ, 2 * MIN_READ], // a full read doubles it
      [MAX_READ, MAX_READ, MAX_READ], // never beyond the largest
      [5000, MAX_READ, 8192], // a partial read shrinks it to the power of two that holds it
      [40_000, MAX_READ, MAX_READ],
      [100, 32_768, MIN_READ],
    ];
    for (const [n, size, next] of cases) assert.equal(nextReadSize(n, size), next, `after ${n} octets into ${size}`);
  });
});

for (const mode of ['kernel', 'node'] as const) describe(`splice in ${mode}`, function () {
  this.timeout(60_000);
  const servers: Server[] = [];
  let pump: SplicePump | undefined;
  before(function () {
    if (mode === 'kernel') addonOrSkip(this);
  });
  beforeEach(() => {
    pump = mode === 'kernel' ? new SplicePump() : undefined;
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    await pump?.close();
  });

  /** Starts the splice of a connected call, as Frontend.startSplice does (no preamble answer, nothing after the identity). */
  function start(c: Socket, u: Socket, reads: EndpointReads, idleMs: number): SplicedCall {
    if (pump) {
      const call = pump.take(c, u, reads, undefined, Buffer.alloc(0), idleMs);
      assert.ok(call, 'both sockets have an fd');
      return call;
    }
    return { done: splice(c, u, reads, idleMs), close: () => (c.destroy(), u.destroy()) };
  }

  /**
   * A front that splices each accepted connection to the endpoint at `endpointPort`;
   * `delayMs` waits between connecting and splicing (octets the endpoint or
   * the client sends meanwhile must survive).
   */
  async function front(endpointPort: number, opts: { idleMs?: number; delayMs?: number } = {}) {
    const results: Promise<SpliceResult>[] = [];
    const calls: SplicedCall[] = [];
    const clientSides: Socket[] = [];
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => (started = r));
    const { server, port } = await listen((c) => {
      c.pause();
      clientSides.push(c);
      const reads = new EndpointReads();
      const u = connect({ host: '127.0.0.1', port: endpointPort, allowHalfOpen: true, onread: reads.onread, noDelay: true } as NetConnectOpts);
      u.on('error', () => u.destroy()); // before the splice (an endpoint closed at the end of a test)
      u.once('connect', () => {
        const go = () => {
          const call = start(c, u, reads, opts.idleMs ?? 30_000);
          calls.push(call);
          results.push(call.done);
          started();
        };
        if (opts.delayMs) setTimeout(go, opts.delayMs);
        else go();
      });
    });
    servers.push(server);
    return { port, results, calls, clientSides, firstStarted };
  }

  it('carries 24 MiB each way intact, with a client that reads slowly, and counts the octets', async () => {
    const up = pattern(24 << 20, 7);
    const down = pattern(24 << 20, 11);
    let endpointGot: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
    let endpointBackpressure: Promise<{ sawBackpressure: boolean }> = Promise.resolve({ sawBackpressure: false });
    const ep = await listen((s) => {
      endpointGot = collect(s);
      endpointBackpressure = writeAll(s, down, true);
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    await new Promise((r) => client.once('connect', r));
    // read nothing for a while: the endpoint must be held back, not buffered in the front
    client.pause();
    const sending = writeAll(client, up, true);
    await new Promise((r) => setTimeout(r, 400));
    // the Node splice's buffer toward the client; the kernel splice holds at most a pipe (64 KiB) per direction
    const held = fe.clientSides[0].writableLength;
    assert.ok(held <= 1 << 20, `the front holds ${held} octets for a client that does not read`);
    const got = collect(client);
    // read in small sips with pauses, so writes to the client often queue and buffers are not reused
    let sips = 0;
    client.on('data', () => {
      if (++sips % 50 === 0) {
        client.pause();
        setTimeout(() => client.resume(), 5);
      }
    });
    client.resume();
    const [down2, , bp] = await Promise.all([got, sending, endpointBackpressure]);
    assert.equal(down2.length, down.length);
    assert.equal(sha(down2), sha(down), 'the endpoint-to-client octets arrived intact and in order');
    assert.ok(bp.sawBackpressure, 'the slow client held the endpoint back');
    const up2 = await endpointGot;
    assert.equal(sha(up2), sha(up), 'the client-to-endpoint octets arrived intact and in order');
    client.end();
    const r = await fe.results[0];
    assert.equal(r.bytesFromClient, up.length);
    assert.equal(r.bytesToClient, down.length);
    assert.equal(r.reason, 'closed');
  });

  it('never reads into a buffer that a queued write to the client still holds', async () => {
    // small, spaced writes make small reads (below the client's high-water mark),
    // whose writes queue behind each other while the client does not read
    const down = pattern(24 << 20, 13); // more than the kernel buffers between the front and the client hold
    const ep = await listen((s) => {
      let off = 0;
      const step = () => {
        while (off < down.length) {
          const part = down.subarray(off, off + 3000);
          off += part.length;
          if (!s.write(part)) return void s.once('drain', () => setImmediate(step));
          return void setImmediate(step); // one write per turn: the front reads each on its own
        }
        s.end();
      };
      step();
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    client.pause();
    await new Promise((r) => setTimeout(r, 500));
    const got = collect(client);
    client.resume();
    assert.equal(sha(await got), sha(down), 'the octets arrived intact and in order');
    client.end();
    await fe.results[0];
  });

  it('carries a FIN from the endpoint while the client keeps sending, and the other way round', async () => {
    // the endpoint says its piece and ends at once, then reads everything the client sends
    const said = pattern(300_000, 3);
    const more = pattern(2 << 20, 5);
    let endpointGot!: Promise<Buffer>;
    const ep = await listen((s) => {
      endpointGot = collect(s);
      s.end(said);
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    const got = collect(client); // resolves on the endpoint's FIN
    const down = await got;
    assert.equal(sha(down), sha(said));
    assert.ok(!client.destroyed && client.writable, 'the client can still send after the endpoint finished');
    await writeAll(client, more, true);
    assert.equal(sha(await endpointGot), sha(more));
    const r = await fe.results[0];
    assert.equal(r.reason, 'closed');
    assert.equal(r.bytesFromClient, more.length);
  });

  it('keeps what the endpoint sent before the splice began', async () => {
    const greeting = pattern(200_000, 9); // more than one read buffer
    const ep = await listen((s) => {
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
      s.write(greeting);
    });
    servers.push(ep.server);
    const fe = await front(ep.port, { delayMs: 150 });
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    const got = collect(client);
    await new Promise((r) => setTimeout(r, 300));
    client.end(Buffer.from('bye'));
    const all = await got;
    assert.equal(sha(all.subarray(0, greeting.length)), sha(greeting), 'the early octets came first and whole');
    assert.equal(all.subarray(greeting.length).toString(), 'bye');
    assert.equal((await fe.results[0]).reason, 'closed');
  });

  it('closes a call idle for the idle time-out, and says so', async () => {
    const ep = await listen((s) => s.on('error', () => s.destroy()));
    servers.push(ep.server);
    const fe = await front(ep.port, { idleMs: 250 });
    const t0 = Date.now();
    const client = connect({ host: '127.0.0.1', port: fe.port });
    client.on('error', () => undefined);
    await new Promise((r) => client.once('close', r));
    const r = await fe.results[0];
    const took = Date.now() - t0;
    assert.equal(r.reason, 'idleTimeout');
    assert.ok(took >= 230, `closed after ${took} ms`);
  });

  it('carries a FIN from the client while the endpoint keeps sending', async () => {
    const asked = pattern(100_000, 21);
    const answer = pattern(3 << 20, 23);
    const endpointGot = deferred<Buffer>();
    const ep = await listen((s) => {
      // reads the client's whole question (up to its FIN), then answers at length and ends
      void collect(s).then((b) => {
        endpointGot.resolve(b);
        return writeAll(s, answer, true);
      });
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    const got = collect(client);
    await writeAll(client, asked, true);
    assert.equal(sha(await endpointGot.promise), sha(asked), 'the client\'s octets, then its FIN, reached the endpoint');
    assert.equal(sha(await got), sha(answer), 'the endpoint went on sending after the client\'s FIN');
    const r = await fe.results[0];
    assert.deepEqual(r, { bytesFromClient: asked.length, bytesToClient: answer.length, reason: 'closed' });
  });

  it('keeps what the client sent before the splice began', async () => {
    const said = pattern(150_000, 25);
    const endpointGot = deferred<Buffer>();
    const ep = await listen((s) => {
      void collect(s).then(endpointGot.resolve);
      s.end();
    });
    servers.push(ep.server);
    // the front has read (some of) these into Node's buffer of the client socket before it splices
    const fe = await front(ep.port, { delayMs: 200 });
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    client.resume();
    await writeAll(client, said, true);
    assert.equal(sha(await endpointGot.promise), sha(said), 'every octet, in order');
    assert.equal((await fe.results[0]).bytesFromClient, said.length);
  });

  /** A call through a front end whose endpoint greets with 'hello', once the greeting reached the client (spliced and carrying). */
  async function greetedCall() {
    let endpoint!: Socket;
    const endpointEnded = deferred<void>();
    const ep = await listen((s) => {
      endpoint = s;
      void ended(s).then(endpointEnded.resolve);
      s.write('hello');
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
    const clientEnded = ended(client);
    await new Promise((r) => client.once('data', r));
    return { fe, client, clientEnded, endpoint: () => endpoint, endpointEnded: endpointEnded.promise };
  }

  for (const side of ['client', 'endpoint'] as const) {
    it(`ends the call on a reset from the ${side}, and says so`, async () => {
      const { fe, client, clientEnded, endpoint, endpointEnded } = await greetedCall();
      if (side === 'client') client.resetAndDestroy();
      else endpoint().resetAndDestroy();
      const r = await fe.results[0];
      assert.equal(r.reason, 'error');
      // the other side's connection ends too
      await (side === 'client' ? endpointEnded : clientEnded);
    });
  }

  it('closes a call when asked (live-split repair), and says so', async () => {
    const { fe, client, clientEnded, endpointEnded } = await greetedCall();
    client.write('abc');
    await fe.firstStarted;
    await new Promise((r) => setTimeout(r, 50));
    fe.calls[0].close();
    const r = await fe.results[0];
    assert.equal(r.reason, 'closed');
    assert.equal(r.bytesToClient, 5);
    await Promise.all([clientEnded, endpointEnded]); // both connections end
  });

  it('carries many calls at once, each intact', async () => {
    const n = 40;
    const ep = await listen((s) => {
      // an echo
      s.on('data', (d) => s.write(d));
      s.on('end', () => s.end());
    });
    servers.push(ep.server);
    const fe = await front(ep.port);
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const data = pattern(256 << 10, 100 + i);
        const client = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
        const got = collect(client);
        await writeAll(client, data, true);
        assert.equal(sha(await got), sha(data), `call ${i} intact`);
      }),
    );
    const results = await Promise.all(fe.results);
    assert.equal(results.length, n);
    for (const r of results) assert.deepEqual(r, { bytesFromClient: 256 << 10, bytesToClient: 256 << 10, reason: 'closed' });
    const st = pump?.stats();
    if (st) {
      // every pipe went back to the pool when its call ended (up to the pool's 64), none was left with a call
      assert.equal(st.callsOpen, 0);
      assert.ok(st.pipesCreated > 0);
      assert.equal(st.pipesPooled, Math.min(st.pipesCreated, 64));
    }
  });

  if (mode === 'kernel') {
    it('closes every open call when the pump closes, and leaves no fd behind', async () => {
      const ep = await listen((s) => {
        s.on('error', () => undefined);
        s.on('data', (d) => s.write(d));
        s.on('end', () => s.destroy());
      });
      servers.push(ep.server);
      const fe = await front(ep.port);
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      const clients = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const c = connect({ host: '127.0.0.1', port: fe.port, allowHalfOpen: true });
          const closed = ended(c);
          c.write('ping');
          await new Promise((r) => c.once('data', r)); // spliced both ways
          return { c, closed };
        }),
      );
      assert.equal(pump!.size, 20);
      assert.ok(fds() > before);
      await pump!.close();
      const results = await Promise.all(fe.results);
      assert.ok(results.every((r) => r.reason === 'closed' && r.bytesFromClient === 4 && r.bytesToClient === 4));
      await Promise.all(clients.map((x) => x.closed)); // each client saw its call end
      for (const x of clients) x.c.destroy();
      // the endpoint's sockets close as their peers (the pump's) went away
      const end = Date.now() + 10_000;
      while (fds() !== before && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      assert.equal(fds(), before, 'every fd of the calls and of the pump is closed');
      // a call handed over after the close is closed at once
      const late = connect({ host: '127.0.0.1', port: fe.port });
      late.on('error', () => undefined);
      await new Promise((r) => late.once('close', r));
      assert.equal((await fe.results[20]).reason, 'closed');
    });
  }
});

/** Resolves when the socket's connection ends (FIN, reset or close); the socket is paused-safe (it reads). */
function ended(s: Socket): Promise<void> {
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  return new Promise((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
