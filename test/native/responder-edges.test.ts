// The responder at its edges: a start that fails, and an endpoint with an
// empty name (under `npm run test:sanitize` these run with AddressSanitizer
// and UndefinedBehaviorSanitizer).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { encodeUpdate, MessageType } from '../../src/codec/messages';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring, TestNode, until } from '../helpers/loopback';
import { haveCommand, requireOrSkip } from '../helpers/require';

describe('native responder at its edges', function () {
  this.timeout(60_000);

  it('a start that fails at eventfd throws a clear error and leaves the process sound', function () {
    addonOrSkip(this);
    requireOrSkip(this, haveCommand('prlimit'), 'prlimit is not installed (apt-get install util-linux)');
    const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, 'responder-start-child.ts')], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    assert.equal(r.status, 0, `child exited ${r.status} (${r.signal ?? 'no signal'}): ${last} ${r.stderr.slice(-3000)}`);
    const out = JSON.parse(last);
    assert.match(out.message, /^responder start failed: eventfd: Too many open files/);
    assert.equal(out.restarted, true);
  });

  it('applies an UPDATE whose endpoint has an empty name', async function () {
    addonOrSkip(this);
    const net = testGroup();
    const a = new TestNode(1, net, testKeyring());
    const b = new TestNode(2, net, testKeyring());
    try {
      const key = parseClientKey('2:192.0.2.9/noname');
      const endpoint = { address: '198.51.100.20', port: 1701, name: '' };
      b.responder.send([{ type: MessageType.Update, body: encodeUpdate({ entries: [{ clientKey: key, endpoint, version: 1, originNode: 2, ttlSeconds: 60 }] }) }]);
      await until(() => a.responder.stats().updatesApplied === 1, 3000, 'the update');
      const out = new Uint32Array(5);
      assert.equal(a.table.lookup(clientKeyBytes(key), out), true);
      assert.deepEqual(a.table.endpoint(out[0])?.name, Buffer.alloc(0));
      assert.equal(a.table.internEndpoint(Buffer.from([198, 51, 100, 20]), 1701, Buffer.alloc(0)), out[0], 'the same endpoint, interned from JS');
    } finally {
      a.close();
      b.close();
    }
  });
});
