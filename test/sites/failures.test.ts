// The site directory when Redis fails: killed and restarted empty in the
// middle of calls from two sites, hung (SIGSTOP), and one site cut off
// from it while the other still reaches it. No call waits longer than its
// budget (bounded by the timer lateness measured in the same run), every
// decision made without Redis is counted and written back, every client on
// which the two sites decided differently is reported exactly once as a
// conflict, and afterwards both sites and Redis agree on every client.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { formatClientKey } from '../../src/codec/client-key';
import type { RedisSiteDirectory } from '../../src/sites/redis-site-directory';
import type { ClaimOutcome } from '../../src/sites/site-directory';
import { decodeRecord } from '../../src/sites/site-record';
import { RedisServer, redisUnavailable } from '../helpers/redis-server';
import { requireOrSkip } from '../helpers/require';
import { clientOf, type EndpointName, entry, NodeTable, sleep, startSite, type TestSiteOptions, timerLateness, until, waitState } from '../helpers/sites';
import { TcpProxy } from '../helpers/tcp-proxy';

interface Call {
  readonly client: string;
  readonly at: 'A' | 'B';
  readonly ms: number;
  /** A bare budget timer started with the call: how late such a timer fired at that moment. */
  readonly shadow: Promise<number>;
  readonly outcome: ClaimOutcome;
  readonly endpoint: string;
}

const BUDGET = 100;

