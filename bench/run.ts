// npm run bench [-- --quick]  (also: affinityd bench [--quick])
// Every scenario in a process of its own, each with its baseline measured in
// the same run; a progress line per scenario; results with the machine and
// the date in bench/results/*.json; plots in bench/results/*.svg; and a
// summary against the targets of the foundation and endpoint-determination
// issues. Exits non-zero if a scenario failed or did not report.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { fmt, machine } from './lib';
import { plot } from './plot';

const quick = process.argv.includes('--quick');
const big = quick ? 100_000 : 1_000_000;
const seconds = quick ? 1 : 3;
const sizes = quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000];
const batches = quick ? '1,16,256' : '1,2,4,8,16,32,64,128,256';

const trials: { file: string; args: string[]; result: string; about: string }[] = [
  ...sizes.map((n) => ({ file: 'lookup.ts', args: [String(n), batches], result: `lookup-${n}`, about: `table lookups at ${fmt(n)} entries` })),
  { file: 'update-apply.ts', args: [String(big)], result: `update-apply-${big}`, about: 'UPDATE apply and memory per entry' },
  { file: 'responder.ts', args: [String(big), String(seconds)], result: `responder-${big}`, about: 'native responder against a JS dgram responder and a UDP echo floor' },
  { file: 'route.ts', args: [String(big)], result: `route-${big}`, about: 'route decisions: local hits, remote hits, misses' },
  { file: 'redis.ts', args: [String(big)], result: `redis-${big}`, about: 'the same lookups against Redis' },
  { file: 'storm.ts', args: [String(quick ? 5_000 : 100_000)], result: `storm-${quick ? 5_000 : 100_000}`, about: 'reconnect storm after a restart of every node' },
  { file: 'frontend.ts', args: [String(seconds), quick ? '2' : '6'], result: 'frontend', about: 'front-end connections against direct, a bare Node splice and HAProxy' },
  { file: 'sync.ts', args: ['100000'], result: 'sync-100000', about: 'bulk sync of 100k entries against a snapshot load' },
  { file: 'growth.ts', args: [quick ? '3,8' : '3,8,16'], result: 'growth', about: 'per-call costs against the node count (3, 8, 16 nodes)' },
  { file: 'agreement.ts', args: [String(quick ? 60 : 400)], result: 'agreement', about: 'a miss with and without agreement; concurrent first calls' },
  { file: 'sites.ts', args: [quick ? '2000' : '20000'], result: 'sites', about: 'claims in the site directory (Redis) against a bare SET NX' },
  { file: 'radius.ts', args: [quick ? '3000' : '20000', '32'], result: 'radius', about: 'Access-Requests through FreeRADIUS asking affinityd against FreeRADIUS alone' },
  ...(quick ? [65_536] : [65_536, 1_000_000]).map((n) => ({
    file: 'table-churn.ts',
    args: [String(n), quick ? '500000' : '2000000', quick ? '5' : '41'],
    result: `table-churn-${n}`,
    about: `lookups at 95% of capacity (${fmt(n)}) before and after ${quick ? '500 k' : '2 M'} churn operations`,
  })),
];

