// When the directory is saved to and loaded from its snapshot file
// (directory.snapshotFile): loaded at start, saved on an interval and at
// shutdown. The file format is src/directory/snapshot.ts.
import { existsSync } from 'node:fs';

import type { Directory } from '../directory/directory';
import { loadSnapshot, writeSnapshot } from '../directory/snapshot';
import type { Logger } from '../util/logger';

export class SnapshotKeeper {
  readonly counters = { loaded: 0, expiredOnLoad: 0, damaged: 0, written: 0, writeErrors: 0, lastWrittenEntries: 0 };
  private timer?: NodeJS.Timeout;

  /** file '' keeps the directory in memory only: every method does nothing. */
  constructor(private readonly directory: Directory, private readonly file: string, private readonly log: Logger) {}

  /** Loads the file if there is one; a damaged file is reported and skipped (the cluster still knows the entries). */
  load(): void {
    if (!this.file || !existsSync(this.file)) return;
    try {
      const r = loadSnapshot(this.directory, this.file);
      this.counters.loaded = r.loaded;
      this.counters.expiredOnLoad = r.expired;
      this.log.info({ file: this.file, ...r }, 'snapshot loaded');
    } catch (e) {
      this.counters.damaged++;
      this.log.warn({ file: this.file, err: (e as Error).message }, 'snapshot damaged: starting without it');
    }
  }

  /** Saves now; returns the entries and markers written (0 when off or failed, counted). */
  save(): number {
    if (!this.file) return 0;
    try {
      const n = writeSnapshot(this.directory, this.file);
      this.counters.written++;
      this.counters.lastWrittenEntries = n;
      return n;
    } catch (e) {
      this.counters.writeErrors++;
      this.log.warn({ err: (e as Error).message, file: this.file }, 'snapshot not written');
      return 0;
    }
  }

  /** Saves every intervalSeconds (again from now when called again: a reload). */
  every(intervalSeconds: number): void {
    this.stop();
    if (!this.file) return;
    this.timer = setInterval(() => this.save(), intervalSeconds * 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
