#!/usr/bin/env node
// The affinityd command. Every command takes --help; `affinityd help` lists
// them (usage.ts has the one description of each). Exit statuses are in
// usage.ts EXIT_STATUS: 0 success, 1 error, 2 usage, 3 no entry, 4 clear not
// confirmed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { CaptureUnavailable, defaultFilter, runCapture } from '../capture/capture';
import { ControlClientError } from '../control/client';
import { ConfigError, loadConfigFile, loadKeyFile } from '../daemon/config';
import { checkHost, hostView } from '../daemon/host-check';
import { POLICY_NAMES } from '../selection/policy';
import { versionLine } from '../util/build-info';
import { packageRoot } from '../util/package-root';
import { controlCommand } from './control-cli';
import { type DemoOptions, runDemo } from './demo';
import { runNode } from './run';
import { commandNamed, commandUsage, overallUsage, parse, UsageError } from './usage';
import { describeSites } from '../sites/describe-sites';
import { loadSiteSecrets } from '../sites/site-secrets';

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(overallUsage());
    return 2;
  }
  if ((command === 'help' || command === 'version') && (rest.includes('--help') || rest.includes('-h'))) {
    return process.stdout.write(commandUsage(commandNamed(command)!)), 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(versionLine() + '\n');
    return 0;
  }
  if (command === 'help' || command === '--help' || command === '-h') {
    const topic = rest[0];
    if (!topic) return process.stdout.write(overallUsage()), 0;
    const c = commandNamed(topic);
    if (!c) throw new UsageError('help', `no command "${topic}"`);
    return process.stdout.write(commandUsage(c)), 0;
  }
  const help = commandNamed(command);
  if (!help) throw new UsageError(undefined, `unknown command "${command}"`);
  // --help before anything else: never a file named --help, never a benchmark run
  if (rest.includes('--help') || rest.includes('-h')) return process.stdout.write(commandUsage(help)), 0;

  switch (command) {
    case 'run': {
      const { values, positionals } = parse('run', rest, { config: { type: 'string', short: 'c' } }, true);
      if (positionals.length) throw new UsageError('run', `unexpected argument "${positionals[0]}" (the file goes after --config)`);
      if (!values.config) throw new UsageError('run', '--config FILE is required');
      return runNode(String(values.config));
    }
    case 'check-config': {
      const { values, positionals } = parse('check-config', rest, { offline: { type: 'boolean', default: false } }, true);
      const file = positionals[0];
      if (!file) throw new UsageError('check-config', 'a FILE to check is required');
      if (positionals.length > 1) throw new UsageError('check-config', 'one FILE at a time');
      const c = loadConfigFile(file);
      let ring;
      try {
        ring = loadKeyFile(c.cluster.keyFile);
      } catch (e) {
        throw new ConfigError((e instanceof ConfigError ? e.problems : [(e as Error).message]).map((p) => `cluster.keyFile (${c.cluster.keyFile}): ${p}`), file);
      }
      if (!values.offline) {
        const host = checkHost(c, hostView());
        for (const w of host.warnings) process.stderr.write(`${file}: warning: ${w}\n`);
        if (host.problems.length) throw new ConfigError(host.problems, `${file} (on this host; --offline checks the file alone)`);
      }
      // the Redis password and TLS files with sites enabled (docs/sites.md)
      const siteLine = c.sites.enabled ? describeSites(c.sites, loadSiteSecrets(c.sites)) : '';
      process.stdout.write(
        `${file}: good${values.offline ? ' (file only, not checked against this host)' : ''}. node ${c.node.id}, group ${c.cluster.group}:${c.cluster.port} on ${c.cluster.interface}, ` +
          `${c.endpoints.length} endpoint(s), ${c.frontends.length} front end(s), ${ring.keys.length} key(s), sending with key ${ring.sendKeyId}` +
          `${c.radius.enabled ? `, RADIUS API on ${c.radius.listen.address}:${c.radius.listen.port}${c.radius.tokenFile ? ' with a token' : ''}` : ''}\n` +
          siteLine,
      );
      return 0;
    }
    case 'capture': {
      const { values, positionals } = parse(
        'capture',
        rest,
        {
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
        true,
      );
      const problems: string[] = [];
      if (positionals.length) problems.push(`unexpected argument "${positionals[0]}"`);
      if (!values.interface === !values.read) problems.push('give one of -i IFACE (live) or -r FILE (offline)');
      const count = values.count === undefined ? undefined : Number(values.count);
      if (count !== undefined && !(Number.isInteger(count) && count > 0)) problems.push('-c: a positive count');
      const port = Number(values.port);
      if (!(Number.isInteger(port) && port > 0 && port < 65536)) problems.push('--port: 1 to 65535');
      if (problems.length) throw new UsageError('capture', problems.join('; '));
      const code = await runCapture({
        iface: values.interface as string | undefined,
        file: values.read as string | undefined,
        write: values.write as string | undefined,
        count,
        filter: (values.filter as string | undefined) ?? defaultFilter(port),
        json: values.json as boolean,
        summary: values.summary as boolean,
        keyring: values['key-file'] ? loadKeyFile(values['key-file'] as string) : undefined,
      });
      // pcap@3 keeps a poll handle alive after close(): end the process deliberately
      process.exit(code);
    }
    case 'bench': {
      parse('bench', rest, { quick: { type: 'boolean' } });
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
      const { values } = parse('demo', rest, {
        clients: { type: 'string', default: '24' },
        links: { type: 'string', default: '3' },
        gap: { type: 'string', default: '200' },
        policy: { type: 'string', default: 'rendezvous' },
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
      if (problems.length) throw new UsageError('demo', problems.join('; '));
      return runDemo({ clients, links, nodes: 3, linkGapMs, policy, out: (l) => process.stdout.write(l + '\n') });
    }
    case 'show':
    case 'clear':
    case 'monitor':
    case 'reload':
    case 'log-level':
      return controlCommand(command, rest);
    default:
      throw new UsageError(undefined, `unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      const c = e.command ? commandNamed(e.command) : undefined;
      process.stderr.write(`affinityd${e.command ? ' ' + e.command : ''}: ${e.message}\n${c ? commandUsage(c) : overallUsage()}`);
      process.exitCode = 2;
      return;
    }
    if (e instanceof ConfigError || e instanceof CaptureUnavailable || e instanceof ControlClientError) process.stderr.write(`affinityd: ${e.message}\n`);
    else if ((e as NodeJS.ErrnoException).code) process.stderr.write(`affinityd: ${(e as Error).message}\n`);
    else process.stderr.write(`affinityd: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
    if (e instanceof CaptureUnavailable) process.exit(1); // a half-opened pcap session may hold the loop
  },
);
