// Real-socket harness for the router and front-end tests: endpoints that
// greet with their name, nodes on loopback multicast, a raw multicast
// listener that decodes every frame the nodes send, and a preamble client.
import dgram from 'node:dgram';
import { connect, createServer, type Server, type Socket } from 'node:net';

import { formatClientKey, parseClientKey } from '../../src/codec/client-key';
import { HEADER_SIZE, parseHeader, TAG_SIZE, type FrameHeader } from '../../src/codec/frame';
import { decodeMessage, type Message } from '../../src/codec/messages';
import type { ConfigInput } from '../../src/daemon/config';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { type CallResponse, decodeCallResponse, encodeCallRequest, preambleLength, RESPONSE_MAGIC } from '../../src/frontend/preamble';
import { testGroup, testKeyring } from './loopback';

export interface TestEndpoint {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
  accepted: number;
}

/** A TCP endpoint that greets every connection with "endpoint NAME\n", then echoes. */
export function startEndpoint(name: string): Promise<TestEndpoint> {
  return new Promise((resolve) => {
    const ep = { name, port: 0, accepted: 0 } as TestEndpoint & { port: number; server: Server };
    ep.server = createServer({ allowHalfOpen: true }, (s) => {
      ep.accepted++;
      s.on('error', () => s.destroy());
      s.write(`endpoint ${name}\n`);
      s.pipe(s);
    });
    ep.server.listen(0, '127.0.0.1', () => {
      ep.port = (ep.server.address() as { port: number }).port;
      resolve(ep);
    });
  });
}

export interface Captured {
  header: FrameHeader;
  message?: Message;
  at: number;
}

/** Joins the group like a node would and decodes every frame multicast to it. */
export async function captureGroup(group: string, port: number): Promise<{ frames: Captured[]; close: () => void }> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const frames: Captured[] = [];
  s.on('message', (m) => {
    const { header } = parseHeader(m);
    if (!header) return;
    let message: Message | undefined;
    try {
      if (header.type <= 3) message = decodeMessage(header.type, m.subarray(HEADER_SIZE, m.length - TAG_SIZE));
    } catch {
      /* recorded without a message */
    }
    frames.push({ header, message, at: performance.now() });
  });
  await new Promise<void>((r) => s.bind(port, group, () => r()));
  s.addMembership(group, '127.0.0.1');
  return { frames, close: () => s.close() };
}

export async function startCluster(
  n: number,
  endpoints: TestEndpoint[],
  over: (i: number) => ConfigInput = () => ({}),
): Promise<{ nodes: AffinityNode[]; net: { group: string; port: number } }> {
  const net = testGroup();
  const keyring = testKeyring();
  const nodes: AffinityNode[] = [];
  for (let i = 1; i <= n; i++) {
    const o = over(i);
    nodes.push(
      await createNode(
        {
          ...o,
          node: { id: i },
          cluster: { ...net, interface: '127.0.0.1', ...o.cluster },
          query: { count: 3, intervalMs: 15, timeoutMs: 30, ...o.query },
          endpoints: endpoints.map((e) => ({ name: e.name, address: '127.0.0.1', port: e.port })),
          frontends: o.frontends ?? [{ listen: { address: '127.0.0.1', port: 0 }, identity: 'preamble' }],
        },
        { keyring },
      ),
    );
  }
  return { nodes, net };
}

export interface CallResult {
  response?: CallResponse;
  /** What the endpoint said first ("endpoint NAME"), if the call got through. */
  greeting?: string;
  socket: Socket;
  closed: Promise<void>;
}

/** A call through a front end with the preamble; resolves once the endpoint greeted, or the node answered and closed. */
export function call(port: number, key: string | Buffer, opts: { keepOpen?: boolean } = {}): Promise<CallResult> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    let buf = Buffer.alloc(0);
    let response: CallResponse | undefined;
    const finish = (greeting?: string) => {
      socket.removeAllListeners('data');
      if (!opts.keepOpen) socket.end();
      resolve({ response, greeting, socket, closed });
    };
    socket.on('connect', () => socket.write(typeof key === 'string' ? encodeCallRequest(parseClientKey(key)) : key));
    socket.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!response) {
        const n = preambleLength(buf, RESPONSE_MAGIC, 4096);
        if (!n) return;
        response = decodeCallResponse(buf.subarray(0, n));
        buf = buf.subarray(n);
      }
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.subarray(0, nl).toString());
    });
    socket.on('end', () => {
      socket.end(); // the node finished: so do we
      finish();
    });
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('call timed out')));
  });
}

export const frontPort = (n: AffinityNode): number => n.frontends[0].address()!.port;
export const keyText = (k: string): string => formatClientKey(parseClientKey(k));
