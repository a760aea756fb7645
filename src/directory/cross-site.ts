// The decision across sites (docs/sites.md), as the router takes it: after
// the site's own agreement has settled an entry for a client, every node of
// the site that routed the client claims that same entry in the site
// directory (Redis). The first writer across sites wins; all nodes of one
// site ask with one entry, so they all get one answer:
//   - won (or lost to this very entry, written by a node of this site
//     first): the site's entry stands;
//   - lost to another site's entry W: the node adopts W. If W would lose to
//     the site's entry by the version rule (W is older, or as old with a
//     lower origin node), the node stores W's endpoint one version above
//     the site's entry, with W's origin node: every node of the site
//     computes the same adoption, so it replaces the site's entry
//     everywhere in the site, on the endpoint the other site chose;
//   - site-local (Redis did not answer within its budget): the site's entry
//     stands; the site directory journals it and reconciles it later.
// A move (a reroute at a higher version) is published by the version rule
// instead: superseded by a record Redis holds means adopting it alike.
import type { Endpoint } from '../codec/endpoint';
import { sameEndpoint } from '../codec/endpoint';
import type { Entry } from '../codec/messages';
import type { SiteDirectory } from '../sites/site-directory';
import type { KeyedEntry } from '../transport/cluster-link';
import { newer } from './memory-directory';

export interface CrossSiteDecision {
  /** The entry the client goes with: the site's, one the site directory raised above a marker, or an adoption. */
  readonly entry: KeyedEntry;
  /** site: this site's entry stands (across sites, or site-local); other-site: adopted from another site. */
  readonly from: 'site' | 'other-site';
  /** Redis did not decide in time: the site's entry stands, journaled. */
  readonly siteLocal: boolean;
}

export interface CrossSiteCounters {
  claims: number;
  won: number;
  adopted: number;
  siteLocal: number;
  moves: number;
  movesSuperseded: number;
}

const sameEntry = (a: Pick<Entry, 'endpoint' | 'version' | 'originNode'>, b: Pick<Entry, 'endpoint' | 'version' | 'originNode'>): boolean =>
  a.version === b.version && a.originNode === b.originNode && sameEndpoint(a.endpoint, b.endpoint);

/** What a node of this site stores for a client another site won with w, where the site had agreed on e. */
export function adoption(e: KeyedEntry, w: Pick<Entry, 'endpoint' | 'version' | 'originNode' | 'ttlSeconds'>): KeyedEntry {
  const endpoint: Endpoint = { address: w.endpoint.address, port: w.endpoint.port, name: w.endpoint.name };
  if (newer(w.version, w.originNode, e.version, e.originNode)) return { ...e, endpoint, version: w.version, originNode: w.originNode, ttlSeconds: w.ttlSeconds || e.ttlSeconds };
  return { ...e, endpoint, version: e.version + 1, originNode: w.originNode, ttlSeconds: w.ttlSeconds || e.ttlSeconds };
}

export class CrossSite {
  readonly counters: CrossSiteCounters = { claims: 0, won: 0, adopted: 0, siteLocal: 0, moves: 0, movesSuperseded: 0 };

  constructor(readonly site: SiteDirectory) {}

  /** The decision across sites for each entry the site agreed on, in order. Never rejects: a failure is site-local. */
  async decide(agreed: readonly KeyedEntry[]): Promise<CrossSiteDecision[]> {
    this.counters.claims += agreed.length;
    let outcomes;
    try {
      outcomes = await this.site.claim(agreed);
    } catch {
      // an entry the codec refuses cannot cross sites; the site's entry stands
      this.counters.siteLocal += agreed.length;
      return agreed.map((entry) => ({ entry, from: 'site', siteLocal: true }));
    }
    return agreed.map((e, i): CrossSiteDecision => {
      const o = outcomes[i];
      if (o.outcome === 'site-local') {
        this.counters.siteLocal++;
        return { entry: e, from: 'site', siteLocal: true };
      }
      if (o.outcome === 'won') {
        this.counters.won++;
        return { entry: sameEntry(o.entry, e) ? e : { ...e, version: o.entry.version }, from: 'site', siteLocal: false };
      }
      if (sameEntry(o.winner, e)) {
        this.counters.won++;
        return { entry: e, from: 'site', siteLocal: false };
      }
      this.counters.adopted++;
      return { entry: adoption(e, o.winner), from: 'other-site', siteLocal: false };
    });
  }

  /** A move this node made: published by the version rule; a newer entry Redis holds is adopted instead. */
  async move(moved: KeyedEntry): Promise<CrossSiteDecision> {
    this.counters.moves++;
    let o;
    try {
      o = await this.site.publish(moved);
    } catch {
      return { entry: moved, from: 'site', siteLocal: true };
    }
    if (o.outcome === 'site-local') return { entry: moved, from: 'site', siteLocal: true };
    if (o.outcome === 'superseded' && o.current.kind === 'entry' && !sameEntry(o.current.entry, moved)) {
      this.counters.movesSuperseded++;
      return { entry: adoption(moved, o.current.entry), from: 'other-site', siteLocal: false };
    }
    return { entry: moved, from: 'site', siteLocal: false };
  }
}
