// The control socket server: Unix stream sockets (mode 0660) speaking
// protocol.ts. One per level; the read-only one refuses commands that change
// the node. A malformed or oversize request gets an error line, never a crash.
import { chmodSync, chownSync, existsSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';

import type { NodeAdmin } from '../daemon/node-view';
import type { Logger } from '../util/logger';
import { clearEntries } from './clear';
import { ControlError, showEntries, showEntry, showPeers } from './commands';
import { ADMIN_COMMANDS, COMMANDS, type ControlLevel, type ControlRequest, MAX_REQUEST_OCTETS } from './protocol';

const MAX_CLIENTS = 64;

/** A group's id from its name (/etc/group) or number. */
export function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.split(':')[0] === group);
  if (!line) throw new Error(`control.readOnlyGroup: no group "${group}" in /etc/group`);
  return Number(line.split(':')[2]);
}

export class ControlServer {
  readonly counters = { connections: 0, requests: 0, refused: 0, errors: 0 };
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  /** Sockets with a monitor attached, and how to unsubscribe each. */
  private readonly monitors = new Map<Socket, () => void>();

  constructor(private readonly node: NodeAdmin, readonly level: ControlLevel, private readonly log: Logger) {
    this.server = createServer((s) => this.accept(s));
  }

  /**
   * Listens at path with mode 0660 (and the given group, a name or number);
   * a stale socket file left by a crash is replaced, a live one is an error.
   */
  async listen(path: string, group = ''): Promise<void> {
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new Error(`control socket ${path}: exists and is not a socket`);
      const live = await new Promise<boolean>((resolve) => {
        const c = connect(path);
        c.once('connect', () => (c.destroy(), resolve(true)));
        c.once('error', () => resolve(false));
      });
      if (live) throw new Error(`control socket ${path}: another process is listening on it`);
      unlinkSync(path);
    }
    const old = process.umask(0o117); // created as 0660 from the start: no window with a wider mode
    try {
      await new Promise<void>((resolve, reject) => {
        this.server.once('error', reject);
        this.server.listen(path, () => {
          this.server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(old);
    }
    chmodSync(path, 0o660);
    if (group) chownSync(path, -1, groupId(group));
    this.log.info({ path, access: this.level }, 'control socket listening'); // not `level`: pino's own key
  }

  /**
   * Stops listening and ends every connection. Monitors are unsubscribed
   * here, before the node closes what they watch, and told why their stream
   * ends ({"kind":"end","reason":...}) instead of being cut off.
   */
  close(): Promise<void> {
    for (const [s, off] of this.monitors) {
      off();
      if (!s.destroyed) s.end(JSON.stringify({ kind: 'end', reason: 'the node is stopping' }) + '\n');
      setTimeout(() => s.destroy(), 1000).unref(); // a reader that never reads the last line
    }
    this.monitors.clear();
    for (const c of this.clients) if (!c.writableEnded) c.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(s: Socket): void {
    this.counters.connections++;
    if (this.clients.size >= MAX_CLIENTS) {
      s.end(JSON.stringify({ ok: false, error: `too many control connections (${MAX_CLIENTS})` }) + '\n');
      return;
    }
    this.clients.add(s);
    s.on('error', () => s.destroy());
    s.once('close', () => this.clients.delete(s));
    let buf = '';
    let busy = Promise.resolve();
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST_OCTETS && buf.indexOf('\n') < 0) {
        this.counters.errors++;
        s.end(JSON.stringify({ ok: false, error: `request longer than ${MAX_REQUEST_OCTETS} octets` }) + '\n');
        s.removeAllListeners('data');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        // answers in request order; serve() answers its own errors, so the chain never breaks
        if (line) busy = busy.then(() => this.serve(s, line)).catch((e: Error) => this.log.warn({ err: e.message }, 'control request failed'));
      }
    });
  }

  private async serve(s: Socket, line: string): Promise<void> {
    this.counters.requests++;
    const answer = (o: object) => !s.destroyed && s.write(JSON.stringify(o) + '\n');
    let req: ControlRequest;
    try {
      req = JSON.parse(line);
      if (typeof req !== 'object' || req === null || !COMMANDS.includes(req.cmd)) {
        throw new ControlError(`unknown command; one of: ${COMMANDS.join(', ')}`);
      }
    } catch (e) {
      this.counters.errors++;
      answer({ ok: false, error: e instanceof SyntaxError ? `not JSON: ${e.message}` : (e as Error).message });
      return;
    }
    if (ADMIN_COMMANDS.has(req.cmd) && this.level !== 'admin') {
      this.counters.refused++;
      answer({ ok: false, error: `refused: ${req.cmd} changes the node and needs the admin control socket; this one is read-only` });
      return;
    }
    try {
      if (req.cmd === 'monitor') return this.monitor(s);
      const result = await this.run(req);
      if (ADMIN_COMMANDS.has(req.cmd)) this.log.info({ cmd: req.cmd, result }, 'control command');
      answer({ ok: true, result });
    } catch (e) {
      this.counters.errors++;
      answer({ ok: false, error: (e as Error).message });
    }
  }

  private async run(req: Exclude<ControlRequest, { cmd: 'monitor' }>): Promise<unknown> {
    const n = this.node;
    switch (req.cmd) {
      case 'show-entries': {
        const limit = req.limit ?? 1000;
        if (!(Number.isInteger(limit) && limit >= 0)) throw new ControlError('limit: a whole number >= 0');
        return showEntries(n, req.filter ?? {}, limit);
      }
      case 'show-entry':
        if (typeof req.client !== 'string') throw new ControlError('show-entry: client (DISCRIMINATOR/USERNAME) is required');
        return showEntry(n, req.client);
      case 'show-peers':
        return showPeers(n);
      case 'show-splits':
        return n.splitClients();
      case 'show-stats':
        return n.stats();
      case 'clear':
        return clearEntries(n, req);
      case 'reload':
        return n.reloadFromFile();
      case 'set-log-level': {
        const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
        const level = levels.find((l) => l === req.level);
        if (!level) throw new ControlError(`set-log-level: one of ${levels.join(', ')}`);
        n.setLogLevel(level);
        return { level };
      }
    }
  }

  private monitor(s: Socket): void {
    s.write(JSON.stringify({ ok: true, result: { monitoring: true } }) + '\n');
    let dropped = 0;
    const unsubscribe = this.node.subscribeChanges((e) => {
      // a slow reader loses events (counted) rather than growing our memory
      if (s.writableLength > 1 << 20) {
        dropped++;
        return;
      }
      if (dropped) {
        s.write(JSON.stringify({ kind: 'dropped', count: dropped }) + '\n');
        dropped = 0;
      }
      s.write(JSON.stringify(e) + '\n');
    });
    const off = () => {
      if (this.monitors.delete(s)) unsubscribe();
    };
    this.monitors.set(s, unsubscribe);
    s.once('close', off);
  }
}
