// Tests that need root, a system package or the addon skip with a printed
// reason on a bare machine; CI sets AFFINITYD_REQUIRE_ALL=1 and then every
// such skip is a failure instead.
import { execFileSync } from 'node:child_process';

export const REQUIRE_ALL = process.env.AFFINITYD_REQUIRE_ALL === '1';

export function requireOrSkip(ctx: Mocha.Context, ok: boolean, reason: string): void {
  if (ok) return;
  if (REQUIRE_ALL) throw new Error(`AFFINITYD_REQUIRE_ALL=1 and this test cannot run: ${reason}`);
  console.log(`      skipped: ${reason}`);
  ctx.skip();
}

export function haveCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;
