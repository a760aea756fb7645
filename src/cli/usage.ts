// Every command of `affinityd`, with its synopsis, what it does and its
// options: the one description that `affinityd help`, `COMMAND --help`, the
// man page and the bash completion are checked against (test/cli/cli.test.ts).
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { DEFAULT_SOCKET } from '../control/protocol';

/** A command line that does not say what to do: exit status 2, with the command's usage. */
export class UsageError extends Error {
  constructor(readonly command: string | undefined, message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** parseArgs (strict), its errors turned into usage errors of this command. */
export function parse(
  command: string,
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
  allowPositionals = false,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true }) as { values: Record<string, string | boolean | undefined>; positionals: string[] };
  } catch (e) {
    throw new UsageError(command, (e as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export interface CommandHelp {
  readonly name: string;
  /** The part after `affinityd NAME`. */
  readonly synopsis: string;
  readonly summary: string;
  /** Option (as typed, with its argument) -> what it does. */
  readonly options: readonly (readonly [string, string])[];
  /** A paragraph after the options, if any. */
  readonly notes?: string;
}

const SOCKET: readonly [string, string] = ['--socket PATH', `the control socket (default: $AFFINITYD_SOCKET, else ${DEFAULT_SOCKET})`];

export const COMMANDS: readonly CommandHelp[] = [
  {
    name: 'run',
    synopsis: '--config FILE',
    summary: 'start a node with its front ends; logs are JSON lines on standard output',
    options: [['-c, --config FILE', 'the configuration file (required)']],
    notes: 'SIGHUP re-reads the configuration; SIGINT or SIGTERM drains the front ends (5 s), saves the table and stops (exit status 0). A configuration or start-up error is logged as one JSON line at level fatal, naming the setting, and the exit status is 1.',
  },
  {
    name: 'check-config',
    synopsis: '[--offline] FILE',
    summary: 'validate a configuration file, its key file (and, with sites enabled, the Redis password and TLS files) and, unless --offline, that this host has the addresses and interface it names; exit 0 if good',
    options: [['--offline', 'check the file alone, not against this host (for files prepared elsewhere)']],
  },
  {
    name: 'show',
    synopsis: '(entries [FILTERS] | entry CLIENT | peers | splits | stats) [--json]',
    summary: 'what the node holds, through the control socket (the read-only socket is enough)',
    options: [
      ['--username U', 'show entries: only this username'],
      ['--discriminator D', 'show entries: only this endpoint discriminator, e.g. 2:192.0.2.7'],
      ['--endpoint NAME|ADDR:PORT', 'show entries: only clients sent to this endpoint'],
      ['--withdrawn', 'show entries: include withdraw markers (shown as (withdrawn))'],
      ['--limit N', 'show entries: at most N entries (default 1000); the count of all matches is still given'],
      ['--json', 'JSON instead of text (the shapes are in docs/operations.md)'],
      SOCKET,
    ],
    notes: 'show entry exits 3 if the node holds no entry for the client (the node answered: not an error).',
  },
  {
    name: 'clear',
    synopsis: '(CLIENT | --all) [--no-confirm] [--json]',
    summary: 'delete entries on every node with withdraw markers, then ask the cluster whether any node still holds them (admin socket)',
    options: [
      ['--all', 'every entry this node holds'],
      ['--no-confirm', 'do not ask the cluster afterwards'],
      ['--json', 'the result as JSON'],
      SOCKET,
    ],
    notes: 'Exit status 4 if a node still answered with a cleared entry after the WITHDRAW was sent again (docs/operations.md says what the check covers).',
  },
  {
    name: 'monitor',
    synopsis: '[--json]',
    summary: 'a live stream of table changes (selected, remote, direct, rerouted, update, withdraw, sync, repair) until interrupted',
    options: [['--json', 'one JSON object per change'], SOCKET],
    notes: 'Ends with exit status 0 on SIGINT; 1, with a message, if the node ends the stream (it is stopping) or the connection breaks.',
  },
  { name: 'reload', synopsis: '', summary: 're-read the configuration file, as SIGHUP does, and say what changed (admin socket)', options: [['--json', 'the result as JSON'], SOCKET] },
  {
    name: 'log-level',
    synopsis: 'LEVEL',
    summary: 'change the log level until the next reload or restart: fatal, error, warn, info, debug, trace or silent (admin socket)',
    options: [SOCKET],
  },
  {
    name: 'capture',
    synopsis: '(-i IFACE | -r FILE) [-w FILE] [-c N] [--filter BPF] [--port N] [--json] [--summary] [--key-file FILE]',
    summary: 'the cluster protocol on the wire: one line per message, or a summary (latency, unanswered queries, failed checks, moves, split bundles)',
    options: [
      ['-i, --interface IFACE', 'capture live (needs root or CAP_NET_RAW and CAP_NET_ADMIN)'],
      ['-r, --read FILE', 'read a pcap file'],
      ['-w, --write FILE', 'also write what is captured to a pcap file (mode 0600: it holds client identities)'],
      ['-c, --count N', 'stop after N messages'],
      ['--filter BPF', 'replace the default filter (the group port, and UDP payloads starting with the frame magic)'],
      ['--port N', 'the group port for the default filter (default 7447)'],
      ['--json', 'one JSON object per message (or the summary as JSON)'],
      ['--summary', 'a summary at the end instead of a line per message'],
      ['--key-file FILE', 'check tags with this keyring; without it authentication shows as "unchecked"'],
    ],
  },
  {
    name: 'demo',
    synopsis: '[--clients N] [--links N] [--gap MS] [--policy NAME]',
    summary: 'three nodes, three endpoints and a client workload on loopback; prints where every bundle landed; exit 0 only if none split',
    options: [
      ['--clients N', 'bundles (1 to 10000, default 24)'],
      ['--links N', 'links per bundle (1 to 16, default 3)'],
      ['--gap MS', 'milliseconds between the links of a bundle (default 200)'],
      ['--policy NAME', 'rendezvous, least-connections or round-robin (default rendezvous)'],
    ],
  },
  {
    name: 'bench',
    synopsis: '[--quick]',
    summary: 'every benchmark, each against its baseline in the same run; results and plots in bench/results/ (needs the dev dependencies of a checkout)',
    options: [['--quick', 'a short run (about a minute)']],
  },
  { name: 'help', synopsis: '[COMMAND]', summary: 'this list, or the options of one command (as COMMAND --help)', options: [] },
  { name: 'version', synopsis: '', summary: 'the version, the source revision and the Node.js running it (also --version)', options: [] },
];

export const EXIT_STATUS: readonly (readonly [number, string])[] = [
  [0, 'success'],
  [1, 'an error: a bad file, a node that cannot start, a refused or failed command, a stream ended by the node'],
  [2, 'a usage error: an unknown command or option, a missing argument'],
  [3, 'show entry: the node holds no entry for the client'],
  [4, 'clear: a node still answered with a cleared entry after the WITHDRAW was sent again'],
];

export const commandNamed = (name: string): CommandHelp | undefined => COMMANDS.find((c) => c.name === name);

function wrap(text: string, indent: number, width = 100): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width - indent) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.map((l) => ' '.repeat(indent) + l).join('\n');
}

export function commandUsage(c: CommandHelp): string {
  const out = [`usage: affinityd ${c.name}${c.synopsis ? ' ' + c.synopsis : ''}`, '', wrap(c.summary, 2)];
  if (c.options.length) {
    out.push('', 'options:');
    const w = Math.max(...c.options.map(([o]) => o.length), 12);
    for (const [o, d] of c.options) out.push(`  ${o.padEnd(w)}  ${d}`);
    out.push(`  ${'-h, --help'.padEnd(w)}  this help`);
  }
  if (c.notes) out.push('', wrap(c.notes, 2));
  return out.join('\n') + '\n';
}

export function overallUsage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: affinityd <command> [options]        affinityd <command> --help for its options',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(w)}  ${wrap(c.summary, w + 4).trimStart()}`),
    '',
    'exit status:',
    ...EXIT_STATUS.map(([n, d]) => `  ${n}  ${d}`),
    '',
    'docs: man affinityd; docs/operations.md and docs/configuration.md in the package',
  ].join('\n') + '\n';
}
