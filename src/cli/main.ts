#!/usr/bin/env node
// The affinityd command.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import pino from 'pino';

import { ConfigError, loadConfigFile, loadKeyFile } from '../daemon/config';
import { createNode } from '../daemon/create-node';
import { CaptureUnavailable, defaultFilter, runCapture } from '../capture/capture';
import { POLICY_NAMES } from '../selection/policy';
import { packageRoot } from '../util/package-root';
import { ControlClientError } from '../control/client';
import { systemdNotifier } from '../daemon/service-notifier';
import { CONTROL_USAGE, controlCommand } from './control-cli';
import { type DemoOptions, runDemo } from './demo';

const USAGE = `usage: affinityd <command> [options]

commands:
  run --config FILE        start a node with its front ends (SIGHUP: reload the configuration;
                           SIGINT/SIGTERM: drain, save the table and stop)
  check-config FILE        validate a configuration file and its key file; exit 0 if good
  capture (-i IFACE | -r FILE) [-w FILE] [-c N] [--filter BPF] [--port N]
          [--json] [--summary] [--key-file FILE]
                           the cluster protocol on the wire: one line per message, or
                           a summary (latency, unanswered, failed checks, split bundles)
  bench [--quick]          every benchmark, each against its baseline in the same run;
                           results and plots in bench/results/ (needs the dev dependencies)
  demo [--clients N] [--links N] [--gap MS] [--policy NAME]
                           three nodes, three endpoints and a client workload on loopback;
                           prints where every bundle landed; exit 0 only if none split
` + CONTROL_USAGE;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
      if (!values.config) throw new ConfigError(['--config FILE is required'], 'run');
      const config = loadConfigFile(values.config);
      const log = pino({ level: config.log.level, base: { node: config.node.id } });
      const notifier = systemdNotifier(process.env, (e) => log.warn({ err: e.message }, 'service manager notification failed'));
      const node = await createNode(config, { logger: log, notifier, configFile: values.config });
      // SIGHUP: reload; a bad file is logged by reloadFromFile and the running configuration stays
      process.on('SIGHUP', () => {
        try {
          node.reloadFromFile();
        } catch {
          /* logged */
        }
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'stopping: draining front ends, then saving the table');
          void node.close(5000).then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
      return 0;
    }
    case 'check-config': {
      const file = rest[0];
      if (!file) throw new ConfigError(['a FILE to check is required'], 'check-config');
      const c = loadConfigFile(file);
      const ring = loadKeyFile(c.cluster.keyFile);
      process.stdout.write(
        `${file}: good. node ${c.node.id}, group ${c.cluster.group}:${c.cluster.port} on ${c.cluster.interface}, ` +
          `${c.endpoints.length} endpoint(s), ${c.frontends.length} front end(s), ${ring.keys.length} key(s), sending with key ${ring.sendKeyId}` +
          `${c.radius.enabled ? `, RADIUS API on ${c.radius.listen.address}:${c.radius.listen.port}${c.radius.tokenFile ? ' with a token' : ''}` : ''}\n`,
      );
      return 0;
    }
    case 'capture': {
      const { values } = parseArgs({
        args: rest,
        options: {
          interface: { type: 'string', short: 'i' },
          read: { type: 'string', short: 'r' },
          write: { type: 'string', short: 'w' },
          count: { type: 'string', short: 'c' },
          filter: { type: 'string' },
          port: { type: 'string', default: '7447' },
          json: { type: 'boolean', default: false },
          summary: { type: 'boolean', default: false },
          'key-file': { type: 'string' },
        },
      });
      const problems: string[] = [];
      if (!values.interface === !values.read) problems.push('give one of -i IFACE (live) or -r FILE (offline)');
      const count = values.count === undefined ? undefined : Number(values.count);
      if (count !== undefined && !(Number.isInteger(count) && count > 0)) problems.push('-c: a positive count');
      const port = Number(values.port);
      if (!(Number.isInteger(port) && port > 0 && port < 65536)) problems.push('--port: 1 to 65535');
      if (problems.length) throw new ConfigError(problems, 'capture');
      const code = await runCapture({
        iface: values.interface,
        file: values.read,
        write: values.write,
        count,
        filter: values.filter ?? defaultFilter(port),
        json: values.json,
        summary: values.summary,
        keyring: values['key-file'] ? loadKeyFile(values['key-file']) : undefined,
      });
      // pcap@3 keeps a poll handle alive after close(): end the process deliberately
      process.exit(code);
    }
    case 'bench': {
      const root = packageRoot();
      try {
        require.resolve('tsx', { paths: [root] });
      } catch {
        throw new ConfigError(['the benchmarks need the dev dependencies (tsx, redis): run npm install in the checkout, without --omit=dev'], 'bench');
      }
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'run.ts'), ...rest], { cwd: root, stdio: 'inherit' });
      return r.status ?? 1;
    }
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: { clients: { type: 'string', default: '24' }, links: { type: 'string', default: '3' }, gap: { type: 'string', default: '200' }, policy: { type: 'string', default: 'rendezvous' } },
      });
      const clients = Number(values.clients);
      const links = Number(values.links);
      const linkGapMs = Number(values.gap);
      const policy = values.policy as DemoOptions['policy'];
      const problems = [];
      if (!(Number.isInteger(clients) && clients >= 1 && clients <= 10000)) problems.push('--clients: 1 to 10000');
      if (!(Number.isInteger(links) && links >= 1 && links <= 16)) problems.push('--links: 1 to 16');
      if (!(linkGapMs >= 0 && linkGapMs <= 10000)) problems.push('--gap: 0 to 10000 ms');
      if (!POLICY_NAMES.includes(policy)) problems.push(`--policy: one of ${POLICY_NAMES.join(', ')}`);
      if (problems.length) throw new ConfigError(problems, 'demo');
      return runDemo({ clients, links, nodes: 3, linkGapMs, policy, out: (l) => process.stdout.write(l + '\n') });
    }
    case 'show':
    case 'clear':
    case 'monitor':
    case 'reload':
    case 'log-level':
      return controlCommand(command, rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command ? 0 : 2;
    default:
      process.stderr.write(`affinityd: unknown command "${command}"\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError || e instanceof CaptureUnavailable || e instanceof ControlClientError) process.stderr.write(`affinityd: ${e.message}\n`);
    else if ((e as NodeJS.ErrnoException).code) process.stderr.write(`affinityd: ${(e as Error).message}\n`);
    else process.stderr.write(`affinityd: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
    if (e instanceof CaptureUnavailable) process.exit(1); // a half-opened pcap session may hold the loop
  },
);
