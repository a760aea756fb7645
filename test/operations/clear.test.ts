// `affinityd clear` says what it did and what it checked (issue 13, item 7:
// it said "withdrawn on every node" and, after clear --all, a peer still
// held an entry). Three nodes on loopback; node 3 is made to miss WITHDRAWs
// (its handler for them is replaced), as a node that lost the datagram would.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import type { ClearReport } from '../../src/control/clear';
import { request } from '../../src/control/client';
import { MessageType } from '../../src/codec/messages';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import type { Peer } from '../../src/transport/cluster-link';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';
import { CLI } from '../helpers/run-node';

const root = join(__dirname, '..', '..');
const cli = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(CLI[0], [...CLI.slice(1), ...args], { encoding: 'utf8', cwd: root }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ENDPOINTS = [
  { name: 'lns-a', address: '198.51.100.1', port: 1701 },
  { name: 'lns-b', address: '198.51.100.2', port: 1701 },
];

type Handler = (body: Buffer, from: Peer, unicast: boolean) => void;
const handlers = (n: AffinityNode) => (n.link as unknown as { handlers: Map<number, Handler> }).handlers;

describe('affinityd clear: withdrawn here, sent, and confirmed with the cluster (issue 13)', function () {
  this.timeout(60_000);
  let dir = '';
  let socket = '';
  const nodes: AffinityNode[] = [];
  let withdrawHandler: Handler;

  before(async function () {
    addonOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'affinityd-clear-'));
    socket = join(dir, 'control.sock');
    const net = testGroup();
    const keyring = testKeyring(0x63);
    for (const id of [1, 2, 3]) {
      nodes.push(
        await createNode(
          {
            node: { id },
            cluster: { ...net, interface: '127.0.0.1' },
            query: { count: 2, intervalMs: 10, timeoutMs: 30 },
            sync: { enabled: false },
            // no digests: they would repair node 3 by themselves, and this tests the clear's own check
            antiEntropy: { enabled: false },
            endpoints: ENDPOINTS,
            ...(id === 1 ? { control: { socket } } : {}),
          },
          { keyring },
        ),
      );
    }
    withdrawHandler = handlers(nodes[2]).get(MessageType.Withdraw)!;
    // every node says something, so that each is a peer heard by the others
    for (const [i, n] of nodes.entries()) await n.route(`2:192.0.2.200/hello-${i}`);
  });
  after(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => handlers(nodes[2]).set(MessageType.Withdraw, withdrawHandler));

  const held = (n: AffinityNode, k: string) => n.directory.lookup(clientKeyBytes(parseClientKey(k)));
  const everywhere = async (k: string) => {
    await nodes[0].route(k);
    for (let i = 0; i < 100 && !nodes.every((n) => held(n, k)); i++) await sleep(20);
    assert.ok(nodes.every((n) => held(n, k)), `${k} is held by every node`);
  };

  it('every node applied the WITHDRAW: confirmed, and the report says what was asked', async () => {
    const k = '2:192.0.2.1/everyone';
    await everywhere(k);
    const r = await cli('clear', k, '--socket', socket);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^withdrawn here: 1 entry; 1 WITHDRAW multicast to the group; 2 peers heard in the last minute \(node 2, 3\)$/m);
    assert.match(r.stdout, /^confirmed: asked the cluster about 1 cleared client \(3 QUERYs\); no node answered with a cleared entry$/m);
    assert.ok(nodes.every((n) => !held(n, k)));
  });

  it('a node that missed the WITHDRAW answers the QUERY, gets the WITHDRAW again, and then the clear is confirmed', async () => {
    const k = '2:192.0.2.2/missed-once';
    await everywhere(k);
    let dropped = 0;
    handlers(nodes[2]).set(MessageType.Withdraw, (body, from, unicast) => {
      if (dropped++ === 0) return; // the multicast one is lost
      withdrawHandler(body, from, unicast);
    });
    const r = (await request(socket, { cmd: 'clear', client: k })) as ClearReport;
    assert.equal(r.withdrawn, 1);
    assert.equal(r.confirmation?.confirmed, true, JSON.stringify(r));
    assert.equal(r.confirmation?.resent, 1, 'sent again to node 3: ' + JSON.stringify(r));
    assert.equal(r.confirmation?.rounds, 2);
    assert.ok(!held(nodes[2], k), 'node 3 applied the WITHDRAW sent again');
  });

  it('a node that keeps missing it: "NOT confirmed", naming the node and the entry, exit status 4', async () => {
    const k = '2:192.0.2.3/missed-always';
    await everywhere(k);
    handlers(nodes[2]).set(MessageType.Withdraw, () => {});
    const r = await cli('clear', k, '--socket', socket);
    assert.equal(r.status, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /^NOT confirmed: after 2 WITHDRAWs sent again, these nodes still answered with a cleared entry:\n {2}node 3: 2:192\.0\.2\.3\/missed-always -> lns-[ab]=198\.51\.100\.\d:1701 v1\/1$/m);
    const j = JSON.parse((await cli('clear', '--all', '--json', '--socket', socket)).stdout) as ClearReport;
    assert.equal(j.confirmation?.confirmed, false, 'clear --all does not confirm while node 3 holds it');
    assert.ok(j.confirmation!.stillHeld.some((h) => h.node === 3));
  });

  it('clear --all: every entry withdrawn, a sample asked about; a client that called again since is reported, not fought', async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `2:192.0.2.${10 + i}/all-${i}`);
    await nodes[0].routeBatch(keys);
    for (let i = 0; i < 100 && !nodes.every((n) => keys.every((k) => held(n, k))); i++) await sleep(20);
    const r = (await request(socket, { cmd: 'clear', all: true })) as ClearReport;
    assert.ok(r.withdrawn >= 40, `${r.withdrawn}`);
    assert.equal(r.withdrawsSent, r.withdrawn);
    assert.equal(r.confirmation?.of, r.withdrawn);
    assert.equal(r.confirmation?.asked, Math.min(256, r.withdrawn));
    assert.equal(r.confirmation?.confirmed, true, JSON.stringify(r.confirmation?.stillHeld));
    for (const k of keys) assert.ok(nodes.every((n) => !held(n, k)), k);
    // nothing left to withdraw here
    const again = await cli('clear', '--all', '--socket', socket);
    assert.equal(again.status, 0);
    assert.match(again.stdout, /^nothing to withdraw: this node holds no entry$/m);
    // the client calls again at node 3 just after the clear: its new entry is above the marker
    const again3 = '2:192.0.2.98/called-again';
    await everywhere(again3);
    handlers(nodes[2]).set(MessageType.Withdraw, (body, from, unicast) => {
      withdrawHandler(body, from, unicast);
      const m = nodes[2].directory.peek(clientKeyBytes(parseClientKey(again3)))!;
      nodes[2].directory.apply(clientKeyBytes(parseClientKey(again3)), { endpoint: ENDPOINTS[0], version: m.version + 1, originNode: 3, ttlSeconds: 600 });
    });
    const made = await cli('clear', again3, '--socket', socket);
    assert.equal(made.status, 0, made.stdout);
    assert.match(made.stdout, /^confirmed: .*no node answered with a cleared entry$/m);
    assert.match(made.stdout, /^1 client has a new entry made since the clear \(it called again\), e\.g\. 2:192\.0\.2\.98\/called-again -> lns-a=198\.51\.100\.1:1701 at node 3$/m);
    handlers(nodes[2]).set(MessageType.Withdraw, withdrawHandler);
    // --no-confirm says that it did not check
    const k = '2:192.0.2.99/unchecked';
    await everywhere(k);
    const nc = await cli('clear', k, '--no-confirm', '--socket', socket);
    assert.equal(nc.status, 0);
    assert.match(nc.stdout, /^not confirmed with the cluster \(--no-confirm\)$/m);
  });
});
