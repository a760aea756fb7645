// npm run bench [-- --quick]: every benchmark in a process of its own, then
// a summary against the targets of the foundation issue. Results (with the
// machine and the date) are in bench/results/*.json.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, machine } from './lib';

const quick = process.argv.includes('--quick');
const entries = quick ? 100_000 : 1_000_000;
const seconds = quick ? 1 : 3;

const trials: [string, string[], string][] = [
  ['lookup.ts', [String(entries), '256'], `lookup-${entries}-256`],
  ['lookup.ts', [String(entries), '16'], `lookup-${entries}-16`],
  ['update-apply.ts', [String(entries)], `update-apply-${entries}`],
  ['responder.ts', [String(entries), String(seconds)], `responder-${entries}`],
  ['route.ts', [String(entries)], `route-${entries}`],
  ['frontend.ts', [String(seconds)], 'frontend'],
];

const m = machine();
console.log(`affinityd benchmarks${quick ? ' (quick)' : ''} on ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, ${m.date}`);
const results: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
let failed = 0;
for (const [i, [file, args, name]] of trials.entries()) {
  console.log(`\n[${i + 1}/${trials.length}] ${file} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, file), ...args], { stdio: 'inherit', cwd: join(__dirname, '..') });
  if (r.status !== 0) {
    console.log(`    FAILED (exit ${r.status})`);
    failed++;
    continue;
  }
  results[name] = JSON.parse(readFileSync(join(__dirname, 'results', `${name}.json`), 'utf8'));
}

const L = results[`lookup-${entries}-256`];
const U = results[`update-apply-${entries}`];
const R = results[`responder-${entries}`];
const RT = results[`route-${entries}`];
const F = results.frontend;
const rows: [string, string, string, boolean | undefined][] = [
  ['batch lookups from JS', '>= 8 M/s', L && `${fmt(L.nativeBatchLookupsPerSecond)}/s`, L && L.nativeBatchLookupsPerSecond >= 8e6],
  ['  vs JS Map (same keys from Buffers)', '>= 6x', L && `${L.ratioBatchToMap}x`, L && L.ratioBatchToMap >= 6],
  ['responder QUERY->REPLY, 16 in flight', '>= 200 k/s', R && `${fmt(R.nativeInflight16.repliesPerSecond)}/s (echo floor ${fmt(R.echoFloorInflight16.repliesPerSecond)}/s)`, R && R.nativeInflight16.repliesPerSecond >= 200e3],
  ['responder p99, 1 in flight', '<= 50 us', R && `${R.nativeInflight1.p99us} us (busy poll ${R.nativeBusyPollInflight1.p99us} us; echo floor ${R.echoFloorInflight1.p99us} us)`, R && R.nativeInflight1.p99us <= 50],
  ['  vs JS dgram responder, 16 in flight', '>= 4x', R && `${R.ratioNativeToJsInflight16}x`, R && R.ratioNativeToJsInflight16 >= 4],
  ['UPDATE apply into the table', '>= 1 M/s', U && `${fmt(U.insertsPerSecond)}/s insert, ${fmt(U.replacesPerSecond)}/s replace`, U && U.insertsPerSecond >= 1e6],
  ['memory per entry', '<= 160 B', U && `${U.tableBytesPerEntry} B allocated, ${U.rssBytesPerEntry} B resident`, U && U.tableBytesPerEntry <= 160],
  ['route decisions, local hits (library API)', '>= 1 M/s', RT && `routeBatch ${fmt(RT.localHitsPerSecondBatch256)}/s, route() ${fmt(RT.localHitsPerSecondSingle)}/s (Map ${fmt(RT.jsMapRoutesPerSecond)}/s)`, RT && RT.localHitsPerSecondBatch256 >= 1e6],
  ['remote hit p99 (loopback)', '<= 300 us', RT && `${RT.remoteHitUs.p99.toFixed(0)} us (p50 ${RT.remoteHitUs.p50.toFixed(0)}; JS ping-pong p99 ${RT.jsPingPongUs.p99.toFixed(0)})`, RT && RT.remoteHitUs.p99 <= 300],
  ['miss cost beyond retries and time-outs', '< 1 ms', RT && `p50 ${RT.missBeyondConfiguredMs.p50.toFixed(2)} ms, p99 ${RT.missBeyondConfiguredMs.p99.toFixed(2)} ms (bare timers p50 ${RT.bareTimersBeyondConfiguredMs.p50.toFixed(2)})`, RT && RT.missBeyondConfiguredMs.p50 < 1],
  ['front end new connections vs HAProxy', 'ratio', F && `${F.setupRateVsHaproxy ?? '-'}x (vs direct ${F.setupRateVsDirect}x)`, undefined],
  ['front end bulk throughput vs HAProxy', 'ratio', F && `${F.throughputVsHaproxy ?? '-'}x (vs direct ${F.throughputVsDirect}x)`, undefined],
  ['endpoint decision share of setup latency', 'not measurable', F && `${F.decisionUs} us = ${(F.decisionShareOfSetupLatency * 100).toFixed(1)}%`, F && F.decisionShareOfSetupLatency < 0.02],
];
console.log(`\n${'measure'.padEnd(40)} ${'target'.padEnd(11)} result`);
for (const [what, target, got, met] of rows) {
  console.log(`${what.padEnd(40)} ${target.padEnd(11)} ${got ?? 'not run'}  ${met === undefined ? '' : met ? '(met)' : '(NOT met)'}`);
}
if (quick) console.log('\n(--quick: smaller tables and shorter runs; the targets are for full runs)');
process.exit(failed ? 1 : 0);
