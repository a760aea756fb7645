import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';

import { createNode } from '../../src/daemon/create-node';
import { EndpointSet } from '../../src/selection/endpoint-set';
import { HealthChecker } from '../../src/selection/health-checker';
import { addonOrSkip } from '../helpers/addon';
import { sleep, testGroup, testKeyring, until } from '../helpers/loopback';

const quiet = { info() {}, warn() {} };

describe('active health checks', function () {
  this.timeout(20_000);

  it('takes an endpoint out after `fall` failures in a row and back after `rise` successes (pure)', async () => {
    const set = new EndpointSet([{ name: 'a', address: '10.0.0.1', port: 1, weight: 1 }]);
    const script = [true, false, false, true, false, false, false, true, true, true];
    let i = 0;
    const hc = new HealthChecker(set, { intervalMs: 1000, timeoutMs: 10, rise: 2, fall: 3 }, quiet, async () => script[i++]);
    const states: boolean[] = [];
    for (let r = 0; r < script.length; r++) {
      await hc.round();
      states.push(!!set.states[0].checkedDown);
    }
    // down at the third failure in a row (round 7), up at the second success after it (round 9)
    assert.deepEqual(states, [false, false, false, false, false, false, true, true, false, false]);
    assert.equal(set.healthy().length, 1);
  });

  it('moves a client off an endpoint whose server stopped, announces it, and takes the endpoint back when it returns', async function () {
    addonOrSkip(this);
    const servers: Server[] = [];
    const listen = (port = 0) =>
      new Promise<{ server: Server; port: number }>((r) => {
        const server = createServer((s) => s.destroy()).listen(port, '127.0.0.1', () => r({ server, port: (server.address() as { port: number }).port }));
        servers.push(server);
      });
    const a = await listen();
    const b = await listen();
    const node = await createNode(
      {
        node: { id: 1 },
        cluster: { ...testGroup(), interface: '127.0.0.1' },
        query: { count: 1, intervalMs: 5, timeoutMs: 5 },
        selection: { healthCheck: { enabled: true, intervalMs: 50, timeoutMs: 200, rise: 2, fall: 2 } },
        endpoints: [
          { name: 'a', address: '127.0.0.1', port: a.port },
          { name: 'b', address: '127.0.0.1', port: b.port },
        ],
      },
      { keyring: testKeyring() },
    );
    try {
      // a client on endpoint a
      let key = '';
      for (let i = 0; !key; i++) {
        const k = `2:10.5.0.${i + 1}/hc`;
        if ((await node.route(k)).endpoint.name === 'a') key = k;
      }
      await new Promise<void>((r) => a.server.close(() => r()));
      await until(() => node.stats().endpoints[0].checkedDown, 3000, 'endpoint a to be checked down');
      const moved = await node.route(key);
      assert.deepEqual([moved.source, moved.endpoint.name, moved.version], ['rerouted', 'b', 2]);
      assert.ok(node.router.counters.updatesSent >= 2, 'the move was announced');
      await listen(a.port);
      await until(() => !node.stats().endpoints[0].checkedDown, 3000, 'endpoint a to be back');
      await sleep(10);
      assert.equal(node.endpoints.healthy().length, 2);
    } finally {
      await node.close();
      servers.forEach((s) => s.close());
    }
  });
});
