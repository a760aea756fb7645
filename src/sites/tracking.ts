// Invalidations of the site directory's keys, from Redis's client-side
// caching (RESP3 `CLIENT TRACKING ON BCAST PREFIX p NOLOOP`): the server
// tells every connection of every node about each change to a key under the
// prefix (a write, a delete, an expiry) made by any other connection.
//
// node-redis sends the command a cache provider returns from trackingOn()
// in every connection's handshake, so tracking is back on at every
// reconnection of every cluster master before any command runs. This
// provider caches nothing itself (the site directory keeps decoded records
// in SiteCache); it passes invalidations on, and tells of every moment
// when invalidations may have been missed (a connection error or close, a
// cluster topology change): then nothing cached can be trusted.
import { BasicPooledClientSideCache } from '@redis/client';

export interface TrackingHooks {
  /** Keys changed elsewhere; null: every key (the server flushed its tracking table). */
  invalidated(key: Buffer | null): void;
  /** Invalidations may have been lost since this moment. */
  gap(why: string): void;
}

type HandleCache = BasicPooledClientSideCache['handleCache'];

export class TrackingProvider extends BasicPooledClientSideCache {
  constructor(private readonly prefix: string, private readonly hooks: TrackingHooks) {
    super({ maxEntries: 1, recordStats: false });
  }

  override trackingOn(): string[] {
    return ['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', this.prefix, 'NOLOOP'];
  }

  override invalidate(key: unknown): void {
    if (key === null) return this.hooks.invalidated(null);
    this.hooks.invalidated(Buffer.isBuffer(key) ? key : Buffer.from(String(key)));
  }

  // Nothing is cached here: every cacheable command goes straight to Redis.
  override async handleCache(...[, parser, fn, transformReply, typeMapping]: Parameters<HandleCache>): Promise<unknown> {
    const reply = await fn();
    return transformReply ? transformReply(reply, parser.preserve, typeMapping) : reply;
  }

  override clear(): void {
    this.hooks.gap('tracking reset');
  }

  override onError(): void {
    this.hooks.gap('connection error');
  }

  override onClose(): void {
    this.hooks.gap('connection closed');
  }

  override onPoolClose(): void {
    this.hooks.gap('closed');
  }

  override size(): number {
    return 0;
  }
}
