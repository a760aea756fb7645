// Child process of responder-edges.test.ts. Makes the responder's start fail
// at eventfd (this process's descriptor limit reached just after the two
// sockets the responder opens first), then checks that the process goes on
// soundly: the failed object and its thread-safe function are finalized
// without touching freed memory, and a new responder starts and closes.
// Prints one JSON line; exits 0 when all went as expected.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readdirSync } from 'node:fs';

import { standaloneResponderOptions } from '../../src/daemon/options';
import { native } from '../../src/native';

const a = native();
const table = new a.AffinityTable(16, 4);
const options = standaloneResponderOptions({
  nodeId: 1,
  bootEpoch: 1,
  group: '239.255.77.1',
  port: 20000 + Math.floor(Math.random() * 20000),
  interface: '127.0.0.1',
  keyring: { keys: [{ id: 1, secret: Buffer.alloc(32, 0x42) }], sendKeyId: 1 },
  helloIntervalMs: 0,
});
const limit = (soft: number | string) => execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${soft}:`]);
const gcAndWait = async () => {
  for (let i = 0; i < 5; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function main(): Promise<void> {
  const soft = execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output', 'SOFT', '--noheadings', '--raw'], { encoding: 'utf8' }).trim();
  const highest = Math.max(...readdirSync('/proc/self/fd').map(Number));
  limit(highest + 64);
  let message = '';
  let freed = 0;
  // Fill every descriptor below the limit, then free k of them: the
  // responder's sockets take them and its eventfd finds none. k grows until
  // the failure is at eventfd (k = 2 unless something else takes one).
  for (let k = 1; k <= 8 && !message.includes('eventfd'); k++) {
    const fillers: number[] = [];
    for (;;) {
      try {
        fillers.push(openSync('/dev/null', 'r'));
      } catch {
        break;
      }
    }
    for (let i = 0; i < k; i++) closeSync(fillers.pop()!);
    try {
      const r = new a.Responder(table, options, () => {});
      r.close();
      message = 'started';
    } catch (e) {
      message = (e as Error).message;
    }
    fillers.forEach((fd) => closeSync(fd));
    freed = k;
  }
  limit(soft);
  await gcAndWait(); // the failed object's thread-safe function is finalized here
  const r = new a.Responder(table, options, () => {});
  r.close();
  await gcAndWait();
  console.log(JSON.stringify({ message, freed, restarted: true }));
}

main().catch((e) => {
  console.log(JSON.stringify({ error: String(e) }));
  process.exit(1);
});
