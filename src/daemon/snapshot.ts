// Table snapshots: the affinity table saved to a file on an interval and at
// shutdown, and loaded at start (issue 6, persistence).
//
// Format: "AFSN" | version 1 | u32 unix seconds when taken | Entry messages
// (proto/affinity.proto), each length-delimited, ttl_seconds = remaining
// lifetime when taken | SHA-256 of everything before it. Written to FILE.tmp,
// fsync'd, renamed over FILE, and the directory fsync'd: a crash leaves the
// old snapshot or the new one, never half of one. A damaged file is reported
// and skipped, never a crash.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

import * as protobuf from 'protobufjs';

import { clientKeyBytes, clientKeyFromBytes } from '../codec/client-key';
import { decodeUpdate, encodeUpdate } from '../codec/messages';
import { type NativeDirectory, WITHDRAWN } from '../directory/native-directory';

const MAGIC = Buffer.from('AFSN', 'latin1');
const VERSION = 1;
const HEAD = 9; // magic 4, version 1, taken-at 4
const DIGEST = 32;

export class SnapshotError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`snapshot ${path}: ${reason}`);
    this.name = 'SnapshotError';
  }
}

/** Saves every live entry; returns how many. */
export function writeSnapshot(directory: NativeDirectory, path: string, nowSeconds = Math.floor(Date.now() / 1000)): number {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(HEAD);
  MAGIC.copy(head);
  head[4] = VERSION;
  head.writeUInt32BE(nowSeconds, 5);
  parts.push(head);
  let count = 0;
  let cursor = 0;
  for (;;) {
    const page = directory.table.entries(cursor, 4096, nowSeconds);
    for (const e of page.entries) {
      // Withdraw markers are not saved: a restarted node gets them from the
      // bulk sync, with the entries they delete.
      if (e.endpointId === WITHDRAWN) continue;
      const entry = {
        clientKey: clientKeyFromBytes(e.key),
        endpoint: directory.endpointOf(e.endpointId),
        version: e.version,
        originNode: e.originNode,
        ttlSeconds: Math.max(1, e.expiresSeconds - nowSeconds),
      };
      // An UPDATE body is exactly { entry }: the codec checks and encodes it.
      const body = encodeUpdate({ entry });
      const w = protobuf.Writer.create();
      w.uint32(body.length);
      parts.push(Buffer.from(w.finish()), body);
      count++;
    }
    cursor = page.cursor;
    if (page.done) break;
  }
  const data = Buffer.concat(parts);
  const digest = createHash('sha256').update(data).digest();
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, data);
    writeSync(fd, digest);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dirname(path), 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
  return count;
}

/**
 * Loads a snapshot into the directory by the version rule, skipping entries
 * that expired since it was taken. Throws SnapshotError for a damaged file.
 */
export function loadSnapshot(directory: NativeDirectory, path: string, nowSeconds = Math.floor(Date.now() / 1000)): { loaded: number; expired: number } {
  const buf = readFileSync(path);
  if (buf.length < HEAD + DIGEST || !buf.subarray(0, 4).equals(MAGIC)) throw new SnapshotError(path, 'not a snapshot (bad magic or too short)');
  if (buf[4] !== VERSION) throw new SnapshotError(path, `version ${buf[4]} is not ${VERSION}`);
  const body = buf.subarray(0, buf.length - DIGEST);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - DIGEST))) throw new SnapshotError(path, 'checksum mismatch: damaged or cut short');
  const takenAt = buf.readUInt32BE(5);
  const elapsed = Math.max(0, nowSeconds - takenAt);
  const r = protobuf.Reader.create(body.subarray(HEAD));
  let loaded = 0;
  let expired = 0;
  while (r.pos < r.len) {
    let entry;
    try {
      const len = r.uint32();
      if (r.pos + len > r.len) throw new Error('entry runs past the end');
      entry = decodeUpdate(body.subarray(HEAD + r.pos, HEAD + r.pos + len)).entry;
      r.skip(len);
    } catch (e) {
      throw new SnapshotError(path, `entry ${loaded + expired + 1}: ${(e as Error).message}`);
    }
    const ttl = entry.ttlSeconds - elapsed;
    if (ttl <= 0) {
      expired++;
      continue;
    }
    directory.store(clientKeyBytes(entry.clientKey), entry.endpoint, entry.version, entry.originNode, ttl);
    loaded++;
  }
  return { loaded, expired };
}
