// A configuration reload (SIGHUP, `affinityd reload`): the new configuration
// is validated whole by the caller first; here it is compared with the one
// in effect, and what can change without reopening sockets or resizing
// memory is applied. Settings marked `restart` in the schema
// (config.ts RESTART_ONLY_SETTINGS) are reported, keep their old values, and
// stay so in the configuration the node reports as in effect.
import type { Keyring } from '../codec/frame';
import type { DirectoryMaintenance } from '../directory/maintenance/maintenance';
import type { Router } from '../directory/router';
import type { EndpointSet } from '../selection/endpoint-set';
import type { HealthChecks } from '../selection/health-checker';
import { createPolicy } from '../selection/policy';
import { type Config, RESTART_ONLY_SETTINGS } from './config';
import type { ReloadResult } from './node-view';
import { routerOptions } from './options';
import type { SnapshotKeeper } from './snapshots';

/** The parts of a running node a reload changes. */
export interface Reloadable {
  readonly endpoints: EndpointSet;
  readonly router: Router;
  readonly health: HealthChecks;
  readonly maintenance: DirectoryMaintenance;
  readonly snapshots: SnapshotKeeper;
  readonly responder: { setKeyring(ring: Keyring): void };
  setLogLevel(level: Config['log']['level']): void;
}

const pick = (o: unknown, path: string): unknown => path.split('.').reduce((x: any, k) => x?.[k], o); // eslint-disable-line @typescript-eslint/no-explicit-any
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Applies next over old; returns what was applied, what needs a restart, and the configuration now in effect. */
export function applyReload(t: Reloadable, old: Config, next: Config, ring?: Keyring, radius?: { prepare(next: Config): () => string }): ReloadResult & { effective: Config } {
  // the RADIUS API reads its password files first: one it cannot use throws before anything changes
  const applyRadius = radius?.prepare(next);
  const needRestart = RESTART_ONLY_SETTINGS.filter((k) => !same(pick(old, k), pick(next, k)));
  const digestsRunning = !!t.maintenance.antiEntropy;
  if (!digestsRunning && !same(old.antiEntropy, next.antiEntropy)) needRestart.push('antiEntropy');
  const applied: string[] = [];
  if (!same(old.endpoints, next.endpoints)) {
    const r = t.endpoints.replace(next.endpoints);
    applied.push(`endpoints (+${r.added} -${r.removed})`);
  }
  if (!same(old.query, next.query) || !same(old.selection.policy, next.selection.policy) || old.selection.failureHoldDownMs !== next.selection.failureHoldDownMs) {
    t.router.reconfigure(routerOptions(next), createPolicy(next.selection.policy));
    applied.push('query, selection');
  }
  if (!same(old.selection.healthCheck, next.selection.healthCheck)) {
    t.health.reconfigure(next.selection.healthCheck);
    applied.push('selection.healthCheck');
  }
  if (digestsRunning && !same(old.antiEntropy, next.antiEntropy)) {
    t.maintenance.reconfigure(next.antiEntropy);
    applied.push('antiEntropy');
  }
  if (old.directory.snapshotIntervalSeconds !== next.directory.snapshotIntervalSeconds) {
    t.snapshots.every(next.directory.snapshotIntervalSeconds);
    applied.push('directory.snapshotIntervalSeconds');
  }
  if (applyRadius) applied.push(applyRadius());
  if (ring) {
    t.responder.setKeyring(ring);
    applied.push(`keyring (${ring.keys.length} key(s), sending with key ${ring.sendKeyId})`);
  }
  if (old.log.level !== next.log.level) {
    t.setLogLevel(next.log.level);
    applied.push('log.level');
  }
  // what could not be applied keeps its old value, so the running config says what is in effect
  const effective = structuredClone(next);
  for (const k of needRestart) {
    const parts = k.split('.');
    const last = parts.pop()!;
    const dst = parts.reduce((x: any, p) => x[p], effective); // eslint-disable-line @typescript-eslint/no-explicit-any
    dst[last] = structuredClone(pick(old, k));
  }
  return { applied, needRestart, effective };
}
