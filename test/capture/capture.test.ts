// `affinityd capture` on real traffic: a capture taken live on loopback while
// two nodes talk, decoded offline, with every frame the nodes counted as sent
// in it; the written file read back by tcpdump and by tshark with the Lua
// dissector; a crafted capture whose summary names a split bundle, a replay
// and a forged tag; a crafted file whose lines show what a node refuses and
// whose bodies (all nine types, several clients per QUERY, REPLY, UPDATE and
// CLAIM) the dissector decodes field by field; the written file readable by
// its owner only; and a clear refusal without the capability to capture.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { encodeFrame } from '../../src/codec/frame';
import { encodeClaim, encodeHello, encodeQuery, encodeReply, encodeUpdate, MessageType, NodeState } from '../../src/codec/messages';
import { encodeSyncRequest, encodeWithdraw, SyncChunkWriter } from '../../src/codec/cluster-messages';
import { writePcap } from '../helpers/pcap-file';
import { addonOrSkip } from '../helpers/addon';
import { frameType, rawSender, sendRaw, sleep, testGroup, testKeyring, TestNode, until } from '../helpers/loopback';
import { haveCommand, isRoot, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const cli = [process.execPath, '--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];

function pcapUnavailable(): string | undefined {
  try {
    require('pcap');
  } catch (e) {
    return `the pcap package is not built (apt-get install libpcap-dev, npm install): ${(e as Error).message.split('\n')[0]}`;
  }
  if (!isRoot()) return 'live capture needs root (or CAP_NET_RAW)';
  return undefined;
}

async function startCapture(args: string[]): Promise<{ child: ChildProcess; stop: () => Promise<number | null>; stdout: () => string; stderr: () => string }> {
  const child = spawn(cli[0], [...cli.slice(1), 'capture', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  await until(() => /capturing on/.test(err) || child.exitCode !== null, 15_000, 'the capture to open');
  if (child.exitCode !== null) throw new Error(`capture failed: ${err}`);
  await sleep(300); // libpcap is reading once it said so; a little margin for the first packets
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    stop: async () => {
      child.kill('SIGINT');
      return exited;
    },
  };
}

const readCapture = (file: string, args: string[]) => {
  const r = spawnSync(cli[0], [...cli.slice(1), 'capture', '-r', file, ...args], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
};

describe('affinityd capture', function () {
  this.timeout(60_000);
  let dir: string;
  let keyFile: string;
  before(function () {
    addonOrSkip(this);
    const why = pcapUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-capture-'));
    keyFile = join(dir, 'cluster.key');
    writeFileSync(keyFile, `1 ${'42'.repeat(32)} send\n`); // testKeyring()'s key
    chmodSync(keyFile, 0o600);
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('captures a running cluster live; decoded offline, every frame the nodes sent is there', async function () {
    requireOrSkip(this, haveCommand('tcpdump'), 'tcpdump is not installed (apt-get install tcpdump)');
    requireOrSkip(this, haveCommand('tshark'), 'tshark is not installed (apt-get install tshark)');
    const net = testGroup();
    const file = join(dir, 'live.pcap');
    const a = new TestNode(1, net, testKeyring());
    const b = new TestNode(2, net, testKeyring());
    const ports = new Set([a.responder.address().port, b.responder.address().port].map(String));
    // the group port and the nodes' own: other tests' frames on loopback stay out of this capture
    const cap = await startCapture(['-i', 'lo', '-w', file, '--filter', `udp and (port ${net.port} or port ${[...ports].join(' or port ')})`]);
    try {
      const alice = parseClientKey('2:192.0.2.7/alice');
      a.store(alice, { address: '198.51.100.10', port: 1701, name: 'lns-1' });
      b.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [alice], queryId: 77, answerRank: 0 }) }]);
      await b.waitFrame((f) => frameType(f) === MessageType.Reply, 3000);
      b.responder.send([{ type: MessageType.Update, body: encodeUpdate({ entries: [{ clientKey: parseClientKey('2:192.0.2.8/bob'), endpoint: { address: '198.51.100.11', port: 1701, name: 'lns-2' }, version: 1, originNode: 2, ttlSeconds: 60 }] }) }]);
      a.responder.send([{ type: MessageType.Query, body: encodeQuery({ keys: [parseClientKey('2:192.0.2.9/nobody')], queryId: 78, answerRank: 0 }) }]);
      await until(() => a.table.lookup(clientKeyBytes(parseClientKey('2:192.0.2.8/bob')), new Uint32Array(5)), 3000, 'the UPDATE');
      await sleep(300);
    } finally {
      a.close();
      b.close();
    }
    const sent = a.responder.stats().sent + b.responder.stats().sent;
    assert.equal(await cap.stop(), 0, `capture ends cleanly on SIGINT; stderr: ${cap.stderr().slice(-2000)}`);
    // it holds client identities: its owner's alone (issue 13, item 8: it was 0644)
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the written capture is mode 0600');

    const lines = readCapture(file, ['--json', '--key-file', keyFile]).trim().split('\n').map((l) => JSON.parse(l));
    // every frame a node sends leaves from its unicast socket: that, not the node id, says it is ours
    // (other tests on this machine may run nodes 1 and 2 on loopback at the same time)
    const ours = lines.filter((l) => ports.has(String(l.src).split(':').pop() ?? ''));
    const distinct = new Set(ours.map((l) => `${l.node}/${l.sequence}`));
    assert.equal(distinct.size, sent, `the nodes sent ${sent} frames; the capture has ${distinct.size}`);
    assert.ok(ours.every((l) => l.auth === 'ok'), 'every tag verifies under the key file');
    const reply = ours.find((l) => l.type === 'REPLY');
    assert.deepEqual([reply.key, reply.endpoint, reply.queryId], ['2:192.0.2.7/alice', 'lns-1=198.51.100.10:1701', 77]);
    assert.ok(ours.some((l) => l.type === 'UPDATE' && l.key === '2:192.0.2.8/bob'));

    const tcpdump = execFileSync('tcpdump', ['-r', file, '-nn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
    assert.equal(tcpdump.length, lines.length, 'tcpdump reads every packet of the written file');
    const tshark = execFileSync('tshark', ['-r', file, '-X', `lua_script:${join(root, 'contrib', 'affinityd.lua')}`, '-Y', 'affinityd', '-T', 'fields', '-e', 'affinityd.type', '-e', 'affinityd.sender'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .trim()
      .split('\n');
    assert.equal(tshark.length, lines.length, 'the dissector recognizes every frame');
    assert.ok(tshark.includes('2\t1'), 'REPLY (type 2) from node 1, by the dissector');
  });

  it('summarizes a crafted capture: a split bundle, a replayed frame and a forged tag', async () => {
    const net = testGroup();
    const file = join(dir, 'crafted.pcap');
    // only this test's group port: the default filter would also catch other tests' frames on loopback
    const cap = await startCapture(['-i', 'lo', '-w', file, '--filter', `udp and dst port ${net.port}`]);
    const s = await rawSender();
    const ring = testKeyring();
    const key = parseClientKey('2:203.0.113.5/split');
    const upd = (node: number, seq: number, ep: number, r = ring) =>
      encodeFrame(
        { type: MessageType.Update, keyId: 1, senderNode: node, bootEpoch: 1, sequence: BigInt(seq), timestampMs: BigInt(Date.now()) },
        encodeUpdate({ entries: [{ clientKey: key, endpoint: { address: `198.51.100.${ep}`, port: 1701, name: `lns-${ep}` }, version: 1, originNode: node, ttlSeconds: 60 }] }),
        r,
      );
    const first = upd(11, 1, 1);
    for (const f of [first, upd(12, 1, 2), first, upd(13, 1, 9, testKeyring(0x99))]) await sendRaw(s, f, net.port, net.group);
    s.close();
    await sleep(300);
    assert.equal(await cap.stop(), 0);
    const out = readCapture(file, ['--summary', '--key-file', keyFile]);
    assert.match(out, /^4 messages/);
    assert.match(out, /split bundles \(one version naming two endpoints\): 1\n {2}2:203\.0\.113\.5\/split: lns-1=198\.51\.100\.1:1701 \(node 11, v1\) vs lns-2=198\.51\.100\.2:1701 \(node 12, v1\)/);
    assert.match(out, /replays: node 11 sequence 1 \(replay\)/);
    assert.match(out, /failed checks: badTag 1/);
  });

  it('a crafted file: each line says what a node would accept or refuse; the dissector shows every body field', function () {
    requireOrSkip(this, haveCommand('tshark'), 'tshark is not installed (apt-get install tshark)');
    const ring = testKeyring();
    const T = Date.now();
    let seq = 0n;
    const fr = (type: number, body: Buffer, s = ++seq) => encodeFrame({ type, keyId: 1, senderNode: 3, bootEpoch: 5, sequence: s, timestampMs: BigInt(T) }, body, ring);
    const alice = parseClientKey('2:192.0.2.7/alice');
    const lns1 = { address: '198.51.100.10', port: 1701, name: 'lns-1' };
    const lns6 = { address: '2001:db8::6', port: 1701, name: 'lns-6' };
    const sync = fr(MessageType.SyncRequest, encodeSyncRequest({ requestId: 9, cursor: 0, maxChunks: 16, bucketCount: 0, buckets: Buffer.alloc(0) }));
    const bob = parseClientKey('3:00:1b:21:3c:4d:5e/bob');
    const carol = parseClientKey('5:5550100/carol');
    const chunk = new SyncChunkWriter(9, 0, 1352);
    chunk.addEntry({ clientKey: bob, endpoint: lns6, version: 2, originNode: 1, ttlSeconds: 60 });
    const entry = (clientKey: typeof alice, endpoint: typeof lns1, version: number) => ({ clientKey, endpoint, version, originNode: 2, ttlSeconds: 60 });
    const frames = [
      fr(MessageType.Query, encodeQuery({ keys: [alice], queryId: 77, answerRank: 0 })),
      fr(MessageType.Reply, encodeReply({ queryId: 77, entries: [{ clientKey: alice, endpoint: lns1, version: 4, originNode: 2, ttlSeconds: 60 }] })),
      sync,
      sync, // the same SYNC_REQUEST again: a node refuses it as a replay
      fr(MessageType.SyncRequest, Buffer.from([0x20, 0xc8, 0x01])), // bucket_count 200: a node counts it malformed
      fr(MessageType.Digest, Buffer.from([0x0a, 0x01, 0x00])), // bucket_count as bytes: breaks the wire rules
      fr(MessageType.SyncChunk, chunk.finish(40, true)),
      fr(MessageType.Withdraw, encodeWithdraw({ clientKey: alice, version: 5, originNode: 3, ttlSeconds: 60 })),
      // the messages about several clients, CLAIM and HELLO (issue 13 item 8: the dissector left them hex)
      fr(MessageType.Query, encodeQuery({ keys: [alice, bob, carol], queryId: 78, answerRank: 2 })),
      fr(MessageType.Reply, encodeReply({ queryId: 78, entries: [entry(alice, lns1, 4), entry(bob, lns6, 2)] })),
      fr(MessageType.Update, encodeUpdate({ entries: [entry(alice, lns1, 5), entry(carol, lns6, 1)] })),
      fr(MessageType.Claim, encodeClaim({ claimId: 31, proposals: [entry(bob, lns1, 1), entry(carol, lns6, 1)] })),
      fr(MessageType.Hello, encodeHello({ state: NodeState.Ready, intervalMs: 500, entries: 12, readyForMs: 1500 })),
      fr(MessageType.Hello, encodeHello({ state: NodeState.Starting, intervalMs: 500, entries: 0 })), // state 0: not written (proto3)
      fr(MessageType.SyncRequest, encodeSyncRequest({ requestId: 10, cursor: 0, maxChunks: 16, bucketCount: 0, buckets: Buffer.alloc(0), answerRank: 1 })),
      fr(MessageType.Hello, Buffer.from([0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00])), // state in a 6-octet varint: breaks the wire rules
    ];
    const file = join(dir, 'crafted-lines.pcap');
    writePcap(file, frames.map((data, i) => ({ src: '10.0.0.3', sport: 7447, dst: '239.255.77.77', dport: 7447, data, timeMs: T + i })));
    const lines = readCapture(file, ['--key-file', keyFile]).trim().split('\n');
    assert.equal(lines.length, frames.length);
    assert.deepEqual(lines.map((l) => /auth (\S+)$/.exec(l)?.[1]), ['ok', 'ok', 'ok', 'replay', 'malformedBody', 'malformedBody', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'malformedBody']);
    assert.match(lines[2], /SYNC_REQUEST rid 9 from 0 x16 /);
    const after = (l: string) => l.replace(/^.* > 239\.255\.77\.77:7447 /, '').replace(/ seq \d+ key 1 auth \S+$/, '');
    assert.deepEqual(lines.slice(8, 15).map(after), [
      'QUERY 2:192.0.2.7/alice (+2 more) qid 78 rank<2',
      'REPLY 2:192.0.2.7/alice (+1 more) -> lns-1=198.51.100.10:1701 v4 qid 78',
      'UPDATE 2:192.0.2.7/alice (+1 more) -> lns-1=198.51.100.10:1701 v5',
      'CLAIM 3:00:1b:21:3c:4d:5e/bob (+1 more) -> lns-1=198.51.100.10:1701 v1 qid 31',
      'HELLO ready, 12 entries, interval 500 ms, ready for 1500 ms',
      'HELLO starting, 0 entries, interval 500 ms',
      'SYNC_REQUEST rid 10 from 0 x16 rank<1',
    ]);
    const hello = JSON.parse(readCapture(file, ['--json', '--key-file', keyFile]).trim().split('\n')[12]);
    assert.deepEqual([hello.type, hello.state, hello.intervalMs, hello.entries, hello.readyForMs, hello.auth], ['HELLO', 'ready', 500, 12, 1500, 'ok']);

    const columns = ['type', 'client', 'endpoint', 'entry.version', 'query_id', 'request_id', 'answer_rank', 'claim_id', 'clients', 'state', 'interval_ms', 'entries', 'ready_for_ms'];
    const fields = execFileSync(
      'tshark',
      ['-r', file, '-X', `lua_script:${join(root, 'contrib', 'affinityd.lua')}`, '-Y', 'affinityd', '-T', 'fields', '-E', 'separator=|',
        ...columns.flatMap((c) => ['-e', `affinityd.${c}`]), '-e', '_ws.expert.message'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
    ).trim().split('\n');
    // type|client|endpoint|entry.version|query_id|request_id|answer_rank|claim_id|clients|state|interval_ms|entries|ready_for_ms|expert
    assert.deepEqual(fields, [
      '1|2:192.0.2.7/alice|||77||||1|||||',
      '2|2:192.0.2.7/alice|lns-1=198.51.100.10:1701|4|77||||1|||||',
      '4|||||9||||||||',
      '4|||||9||||||||',
      '4|||||||||||||', // the dissector checks the wire rules, not the limits (bucket_count 200): affinityd capture does
      '7|||||||||||||malformed body',
      '5|3:00:1b:21:3c:4d:5e/bob|lns-6=[2001:db8::6]:1701|2||9||||||||',
      '6|2:192.0.2.7/alice||5||||||||||',
      '1|2:192.0.2.7/alice,3:00:1b:21:3c:4d:5e/bob,5:5550100/carol|||78||2||3|||||',
      '2|2:192.0.2.7/alice,3:00:1b:21:3c:4d:5e/bob|lns-1=198.51.100.10:1701,lns-6=[2001:db8::6]:1701|4,2|78||||2|||||',
      '3|2:192.0.2.7/alice,5:5550100/carol|lns-1=198.51.100.10:1701,lns-6=[2001:db8::6]:1701|5,1|||||2|||||',
      '8|3:00:1b:21:3c:4d:5e/bob,5:5550100/carol|lns-1=198.51.100.10:1701,lns-6=[2001:db8::6]:1701|1,1||||31|2|||||',
      '9|||||||||1|500|12|1500|',
      '9|||||||||0|500|||', // STARTING: no state field on the wire, shown as 0 (generated)
      '4|||||10|1|||||||',
      '9|||||||||||||malformed body',
    ]);
    // the Info column says it in brief
    const info = execFileSync('tshark', ['-r', file, '-X', `lua_script:${join(root, 'contrib', 'affinityd.lua')}`, '-Y', 'affinityd', '-T', 'fields', '-e', '_ws.col.Info'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim().split('\n');
    assert.deepEqual(info.slice(8).map((l) => l.replace(/^.*?, seq \d+: /, '')), [
      '2:192.0.2.7/alice (+2 more), rank<2',
      '2:192.0.2.7/alice -> lns-1=198.51.100.10:1701 v4 (+1 more)',
      '2:192.0.2.7/alice -> lns-1=198.51.100.10:1701 v5 (+1 more)',
      'cid 31: 3:00:1b:21:3c:4d:5e/bob -> lns-1=198.51.100.10:1701 v1 (+1 more)',
      'ready, 12 entries, interval 500 ms, ready for 1500 ms',
      'starting, 0 entries, interval 500 ms',
      'rid 10 from 0 x16, rank<1',
      'malformed body',
    ]);
  });

  it('without --key-file the key and tag checks are skipped and the others still made: a frame 2 minutes old is stale', () => {
    const T = Date.now();
    const frame = (seq: number, ts: number, ring = testKeyring()) =>
      encodeFrame({ type: MessageType.Query, keyId: 1, senderNode: 3, bootEpoch: 5, sequence: BigInt(seq), timestampMs: BigInt(ts) }, encodeQuery({ keys: [parseClientKey('2:192.0.2.7/alice')], queryId: seq, answerRank: 0 }), ring);
    // on time; 2 minutes old (it was 'unchecked'); a forged tag (not checked without a key); on time again
    const frames = [frame(1, T), frame(2, T - 120_000), frame(3, T, testKeyring(0x99)), frame(4, T)];
    const file = join(dir, 'no-key.pcap');
    writePcap(file, frames.map((data, i) => ({ src: '10.0.0.3', sport: 7447, dst: '239.255.77.77', dport: 7447, data, timeMs: T + i })));
    assert.deepEqual(readCapture(file, []).trim().split('\n').map((l) => /auth (\S+)$/.exec(l)?.[1]), ['unchecked', 'stale', 'unchecked', 'unchecked']);
    assert.deepEqual(readCapture(file, ['--key-file', keyFile]).trim().split('\n').map((l) => /auth (\S+)$/.exec(l)?.[1]), ['ok', 'stale', 'badTag', 'ok']);
  });

  it('a reader slower than the capture loses no line and the capture does not die (it did, with EAGAIN)', async () => {
    const ring = testKeyring();
    const T = Date.now();
    const frames = Array.from({ length: 5000 }, (_, i) =>
      encodeFrame({ type: MessageType.Query, keyId: 1, senderNode: 3, bootEpoch: 5, sequence: BigInt(i + 1), timestampMs: BigInt(T) }, encodeQuery({ keys: [parseClientKey(`2:192.0.2.7/user-${i}`)], queryId: i, answerRank: 0 }), ring),
    );
    const file = join(dir, 'many.pcap');
    writePcap(file, frames.map((data, i) => ({ src: '10.0.0.3', sport: 7447, dst: '239.255.77.77', dport: 7447, data, timeMs: T + i })));
    const child = spawn(cli[0], [...cli.slice(1), 'capture', '-r', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.pause(); // nobody reads for a while: the pipe fills up
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await sleep(3000);
    child.stdout!.on('data', (d) => (lines += String(d).split('\n').length - 1));
    child.stdout!.resume();
    assert.equal(await exited, 0, err.slice(0, 1000));
    assert.equal(lines, 5000);
  });

  it('ends by itself after -c N on a quiet interface', async () => {
    const net = testGroup();
    const cap = await startCapture(['-i', 'lo', '-c', '2', '--filter', `udp and dst port ${net.port}`]);
    const s = await rawSender();
    for (let i = 0; i < 2; i++) await sendRaw(s, Buffer.alloc(60, 0xaf), net.port, net.group);
    s.close();
    const code = await Promise.race([new Promise((r) => cap.child.on('exit', r)), sleep(5000).then(() => 'still running')]);
    assert.equal(code, 0);
    assert.equal(cap.stdout().trim().split('\n').length, 2);
  });

  it('says which capability it lacks, and exits non-zero, when it may not capture', function () {
    requireOrSkip(this, haveCommand('setpriv'), 'setpriv (util-linux) is not installed');
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', ...cli, 'capture', '-i', 'lo', '-c', '1'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, HOME: '/tmp' },
      timeout: 20_000,
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN.*setcap/s);
  });
});
