// Lookups on a fresh table against the same table after churn at 95% of its
// capacity, in one run. Churn is what expiry and new clients do: remove a
// present entry, insert a new one, so the table stays at 95%. Lookups of
// present keys and of absent keys (a miss walks its key's whole probe
// chain), in batches of 256 and one key per call.
//
// Each cost is the fastest of ROUNDS passes over 32,768 keys (the fastest:
// this machine is shared, and interference only ever adds time). Ratios are
// churned cost over fresh cost, of the same table; and, since the machine
// may be busier after the churn than before it, also over a twin table
// filled the same way and never churned, measured in turns with the churned
// one. Also the churn rate at its start and at its end (inserts probe the
// same chains, holding the writer mutex).
// Usage: tsx bench/table-churn.ts [CAPACITY=65536] [CHURN_OPS=2000000] [ROUNDS=41]
import { native } from '../src/native';
import { fmt, writeResult } from './lib';

const capacity = Number(process.argv[2] ?? 65_536);
const churnOps = Number(process.argv[3] ?? 2_000_000);
const rounds = Number(process.argv[4] ?? 41);
const fill = Math.floor(capacity * 0.95);
const queries = 1 << 15;
const batch = 256;

// About 40 octets, like bench/lib.ts benchKey (which parses a text key:
// too slow for millions); the table sees only octets.
const key = (i: number) =>
  Buffer.concat([Buffer.from([2, 4, 10, (i >> 16) & 255, (i >> 8) & 255, i & 255]), Buffer.from(`subscriber-${i}@bench.example`)]);

const a = native();
type Table = InstanceType<ReturnType<typeof native>['AffinityTable']>;
function filled(): { table: Table; ep: number; present: number[] } {
  const table = new a.AffinityTable(capacity, 16);
  const ep = table.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('lns'));
  const present: number[] = [];
  for (let i = 0; i < fill; i++) {
    if (table.upsert(key(i), ep, 1, 1, 86400) !== 0) throw new Error(`insert of key ${i} refused`);
    present.push(i);
  }
  return { table, ep, present };
}
const churned = filled(); // the table churned
const twin = filled(); // the same fill, never churned

let seed = 12345;
const random = (n: number) => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed % n;
};
const querySet = (ids: number[]) => {
  const keys = ids.map(key);
  const groups: { keys: Buffer; offsets: Uint32Array }[] = [];
  for (let g = 0; g < keys.length; g += batch) {
    const part = keys.slice(g, g + batch);
    const offsets = new Uint32Array(part.length + 1);
    part.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
    groups.push({ keys: Buffer.concat(part), offsets });
  }
  return { keys, groups };
};
const absent = querySet(Array.from({ length: queries }, (_, i) => 1_000_000_000 + i)); // never inserted
const endpoints = new Int32Array(batch);
const out = new Uint32Array(5);

interface Costs {
  presentBatchNs: number;
  absentBatchNs: number;
  presentSingleNs: number;
  absentSingleNs: number;
}
// One pass of each kind over each table per round, in turns; the fastest pass of each.
function measure(tables: { table: Table; present: number[] }[]): Costs[] {
  const sets = tables.map((t) => querySet(Array.from({ length: queries }, () => t.present[random(t.present.length)])));
  const best = tables.map(() => ({ presentBatchNs: Infinity, absentBatchNs: Infinity, presentSingleNs: Infinity, absentSingleNs: Infinity }));
  const pass = (fn: () => void) => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / queries;
  };
  for (let r = 0; r <= rounds; r++) {
    tables.forEach(({ table }, i) => {
      const inBatches = (s: typeof absent, want: number) => () => {
        let hits = 0;
        for (const g of s.groups) hits += table.lookupBatch(g.keys, g.offsets, g.offsets.length - 1, endpoints, null);
        if (hits !== want) throw new Error(`${hits} hits, expected ${want}`);
      };
      const oneByOne = (s: typeof absent) => () => s.keys.forEach((k) => table.lookup(k, out));
      const costs = {
        presentBatchNs: pass(inBatches(sets[i], queries)),
        absentBatchNs: pass(inBatches(absent, 0)),
        presentSingleNs: pass(oneByOne(sets[i])),
        absentSingleNs: pass(oneByOne(absent)),
      };
      if (r === 0) return; // warm-up
      for (const k of Object.keys(costs) as (keyof Costs)[]) best[i][k] = Math.min(best[i][k], costs[k]);
    });
  }
  return best.map((b) => Object.fromEntries(Object.entries(b).map(([k, v]) => [k, Number(v.toFixed(1))])) as unknown as Costs);
}
const show = (c: Costs) =>
  `present ${c.presentBatchNs} ns/key in batches (${c.presentSingleNs} one by one), absent ${c.absentBatchNs} ns/key (${c.absentSingleNs})`;

const [fresh] = measure([churned]);
console.log(`table churn, capacity ${fmt(capacity)} at 95% (${fmt(fill)} entries), fresh: ${show(fresh)}`);

// Churn, timing its first and last tenth.
const tenth = Math.floor(churnOps / 10);
const churnRates: number[] = [];
let next = fill;
let t0 = process.hrtime.bigint();
const present = churned.present;
for (let n = 0; n < churnOps; n++) {
  const j = random(present.length);
  if (!churned.table.remove(key(present[j]))) throw new Error('a present key was not removed');
  present[j] = present[present.length - 1];
  present.pop();
  if (churned.table.upsert(key(next), churned.ep, 1, 1, 86400) !== 0) throw new Error(`insert of key ${next} refused`);
  present.push(next++);
  if (n + 1 === tenth || n + 1 === churnOps) churnRates.push(tenth / (Number(process.hrtime.bigint() - t0) / 1e9));
  if (n + 1 === churnOps - tenth) t0 = process.hrtime.bigint();
}
if (churned.table.stats().size !== fill) throw new Error(`size ${churned.table.stats().size}, expected ${fill}`);
const [after, twinNow] = measure([churned, twin]);
const ratio = (x: number, y: number) => Number((y / x).toFixed(2));
const result = {
  capacity,
  entries: fill,
  churnOps,
  rounds,
  fresh,
  churned: after,
  twinMeasuredInTurns: twinNow,
  ratioPresentBatch: ratio(fresh.presentBatchNs, after.presentBatchNs),
  ratioAbsentBatch: ratio(fresh.absentBatchNs, after.absentBatchNs),
  ratioPresentSingle: ratio(fresh.presentSingleNs, after.presentSingleNs),
  ratioAbsentSingle: ratio(fresh.absentSingleNs, after.absentSingleNs),
  ratioToTwinPresentBatch: ratio(twinNow.presentBatchNs, after.presentBatchNs),
  ratioToTwinAbsentBatch: ratio(twinNow.absentBatchNs, after.absentBatchNs),
  churnOpsPerSecondFirstTenth: Math.round(churnRates[0]),
  churnOpsPerSecondLastTenth: Math.round(churnRates[1]),
};
console.log(`after ${fmt(churnOps)} churn operations: ${show(after)}; never-churned twin in turns: ${show(twinNow)}`);
console.log(`churned/fresh: present ${result.ratioPresentBatch}x (${result.ratioPresentSingle}x one by one), absent ${result.ratioAbsentBatch}x (${result.ratioAbsentSingle}x); ` +
  `churned/twin: present ${result.ratioToTwinPresentBatch}x, absent ${result.ratioToTwinAbsentBatch}x; ` +
  `churn ${fmt(result.churnOpsPerSecondFirstTenth)}/s first tenth, ${fmt(result.churnOpsPerSecondLastTenth)}/s last`);
writeResult(`table-churn-${capacity}`, result);
