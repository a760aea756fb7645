// What a node logs about sites (src/daemon/site-wiring.ts): a conflict's
// client is named by its text form, as docs/operations.md ("Logs") says of
// every client key in a log line, never as an object of octets.
import assert from 'node:assert/strict';

import { parseClientKey } from '../../src/codec/client-key';
import { SiteWiring } from '../../src/daemon/site-wiring';
import { Withdrawals } from '../../src/directory/maintenance/withdrawals';
import { MemoryDirectory } from '../../src/directory/memory-directory';
import { Router } from '../../src/directory/router';
import { LiveLinks } from '../../src/links/live-links';
import { EndpointSet } from '../../src/selection/endpoint-set';
import { createPolicy } from '../../src/selection/policy';
import { MemorySiteDirectory, MemorySiteStore } from '../../src/sites/memory-site-directory';
import { MemoryCluster } from '../../src/transport/memory-cluster';
import type { Logger } from '../../src/util/logger';

const endpoints = [
  { name: 'lns-a', address: '10.0.0.1', port: 1701, weight: 1 },
  { name: 'lns-b', address: '10.0.0.2', port: 1701, weight: 1 },
];
const LIFETIMES = { entrySeconds: 600, withdrawSeconds: 86_400, maxSeconds: 86_400 };

describe('site wiring: log lines', () => {
  it('a conflict names the client by its text form', async () => {
    const lines: { o: Record<string, unknown>; msg?: string }[] = [];
    const log: Logger = { error() {}, info() {}, debug() {}, warn: (o, msg) => void lines.push({ o: o as Record<string, unknown>, msg }) };
    const store = new MemorySiteStore();
    const directory = new MemoryDirectory(LIFETIMES);
    const link = new MemoryCluster().join(7, directory);
    const router = new Router({
      nodeId: 7, queryCount: 1, queryIntervalMs: 5, queryTimeoutMs: 5, updateRepeats: 1,
      entryTtlSeconds: 600, failureHoldDownMs: 10_000, agreement: { enabled: false, retryMs: 5, timeoutMs: 500 },
    }, directory, link, new EndpointSet(endpoints), createPolicy('round-robin'));
    const siteDir = new MemorySiteDirectory(store, { site: 'north', nodeId: 7, holds: (k) => directory.peek(k) !== undefined });
    const wiring = new SiteWiring(siteDir, { directory, router, links: new LiveLinks(), withdrawals: new Withdrawals(directory, link, { nodeId: 7 }) }, log);
    const other = new MemorySiteDirectory(store, { site: 'south', nodeId: 9 });
    wiring.start();
    other.start();
    await new Promise((r) => setTimeout(r, 10)); // both up (the journal, empty, is written back first)
    try {
      const client = parseClientKey('2:192.0.2.7/alice@example.net');
      const [a, b] = new EndpointSet(endpoints).healthy();
      // the south decided first; the north decided alone (Redis down) and writes back
      assert.equal((await other.claim([{ clientKey: client, endpoint: b.endpoint, version: 1, originNode: 9, ttlSeconds: 600 }]))[0].outcome, 'won');
      const report = await siteDir.reconcile([{ clientKey: client, endpoint: a.endpoint, version: 1, originNode: 7, ttlSeconds: 600 }]);
      assert.equal(report.conflicts, 1);
      const conflictLines = lines.filter((l) => /decided differently/.test(l.msg ?? ''));
      assert.ok(conflictLines.length >= 1, `no conflict logged: ${JSON.stringify(lines)}`);
      for (const l of conflictLines) assert.equal(l.o.client, '2:192.0.2.7/alice@example.net', JSON.stringify(l.o));
    } finally {
      await wiring.close();
      await other.close();
    }
  });
});
