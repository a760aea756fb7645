// SVG plots of the benchmark results (bench/results/*.json), for the README:
// lookups/s against batch size (one line per table size, the JS Map as a
// dashed line), lookups/s against table size, and responder latency
// percentiles. Plain SVG text: three small charts do not need a plotting stack.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(__dirname, 'results');
const read = (name: string) => (existsSync(join(dir, `${name}.json`)) ? JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) : undefined);
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e'];
const W = 640;
const H = 360;
const M = { l: 70, r: 175, t: 40, b: 50 };

interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
const si = (v: number) => (v >= 1e6 ? `${+(v / 1e6).toFixed(1)}M` : v >= 1e3 ? `${+(v / 1e3).toFixed(1)}k` : `${+v.toFixed(1)}`);

/** The SVG head: background, title, horizontal grid with y labels, y-axis name. */
function frame(title: string, yLabel: string, y1: number, py: (y: number) => number): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/><text x="${M.l}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const y = (y1 / 5) * i;
    out.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${py(y)}" y2="${py(y)}" stroke="#ddd"/><text x="${M.l - 6}" y="${py(y) + 4}" text-anchor="end">${si(y)}</text>`);
  }
  out.push(`<text transform="translate(16 ${(M.t + H - M.b) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return out;
}

function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], logX: boolean): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const fx = (x: number) => (logX ? Math.log2(x) : x);
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const y1 = Math.max(...ys) * 1.1;
  const px = (x: number) => M.l + ((fx(x) - x0) / (x1 - x0 || 1)) * (W - M.l - M.r);
  const py = (y: number) => H - M.b - (y / y1) * (H - M.t - M.b);
  const out = frame(title, yLabel, y1, py);
  for (const x of [...new Set(xs)].sort((a, b) => a - b)) {
    out.push(`<text x="${px(x)}" y="${H - M.b + 16}" text-anchor="middle">${si(x)}</text>`);
  }
  out.push(`<text x="${(M.l + W - M.r) / 2}" y="${H - 12}" text-anchor="middle">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${px(p[0]).toFixed(1)} ${py(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const p of s.points) out.push(`<circle cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="3" fill="${c}"/>`);
    out.push(`<line x1="${W - M.r + 12}" x2="${W - M.r + 32}" y1="${M.t + 18 * i}" y2="${M.t + 18 * i}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${W - M.r + 38}" y="${M.t + 18 * i + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

function barChart(title: string, yLabel: string, groups: string[], series: { name: string; values: number[] }[]): string {
  const y1 = Math.max(...series.flatMap((s) => s.values)) * 1.1;
  const gw = (W - M.l - M.r) / groups.length;
  const bw = (gw * 0.8) / series.length;
  const py = (y: number) => H - M.b - (y / y1) * (H - M.t - M.b);
  const out = frame(title, yLabel, y1, py);
  groups.forEach((g, gi) => out.push(`<text x="${M.l + gw * gi + gw / 2}" y="${H - M.b + 16}" text-anchor="middle">${esc(g)}</text>`));
  series.forEach((s, si2) => {
    const c = COLORS[si2 % COLORS.length];
    s.values.forEach((v, gi) => {
      const x = M.l + gw * gi + gw * 0.1 + bw * si2;
      out.push(`<rect x="${x.toFixed(1)}" y="${py(v).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${(H - M.b - py(v)).toFixed(1)}" fill="${c}"/>`);
    });
    out.push(`<rect x="${W - M.r + 12}" y="${M.t + 18 * si2 - 6}" width="20" height="10" fill="${c}"/><text x="${W - M.r + 38}" y="${M.t + 18 * si2 + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export function plot(): string[] {
  const written: string[] = [];
  const sizes = [1_000, 100_000, 1_000_000].filter((n) => read(`lookup-${n}`));
  if (sizes.length) {
    const series: Series[] = sizes.map((n) => ({ name: `native, ${si(n)} entries`, points: read(`lookup-${n}`).batches.map((b: { batch: number; lookupsPerSecond: number }) => [b.batch, b.lookupsPerSecond]) }));
    const big = read(`lookup-${sizes[sizes.length - 1]}`);
    series.push({ name: `JS Map, ${si(sizes[sizes.length - 1])}`, points: big.batches.map((b: { batch: number }) => [b.batch, big.jsMapLookupsPerSecond]), dashed: true });
    writeFileSync(join(dir, 'lookup-by-batch.svg'), lineChart('Table lookups from JS by batch size', 'keys per call', 'lookups per second', series, true));
    written.push('lookup-by-batch.svg');
    const pick = (n: number, batch: number) => read(`lookup-${n}`).batches.find((b: { batch: number }) => b.batch === batch)?.lookupsPerSecond ?? 0;
    writeFileSync(
      join(dir, 'lookup-by-size.svg'),
      lineChart('Table lookups from JS by table size', 'entries', 'lookups per second', [
        { name: 'batch 256', points: sizes.map((n) => [n, pick(n, 256)]) },
        { name: 'batch 16', points: sizes.map((n) => [n, pick(n, 16)]) },
        { name: 'one per call', points: sizes.map((n) => [n, read(`lookup-${n}`).singleLookupsPerSecond]) },
        { name: 'JS Map', points: sizes.map((n) => [n, read(`lookup-${n}`).jsMapLookupsPerSecond]), dashed: true },
      ], true),
    );
    written.push('lookup-by-size.svg');
  }
  const r = read('responder-1000000') ?? read('responder-100000');
  if (r) {
    const groups = ['p50', 'p99', 'p99.9'];
    const pick = (k: string) => [r[k].p50us, r[k].p99us, r[k].p999us];
    writeFileSync(
      join(dir, 'responder-latency.svg'),
      barChart('QUERY->REPLY round trip, one query in flight (us)', 'microseconds', groups, [
        { name: 'UDP echo floor', values: pick('echoFloorInflight1') },
        { name: 'native', values: pick('nativeInflight1') },
        { name: 'native, busy poll', values: pick('nativeBusyPollInflight1') },
        { name: 'JS dgram', values: pick('jsDgramInflight1') },
      ]),
    );
    written.push('responder-latency.svg');
  }
  return written;
}

if (require.main === module) console.log(`wrote ${plot().join(', ')}`);
