import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The directory of affinityd's package.json, from source (tsx) or from dist/. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'proto', 'affinity.proto'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`affinityd: package root not found above ${__dirname}`);
    dir = up;
  }
}
