// --summary over a capture: what the cluster said and what went wrong.
// Pure: fed CapturedMessages (from a CaptureDecoder, which judges replays as
// the nodes do), it reports messages by type and sender, QUERY->REPLY
// latency, queries never answered, retries, frames that failed
// authentication or replay checks, moves (a client's entry replaced by a
// higher version naming another endpoint: a reroute, an ordinary thing) and
// split bundles: one version of a client's entry naming two endpoints, which
// only happens when two nodes made entries without knowing of each other.
import { formatClientKey } from '../codec/client-key';
import { formatEndpoint } from '../codec/endpoint';
import { MessageType } from '../codec/messages';
import type { CapturedMessage } from './decode';

export interface Summary {
  messages: number;
  byType: Record<string, number>;
  bySender: Record<string, number>;
  queries: number;
  retries: number;
  answered: number;
  unanswered: { node: number; key: string; queryId: number }[];
  replyLatencyUs: { p50: number; p90: number; p99: number; max: number } | undefined;
  refused: Record<string, number>;
  replays: { node: number; sequence: string; result: string }[];
  /** A client's entry replaced by a higher version naming another endpoint (UPDATEs, in capture order). */
  moves: { key: string; from: string; to: string; fromVersion: number; toVersion: number; node: number }[];
  /** One version of a client's entry naming different endpoints (made by different nodes unaware of each other). */
  splitBundles: { key: string; version: number; endpoints: { endpoint: string; node: number; version: number }[] }[];
}

export class SummaryBuilder {
  private readonly s: Summary = {
    messages: 0, byType: {}, bySender: {}, queries: 0, retries: 0, answered: 0, unanswered: [],
    replyLatencyUs: undefined, refused: {}, replays: [], moves: [], splitBundles: [],
  };
  /** Per client: the newest UPDATE seen (for moves). */
  private readonly latest = new Map<string, { endpoint: string; version: number }>();
  // a query is identified by who asked (its unicast source) and its query id
  private readonly queries = new Map<string, { node: number; key: string; queryId: number; firstMs: number; answered: boolean }>();
  private readonly latencies: number[] = [];
  private readonly updates = new Map<string, Map<string, { node: number; version: number }>>();

  add(c: CapturedMessage): void {
    this.s.messages++;
    this.s.byType[c.typeName] = (this.s.byType[c.typeName] ?? 0) + 1;
    if (!c.header) {
      this.s.refused[c.auth] = (this.s.refused[c.auth] ?? 0) + 1;
      return;
    }
    const sender = `node ${c.header.senderNode}`;
    this.s.bySender[sender] = (this.s.bySender[sender] ?? 0) + 1;
    if (c.auth === 'replay') {
      this.s.replays.push({ node: c.header.senderNode, sequence: c.header.sequence.toString(), result: c.replay ?? 'replay' });
      return;
    }
    if (c.auth !== 'ok' && c.auth !== 'unchecked') {
      this.s.refused[c.auth] = (this.s.refused[c.auth] ?? 0) + 1;
      return; // a frame a node would refuse says nothing about the cluster
    }
    const m = c.message;
    if (!m) return;
    if (m.type === MessageType.Query) {
      this.s.queries++;
      const id = `${c.src}|${m.query.queryId}`;
      const q = this.queries.get(id);
      if (q) this.s.retries++;
      else this.queries.set(id, { node: c.header.senderNode, key: m.query.keys.map(formatClientKey).join(' '), queryId: m.query.queryId, firstMs: c.timeMs, answered: false });
    } else if (m.type === MessageType.Reply) {
      const q = this.queries.get(`${c.dst}|${m.reply.queryId}`);
      if (q && !q.answered) {
        q.answered = true;
        this.s.answered++;
        this.latencies.push((c.timeMs - q.firstMs) * 1000);
      }
    } else if (m.type === MessageType.Update) {
      for (const e of m.update.entries) {
        const key = formatClientKey(e.clientKey);
        const endpoint = formatEndpoint(e.endpoint);
        // per client and version: the endpoints named (more than one is a split)
        const id = `${key}\n${e.version}`;
        const eps = this.updates.get(id) ?? new Map();
        if (!eps.has(endpoint)) eps.set(endpoint, { node: c.header.senderNode, version: e.version });
        this.updates.set(id, eps);
        const last = this.latest.get(key);
        if (!last || e.version > last.version) {
          if (last && last.endpoint !== endpoint) this.s.moves.push({ key, from: last.endpoint, to: endpoint, fromVersion: last.version, toVersion: e.version, node: c.header.senderNode });
          this.latest.set(key, { endpoint, version: e.version });
        }
      }
    }
  }

  result(): Summary {
    const s = this.s;
    s.unanswered = [...this.queries.values()].filter((q) => !q.answered).map(({ node, key, queryId }) => ({ node, key, queryId }));
    const l = this.latencies.slice().sort((a, b) => a - b);
    const at = (p: number) => l[Math.min(l.length - 1, Math.floor(p * l.length))];
    s.replyLatencyUs = l.length ? { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: l[l.length - 1] } : undefined;
    s.splitBundles = [...this.updates.entries()]
      .filter(([, eps]) => eps.size > 1)
      .map(([id, eps]) => {
        const [key, version] = id.split('\n');
        return { key, version: Number(version), endpoints: [...eps.entries()].map(([endpoint, x]) => ({ endpoint, ...x })) };
      });
    return s;
  }
}

export function formatSummary(s: Summary): string {
  const lines = [`${s.messages} messages`];
  lines.push(`  by type:   ${Object.entries(s.byType).map(([k, v]) => `${k} ${v}`).join(', ') || '-'}`);
  lines.push(`  by sender: ${Object.entries(s.bySender).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'}`);
  lines.push(`QUERYs: ${s.queries} (${s.retries} retries), answered ${s.answered}, never answered ${s.unanswered.length}`);
  for (const q of s.unanswered.slice(0, 20)) lines.push(`  never answered: ${q.key} (node ${q.node}, query ${q.queryId})`);
  if (s.replyLatencyUs) {
    const r = s.replyLatencyUs;
    lines.push(`QUERY->REPLY latency: p50 ${r.p50.toFixed(0)} us, p90 ${r.p90.toFixed(0)} us, p99 ${r.p99.toFixed(0)} us, max ${r.max.toFixed(0)} us`);
  }
  const refused = Object.entries(s.refused);
  lines.push(`failed checks: ${refused.length ? refused.map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`);
  lines.push(`replays: ${s.replays.length ? s.replays.map((r) => `node ${r.node} sequence ${r.sequence} (${r.result})`).join(', ') : 'none'}`);
  lines.push(`moves (a higher version naming another endpoint): ${s.moves.length || 'none'}`);
  for (const m of s.moves.slice(0, 20)) lines.push(`  ${m.key}: ${m.from} (v${m.fromVersion}) -> ${m.to} (v${m.toVersion}, node ${m.node})`);
  lines.push(`split bundles (one version naming two endpoints): ${s.splitBundles.length || 'none'}`);
  for (const b of s.splitBundles) lines.push(`  ${b.key}: ${b.endpoints.map((e) => `${e.endpoint} (node ${e.node}, v${e.version})`).join(' vs ')}`);
  return lines.join('\n');
}
