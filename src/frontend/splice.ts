// Joins a client connection to its endpoint: both directions piped with
// backpressure (pipe pauses the reader while the writer's buffer is full),
// half-close carried across (a FIN from one side ends the other's writing
// side only), and an idle time-out. When one side closes for good (both
// directions done, reset, or destroyed), the other is ended gracefully, and
// destroyed if it has not closed LINGER_MS later. Resolves when both are closed.
import type { Socket } from 'node:net';

export interface SpliceResult {
  bytesFromClient: number;
  bytesToClient: number;
  reason: 'closed' | 'idleTimeout' | 'error';
}

const LINGER_MS = 5000;

export function splice(client: Socket, upstream: Socket, idleTimeoutMs: number): Promise<SpliceResult> {
  return new Promise((resolve) => {
    let reason: SpliceResult['reason'] = 'closed';
    let open = 2;
    const finish = () => {
      if (--open > 0) return;
      resolve({ bytesFromClient: upstream.bytesWritten, bytesToClient: client.bytesWritten, reason });
    };
    const fail = (why: SpliceResult['reason']) => {
      if (reason === 'closed') reason = why;
      client.destroy();
      upstream.destroy();
    };
    for (const [s, other] of [[client, upstream], [upstream, client]]) {
      s.setTimeout(idleTimeoutMs, () => fail('idleTimeout'));
      s.on('error', () => fail('error'));
      s.once('close', () => {
        if (!other.destroyed) {
          other.end();
          setTimeout(() => other.destroy(), LINGER_MS).unref();
        }
        finish();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
