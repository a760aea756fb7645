// Creating a node: the library's entry point (src/index.ts re-exports it).
import type { Keyring } from '../codec/frame';
import { type Logger, silentLogger } from '../util/logger';
import { type Config, type ConfigInput, loadKeyFile, resolveConfig } from './config';
import { AffinityNode } from './node';
import type { ServiceNotifier } from './service-notifier';

export { AffinityNode } from './node';
export type { ReloadResult } from './node-view';

export interface NodeOptions {
  /** The cluster keyring; default: read from cluster.keyFile. */
  keyring?: Keyring;
  /** Structured logger (pino or compatible); default: silent. */
  logger?: Logger;
  /** Default: the start time in seconds, which grows across restarts. */
  bootEpoch?: number;
  /** Where READY/RELOADING/STOPPING/WATCHDOG go (systemd); default: nowhere. */
  notifier?: ServiceNotifier;
  /** The file the configuration came from: reload (SIGHUP, the control socket) re-reads it. */
  configFile?: string;
}

/** Validates the configuration, opens the sockets, starts the front ends. */
export async function createNode(input: ConfigInput | Config, o: NodeOptions = {}): Promise<AffinityNode> {
  const config = resolveConfig(input);
  const keyring = o.keyring ?? (config.cluster.keyFile ? loadKeyFile(config.cluster.keyFile) : undefined);
  if (!keyring) throw new Error('createNode: no keyring (give options.keyring or cluster.keyFile)');
  const node = new AffinityNode(config, keyring, o.logger ?? silentLogger, o.bootEpoch ?? Math.floor(Date.now() / 1000), o.notifier);
  node.configFile = o.configFile;
  return node.start();
}
