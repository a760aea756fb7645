// Table lookups from JS at one table size: one key per call, and batches of
// the given sizes, each against a JS Map in the same process and run, in two
// ways: fed the same keys as Buffers off a socket (the Buffer-to-string
// conversion included, as the router would pay it), and keyed by strings the
// program already has (the strongest Map baseline; the conversion's own cost
// is shown apart). Usage: tsx bench/lookup.ts ENTRIES [BATCHES]
// (BATCHES comma-separated, default 1,2,4,8,16,32,64,128,256).
import { native } from '../src/native';
import { benchKey, fmt, rate, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);
const batches = (process.argv[3] ?? '1,2,4,8,16,32,64,128,256').split(',').map(Number);
const queries = 1 << 15; // a random sample of present keys, looked up over and over

const a = native();
const table = new a.AffinityTable(entries, 16);
const ep = table.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('lns'));
const map = new Map<string, number>();
for (let i = 0; i < entries; i++) {
  const k = benchKey(i);
  table.upsert(k, ep, 1, 1, 86400);
  map.set(k.toString('latin1'), ep);
}
// The same queries for both: Buffers, as they come off a socket.
const picks: Buffer[] = [];
for (let i = 0; i < queries; i++) picks.push(benchKey(Math.floor(Math.random() * entries)));
const avgKey = picks.reduce((s, k) => s + k.length, 0) / picks.length;

let mapHits = 0;
const mapRate = rate(queries, () => {
  for (const k of picks) if (map.get(k.toString('latin1')) !== undefined) mapHits++;
});
// the same keys as strings made beforehand: what a JS program that holds
// string keys pays (V8 caches a string's hash, so after the first round
// these lookups do not even hash: the upper bound of a Map)
const pickStrings = picks.map((k) => k.toString('latin1'));
let stringHits = 0;
const mapStringRate = rate(queries, () => {
  for (const s of pickStrings) if (map.get(s) !== undefined) stringHits++;
});
// and the conversion alone
let converted = 0;
const toStringRate = rate(queries, () => {
  for (const k of picks) converted += k.toString('latin1').length;
});
const out = new Uint32Array(5);
const singleRate = rate(queries, () => {
  for (const k of picks) table.lookup(k, out);
});
const rows: { batch: number; lookupsPerSecond: number; ratioToMap: number; ratioToMapStringKeys: number }[] = [];
for (const batch of batches) {
  const groups: { keys: Buffer; offsets: Uint32Array }[] = [];
  for (let g = 0; g < queries; g += batch) {
    const part = picks.slice(g, g + batch);
    const offsets = new Uint32Array(part.length + 1);
    part.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
    groups.push({ keys: Buffer.concat(part), offsets });
  }
  const endpoints = new Int32Array(batch);
  let hits = 0;
  const r = rate(queries, () => {
    for (const g of groups) hits += table.lookupBatch(g.keys, g.offsets, g.offsets.length - 1, endpoints, null);
  });
  if (hits === 0) throw new Error('no hits: the benchmark looked up nothing');
  rows.push({ batch, lookupsPerSecond: Math.round(r), ratioToMap: Number((r / mapRate).toFixed(2)), ratioToMapStringKeys: Number((r / mapStringRate).toFixed(2)) });
}
if (mapHits === 0 || stringHits === 0 || converted === 0) throw new Error('no Map hits');
const result = {
  entries,
  averageKeyOctets: Number(avgKey.toFixed(1)),
  jsMapLookupsPerSecond: Math.round(mapRate),
  jsMapStringKeyLookupsPerSecond: Math.round(mapStringRate),
  bufferToStringPerSecond: Math.round(toStringRate),
  singleLookupsPerSecond: Math.round(singleRate),
  ratioSingleToMap: Number((singleRate / mapRate).toFixed(2)),
  ratioSingleToMapStringKeys: Number((singleRate / mapStringRate).toFixed(2)),
  batches: rows,
  memoryBytesPerEntry: Number((table.stats().memoryBytes / entries).toFixed(1)),
};
console.log(
  `lookup, ${entries} entries, ${avgKey.toFixed(1)}-octet keys: JS Map from Buffers ${fmt(mapRate)}/s, with string keys at hand ${fmt(mapStringRate)}/s ` +
    `(Buffer to string alone ${fmt(toStringRate)}/s); native one per call ${fmt(singleRate)}/s (${result.ratioSingleToMap}x, ${result.ratioSingleToMapStringKeys}x); ` +
    rows.map((r) => `batch ${r.batch}: ${fmt(r.lookupsPerSecond)}/s (${r.ratioToMap}x, ${r.ratioToMapStringKeys}x)`).join(', '),
);
writeResult(`lookup-${entries}`, result);
