// RADIUS accounting: the live links of each client as the LACs report them
// (Acct-Status-Type Start, Stop, Interim-Update, Accounting-On/-Off), kept in
// the node's LiveLinks registry with the endpoint each session went to; and
// the entry's life that follows from them:
//
//   - when a client's last live link at this node ends, its entry is
//     released (withdrawn on every node) after releaseGraceSeconds, unless a
//     new session or Access-Request for it comes first;
//   - a node that still holds live RADIUS sessions of a client whose entry
//     is withdrawn or missing (another node released it, an operator cleared
//     it, it expired) stores the endpoint of those sessions again above the
//     marker and announces it: the entry follows the links that are up.
//
// The links of one bundle are often accounted at different nodes, so a
// release at one node is answered within one UPDATE by any node that still
// has a link of the client (docs/radius.md, "Accounting"). I/O is injected.
import { type ClientKey, formatClientKey } from '../codec/client-key';
import { type Endpoint, sameEndpoint } from '../codec/endpoint';
import type { Logger } from '../util/logger';
import type { LiveLinks } from '../links/live-links';

export interface AccountingPorts {
  readonly links: LiveLinks;
  /** The live entry this node holds for the client (undefined: none, expired or withdrawn). */
  held(keyBytes: Buffer): Endpoint | undefined;
  /** Deletes the client's entry on every node (node.withdraw). */
  withdraw(key: ClientKey): void;
  /** Stores `endpoint` for the client above whatever this node holds and announces it (an UPDATE). */
  reassert(key: ClientKey, keyBytes: Buffer, endpoint: Endpoint): void;
  /** The configured endpoint a Tunnel-Server-Endpoint names. */
  endpointFor(serverEndpoint: string): Endpoint | undefined;
}

export type AccountingStatus = 'start' | 'stop' | 'interim-update' | 'accounting-on' | 'accounting-off' | 'other';

/** Acct-Status-Type as FreeRADIUS writes it (its name, or the number with raw_value). */
export function accountingStatus(v: string | number): AccountingStatus {
  switch (String(v).toLowerCase()) {
    case 'start':
    case '1':
      return 'start';
    case 'stop':
    case '2':
      return 'stop';
    case 'interim-update':
    case 'alive':
    case '3':
      return 'interim-update';
    case 'accounting-on':
    case '7':
      return 'accounting-on';
    case 'accounting-off':
    case '8':
      return 'accounting-off';
    default:
      return 'other';
  }
}

export interface SessionEvent {
  readonly status: AccountingStatus;
  /** NAS-Identifier, else NAS-IP-Address, else NAS-IPv6-Address. */
  readonly nas: string;
  /** Start, Stop, Interim-Update: */
  readonly sessionId?: string;
  readonly key?: ClientKey;
  readonly keyBytes?: Buffer;
  /** Tunnel-Server-Endpoint, if the LAC reported it. */
  readonly serverEndpoint?: string;
}

export interface AccountingCounters {
  start: number;
  stop: number;
  interimUpdate: number;
  accountingOn: number;
  accountingOff: number;
  /** Other Acct-Status-Types (tunnel accounting, Failed): answered, nothing changes. */
  other: number;
  /** Start or Interim-Update of a session whose endpoint is not known here (no entry, no Tunnel-Server-Endpoint): not counted as a link. */
  unplaced: number;
  /** A Tunnel-Server-Endpoint that names no configured endpoint: the entry's endpoint was used. */
  unknownServerEndpoint: number;
  /** A session that went to another endpoint than the client's entry (a live split; issue 11 reports it). */
  elsewhere: number;
  /** Interim-Update of a session this node did not know (it started before a restart): now counted. */
  adopted: number;
  /** Stop of a session that was not live here. */
  stopUnknown: number;
  /** Sessions ended by Accounting-On/-Off of their NAS. */
  endedByNas: number;
  /** Start refused because this node already tracks its maximum of sessions. */
  full: number;
  releasesScheduled: number;
  /** Releases put off by an Access-Request for the client during the grace time. */
  releasesPostponed: number;
  /** Releases called off by a new session. */
  releasesCancelled: number;
  /** Entries withdrawn after the grace time. */
  released: number;
  /** Entries stored again because this node has live sessions of a client whose entry was withdrawn or missing. */
  reasserted: number;
}

