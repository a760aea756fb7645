// Parent side of test/fixtures/node-process.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { Waiter } from './waiter';

const FIXTURE = join(__dirname, '..', 'fixtures', 'node-process.ts');

export type Event = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export class ChildNode {
  readonly proc: ChildProcess;
  private readonly inbox = new Waiter<Event>();
  readonly events = this.inbox.items;
  readonly exited: Promise<number | null>;
  stderr = '';

  /** prefix: a command to run node under, e.g. ['ip', 'netns', 'exec', 'ns1']. */
  constructor(readonly name: string, prefix: string[] = []) {
    const args = [...prefix, process.execPath, '--import', 'tsx', FIXTURE];
    this.proc = spawn(args[0], args.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], cwd: join(__dirname, '..', '..') });
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      let e: Event;
      try {
        e = JSON.parse(l);
      } catch {
        return;
      }
      this.inbox.push(e);
    });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  send(cmd: Event): void {
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
  }

  wait(pred: (e: Event) => boolean, timeoutMs: number, what: string): Promise<Event> {
    return this.inbox.wait(pred, timeoutMs, () =>
      `${this.name}: no ${what} within ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}; events: ${JSON.stringify(this.events.slice(-5))}`);
  }

  async request(cmd: Event, event: string, timeoutMs = 5000): Promise<Event> {
    const n = this.events.length;
    this.send(cmd);
    return this.wait((e) => (e.event === event || e.event === 'error') && this.events.indexOf(e) >= n, timeoutMs, event).then((e) => {
      if (e.event === 'error') throw new Error(`${this.name}: ${e.message}`);
      return e;
    });
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}
