// What each control command does to a node. The server (server.ts) only
// frames and checks levels; this file is the meaning.
import { clientKeyBytes, clientKeyFromBytes, formatClientKey, formatDiscriminator, parseClientKey, parseDiscriminator } from '../codec/client-key';
import { type Endpoint, formatEndpoint } from '../codec/endpoint';
import type { NodeAdmin, NodeView } from '../daemon/node-view';
import type { EntryFilter, EntryView, PeerView } from './protocol';

export class ControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlError';
  }
}

function entryView(client: string, ep: Endpoint | undefined, version: number, originNode: number, expires: number, now: number, liveLinks: number): EntryView {
  return {
    client,
    endpoint: ep ? formatEndpoint(ep) : null,
    endpointName: ep ? ep.name : null,
    version,
    originNode,
    expiresInSeconds: Math.max(0, expires - now),
    liveLinks,
  };
}

export function showEntries(node: NodeView, filter: EntryFilter = {}, limit = 1000): { entries: EntryView[]; matched: number; truncated: boolean } {
  const disc = filter.discriminator !== undefined ? formatDiscriminator(parseDiscriminator(filter.discriminator)) : undefined;
  const now = Math.floor(Date.now() / 1000);
  const out: EntryView[] = [];
  let matched = 0;
  let cursor = 0;
  for (;;) {
    const page = node.directory.walk(cursor, 4096, now);
    for (const e of page.records) {
      if (!e.endpoint && !filter.withdrawn) continue;
      const key = clientKeyFromBytes(e.key);
      if (filter.username !== undefined && key.username !== filter.username) continue;
      if (disc !== undefined && formatDiscriminator(key.discriminator) !== disc) continue;
      const ep = e.endpoint;
      if (filter.endpoint !== undefined) {
        if (!ep) continue;
        if (ep.name !== filter.endpoint && `${ep.address}:${ep.port}` !== filter.endpoint && `[${ep.address}]:${ep.port}` !== filter.endpoint) continue;
      }
      matched++;
      if (out.length < limit) out.push(entryView(formatClientKey(key), ep, e.version, e.originNode, e.expiresSeconds, now, node.links.countFor(e.key)));
    }
    cursor = page.cursor;
    if (page.done) break;
  }
  return { entries: out, matched, truncated: matched > out.length };
}

export function showEntry(node: NodeView, client: string): EntryView | null {
  const key = parseClientKey(client);
  const keyBytes = clientKeyBytes(key);
  const held = node.directory.peek(keyBytes);
  if (!held) return null;
  return entryView(formatClientKey(key), held.endpoint, held.version, held.originNode, held.expiresSeconds, Math.floor(Date.now() / 1000), node.links.countFor(keyBytes));
}

export function showPeers(node: NodeView): PeerView[] {
  const now = Date.now();
  return node.peers().map(({ lastHeardMs, ...p }) => ({ ...p, lastHeardMsAgo: lastHeardMs ? now - lastHeardMs : null }));
}
