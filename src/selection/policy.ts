// Endpoint selection: a small pure interface behind a factory. Given a
// client key and the healthy endpoints, say where a new client goes.
import { type EndpointState } from './endpoint-set';
import { LeastConnections } from './least-connections';
import { Rendezvous } from './rendezvous';
import { RoundRobin } from './round-robin';

export interface SelectionPolicy {
  readonly name: PolicyName;
  /** undefined when there is no candidate. */
  select(clientKey: Buffer, candidates: readonly EndpointState[]): EndpointState | undefined;
}

export type PolicyName = 'rendezvous' | 'least-connections' | 'round-robin';
export const POLICY_NAMES: readonly PolicyName[] = ['rendezvous', 'least-connections', 'round-robin'];

export function createPolicy(name: PolicyName): SelectionPolicy {
  switch (name) {
    case 'rendezvous':
      return new Rendezvous();
    case 'least-connections':
      return new LeastConnections();
    case 'round-robin':
      return new RoundRobin();
  }
}
