// Test nodes over the addon on loopback multicast (IPv4, interface 127.0.0.1).
import dgram from 'node:dgram';

import { clientKeyBytes, type ClientKey } from '../../src/codec/client-key';
import { addressBytes, addressText, type Endpoint } from '../../src/codec/endpoint';
import { type Keyring, parseHeader } from '../../src/codec/frame';
import { addonOrSkip } from './addon';
import { Waiter } from './waiter';
import { standaloneResponderOptions } from '../../src/daemon/options';
import { type NativeAffinityTable, type NativeResponder, type InboundFrame, native } from '../../src/native';

export const testKeyring = (fill = 0x42, id = 1): Keyring => ({ keys: [{ id, secret: Buffer.alloc(32, fill) }], sendKeyId: id });

/** A group and port unlikely to collide with another test run on this host. */
export function testGroup(): { group: string; port: number } {
  return { group: `239.255.${10 + Math.floor(Math.random() * 200)}.${1 + Math.floor(Math.random() * 250)}`, port: 20000 + Math.floor(Math.random() * 20000) };
}

export class TestNode {
  readonly table: NativeAffinityTable;
  readonly responder: NativeResponder;
  readonly bootEpoch = Math.floor(Date.now() / 1000);
  private readonly inbound = new Waiter<InboundFrame>();
  readonly frames = this.inbound.items;

  constructor(readonly nodeId: number, net: { group: string; port: number }, keyring: Keyring, extra: Record<string, unknown> = {}) {
    const a = native();
    this.table = new a.AffinityTable(1 << 16, 256);
    this.responder = new a.Responder(
      this.table,
      // no HELLOs unless a test asks: they would add to the counts tests make
      standaloneResponderOptions({ nodeId, bootEpoch: this.bootEpoch, group: net.group, port: net.port, interface: '127.0.0.1', keyring, helloIntervalMs: 0, arbiterDelayMs: 0, ...extra }),
      (frames) => frames.forEach((f) => this.inbound.push(f)),
    );
  }

  store(key: ClientKey, ep: Endpoint, version = 1, origin = this.nodeId, ttl = 600): void {
    const id = this.table.internEndpoint(addressBytes(ep.address), ep.port, Buffer.from(ep.name));
    this.table.upsert(clientKeyBytes(key), id, version, origin, ttl);
  }

  /** The Endpoint a registry id of this node's table names (compact REPLYs carry ids). */
  endpointOf = (id: number): Endpoint => {
    const e = this.table.endpoint(id)!;
    return { address: addressText(e.address), port: e.port, name: e.name.toString('utf8') };
  };

  waitFrame(pred: (f: InboundFrame) => boolean, timeoutMs: number): Promise<InboundFrame> {
    return this.inbound.wait(pred, timeoutMs, () => `node ${this.nodeId}: no matching frame within ${timeoutMs} ms`);
  }

  close(): void {
    this.responder.close();
  }
}

/** The message type of a frame the responder delivered; a REPLY comes decoded (native/inbound_queue.h CompactReply, first octet 0x52). */
export const frameType = (f: InboundFrame): number => (f.data[0] === 0x52 ? 2 : (parseHeader(f.data).header?.type ?? -1));

/** A plain UDP socket that sends crafted datagrams to the group. */
export async function rawSender(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4' });
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  s.setMulticastInterface('127.0.0.1');
  s.setMulticastLoopback(true);
  s.setMulticastTTL(1);
  return s;
}

export const sendRaw = (s: dgram.Socket, data: Buffer, port: number, group: string): Promise<void> =>
  new Promise((resolve, reject) => s.send(data, port, group, (e) => (e ? reject(e) : resolve())));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Inside a describe(): skips it without the addon, and returns open(), which
 * makes a TestNode closed after each test.
 */
export function testNodes(): (...args: ConstructorParameters<typeof TestNode>) => TestNode {
  let nodes: TestNode[] = [];
  before(function () {
    addonOrSkip(this);
  });
  afterEach(() => {
    nodes.forEach((n) => n.close());
    nodes = [];
  });
  return (...args) => {
    const n = new TestNode(...args);
    nodes.push(n);
    return n;
  };
}
