// When a node can take calls (/readyz): synced, not stopping, every front
// end listening, and an endpoint that can take a client.
export interface Readiness {
  ready: boolean;
  reasons: string[];
  /** What an operator should know that does not make the node unready (sites: Redis down); absent when there is none. */
  warnings?: string[];
}

export interface ReadinessInputs {
  readonly syncState: 'syncing' | 'ready';
  readonly closing: boolean;
  /** Front ends by name, and whether each is listening. */
  readonly frontends: readonly { readonly name: string; readonly listening: boolean }[];
  readonly healthyEndpoints: number;
  /** Another process sends with this node's id. */
  readonly duplicateNodeId?: { address: string; port: number; bootEpoch: number };
  readonly warnings?: readonly string[];
}

export function readiness(i: ReadinessInputs): Readiness {
  const reasons: string[] = [];
  if (i.syncState !== 'ready') reasons.push('bulk sync under way');
  if (i.closing) reasons.push('shutting down');
  for (const f of i.frontends) if (!f.listening) reasons.push(`front end ${f.name} not listening`);
  if (i.healthyEndpoints === 0) reasons.push('no endpoint can take a client');
  if (i.duplicateNodeId) reasons.push(`duplicate node id: another process (${i.duplicateNodeId.address}:${i.duplicateNodeId.port}, boot epoch ${i.duplicateNodeId.bootEpoch}) sends with this node's id`);
  return { ready: reasons.length === 0, reasons, ...(i.warnings?.length ? { warnings: [...i.warnings] } : {}) };
}
