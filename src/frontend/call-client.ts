// The client side of the call-request preamble (docs/frontend.md): for access
// servers that speak it, the demo and the tests. Connects, sends the client's
// key, and resolves with the node's answer and the still-open connection.
import { connect, type Socket } from 'node:net';

import { type ClientKey, parseClientKey } from '../codec/client-key';
import { type CallResponse, decodeCallResponse, encodeCallRequest, preambleLength, RESPONSE_MAGIC } from './preamble';

export interface PlacedCall {
  readonly response: CallResponse;
  /** Open while the call is ACCEPTED: the endpoint's bytes follow on it. */
  readonly socket: Socket;
  /** Octets that arrived after the response, before the caller took over. */
  readonly rest: Buffer;
}

export function placeCall(host: string, port: number, key: ClientKey | string, timeoutMs = 10_000): Promise<PlacedCall> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    let buf = Buffer.alloc(0);
    const fail = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      let n: number;
      try {
        n = preambleLength(buf, RESPONSE_MAGIC, 65_541);
      } catch (e) {
        return fail(e as Error);
      }
      if (!n) return;
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.setTimeout(0);
      socket.pause();
      resolve({ response: decodeCallResponse(buf.subarray(0, n)), socket, rest: buf.subarray(n) });
    };
    const onEnd = () => fail(new Error('the node closed the connection without answering'));
    socket.on('connect', () => socket.write(encodeCallRequest(typeof key === 'string' ? parseClientKey(key) : key)));
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.once('error', fail);
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
  });
}

/** The first line the endpoint sends on a placed call (what the demo's endpoints greet with). */
export function readLine(call: PlacedCall, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = call.rest;
    const s = call.socket;
    const done = (e?: Error, line?: string) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('end', onEnd);
      if (e) reject(e);
      else resolve(line!);
    };
    const check = () => {
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(undefined, buf.subarray(0, nl).toString());
    };
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      check();
    };
    const onEnd = () => done(new Error(`the connection ended before a full line: "${buf.toString()}"`));
    const t = setTimeout(() => done(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
    s.on('data', onData);
    s.on('end', onEnd);
    s.resume();
    check();
  });
}
