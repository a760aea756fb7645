// Issue 18, "must show": the per-call cost of a cluster does not grow with
// its size. 3, 8 and 16 `affinityd run` nodes in network namespaces, the
// defaults (rendezvous selection, agreement on). For each size:
//   1. new clients: 1,000 x 2 links, the two links of a client at two
//      different nodes at the same moment: 0 split, 0 failed; datagrams
//      sent and received, QUERYs and CLAIMs per call, summed over the cluster;
//   2. a node that has to ask (restarted with its bulk sync and digest
//      exchange off, so its table stays empty):
//      200 known clients called there, each answered by a REPLY: REPLYs per
//      QUERY, summed over every directory that answered;
//   3. first calls nobody can answer, one at a time at that node: QUERYs and
//      CLAIMs it sent per call;
//   4. the same node restarted as a joiner (bulk sync on): entries it
//      received for the table, and its sync time;
//   5. 10% of cluster datagrams lost, 1,000 new clients x 2 links: 0 split.
// Goals at 16 (issue 18): at most 1.5 REPLYs per QUERY, at most 4 QUERYs
// and CLAIMs for a first call nobody can answer, a joiner receives at most
// 1.2x the table, messages sent per call at 16 within 1.5x of the 8-node
// figure (and the ratio to 3 nodes printed: at 3 a third of the links reach
// their client's arbiter and need no CLAIM, a discount that fades with N).
// Messages are counted per client they carry (QUERY, CLAIM, UPDATE, REPLY):
// frames carry many clients when misses come together, how many follows the
// machine's load, and a run of 3 nodes on a quiet moment and one of 16 on a
// busy one are not comparable frame for frame (CI saw 2.08 datagrams per call
// at 3 nodes and 5.17 at 16 in one run; 3.76 at 3 in another); datagrams
// per call are printed, and bench/growth.ts compares them in one run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addonOrSkip } from '../helpers/addon';
import { Lan, netnsUnavailable } from '../helpers/netns';
import { failures, NetnsCluster, splits } from '../helpers/netns-cluster';
import { haveCommand, requireOrSkip } from '../helpers/require';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Stats = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Figures {
  nodes: number;
  sentPerCall: number;
  messagesPerCall: number;
  receivedPerCall: number;
  queriesPerCall: number;
  claimsPerCall: number;
  repliesPerQuery: number;
  firstCallQueries: number;
  firstCallClaims: number;
  joinerEntries: number;
  table: number;
  syncMs: number;
  lossSplit: number;
  lossSentPerCall: number;
}

const r2 = (x: number) => Number(x.toFixed(2));

