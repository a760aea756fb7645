// UPDATE apply rate into the table and memory per entry at 1M entries,
// against a JS Map fed the same keys, in one run.
// Usage: tsx bench/update-apply.ts [entries]
import { native } from '../src/native';
import { benchKey, fmt, writeResult } from './lib';

const entries = Number(process.argv[2] ?? 1_000_000);
const a = native();
const keys = Array.from({ length: entries }, (_, i) => benchKey(i));
const all = Buffer.concat(keys);
const offsets = new Uint32Array(entries + 1);
keys.forEach((k, i) => (offsets[i + 1] = offsets[i] + k.length));
const chunk = 4096; // as a bulk sync or a busy responder would apply them

function applyAll(table: ReturnType<typeof make>, version: number): number {
  const fields = new Uint32Array(chunk * 4);
  let stored = 0;
  for (let base = 0; base < entries; base += chunk) {
    const n = Math.min(chunk, entries - base);
    for (let i = 0; i < n; i++) fields.set([0, version, 1, 3600], i * 4);
    stored += table.upsertBatch(all, offsets.subarray(base, base + n + 1), n, fields, null);
  }
  return stored;
}
function make() {
  const t = new a.AffinityTable(entries, 16);
  t.internEndpoint(Buffer.from([198, 51, 100, 10]), 1701, Buffer.from('lns-1'));
  return t;
}

global.gc?.();
const rssBefore = process.memoryUsage().rss;
const table = make();
let t0 = process.hrtime.bigint();
const inserted = applyAll(table, 1);
const insertRate = entries / (Number(process.hrtime.bigint() - t0) / 1e9);
const rssAfter = process.memoryUsage().rss;
t0 = process.hrtime.bigint();
const replaced = applyAll(table, 2);
const replaceRate = entries / (Number(process.hrtime.bigint() - t0) / 1e9);
if (inserted !== entries || replaced !== entries) throw new Error(`stored ${inserted} and ${replaced} of ${entries}`);

// Baseline: a JS Map fed the same keys from Buffers, storing the same fields.
const map = new Map<string, { endpoint: number; version: number; origin: number; expires: number }>();
t0 = process.hrtime.bigint();
for (let i = 0; i < entries; i++) map.set(keys[i].toString('latin1'), { endpoint: 0, version: 1, origin: 1, expires: 3600 });
const mapInsertRate = entries / (Number(process.hrtime.bigint() - t0) / 1e9);
t0 = process.hrtime.bigint();
for (let i = 0; i < entries; i++) {
  const k = keys[i].toString('latin1');
  const e = map.get(k)!;
  if (e.version < 2) map.set(k, { endpoint: 0, version: 2, origin: 1, expires: 3600 });
}
const mapReplaceRate = entries / (Number(process.hrtime.bigint() - t0) / 1e9);

const st = table.stats();
const result = {
  entries,
  averageKeyOctets: Number((all.length / entries).toFixed(1)),
  insertsPerSecond: Math.round(insertRate),
  replacesPerSecond: Math.round(replaceRate),
  jsMapInsertsPerSecond: Math.round(mapInsertRate),
  jsMapReplacesPerSecond: Math.round(mapReplaceRate),
  ratioInsert: Number((insertRate / mapInsertRate).toFixed(2)),
  ratioReplace: Number((replaceRate / mapReplaceRate).toFixed(2)),
  tableBytesPerEntry: Number((st.memoryBytes / entries).toFixed(1)),
  rssBytesPerEntry: Number(((rssAfter - rssBefore) / entries).toFixed(1)),
};
console.log(
  `update apply, ${entries} entries: insert ${fmt(insertRate)}/s, replace ${fmt(replaceRate)}/s; JS Map ${fmt(mapInsertRate)}/s and ${fmt(mapReplaceRate)}/s ` +
    `(${result.ratioInsert}x, ${result.ratioReplace}x); ${result.tableBytesPerEntry} B/entry allocated, ${result.rssBytesPerEntry} B/entry resident`,
);
writeResult(`update-apply-${entries}`, result);
