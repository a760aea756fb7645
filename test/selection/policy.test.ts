import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { EndpointSet } from '../../src/selection/endpoint-set';
import { createPolicy } from '../../src/selection/policy';
import { unitHash } from '../../src/selection/rendezvous';

const ep = (name: string, weight = 1) => ({ name, address: `10.0.0.${name.charCodeAt(0) - 96}`, port: 1701, weight });
const key = (i: number) => clientKeyBytes(parseClientKey(`2:192.0.2.1/user${i}`));

describe('endpoint selection (pure)', () => {
  it('rendezvous: every node picks the same endpoint for a client, from the same list in any order', () => {
    const a = new EndpointSet([ep('a'), ep('b'), ep('c')]);
    const b = new EndpointSet([ep('c'), ep('a'), ep('b')]);
    const p = createPolicy('rendezvous');
    for (let i = 0; i < 200; i++) assert.equal(p.select(key(i), a.healthy())!.id, p.select(key(i), b.healthy())!.id);
  });

  it('rendezvous: spreads clients by weight and moves only the clients of a removed endpoint', () => {
    const p = createPolicy('rendezvous');
    const set = new EndpointSet([ep('a', 1), ep('b', 1), ep('c', 2)]);
    const count: Record<string, number> = {};
    const before: string[] = [];
    for (let i = 0; i < 8000; i++) {
      const id = p.select(key(i), set.healthy())!.endpoint.name;
      before.push(id);
      count[id] = (count[id] ?? 0) + 1;
    }
    assert.ok(Math.abs(count.a - 2000) < 250 && Math.abs(count.b - 2000) < 250 && Math.abs(count.c - 4000) < 300, JSON.stringify(count));
    set.markFailed(set.states[1].endpoint, 60_000); // b out
    for (let i = 0; i < 8000; i++) {
      const now = p.select(key(i), set.healthy())!.endpoint.name;
      if (before[i] !== 'b') assert.equal(now, before[i], 'a client not on b moved');
      else assert.notEqual(now, 'b');
    }
  });

  it('rendezvous: near-identical keys and endpoints (a storm\'s sequential discriminators) still spread by weight, u inside (0,1)', () => {
    const p = createPolicy('rendezvous');
    const eps = [1, 2, 3, 4].map((i) => ({ name: `lns-${i}`, address: `198.51.100.${i}`, port: 1701, weight: i }));
    const set = new EndpointSet(eps);
    const count = [0, 0, 0, 0, 0];
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      const k = clientKeyBytes(parseClientKey(`3:02:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01/storm-${i}`));
      count[p.select(k, set.healthy())!.endpoint.weight]++;
      const u = unitHash(k, set.states[i % 4].id);
      assert.ok(u > 0 && u < 1, `u=${u}`);
    }
    // weight w of 10 expects n*w/10; 5 standard deviations of a binomial
    for (let w = 1; w <= 4; w++) {
      const expect = (n * w) / 10;
      const sd = Math.sqrt(n * (w / 10) * (1 - w / 10));
      assert.ok(Math.abs(count[w] - expect) < 5 * sd, `weight ${w}: ${count[w]} of ${n}, expected ${expect}`);
    }
  });

  it('skips endpoints with weight 0 and down endpoints; none left: undefined', () => {
    let t = 1000;
    const set = new EndpointSet([ep('a', 0), ep('b')], () => t);
    const p = createPolicy('rendezvous');
    assert.equal(p.select(key(1), set.healthy())!.endpoint.name, 'b');
    set.markFailed(set.states[1].endpoint, 500);
    assert.equal(p.select(key(1), set.healthy()), undefined);
    t = 1500;
    assert.equal(p.select(key(1), set.healthy())!.endpoint.name, 'b', 'back after the hold-down');
  });

  it('least-connections picks the fewest connections per weight', () => {
    const set = new EndpointSet([ep('a', 1), ep('b', 2)]);
    set.states[0].connections = 3;
    set.states[1].connections = 5; // 2.5 per weight
    assert.equal(createPolicy('least-connections').select(key(1), set.healthy())!.endpoint.name, 'b');
    set.states[1].connections = 7;
    assert.equal(createPolicy('least-connections').select(key(1), set.healthy())!.endpoint.name, 'a');
  });

  it('round-robin follows the weights smoothly', () => {
    const set = new EndpointSet([ep('a', 1), ep('b', 3)]);
    const p = createPolicy('round-robin');
    const seq = Array.from({ length: 8 }, () => p.select(key(0), set.healthy())!.endpoint.name).join('');
    assert.equal(seq, 'babbbabb');
  });

  it('refuses a bad endpoint list', () => {
    assert.throws(() => new EndpointSet([ep('a'), ep('a')]), /twice/);
    assert.throws(() => new EndpointSet([{ name: 'x', address: '10.0.0.300', port: 1, weight: 1 }]), /not an IP address/);
    assert.throws(() => new EndpointSet([{ name: 'x', address: '10.0.0.3', port: 0, weight: 1 }]), /port/);
    assert.throws(() => new EndpointSet([{ name: 'x', address: '10.0.0.3', port: 1, weight: -1 }]), /weight/);
  });
});