describe('site directory when Redis fails', function () {
  this.timeout(120_000);
  let dir = '';
  let redis: RedisServer | undefined;
  const closers: (() => Promise<void>)[] = [];
  const site = async (o: Omit<TestSiteOptions, 'holds'>) => {
    let table: NodeTable | undefined;
    const d = await startSite({ budgetMs: BUDGET, retry: { minMs: 50, maxMs: 200 }, heartbeatMs: 100, failuresBeforeDown: 2, ...o, holds: NodeTable.holds(() => table) });
    table = new NodeTable(d);
    closers.push(() => d.close());
    return { d, table };
  };
  const direct = () => [{ host: '127.0.0.1', port: redis!.port }];

  /** What Redis holds for a client: endpoint name, '(withdrawn)', or undefined. */
  const inRedis = (client: string): string | undefined => {
    const v = redis!.getRaw(`affinityd:${client}`);
    if (!v) return undefined;
    const r = decodeRecord(v);
    return r.kind === 'entry' ? r.entry.endpoint.name : '(withdrawn)';
  };

  async function call(d: RedisSiteDirectory, table: NodeTable, at: 'A' | 'B', client: string, ep: EndpointName, nodeId: number): Promise<Call> {
    const t0 = performance.now();
    const claimed = d.claim([entry(client, ep, 1, nodeId)]);
    // the same timer the directory's budget uses, started just after the
    // directory's own (claim() starts it before it returns): the floor of a
    // call that waited out its budget, on the same event-loop turns
    const shadow = new Promise<number>((r) => setTimeout(() => setImmediate(() => r(performance.now() - t0)), BUDGET));
    const [outcome] = await claimed;
    const ms = performance.now() - t0;
    return { client, at, ms, shadow, outcome, endpoint: table.claimed(outcome, d.site) };
  }

  before(async function () {
    const why = redisUnavailable();
    requireOrSkip(this, !why, why ?? '');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-sites-fail-'));
  });

  beforeEach(async () => {
    redis = await RedisServer.start({ dir });
  });

  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    redis?.resume();
    await redis?.kill();
  });

  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('Redis killed and restarted empty during calls from two sites: no call waits beyond its budget, the sites end agreeing', async () => {
    const A = await site({ site: 'north', nodeId: 1, nodes: direct() });
    const B = await site({ site: 'south', nodeId: 2, nodes: direct() });
    // entries made before the outage, which the restart loses
    const before = Array.from({ length: 100 }, (_, i) => clientOf(i, 'p'));
    for (const o of await A.d.claim(before.map((c) => entry(c, 'lns-c', 1, 1)))) A.table.claimed(o, 'north');

    const late = timerLateness();
    const calls: Call[] = [];
    let stop = false;
    const stream = (async () => {
      for (let i = 0; !stop; i++) {
        const jobs = [call(A.d, A.table, 'A', clientOf(i, 'a'), 'lns-a', 1), call(B.d, B.table, 'B', clientOf(i, 'b'), 'lns-b', 2)];
        // a client whose links reach both sites at once
        if (i % 3 === 0) jobs.push(call(A.d, A.table, 'A', clientOf(i, 'x'), 'lns-a', 1), call(B.d, B.table, 'B', clientOf(i, 'x'), 'lns-b', 2));
        calls.push(...(await Promise.all(jobs)));
        await sleep(3);
      }
    })();
    await sleep(300);
    await redis!.kill();
    await waitState(A.d, 'down');
    await waitState(B.d, 'down');
    // long enough that a call waiting for Redis to come back would stand out against the bound below
    await sleep(1500);
    await redis!.launch(); // the same port, empty
    await waitState(A.d, 'up');
    await waitState(B.d, 'up');
    await until(() => A.table.reconciles.length > 0 && B.table.reconciles.length > 0, 15_000, 'both sites to write their tables back');
    await sleep(300);
    stop = true;
    await stream;
    const lateness = late.stop();

    // no call waited for Redis beyond its budget
    const answered = calls.filter((c) => c.outcome.outcome !== 'site-local');
    const answeredMs = answered.map((c) => c.ms).sort((x, y) => x - y);
    const medianAnswer = answeredMs[answeredMs.length >> 1];
    const slowest = Math.max(...calls.map((c) => c.ms));
    const siteLocal = calls.filter((c) => c.outcome.outcome === 'site-local');
    console.log(
      `      ${calls.length} calls, ${siteLocal.length} decided site-locally; slowest ${slowest.toFixed(1)} ms ` +
        `(budget ${BUDGET} ms, worst timer lateness ${lateness.toFixed(1)} ms, median call answered by Redis ${medianAnswer.toFixed(1)} ms)`,
    );
    assert.ok(siteLocal.length > 0, 'the outage happened during calls');
    for (const c of calls) {
      const shadowMs = await c.shadow;
      assert.ok(c.ms <= shadowMs + lateness + medianAnswer, `a call took ${c.ms.toFixed(1)} ms; its shadow budget timer ${shadowMs.toFixed(1)} ms`);
    }
    assert.ok(answered.length > 0, 'calls were answered by Redis before and after the outage');
    // every decision made without Redis was counted
    for (const [d, at] of [[A.d, 'A'], [B.d, 'B']] as const) {
      const n = siteLocal.filter((c) => c.at === at).length;
      assert.equal(d.counters.claims.siteLocal, n);
      assert.equal(d.counters.siteLocal.down + d.counters.siteLocal.timeout + d.counters.siteLocal.error, n);
      assert.equal(d.journalSize, 0, 'the journal was written back');
    }
    // the restart lost the first entries; the write-back restored them
    assert.ok(A.table.reconciles.reduce((n, r) => n + r.written, 0) >= before.length);

    // every client on which the sites decided differently was reported exactly once, and nothing else
    const conflicts = [...A.table.conflicts, ...B.table.conflicts];
    const byClient = new Map<string, Call[]>();
    for (const c of calls) byClient.set(c.client, [...(byClient.get(c.client) ?? []), c]);
    let differed = 0;
    for (const [client, cs] of byClient) {
      if (!client.includes('/x-')) continue;
      const reported = conflicts.filter((c) => formatClientKey(c.clientKey) === client);
      if (new Set(cs.map((c) => c.endpoint)).size > 1) {
        differed++;
        assert.equal(reported.length, 1, `${client}: ${cs.map((c) => `${c.at}:${c.outcome.outcome}->${c.endpoint}`).join(' ')}; reported ${JSON.stringify(reported.map((r) => [r.why, r.winner, r.ours.site, r.theirs.site]))}`);
      } else {
        assert.equal(reported.length, 0, client);
      }
    }
    assert.equal(conflicts.length, differed);
    console.log(`      ${differed} clients decided differently by the two sites during the outage, each reported once as a conflict`);

    // and in the end both sites and Redis agree on every client
    const disagreeing = async () => {
      const clients = [...new Set([...A.table.records.keys(), ...B.table.records.keys()])];
      const values = await redis!.values(clients.map((c) => `affinityd:${c}`));
      return clients.filter((client, i) => {
        const v = values[i];
        const r = v ? decodeRecord(v) : undefined;
        const held = r?.kind === 'entry' ? r.entry.endpoint.name : r ? '(withdrawn)' : undefined;
        return [A.table, B.table].some((t) => t.records.has(client) && t.endpointOf(client) !== held);
      });
    };
    let left = await disagreeing();
    for (let i = 0; left.length > 0 && i < 100; i++) {
      await sleep(100);
      left = await disagreeing();
    }
    assert.deepEqual(left, [], 'both sites and Redis agree on every client');
  });

  it('Redis hung: calls come back site-local within the budget, Redis is down after two misses, and the late answers are used', async () => {
    const A = await site({ site: 'north', nodeId: 1, nodes: direct() });
    const healthy: number[] = [];
    for (let i = 0; i < 9; i++) healthy.push((await call(A.d, A.table, 'A', clientOf(i, 'healthy'), 'lns-a', 1)).ms);
    // what a call costs beyond its wait, measured here: the slowest healthy call (a loaded machine's GC pause included)
    const answerFloor = healthy.sort((x, y) => x - y)[8];
    const late = timerLateness();
    redis!.pause();
    const calls: Call[] = [];
    for (let i = 0; i < 6; i++) calls.push(await call(A.d, A.table, 'A', clientOf(i, 'hung'), 'lns-a', 1));
    const lateness = late.stop();
    // a call or two wait out the budget (the heartbeat probe may be the other miss), then Redis is down and calls do not wait
    const reasons = calls.map((c) => c.outcome.outcome === 'site-local' && c.outcome.reason);
    const timedOut = reasons.filter((r) => r === 'timeout').length;
    assert.ok(timedOut >= 1 && timedOut <= 2, reasons.join());
    assert.deepEqual(reasons.slice(timedOut), Array(6 - timedOut).fill('down'));
    for (const c of calls) {
      const shadowMs = await c.shadow;
      assert.ok(c.ms <= shadowMs + lateness + answerFloor, `${c.ms.toFixed(1)} ms; its shadow budget timer ${shadowMs.toFixed(1)} ms, timer lateness ${lateness.toFixed(1)} ms`);
    }
    assert.equal(A.d.state.state, 'down');
    assert.match((A.d.state as { reason: string }).reason, /no answer within 100 ms \(\d+ in a row\)/);
    redis!.resume();
    await waitState(A.d, 'up');
    // the two timed-out claims were answered late (won: nothing to write back); the four others were written back
    await until(() => A.d.counters.lateAnswers === timedOut, 5000, 'the late answers');
    await until(() => A.d.journalSize === 0, 5000, 'the journal to empty');
    for (const c of calls) assert.equal(inRedis(c.client), 'lns-a');
    assert.equal(A.d.counters.conflicts.theirs + A.d.counters.conflicts.ours, 0);
  });

  it('a journaled claim whose key holds a value that is not a record is skipped on return: Redis still comes up', async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: redis!.port });
    closers.push(() => proxy.close());
    const A = await site({ site: 'north', nodeId: 1, nodes: [{ host: '127.0.0.1', port: proxy.port }] });
    await proxy.cut();
    await waitState(A.d, 'down');
    const [bad, good] = [clientOf(1, 'poison'), clientOf(2, 'poison')];
    for (const c of [bad, good]) assert.equal((await call(A.d, A.table, 'A', c, 'lns-a', 1)).outcome.outcome, 'site-local');
    redis!.cli('SET', `affinityd:${bad}`, 'a stranger wrote this');
    await proxy.heal();
    await waitState(A.d, 'up');
    assert.equal(A.d.journalSize, 0);
    assert.deepEqual([A.d.counters.reconcile.written, A.d.counters.reconcile.skipped], [1, 1]);
    assert.equal(redis!.cli('GET', `affinityd:${bad}`).trim(), 'a stranger wrote this');
    assert.equal(inRedis(good), 'lns-a');
  });

  it('one site cut off from Redis while the other reaches it: on heal, the cut site adopts what the other decided first', async () => {
    const proxy = await TcpProxy.start({ host: '127.0.0.1', port: redis!.port });
    closers.push(() => proxy.close());
    // node 9 at the cut site: its entries beat node 2's by the version rule, so adopting needs a new record
    const A = await site({ site: 'north', nodeId: 9, nodes: [{ host: '127.0.0.1', port: proxy.port }] });
    const B = await site({ site: 'south', nodeId: 2, nodes: direct() });
    await proxy.cut();
    await waitState(A.d, 'down');
    const shared = Array.from({ length: 20 }, (_, i) => clientOf(i, 'shared'));
    const alone = Array.from({ length: 20 }, (_, i) => clientOf(i, 'alone'));
    const atA = await Promise.all([...shared, ...alone].map((c) => call(A.d, A.table, 'A', c, 'lns-a', 9)));
    const atB = await Promise.all(shared.map((c) => call(B.d, B.table, 'B', c, 'lns-b', 2)));
    assert.ok(atA.every((c) => c.outcome.outcome === 'site-local' && c.outcome.reason === 'down'));
    assert.ok(atB.every((c) => c.outcome.outcome === 'won'));
    assert.equal(A.d.journalSize, 40);
    await proxy.heal();
    await waitState(A.d, 'up');
    // the journal: the clients only A saw are written; the shared ones were B's first
    assert.equal(A.d.counters.reconcile.written, 20);
    assert.equal(A.d.counters.conflicts.theirs, 20);
    for (const c of A.table.conflicts) {
      assert.equal(c.why, 'reconcile');
      const r = c.resolved;
      // A's v1/9 beat B's v1/2, so the adoption is B's endpoint at v2 from node 9: it wins everywhere
      assert.deepEqual(r.kind === 'entry' && [r.entry.endpoint.name, r.entry.version, r.entry.originNode], ['lns-b', 2, 9]);
    }
    for (const c of shared) {
      assert.equal(inRedis(c), 'lns-b');
      assert.equal(A.table.endpointOf(c), 'lns-b');
      await until(() => B.table.records.get(c)?.kind === 'entry' && (B.table.records.get(c) as { entry: { version: number } }).entry.version === 2, 5000, `B to take the adoption of ${c}`);
      assert.equal(B.table.endpointOf(c), 'lns-b');
    }
    for (const c of alone) assert.equal(inRedis(c), 'lns-a');
    assert.equal(B.d.counters.conflicts.ours + B.d.counters.conflicts.theirs, 0, 'B did everything right');
  });
});
