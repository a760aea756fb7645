// What each control command does to a node. The server (server.ts) only
// frames and checks levels; this file is the meaning.
import { clientKeyBytes, clientKeyFromBytes, formatClientKey, formatDiscriminator, parseClientKey, parseDiscriminator } from '../codec/client-key';
import { type Endpoint, formatEndpoint } from '../codec/endpoint';
import { WITHDRAWN } from '../directory/native-directory';
import type { AffinityNode } from '../daemon/node';
import type { EntryFilter, EntryView, PeerView } from './protocol';

export class ControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlError';
  }
}

function entryView(client: string, ep: Endpoint | undefined, version: number, originNode: number, expires: number, now: number): EntryView {
  return {
    client,
    endpoint: ep ? formatEndpoint(ep) : null,
    endpointName: ep ? ep.name : null,
    version,
    originNode,
    expiresInSeconds: Math.max(0, expires - now),
  };
}

export function showEntries(node: AffinityNode, filter: EntryFilter = {}, limit = 1000): { entries: EntryView[]; matched: number; truncated: boolean } {
  const disc = filter.discriminator !== undefined ? formatDiscriminator(parseDiscriminator(filter.discriminator)) : undefined;
  const now = Math.floor(Date.now() / 1000);
  const out: EntryView[] = [];
  let matched = 0;
  let cursor = 0;
  for (;;) {
    const page = node.table.entries(cursor, 4096, now);
    for (const e of page.entries) {
      if (e.endpointId === WITHDRAWN && !filter.withdrawn) continue;
      const key = clientKeyFromBytes(e.key);
      if (filter.username !== undefined && key.username !== filter.username) continue;
      if (disc !== undefined && formatDiscriminator(key.discriminator) !== disc) continue;
      const ep = e.endpointId === WITHDRAWN ? undefined : node.directory.endpointOf(e.endpointId);
      if (filter.endpoint !== undefined) {
        if (!ep) continue;
        if (ep.name !== filter.endpoint && `${ep.address}:${ep.port}` !== filter.endpoint && `[${ep.address}]:${ep.port}` !== filter.endpoint) continue;
      }
      matched++;
      if (out.length < limit) out.push(entryView(formatClientKey(key), ep, e.version, e.originNode, e.expiresSeconds, now));
    }
    cursor = page.cursor;
    if (page.done) break;
  }
  return { entries: out, matched, truncated: matched > out.length };
}

export function showEntry(node: AffinityNode, client: string): EntryView | null {
  const key = parseClientKey(client);
  const held = node.directory.peek(clientKeyBytes(key));
  if (!held) return null;
  return entryView(formatClientKey(key), held.endpoint, held.version, held.originNode, held.expiresSeconds, Math.floor(Date.now() / 1000));
}

export function showPeers(node: AffinityNode): PeerView[] {
  const now = Date.now();
  const heard = node.responder.peers();
  const syncSource = node.bulkSync?.state === 'syncing' ? undefined : node.bulkSync?.outcome?.sourceNode;
  const views: PeerView[] = heard.map((p) => {
    const d = node.antiEntropy?.peerDigests.get(p.nodeId);
    let syncState = 'unknown';
    if (node.sessions.pullingFrom(p.nodeId)) syncState = node.syncState === 'syncing' ? 'syncing-from' : 'repairing';
    else if (d) syncState = d.matched ? 'in-sync' : 'differs';
    return {
      nodeId: p.nodeId, address: p.address, port: p.port, lastHeardMsAgo: now - p.lastHeardMs, bootEpoch: p.bootEpoch,
      lastSequence: p.lastSequence, accepted: p.accepted, authFailures: p.authFailures, syncState,
      ...(syncSource === p.nodeId ? { bulkSyncSource: true } : {}),
    };
  });
  for (const s of node.config.cluster.peers) {
    if (!views.some((v) => v.address === s.address && v.port === s.port)) {
      views.push({ nodeId: 0, address: s.address, port: s.port, lastHeardMsAgo: null, bootEpoch: 0, lastSequence: 0, accepted: 0, authFailures: 0, syncState: 'configured-only' });
    }
  }
  return views.sort((a, b) => a.nodeId - b.nodeId);
}
