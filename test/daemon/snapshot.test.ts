// Table snapshots: saved and loaded across a node's restart; damaged files
// reported and skipped; expired entries not brought back.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { encodeUpdate } from '../../src/codec/messages';
import { createNode } from '../../src/daemon/create-node';
import { loadSnapshot, SnapshotError, writeSnapshot } from '../../src/directory/snapshot';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';

describe('table snapshots', function () {
  this.timeout(20_000);
  let dir: string;
  before(function () {
    addonOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'affinityd-snapshot-'));
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  const config = (file: string, id = 1) => ({
    node: { id },
    cluster: { ...testGroup(), interface: '127.0.0.1' },
    directory: { capacity: 10_000, snapshotFile: file },
    query: { count: 1, intervalMs: 5, timeoutMs: 5 },
    endpoints: [1, 2, 3].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701 })),
  });

  it('keeps every client where it was across a restart (entries lost: 0)', async () => {
    const file = join(dir, 'restart.snap');
    const a = await createNode(config(file), { keyring: testKeyring() });
    const before = new Map<string, string>();
    for (let i = 0; i < 500; i++) {
      const k = `2:10.1.${i >> 8}.${i & 255}/user-${i}`;
      before.set(k, (await a.route(k)).endpoint.name);
    }
    await a.close(); // writes the snapshot
    assert.ok(existsSync(file) && !existsSync(`${file}.tmp`));
    const b = await createNode(config(file), { keyring: testKeyring() });
    try {
      assert.equal(b.stats().snapshots.loaded, 500);
      for (const [k, name] of before) {
        const r = await b.route(k);
        assert.deepEqual([r.source, r.endpoint.name], ['local', name], k);
      }
    } finally {
      await b.close();
    }
  });

  it('reports a damaged snapshot and starts without it', async () => {
    const file = join(dir, 'damaged.snap');
    const a = await createNode(config(file), { keyring: testKeyring() });
    await a.route('2:10.2.0.1/x');
    await a.close();
    const bytes = readFileSync(file);
    bytes[20] ^= 0xff;
    writeFileSync(file, bytes);
    const b = await createNode(config(file), { keyring: testKeyring() });
    try {
      assert.equal(b.stats().snapshots.damaged, 1);
      assert.equal(b.directory.stats().size, 0);
      assert.throws(() => loadSnapshot(b.directory, file), (e: Error) => e instanceof SnapshotError && /checksum/.test(e.message));
      writeFileSync(file, 'not a snapshot at all');
      assert.throws(() => loadSnapshot(b.directory, file), /bad magic/);
      writeFileSync(file, bytes.subarray(0, 30));
      assert.throws(() => loadSnapshot(b.directory, file), SnapshotError);
    } finally {
      await b.close();
    }
  });

  it('does not bring back entries that expired since the snapshot, and keeps newer entries (version rule)', async () => {
    const file = join(dir, 'expiry.snap');
    const a = await createNode(config(file), { keyring: testKeyring() });
    const now = Math.floor(Date.now() / 1000);
    const short = clientKeyBytes(parseClientKey('2:10.3.0.1/short'));
    const long = clientKeyBytes(parseClientKey('2:10.3.0.2/long'));
    a.directory.apply(short, { endpoint: { address: '198.51.100.1', port: 1701, name: 'lns-1' }, version: 1, originNode: 1, ttlSeconds: 5 });
    a.directory.apply(long, { endpoint: { address: '198.51.100.1', port: 1701, name: 'lns-1' }, version: 1, originNode: 1, ttlSeconds: 3600 });
    assert.equal(writeSnapshot(a.directory, file, now), 2);
    a.directory.clear();
    a.directory.apply(long, { endpoint: { address: '198.51.100.2', port: 1701, name: 'lns-2' }, version: 5, originNode: 2, ttlSeconds: 3600 }); // newer, from the cluster
    const r = loadSnapshot(a.directory, file, now + 10);
    assert.deepEqual(r, { loaded: 1, expired: 1 });
    assert.equal(a.directory.lookup(short), undefined);
    assert.equal(a.directory.lookup(long)!.endpoint.name, 'lns-2', 'the snapshot\'s older version does not win');
    await a.close();
  });

  it('keeps withdraw markers across a restart: an older copy of a deleted entry cannot come back', async () => {
    const file = join(dir, 'markers.snap');
    const a = await createNode(config(file), { keyring: testKeyring() });
    const gone = clientKeyBytes(parseClientKey('2:10.4.0.1/gone'));
    const kept = clientKeyBytes(parseClientKey('2:10.4.0.2/kept'));
    a.directory.apply(gone, { endpoint: { address: '198.51.100.1', port: 1701, name: 'lns-1' }, version: 3, originNode: 1, ttlSeconds: 3600 });
    a.directory.apply(kept, { endpoint: { address: '198.51.100.2', port: 1701, name: 'lns-2' }, version: 1, originNode: 1, ttlSeconds: 3600 });
    assert.ok(a.withdraw('2:10.4.0.1/gone'));
    assert.equal(writeSnapshot(a.directory, file), 2);
    a.directory.clear();
    assert.deepEqual(loadSnapshot(a.directory, file), { loaded: 2, expired: 0 });
    assert.deepEqual([a.directory.peek(gone)?.endpoint, a.directory.peek(gone)?.version], [undefined, 4], 'the marker came back');
    assert.equal(a.directory.apply(gone, { endpoint: { address: '198.51.100.1', port: 1701, name: 'lns-1' }, version: 3, originNode: 1, ttlSeconds: 3600 }), 'ignored', 'the old entry stays deleted');
    assert.equal(a.directory.lookup(kept)!.endpoint.name, 'lns-2');
    await a.close();
  });

  it('still reads a version 1 snapshot (entries only)', async () => {
    const file = join(dir, 'v1.snap');
    const now = Math.floor(Date.now() / 1000);
    const body = encodeUpdate({ entries: [{ clientKey: parseClientKey('2:10.5.0.1/old'), endpoint: { address: '198.51.100.3', port: 1701, name: 'lns-3' }, version: 2, originNode: 1, ttlSeconds: 600 }] });
    const head = Buffer.alloc(9);
    head.write('AFSN', 'latin1');
    head[4] = 1;
    head.writeUInt32BE(now, 5);
    const data = Buffer.concat([head, Buffer.from([body.length]), body]);
    writeFileSync(file, Buffer.concat([data, createHash('sha256').update(data).digest()]));
    const a = await createNode(config(join(dir, 'unused.snap')), { keyring: testKeyring() });
    assert.deepEqual(loadSnapshot(a.directory, file, now), { loaded: 1, expired: 0 });
    assert.equal(a.directory.lookup(clientKeyBytes(parseClientKey('2:10.5.0.1/old')))!.endpoint.name, 'lns-3');
    await a.close();
  });
});
