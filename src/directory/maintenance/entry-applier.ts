// Stores entries and withdraw markers that arrive in bulk (SYNC_CHUNK, from a
// bulk sync or a digest repair) by the version rule, and notices conflicts:
// a client whose stored endpoint is replaced by a different one held
// elsewhere was a split bundle, now repaired (claims 1, 5: one endpoint per
// client across the cluster).
import { clientKeyBytes, formatClientKey } from '../../codec/client-key';
import type { Withdraw } from '../../codec/cluster-messages';
import { sameEndpoint } from '../../codec/endpoint';
import type { Entry } from '../../codec/messages';
import type { Logger } from '../../util/logger';
import type { ApplyResult, Directory } from '../directory';

export interface ApplyCounters {
  /** Entries and markers received in chunks. */
  received: number;
  /** Stored: new, or newer than what was held. */
  stored: number;
  /** Not stored: what was held is as new or newer. */
  ignored: number;
  /** A different endpoint for a client than the one held: repaired by the version rule. */
  conflictsRepaired: number;
  /** Could not be stored: the table or the endpoint registry is full. */
  full: number;
}

export class EntryApplier {
  /** Told of every entry or marker that changed the table (monitoring). */
  observer?: (kind: 'sync' | 'repair', entry: Entry | Withdraw, from: number) => void;
  readonly counters: ApplyCounters = { received: 0, stored: 0, ignored: 0, conflictsRepaired: 0, full: 0 };

  constructor(
    private readonly directory: Directory,
    private readonly log: Logger,
  ) {}

  apply(entries: readonly Entry[], withdrawals: readonly Withdraw[], from: number, why: 'sync' | 'repair'): void {
    for (const e of entries) {
      this.counters.received++;
      const key = clientKeyBytes(e.clientKey);
      const before = this.directory.peek(key);
      const r = this.directory.apply(key, e);
      this.count(r);
      if (this.observer && (r === 'replaced' || r === 'inserted')) this.observer(why, e, from);
      if (r === 'replaced' && before?.endpoint && !sameEndpoint(before.endpoint, e.endpoint)) {
        this.counters.conflictsRepaired++;
        this.log.warn(
          {
            client: formatClientKey(e.clientKey), why, fromNode: from,
            was: `${before.endpoint.name} v${before.version}/${before.originNode}`,
            now: `${e.endpoint.name} v${e.version}/${e.originNode}`,
          },
          'split bundle repaired: the newer entry wins',
        );
      }
    }
    for (const w of withdrawals) {
      this.counters.received++;
      const key = clientKeyBytes(w.clientKey);
      const r = this.directory.apply(key, w);
      this.count(r);
      if (this.observer && (r === 'replaced' || r === 'inserted')) this.observer(why, w, from);
    }
  }

  private count(r: ApplyResult): void {
    if (r === 'ignored') this.counters.ignored++;
    else if (r === 'full') this.counters.full++;
    else this.counters.stored++;
  }
}
