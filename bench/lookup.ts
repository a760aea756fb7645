// Batch lookups from JS into the native table, against a JS Map fed the same
// keys from Buffers, in one run. Usage: tsx bench/lookup.ts [entries] [batch]
import { native } from '../src/native';
import { benchKey, fmt, rate, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);
const batch = Number(process.argv[3] ?? 256);
const queries = 1 << 16; // a random sample of present keys, looked up over and over

const a = native();
const table = new a.AffinityTable(entries, 16);
const ep = table.internEndpoint(Buffer.from([10, 0, 0, 1]), 1701, Buffer.from('lns'));
const map = new Map<string, number>();
for (let i = 0; i < entries; i++) {
  const k = benchKey(i);
  table.upsert(k, ep, 1, 1, 86400);
  map.set(k.toString('latin1'), ep);
}

// The same queries for both: Buffers as they come off a socket.
const picks: Buffer[] = [];
for (let i = 0; i < queries; i++) picks.push(benchKey(Math.floor(Math.random() * entries)));
const avgKey = picks.reduce((s, k) => s + k.length, 0) / picks.length;

// native: keys laid out once in one buffer with offsets (what a batch caller does)
const groups: { keys: Buffer; offsets: Uint32Array }[] = [];
for (let g = 0; g < queries; g += batch) {
  const part = picks.slice(g, g + batch);
  const offsets = new Uint32Array(part.length + 1);
  part.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
  groups.push({ keys: Buffer.concat(part), offsets });
}
const endpoints = new Int32Array(batch);
let hits = 0;
const nativeRate = rate(queries, () => {
  for (const g of groups) hits += table.lookupBatch(g.keys, g.offsets, g.offsets.length - 1, endpoints, null);
});
let mapHits = 0;
const mapRate = rate(queries, () => {
  for (const k of picks) if (map.get(k.toString('latin1')) !== undefined) mapHits++;
});
if (hits === 0 || mapHits === 0) throw new Error('no hits: the benchmark looked up nothing');

const single = new Uint32Array(5);
const singleRate = rate(queries, () => {
  for (const k of picks) table.lookup(k, single);
});

const result = {
  entries,
  batch,
  averageKeyOctets: Number(avgKey.toFixed(1)),
  nativeBatchLookupsPerSecond: Math.round(nativeRate),
  nativeSingleLookupsPerSecond: Math.round(singleRate),
  jsMapLookupsPerSecond: Math.round(mapRate),
  ratioBatchToMap: Number((nativeRate / mapRate).toFixed(2)),
  ratioSingleToMap: Number((singleRate / mapRate).toFixed(2)),
  memoryBytesPerEntry: Number((table.stats().memoryBytes / entries).toFixed(1)),
};
console.log(
  `lookup ${entries} entries, ${avgKey.toFixed(1)}-octet keys: native batch(${batch}) ${fmt(nativeRate)}/s, ` +
    `native single ${fmt(singleRate)}/s, JS Map ${fmt(mapRate)}/s; batch/Map = ${result.ratioBatchToMap}x`,
);
writeResult(`lookup-${entries}-${batch}`, result);
