// A live stream of changes to a node's table, for `affinityd monitor`: routes
// decided by this node, UPDATEs applied from peers (by the native responder,
// which forwards them only while someone listens), entries and markers from
// sync and repair, and withdrawals. Nothing is collected while nobody listens.
import { EventEmitter } from 'node:events';

import { type ClientKey, clientKeyFromBytes, formatClientKey } from '../codec/client-key';
import type { Withdraw } from '../codec/cluster-messages';
import { type Endpoint, formatEndpoint } from '../codec/endpoint';
import { decodeUpdate, type Entry, MessageType } from '../codec/messages';
import type { EntryApplier } from '../directory/maintenance/entry-applier';
import type { Withdrawals } from '../directory/maintenance/withdrawals';
import type { Route } from '../directory/router';
import type { NativeResponder } from '../native';
import type { NativeLink } from '../transport/native-link';

export type ChangeKind =
  /** this node selected the endpoint (a miss nobody answered) */
  | 'selected'
  /** this node moved the client off a failed endpoint */
  | 'rerouted'
  /** a peer answered this node's QUERY */
  | 'remote'
  /** a peer answered a direct QUERY */
  | 'direct'
  /** sites: another site had decided the client first (the site directory); this node adopted it */
  | 'site'
  /** a peer's UPDATE changed this node's table */
  | 'update'
  /** this node, as the client's arbiter, stored a peer's proposal (CLAIM) */
  | 'claim'
  /** the entry was deleted (here or by a peer) */
  | 'withdraw'
  /** stored from a bulk sync */
  | 'sync'
  /** stored from a digest repair */
  | 'repair';

export interface ChangeEvent {
  readonly at: string;
  readonly kind: ChangeKind;
  readonly client: string;
  /** `name=address:port`; absent for a withdraw. */
  readonly endpoint?: string;
  readonly version: number;
  readonly originNode: number;
  /** The node the change came from (this node for its own decisions). */
  readonly fromNode: number;
  /** For this node's own routes: how long the decision took. */
  readonly ms?: number;
}

export class ChangeFeed {
  private readonly emitter = new EventEmitter();

  constructor(
    private readonly nodeId: number,
    private readonly parts: { applier: EntryApplier; withdrawals: Withdrawals; link: NativeLink; responder: NativeResponder },
  ) {
    this.emitter.setMaxListeners(0);
  }

  private closed = false;

  /** The node is closing: its responder is (about to be) gone. */
  close(): void {
    this.closed = true;
  }

  get listening(): number {
    return this.emitter.listenerCount('change');
  }

  /** Calls listener for every change until the returned function is called. */
  subscribe(listener: (e: ChangeEvent) => void): () => void {
    this.emitter.on('change', listener);
    if (this.listening === 1) this.wire(true);
    return () => {
      this.emitter.off('change', listener);
      if (this.listening === 0) this.wire(false);
    };
  }

  /** A route this node decided (the router's observer calls it). */
  route(key: ClientKey, r: Route, ms: number): void {
    if (this.listening === 0 || r.source === 'local') return;
    this.emit(r.source, key, r.endpoint, r.version, r.originNode, this.nodeId, ms);
  }

  private emit(kind: ChangeKind, client: ClientKey, endpoint: Endpoint | undefined, version: number, originNode: number, fromNode: number, ms?: number): void {
    const e: ChangeEvent = {
      at: new Date().toISOString(), kind, client: formatClientKey(client), endpoint: endpoint && formatEndpoint(endpoint), version, originNode, fromNode,
      ...(ms === undefined ? {} : { ms: Math.round(ms * 1000) / 1000 }),
    };
    this.emitter.emit('change', e);
  }

  private wire(on: boolean): void {
    const p = this.parts;
    if (!on) {
      p.applier.observer = undefined;
      p.withdrawals.observer = undefined;
      p.link.onMessage(MessageType.Update, () => {});
      p.link.onClaimSettled = undefined;
      // the last watcher may leave after the node closed (monitor attached at SIGTERM)
      if (!this.closed) p.responder.setChangeFeed(false);
      return;
    }
    p.applier.observer = (kind, x, from) => {
      const ep = 'endpoint' in x ? (x as Entry).endpoint : undefined;
      this.emit(ep ? kind : 'withdraw', x.clientKey, ep, x.version, x.originNode, from);
    };
    p.withdrawals.observer = (w: Withdraw, from) => this.emit('withdraw', w.clientKey, undefined, w.version, w.originNode, from);
    p.link.onMessage(MessageType.Update, (body, from) => {
      // checked natively already
      for (const entry of decodeUpdate(body).entries) this.emit('update', entry.clientKey, entry.endpoint, entry.version, entry.originNode, from.nodeId);
    });
    p.link.onClaimSettled = (s) => {
      for (const e of s.entries) this.emit('claim', clientKeyFromBytes(e.keyBytes), e.endpoint, e.version, e.originNode, s.from.nodeId);
    };
    p.responder.setChangeFeed(true);
  }
}

