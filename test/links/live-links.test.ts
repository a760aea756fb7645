// The live-link registry (pure).
import assert from 'node:assert/strict';

import { clientKeyBytes, parseClientKey } from '../../src/codec/client-key';
import { LiveLinks } from '../../src/links/live-links';

const ep = (name: string) => ({ address: '192.0.2.1', port: 1701, name });
const client = (s: string) => {
  const c = parseClientKey(s);
  return { client: c, keyBytes: clientKeyBytes(c) };
};

describe('live links (pure)', () => {
  it('counts links per client, replaces a link with the same id, and tells when a client\'s last link ends', () => {
    const links = new LiveLinks();
    const idle: string[] = [];
    links.onClientIdle = (_c, k) => idle.push(k.toString('latin1'));
    const a = client('2:192.0.2.7/alice');
    const b = client('0/bob');
    links.add({ id: 'x1', ...a, endpoint: ep('lns-a'), via: 'frontend' }, 1000);
    links.add({ id: 'x2', ...a, endpoint: ep('lns-a'), via: 'radius' }, 2000);
    links.add({ id: 'y1', ...b, endpoint: ep('lns-b'), via: 'api' }, 3000);
    assert.equal(links.countFor(a.keyBytes), 2);
    assert.equal(links.size, 3);
    // a repeated Start for the same session keeps the first time and takes the new endpoint
    const again = links.add({ id: 'x2', ...a, endpoint: ep('lns-c'), via: 'radius' }, 9000);
    assert.equal(again.since, 2000);
    assert.equal(links.countFor(a.keyBytes), 2);
    assert.deepEqual(links.forClient(a.keyBytes).map((l) => l.endpoint.name).sort(), ['lns-a', 'lns-c']);
    assert.equal(links.remove('x1')?.id, 'x1');
    assert.deepEqual(idle, []);
    assert.equal(links.remove('x2')?.id, 'x2');
    assert.deepEqual(idle, [a.keyBytes.toString('latin1')]);
    assert.equal(links.remove('x2'), undefined, 'removing twice is a no-op');
    assert.equal(links.countFor(a.keyBytes), 0);
    assert.deepEqual([...links.clients().keys()], [b.keyBytes.toString('latin1')]);
  });
});
