// RADIUS accounting over the live-link registry (pure: the node's table,
// withdraw and UPDATE are fakes that record what they were asked).
import assert from 'node:assert/strict';

import { clientKeyBytes, formatClientKey, parseClientKey, type ClientKey } from '../../src/codec/client-key';
import type { Endpoint } from '../../src/codec/endpoint';
import { LiveLinks } from '../../src/links/live-links';
import { accountingStatus, RadiusAccounting, type SessionEvent } from '../../src/radius/accounting';

const A: Endpoint = { address: '198.51.100.10', port: 1701, name: 'lns-a' };
const B: Endpoint = { address: '198.51.100.11', port: 1701, name: 'lns-b' };
const silent = { error() {}, info() {}, warn() {}, debug() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(f: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
// Timers never fire early by more than Node's millisecond rounding.
const SLACK_MS = 2;

function harness(graceSeconds = 0.05, maxSessions = 1000) {
  const links = new LiveLinks();
  const table = new Map<string, Endpoint>();
  const withdrawn: string[] = [];
  /** performance.now() of each withdraw. */
  const withdrawnAt: number[] = [];
  const reasserted: string[] = [];
  const acct = new RadiusAccounting(
    {
      links,
      held: (k) => table.get(k.toString('latin1')),
      withdraw: (key) => {
        withdrawn.push(formatClientKey(key));
        withdrawnAt.push(performance.now());
        table.delete(clientKeyBytes(key).toString('latin1'));
      },
      reassert: (key, k, ep) => {
        reasserted.push(`${formatClientKey(key)}->${ep.name}`);
        table.set(k.toString('latin1'), ep);
      },
      endpointFor: (se) => [A, B].find((e) => e.address === se),
    },
    { releaseGraceSeconds: graceSeconds, maxSessions },
    silent,
  );
  const client = (text: string) => {
    const key: ClientKey = parseClientKey(text);
    return { key, keyBytes: clientKeyBytes(key) };
  };
  const ev = (status: SessionEvent['status'], c: ReturnType<typeof client>, sessionId: string, nas = 'lac-1', serverEndpoint?: string): SessionEvent => ({ status, nas, sessionId, ...c, serverEndpoint });
  const hold = (c: ReturnType<typeof client>, ep: Endpoint) => table.set(c.keyBytes.toString('latin1'), ep);
  return { links, table, withdrawn, withdrawnAt, reasserted, acct, client, ev, hold };
}

describe('radius: accounting (pure)', () => {
  it('reads Acct-Status-Type by name and by number', () => {
    assert.deepEqual(['Start', 'Stop', 'Interim-Update', 'Alive', 'Accounting-On', 'Accounting-Off', 'Tunnel-Start', 1, 2, 3, 7, 8, 9].map(accountingStatus), [
      'start', 'stop', 'interim-update', 'interim-update', 'accounting-on', 'accounting-off', 'other', 'start', 'stop', 'interim-update', 'accounting-on', 'accounting-off', 'other',
    ]);
  });

  it('Start counts a live link at the endpoint held; the last Stop releases the entry after the grace time, not before', async () => {
    const h = harness(0.15);
    const c = h.client('0/alice');
    h.hold(c, A);
    h.acct.handle(h.ev('start', c, 's1'));
    h.acct.handle(h.ev('start', c, 's2', 'lac-2'));
    assert.equal(h.links.countFor(c.keyBytes), 2);
    assert.equal(h.acct.liveSessions, 2);
    assert.deepEqual(h.links.forClient(c.keyBytes).map((l) => [l.via, l.endpoint.name, l.id]), [['radius', 'lns-a', 'radius:s1@lac-1'], ['radius', 'lns-a', 'radius:s2@lac-2']]);
    h.acct.handle(h.ev('stop', c, 's1'));
    assert.equal(h.links.countFor(c.keyBytes), 1);
    assert.equal(h.acct.pendingReleases, 0, 'a live link remains: nothing to release');
    const stoppedAt = performance.now();
    h.acct.handle(h.ev('stop', c, 's2', 'lac-2'));
    assert.equal(h.acct.pendingReleases, 1);
    await until(() => h.withdrawn.length > 0, 'the release');
    assert.ok(h.withdrawnAt[0] - stoppedAt >= 150 - SLACK_MS, `released ${h.withdrawnAt[0] - stoppedAt} ms after the last Stop, before the 150-ms grace time`);
    assert.deepEqual(h.withdrawn, ['0/alice']);
    assert.equal(h.acct.counters.released, 1);
    assert.equal(h.acct.liveSessions, 0);
  });

  it('a new session during the grace time calls the release off; an Access-Request puts it off by another grace time', async () => {
    const h = harness(1);
    const c = h.client('0/bob');
    h.hold(c, A);
    h.acct.handle(h.ev('start', c, 's1'));
    h.acct.handle(h.ev('stop', c, 's1'));
    h.acct.handle(h.ev('start', c, 's2'));
    assert.equal(h.acct.pendingReleases, 0);
    assert.equal(h.acct.counters.releasesCancelled, 1);
    h.acct.handle(h.ev('stop', c, 's2'));
    const stoppedAt = performance.now();
    await sleep(100);
    const accessAt = performance.now();
    h.acct.noteAccess(c.keyBytes);
    assert.equal(h.acct.counters.releasesPostponed, 1);
    await until(() => h.withdrawn.length > 0, 'the release');
    assert.ok(h.withdrawnAt[0] - accessAt >= 1000 - SLACK_MS, 'the Access-Request put the release off by a whole grace time');
    assert.ok(h.withdrawnAt[0] - stoppedAt >= 1000 + (accessAt - stoppedAt) - SLACK_MS);
    assert.deepEqual(h.withdrawn, ['0/bob']);
  });

  it('registers the endpoint the session went to (Tunnel-Server-Endpoint), and counts one that differs from the entry', () => {
    const h = harness();
    const c = h.client('5:4711/carol');
    h.hold(c, A);
    h.acct.handle(h.ev('start', c, 's1', 'lac-1', '198.51.100.11'));
    assert.equal(h.links.forClient(c.keyBytes)[0].endpoint.name, 'lns-b');
    assert.equal(h.acct.counters.elsewhere, 1);
    h.acct.handle(h.ev('start', c, 's2', 'lac-1', '203.0.113.99'));
    assert.equal(h.acct.counters.unknownServerEndpoint, 1);
    assert.equal(h.links.get('radius:s2@lac-1')?.endpoint.name, 'lns-a', 'an unknown server endpoint: the entry held');
  });

  it('a session with no endpoint known is not counted; a session whose client has no entry stores one', () => {
    const h = harness();
    const c = h.client('0/dave');
    h.acct.handle(h.ev('start', c, 's1'));
    assert.equal(h.acct.counters.unplaced, 1);
    assert.equal(h.links.size, 0);
    h.acct.handle(h.ev('start', c, 's2', 'lac-1', '198.51.100.10'));
    assert.deepEqual(h.reasserted, ['0/dave->lns-a']);
    assert.equal(h.links.countFor(c.keyBytes), 1);
  });

  it('a withdraw of a client with live sessions here stores their endpoint again; without sessions it does nothing', async () => {
    const h = harness();
    const c = h.client('0/erin');
    const other = h.client('0/frank');
    h.hold(c, B);
    h.acct.handle(h.ev('start', c, 's1'));
    h.table.delete(c.keyBytes.toString('latin1'));
    h.acct.withdrawn(c.keyBytes);
    h.acct.withdrawn(c.keyBytes); // a second marker in the same turn: one reassert
    h.acct.withdrawn(other.keyBytes);
    assert.deepEqual(h.reasserted, [], 'after the withdraw has been handled, not inside it');
    await sleep(0);
    assert.deepEqual(h.reasserted, ['0/erin->lns-b']);
    assert.equal(h.acct.counters.reasserted, 1);
  });

  it('Interim-Update adopts a session it did not know, and restores a missing entry of a known one', () => {
    const h = harness();
    const c = h.client('0/gina');
    h.hold(c, A);
    h.acct.handle(h.ev('interim-update', c, 's1'));
    assert.equal(h.acct.counters.adopted, 1);
    assert.equal(h.links.countFor(c.keyBytes), 1);
    h.table.clear(); // expired
    h.acct.handle(h.ev('interim-update', c, 's1'));
    assert.deepEqual(h.reasserted, ['0/gina->lns-a']);
    assert.equal(h.links.countFor(c.keyBytes), 1);
  });

  it('counts a Stop for a session it never saw; Accounting-On ends every session of that NAS only', () => {
    const h = harness(60);
    const c = h.client('0/hank');
    const d = h.client('0/ivy');
    h.hold(c, A);
    h.hold(d, A);
    h.acct.handle(h.ev('stop', c, 'nope'));
    assert.equal(h.acct.counters.stopUnknown, 1);
    h.acct.handle(h.ev('start', c, 's1', 'lac-1'));
    h.acct.handle(h.ev('start', d, 's1', 'lac-2'));
    h.acct.handle({ status: 'accounting-on', nas: 'lac-1' });
    assert.equal(h.links.countFor(c.keyBytes), 0);
    assert.equal(h.links.countFor(d.keyBytes), 1);
    assert.equal(h.acct.counters.endedByNas, 1);
    assert.equal(h.acct.pendingReleases, 1);
    h.acct.close();
  });

  it('tracks at most maxSessions and counts the rest', () => {
    const h = harness(60, 2);
    const c = h.client('0/jo');
    h.hold(c, A);
    for (const s of ['s1', 's2', 's3']) h.acct.handle(h.ev('start', c, s));
    assert.equal(h.acct.liveSessions, 2);
    assert.equal(h.acct.counters.full, 1);
    h.acct.handle(h.ev('start', c, 's1')); // a repeated Start of a tracked session is not a new one
    assert.equal(h.acct.counters.full, 1);
  });

  it('a client whose last link was a front-end call is not released by RADIUS', async () => {
    const h = harness(0.01);
    const c = h.client('0/kim');
    h.links.add({ id: 'frontend:1', client: c.key, keyBytes: c.keyBytes, endpoint: A, via: 'frontend' });
    h.links.remove('frontend:1');
    await sleep(50);
    assert.deepEqual(h.withdrawn, []);
    assert.equal(h.acct.counters.releasesScheduled, 0);
  });
});
