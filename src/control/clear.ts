// `affinityd clear`: withdraw entries here and on every node, then check with
// the cluster that no node still routes them. The withdraw protocol is
// unchanged (a WITHDRAW multicast once per entry, docs/protocol.md); the
// check uses the ordinary QUERY: a node that holds a live entry answers it,
// a node that applied the marker stays silent (a marker is a miss). So:
//
//   1. withdraw: each entry here becomes a marker, and a WITHDRAW is
//      multicast for it (the report counts what the kernel took);
//   2. confirm: after `query.timeoutMs` (at least WAIT_MS) for the WITHDRAWs
//      to be applied, QUERY the cleared clients (all of them, or a random
//      sample of SAMPLE for --all), each `query.count` (at least QUERIES)
//      times `query.intervalMs` apart, and wait as long again after the last;
//   3. a node that answers with an entry older than the marker missed the
//      WITHDRAW: send it the WITHDRAW again, unicast, and ask again (up to
//      ROUNDS rounds); an entry newer than the marker was made after the
//      clear (the client called again) and is reported, not fought.
//
// What it cannot see: a node that hears neither the QUERYs nor the
// WITHDRAW (cut off, or every datagram lost); a cleared client outside the
// sample. The digests (antiEntropy) repair those later by the version rule.
import { clientKeyBytes, clientKeyFromBytes, formatClientKey, parseClientKey } from '../codec/client-key';
import { encodeWithdraw } from '../codec/cluster-messages';
import { formatEndpoint } from '../codec/endpoint';
import { MessageType } from '../codec/messages';
import type { ClearCluster, NodeAdmin } from '../daemon/node-view';
import type { MaintenanceFrame, ReplyBatch } from '../transport/cluster-link';
import { ControlError } from './commands';

/** Cleared clients asked about after clear --all, at most. */
export const SAMPLE = 256;
/** Ask-and-resend rounds at most. */
export const ROUNDS = 3;
/** Least wait before a round's QUERYs (for the WITHDRAW to land) and for answers after its last one. */
export const WAIT_MS = 250;
/** QUERYs per client and round, at least (more with a larger query.count). */
export const QUERIES = 3;
/** How long clear waits for the site directory's answers to its withdraws. */
export const SITE_WAIT_MS = 10_000;

export interface HeldEntry {
  client: string;
  node: number;
  endpoint: string;
  version: number;
  originNode: number;
}

export interface ClearReport {
  /** Entries this node held and turned into withdraw markers. */
  withdrawn: number;
  /** WITHDRAW frames multicast (the kernel took them). */
  withdrawsSent: number;
  /** Nodes heard from in the last minute when the WITHDRAWs went out. */
  peersHeard: number[];
  /**
   * With sites: the withdraw markers handed to the site directory (Redis),
   * by outcome: stored (the other sites learn the clear from it); superseded
   * (Redis holds something newer: the client called again, at some site);
   * kept (Redis down or slow: journaled here and written when it is back,
   * until then other sites keep routing the client to its old endpoint);
   * failed (refused by the codec: logged); pending (no outcome after SITE_WAIT_MS).
   */
  sites?: { stored: number; superseded: number; kept: number; failed: number; pending: number };
  /** Absent with --no-confirm or when nothing was withdrawn. */
  confirmation?: {
    /** Cleared clients asked about, of how many cleared. */
    asked: number;
    of: number;
    /** QUERY rounds run (a round re-asks only what a node still held). */
    rounds: number;
    /** QUERYs sent. */
    queriesSent: number;
    /** WITHDRAWs sent again, unicast, to nodes that still held an entry. */
    resent: number;
    /** Nodes that answered with an entry older than the marker in the last round: the clear is not confirmed there. */
    stillHeld: HeldEntry[];
    /** Entries newer than the marker: made after the clear (the client called again). */
    madeSince: HeldEntry[];
    /** True when no node answered with a cleared entry in the last round. */
    confirmed: boolean;
  };
}

