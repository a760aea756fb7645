// This node's own records that Redis has not confirmed: decisions and
// writes made while Redis was down, slow or failing (site-local). When
// Redis is back they are written back (reconcile): a claim by first writer
// wins (a decision made without Redis was never first: a record another site
// put there meanwhile is the client's), a move or withdraw by the version
// rule. One record per client, the latest; bounded, and what does not fit is
// counted (the node then reconciles its whole table, docs/sites.md).
import type { ClientKey } from '../codec/client-key';
import type { SiteRecord } from './site-record';

export type JournalMode = 'claim' | 'store';

export interface JournalItem {
  readonly key: string;
  readonly clientKey: ClientKey;
  readonly record: SiteRecord;
  readonly mode: JournalMode;
  /** Being written back now: a late answer leaves it to the reconciliation. */
  reconciling: boolean;
}

export class Journal {
  private readonly items = new Map<string, JournalItem>();

  constructor(private readonly capacity: number) {}

  /** false: the journal is full and the record was not kept. */
  add(key: string, clientKey: ClientKey, record: SiteRecord, mode: JournalMode): boolean {
    const old = this.items.get(key);
    if (!old && this.items.size >= this.capacity) return false;
    // a claim followed by a move of the same client: the move is the latest word
    this.items.set(key, { key, clientKey, record, mode: old && old.mode === 'store' ? 'store' : mode, reconciling: false });
    return true;
  }

  /** The item for a key if it still holds exactly this record and is not being written back. */
  pending(key: string, record: SiteRecord): JournalItem | undefined {
    const it = this.items.get(key);
    return it && it.record === record && !it.reconciling ? it : undefined;
  }

  /** Removes the key's item if it still holds this record. */
  remove(key: string, record: SiteRecord): void {
    if (this.items.get(key)?.record === record) this.items.delete(key);
  }

  /** Every item not being written back, marked as being written back now. */
  takeForReconcile(): JournalItem[] {
    const out: JournalItem[] = [];
    for (const it of this.items.values()) {
      if (it.reconciling) continue;
      it.reconciling = true;
      out.push(it);
    }
    return out;
  }

  /** A write-back that failed: the item waits for the next one. */
  release(it: JournalItem): void {
    it.reconciling = false;
  }

  /** Items waiting and not being written back. */
  get waiting(): number {
    let n = 0;
    for (const it of this.items.values()) if (!it.reconciling) n++;
    return n;
  }

  get size(): number {
    return this.items.size;
  }
}
