// The router's logic on the in-memory cluster double (no sockets, no addon).
import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { MemoryDirectory } from '../../src/directory/memory-directory';
import { NoEndpointError, Router, type RouterOptions } from '../../src/directory/router';
import { EndpointSet } from '../../src/selection/endpoint-set';
import { createPolicy } from '../../src/selection/policy';
import { MemoryCluster } from '../../src/transport/memory-cluster';

const endpoints = [
  { name: 'lns-a', address: '10.0.0.1', port: 1701, weight: 1 },
  { name: 'lns-b', address: '10.0.0.2', port: 1701, weight: 1 },
  { name: 'lns-c', address: '10.0.0.3', port: 1701, weight: 1 },
];
const opts = (nodeId: number, over: Partial<RouterOptions> = {}): RouterOptions => ({
  nodeId, queryCount: 3, queryIntervalMs: 5, queryTimeoutMs: 10, directQuery: true, directTimeoutMs: 10, directCount: 1, updateRepeats: 1,
  entryTtlSeconds: 600, failureHoldDownMs: 10_000, ...over,
});

function cluster(n: number, over: Partial<RouterOptions> = {}, policy: 'rendezvous' | 'round-robin' = 'rendezvous') {
  const c = new MemoryCluster();
  const nodes = Array.from({ length: n }, (_, i) => {
    const directory = new MemoryDirectory(LIFETIMES);
    const set = new EndpointSet(endpoints);
    return { directory, set, router: new Router(opts(i + 1, over), directory, c.join(i + 1, directory), set, createPolicy(policy)) };
  });
  return { c, nodes };
}
const alice = parseClientKey('2:192.0.2.7/alice');
const LIFETIMES = { entrySeconds: 600, withdrawSeconds: 86_400, maxSeconds: 86_400 };

