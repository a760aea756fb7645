// `affinityd show|clear|monitor|reload|log-level`: the operator's side of the
// control socket. Text for people, --json for scripts (docs/operations.md
// gives the JSON shapes). Exit statuses as usage.ts EXIT_STATUS says.
import type { ClearReport } from '../control/clear';
import { monitor, request } from '../control/client';
import { DEFAULT_SOCKET, type EntryView, type PeerView } from '../control/protocol';
import type { SplitView } from '../links/split-detector';
import { formatSiteDirectory, type SiteDirectoryView } from '../sites/views';
import { parse, UsageError } from './usage';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

const out = (s: string) => process.stdout.write(s);
const json = (x: unknown) => out(JSON.stringify(x, null, 2) + '\n');
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Exit status of `show entry` when the node holds no entry for the client. */
export const EXIT_NO_ENTRY = 3;
/** Exit status of `clear` when a node still answered with a cleared entry. */
export const EXIT_NOT_CONFIRMED = 4;

const SOCKET_OPTION = { socket: { type: 'string' } } as const;

export async function controlCommand(command: string, rest: string[]): Promise<number> {
  if (command === 'show') return show(rest);
  if (command === 'clear') return clear(rest);
  if (command === 'monitor') return watch(rest);
  if (command === 'reload') {
    const { values } = parse('reload', rest, { ...SOCKET_OPTION, json: { type: 'boolean', default: false } });
    const r = (await request(socketOf(values), { cmd: 'reload' })) as { applied: string[]; needRestart: string[] };
    if (values.json) return json(r), 0;
    out(`reloaded. applied: ${r.applied.join(', ') || 'nothing changed'}\n`);
    if (r.needRestart.length) out(`changed but needs a restart (old values stay): ${r.needRestart.join(', ')}\n`);
    return 0;
  }
  if (command === 'log-level') {
    const { values, positionals } = parse('log-level', rest, SOCKET_OPTION, true);
    if (positionals.length !== 1) throw new UsageError('log-level', 'one LEVEL: fatal, error, warn, info, debug, trace or silent');
    await request(socketOf(values), { cmd: 'set-log-level', level: positionals[0] });
    out(`log level: ${positionals[0]}\n`);
    return 0;
  }
  throw new UsageError(undefined, `unknown control command ${command}`);
}

const socketOf = (values: Record<string, unknown>): string => (values.socket as string | undefined) ?? process.env.AFFINITYD_SOCKET ?? DEFAULT_SOCKET;

