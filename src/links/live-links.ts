// The live links this node knows of: every connection of a client that is up
// now, with the endpoint it went to. The front ends add the calls they
// splice; RADIUS accounting adds the sessions a LAC reports (Start/Stop); the
// library API may add links its caller connected. Live-split detection
// compares them with the agreed entry of each client (issue 11), and the
// RADIUS accounting releases a client's entry when its last link ends.
import type { ClientKey } from '../codec/client-key';
import type { Endpoint } from '../codec/endpoint';

/** Who reported the link. */
export type LinkVia =
  /** a call a front end of this node spliced */
  | 'frontend'
  /** a session a LAC reported through RADIUS accounting */
  | 'radius'
  /** a link the library user reported */
  | 'api';

export interface LiveLink {
  /** Unique on this node, e.g. `frontend:calls:17` or `radius:SESSION@NAS`. */
  readonly id: string;
  readonly client: ClientKey;
  /** The client's canonical key octets. */
  readonly keyBytes: Buffer;
  /** Where the link went. */
  readonly endpoint: Endpoint;
  readonly via: LinkVia;
  /** Date.now() when it was added. */
  readonly since: number;
  /** Ends the link (a front end's call); absent when this node cannot end it (RADIUS). */
  readonly close?: (reason: string) => void;
}

export class LiveLinks {
  private readonly byId = new Map<string, LiveLink>();
  private readonly byClient = new Map<string, Set<LiveLink>>();
  /** Told when a client's last live link ends (RADIUS: release its entry after a grace time). */
  onClientIdle?: (client: ClientKey, keyBytes: Buffer) => void;

  /** Adds a link; a link with the same id is replaced (a repeated accounting Start). */
  add(link: Omit<LiveLink, 'since'>, now = Date.now()): LiveLink {
    const old = this.byId.get(link.id);
    if (old) this.detach(old, false);
    // one literal, not `{ ...link, since }`: a spread with a field added makes V8 build new hidden classes on every call
    const l: LiveLink = { id: link.id, client: link.client, keyBytes: link.keyBytes, endpoint: link.endpoint, via: link.via, since: old?.since ?? now, close: link.close };
    this.byId.set(l.id, l);
    const k = l.keyBytes.toString('latin1');
    let set = this.byClient.get(k);
    if (!set) this.byClient.set(k, (set = new Set()));
    set.add(l);
    return l;
  }

  /** Removes a link; returns it, or undefined if it was not live. */
  remove(id: string): LiveLink | undefined {
    const l = this.byId.get(id);
    if (l) this.detach(l, true);
    return l;
  }

  get(id: string): LiveLink | undefined {
    return this.byId.get(id);
  }

  /** Live links of one client (canonical key octets). */
  forClient(keyBytes: Buffer): LiveLink[] {
    return [...(this.byClient.get(keyBytes.toString('latin1')) ?? [])];
  }

  countFor(keyBytes: Buffer): number {
    return this.byClient.get(keyBytes.toString('latin1'))?.size ?? 0;
  }

  /** Every live link. */
  all(): IterableIterator<LiveLink> {
    return this.byId.values();
  }

  /** Clients with at least one live link: canonical key (latin1) -> links. */
  clients(): ReadonlyMap<string, ReadonlySet<LiveLink>> {
    return this.byClient;
  }

  get size(): number {
    return this.byId.size;
  }

  private detach(l: LiveLink, notify: boolean): void {
    this.byId.delete(l.id);
    const k = l.keyBytes.toString('latin1');
    const set = this.byClient.get(k);
    if (!set) return;
    set.delete(l);
    if (set.size === 0) {
      this.byClient.delete(k);
      if (notify) this.onClientIdle?.(l.client, l.keyBytes);
    }
  }
}
