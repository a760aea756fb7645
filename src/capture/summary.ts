// --summary over a capture: what the cluster said and what went wrong.
// Pure: fed CapturedMessages, it reports messages by type and sender,
// QUERY->REPLY latency, queries never answered, retries, frames that failed
// authentication or replay checks, and client keys whose UPDATEs named
// different endpoints (split bundles).
import { formatClientKey } from '../codec/client-key';
import { formatEndpoint } from '../codec/endpoint';
import { MessageType } from '../codec/messages';
import { ReplayWindow } from '../codec/replay-window';
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
  splitBundles: { key: string; endpoints: { endpoint: string; node: number; version: number }[] }[];
}

export class SummaryBuilder {
  private readonly replay = new ReplayWindow();
  private readonly s: Summary = {
    messages: 0, byType: {}, bySender: {}, queries: 0, retries: 0, answered: 0, unanswered: [],
    replyLatencyUs: undefined, refused: {}, replays: [], splitBundles: [],
  };
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
    if (c.auth !== 'ok' && c.auth !== 'unchecked') {
      this.s.refused[c.auth] = (this.s.refused[c.auth] ?? 0) + 1;
      return; // a frame a node would refuse says nothing about the cluster
    }
    const r = this.replay.check(c.header.senderNode, c.header.bootEpoch, c.header.sequence, c.timeMs);
    if (r !== 'new') {
      this.s.replays.push({ node: c.header.senderNode, sequence: c.header.sequence.toString(), result: r });
      return;
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
        const eps = this.updates.get(key) ?? new Map();
        eps.set(formatEndpoint(e.endpoint), { node: c.header.senderNode, version: e.version });
        this.updates.set(key, eps);
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
      .map(([key, eps]) => ({ key, endpoints: [...eps.entries()].map(([endpoint, x]) => ({ endpoint, ...x })) }));
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
  lines.push(`split bundles: ${s.splitBundles.length || 'none'}`);
  for (const b of s.splitBundles) lines.push(`  ${b.key}: ${b.endpoints.map((e) => `${e.endpoint} (node ${e.node}, v${e.version})`).join(' vs ')}`);
  return lines.join('\n');
}
