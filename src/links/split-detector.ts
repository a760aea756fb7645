// Live-split detection and repair (issue 11): this node knows where every
// live link of a client went (LiveLinks); the client's agreed entry is in
// the directory. A link on another endpoint than the agreed one is a stray
// link: the bundle is split. Each split client is counted once per
// incident and logged once at warn; with splitRepair 'close' the stray links
// this node can end (its front ends' calls) are closed, so that the client
// redials, as a PPP Multilink peer does for a lost link, onto the agreed
// endpoint. With 'report' they are only counted and listed.
import { type ClientKey, formatClientKey } from '../codec/client-key';
import { type Endpoint, formatEndpoint, sameEndpoint } from '../codec/endpoint';
import type { DirectoryReader } from '../directory/directory';
import type { Logger } from '../util/logger';
import type { LiveLink, LiveLinks } from './live-links';

export type SplitRepair = 'close' | 'report';

export interface SplitCounters {
  /** Clients found with a stray link, once per incident. */
  detected: number;
  /** Stray links closed by splitRepair 'close'. */
  closed: number;
  /** Stray links this node could not end itself (RADIUS sessions). */
  unclosable: number;
  /** Incidents over: the client's links all on its agreed endpoint again (or gone). */
  healed: number;
  checks: number;
}

/** One split client, as `affinityd show splits` lists it. */
export interface SplitView {
  client: string;
  agreed: string;
  /** Since when (Date.now()) it has been split. */
  sinceMs: number;
  links: { id: string; endpoint: string; via: string; stray: boolean }[];
}

interface Incident {
  readonly client: ClientKey;
  readonly sinceMs: number;
  agreed: Endpoint;
  stray: LiveLink[];
  all: LiveLink[];
  /** Stray links already counted as unclosable. */
  readonly unclosable: Set<string>;
}

export class SplitDetector {
  readonly counters: SplitCounters = { detected: 0, closed: 0, unclosable: 0, healed: 0, checks: 0 };
  private readonly incidents = new Map<string, Incident>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly links: LiveLinks,
    private readonly directory: DirectoryReader,
    private o: { repair: SplitRepair; intervalMs: number },
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => this.check(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  reconfigure(o: { repair: SplitRepair; intervalMs: number }): void {
    const restart = !!this.timer && o.intervalMs !== this.o.intervalMs;
    this.o = o;
    if (restart) this.start();
  }

  /** Stray links now (the live-split gauge). */
  get strayLinks(): number {
    let n = 0;
    for (const i of this.incidents.values()) n += i.stray.length;
    return n;
  }

  /** Split clients now. */
  get splitClients(): number {
    return this.incidents.size;
  }

  /** Compares every client's live links with its agreed entry; counts, logs and repairs. */
  check(now = Date.now()): void {
    this.counters.checks++;
    const seen = new Set<string>();
    for (const [k, set] of this.links.clients()) {
      const all = [...set];
      const agreed = this.directory.lookup(all[0].keyBytes);
      if (!agreed) continue; // no entry (expired, withdrawn): nothing to be split from
      const stray = all.filter((l) => !sameEndpoint(l.endpoint, agreed.endpoint));
      if (stray.length === 0) continue;
      seen.add(k);
      let inc = this.incidents.get(k);
      if (!inc) {
        inc = { client: all[0].client, sinceMs: now, agreed: agreed.endpoint, stray, all, unclosable: new Set() };
        this.incidents.set(k, inc);
        this.counters.detected++;
        this.log.warn(
          { client: formatClientKey(inc.client), agreed: formatEndpoint(agreed.endpoint), stray: stray.map((l) => `${l.id}->${l.endpoint.name}`), repair: this.o.repair },
          'split bundle: live links of one client on different endpoints',
        );
      }
      inc.agreed = agreed.endpoint;
      inc.stray = stray;
      inc.all = all;
      if (this.o.repair === 'close') {
        for (const l of stray) {
          if (!l.close) {
            if (!inc.unclosable.has(l.id)) this.counters.unclosable++;
            inc.unclosable.add(l.id);
            continue;
          }
          this.counters.closed++;
          this.links.remove(l.id);
          l.close(`split bundle: the client's agreed endpoint is ${agreed.endpoint.name}`);
        }
      }
    }
    for (const k of [...this.incidents.keys()]) {
      if (seen.has(k)) continue;
      this.incidents.delete(k);
      this.counters.healed++;
    }
  }

  views(): SplitView[] {
    return [...this.incidents.values()].map((i) => ({
      client: formatClientKey(i.client),
      agreed: formatEndpoint(i.agreed),
      sinceMs: i.sinceMs,
      links: i.all.map((l) => ({ id: l.id, endpoint: formatEndpoint(l.endpoint), via: l.via, stray: i.stray.includes(l) })),
    }));
  }
}
