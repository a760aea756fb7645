// The price of agreement (issue 11): a miss nobody can answer, with
// agreement (the CLAIM round trip to the client's arbiter) and without it
// (each node decides alone), in the same run, three nodes on loopback with
// the LAN defaults for QUERYs. Misses are measured one at a time, in turns,
// so both see the same machine; half of the clients have a remote arbiter,
// a third of them on average this node. Also, for what it buys: first calls
// of one client at the three nodes at once, round-robin, split bundles with
// and without agreement.
// Usage: tsx bench/agreement.ts [misses]
import { parseClientKey } from '../src/codec/client-key';
import { type AffinityNode, createNode } from '../src/daemon/create-node';
import { fmt, writeResult } from './lib';

const misses = Number(process.argv[2] ?? 400);
const keyring = { keys: [{ id: 1, secret: Buffer.alloc(32, 0x42) }], sendKeyId: 1 };
const endpoints = ['198.51.100.10', '198.51.100.11', '198.51.100.12'].map((address, i) => ({ name: `lns-${i}`, address, port: 1701 }));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function cluster(agreement: boolean, policy: 'rendezvous' | 'round-robin', port: number): Promise<AffinityNode[]> {
  const nodes: AffinityNode[] = [];
  for (let id = 1; id <= 3; id++) {
    nodes.push(
      await createNode(
        {
          node: { id },
          cluster: { group: '239.255.93.1', port, interface: '127.0.0.1' },
          endpoints,
          selection: { policy },
          agreement: { enabled: agreement },
          sync: { enabled: false },
          antiEntropy: { enabled: false },
        },
        { keyring },
      ),
    );
  }
  // HELLOs: every node counts the others as arbiters (agreement.arbiterDelayMs),
  // and every handover is over (agreement.handoverMs): the price measured is
  // a running cluster's, not one that has just started
  await new Promise((r) => setTimeout(r, 1500 + 2000));
  return nodes;
}

async function main(): Promise<void> {
  const base = 33000 + Math.floor(Math.random() * 1000);
  const on = await cluster(true, 'rendezvous', base);
  const off = await cluster(false, 'rendezvous', base + 1);
  const configured = 2 * 15 + 30; // the defaults: 3 QUERYs 15 ms apart, 30 ms after the last
  const withAg: number[] = [];
  const without: number[] = [];
  try {
    for (let i = 0; i < misses; i++) {
      for (const [nodes, out, tag] of [[on, withAg, 'on'], [off, without, 'off']] as const) {
        const k = parseClientKey(`0/price-${tag}-${i}`);
        const t0 = process.hrtime.bigint();
        const r = await nodes[i % 3].route(k);
        out.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.source !== 'selected' && r.source !== 'direct') throw new Error(`expected a miss, got ${r.source}`);
      }
    }
  } finally {
    await Promise.all([...on, ...off].map((n) => n.close()));
  }
  // what it buys: concurrent first calls, round-robin
  const splitOf = async (agreement: boolean, port: number) => {
    const nodes = await cluster(agreement, 'round-robin', port);
    let split = 0;
    try {
      for (let i = 0; i < 300; i++) {
        const k = parseClientKey(`0/race-${agreement}-${i}`);
        const r = await Promise.all(nodes.map((n) => n.route(k)));
        if (new Set(r.map((x) => x.endpoint.name)).size > 1) split++;
      }
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
    return split;
  };
  const splitWith = await splitOf(true, base + 2);
  const splitWithout = await splitOf(false, base + 3);
  const result = {
    misses,
    configuredWaitsMs: configured,
    missWithAgreementMs: { p50: pct(withAg, 0.5), p99: pct(withAg, 0.99) },
    missWithoutAgreementMs: { p50: pct(without, 0.5), p99: pct(without, 0.99) },
    agreementCostMs: { p50: pct(withAg, 0.5) - pct(without, 0.5), p99: pct(withAg, 0.99) - pct(without, 0.99) },
    concurrentFirstCallsRoundRobin: { clients: 300, splitWithAgreement: splitWith, splitWithoutAgreement: splitWithout },
  };
  const f = (x: number) => x.toFixed(2);
  console.log(`agreement, ${fmt(misses)} misses each way, three nodes on loopback, LAN defaults (${configured} ms of configured waits):`);
  console.log(`  with agreement: p50 ${f(result.missWithAgreementMs.p50)} ms, p99 ${f(result.missWithAgreementMs.p99)} ms; without: p50 ${f(result.missWithoutAgreementMs.p50)} ms, p99 ${f(result.missWithoutAgreementMs.p99)} ms`);
  console.log(`  agreement costs p50 ${f(result.agreementCostMs.p50)} ms, p99 ${f(result.agreementCostMs.p99)} ms`);
  console.log(`  300 first calls at three nodes at once, round-robin: ${splitWith} split with agreement, ${splitWithout} without`);
  writeResult('agreement', result);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
