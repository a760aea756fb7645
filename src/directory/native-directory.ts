// LocalDirectory over the addon's AffinityTable. Endpoint ids are stable for
// the table's life, so the Endpoint objects are cached by id.
import { addressBytes, addressText, type Endpoint } from '../codec/endpoint';
import { type NativeAffinityTable, UpsertResult } from '../native';
import type { LocalDirectory, StoredEntry, StoreResult } from './local-directory';

/** endpointId of a withdraw marker (native/affinity_table.h kWithdrawnEndpoint). */
export const WITHDRAWN = 0xffffffff;

const RESULTS: Record<number, StoreResult> = {
  [UpsertResult.Inserted]: 'inserted',
  [UpsertResult.Replaced]: 'replaced',
  [UpsertResult.Ignored]: 'ignored',
  [UpsertResult.Full]: 'full',
};

export class NativeDirectory implements LocalDirectory {
  private readonly endpoints: Endpoint[] = [];
  private readonly ids = new Map<string, number>();
  private readonly out = new Uint32Array(5);
  /** Told of every withdraw marker stored, made here or received (RADIUS accounting keeps the entries of live sessions). */
  onWithdrawn?: (key: Buffer) => void;

  constructor(readonly table: NativeAffinityTable) {}

  endpointOf(id: number): Endpoint {
    let e = this.endpoints[id];
    if (!e) {
      const n = this.table.endpoint(id);
      if (!n) throw new Error(`endpoint id ${id} is not in the registry`);
      e = { address: addressText(n.address), port: n.port, name: n.name.toString('utf8') };
      this.endpoints[id] = e;
    }
    return e;
  }

  endpointId(e: Endpoint): number {
    const k = `${e.address}|${e.port}|${e.name}`;
    let id = this.ids.get(k);
    if (id === undefined) {
      id = this.table.internEndpoint(addressBytes(e.address), e.port, Buffer.from(e.name, 'utf8'));
      if (id < 0) return -1;
      this.ids.set(k, id);
    }
    return id;
  }

  lookup(key: Buffer): StoredEntry | undefined {
    const o = this.out;
    if (!this.table.lookup(key, o)) return undefined;
    return { endpoint: this.endpointOf(o[0]), version: o[1], originNode: o[2], expiresSeconds: o[4] };
  }

  private batch = { endpoints: new Int32Array(256), versions: new Uint32Array(256), origins: new Uint32Array(256) };

  /** One native batch lookup (prefetching, one N-API call) for all the keys. */
  lookupMany(keys: Buffer, offsets: Uint32Array, hit: (i: number, endpoint: Endpoint, version: number, originNode: number) => void): number {
    const n = offsets.length - 1;
    if (this.batch.endpoints.length < n) this.batch = { endpoints: new Int32Array(n), versions: new Uint32Array(n), origins: new Uint32Array(n) };
    const { endpoints, versions, origins } = this.batch;
    const hits = this.table.lookupBatch(keys, offsets, n, endpoints, versions, origins);
    for (let i = 0; i < n; i++) if (endpoints[i] >= 0) hit(i, this.endpointOf(endpoints[i]), versions[i], origins[i]);
    return hits;
  }

  store(key: Buffer, endpoint: Endpoint, version: number, originNode: number, ttlSeconds: number): StoreResult {
    const id = this.endpointId(endpoint);
    if (id < 0) return 'full';
    const r = this.table.upsert(key, id, version, originNode, ttlSeconds);
    if (r === UpsertResult.BadKey) throw new Error('client key is not a valid canonical key');
    return RESULTS[r];
  }

  remove(key: Buffer): boolean {
    return this.table.remove(key);
  }

  withdraw(key: Buffer, version: number, originNode: number, ttlSeconds: number): StoreResult {
    const r = this.table.upsert(key, WITHDRAWN, version, originNode, ttlSeconds);
    if (r === UpsertResult.BadKey) throw new Error('client key is not a valid canonical key');
    if (r === UpsertResult.Inserted || r === UpsertResult.Replaced) this.onWithdrawn?.(key);
    return RESULTS[r];
  }

  withdrawnVersion(key: Buffer): number {
    const o = this.out;
    return this.table.lookup(key, o, undefined, true) && o[0] === WITHDRAWN ? o[1] : 0;
  }

  /** The live entry or withdraw marker (endpoint undefined) for a key. */
  peek(key: Buffer): { endpoint?: Endpoint; version: number; originNode: number; expiresSeconds: number } | undefined {
    const o = this.out;
    if (!this.table.lookup(key, o, undefined, true)) return undefined;
    return { endpoint: o[0] === WITHDRAWN ? undefined : this.endpointOf(o[0]), version: o[1], originNode: o[2], expiresSeconds: o[4] };
  }
}
