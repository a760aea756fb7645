// The access log's lines (docs/operations.md, "Logs"): each outcome's line
// carries the fields the document lists for it, with the peer as the kernel
// reported it at accept and the client formatted as everywhere else.
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';

import { clientKey, DiscriminatorClass, formatClientKey } from '../../src/codec/client-key';
import { CallRecord } from '../../src/frontend/call-record';

/** Just what CallRecord reads of an accepted socket. */
/** The set of a line's field names (their order is no part of the contract). */
const fieldsOf = (o: object) => Object.keys(o).sort();
const set = (names: string[]) => [...names].sort();

const peerOf = (remoteAddress: string | undefined, remotePort: number | undefined, remoteFamily?: string) =>
  ({ remoteAddress, remotePort, remoteFamily }) as unknown as Socket;

describe('call record (access log lines)', () => {
  const key = clientKey({ class: DiscriminatorClass.Ipv4Address, address: Buffer.from([192, 0, 2, 7]) }, 'alice');
  const common = ['frontend', 'peer', 'client', 'identifyMs', 'routeMs'];

  it('writes the peer as address:port, [v6]:port, or not at all', () => {
    assert.equal(new CallRecord('calls', peerOf('192.0.2.7', 4242, 'IPv4'), 0).peer(), '192.0.2.7:4242');
    assert.equal(new CallRecord('calls', peerOf('2001:db8::7', 4242, 'IPv6'), 0).peer(), '[2001:db8::7]:4242');
    assert.equal(new CallRecord('calls', peerOf(undefined, undefined), 0).peer(), undefined);
  });

  it('gives each outcome the fields docs/operations.md lists, and nothing else', () => {
    const c = new CallRecord('calls', peerOf('192.0.2.7', 4242, 'IPv4'), performance.now() - 5);
    c.client = key;
    c.identifyMs = 1.5;
    c.routeMs = 0.25;
    const connected = c.connected('ep1=10.0.0.1:1723', 'local', 2, 0.4, 2.2, 100, 200, 'closed') as Record<string, unknown>;
    assert.deepEqual(fieldsOf(connected), set([...common, 'endpoint', 'source', 'outcome', 'attempts', 'connectMs', 'setupMs', 'totalMs', 'bytesFromClient', 'bytesToClient', 'end']));
    assert.equal(connected.outcome, 'connected');
    assert.equal(connected.client, formatClientKey(key));
    assert.equal(connected.peer, '192.0.2.7:4242');
    assert.deepEqual([connected.attempts, connected.connectMs, connected.setupMs, connected.bytesFromClient, connected.bytesToClient, connected.end], [2, 0.4, 2.2, 100, 200, 'closed']);
    assert.ok((connected.totalMs as number) >= 5, 'totalMs counts from accept');
    const redirected = c.redirected('ep1=10.0.0.1:1723', 'remote') as Record<string, unknown>;
    assert.deepEqual(fieldsOf(redirected), set([...common, 'endpoint', 'source', 'outcome', 'totalMs']));
    assert.equal(redirected.outcome, 'redirected');
    const left = c.clientLeft('ep1=10.0.0.1:1723', 'local', 1) as Record<string, unknown>;
    assert.deepEqual(fieldsOf(left), set([...common, 'endpoint', 'source', 'outcome', 'attempts', 'totalMs']));
    assert.equal(left.outcome, 'clientLeft');
    const refused = c.refused('noEndpoint', 'no endpoint can take the call') as Record<string, unknown>;
    assert.deepEqual(fieldsOf(refused), set([...common, 'outcome', 'reason', 'detail', 'totalMs']));
    assert.deepEqual([refused.outcome, refused.reason, refused.detail], ['refused', 'noEndpoint', 'no endpoint can take the call']);
  });

  it('leaves the client out of a line about a call whose identity was never read', () => {
    const c = new CallRecord('calls', peerOf('192.0.2.7', 4242, 'IPv4'), performance.now());
    const refused = c.refused('malformedPreamble', 'bad magic') as Record<string, unknown>;
    assert.equal(refused.client, undefined);
    assert.equal(refused.identifyMs, undefined);
    // a JSON line (pino) omits them
    assert.deepEqual(fieldsOf(JSON.parse(JSON.stringify(refused))), set(['frontend', 'peer', 'outcome', 'reason', 'detail', 'totalMs']));
  });
});
