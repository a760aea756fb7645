// Joins a client connection to its endpoint: both directions piped with
// backpressure (pipe pauses the reader while the writer's buffer is full),
// half-close carried across (a FIN from one side ends the other's writing
// side only), and an idle time-out. Resolves when both sockets are closed.
import type { Socket } from 'node:net';

export interface SpliceResult {
  bytesFromClient: number;
  bytesToClient: number;
  reason: 'closed' | 'idleTimeout' | 'error';
}

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
    for (const s of [client, upstream]) {
      s.setTimeout(idleTimeoutMs, () => fail('idleTimeout'));
      s.on('error', () => fail('error'));
      s.once('close', finish);
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