/** Up to n of the live (not withdrawn) keys of the directory, chosen at random (reservoir sampling). */
function sampleLiveKeys(node: NodeAdmin, n: number): Buffer[] {
  const out: Buffer[] = [];
  let seen = 0;
  let cursor = 0;
  for (;;) {
    const page = node.directory.walk(cursor, 4096);
    for (const e of page.records) {
      if (!e.endpoint) continue;
      seen++;
      if (out.length < n) out.push(e.key);
      else {
        const j = Math.floor(Math.random() * seen);
        if (j < n) out[j] = e.key;
      }
    }
    cursor = page.cursor;
    if (page.done) return out;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let nextQueryId = 0x80000000 + Math.floor(Math.random() * 0x3fffffff);

export async function clearEntries(node: NodeAdmin, req: { client?: string; all?: boolean; confirm?: boolean }): Promise<ClearReport> {
  if (req.all && req.client) throw new ControlError('clear: give a client or all, not both');
  if (!req.all && !req.client) throw new ControlError('clear: give a client (DISCRIMINATOR/USERNAME) or all');
  const cluster = node.clearing;
  const sentBefore = cluster.withdrawals.counters.sent;
  const sitesBefore = cluster.sites && { ...cluster.sites.withdraws };
  const peersHeard = cluster.link.members().map((m) => m.nodeId).filter((id) => id !== 0).sort((a, b) => a - b);
  let withdrawn: number;
  let asked: Buffer[];
  if (req.all) {
    asked = sampleLiveKeys(node, SAMPLE); // before: afterwards they are markers
    withdrawn = node.withdrawAll();
  } else {
    const key = parseClientKey(req.client!);
    withdrawn = node.withdraw(req.client!) ? 1 : 0;
    asked = withdrawn ? [clientKeyBytes(key)] : [];
  }
  const report: ClearReport = { withdrawn, withdrawsSent: cluster.withdrawals.counters.sent - sentBefore, peersHeard };
  const confirming = req.confirm === false || withdrawn === 0 ? undefined : confirm(node, cluster, asked, withdrawn);
  if (cluster.sites && sitesBefore && withdrawn > 0) {
    const pending = await cluster.sites.withdrawsSettled(SITE_WAIT_MS);
    const now = cluster.sites.withdraws;
    report.sites = { stored: now.stored - sitesBefore.stored, superseded: now.superseded - sitesBefore.superseded, kept: now.kept - sitesBefore.kept, failed: now.failed - sitesBefore.failed, pending };
  }
  if (confirming) report.confirmation = await confirming;
  return report;
}

async function confirm(node: NodeAdmin, cluster: ClearCluster, keys: Buffer[], of: number): Promise<NonNullable<ClearReport['confirmation']>> {
  const q = node.config.query;
  const settle = Math.max(q.timeoutMs, WAIT_MS);
  const c = { asked: keys.length, of, rounds: 0, queriesSent: 0, resent: 0, stillHeld: [] as HeldEntry[], madeSince: [] as HeldEntry[], confirmed: false };
  // each client's marker as the clear left it: answers are judged against this, not against what
  // the table holds later (a newer entry stored from an answer must not make the next answer "stale")
  const byKey = new Map<string, { bytes: Buffer; clientKey: ReturnType<typeof clientKeyFromBytes>; version: number; originNode: number }>();
  for (const k of keys) {
    const m = node.directory.peek(k);
    byKey.set(k.toString('latin1'), { bytes: k, clientKey: clientKeyFromBytes(k), version: m?.version ?? 0, originNode: m?.originNode ?? 0 });
  }
  let pending = [...byKey.values()];
  let queryId = 0;
  const answers: { p: (typeof pending)[number]; held: HeldEntry; newer: boolean; from: ReplyBatch['from'] }[] = [];
  const untap = cluster.link.tapReplies((r) => {
    if (r.queryId !== queryId) return false;
    for (const e of r.entries) {
      const p = byKey.get(e.keyBytes.toString('latin1'));
      if (!p) continue;
      const newer = e.version > p.version || (e.version === p.version && e.originNode > p.originNode);
      const held = { client: formatClientKey(p.clientKey), node: r.from.nodeId, endpoint: formatEndpoint(e.endpoint), version: e.version, originNode: e.originNode };
      answers.push({ p, held, newer, from: r.from });
    }
    return false; // the router keeps every REPLY as a fact (version rule): an older entry loses to the marker
  });
  try {
    while (pending.length && c.rounds < ROUNDS) {
      c.rounds++;
      // A peer applies a WITHDRAW in its JavaScript, but answers a QUERY from its
      // I/O thread: give the WITHDRAW (or the one just sent again) time to land first.
      await sleep(settle);
      answers.length = 0;
      queryId = nextQueryId = (nextQueryId % 0xfffffffe) + 1;
      const clients = pending.map((p) => ({ clientKey: p.clientKey, keyBytes: p.bytes }));
      for (let i = 0; i < Math.max(q.count, QUERIES); i++) {
        if (i) await sleep(q.intervalMs);
        cluster.link.query(clients, queryId, 0); // answer_rank 0: every directory holding an entry answers
        c.queriesSent += clients.length;
      }
      await sleep(settle);
      // timers run before I/O in an event-loop turn: after a stall, a REPLY that came in time may still
      // wait behind the timer; let one I/O phase run so that only late answers count as none
      await new Promise((r) => setImmediate(r));
      const stale = new Map<string, (typeof answers)[number]>(); // one per client and node
      for (const a of answers) {
        if (a.newer) {
          if (!c.madeSince.some((x) => x.client === a.held.client && x.node === a.held.node)) c.madeSince.push(a.held);
        } else stale.set(`${a.held.client}|${a.held.node}`, a);
      }
      c.stillHeld = [...stale.values()].map((a) => a.held);
      if (stale.size === 0) break;
      if (c.rounds === ROUNDS) break; // asked for the last time: what still answered is reported
      // the nodes that missed the WITHDRAW get it again, unicast, and are asked again
      const now = Math.floor(Date.now() / 1000);
      const frames = [...stale.values()].flatMap((a): MaintenanceFrame[] => {
        const m = node.directory.peek(a.p.bytes);
        if (!m || m.endpoint) return [];
        const body = encodeWithdraw({ clientKey: a.p.clientKey, version: m.version, originNode: m.originNode, ttlSeconds: Math.max(1, m.expiresSeconds - now) });
        return [{ type: MessageType.Withdraw, body, to: a.from }];
      });
      c.resent += cluster.link.send(frames);
      pending = [...new Set([...stale.values()].map((a) => a.p))];
    }
  } finally {
    untap();
  }
  c.confirmed = c.stillHeld.length === 0;
  return c;
}
