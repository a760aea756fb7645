// Run after tsc (npm run build:ts, prepare): makes the command executable,
// so `npx affinityd` works in a checkout, and records the git revision the
// build came from in dist/build-info.json (build-info.ts reads it).
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from './package-root';

const root = packageRoot();
chmodSync(join(root, 'dist', 'src', 'cli', 'main.js'), 0o755);
let revision = 'unknown';
try {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  revision = git('rev-parse', '--short=12', 'HEAD');
  if (git('status', '--porcelain', '--untracked-files=no')) revision += '-dirty';
} catch {
  /* not a git checkout (a tarball, a package build): unknown */
}
writeFileSync(join(root, 'dist', 'build-info.json'), JSON.stringify({ revision }) + '\n');
