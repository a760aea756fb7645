// `affinityd capture`: the cluster protocol on the wire, live from an
// interface or from a pcap file, with the `pcap` package (libpcap). Runs in a
// process of its own and ends it deliberately: pcap@3's close() leaves its
// poll handle alive (docs/capture.md), and decoded payloads are views into
// one reused buffer, so every payload is copied before it is kept.
import { chmodSync, writeSync } from 'node:fs';

import type { Keyring } from '../codec/frame';
import { CaptureDecoder, type CapturedMessage, formatLine, toJson } from './decode';
import { formatSummary, SummaryBuilder } from './summary';

export interface CaptureOptions {
  iface?: string;
  file?: string;
  write?: string;
  count?: number;
  filter: string;
  json: boolean;
  summary: boolean;
  keyring?: Keyring;
  /** Called once the live capture is open (tests wait for it). */
  onOpen?: () => void;
}

/** Why capture cannot run here, in words an operator can act on. */
export class CaptureUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureUnavailable';
  }
}

/** BPF for the cluster's traffic: the group port, and any UDP payload starting with the frame magic (REPLYs go to ephemeral ports). */
export const defaultFilter = (port: number): string => `udp and (port ${port} or udp[8:2] = 0xafd1)`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Pcap = any;

function loadPcap(): Pcap {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pcap = require('pcap');
    pcap.warningHandler = () => {}; // libpcap's warnings; errors are thrown and explained below
    return pcap;
  } catch (e) {
    throw new CaptureUnavailable(
      `capture needs the optional "pcap" package, built against libpcap (${(e as Error).message.split('\n')[0]}). ` +
        'Install libpcap: apt-get install libpcap-dev, then run npm install again.',
    );
  }
}

function explainOpenError(e: Error, iface?: string): CaptureUnavailable {
  const m = e.message;
  if (/permitted|permission|EPERM|EACCES/i.test(m)) {
    return new CaptureUnavailable(
      `capturing on ${iface ?? 'the interface'} needs root or the capabilities CAP_NET_RAW and CAP_NET_ADMIN (${m}). ` +
        'Run as root, or grant them: setcap cap_net_raw,cap_net_admin+eip "$(readlink -f "$(command -v node)")"',
    );
  }
  if (/No such device|doesn't exist|not exist|SIOCGIFHWADDR/i.test(m)) return new CaptureUnavailable(`no interface "${iface}" (${m}); see ip link`);
  return new CaptureUnavailable(`cannot open the capture: ${m}`);
}

interface Decoded {
  data: Buffer;
  timeMs: number;
  src: string;
  dst: string;
}

function udpOf(pcap: Pcap, raw: unknown): Decoded | undefined {
  let p;
  try {
    p = pcap.decode.packet(raw);
  } catch {
    return undefined;
  }
  let ip = p.payload;
  while (ip && !(ip.saddr && ip.payload)) ip = ip.payload; // link layer(s) down to IP
  const udp = ip?.payload;
  if (!udp || udp.constructor?.name !== 'UDP' || !udp.data) return undefined;
  const h = p.pcap_header;
  const host = (a: unknown) => String(a).replace(/^(.*:.*)$/, '[$1]');
  return {
    data: Buffer.from(udp.data), // copy: the package reuses its buffer
    timeMs: h.tv_sec * 1000 + h.tv_usec / 1000,
    src: `${host(ip.saddr)}:${udp.sport}`,
    dst: `${host(ip.daddr)}:${udp.dport}`,
  };
}

/**
 * Writes a whole line to a file descriptor, synchronously: when standard
 * output is a pipe whose reader is slow, the kernel takes part of it or
 * answers EAGAIN, and the rest is written once there is room (a capture
 * must not die, or lose lines, because its reader is busy).
 */
export function writeLine(fd: number, line: string): void {
  const b = Buffer.from(line + '\n');
  let off = 0;
  while (off < b.length) {
    try {
      off += writeSync(fd, b, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); // 1 ms for the reader
    }
  }
}

export function runCapture(o: CaptureOptions): Promise<number> {
  const pcap = loadPcap();
  const out = (s: string) => writeLine(1, s);
  const summary = o.summary ? new SummaryBuilder() : undefined;
  const decoder = new CaptureDecoder(o.keyring);
  let session: Pcap;
  // a capture holds client identities (usernames, discriminators): only its owner may read it
  const umask = o.write ? process.umask(0o077) : undefined;
  try {
    session = o.file
      ? o.write
        ? new pcap.PcapSession(false, o.file, o.filter, 0, null, o.write)
        : pcap.createOfflineSession(o.file, { filter: o.filter })
      : new pcap.PcapSession(true, o.iface, o.filter, 16 << 20, 65535, o.write ?? null, false, 20, false);
  } catch (e) {
    throw o.file ? new CaptureUnavailable(`cannot read ${o.file}: ${(e as Error).message}`) : explainOpenError(e as Error, o.iface);
  } finally {
    if (umask !== undefined) process.umask(umask);
  }
  if (o.write) chmodSync(o.write, 0o600); // libpcap keeps the mode of a file it overwrites
  return new Promise((resolve) => {
    let seen = 0;
    let done = false;
    const finish = (drain = false) => {
      if (done) return;
      // On a signal, take what libpcap has already captured but not yet
      // handed over (its buffer time-out), so the last packets are not lost.
      if (drain && !o.file) {
        try {
          while (!done && session.session.dispatch(session.buf, session.header) > 0);
        } catch {
          /* closing anyway */
        }
        if (done) return; // -c N was reached while draining
      }
      done = true;
      try {
        session.close();
      } catch {
        /* already closed */
      }
      if (summary) {
        const s = summary.result();
        out(o.json ? JSON.stringify(s) : formatSummary(s));
      }
      resolve(0);
    };
    session.on('packet', (raw: unknown) => {
      if (done) return;
      const u = udpOf(pcap, raw);
      if (!u) return;
      const c: CapturedMessage = decoder.decode(u.data, u.timeMs, u.src, u.dst);
      if (summary) summary.add(c);
      else out(o.json ? JSON.stringify(toJson(c)) : formatLine(c));
      if (o.count && ++seen >= o.count) finish();
    });
    session.on('complete', () => finish()); // end of a file
    process.once('SIGINT', () => finish(true));
    process.once('SIGTERM', () => finish(true));
    if (!o.file) {
      writeSync(2, `capturing on ${o.iface} (${o.filter})${o.write ? `, writing ${o.write}` : ''}\n`);
      o.onOpen?.();
    }
  });
}