const m = machine();
console.log(`affinityd benchmarks${quick ? ' (quick)' : ''} on ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}, ${m.date}`);
const results: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
const failed: string[] = [];
const start = Date.now();
for (const [i, t] of trials.entries()) {
  const t0 = Date.now();
  process.stdout.write(`\n[${i + 1}/${trials.length}] ${t.about} (${t.file} ${t.args.join(' ')}), ${((t0 - start) / 1000).toFixed(0)} s so far\n`);
  const file = join(__dirname, 'results', `${t.result}.json`);
  const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(__dirname, t.file), ...t.args], { stdio: 'inherit', cwd: join(__dirname, '..') });
  const after = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
  if (r.status !== 0 || !after || after === before) {
    console.log(`    FAILED: ${r.status !== 0 ? `exit ${r.status}` : 'no result written'}`);
    failed.push(t.result);
    continue;
  }
  results[t.result] = JSON.parse(after);
  console.log(`    done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
const plots = plot();

const L = results[`lookup-${big}`];
const lb = (b: number) => L?.batches.find((x: { batch: number }) => x.batch === b);
const U = results[`update-apply-${big}`];
const R = results[`responder-${big}`];
const RT = results[`route-${big}`];
const F = results.frontend;
const RD = results[`redis-${big}`];
const S = results[`storm-${quick ? 5_000 : 100_000}`];
const SY = results['sync-100000'];
const AG = results.agreement;
const GR = results.growth;
const GRL = GR?.rows?.[GR.rows.length - 1];
const RA = results.radius;
const SI = results.sites;
const TC = results['table-churn-65536'];
const TCM = results['table-churn-1000000'];
type Churn = { churnOps: number; ratioAbsentBatch: number; ratioPresentBatch: number };
const churnRatios = (x: Churn) => `absent keys ${x.ratioAbsentBatch}x, present ${x.ratioPresentBatch}x after ${fmt(x.churnOps)} ops`;
const churnMet = (x: Churn) => x.ratioAbsentBatch <= 2 && x.ratioPresentBatch <= 2;
type Row = [string, string, string | undefined, boolean | undefined];
type Ratio = { median: number; range: [number, number] };
/** A front-end ratio to HAProxy: the median of the per-round ratios, their range, and where a bare Node splice stood in the same rounds. */
const frontendRatio = (f: any, what: 'setup' | 'bulk'): string => { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (f.haproxySkipped) return f.haproxySkipped;
  const r: Ratio = what === 'setup' ? f.ratios.setupVsHaproxy : f.ratios.bulkVsHaproxy;
  const floor: Ratio | undefined = f.ratios.nodeSpliceVsHaproxy?.[what];
  const direct = what === 'setup' ? f.setupRateVsDirect : f.throughputVsDirect;
  return `${r.median}x (rounds ${r.range[0]}-${r.range[1]}); a bare Node splice ${floor ? `${floor.median}x` : '-'}; vs direct ${direct}x`;
};
const rows: Row[] = [
  ['batch lookups from JS (batch 256)', '>= 8 M/s', lb(256) && `${fmt(lb(256).lookupsPerSecond)}/s`, lb(256) && lb(256).lookupsPerSecond >= 8e6],
  ['  vs JS Map (same keys from Buffers)', '>= 6x', lb(256) && `${lb(256).ratioToMap}x`, lb(256) && lb(256).ratioToMap >= 6],
  ['  vs JS Map with string keys at hand', 'ratio', lb(256) && `${lb(256).ratioToMapStringKeys}x (Map ${fmt(L.jsMapStringKeyLookupsPerSecond)}/s; Buffer to string alone ${fmt(L.bufferToStringPerSecond)}/s)`, undefined],
  ['responder QUERY->REPLY, 16 in flight', '>= 200 k/s', R && `${fmt(R.nativeInflight16.repliesPerSecond)}/s (echo floor ${fmt(R.echoFloorInflight16.repliesPerSecond)}/s)`, R && R.nativeInflight16.repliesPerSecond >= 200e3],
  ['responder p99, 1 in flight', '<= 50 us', R && `${R.nativeInflight1.p99us} us (busy poll ${R.nativeBusyPollInflight1.p99us} us; echo floor ${R.echoFloorInflight1.p99us} us)`, R && R.nativeInflight1.p99us <= 50],
  ['  vs JS dgram responder, 16 in flight', '>= 4x', R && `${R.ratioNativeToJsInflight16}x`, R && R.ratioNativeToJsInflight16 >= 4],
  ['UPDATE apply into the table', '>= 1 M/s', U && `${fmt(U.insertsPerSecond)}/s insert, ${fmt(U.replacesPerSecond)}/s replace`, U && U.insertsPerSecond >= 1e6],
  ['memory per entry', '<= 160 B', U && `${U.tableBytesPerEntry} B allocated, ${U.rssBytesPerEntry} B resident`, U && U.tableBytesPerEntry <= 160],
  ['route decisions, local hits (library API)', '>= 1 M/s', RT && `routeBatch ${fmt(RT.localHitsPerSecondBatch256)}/s, route() ${fmt(RT.localHitsPerSecondSingle)}/s (Map ${fmt(RT.jsMapRoutesPerSecond)}/s)`, RT && RT.localHitsPerSecondBatch256 >= 1e6],
  ['remote hit p99 vs JS ping-pong p99', '<= 3x', RT && `${RT.ratioRemoteP99ToPingPongP99}x: ${RT.remoteHitUs.p99.toFixed(0)} us (p50 ${RT.remoteHitUs.p50.toFixed(0)}) vs ${RT.jsPingPongUs.p99.toFixed(0)} us`, RT && RT.ratioRemoteP99ToPingPongP99 <= 3],
  ['  back to back (a loop of each, as the issue measured)', '<= 3x', RT?.backToBackRemoteHitUs && `${RT.ratioBackToBackRemoteP99ToPingPongP99}x: ${RT.backToBackRemoteHitUs.p99.toFixed(0)} us (p50 ${RT.backToBackRemoteHitUs.p50.toFixed(0)}) vs ${RT.backToBackJsPingPongUs.p99.toFixed(0)} us`, RT?.backToBackRemoteHitUs && RT.ratioBackToBackRemoteP99ToPingPongP99 <= 3],
  ['  vs the ping-pong with the echo in another process', 'ratio', RT && `${RT.ratioRemoteP99ToOtherProcessPingPongP99}x: its p99 ${RT.jsPingPongOtherProcessUs.p99.toFixed(0)} us (p50 ${RT.jsPingPongOtherProcessUs.p50.toFixed(0)})`, undefined],
  ['  reply spin on/off, remote hits back to back', 'ratio', RT && `p99 ${RT.backToBackUs.p99.toFixed(0)} vs ${RT.backToBackNoSpinUs.p99.toFixed(0)} us, p50 ${RT.backToBackUs.p50.toFixed(0)} vs ${RT.backToBackNoSpinUs.p50.toFixed(0)} us; taking turns p99 ${RT.remoteHitSmallPairUs.p99.toFixed(0)} vs ${RT.remoteHitNoSpinUs.p99.toFixed(0)} us, p50 ${RT.remoteHitSmallPairUs.p50.toFixed(0)} vs ${RT.remoteHitNoSpinUs.p50.toFixed(0)} us`, undefined],
  ['miss cost beyond the waits vs bare timers', '<= +1 ms', RT && `p50 ${RT.missBeyondConfiguredMs.p50.toFixed(2)} ms vs ${RT.bareTimersBeyondConfiguredMs.p50.toFixed(2)} ms`, RT && RT.missBeyondConfiguredMs.p50 - RT.bareTimersBeyondConfiguredMs.p50 <= 1],
  ['vs Redis (same lookups, batch 256)', 'ratio', RD && (RD.skipped ? `skipped: ${RD.skipped}` : `${RD.batches[1].ratio}x Redis's better of MGET and pipelined GETs; one at a time ${RD.ratioSingle}x, vs 4 connections x 64 in flight ${RD.ratioSingleToRedisConcurrent}x`), undefined],
  ['reconnect storm after a restart', '<= 5 s, 0 split', S && `${fmt(S.clients)} clients x 3 links in ${S.coldSeconds} s (warm ${S.warmSeconds} s); ${S.splitBundles} split`, S && S.splitBundles === 0 && (quick || S.coldSeconds <= 5)],
  ['datagrams sent per call, largest vs 3 nodes', '<= 1.5x', GRL && `${GRL.nodes} nodes: ${GR.ratioSentPerCallLargestTo3}x; REPLYs/QUERY ${GRL.repliesPerQuery}; first call ${GRL.firstCall.queries}+${GRL.firstCall.claims}; joiner ${GRL.joiner.ratio}x the table`, GRL && GR.ratioSentPerCallLargestTo3 <= 1.5 && GRL.repliesPerQuery <= 1.5 && GRL.firstCall.queries + GRL.firstCall.claims <= 4 && GRL.joiner.ratio <= 1.2],
  ['front end new connections vs HAProxy', '>= 0.5x', F && frontendRatio(F, 'setup'), F && F.setupRateVsHaproxy !== undefined && F.setupRateVsHaproxy >= 0.5],
  ['front end bulk throughput vs HAProxy', '>= 0.85x', F && frontendRatio(F, 'bulk'), F && F.throughputVsHaproxy !== undefined && F.throughputVsHaproxy >= 0.85],
  ['bulk sync of 100k entries (start to ready)', 'ratio', SY && `${SY.syncMs} ms = ${SY.ratioSyncToSnapshot}x a local snapshot load (${SY.snapshotLoadMs} ms)`, SY && SY.allComplete],
  ['agreement: added to a miss, p50', '<= +2 ms', AG && `+${AG.agreementCostMs.p50.toFixed(2)} ms (p99 +${AG.agreementCostMs.p99.toFixed(2)} ms); round-robin split ${AG.concurrentFirstCallsRoundRobin.splitWithAgreement} with, ${AG.concurrentFirstCallsRoundRobin.splitWithoutAgreement} without`, AG && AG.agreementCostMs.p50 <= 2],
  ['Access-Requests via FreeRADIUS + affinityd', 'ratio', RA && (RA.skipped ? `skipped: ${RA.skipped}` : `${fmt(RA.withAffinityd.perSecond)}/s = ${RA.ratio}x FreeRADIUS alone (${fmt(RA.baseline.perSecond)}/s); p50 ${RA.withAffinityd.p50ms} / p99 ${RA.withAffinityd.p99ms} ms vs ${RA.baseline.p50ms} / ${RA.baseline.p99ms} ms`), undefined],
  ['sites: claim in Redis vs a bare SET NX, p50', 'ratio', SI && (SI.skipped ? `skipped: ${SI.skipped}` : `${SI.ratioClaimWonToSetNx}x (${SI.claimWonUs.p50} us vs ${SI.bareSetNxUs.p50} us); 16 per call ${SI.ratioBatch16ToPipelinedSetNx}x pipelined`), undefined],
  ['lookups at 95% after churn vs fresh, 64 k', '<= 2x', TC && churnRatios(TC), TC && churnMet(TC)],
  ...(quick ? [] : [['lookups at 95% after churn vs fresh, 1 M', '<= 2x', TCM && churnRatios(TCM), TCM && churnMet(TCM)] as Row]),
  ['endpoint decision share of setup latency', 'not measurable', F && `${F.decisionUs} us = ${(F.decisionShareOfSetupLatency * 100).toFixed(1)}%`, F && F.decisionShareOfSetupLatency < 0.02],
];
console.log(`\n${'measure'.padEnd(42)} ${'target'.padEnd(14)} result`);
for (const [what, target, got, met] of rows) {
  console.log(`${what.padEnd(42)} ${target.padEnd(14)} ${got ?? 'not run'}  ${met === undefined ? '' : met ? '(met)' : '(NOT met)'}`);
}
writeFileSync(
  join(__dirname, 'results', `summary${quick ? '-quick' : ''}.json`),
  JSON.stringify({ machine: m, quick, rows: rows.map(([measure, target, result, met]) => ({ measure: measure.trim(), target, result, met })) }, null, 2) + '\n',
);
console.log(`\nplots: ${plots.map((p) => `bench/results/${p}`).join(', ') || 'none'}; ${((Date.now() - start) / 1000).toFixed(0)} s in all`);
if (quick) console.log('(--quick: smaller tables and shorter runs; the targets are for full runs)');
if (failed.length) console.log(`FAILED scenarios: ${failed.join(', ')}`);
process.exit(failed.length ? 1 : 0);
