// A control-socket client for the affinityd command line: sends one request
// and returns the answer, or streams `monitor` lines.
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

import { accessHint } from './access-hint';
import type { ControlRequest } from './protocol';

export class ControlClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlClientError';
  }
}

function open(path: string) {
  const s = connect(path);
  const connected = new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', (e: NodeJS.ErrnoException) => {
      const hint =
        e.code === 'ENOENT' ? 'no such socket: is affinityd running, and is control.socket set to this path?'
        : e.code === 'EACCES' ? accessHint(path)
        : e.code === 'ECONNREFUSED' ? 'nobody is listening (a stale socket file?)'
        : e.message;
      reject(new ControlClientError(`control socket ${path}: ${hint}`));
    });
  });
  return { s, connected };
}

/** One request, one answer; rejects with the node's error message if it refused. */
export async function request(path: string, req: ControlRequest, timeoutMs = 30_000): Promise<unknown> {
  const { s, connected } = open(path);
  await connected;
  s.write(JSON.stringify(req) + '\n');
  const rl = createInterface({ input: s });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new ControlClientError(`no answer within ${timeoutMs} ms`)), timeoutMs);
      rl.once('line', (l) => (clearTimeout(t), resolve(l)));
      s.once('close', () => (clearTimeout(t), reject(new ControlClientError('the node closed the connection without answering'))));
    });
    const a = JSON.parse(line) as { ok: boolean; result?: unknown; error?: string };
    if (!a.ok) throw new ControlClientError(a.error ?? 'refused');
    return a.result;
  } finally {
    rl.close();
    s.destroy();
  }
}

/** How a monitor stream ended: stopped by this side, ended by the node (with its reason), or the connection broke. */
export interface MonitorEnd {
  readonly by: 'client' | 'node' | 'connection';
  readonly reason?: string;
}

/** Streams monitor events to onEvent until the connection ends or stop() is called. */
export async function monitor(path: string, onEvent: (e: Record<string, unknown>) => void): Promise<{ stop: () => void; ended: Promise<MonitorEnd> }> {
  const { s, connected } = open(path);
  await connected;
  s.write(JSON.stringify({ cmd: 'monitor' }) + '\n');
  const rl = createInterface({ input: s });
  let first = true;
  let end: MonitorEnd | undefined;
  const ended = new Promise<MonitorEnd>((resolve, reject) => {
    rl.on('line', (l) => {
      let o;
      try {
        o = JSON.parse(l);
      } catch {
        return reject(new ControlClientError(`not a monitor line: ${l.slice(0, 200)}`));
      }
      if (first) {
        first = false;
        if (!o.ok) return reject(new ControlClientError(o.error));
        return;
      }
      if (o.kind === 'end') {
        end = { by: 'node', reason: String(o.reason ?? '') };
        return;
      }
      onEvent(o);
    });
    s.once('close', () => resolve(end ?? { by: 'connection' }));
  });
  return {
    stop: () => {
      end ??= { by: 'client' };
      s.destroy();
    },
    ended,
  };
}
