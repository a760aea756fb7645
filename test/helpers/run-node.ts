// `affinityd run` as a child process, the way an operator (or systemd) runs
// it: a configuration file and a key file in a directory of the test's, its
// JSON log lines collected, its exit awaited. And a JSON parser that refuses
// duplicate keys, which JSON.parse silently merges (jq then shows the last).
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { parseDocument } from 'yaml';

import { Waiter } from './waiter';

const root = join(__dirname, '..', '..');
export const CLI = [process.execPath, '--import', 'tsx', join(root, 'src', 'cli', 'main.ts')];

export interface RunningNode {
  readonly proc: ChildProcess;
  /** Every line of standard output, as it arrives. */
  readonly log: Waiter<string>;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
  /** The first log line whose msg matches, parsed. */
  line(msg: RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function writeKeyFile(dir: string, hex = '6b'.repeat(32)): string {
  const f = join(dir, 'cluster.key');
  writeFileSync(f, `1 ${hex} send\n`);
  chmodSync(f, 0o600);
  return f;
}

export function runNode(configFile: string, env: NodeJS.ProcessEnv = {}): RunningNode {
  const proc = spawn(CLI[0], [...CLI.slice(1), 'run', '--config', configFile], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = new Waiter<string>();
  createInterface({ input: proc.stdout! }).on('line', (l) => log.push(l));
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    log,
    stderr: () => err,
    exited,
    line: async (msg, timeoutMs = 20_000) =>
      JSON.parse(await log.wait((l) => msg.test(safeMsg(l)), timeoutMs, () => `no log line matching ${msg} within ${timeoutMs} ms; log: ${log.items.slice(-8).join('\n')}; stderr: ${err.slice(-1000)}`)),
  };
}

function safeMsg(line: string): string {
  try {
    return String(JSON.parse(line).msg ?? '');
  } catch {
    return '';
  }
}

/**
 * Why a JSON log line is not a plain JSON object with unique keys, or []:
 * JSON.parse silently keeps the last of two equal keys (and jq shows that
 * one), so the check parses with the yaml package, which refuses them.
 */
export function jsonLineProblems(text: string): string[] {
  try {
    JSON.parse(text);
  } catch (e) {
    return [`not JSON: ${(e as Error).message}`];
  }
  return parseDocument(text, { uniqueKeys: true }).errors.map((e) => e.message.split('\n')[0]);
}
