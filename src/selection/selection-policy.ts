// Endpoint selection: a small pure interface. Given a client key and the
// healthy endpoints, say where a new client goes. The policies implement it;
// policy.ts is the factory that names them.
import type { EndpointState } from './endpoint-set';

export type PolicyName = 'rendezvous' | 'least-connections' | 'round-robin';
export const POLICY_NAMES: readonly PolicyName[] = ['rendezvous', 'least-connections', 'round-robin'];

export interface SelectionPolicy {
  readonly name: PolicyName;
  /** undefined when there is no candidate. */
  select(clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined;
}