export interface AccountingOptions {
  releaseGraceSeconds: number;
  /** Live RADIUS sessions this node tracks at most (a NAS that never sends Stop must not exhaust memory). */
  maxSessions: number;
}

const linkId = (sessionId: string, nas: string) => `radius:${sessionId}@${nas}`;

export class RadiusAccounting {
  readonly counters: AccountingCounters = {
    start: 0, stop: 0, interimUpdate: 0, accountingOn: 0, accountingOff: 0, other: 0, unplaced: 0, unknownServerEndpoint: 0, elsewhere: 0,
    adopted: 0, stopUnknown: 0, endedByNas: 0, full: 0, releasesScheduled: 0, releasesPostponed: 0, releasesCancelled: 0, released: 0, reasserted: 0,
  };
  /** Link ids of each NAS, for Accounting-On/-Off. */
  private readonly byNas = new Map<string, Set<string>>();
  /** Clients (canonical key, latin1) with a RADIUS session since they were last idle. */
  private readonly radiusClients = new Set<string>();
  private readonly releases = new Map<string, { timer: NodeJS.Timeout; key: ClientKey; keyBytes: Buffer }>();
  private sessions = 0;
  private reassertQueue = new Map<string, { key: ClientKey; keyBytes: Buffer }>();

  constructor(private readonly ports: AccountingPorts, private o: AccountingOptions, private readonly log: Logger) {
    const prev = ports.links.onClientIdle;
    ports.links.onClientIdle = (client, keyBytes) => {
      prev?.(client, keyBytes);
      this.idle(client, keyBytes);
    };
  }

  reconfigure(o: AccountingOptions): void {
    this.o = o;
  }

  /** Live RADIUS sessions at this node. */
  get liveSessions(): number {
    return this.sessions;
  }

  get pendingReleases(): number {
    return this.releases.size;
  }

  handle(e: SessionEvent): void {
    switch (e.status) {
      case 'start':
        this.counters.start++;
        return this.up(e, false);
      case 'interim-update':
        this.counters.interimUpdate++;
        return this.up(e, true);
      case 'stop':
        this.counters.stop++;
        return this.down(e);
      case 'accounting-on':
      case 'accounting-off':
        this.counters[e.status === 'accounting-on' ? 'accountingOn' : 'accountingOff']++;
        return this.nasRestarted(e.nas);
      default:
        this.counters.other++;
    }
  }

  /** An Access-Request for the client: a release under way waits another grace time (its session's Start is coming). */
  noteAccess(keyBytes: Buffer): void {
    const k = keyBytes.toString('latin1');
    const r = this.releases.get(k);
    if (!r) return;
    clearTimeout(r.timer);
    r.timer = this.releaseTimer(k);
    this.counters.releasesPostponed++;
  }

  /**
   * The client's entry was withdrawn here (by another node's release, an
   * operator's clear, a repair): if this node has live RADIUS sessions of
   * the client, their endpoint is stored again and announced.
   */
  withdrawn(keyBytes: Buffer): void {
    if (this.ports.links.countFor(keyBytes) === 0) return;
    const k = keyBytes.toString('latin1');
    if (this.reassertQueue.has(k)) return;
    const link = this.ports.links.forClient(keyBytes).find((l) => l.via === 'radius');
    if (!link) return;
    // after the withdraw that called us has been counted and announced
    if (this.reassertQueue.size === 0) queueMicrotask(() => this.drainReasserts());
    this.reassertQueue.set(k, { key: link.client, keyBytes: link.keyBytes });
  }

  private drainReasserts(): void {
    const q = this.reassertQueue;
    this.reassertQueue = new Map();
    for (const { key, keyBytes } of q.values()) {
      const link = this.ports.links.forClient(keyBytes).find((l) => l.via === 'radius');
      if (!link || this.ports.held(keyBytes)) continue;
      this.reassert(key, keyBytes, link.endpoint, 'withdrawn while its sessions are up');
    }
  }

