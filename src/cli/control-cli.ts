// `affinityd show|clear|monitor|reload|log-level`: the operator's side of the
// control socket. Text for people, --json for scripts.
import { parseArgs } from 'node:util';

import { monitor, request } from '../control/client';
import { DEFAULT_SOCKET, type EntryView, type PeerView } from '../control/protocol';
import type { SplitView } from '../links/split-detector';
import { ConfigError } from '../daemon/config';

export const CONTROL_USAGE = `  show entries [--username U] [--discriminator D] [--endpoint NAME|ADDR:PORT]
               [--withdrawn] [--limit N] [--json]
                           the affinity table (default: first 1000 matches)
  show entry CLIENT [--json]   one client's entry (CLIENT is DISCRIMINATOR/USERNAME)
  show peers [--json]      other nodes: state, last heard, sequence, authentication failures, duplicate id, sync state
  show splits [--json]     clients whose live links are on different endpoints (split bundles)
  show stats               every counter of the node, as JSON
  clear (CLIENT | --all)   delete entries on every node (admin socket)
  monitor [--json]         a live stream of table changes, until interrupted
  reload                   re-read the configuration file (as SIGHUP does; admin socket)
  log-level LEVEL          change the log level now (admin socket)
      control commands take --socket PATH (default: $AFFINITYD_SOCKET or ${DEFAULT_SOCKET})
`;

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n') + '\n';
}

const out = (s: string) => process.stdout.write(s);

export async function controlCommand(command: string, rest: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      socket: { type: 'string' },
      json: { type: 'boolean', default: false },
      username: { type: 'string' },
      discriminator: { type: 'string' },
      endpoint: { type: 'string' },
      withdrawn: { type: 'boolean', default: false },
      limit: { type: 'string' },
      all: { type: 'boolean', default: false },
    },
  });
  const socket = values.socket ?? process.env.AFFINITYD_SOCKET ?? DEFAULT_SOCKET;
  const json = (x: unknown) => out(JSON.stringify(x, null, 2) + '\n');
  if (command === 'show') {
    const [what, arg] = positionals;
    switch (what) {
      case 'entries': {
        const limit = values.limit === undefined ? undefined : Number(values.limit);
        if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new ConfigError(['--limit: a whole number >= 0'], 'show entries');
        const r = (await request(socket, {
          cmd: 'show-entries',
          filter: { username: values.username, discriminator: values.discriminator, endpoint: values.endpoint, withdrawn: values.withdrawn },
          limit,
        })) as { entries: EntryView[]; matched: number; truncated: boolean };
        if (values.json) return json(r), 0;
        out(table([['CLIENT', 'ENDPOINT', 'VERSION', 'ORIGIN', 'LINKS', 'EXPIRES IN'], ...r.entries.map((e) => [e.client, e.endpoint ?? '(withdrawn)', String(e.version), String(e.originNode), String(e.liveLinks), `${e.expiresInSeconds}s`])]));
        out(`${r.matched} matching${r.truncated ? `, first ${r.entries.length} shown (--limit)` : ''}\n`);
        return 0;
      }
      case 'entry': {
        if (!arg) throw new ConfigError(['show entry CLIENT: the client key (DISCRIMINATOR/USERNAME) is required'], 'show entry');
        const e = (await request(socket, { cmd: 'show-entry', client: arg })) as EntryView | null;
        if (values.json) return json(e), 0;
        if (!e) return out(`${arg}: no entry\n`), 1;
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
        return 0;
      }
      case 'splits': {
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
        throw new ConfigError([`show what? entries, entry CLIENT, peers, splits or stats (got "${what ?? ''}")`], 'show');
    }
  }
  if (command === 'clear') {
    const client = positionals[0];
    if (!client === !values.all) throw new ConfigError(['give a CLIENT (DISCRIMINATOR/USERNAME) or --all'], 'clear');
    const r = (await request(socket, values.all ? { cmd: 'clear', all: true } : { cmd: 'clear', client })) as { withdrawn: number };
    if (values.json) return json(r), 0;
    out(`withdrawn on every node: ${r.withdrawn} entr${r.withdrawn === 1 ? 'y' : 'ies'}\n`);
    return 0;
  }
  if (command === 'reload') {
    const r = (await request(socket, { cmd: 'reload' })) as { applied: string[]; needRestart: string[] };
    if (values.json) return json(r), 0;
    out(`reloaded. applied: ${r.applied.join(', ') || 'nothing changed'}\n`);
    if (r.needRestart.length) out(`changed but needs a restart (old values stay): ${r.needRestart.join(', ')}\n`);
    return 0;
  }
  if (command === 'log-level') {
    if (!positionals[0]) throw new ConfigError(['log-level LEVEL: one of fatal, error, warn, info, debug, trace, silent'], 'log-level');
    await request(socket, { cmd: 'set-log-level', level: positionals[0] });
    out(`log level: ${positionals[0]}\n`);
    return 0;
  }
  if (command === 'monitor') {
    const m = await monitor(socket, (e) => {
      if (values.json) return out(JSON.stringify(e) + '\n');
      if (e.kind === 'dropped') return out(`... ${e.count} changes not shown (reader too slow)\n`);
      out(`${e.at} ${String(e.kind).padEnd(8)} ${e.client} -> ${e.endpoint ?? '(withdrawn)'} v${e.version}/${e.originNode} from node ${e.fromNode}${e.ms !== undefined ? ` (${e.ms} ms)` : ''}\n`);
    });
    process.once('SIGINT', () => m.stop());
    await m.ended;
    return 0;
  }
  throw new ConfigError([`unknown control command ${command}`], 'affinityd');
}
