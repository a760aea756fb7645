// Deleting entries across the cluster (issue 6, withdraw markers). A delete
// is a WITHDRAW multicast at a version above the entry's, stored everywhere
// as a marker that lives withdrawTtlSeconds: an UPDATE or REPLY older than
// the delete, still travelling or held by a node that missed it, cannot bring
// the entry back. The next call from the client gets a new entry at a still
// higher version (router.ts).
import { type ClientKey, clientKeyBytes, clientKeyFromBytes } from '../../codec/client-key';
import { decodeOrUndefined, decodeWithdraw, encodeWithdraw, type Withdraw } from '../../codec/cluster-messages';
import { MessageType } from '../../codec/messages';
import type { MaintenanceFrame, MaintenanceLink } from '../../transport/cluster-link';
import type { Directory } from '../directory';

export interface WithdrawalOptions {
  readonly nodeId: number;
}

export class Withdrawals {
  /** Told of every marker stored, made here (from = this node) or received (monitoring). */
  observer?: (w: Withdraw, from: number) => void;
  /** Told of every marker made here (sites write it to the site directory). */
  onMadeHere?: (w: Withdraw) => void;
  readonly counters = { sent: 0, received: 0, applied: 0, ignored: 0, full: 0, malformed: 0 };

  constructor(private readonly directory: Directory, private readonly link: MaintenanceLink, private readonly o: WithdrawalOptions) {
    link.onMessage(MessageType.Withdraw, (body, from) => this.handle(body, from.nodeId));
  }

  /** Deletes the client's entry here and everywhere; false if there was none. */
  withdraw(key: ClientKey): boolean {
    const w = this.mark(clientKeyBytes(key), key);
    if (!w) return false;
    this.sendAll([w]);
    return true;
  }

  /** Deletes every entry here and everywhere; returns how many. */
  withdrawAll(): number {
    let cursor = 0;
    let n = 0;
    for (;;) {
      const page = this.directory.walk(cursor, 256);
      const batch: Withdraw[] = [];
      for (const e of page.records) {
        if (!e.endpoint) continue;
        const w = this.mark(e.key, clientKeyFromBytes(e.key));
        if (w) batch.push(w);
      }
      this.sendAll(batch);
      n += batch.length;
      cursor = page.cursor;
      if (page.done) return n;
    }
  }

  private mark(keyBytes: Buffer, clientKey: ClientKey): Withdraw | undefined {
    const held = this.directory.peek(keyBytes);
    if (!held?.endpoint) return undefined;
    const w: Withdraw = { clientKey, version: held.version + 1, originNode: this.o.nodeId, ttlSeconds: this.directory.lifetimes.withdrawSeconds };
    this.directory.apply(keyBytes, w);
    this.observer?.(w, this.o.nodeId);
    this.onMadeHere?.(w);
    return w;
  }

  private sendAll(ws: readonly Withdraw[]): void {
    for (let i = 0; i < ws.length; i += 256) {
      const frames = ws.slice(i, i + 256).map((w): MaintenanceFrame => ({ type: MessageType.Withdraw, body: encodeWithdraw(w) }));
      this.counters.sent += this.link.send(frames);
    }
  }

  private handle(body: Buffer, from: number): void {
    const w = decodeOrUndefined(decodeWithdraw, body);
    if (!w) return void this.counters.malformed++;
    this.counters.received++;
    const r = this.directory.apply(clientKeyBytes(w.clientKey), w);
    if (r === 'ignored') this.counters.ignored++;
    else if (r === 'full') this.counters.full++;
    else {
      this.counters.applied++;
      this.observer?.(w, from);
    }
  }
}