describe('a cluster that grows: per-call costs at 3, 8 and 16 nodes in network namespaces (issue 18)', function () {
  this.timeout(3_600_000);
  const figures: Figures[] = [];
  let preflight = false;

  before(function () {
    addonOrSkip(this);
    const why = netnsUnavailable();
    requireOrSkip(this, !why, why ?? '');
    requireOrSkip(this, haveCommand('nft'), 'nftables (nft) is not installed: apt-get install nftables');
    preflight = true;
  });

  after(() => {
    if (figures.length === 0) return;
    console.log('      nodes | datagrams sent/call | messages sent/call | received/call | QUERYs/call | CLAIMs/call | REPLYs/QUERY | first call: QUERYs+CLAIMs | joiner: entries for table | sync ms | 10% loss: split, sent/call');
    for (const f of figures) {
      console.log(
        `      ${String(f.nodes).padStart(5)} | ${String(f.sentPerCall).padStart(19)} | ${String(f.messagesPerCall).padStart(18)} | ${String(f.receivedPerCall).padStart(13)} | ${String(f.queriesPerCall).padStart(11)} | ${String(f.claimsPerCall).padStart(11)} | ` +
          `${String(f.repliesPerQuery).padStart(12)} | ${`${f.firstCallQueries}+${f.firstCallClaims}`.padStart(25)} | ${`${f.joinerEntries} for ${f.table}`.padStart(25)} | ${String(f.syncMs).padStart(7)} | ${f.lossSplit}, ${f.lossSentPerCall}`,
      );
    }
  });

  for (const N of [3, 8, 16]) {
    it(`${N} nodes: 0 split, 0 failed, and per-call costs flat${N === 16 ? ' (the goals)' : ''}`, async function () {
      requireOrSkip(this, preflight, 'the preflight in before() did not pass (its reason is printed above)');
      const lan = new Lan(N + 2); // h0..h(N-1) nodes, hN endpoints, hN+1 clients
      const dir = mkdtempSync(join(tmpdir(), `affinityd-growth-${N}-`));
      // the last node is restarted twice: as a node that must ask (no bulk sync), then as a joiner
      let lastSyncs = true;
      const c = new NetnsCluster(lan, dir, N, (i) => ['log: { level: info }', i === N - 1 && !lastSyncs ? 'sync: { enabled: false }\nantiEntropy: { enabled: false }' : ''].join('\n'));
      const all = Array.from({ length: N }, (_, i) => i);
      const stats = (ids: number[]): Promise<Stats[]> => Promise.all(ids.map((i) => c.stats(i)));
      const total = (ss: Stats[], f: (s: Stats) => number) => ss.reduce((a, s) => a + f(s), 0);
      const delta = (after: Stats[], before: Stats[], f: (s: Stats) => number) => total(after, f) - total(before, f);
      try {
        await c.startEndpoints();
        // a cluster of N that has been running (the first node alone, then the rest together)
        await c.start(0);
        await Promise.all(all.slice(1).map((i) => c.start(i)));
        // HELLOs: every node knows every other one alive and ready, and every
        // handover is over (agreement.handoverMs, 2 s: within it, a proposal
        // for a client of a new arbiter also asks the client's earlier one,
        // which is a cluster starting, not one that has been running)
        await sleep(1500 + 2000);
        const fronts = all.map((i) => c.front(i));

        // 1. new clients, two links each at two nodes at once
        let s0 = await stats(all);
        let b = c.bundles({ clients: 1000, links: 2, prefix: `grow${N}`, gapMs: 0, startGapMs: 3, fronts }, 600_000);
        await sleep(500); // UPDATE repeats land
        let s1 = await stats(all);
        assert.deepEqual(failures(b).slice(0, 5), [], 'failed links');
        assert.deepEqual(splits(b).slice(0, 5), [], 'split bundles');
        const calls = 2000;
        const sentPerCall = r2(delta(s1, s0, (s) => s.responder.sent) / calls);
        const receivedPerCall = r2(delta(s1, s0, (s) => s.responder.received) / calls);
        const queriesPerCall = r2(delta(s1, s0, (s) => s.router.queriesSent) / calls);
        const claimsPerCall = r2(delta(s1, s0, (s) => s.router.claimsSent) / calls);
        // the same messages counted per client they carry (a QUERY, CLAIM,
        // UPDATE or REPLY frame holds many when misses come together, and
        // how many come together follows the machine's load, so datagrams
        // per call are not comparable between two runs of a busy machine;
        // clients per call are)
        const messagesPerCall = r2(delta(s1, s0, (s) => s.router.queriesSent + s.router.claimsSent + s.router.updatesSent + s.responder.queriesAnswered) / calls);

        // 2. a node that has to ask: known clients, each answered by a REPLY
        const asker = N - 1;
        await c.kill(asker);
        lastSyncs = false;
        await c.start(asker, /"msg":"node started"/);
        await sleep(1500);
        s0 = await stats(all);
        const known = c.bundles({ clients: 200, links: 1, prefix: `grow${N}`, gapMs: 0, startGapMs: 5, fronts: [c.front(asker)] });
        s1 = await stats(all);
        assert.deepEqual(failures(known).slice(0, 5), []);
        const asked = s1[asker].router.queriesSent - s0[asker].router.queriesSent;
        const answered = delta(s1, s0, (s) => s.responder.queriesAnswered);
        const why = () => JSON.stringify({ asker: s1[asker].router, peers: s1[asker].peers, unanswered: delta(s1, s0, (s) => s.responder.queriesUnanswered), deferred: delta(s1, s0, (s) => s.responder.queriesDeferred), verdicts: s1.map((s) => s.responder.verdicts) });
        assert.equal(s1[asker].router.remoteHits - s0[asker].router.remoteHits, 200, `every known client answered by a REPLY: ${why()}`);
        const repliesPerQuery = r2(answered / asked);

        // 3. first calls nobody can answer, one at a time at the asking node
        s0 = await stats([asker]);
        const fresh = c.bundles({ clients: 50, links: 1, prefix: `alone${N}`, gapMs: 0, startGapMs: 150, fronts: [c.front(asker)] });
        s1 = await stats([asker]);
        assert.deepEqual(failures(fresh).slice(0, 5), []);
        const firstCallQueries = r2((s1[0].router.queriesSent - s0[0].router.queriesSent) / 50);
        const firstCallClaims = r2((s1[0].router.claimsSent - s0[0].router.claimsSent) / 50);

        // 4. the asking node restarted as a joiner
        await c.kill(asker);
        lastSyncs = true;
        await c.start(asker);
        const j = await c.stats(asker);
        const table = (await c.stats(0)).table.size;
        const joinerEntries = j.sync.sessions.entriesReceived;
        const syncMs = Math.round(j.sync.outcome?.ms ?? NaN);
        assert.equal(j.sync.outcome?.end, 'complete', 'the joiner synced');

        // 5. loss
        s0 = await stats(all);
        c.addLoss(10);
        b = c.bundles({ clients: 1000, links: 2, prefix: `lossy${N}`, gapMs: 0, startGapMs: 3, fronts: all.map((i) => c.front(i)) }, 600_000);
        const dropped = c.removeLoss();
        await sleep(500);
        s1 = await stats(all);
        assert.ok(dropped > 500, `the loss rule dropped only ${dropped}: the test did not test loss`);
        assert.deepEqual(failures(b).slice(0, 5), [], 'failed links at 10% loss');
        const lossSplit = splits(b).length;
        const lossSentPerCall = r2(delta(s1, s0, (s) => s.responder.sent) / calls);

        const f: Figures = { nodes: N, sentPerCall, messagesPerCall, receivedPerCall, queriesPerCall, claimsPerCall, repliesPerQuery, firstCallQueries, firstCallClaims, joinerEntries, table, syncMs, lossSplit, lossSentPerCall };
        figures.push(f);
        console.log(`      ${JSON.stringify(f)}`);
        assert.equal(lossSplit, 0, 'split bundles at 10% loss');
        // the rules hold at every size; the goals are the issue's, at 16
        assert.ok(repliesPerQuery <= 1.5, `${repliesPerQuery} REPLYs per QUERY`);
        assert.ok(firstCallQueries + firstCallClaims <= 4, `a first call nobody could answer sent ${firstCallQueries} QUERYs and ${firstCallClaims} CLAIMs`);
        // one peer's table, not N: the first ask invites the rank-0 peer
        // only; when its answer is late (a slow host) the next ask invites
        // two, and both answer, so the bound is per peer the joiner asked.
        // (A CI run once had 2,100 for 1,050 with one peer asked: a peer's
        // DIGEST came during the sync and the joiner pulled every differing
        // bucket, the whole table again; digests now wait for the sync.)
        const askedPeers = j.sync.outcome?.widestAsk === 0 ? N - 1 : (j.sync.outcome?.widestAsk ?? 1);
        assert.ok(joinerEntries <= 1.2 * table * askedPeers, `the joiner received ${joinerEntries} entries for a table of ${table}, having asked ${askedPeers} peer(s) to answer: ${JSON.stringify({ outcome: j.sync.outcome, sessions: j.sync.sessions, antiEntropy: j.antiEntropy })}`);
        if (askedPeers > 1) console.log(`      the joiner's first ask went unanswered for the sync retry time: it asked ${askedPeers} peers, and received ${joinerEntries} entries for ${table}`);
        const three = figures.find((x) => x.nodes === 3);
        // flat from 8 to 16: twice the nodes, at most 1.5x the messages per
        // call (the growth issue 18 found was N-fold: N-1 REPLYs per QUERY,
        // 2N+1 QUERYs for a first call); against 3 nodes it is printed, not
        // judged: there a third of the links arrive at their client's
        // arbiter and settle without a CLAIM, a discount that fades with N
        const eight = figures.find((x) => x.nodes === 8);
        if (three && N > 3) console.log(`      messages sent per call: ${messagesPerCall} at ${N} nodes, ${r2(messagesPerCall / three.messagesPerCall)}x the 3-node figure (${three.messagesPerCall})`);
        if (eight && N === 16) assert.ok(messagesPerCall <= 1.5 * eight.messagesPerCall, `${messagesPerCall} messages (clients in QUERY, CLAIM, UPDATE and REPLY) sent per call at 16 nodes, ${eight.messagesPerCall} at 8`);
      } finally {
        c.stopAll();
        lan.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