async function show(rest: string[]): Promise<number> {
  const { values, positionals } = parse(
    'show',
    rest,
    {
      ...SOCKET_OPTION,
      json: { type: 'boolean', default: false },
      username: { type: 'string' },
      discriminator: { type: 'string' },
      endpoint: { type: 'string' },
      withdrawn: { type: 'boolean', default: false },
      limit: { type: 'string' },
    },
    true,
  );
  const socket = socketOf(values);
  const [what, arg, extra] = positionals;
  const filtersGiven = ['username', 'discriminator', 'endpoint', 'limit'].some((k) => values[k] !== undefined) || values.withdrawn;
  if (what !== 'entries' && filtersGiven) throw new UsageError('show', '--username, --discriminator, --endpoint, --withdrawn and --limit go with show entries');
  switch (what) {
    case 'entries': {
      if (arg) throw new UsageError('show', `show entries takes filters as options, not "${arg}"`);
      const limit = values.limit === undefined ? undefined : Number(values.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new UsageError('show', '--limit: a whole number >= 0');
      const r = (await request(socket, {
        cmd: 'show-entries',
        filter: { username: values.username as string | undefined, discriminator: values.discriminator as string | undefined, endpoint: values.endpoint as string | undefined, withdrawn: values.withdrawn as boolean },
        limit,
      })) as { entries: EntryView[]; matched: number; truncated: boolean };
      if (values.json) return json(r), 0;
      out(table([['CLIENT', 'ENDPOINT', 'VERSION', 'ORIGIN', 'LINKS', 'EXPIRES IN'], ...r.entries.map((e) => [e.client, e.endpoint ?? '(withdrawn)', String(e.version), String(e.originNode), String(e.liveLinks), `${e.expiresInSeconds}s`])]));
      out(`${r.matched} matching${r.truncated ? `, first ${r.entries.length} shown (--limit)` : ''}\n`);
      return 0;
    }
    case 'entry': {
      if (!arg) throw new UsageError('show', 'show entry CLIENT: the client key (DISCRIMINATOR/USERNAME) is required');
      if (extra) throw new UsageError('show', 'show entry takes one CLIENT');
      const e = (await request(socket, { cmd: 'show-entry', client: arg })) as EntryView | null;
      if (values.json) return json(e), e ? 0 : EXIT_NO_ENTRY;
      if (!e) return out(`${arg}: no entry\n`), EXIT_NO_ENTRY;
      out(`${e.client}\n  endpoint   ${e.endpoint ?? '(withdrawn)'}\n  version    ${e.version} (origin node ${e.originNode})\n  live links ${e.liveLinks} (at this node)\n  expires in ${e.expiresInSeconds}s\n`);
      return 0;
    }
    case 'peers': {
      const peers = (await request(socket, { cmd: 'show-peers' })) as PeerView[];
      if (values.json) return json(peers), 0;
      out(table([
        ['NODE', 'ADDRESS', 'STATE', 'LAST HEARD', 'BOOT EPOCH', 'SEQUENCE', 'ACCEPTED', 'AUTH FAILURES', 'SYNC'],
        ...peers.map((p) => [
          String(p.nodeId || '-'), `${p.address}:${p.port}`, p.duplicateNodeId ? `${p.state} DUPLICATE ID` : p.state,
          p.lastHeardMsAgo === null ? 'never' : `${(p.lastHeardMsAgo / 1000).toFixed(1)}s ago`, String(p.bootEpoch), String(p.lastSequence),
          String(p.accepted), String(p.authFailures), p.syncState,
        ]),
      ]));
      // with sites on (docs/sites.md), the site directory after the peers
      const { sites } = (await request(socket, { cmd: 'show-stats' })) as { sites?: SiteDirectoryView };
      if (sites) out('\n' + formatSiteDirectory(sites));
      return 0;
    }
    case 'splits': {
      if (arg) throw new UsageError('show', 'show splits takes no argument');
      const splits = (await request(socket, { cmd: 'show-splits' })) as SplitView[];
      if (values.json) return json(splits), 0;
      if (splits.length === 0) return out('no split bundle: every client\'s live links are on its agreed endpoint\n'), 0;
      for (const s of splits) {
        out(`${s.client}  agreed ${s.agreed}, split for ${((Date.now() - s.sinceMs) / 1000).toFixed(1)}s\n`);
        for (const l of s.links) out(`  ${l.stray ? 'STRAY' : 'ok   '} ${l.id} (${l.via}) -> ${l.endpoint}\n`);
      }
      return 0;
    }
    case 'stats':
      return json(await request(socket, { cmd: 'show-stats' })), 0;
    default:
      throw new UsageError('show', `show what? entries, entry CLIENT, peers, splits or stats${what ? ` (not "${what}")` : ''}`);
  }
}

async function clear(rest: string[]): Promise<number> {
  const { values, positionals } = parse(
    'clear',
    rest,
    { ...SOCKET_OPTION, json: { type: 'boolean', default: false }, all: { type: 'boolean', default: false }, 'no-confirm': { type: 'boolean', default: false } },
    true,
  );
  const client = positionals[0];
  if (!client === !values.all || positionals.length > 1) throw new UsageError('clear', 'give one CLIENT (DISCRIMINATOR/USERNAME) or --all');
  const confirm = !values['no-confirm'];
  const r = (await request(socketOf(values), values.all ? { cmd: 'clear', all: true, confirm } : { cmd: 'clear', client, confirm }, 120_000)) as ClearReport;
  const status = r.confirmation && !r.confirmation.confirmed ? EXIT_NOT_CONFIRMED : 0;
  if (values.json) return json(r), status;
  if (r.withdrawn === 0) {
    out(`nothing to withdraw: this node holds no entry${values.all ? '' : ` for ${client}`}\n`);
    return 0;
  }
  const peers = r.peersHeard.length ? `${plural(r.peersHeard.length, 'peer', 'peers')} heard in the last minute (node ${r.peersHeard.join(', ')})` : 'no peer heard in the last minute';
  out(`withdrawn here: ${plural(r.withdrawn, 'entry', 'entries')}; ${plural(r.withdrawsSent, 'WITHDRAW', 'WITHDRAWs')} multicast to the group; ${peers}\n`);
  if (r.sites) {
    const s = r.sites;
    const parts = [`${s.stored} stored`];
    if (s.superseded) parts.push(`${s.superseded} superseded (a newer entry is there: the client called again)`);
    if (s.kept) parts.push(`${s.kept} kept here (Redis down or slow: written when it is back; until then other sites still route these clients)`);
    if (s.failed) parts.push(`${s.failed} failed (see the node's log)`);
    if (s.pending) parts.push(`${s.pending} still without an answer`);
    out(`site directory (Redis): ${parts.join(', ')}\n`);
  }
  const c = r.confirmation;
  if (!c) {
    out('not confirmed with the cluster (--no-confirm)\n');
    return 0;
  }
  const what = c.asked === c.of ? plural(c.asked, 'cleared client', 'cleared clients') : `${c.asked} of ${c.of} cleared clients (a random sample)`;
  if (c.confirmed) {
    out(`confirmed: asked the cluster about ${what} (${plural(c.queriesSent, 'QUERY', 'QUERYs')}); no node answered with a cleared entry` +
      `${c.resent ? ` after ${plural(c.resent, 'WITHDRAW', 'WITHDRAWs')} sent again to nodes that had missed it` : ''}\n`);
  } else {
    out(`NOT confirmed: after ${plural(c.resent, 'WITHDRAW', 'WITHDRAWs')} sent again, these nodes still answered with a cleared entry:\n`);
    for (const h of c.stillHeld.slice(0, 20)) out(`  node ${h.node}: ${h.client} -> ${h.endpoint} v${h.version}/${h.originNode}\n`);
    if (c.stillHeld.length > 20) out(`  ... ${c.stillHeld.length - 20} more (--json lists them all)\n`);
  }
  if (c.madeSince.length) out(`${plural(c.madeSince.length, 'client has', 'clients have')} a new entry made since the clear (it called again), e.g. ${c.madeSince[0].client} -> ${c.madeSince[0].endpoint} at node ${c.madeSince[0].node}\n`);
  return status;
}

async function watch(rest: string[]): Promise<number> {
  const { values } = parse('monitor', rest, { ...SOCKET_OPTION, json: { type: 'boolean', default: false } });
  const m = await monitor(socketOf(values), (e) => {
    if (values.json) return out(JSON.stringify(e) + '\n');
    if (e.kind === 'dropped') return out(`... ${e.count} changes not shown (reader too slow)\n`);
    out(`${e.at} ${String(e.kind).padEnd(8)} ${e.client} -> ${e.endpoint ?? '(withdrawn)'} v${e.version}/${e.originNode} from node ${e.fromNode}${e.ms !== undefined ? ` (${e.ms} ms)` : ''}\n`);
  });
  process.once('SIGINT', () => m.stop());
  process.once('SIGTERM', () => m.stop());
  if (!values.json) process.stderr.write(`affinityd monitor: watching ${socketOf(values)} (Ctrl-C to stop)\n`);
  const end = await m.ended;
  if (end.by === 'client') return 0;
  process.stderr.write(end.by === 'node' ? `affinityd monitor: the node ended the stream: ${end.reason}\n` : 'affinityd monitor: the connection to the node closed\n');
  return 1;
}
