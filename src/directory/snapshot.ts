// Directory snapshots: the affinity table saved to a file on an interval and at
// shutdown, and loaded at start (issue 6, persistence).
//
// Format: "AFSN" | version 2 | u32 unix seconds when taken | records | SHA-256
// of everything before it. A record is a kind octet (1: an entry, as an
// UPDATE body; 2: a withdraw marker, as a WITHDRAW body; proto/affinity.proto)
// and the body, length-delimited; ttl_seconds is the remaining lifetime when
// taken. Version 1 files (entries only, no kind octet) are still read. Written to FILE.tmp,
// fsync'd, renamed over FILE, and the directory fsync'd: a crash leaves the
// old snapshot or the new one, never half of one. A damaged file is reported
// and skipped, never a crash.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

import * as protobuf from 'protobufjs';

import { clientKeyBytes, clientKeyFromBytes } from '../codec/client-key';
import { decodeWithdraw, encodeWithdraw, type Withdraw } from '../codec/cluster-messages';
import { decodeUpdate, encodeUpdate, type Entry } from '../codec/messages';
import type { Directory, DirectoryReader } from './directory';

const MAGIC = Buffer.from('AFSN', 'latin1');
const VERSION = 2;
const KIND_ENTRY = 1;
const KIND_WITHDRAW = 2;
const HEAD = 9; // magic 4, version 1, taken-at 4
const DIGEST = 32;

export class SnapshotError extends Error {
  constructor(readonly path: string, reason: string) {
    super(`snapshot ${path}: ${reason}`);
    this.name = 'SnapshotError';
  }
}

/** Saves every live entry and withdraw marker; returns how many. */
export function writeSnapshot(directory: DirectoryReader, path: string, nowSeconds = Math.floor(Date.now() / 1000)): number {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(HEAD);
  MAGIC.copy(head);
  head[4] = VERSION;
  head.writeUInt32BE(nowSeconds, 5);
  parts.push(head);
  let count = 0;
  let cursor = 0;
  for (;;) {
    const page = directory.walk(cursor, 4096, nowSeconds);
    for (const e of page.records) {
      const common = { clientKey: clientKeyFromBytes(e.key), version: e.version, originNode: e.originNode, ttlSeconds: Math.max(1, e.expiresSeconds - nowSeconds) };
      // markers are saved too: after a restart of the whole cluster, a node
      // that missed a delete must not spread the deleted entry again
      const marker = !e.endpoint;
      // An UPDATE body is exactly { entry }: the codec checks and encodes it.
      const body = e.endpoint ? encodeUpdate({ entries: [{ ...common, endpoint: e.endpoint }] }) : encodeWithdraw(common);
      const w = protobuf.Writer.create();
      w.uint32(marker ? KIND_WITHDRAW : KIND_ENTRY);
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
export function loadSnapshot(directory: Directory, path: string, nowSeconds = Math.floor(Date.now() / 1000)): { loaded: number; expired: number } {
  const buf = readFileSync(path);
  if (buf.length < HEAD + DIGEST || !buf.subarray(0, 4).equals(MAGIC)) throw new SnapshotError(path, 'not a snapshot (bad magic or too short)');
  const version = buf[4];
  if (version !== 1 && version !== VERSION) throw new SnapshotError(path, `version ${version} is not 1 or ${VERSION}`);
  const body = buf.subarray(0, buf.length - DIGEST);
  if (!createHash('sha256').update(body).digest().equals(buf.subarray(buf.length - DIGEST))) throw new SnapshotError(path, 'checksum mismatch: damaged or cut short');
  const takenAt = buf.readUInt32BE(5);
  const elapsed = Math.max(0, nowSeconds - takenAt);
  const r = protobuf.Reader.create(body.subarray(HEAD));
  let loaded = 0;
  let expired = 0;
  while (r.pos < r.len) {
    let record: { entry: Entry } | { marker: Withdraw };
    try {
      const kind = version === 1 ? KIND_ENTRY : r.uint32();
      const len = r.uint32();
      if (r.pos + len > r.len) throw new Error('record runs past the end');
      const b = body.subarray(HEAD + r.pos, HEAD + r.pos + len);
      if (kind === KIND_ENTRY) record = { entry: decodeUpdate(b).entries[0] };
      else if (kind === KIND_WITHDRAW) record = { marker: decodeWithdraw(b) };
      else throw new Error(`unknown record kind ${kind}`);
      r.skip(len);
    } catch (e) {
      throw new SnapshotError(path, `record ${loaded + expired + 1}: ${(e as Error).message}`);
    }
    const x = 'entry' in record ? record.entry : record.marker;
    const ttl = x.ttlSeconds - elapsed;
    if (ttl <= 0) {
      expired++;
      continue;
    }
    // by the version rule and the lifetime rule, like anything that arrives
    directory.apply(clientKeyBytes(x.clientKey), { ...x, ttlSeconds: ttl });
    loaded++;
  }
  return { loaded, expired };
}