describe('router (pure, in-memory cluster)', () => {
  it('selects, stores and announces on a miss everywhere; the next call at another node is a local hit there', async () => {
    const { c, nodes } = cluster(3);
    const first = await nodes[0].router.route(alice);
    assert.equal(first.source, 'selected');
    assert.equal(first.version, 1);
    assert.equal(first.originNode, 1);
    assert.equal(nodes[0].router.counters.queriesSent, 3, 'three QUERYs before deciding');
    assert.equal(c.sent.updates, 1);
    await new Promise((r) => setTimeout(r, 10));
    const second = await nodes[2].router.route(alice);
    assert.equal(second.source, 'local');
    assert.deepEqual(second.endpoint, first.endpoint);
  });

  it('takes the endpoint from a REPLY when another directory knows the client', async () => {
    const { nodes } = cluster(2);
    nodes[1].directory.apply(clientKeyBytes(alice), { endpoint: endpoints[2], version: 4, originNode: 2, ttlSeconds: 600 });
    const r = await nodes[0].router.route(alice);
    assert.deepEqual({ source: r.source, name: r.endpoint.name, version: r.version, origin: r.originNode }, { source: 'remote', name: 'lns-c', version: 4, origin: 2 });
    assert.equal(nodes[0].router.counters.queriesSent, 1, 'answered after the first QUERY');
    assert.equal((await nodes[0].router.route(alice)).source, 'local', 'the REPLY was kept locally');
  });

  it('shares one resolution among concurrent call requests for one client', async () => {
    const { nodes } = cluster(2);
    const routes = await Promise.all(Array.from({ length: 10 }, () => nodes[0].router.route(alice)));
    assert.equal(new Set(routes.map((r) => r.endpoint.name)).size, 1);
    assert.equal(nodes[0].router.counters.misses, 1);
    assert.equal(nodes[0].router.counters.coalesced, 9);
    assert.equal(nodes[0].router.counters.selected, 1);
  });

  it('two nodes that miss at the same moment choose the same endpoint', async () => {
    const { nodes } = cluster(2);
    for (let i = 0; i < 30; i++) {
      const k = parseClientKey(`2:192.0.2.9/race${i}`);
      const [a, b] = await Promise.all([nodes[0].router.route(k), nodes[1].router.route(k)]);
      assert.deepEqual(a.endpoint, b.endpoint, `client ${i}`);
    }
  });

  it('asks known peers directly when the multicast QUERYs go unanswered (claim 19)', async () => {
    const { c, nodes } = cluster(2);
    const made = await nodes[1].router.route(alice); // node 2 makes the entry...
    await new Promise((r) => setTimeout(r, 10)); // (its UPDATE is delivered)
    c.dropMulticast = true; // ...and multicast is lost from now on
    nodes[0].directory.clear();
    const r = await nodes[0].router.route(alice);
    assert.equal(r.source, 'direct');
    assert.deepEqual(r.endpoint, made.endpoint);
    assert.equal(nodes[0].router.counters.directQueries, 1);
  });

  it('costs the configured retries and time-outs on a miss, and counts them', async () => {
    const { nodes } = cluster(1, { queryCount: 4, queryIntervalMs: 20, queryTimeoutMs: 40, directQuery: false });
    const t0 = Date.now();
    const r = await nodes[0].router.route(alice);
    const took = Date.now() - t0;
    assert.equal(r.source, 'selected');
    assert.ok(took >= 3 * 20 + 40 - 2, `decided after ${took} ms, before the configured ${3 * 20 + 40} ms`);
    const k = nodes[0].router.counters;
    assert.deepEqual([k.queriesSent, k.queryRetries, k.queryTimeouts], [4, 3, 1]);
  });

  it('reroutes a client whose endpoint refused, with a higher version that wins everywhere', async () => {
    const { nodes } = cluster(2);
    const first = await nodes[0].router.route(alice);
    await new Promise((r) => setTimeout(r, 10));
    const moved = await nodes[0].router.reroute(alice, first.endpoint);
    assert.equal(moved.source, 'rerouted');
    assert.equal(moved.version, 2);
    assert.notDeepEqual(moved.endpoint, first.endpoint);
    await new Promise((r) => setTimeout(r, 10));
    const elsewhere = await nodes[1].router.route(alice);
    assert.deepEqual(elsewhere.endpoint, moved.endpoint);
    // while the failed endpoint is held down, a client whose entry names it is moved too,
    // and that move is not another failure of the endpoint
    assert.ok(nodes[0].set.isDown(first.endpoint));
    const other = parseClientKey('2:192.0.2.7/other');
    nodes[0].directory.apply(clientKeyBytes(other), { endpoint: first.endpoint, version: 1, originNode: 1, ttlSeconds: 600 });
    const failures = nodes[0].set.find(first.endpoint)!.failures;
    const r = await nodes[0].router.route(other);
    assert.equal(r.source, 'rerouted');
    assert.notDeepEqual(r.endpoint, first.endpoint);
    assert.equal(nodes[0].set.find(first.endpoint)!.failures, failures);
  });

  it('rejects with NoEndpointError when no endpoint can take the client', async () => {
    const { nodes } = cluster(1, { directQuery: false });
    for (const e of endpoints) nodes[0].set.markFailed(e, 60_000);
    await assert.rejects(nodes[0].router.route(alice), NoEndpointError);
    assert.equal(nodes[0].router.counters.noEndpoint, 1);
  });

  it('ignores a REPLY for another client under a known query id', () => {
    const { nodes } = cluster(1);
    const r = nodes[0].router;
    void r.route(alice);
    const queryId = (r as unknown as { byQueryId: Map<number, unknown> }).byQueryId.keys().next().value!;
    r.handleReply({ queryId, entry: { clientKey: parseClientKey('2:192.0.2.8/mallory'), endpoint: endpoints[0], version: 9, originNode: 9, ttlSeconds: 60 } }, { nodeId: 9, address: 'x', port: 0 });
    assert.equal(r.counters.repliesWrongKey, 1);
  });

  it('keeps every bundle whole with 30% message loss', async () => {
    const { c, nodes } = cluster(3, { queryCount: 4, queryIntervalMs: 3, queryTimeoutMs: 8 });
    c.loss = 0.3;
    let split = 0;
    for (let i = 0; i < 60; i++) {
      const k = parseClientKey(`2:198.51.100.1/lossy${i}`);
      // links of one bundle arrive at the three nodes a little apart
      const r = await Promise.all(nodes.map((n, j) => new Promise((res) => setTimeout(res, j * 2)).then(() => n.router.route(k))));
      if (new Set(r.map((x) => x.endpoint.name)).size > 1) split++;
    }
    assert.equal(split, 0, 'rendezvous agreement keeps bundles whole even when no message gets through');
  });
});
