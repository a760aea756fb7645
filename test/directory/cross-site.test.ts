// Sites (docs/sites.md) through the router, without sockets or Redis: two
// sites, each an in-memory cluster of two nodes, joined by the in-memory
// site directory double (the same rules as Redis: first writer wins, the
// version rule, invalidations to the other nodes). The node's own wiring
// (src/daemon/site-wiring.ts) connects them, as `affinityd run` does.
import assert from 'node:assert/strict';

import { type ClientKey, clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { SiteWiring } from '../../src/daemon/site-wiring';
import { adoption } from '../../src/directory/cross-site';
import { Withdrawals } from '../../src/directory/maintenance/withdrawals';
import { MemoryDirectory } from '../../src/directory/memory-directory';
import { Router, type RouterOptions } from '../../src/directory/router';
import { LiveLinks } from '../../src/links/live-links';
import { EndpointSet } from '../../src/selection/endpoint-set';
import { createPolicy, type PolicyName, POLICY_NAMES } from '../../src/selection/policy';
import { MemorySiteDirectory, MemorySiteStore } from '../../src/sites/memory-site-directory';
import { siteKey } from '../../src/sites/site-key';
import { MemoryCluster } from '../../src/transport/memory-cluster';
import { silentLogger } from '../../src/util/logger';

const endpoints = [
  { name: 'lns-a', address: '10.0.0.1', port: 1701, weight: 1 },
  { name: 'lns-b', address: '10.0.0.2', port: 1701, weight: 1 },
  { name: 'lns-c', address: '10.0.0.3', port: 1701, weight: 1 },
];
const LIFETIMES = { entrySeconds: 600, withdrawSeconds: 86_400, maxSeconds: 86_400 };
const opts = (nodeId: number): RouterOptions => ({
  nodeId, queryCount: 2, queryIntervalMs: 5, queryTimeoutMs: 10, updateRepeats: 1,
  entryTtlSeconds: 600, failureHoldDownMs: 10_000, agreement: { enabled: true, retryMs: 5, timeoutMs: 500 },
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SiteNode {
  site: string;
  directory: MemoryDirectory;
  router: Router;
  siteDir: MemorySiteDirectory;
  wiring: SiteWiring;
  withdrawals: Withdrawals;
}

/** Sites of nodes: node ids unique across sites (the version rule breaks ties by origin node). */
function sites(names: string[], perSite: number, policy: PolicyName, store = new MemorySiteStore()) {
  const nodes: SiteNode[] = [];
  let id = 1;
  for (const site of names) {
    const cluster = new MemoryCluster();
    for (let i = 0; i < perSite; i++, id++) {
      const directory = new MemoryDirectory(LIFETIMES);
      const link = cluster.join(id, directory);
      const router = new Router(opts(id), directory, link, new EndpointSet(endpoints), createPolicy(policy));
      const withdrawals = new Withdrawals(directory, link, { nodeId: id });
      const siteDir = new MemorySiteDirectory(store, { site, nodeId: id, holds: (k) => directory.peek(k) !== undefined });
      const wiring = new SiteWiring(siteDir, { directory, router, links: new LiveLinks(), withdrawals }, silentLogger);
      wiring.start();
      nodes.push({ site, directory, router, siteDir, wiring, withdrawals });
    }
  }
  return { store, nodes };
}

const clients = (n: number, tag: string): ClientKey[] => Array.from({ length: n }, (_, i) => parseClientKey(`2:198.51.100.${(i % 250) + 1}/${tag}-${i}@sites.example`));

/** Where every node of every site holds the client now (undefined: not held). */
const heldEverywhere = (nodes: SiteNode[], c: ClientKey) => nodes.map((n) => n.directory.lookup(clientKeyBytes(c))?.endpoint.name);

describe('sites through the router (in-memory sites and site directory)', () => {
  for (const policy of POLICY_NAMES) {
    it(`a bundle whose links reach both sites at the same moment lands on one endpoint (${policy})`, async () => {
      const { store, nodes } = sites(['north', 'south'], 2, policy);
      const cs = clients(150, policy);
      // the south's nodes have served other clients already: their round-robin is elsewhere in its cycle
      for (const n of nodes.filter((x) => x.site === 'south')) await n.router.route(parseClientKey(`0/earlier-${n.site}`));
      const confirmedBefore = nodes.reduce((a, n) => a + n.router.counters.siteConfirmed, 0);
      // every client: one link at each of the four nodes, all at once
      const routes = await Promise.all(cs.map((c) => Promise.all(nodes.map((n) => n.router.route(c)))));
      let split = 0;
      for (const rs of routes) if (new Set(rs.map((r) => r.endpoint.name)).size > 1) split++;
      assert.equal(split, 0, `${split} of ${cs.length} bundles split across sites`);
      const adopted = nodes.reduce((a, n) => a + n.router.counters.siteAdopted, 0);
      const confirmed = nodes.reduce((a, n) => a + n.router.counters.siteConfirmed, 0) - confirmedBefore;
      const asked = nodes.reduce((a, n) => a + n.siteDir.counters.roundTrips.claim, 0);
      assert.ok(confirmed >= cs.length, `every client was claimed in the site directory before its site agreed (${confirmed} claims for ${cs.length} clients)`);
      void asked;
      if (policy === 'round-robin') assert.ok(adopted > 0, 'the sites chose differently for some clients and one site adopted the other\'s');
      await sleep(20); // UPDATEs of adoptions within each site
      for (const [i, c] of cs.entries()) {
        const where = routes[i][0].endpoint.name;
        assert.deepEqual(heldEverywhere(nodes, c), nodes.map(() => where), `every table holds ${where} for client ${i}`);
        const rec = store.get(siteKey('affinityd:', c));
        assert.equal(rec?.kind === 'entry' && rec.entry.endpoint.name, where, 'the site directory holds the same endpoint');
      }
      // the next links are local hits everywhere, no Redis
      const rounds = nodes.map((n) => n.siteDir.counters.roundTrips.claim);
      for (const n of nodes) for (const c of cs.slice(0, 20)) assert.equal((await n.router.route(c)).source, 'local');
      assert.deepEqual(nodes.map((n) => n.siteDir.counters.roundTrips.claim), rounds);
    });
  }

  it('a site that cannot reach the site directory decides alone; when it returns, the other site\'s decision wins at both', async () => {
    const { nodes } = sites(['north', 'south'], 2, 'round-robin');
    const [n1, n2, s1, s2] = nodes;
    await sleep(1); // started: up
    for (const s of [s1, s2]) s.siteDir.setDown('connect ECONNREFUSED');
    const cs = clients(60, 'outage');
    await s1.router.route(parseClientKey('0/earlier')); // south's round-robin elsewhere in its cycle
    // north decides through the site directory first, south alone (site-local)
    const north = await Promise.all(cs.map((c) => n1.router.route(c)));
    const south = await Promise.all(cs.map((c) => s1.router.route(c)));
    assert.ok(south.every((r) => r.source === 'selected' || r.source === 'direct'), 'south decided alone');
    assert.equal(s1.siteDir.counters.siteLocal.down + s2.siteDir.counters.siteLocal.down, cs.length + 1, "every decision without the site directory counted (and the earlier client's)");
    const differ = cs.filter((_, i) => north[i].endpoint.name !== south[i].endpoint.name).length;
    assert.ok(differ > 0, 'round-robin at two sites chose differently for some clients (what the outage costs)');
    // the site directory returns: south's journal is written back, every conflict resolved to north's entry
    for (const s of [s1, s2]) s.siteDir.setUp();
    let left = cs.length;
    for (let i = 0; i < 200 && left > 0; i++) {
      await sleep(10);
      left = cs.filter((c, j) => heldEverywhere(nodes, c).some((name) => name !== north[j].endpoint.name)).length;
    }
    assert.equal(left, 0, 'every table of both sites holds north\'s endpoint for every client');
    assert.ok(s1.siteDir.counters.conflicts.theirs + s2.siteDir.counters.conflicts.theirs >= differ, 'every difference was reported as a conflict');
    assert.ok(s1.wiring.writeBack.runs + s2.wiring.writeBack.runs >= 2, 'the tables were written back when the site directory came up');
    void n2;
  });

  it('a move at one site (its endpoint failed) reaches the other site by the version rule', async () => {
    const { nodes } = sites(['north', 'south'], 1, 'rendezvous');
    const [n, s] = nodes;
    const c = clients(1, 'move')[0];
    const first = await n.router.route(c);
    assert.equal((await s.router.route(c)).endpoint.name, first.endpoint.name);
    const moved = await n.router.reroute(c, first.endpoint);
    assert.equal(moved.source, 'rerouted');
    assert.notEqual(moved.endpoint.name, first.endpoint.name);
    for (let i = 0; i < 100 && s.directory.lookup(clientKeyBytes(c))?.endpoint.name !== moved.endpoint.name; i++) await sleep(5);
    assert.equal(s.directory.lookup(clientKeyBytes(c))?.endpoint.name, moved.endpoint.name, 'the other site stores the move (key tracking)');
    assert.equal(s.directory.lookup(clientKeyBytes(c))?.version, moved.version);
  });

  it('a clear at one site (a withdraw marker) reaches Redis and the other site; the next call there gets a new entry above it', async () => {
    const { store, nodes } = sites(['north', 'south'], 1, 'rendezvous');
    const [n, s] = nodes;
    const c = clients(1, 'clear')[0];
    const first = await n.router.route(c);
    assert.equal((await s.router.route(c)).endpoint.name, first.endpoint.name);
    assert.ok(n.withdrawals.withdraw(c), 'north held the client');
    let rec = store.get(siteKey('affinityd:', c));
    for (let i = 0; i < 100 && rec?.kind !== 'withdraw'; i++) await sleep(5), (rec = store.get(siteKey('affinityd:', c)));
    assert.equal(rec?.kind, 'withdraw', 'Redis holds the marker');
    for (let i = 0; i < 100 && s.directory.lookup(clientKeyBytes(c)); i++) await sleep(5);
    assert.equal(s.directory.lookup(clientKeyBytes(c)), undefined, 'the other site deleted its entry (key tracking)');
    const again = await s.router.route(c);
    assert.ok(again.version > first.version + 1, `a new entry above the marker (version ${again.version})`);
  });

  it('a clear counts what the site directory did with each marker: stored, or kept while it is down (what `affinityd clear` reports)', async () => {
    const { store, nodes } = sites(['north', 'south'], 1, 'rendezvous');
    const [n] = nodes;
    const cs = clients(20, 'clear-count');
    for (const c of cs) await n.router.route(c);
    const [up, down] = [cs.slice(0, 10), cs.slice(10)];
    for (const c of up) n.withdrawals.withdraw(c);
    assert.equal(await n.wiring.withdrawsSettled(5000), 0, 'every write has an outcome');
    assert.deepEqual(n.wiring.withdraws, { stored: 10, superseded: 0, kept: 0, failed: 0 });
    n.siteDir.setDown('connect ECONNREFUSED');
    for (const c of down) n.withdrawals.withdraw(c);
    assert.equal(await n.wiring.withdrawsSettled(5000), 0);
    assert.deepEqual(n.wiring.withdraws, { stored: 10, superseded: 0, kept: 10, failed: 0 });
    assert.ok(down.every((c) => store.get(siteKey('affinityd:', c))?.kind === 'entry'), 'the site directory still holds the entries cleared while it was down');
    // back up: the kept markers are written (the table written back)
    n.siteDir.setUp();
    for (let i = 0; i < 200 && !down.every((c) => store.get(siteKey('affinityd:', c))?.kind === 'withdraw'); i++) await sleep(10);
    assert.ok(down.every((c) => store.get(siteKey('affinityd:', c))?.kind === 'withdraw'), 'written when it came back');
  });

  it('an adoption is the other site\'s entry itself, so every node of every site proposes the same', () => {
    const e = { clientKey: parseClientKey('0/x'), keyBytes: Buffer.alloc(0), endpoint: endpoints[0], version: 1, originNode: 9, ttlSeconds: 600 };
    const a = adoption(e, { endpoint: endpoints[1], version: 1, originNode: 3, ttlSeconds: 500 });
    const b = adoption({ ...e, originNode: 2 }, { endpoint: endpoints[1], version: 1, originNode: 3, ttlSeconds: 500 });
    assert.deepEqual([a.endpoint.name, a.version, a.originNode, a.ttlSeconds], ['lns-b', 1, 3, 500]);
    assert.deepEqual(a, { ...b, originNode: a.originNode });
  });
});
