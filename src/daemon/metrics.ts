// Prometheus metrics of a node (prom-client), read from the node's own
// counters at scrape time, so a scrape always agrees with `affinityd show
// stats`. Names follow the Prometheus conventions (affinityd_ prefix, _total
// for counters, base units); labels are small fixed sets (source, verdict,
// front end, endpoint), never a username or discriminator.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

import { buildInfo } from '../util/build-info';
import type { NodeStats } from './node-stats';

type Stats = NodeStats;
type Labels = Record<string, string>;

export class NodeMetrics {
  readonly registry = new Registry();
  readonly routeDecision: Histogram<'source'>;
  readonly callSetup: Histogram<'frontend'>;
  readonly radiusDecision: Histogram;
  private cached?: { at: number; stats: Stats };

  constructor(private readonly node: { stats(): NodeStats }) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    // prom-client names three gauges *_total, which `promtool check metrics` refuses (the suffix is
    // for counters); their per-type versions (nodejs_active_handles{type} ...) carry the same counts
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) r.removeSingleMetric(name);
    const b = buildInfo();
    new Gauge({ name: 'affinityd_build_info', help: 'Always 1; the labels say which build runs', labelNames: ['version', 'revision', 'nodejs'], registers: [r] }).set(
      { version: b.version, revision: b.revision, nodejs: b.nodejs },
      1,
    );
    const stats = () => {
      // one stats() per scrape, shared by every metric's collect()
      const now = Date.now();
      if (!this.cached || now - this.cached.at > 50) this.cached = { at: now, stats: this.node.stats() };
      return this.cached.stats;
    };
    const counter = (name: string, help: string, labelNames: string[], read: (s: Stats) => [Labels, number][]) =>
      new Counter({
        name, help, labelNames, registers: [r],
        collect() {
          this.reset();
          for (const [l, v] of read(stats())) this.inc(l, v);
        },
      });
    const gauge = (name: string, help: string, labelNames: string[], read: (s: Stats) => [Labels, number][]) =>
      new Gauge({
        name, help, labelNames, registers: [r],
        collect() {
          this.reset();
          for (const [l, v] of read(stats())) this.set(l, v);
        },
      });
    const one = (v: number): [Labels, number][] => [[{}, v]];

    counter('affinityd_routes_total', 'Call requests routed, by where the endpoint came from', ['source'], (s) => [
      [{ source: 'local' }, s.router.localHits],
      [{ source: 'remote' }, s.router.remoteHits + s.router.lateUpdateHits],
      [{ source: 'direct' }, s.router.directHits],
      [{ source: 'selected' }, s.router.selected],
      [{ source: 'rerouted' }, s.router.rerouted],
      [{ source: 'site' }, s.router.siteAdopted],
    ]);
    counter('affinityd_route_misses_total', 'Call requests not in the local table', [], (s) => one(s.router.misses));
    counter('affinityd_routes_held_for_sync_total', 'Call requests that waited for the bulk sync at start', [], (s) => one(s.router.heldForSync));
    counter('affinityd_routes_no_endpoint_total', 'Call requests no endpoint could take', [], (s) => one(s.router.noEndpoint));
    counter('affinityd_queries_sent_total', 'QUERYs multicast (kind multicast) and CLAIMs sent to client arbiters (kind claim)', ['kind'], (s) => [
      [{ kind: 'multicast' }, s.router.queriesSent],
      [{ kind: 'claim' }, s.router.claimsSent],
    ]);
    counter('affinityd_query_timeouts_total', 'Misses nobody answered', [], (s) => one(s.router.queryTimeouts));
    counter('affinityd_updates_sent_total', 'UPDATE frames sent for entries this node made', [], (s) => one(s.router.updatesSent));
    counter('affinityd_frames_received_total', 'Datagrams received by the responder, by verdict', ['verdict'], (s) =>
      Object.entries(s.responder.verdicts).map(([verdict, v]): [Labels, number] => [{ verdict }, v]),
    );
    counter('affinityd_queries_answered_total', 'QUERYs answered from the table by the native responder', [], (s) => one(s.responder.queriesAnswered));
    counter('affinityd_queries_unanswered_total', 'QUERYs for clients not in the table', [], (s) => one(s.responder.queriesUnanswered));
    counter('affinityd_updates_applied_total', 'UPDATEs that changed the table', [], (s) => one(s.responder.updatesApplied));
    counter('affinityd_updates_ignored_total', 'UPDATEs older than the entry held (version rule)', [], (s) => one(s.responder.updatesIgnored));
    counter('affinityd_frames_sent_total', 'Frames sent by this node', [], (s) => one(s.responder.sent));
    counter('affinityd_send_errors_total', 'Frames the kernel refused', [], (s) => one(s.responder.sendErrors + s.link.sendErrors));
    counter('affinityd_inbound_queue_full_total', 'Frames for JS dropped because the queue was full', [], (s) => one(s.responder.queueFull));
    counter('affinityd_replies_read_total', 'REPLYs read by the JS thread from the reply socket (0: cluster.replySocket off or refused by the kernel)', [], (s) => one(s.responder.repliesRead));
    counter('affinityd_reply_spins_total', 'Reads of the reply socket right after a QUERY (cluster.replySpinMicros), by outcome: reply (REPLYs came within the window) or none', ['outcome'], (s) => [
      [{ outcome: 'reply' }, s.link.replySpinHits],
      [{ outcome: 'none' }, s.link.replySpins - s.link.replySpinHits],
    ]);
    counter('affinityd_reply_spin_seconds_total', 'Time the JS thread spent in reply spins', [], (s) => one(s.link.replySpinMicrosSpent / 1e6));
    counter('affinityd_table_full_total', 'Entries refused because the table was full', [], (s) => one(s.table.full));
    counter('affinityd_sync_entries_received_total', 'Entries and markers received in SYNC_CHUNKs', [], (s) => one(s.sync.applied.received));
    counter('affinityd_sync_chunks_sent_total', 'SYNC_CHUNKs sent to other nodes', [], (s) => one(s.sync.server.chunksSent));
    counter('affinityd_split_bundles_repaired_total', 'Clients found with a different endpoint elsewhere and repaired by the version rule', [], (s) =>
      one(s.sync.applied.conflictsRepaired),
    );
    counter('affinityd_claims_total', 'Proposals for new entries (agreement), by outcome', ['outcome'], (s) => [
      [{ outcome: 'won' }, s.router.claimsWon],
      [{ outcome: 'lost' }, s.router.claimsLost],
      [{ outcome: 'timeout' }, s.router.agreementTimeouts],
    ]);
    counter('affinityd_claim_retries_total', 'Proposals sent again to an arbiter that had not answered', [], (s) => one(s.router.claimRetries));
    counter('affinityd_arbiter_changes_total', 'Proposals moved to the next arbiter because the first left or stopped being ready', [], (s) => one(s.router.arbiterChanges));
    counter('affinityd_claims_handed_over_total', "Proposals for a client whose arbiter joined within agreement.handoverMs: asked of its earlier arbiter first, that answer carried on", [], (s) => one(s.router.claimsHandedOver));
    counter('affinityd_handover_repairs_total', "Handovers whose last arbiter held another endpoint than the first: that endpoint announced above both versions", [], (s) => one(s.router.handoverRepairs));
    counter('affinityd_claims_settled_total', 'Proposals this node settled as arbiter (for itself or others), by outcome', ['outcome'], (s) => [
      [{ outcome: 'won' }, s.responder.claimsWon],
      [{ outcome: 'lost' }, s.responder.claimsLost],
    ]);
    counter('affinityd_claims_held_for_handover_total', 'Proposals this young arbiter left unanswered in its handover: not marked handover, for a client it held nothing for (their senders ask again)', [], (s) => one(s.responder.claimsHeldForHandover));
    counter('affinityd_claims_not_arbiter_total', "First-entry proposals left unanswered: another arbiter, past its handover, outranks this node for the client (a proposer that has not heard it yet asks again)", [], (s) => one(s.responder.claimsNotArbiter));
    counter('affinityd_live_splits_detected_total', 'Clients found with live links on different endpoints (once per incident)', [], (s) => one(s.links.detected));
    counter('affinityd_split_links_closed_total', 'Stray links of split bundles closed (links.splitRepair close)', [], (s) => one(s.links.closed));
    counter('affinityd_duplicate_node_id_incidents_total', 'Incidents of two processes sending with one node id', ['node'], (s) => [
      [{ node: 'self' }, s.identity.selfIncidents],
      [{ node: 'peer' }, s.identity.peerIncidents],
    ]);
    counter('affinityd_digests_ignored_total', 'Peer digests that came while this node was syncing at start (or had digests off), not compared', [], (s) => one(s.antiEntropy?.digestsIgnored ?? 0));
    counter('affinityd_digest_mismatches_total', 'Peer digests that differed from this node\'s table', [], (s) => one(s.antiEntropy?.digestMismatches ?? 0));
    counter('affinityd_withdrawals_total', 'Withdraw markers sent and applied', ['direction'], (s) => [
      [{ direction: 'sent' }, s.withdrawals.sent],
      [{ direction: 'applied' }, s.withdrawals.applied],
    ]);
    counter('affinityd_calls_total', 'Connections accepted by a front end', ['frontend'], (s) => s.frontends.map((f) => [{ frontend: f.name }, f.accepted]));
    counter('affinityd_calls_connected_total', 'Calls connected to their endpoint', ['frontend'], (s) => s.frontends.map((f) => [{ frontend: f.name }, f.spliced]));
    counter('affinityd_calls_refused_total', 'Calls refused, by reason: bad identity, time-out, no endpoint, endpoint unavailable...', ['frontend', 'reason'], (s) =>
      s.frontends.flatMap((f) => Object.entries(f.refused).map(([reason, v]): [Labels, number] => [{ frontend: f.name, reason }, v])),
    );
    counter('affinityd_endpoint_connect_failures_total', 'Connections an endpoint refused or did not answer', ['frontend'], (s) =>
      s.frontends.map((f) => [{ frontend: f.name }, f.endpointConnectFailures]),
    );
    counter('affinityd_call_octets_total', 'Octets front-end calls carried, by direction (to the endpoint, to the client), counted when a call ends', ['frontend', 'direction'], (s) =>
      s.frontends.flatMap((f): [Labels, number][] => [
        [{ frontend: f.name, direction: 'toEndpoint' }, f.bytesFromClients],
        [{ frontend: f.name, direction: 'toClient' }, f.bytesToClients],
      ]),
    );
    counter('affinityd_snapshots_written_total', 'Table snapshots written', [], (s) => one(s.snapshots.written));
    counter('affinityd_snapshot_errors_total', 'Table snapshots that could not be written', [], (s) => one(s.snapshots.writeErrors));

    // RADIUS API (docs/radius.md): present only while it runs
    const rad = <T>(s: Stats, f: (r: NonNullable<Stats['radius']>) => T[]): T[] => (s.radius ? f(s.radius) : []);
    counter('affinityd_radius_requests_total', 'Requests to the RADIUS API, by kind', ['kind'], (s) =>
      rad(s, (r) => Object.entries(r.requests).map(([kind, v]): [Labels, number] => [{ kind }, v])),
    );
    counter('affinityd_radius_access_answers_total', 'Access decisions by answer: tunnel, no-tunnel, refused, unavailable', ['answer'], (s) =>
      rad(s, (r) => [
        [{ answer: 'tunnel' }, r.answers.tunnel],
        [{ answer: 'no-tunnel' }, r.answers.noTunnel],
        [{ answer: 'refused' }, r.answers.refused],
        [{ answer: 'unavailable' }, r.answers.unavailable],
      ]),
    );
    counter('affinityd_radius_bad_requests_total', 'RADIUS API requests refused as bad input, by reason', ['reason'], (s) =>
      rad(s, (r) => Object.entries(r.badRequests).map(([reason, v]): [Labels, number] => [{ reason }, v])),
    );
    counter('affinityd_radius_unavailable_total', 'Access-Requests answered 503 (FreeRADIUS applies its failure policy), by reason', ['reason'], (s) =>
      rad(s, (r) => Object.entries(r.unavailable).map(([reason, v]): [Labels, number] => [{ reason }, v])),
    );
    counter('affinityd_radius_accounting_total', 'Accounting-Requests by Acct-Status-Type', ['status'], (s) =>
      rad(s, (r) => [
        [{ status: 'start' }, r.accounting.start],
        [{ status: 'stop' }, r.accounting.stop],
        [{ status: 'interim-update' }, r.accounting.interimUpdate],
        [{ status: 'accounting-on' }, r.accounting.accountingOn],
        [{ status: 'accounting-off' }, r.accounting.accountingOff],
        [{ status: 'other' }, r.accounting.other],
      ]),
    );
    counter('affinityd_radius_releases_total', 'Entries withdrawn after the last live session of their client stopped and the grace time passed', [], (s) =>
      rad(s, (r) => [[{}, r.accounting.released]]),
    );
    counter('affinityd_radius_entries_reasserted_total', 'Entries stored again for clients with live sessions here after a withdraw or expiry', [], (s) =>
      rad(s, (r) => [[{}, r.accounting.reasserted]]),
    );
    counter('affinityd_radius_unconfigured_endpoint_total', 'Decisions for an endpoint this node has no tunnel attributes for', [], (s) =>
      rad(s, (r) => [[{}, r.unconfiguredEndpoint]]),
    );
    gauge('affinityd_radius_live_sessions', 'RADIUS sessions live at this node (accounting Start without Stop)', [], (s) => rad(s, (r) => [[{}, r.accounting.liveSessions]]));
    gauge('affinityd_radius_pending_releases', 'Clients whose entry will be released when their grace time ends', [], (s) => rad(s, (r) => [[{}, r.accounting.pendingReleases]]));

    gauge('affinityd_table_entries', 'Entries and withdraw markers in the table', [], (s) => one(s.table.size));
    gauge('affinityd_table_capacity', 'Entries the table can hold', [], (s) => one(s.table.capacity));
    gauge('affinityd_table_memory_bytes', 'Memory of the table', [], (s) => one(s.table.memoryBytes));
    gauge('affinityd_table_huge_page_bytes', 'Of the table memory, the part advised for transparent huge pages (0: small table, or refused)', [], (s) => one(s.table.hugePageBytes));
    gauge('affinityd_peers', 'Other nodes alive now (heard within cluster.peerTimeoutMs, not stopping)', [], (s) => one(s.peers));
    gauge('affinityd_ready', '1 once the bulk sync at start is done or timed out', [], (s) => one(s.sync.state === 'ready' ? 1 : 0));
    gauge('affinityd_live_links', 'Links of clients up now that this node knows of (front ends, RADIUS accounting)', [], (s) => one(s.links.live));
    gauge('affinityd_live_split_links', 'Live links on another endpoint than their client\'s agreed one', [], (s) => one(s.links.strayLinks));
    gauge('affinityd_split_clients', 'Clients with live links on different endpoints now', [], (s) => one(s.links.splitClients));
    gauge('affinityd_calls_active', 'Calls open now', ['frontend'], (s) => s.frontends.map((f) => [{ frontend: f.name }, f.active]));
    gauge('affinityd_endpoint_up', '1 if the endpoint may take new clients', ['endpoint'], (s) => s.endpoints.map((e) => [{ endpoint: e.name }, e.down ? 0 : 1]));
    gauge('affinityd_endpoint_connections', 'Calls open to the endpoint', ['endpoint'], (s) => s.endpoints.map((e) => [{ endpoint: e.name }, e.connections]));

    this.routeDecision = new Histogram({
      name: 'affinityd_route_decision_seconds',
      help: 'Time to route a call request that was not in the local table, by outcome',
      labelNames: ['source'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [r],
    });
    this.callSetup = new Histogram({
      name: 'affinityd_call_setup_seconds',
      help: 'Time from accepting a call to being connected to its endpoint',
      labelNames: ['frontend'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    this.radiusDecision = new Histogram({
      name: 'affinityd_radius_decision_seconds',
      help: 'Time from an Access-Request reaching the RADIUS API to its tunnel attributes',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
  }

  text(): Promise<string> {
    this.cached = undefined;
    return this.registry.metrics();
  }
}
