// Every counter of a node in one object: `affinityd show stats` prints it,
// the Prometheus metrics are read from it at scrape time (metrics.ts), so
// the two never disagree.
import type { DirectoryStats } from '../directory/directory';
import type { DirectoryMaintenance } from '../directory/maintenance/maintenance';
import type { Router } from '../directory/router';
import type { Frontend } from '../frontend/frontend';
import type { ResponderStats } from '../native';
import type { EndpointSet } from '../selection/endpoint-set';
import type { NativeLink } from '../transport/native-link';
import type { SplitDetector } from '../links/split-detector';
import type { IdentityWatch } from './identity-watch';
import type { RadiusStats } from '../radius/radius-service';
import type { CrossSiteCounters } from '../directory/cross-site';
import type { SiteDirectoryView } from '../sites/views';

/** `show stats`' `sites`: the site directory, the router's decisions across sites, the table's write-backs. */
export type SiteStats = SiteDirectoryView & {
  crossSite: CrossSiteCounters;
  writeBack: { runs: number; records: number; last?: { written: number; unchanged: number; conflicts: number; failed: number; skipped: number; ms: number } };
};
import type { SnapshotKeeper } from './snapshots';

export interface StatsSources {
  readonly nodeId: number;
  readonly router: Router;
  readonly responder: { stats(): ResponderStats };
  readonly directory: { stats(): DirectoryStats };
  readonly link: NativeLink;
  readonly frontends: readonly Frontend[];
  readonly endpoints: EndpointSet;
  readonly healthChecks: number;
  readonly maintenance: DirectoryMaintenance;
  readonly snapshots: SnapshotKeeper;
  readonly splits: SplitDetector;
  readonly liveLinks: number;
  readonly identity: IdentityWatch;
  /** Peers heard from recently (not configured-only ones). */
  readonly peersHeard: number;
  /** The RADIUS API, when it runs. */
  readonly radius?: { stats(): RadiusStats };
  /** Sites (docs/sites.md), when enabled: the site directory as `show peers` prints it. */
  readonly sites?: { view(): SiteStats | undefined };
}

export function collectStats(s: StatsSources) {
  const m = s.maintenance.stats();
  return {
    node: s.nodeId,
    snapshots: { ...s.snapshots.counters },
    router: { ...s.router.counters, inFlight: s.router.inFlight() },
    responder: s.responder.stats(),
    table: s.directory.stats(),
    link: { ...s.link.counters },
    peers: s.peersHeard,
    frontends: s.frontends.map((f) => ({ name: f.config.name, address: f.address(), ...f.counters })),
    endpoints: s.endpoints.states.map((e) => ({
      name: e.endpoint.name,
      connections: e.connections,
      down: e.downUntil > Date.now() || !!e.checkedDown,
      checkedDown: !!e.checkedDown,
      failures: e.failures,
    })),
    healthChecks: s.healthChecks,
    sync: { state: m.state, outcome: m.outcome, server: m.server, sessions: m.sessions, applied: m.applied },
    withdrawals: m.withdrawals,
    antiEntropy: m.antiEntropy,
    links: { live: s.liveLinks, strayLinks: s.splits.strayLinks, splitClients: s.splits.splitClients, ...s.splits.counters },
    identity: { ...s.identity.counters },
    radius: s.radius?.stats(),
    sites: s.sites?.view(),
  };
}

export type NodeStats = ReturnType<typeof collectStats>;
