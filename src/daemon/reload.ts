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
import type { SplitDetector } from '../links/split-detector';
import type { Logger } from '../util/logger';
import { type Config, type ConfigInput, loadConfigFile, loadKeyFile, resolveConfig, RESTART_ONLY_SETTINGS } from './config';
import type { ServiceNotifier } from './service-notifier';
import type { ReloadResult } from './node-view';
import { routerOptions } from './options';
import type { SnapshotKeeper } from './snapshots';

/** The parts of a running node a reload changes. */
export interface Reloadable {
  config: Config;
  readonly configFile?: string;
  readonly endpoints: EndpointSet;
  readonly router: Router;
  readonly health: HealthChecks;
  readonly maintenance: DirectoryMaintenance;
  readonly snapshots: SnapshotKeeper;
  readonly splits: SplitDetector;
  readonly responder: { setKeyring(ring: Keyring): void };
  readonly notifier: ServiceNotifier;
  readonly log: Logger;
  setLogLevel(level: Config['log']['level']): void;
  statusLine(): string;
}

/**
 * Applies a new configuration to a running node (SIGHUP, `affinityd
 * reload`), validated whole first: if anything in it is wrong nothing
 * changes (the error is thrown). The directory is never touched.
 */
export function reloadNode(node: Reloadable, input: ConfigInput | Config, keyring?: Keyring, radius?: { prepare(next: Config): () => string }): ReloadResult {
  const next = resolveConfig(input);
  const ring = keyring ?? (next.cluster.keyFile ? loadKeyFile(next.cluster.keyFile) : undefined);
  node.notifier.notify('RELOADING=1', `MONOTONIC_USEC=${Math.round(performance.timeOrigin * 1000 + performance.now() * 1000)}`);
  try {
    const r = applyReload(node, node.config, next, ring, radius);
    node.config = r.effective;
    node.log.info({ applied: r.applied, needRestart: r.needRestart }, 'configuration reloaded');
    return { applied: r.applied, needRestart: r.needRestart };
  } finally {
    node.notifier.notify('READY=1', `STATUS=${node.statusLine()}`);
  }
}

/** Re-reads the node's configuration file and applies it; a file that does not load or validate changes nothing (logged, thrown). */
export function reloadNodeFromFile(node: Reloadable, radius?: { prepare(next: Config): () => string }): ReloadResult {
  if (!node.configFile) throw new Error('reload: this node was not started from a configuration file');
  try {
    return reloadNode(node, loadConfigFile(node.configFile), undefined, radius);
  } catch (e) {
    node.log.warn({ file: node.configFile, err: (e as Error).message }, 'configuration reload refused: the running configuration stays');
    throw e;
  }
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
  if (!same(old.query, next.query) || !same(old.agreement, next.agreement) || !same(old.selection.policy, next.selection.policy) || old.selection.failureHoldDownMs !== next.selection.failureHoldDownMs) {
    t.router.reconfigure(routerOptions(next), createPolicy(next.selection.policy));
    applied.push('query, selection');
  }
  if (!same(old.links, next.links)) {
    t.splits.reconfigure({ repair: next.links.splitRepair, intervalMs: next.links.checkIntervalMs });
    applied.push('links');
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
