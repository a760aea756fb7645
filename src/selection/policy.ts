// The selection policies by name (selection-policy.ts is the interface).
import { LeastConnections } from './least-connections';
import { Rendezvous } from './rendezvous';
import { RoundRobin } from './round-robin';
import type { PolicyName, SelectionPolicy } from './selection-policy';

export { POLICY_NAMES, type PolicyName, type SelectionPolicy } from './selection-policy';

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
