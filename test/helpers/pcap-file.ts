// Writes a pcap file (libpcap format, Ethernet link type) of UDP datagrams
// over IPv4, for tests that need a capture with exactly these frames in it
// (tshark and `affinityd capture -r` read it as they read a real one).
import { writeFileSync } from 'node:fs';

export interface Datagram {
  readonly src: string; // IPv4 a.b.c.d
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
  readonly data: Buffer;
  /** Capture time, ms since the epoch. */
  readonly timeMs: number;
}

const ip4 = (a: string) => Buffer.from(a.split('.').map(Number));

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function pcapOf(datagrams: readonly Datagram[]): Buffer {
  const parts: Buffer[] = [];
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  parts.push(g);
  for (const d of datagrams) {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(d.sport, 0);
    udp.writeUInt16BE(d.dport, 2);
    udp.writeUInt16BE(8 + d.data.length, 4); // checksum 0: none (IPv4)
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + 8 + d.data.length, 2);
    ip[8] = 1; // TTL
    ip[9] = 17; // UDP
    ip4(d.src).copy(ip, 12);
    ip4(d.dst).copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
    const eth = Buffer.from([0, 0x5e, 0, 0, 0, 1, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    const pkt = Buffer.concat([eth, ip, udp, d.data]);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(Math.floor(d.timeMs / 1000), 0);
    rec.writeUInt32LE(Math.round((d.timeMs % 1000) * 1000), 4);
    rec.writeUInt32LE(pkt.length, 8);
    rec.writeUInt32LE(pkt.length, 12);
    parts.push(rec, pkt);
  }
  return Buffer.concat(parts);
}

export function writePcap(file: string, datagrams: readonly Datagram[]): void {
  writeFileSync(file, pcapOf(datagrams));
}
