// What `affinityd show peers` says of each other node: what the responder
// heard from it, how this node's sync with it stands, and the configured
// peers never heard from.
import type { DirectoryMaintenance } from '../directory/maintenance/maintenance';
import type { PeerInfo } from '../native';
import type { PeerState } from './node-view';

const STATES = ['starting', 'ready', 'stopping'];

export function peerStates(heard: readonly PeerInfo[], maintenance: DirectoryMaintenance, configured: readonly { address: string; port: number }[], peerTimeoutMs: number): PeerState[] {
  const now = Date.now();
  const out: PeerState[] = heard.map(({ state, duplicate, duplicateIncidents, ...p }) => ({
    ...p,
    // what the node says of itself (HELLO), unless it has not been heard for the peer time-out
    state: now - p.lastHeardMs > peerTimeoutMs ? 'gone' : (STATES[state] ?? 'unknown'),
    duplicateNodeId: duplicate,
    duplicateIncidents,
    syncState: maintenance.peerSyncState(p.nodeId),
    ...(maintenance.syncSource === p.nodeId ? { bulkSyncSource: true } : {}),
  }));
  for (const s of configured) {
    if (!out.some((v) => v.address === s.address && v.port === s.port)) {
      out.push({
        nodeId: 0, address: s.address, port: s.port, lastHeardMs: 0, bootEpoch: 0, lastSequence: 0, accepted: 0, authFailures: 0,
        state: 'unknown', duplicateNodeId: false, duplicateIncidents: 0, syncState: 'configured-only',
      });
    }
  }
  return out.sort((a, b) => a.nodeId - b.nodeId);
}
