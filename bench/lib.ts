// Shared bits of the benchmarks: the machine, timing, result files.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../src/codec/client-key';

export function machine(): Record<string, string | number> {
  let kernel = os.release();
  try {
    kernel = execFileSync('uname', ['-sr'], { encoding: 'utf8' }).trim();
  } catch {
    /* keep os.release() */
  }
  return { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, kernel, node: process.version, date: new Date().toISOString() };
}

/** Read and write system calls of a process so far (/proc/PID/io syscr, syscw); NaN where unreadable. */
export function ioCalls(pid: number | 'self'): [number, number] {
  try {
    const t = readFileSync(`/proc/${pid}/io`, 'utf8');
    return [Number(/syscr: (\d+)/.exec(t)?.[1] ?? NaN), Number(/syscw: (\d+)/.exec(t)?.[1] ?? NaN)];
  } catch {
    return [NaN, NaN];
  }
}

/** The benchmark key of client i: about 40 octets, as native/tools/query_loadgen.cc makes them. */
export function benchKey(i: number): Buffer {
  return clientKeyBytes(parseClientKey(`2:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/subscriber-${i}@bench.example`));
}

export function writeResult(name: string, result: object): string {
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), ...result }, null, 2) + '\n');
  return file;
}

/** Runs fn repeatedly for about ms milliseconds; returns operations per second (best of rounds). */
export function rate(ops: number, fn: () => void, rounds = 5, minMs = 300): number {
  let best = 0;
  fn(); // warm
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const t0 = process.hrtime.bigint();
    let t = t0;
    do {
      fn();
      n++;
      t = process.hrtime.bigint();
    } while (Number(t - t0) / 1e6 < minMs);
    best = Math.max(best, (ops * n) / (Number(t - t0) / 1e9));
  }
  return best;
}

export const fmt = (n: number): string =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : n.toFixed(1);
