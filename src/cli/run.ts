// `affinityd run --config FILE`: a node as a service runs it. Everything it
// says is a JSON line on standard output (pino), the fatal reasons for not
// starting included, each naming the setting to change. Exit status 0 after
// SIGINT/SIGTERM once the node has drained, saved and closed; 1 if it could
// not start or could not close cleanly.
import pino from 'pino';

import { type Config, ConfigError, loadConfigFile, loadKeyFile } from '../daemon/config';
import { checkHost, explainStartError, hostView } from '../daemon/host-check';
import { createNode } from '../daemon/create-node';
import type { AffinityNode } from '../daemon/node';
import { systemdNotifier } from '../daemon/service-notifier';
import { buildInfo } from '../util/build-info';

export async function runNode(file: string): Promise<number> {
  let config: Config;
  let keyring;
  try {
    config = loadConfigFile(file);
  } catch (e) {
    // no configuration yet: log at the default level, without a node id
    const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
    pino({ base: undefined }).fatal({ file, problems }, `configuration refused, not starting: ${problems.join('; ')}`);
    return 1;
  }
  const log = pino({ level: config.log.level, base: { node: config.node.id } });
  try {
    keyring = loadKeyFile(config.cluster.keyFile);
  } catch (e) {
    const problems = (e instanceof ConfigError ? e.problems : [(e as Error).message]).map((p) => `cluster.keyFile (${config.cluster.keyFile}): ${p}`);
    log.fatal({ file, problems }, `key file refused, not starting: ${problems.join('; ')}`);
    return 1;
  }
  const host = checkHost(config, hostView());
  for (const w of host.warnings) log.warn({ file }, w);
  if (host.problems.length) {
    log.fatal({ file, problems: host.problems }, `configuration does not fit this host, not starting: ${host.problems.join('; ')}`);
    return 1;
  }
  const notifier = systemdNotifier(process.env, (e) => log.warn({ err: e.message }, 'service manager notification failed'));
  const b = buildInfo();
  log.info({ version: b.version, revision: b.revision, nodejs: b.nodejs, file }, 'starting');
  let node: AffinityNode;
  try {
    node = await createNode(config, { logger: log, notifier, configFile: file, keyring });
  } catch (e) {
    const err = e as Error & { code?: string };
    const reason = explainStartError(err, config);
    log.fatal({ file, code: err.code, problems: [reason] }, `start failed: ${reason}`);
    return 1;
  }
  // SIGHUP: reload; a bad file is logged by reloadFromFile and the running configuration stays
  process.on('SIGHUP', () => {
    try {
      node.reloadFromFile();
    } catch {
      /* logged */
    }
  });
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ signal }, 'stopping: draining front ends, then saving the table');
  try {
    await node.close(5000);
  } catch (e) {
    log.error({ err: (e as Error).message }, 'the node did not close cleanly');
    return 1;
  }
  return 0;
}
