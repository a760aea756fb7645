// The management HTTP listener: /metrics (Prometheus text format), /healthz
// (the process and its I/O thread are alive) and /readyz (the node can take
// calls: synced, front ends listening, an endpoint up). Plain node:http: three
// read-only GET routes need no framework.
import { createServer, type Server } from 'node:http';

import type { NodeMetrics } from './metrics';
import type { NodeView } from './node-view';

export class ManagementServer {
  private readonly server: Server;
  readonly counters = { requests: 0, notFound: 0 };

  constructor(private readonly node: NodeView, private readonly metrics: NodeMetrics) {
    this.server = createServer((req, res) => {
      this.counters.requests++;
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/metrics') {
        this.metrics.text().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
        );
        return;
      }
      if (path === '/healthz') {
        // answering at all shows the event loop runs; the responder's stats show its thread is there
        const alive = !this.node.isClosing;
        const body = { status: alive ? 'ok' : 'closing', node: this.node.nodeId, framesReceived: this.node.stats().responder.received };
        res.writeHead(alive ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
        return;
      }
      if (path === '/readyz') {
        const r = this.node.readiness();
        res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r) + '\n');
        return;
      }
      this.counters.notFound++;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /readyz\n');
    });
    this.server.keepAliveTimeout = 5000;
  }

  listen(port: number, address: string): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        const a = this.server.address() as { address: string; port: number };
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  address(): { address: string; port: number } | undefined {
    const a = this.server.address();
    return a && typeof a === 'object' ? { address: a.address, port: a.port } : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
