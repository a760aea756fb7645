// A cluster that grows (issue 18): per-call costs at 3, 8 and 16 nodes, each
// node a process of its own on loopback (one multicast group), the defaults
// (rendezvous, agreement on). The baseline is the 3-node cluster of the same
// run: each figure is printed with its ratio to it. Per size:
//   - 1,000 new clients x 2 links, a client's two links at two nodes at the
//     same moment, a client every 3 ms: datagrams sent and received per
//     call (every node's responder), QUERYs and CLAIMs per call;
//   - a node that has to ask (restarted with bulk sync and digests off):
//     200 known clients there: REPLYs per QUERY (entries answered, summed
//     over every directory, per client asked);
//   - 50 first calls nobody can answer at that node: QUERYs + CLAIMs sent;
//   - the node restarted as a joiner: entries received for the table, and
//     its sync time.
// The namespace test test/cluster/netns-growth.test.ts measures the same on
// separate hosts, with 10% loss too.
// Usage: tsx bench/growth.ts [sizes, e.g. 3,8,16]
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { extname, join } from 'node:path';

import { writeResult } from './lib';

const sizes = (process.argv[2] ?? '3,8,16').split(',').map(Number);
const file = join(__dirname, 'fixtures', `growth-node${extname(__filename)}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
type Stats = any; // eslint-disable-line @typescript-eslint/no-explicit-any

class Node {
  private seq = 0;
  private readonly waiting = new Map<number, (m: any) => void>(); // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly child: ChildProcess;
  readonly ready: Promise<number>;
  constructor(id: number, o: { group: string; port: number; secret: Buffer; sync: boolean; antiEntropy: boolean }) {
    this.child = fork(file, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.on('message', (m: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        if (m.type === 'ready') resolve(m.ms);
        else this.waiting.get(m.id)?.(m);
      });
      this.child.once('exit', (code) => reject(new Error(`node ${id} exited (${code})`)));
    });
    this.child.send({ type: 'init', id, ...o });
  }
  private ask(m: object): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.waiting.set(id, (r) => (this.waiting.delete(id), resolve(r)));
      this.child.send({ ...m, id });
    });
  }
  route(keys: string[]): Promise<{ endpoints: string[]; failed: number }> {
    return this.ask({ type: 'route', keys });
  }
  async stats(): Promise<Stats> {
    return (await this.ask({ type: 'stats' })).stats;
  }
  close(): Promise<void> {
    return new Promise((r) => {
      if (this.child.exitCode !== null) return r();
      this.child.once('exit', () => r());
      this.child.send({ type: 'close' });
    });
  }
}

const r2 = (x: number) => Number(x.toFixed(2));
const key = (prefix: string, i: number) => `2:192.0.2.${(i % 250) + 1}/${prefix}-${i}`;

async function measure(N: number) {
  const o = { group: '239.255.95.1', port: 37000 + Math.floor(Math.random() * 1000), secret: randomBytes(32) };
  const nodes: Node[] = [new Node(1, { ...o, sync: true, antiEntropy: true })];
  try {
    await nodes[0].ready;
    for (let i = 2; i <= N; i++) nodes.push(new Node(i, { ...o, sync: true, antiEntropy: true }));
    await Promise.all(nodes.map((n) => n.ready));
    await sleep(1500 + 2000); // HELLOs: every node counts the others as arbiters (arbiterDelayMs 1000), and every handover is over (handoverMs 2000)
    const all = () => Promise.all(nodes.map((n) => n.stats()));
    const delta = (a: Stats[], b: Stats[], f: (s: Stats) => number) => a.reduce((x, s) => x + f(s), 0) - b.reduce((x, s) => x + f(s), 0);

    // new clients, two links each at two nodes at once
    let s0 = await all();
    const routed: Promise<[string, string]>[] = [];
    for (let i = 0; i < 1000; i++) {
      const k = key(`grow${N}`, i);
      routed.push(Promise.all([nodes[i % N].route([k]), nodes[(i + 1) % N].route([k])]).then(([a, b]) => [a.endpoints[0], b.endpoints[0]]));
      await sleep(3);
    }
    const landed = await Promise.all(routed);
    await sleep(500);
    let s1 = await all();
    const calls = 2000;
    const split = landed.filter(([a, b]) => a !== b).length;
    const failed = landed.filter(([a, b]) => !a || !b).length;
    const perCall = {
      datagramsSent: r2(delta(s1, s0, (s) => s.responder.sent) / calls),
      datagramsReceived: r2(delta(s1, s0, (s) => s.responder.received) / calls),
      queries: r2(delta(s1, s0, (s) => s.router.queriesSent) / calls),
      claims: r2(delta(s1, s0, (s) => s.router.claimsSent) / calls),
    };

    // a node that has to ask
    await nodes[N - 1].close();
    nodes[N - 1] = new Node(N, { ...o, sync: false, antiEntropy: false });
    await nodes[N - 1].ready;
    await sleep(1500);
    s0 = await all();
    const asks: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      asks.push(nodes[N - 1].route([key(`grow${N}`, i)]));
      await sleep(5);
    }
    await Promise.all(asks);
    s1 = await all();
    const asked = s1[N - 1].router.queriesSent - s0[N - 1].router.queriesSent;
    const repliesPerQuery = r2(delta(s1, s0, (s) => s.responder.queriesAnswered) / asked);
    const remoteHits = s1[N - 1].router.remoteHits - s0[N - 1].router.remoteHits;

    // first calls nobody can answer
    const a0 = await nodes[N - 1].stats();
    for (let i = 0; i < 50; i++) await nodes[N - 1].route([key(`alone${N}`, i)]);
    const a1 = await nodes[N - 1].stats();
    const firstCall = { queries: r2((a1.router.queriesSent - a0.router.queriesSent) / 50), claims: r2((a1.router.claimsSent - a0.router.claimsSent) / 50) };

    // a joiner
    await nodes[N - 1].close();
    nodes[N - 1] = new Node(N, { ...o, sync: true, antiEntropy: true });
    await nodes[N - 1].ready;
    const j = await nodes[N - 1].stats();
    const table = (await nodes[0].stats()).table.size;
    return {
      nodes: N, split, failed, perCall, repliesPerQuery, remoteHits, firstCall,
      joiner: { entriesReceived: j.sync.sessions.entriesReceived, table, ratio: r2(j.sync.sessions.entriesReceived / table), syncMs: Math.round(j.sync.outcome?.ms ?? NaN), end: j.sync.outcome?.end },
    };
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
  }
}

async function main(): Promise<void> {
  const rows = [];
  for (const N of sizes) {
    process.stderr.write(`  ${N} nodes...\n`);
    rows.push(await measure(N));
  }
  const base = rows.find((r) => r.nodes === 3) ?? rows[0];
  console.log(`growth: per-call costs against the node count (ratios to ${base.nodes} nodes, same run)`);
  console.log('  nodes | sent/call      | received/call  | QUERYs/call | CLAIMs/call | REPLYs/QUERY | first call Q+C | joiner entries/table | sync ms | split, failed');
  for (const r of rows) {
    const ratio = (x: number, y: number) => `${x} (${(x / y).toFixed(2)}x)`;
    console.log(
      `  ${String(r.nodes).padStart(5)} | ${ratio(r.perCall.datagramsSent, base.perCall.datagramsSent).padEnd(14)} | ${ratio(r.perCall.datagramsReceived, base.perCall.datagramsReceived).padEnd(14)} | ` +
        `${String(r.perCall.queries).padEnd(11)} | ${String(r.perCall.claims).padEnd(11)} | ${String(r.repliesPerQuery).padEnd(12)} | ${`${r.firstCall.queries}+${r.firstCall.claims}`.padEnd(14)} | ` +
        `${`${r.joiner.entriesReceived}/${r.joiner.table} (${r.joiner.ratio}x)`.padEnd(20)} | ${String(r.joiner.syncMs).padEnd(7)} | ${r.split}, ${r.failed}`,
    );
  }
  writeResult('growth', { rows, ratioSentPerCallLargestTo3: r2(rows[rows.length - 1].perCall.datagramsSent / base.perCall.datagramsSent) });
  if (rows.some((r) => r.split > 0 || r.failed > 0)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