  private reassert(key: ClientKey, keyBytes: Buffer, endpoint: Endpoint, why: string): void {
    this.ports.reassert(key, keyBytes, endpoint);
    this.counters.reasserted++;
    this.log.debug({ client: formatClientKey(key), endpoint: endpoint.name, why }, 'radius: entry stored again for the live sessions of the client');
  }

  /** Start, or Interim-Update (adopt = true: a session not known here is added). */
  private up(e: SessionEvent, interim: boolean): void {
    const { key, keyBytes, sessionId } = e;
    if (!key || !keyBytes || sessionId === undefined) return;
    const id = linkId(sessionId, e.nas);
    const known = this.ports.links.get(id);
    if (interim && known) {
      // the session is known: only make sure its client still has an entry (it may have expired)
      if (!this.ports.held(keyBytes)) this.reassert(key, keyBytes, known.endpoint, 'no entry for a live session');
      return;
    }
    const held = this.ports.held(keyBytes);
    let endpoint: Endpoint | undefined;
    if (e.serverEndpoint !== undefined) {
      endpoint = this.ports.endpointFor(e.serverEndpoint);
      if (!endpoint) {
        this.counters.unknownServerEndpoint++;
        endpoint = held;
      }
    } else {
      endpoint = held;
    }
    if (!endpoint) {
      this.counters.unplaced++;
      return;
    }
    if (!known && this.sessions >= this.o.maxSessions) {
      this.counters.full++;
      return;
    }
    if (interim) this.counters.adopted++;
    this.ports.links.add({ id, client: key, keyBytes, endpoint, via: 'radius' });
    if (!known) {
      this.sessions++;
      let ids = this.byNas.get(e.nas);
      if (!ids) this.byNas.set(e.nas, (ids = new Set()));
      ids.add(id);
    }
    const k = keyBytes.toString('latin1');
    this.radiusClients.add(k);
    const pending = this.releases.get(k);
    if (pending) {
      clearTimeout(pending.timer);
      this.releases.delete(k);
      this.counters.releasesCancelled++;
    }
    if (!held) this.reassert(key, keyBytes, endpoint, 'a session started with no entry held');
    else if (!sameEndpoint(held, endpoint)) this.counters.elsewhere++;
  }

  private down(e: SessionEvent): void {
    if (e.sessionId === undefined) return;
    const id = linkId(e.sessionId, e.nas);
    if (!this.forget(id, e.nas)) this.counters.stopUnknown++;
  }

  private forget(id: string, nas: string): boolean {
    const ids = this.byNas.get(nas);
    if (!ids?.delete(id)) return false;
    if (ids.size === 0) this.byNas.delete(nas);
    this.sessions--;
    this.ports.links.remove(id); // may call idle()
    return true;
  }

  private nasRestarted(nas: string): void {
    const ids = this.byNas.get(nas);
    if (!ids) return;
    for (const id of [...ids]) {
      if (this.forget(id, nas)) this.counters.endedByNas++;
    }
  }

  /** LiveLinks: the client's last live link ended. */
  private idle(client: ClientKey, keyBytes: Buffer): void {
    const k = keyBytes.toString('latin1');
    if (!this.radiusClients.delete(k) || this.releases.has(k)) return;
    this.releases.set(k, { timer: this.releaseTimer(k), key: client, keyBytes: Buffer.from(keyBytes) });
    this.counters.releasesScheduled++;
  }

  private releaseTimer(k: string): NodeJS.Timeout {
    const t = setTimeout(() => this.release(k), this.o.releaseGraceSeconds * 1000);
    t.unref();
    return t;
  }

  private release(k: string): void {
    const r = this.releases.get(k);
    if (!r) return;
    this.releases.delete(k);
    if (this.ports.links.countFor(r.keyBytes) > 0) {
      this.counters.releasesCancelled++;
      return;
    }
    this.ports.withdraw(r.key);
    this.counters.released++;
  }

  /** Stops every timer (the node is closing). */
  close(): void {
    for (const r of this.releases.values()) clearTimeout(r.timer);
    this.releases.clear();
  }
}
