// `affinityd demo`: the main job on an embedded default. Three nodes on
// loopback multicast, three local endpoints, and clients that each open a
// bundle of links through different nodes at about the same moment. Prints
// where every bundle landed; exit status 0 only if no bundle split.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';

import { formatClientKey, parseClientKey } from '../codec/client-key';
import { type ConfigInput } from '../daemon/config';
import { type AffinityNode, createNode } from '../daemon/create-node';
import { placeCall, readLine } from '../frontend/call-client';
import { CallStatus } from '../frontend/preamble';

export interface DemoOptions {
  clients: number;
  links: number;
  nodes: number;
  /** Milliseconds between the links of one bundle (0: all at once). */
  linkGapMs: number;
  policy: 'rendezvous' | 'least-connections' | 'round-robin';
  out: (line: string) => void;
}

/** An endpoint that greets every connection with its name. */
function startEndpoint(name: string): Promise<{ server: Server; port: number }> {
  return new Promise((resolve) => {
    const server = createServer((s) => {
      s.on('error', () => s.destroy());
      s.end(`endpoint ${name}\n`);
    });
    server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port }));
  });
}

/** One link of a bundle: call through a node's front end, read what the endpoint says. */
async function link(port: number, key: string): Promise<string> {
  const call = await placeCall('127.0.0.1', port, key);
  try {
    if (call.response.status !== CallStatus.Accepted) throw new Error(`call rejected: ${call.response.reason ?? call.response.status}`);
    const m = /^endpoint (\S+)/.exec(await readLine(call));
    if (!m) throw new Error('no greeting from the endpoint');
    return m[1];
  } finally {
    call.socket.destroy();
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const out = o.out;
  const keyring = { keys: [{ id: 1, secret: randomBytes(32) }], sendKeyId: 1 };
  const endpoints = await Promise.all(['lns-a', 'lns-b', 'lns-c'].map(startEndpoint));
  const group = `239.255.77.${10 + Math.floor(Math.random() * 200)}`;
  const port = 20000 + Math.floor(Math.random() * 20000);
  const nodes: AffinityNode[] = [];
  try {
    for (let i = 1; i <= o.nodes; i++) {
      const config: ConfigInput = {
        node: { id: i },
        cluster: { group, port, interface: '127.0.0.1' },
        endpoints: endpoints.map((e, j) => ({ name: ['lns-a', 'lns-b', 'lns-c'][j], address: '127.0.0.1', port: e.port })),
        frontends: [{ listen: { address: '127.0.0.1', port: 0 }, identity: 'preamble' }],
        selection: { policy: o.policy },
      };
      nodes.push(await createNode(config, { keyring }));
    }
    // each node first asks the others for their table (bulk sync) and holds calls until then
    const synced = await Promise.all(nodes.map((n) => n.ready));
    // a cluster that has just started settles first calls through an arbiter,
    // a node ready for agreement.arbiterDelayMs (1 s): wait for them, as an
    // operator's cluster has long been by the time its clients call
    const t0 = Date.now();
    while (!nodes.every((n) => n.link.members().filter((p) => p.arbiter).length >= o.nodes - 1) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    const fronts = nodes.map((n) => n.frontends[0].address()!.port);
    out(`affinityd demo: ${o.nodes} nodes on ${group}:${port} (loopback multicast), front ends on 127.0.0.1:${fronts.join(', ')}`);
    out(`endpoints: ${endpoints.map((e, j) => `${['lns-a', 'lns-b', 'lns-c'][j]}=127.0.0.1:${e.port}`).join(', ')}; selection: ${o.policy}`);
    out(`ready after the bulk sync at start: ${synced.map((r, i) => `node ${i + 1} ${r?.end ?? 'ready'}${r?.sourceNode ? ` (from node ${r.sourceNode})` : ''}`).join(', ')}`);
    out(`every node an arbiter for first calls after ${Date.now() - t0} ms (agreement.arbiterDelayMs 1000)`);
    out(`${o.clients} clients, each a bundle of ${o.links} links arriving at different nodes ${o.linkGapMs} ms apart\n`);

    const rows: { key: string; landed: string[] }[] = [];
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        const key = formatClientKey(parseClientKey(`2:192.0.2.${(c % 250) + 1}/subscriber-${c}@demo.example`));
        await new Promise((r) => setTimeout(r, c * 3));
        const landed = await Promise.all(
          Array.from({ length: o.links }, (_, l) =>
            new Promise((r) => setTimeout(r, l * o.linkGapMs)).then(() => link(fronts[(c + l) % o.nodes], key).then((ep) => `node ${((c + l) % o.nodes) + 1} -> ${ep}`)),
          ),
        );
        rows.push({ key, landed });
      }),
    );
    rows.sort((a, b) => a.key.localeCompare(b.key, 'en', { numeric: true }));
    let split = 0;
    const w = Math.max(...rows.map((r) => r.key.length));
    for (const r of rows) {
      const eps = new Set(r.landed.map((x) => x.split('-> ')[1]));
      if (eps.size > 1) split++;
      out(`${r.key.padEnd(w)}  ${r.landed.join('   ')}   ${eps.size > 1 ? 'SPLIT' : 'whole'}`);
    }
    const st = nodes.map((n) => n.stats().router);
    const sum = (k: keyof (typeof st)[0]) => st.reduce((a, s) => a + (s[k] as number), 0);
    out(
      `\n${rows.length} bundles, ${rows.length * o.links} links: ${split} split. Decisions: ${sum('localHits')} local hits, ${sum('remoteHits') + sum('lateUpdateHits')} answered by the cluster, ` +
        `${sum('directHits')} by direct query, ${sum('selected')} selected locally, ${sum('coalesced')} coalesced; ${sum('queriesSent')} QUERYs, ${sum('updatesSent')} UPDATEs.`,
    );
    return split === 0 ? 0 : 1;
  } finally {
    await Promise.all(nodes.map((n) => n.close()));
    for (const e of endpoints) e.server.close();
  }
}
