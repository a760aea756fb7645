// The Directory over the addon's AffinityTable (native/affinity_table.h),
// which the native responder reads (QUERYs) and writes (UPDATEs) on its own
// thread. Endpoints are interned in the table's registry and named by ids
// that are stable for the table's life, so Endpoint objects are cached by id.
import { addressBytes, addressText, type Endpoint } from '../codec/endpoint';
import { type NativeAffinityTable, UpsertResult } from '../native';
import type { ApplyResult, ClaimOutcome, Directory, DirectoryRecord, DirectoryStats, Held, Incoming, StoredEntry } from './directory';
import { type Lifetimes, lifetimeOf } from './lifetimes';

/** endpointId of a withdraw marker (native/affinity_table.h kWithdrawnEndpoint). */
const WITHDRAWN = 0xffffffff;

const RESULTS: Record<number, ApplyResult> = {
  [UpsertResult.Inserted]: 'inserted',
  [UpsertResult.Replaced]: 'replaced',
  [UpsertResult.Ignored]: 'ignored',
  [UpsertResult.Full]: 'full',
};

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class NativeDirectory implements Directory {
  private readonly endpoints: Endpoint[] = [];
  private readonly ids = new Map<string, number>();
  /** Ids by Endpoint object: the objects endpointOf hands out, and the router's proposals, come back many times. */
  private readonly idsByObject = new WeakMap<Endpoint, number>();
  private readonly out = new Uint32Array(5);
  private batch = { endpoints: new Int32Array(256), versions: new Uint32Array(256), origins: new Uint32Array(256) };
  /** Told of every withdraw marker stored here, made here or received (RADIUS accounting keeps the entries of live sessions). */
  onWithdrawn?: (key: Buffer) => void;

  constructor(private readonly table: NativeAffinityTable, readonly lifetimes: Lifetimes) {}

  /** The Endpoint an id of the table's registry names (ids are stable). */
  endpointOf(id: number): Endpoint {
    let e = this.endpoints[id];
    if (!e) {
      const n = this.table.endpoint(id);
      if (!n) throw new Error(`endpoint id ${id} is not in the registry`);
      e = { address: addressText(n.address), port: n.port, name: n.name.toString('utf8') };
      this.endpoints[id] = e;
      this.idsByObject.set(e, id);
    }
    return e;
  }

  /** The registry id of an endpoint, interning it; -1 when the registry is full. */
  endpointId(e: Endpoint): number {
    let id = this.idsByObject.get(e);
    if (id !== undefined) return id;
    const k = `${e.address}|${e.port}|${e.name}`;
    id = this.ids.get(k);
    if (id === undefined) {
      id = this.table.internEndpoint(addressBytes(e.address), e.port, Buffer.from(e.name, 'utf8'));
      if (id < 0) return -1;
      this.ids.set(k, id);
    }
    this.idsByObject.set(e, id);
    return id;
  }

  lookup(key: Buffer): StoredEntry | undefined {
    const o = this.out;
    if (!this.table.lookup(key, o)) return undefined;
    return { endpoint: this.endpointOf(o[0]), version: o[1], originNode: o[2], expiresSeconds: o[4] };
  }

  /** One native batch lookup (prefetching, one N-API call) for all the keys. */
  lookupMany(keys: Buffer, offsets: Uint32Array, hit: (i: number, endpoint: Endpoint, version: number, originNode: number) => void): number {
    const n = offsets.length - 1;
    if (this.batch.endpoints.length < n) this.batch = { endpoints: new Int32Array(n), versions: new Uint32Array(n), origins: new Uint32Array(n) };
    const { endpoints, versions, origins } = this.batch;
    const hits = this.table.lookupBatch(keys, offsets, n, endpoints, versions, origins);
    for (let i = 0; i < n; i++) if (endpoints[i] >= 0) hit(i, this.endpointOf(endpoints[i]), versions[i], origins[i]);
    return hits;
  }

  peek(key: Buffer): Held | undefined {
    const o = this.out;
    if (!this.table.lookup(key, o, undefined, true)) return undefined;
    return { endpoint: o[0] === WITHDRAWN ? undefined : this.endpointOf(o[0]), version: o[1], originNode: o[2], expiresSeconds: o[4] };
  }

  apply(key: Buffer, x: Incoming): ApplyResult {
    const id = x.endpoint ? this.endpointId(x.endpoint) : WITHDRAWN;
    if (id < 0) return 'full';
    const r = this.table.upsert(key, id, x.version, x.originNode, lifetimeOf(this.lifetimes, x));
    if (r === UpsertResult.BadKey) throw new RangeError('client key is not a valid canonical key');
    if (!x.endpoint && (r === UpsertResult.Inserted || r === UpsertResult.Replaced)) this.onWithdrawn?.(key);
    return RESULTS[r];
  }

  claim(key: Buffer, p: Incoming & { readonly endpoint: Endpoint }): ClaimOutcome {
    const id = this.endpointId(p.endpoint);
    const ttl = lifetimeOf(this.lifetimes, p);
    const unstored = (): ClaimOutcome => ({ won: false, entry: { endpoint: p.endpoint, version: p.version, originNode: p.originNode, expiresSeconds: nowSeconds() + ttl }, result: 'full' });
    if (id < 0) return unstored();
    const o = this.out;
    const r = this.table.claim(key, id, p.version, p.originNode, ttl, o);
    if (r === UpsertResult.BadKey) throw new RangeError('client key is not a valid canonical key');
    if (r === UpsertResult.Full) return unstored();
    return { won: r !== UpsertResult.Ignored, entry: { endpoint: this.endpointOf(o[0]), version: o[1], originNode: o[2], expiresSeconds: o[4] }, result: RESULTS[r] };
  }

  walk(cursor: number, max: number, now = nowSeconds()): { cursor: number; done: boolean; records: DirectoryRecord[] } {
    const page = this.table.entries(cursor, max, now);
    const records = page.entries.map(
      (e): DirectoryRecord => ({
        key: e.key,
        keyHash: e.keyHash,
        endpoint: e.endpointId === WITHDRAWN ? undefined : this.endpointOf(e.endpointId),
        version: e.version,
        originNode: e.originNode,
        expiresSeconds: e.expiresSeconds,
        at: e.slot,
      }),
    );
    return { cursor: page.cursor, done: page.done, records };
  }

  /** One walk of the table on a libuv worker thread: the JS thread does not wait for it. */
  digest(buckets: number): Promise<Buffer> {
    return this.table.digestAsync(buckets);
  }

  stats(): DirectoryStats {
    return this.table.stats();
  }

  clear(): number {
    return this.table.clear();
  }
}
