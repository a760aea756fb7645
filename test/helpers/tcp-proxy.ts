// A TCP proxy on loopback between a node and Redis, to cut one site off
// from Redis while others still reach it (cut), or to make Redis look hung
// to it (hang: connections stay open, nothing is forwarded), then heal.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server?: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  /** Bytes held while hung, per destination socket, delivered in order on heal. */
  private readonly held = new Map<Socket, Buffer[]>();
  private hung = false;
  private isCut = false;
  port = 0;

  private constructor(private readonly target: { host: string; port: number }, private readonly host: string) {}

  static async start(target: { host: string; port: number }, host = '127.0.0.1'): Promise<TcpProxy> {
    const p = new TcpProxy(target, host);
    await p.listen(0);
    return p;
  }

  private listen(port: number): Promise<void> {
    const s = createServer((client) => {
      // accepted while the cut was being made: refused too
      if (this.isCut) return void client.destroy();
      const upstream = createConnection(this.target);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      for (const x of pair) x.on('error', end).on('close', end);
      const forward = (to: Socket) => (d: Buffer) => {
        if (this.hung) this.held.set(to, [...(this.held.get(to) ?? []), d]);
        else to.write(d);
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
    });
    this.server = s;
    return new Promise((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, this.host, () => {
        this.port = (s.address() as { port: number }).port;
        resolve();
      });
    });
  }

  /** Every connection reset, and new ones refused, until heal(). */
  async cut(): Promise<void> {
    this.isCut = true;
    const s = this.server;
    this.server = undefined;
    // stop accepting first, then reset what is open (a client reconnecting at once finds nothing)
    const closed = s ? new Promise<void>((r) => s.close(() => r())) : Promise.resolve();
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
    this.held.clear();
    await closed;
  }

  /** Connections stay up but nothing passes (a hung server), until heal(). */
  hang(): void {
    this.hung = true;
  }

  async heal(): Promise<void> {
    this.hung = false;
    this.isCut = false;
    for (const [to, chunks] of this.held) if (!to.destroyed) for (const c of chunks) to.write(c);
    this.held.clear();
    if (!this.server) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.cut();
  }
}
