// The decision across sites (docs/sites.md), as the router takes it. A node
// whose miss nobody in its site answered claims its proposal in the site
// directory (Redis) before it proposes it to its site's arbiter; the first
// writer across sites wins, and every claimant gets the same answer:
//   - won: the proposal (its version perhaps raised above a withdraw
//     marker) is what the node proposes in its site;
//   - lost to an entry W with the same endpoint: the proposal stands;
//   - lost to an entry W of a version at least the proposal's: the node
//     proposes W itself (an adoption: W's endpoint, version and origin), so
//     every node of every site that asks ends up proposing the same entry;
//   - lost to an older W on another endpoint: the proposal is a later
//     decision (made above a withdraw marker held here), published by the
//     version rule like a move;
//   - site-local (Redis did not answer within its budget): the proposal
//     stands; the site directory journals it and reconciles it later.
// A move (a reroute at a higher version) is published by the version rule:
// superseded by a record Redis holds means adopting that one.
import type { Endpoint } from '../codec/endpoint';
import { sameEndpoint } from '../codec/endpoint';
import type { Entry } from '../codec/messages';
import type { SiteDirectory } from '../sites/site-directory';
import type { KeyedEntry } from '../transport/cluster-link';

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

/** The entry a node proposes for a client whose proposal e lost to w in the site directory: w itself, for e's client. */
export function adoption(e: KeyedEntry, w: Pick<Entry, 'endpoint' | 'version' | 'originNode' | 'ttlSeconds'>): KeyedEntry {
  const endpoint: Endpoint = { address: w.endpoint.address, port: w.endpoint.port, name: w.endpoint.name };
  return { ...e, endpoint, version: w.version, originNode: w.originNode, ttlSeconds: w.ttlSeconds || e.ttlSeconds };
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
    const later: number[] = [];
    const decisions = agreed.map((e, i): CrossSiteDecision => {
      const o = outcomes[i];
      if (o.outcome === 'site-local') {
        this.counters.siteLocal++;
        return { entry: e, from: 'site', siteLocal: true };
      }
      if (o.outcome === 'won') {
        this.counters.won++;
        return { entry: sameEntry(o.entry, e) ? e : { ...e, version: o.entry.version }, from: 'site', siteLocal: false };
      }
      // Redis holds an entry already: see the rules at the top
      if (sameEndpoint(o.winner.endpoint, e.endpoint)) {
        this.counters.won++;
        return { entry: e, from: 'site', siteLocal: false };
      }
      if (o.winner.version < e.version) {
        later.push(i); // a later decision than Redis's: published below (a move), not adopted
        return { entry: e, from: 'site', siteLocal: false };
      }
      this.counters.adopted++;
      return { entry: adoption(e, o.winner), from: 'other-site', siteLocal: false };
    });
    for (const i of later) decisions[i] = await this.move(agreed[i]);
    return decisions;
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
