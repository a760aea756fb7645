// What this program is: its version (package.json), the source revision it
// was built from (dist/build-info.json, written by postbuild.ts when the
// build runs in a git checkout) and the Node.js running it. `affinityd
// --version` prints it and the affinityd_build_info metric carries it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from './package-root';

export interface BuildInfo {
  readonly version: string;
  /** Short git revision, with "-dirty" if the tree had changes; "unknown" outside a checkout. */
  readonly revision: string;
  readonly nodejs: string;
}

let cached: BuildInfo | undefined;

export function buildInfo(): BuildInfo {
  if (cached) return cached;
  const root = packageRoot();
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  let revision = 'unknown';
  const file = join(root, 'dist', 'build-info.json');
  if (existsSync(file)) {
    try {
      revision = (JSON.parse(readFileSync(file, 'utf8')) as { revision?: string }).revision || 'unknown';
    } catch {
      /* a damaged file says nothing */
    }
  }
  cached = { version: pkg.version, revision, nodejs: process.versions.node };
  return cached;
}

export const versionLine = (b: BuildInfo = buildInfo()): string => `affinityd ${b.version} (revision ${b.revision}, Node.js ${b.nodejs})`;
