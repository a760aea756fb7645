// The endpoints a node may select, with what selection needs to know of
// each: its weight, its connections, and whether it is up. Pure state, no I/O.
import { type Endpoint, formatEndpoint, validateEndpoint } from '../codec/endpoint';

export interface ConfiguredEndpoint extends Endpoint {
  /** Relative share of new clients; 0 takes none (drain). */
  readonly weight: number;
}

export interface EndpointState {
  readonly endpoint: ConfiguredEndpoint;
  /** Stable identity for hashing: `name=address:port`. */
  readonly id: string;
  connections: number;
  /** Not selected until this time (ms since epoch); 0: up. Passive: set when a connection is refused. */
  downUntil: number;
  /** Out by the active health check (health-checker.ts) until it passes again. */
  checkedDown?: boolean;
  failures: number;
}

export class EndpointSet {
  states: EndpointState[];

  constructor(endpoints: readonly ConfiguredEndpoint[], private readonly now: () => number = Date.now) {
    this.states = EndpointSet.fresh(endpoints);
  }

  private static fresh(endpoints: readonly ConfiguredEndpoint[]): EndpointState[] {
    const seen = new Set<string>();
    return endpoints.map((e) => {
      validateEndpoint(e);
      if (!(e.weight >= 0)) throw new Error(`endpoint ${formatEndpoint(e)}: weight must be >= 0`);
      const id = formatEndpoint(e);
      if (seen.has(id)) throw new Error(`endpoint ${id} is listed twice`);
      seen.add(id);
      return { endpoint: e, id, connections: 0, downUntil: 0, failures: 0 };
    });
  }

  /**
   * A new endpoint list (a configuration reload): endpoints that stay keep
   * their connections and health; new ones start up; removed ones are no
   * longer selected (their clients keep their entries until moved or cleared).
   * Throws, changing nothing, if the list is bad.
   */
  replace(endpoints: readonly ConfiguredEndpoint[]): { added: number; removed: number; kept: number } {
    const next = EndpointSet.fresh(endpoints);
    let kept = 0;
    for (const n of next) {
      const old = this.states.find((s) => s.endpoint.address === n.endpoint.address && s.endpoint.port === n.endpoint.port);
      if (!old) continue;
      kept++;
      Object.assign(n, { connections: old.connections, downUntil: old.downUntil, checkedDown: old.checkedDown, failures: old.failures });
    }
    const removed = this.states.length - kept;
    this.states = next;
    return { added: next.length - kept, removed, kept };
  }

  /** Endpoints that may take a new client now. */
  healthy(): EndpointState[] {
    const t = this.now();
    return this.states.filter((s) => s.endpoint.weight > 0 && s.downUntil <= t && !s.checkedDown);
  }

  private out(s: EndpointState, t: number): boolean {
    return s.downUntil > t || !!s.checkedDown;
  }

  find(e: Endpoint): EndpointState | undefined {
    return this.states.find((s) => s.endpoint.address === e.address && s.endpoint.port === e.port);
  }

  /** True if some endpoint is held down now (lets batch callers skip per-client checks). */
  anyDown(): boolean {
    const t = this.now();
    return this.states.some((s) => this.out(s, t));
  }

  isDown(e: Endpoint): boolean {
    const s = this.find(e);
    return !!s && this.out(s, this.now());
  }

  /** Passive health: a refused or timed-out connection takes the endpoint out for holdMs. */
  markFailed(e: Endpoint, holdMs: number): void {
    const s = this.find(e);
    if (!s) return;
    s.failures++;
    s.downUntil = this.now() + holdMs;
  }

  markUp(e: Endpoint): void {
    const s = this.find(e);
    if (s) s.downUntil = 0;
  }
}
