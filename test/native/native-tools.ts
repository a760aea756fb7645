// The native test programs (native/tools, built by CMake into build-native/),
// for the tests that run them.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
export const nativeBuild = join(root, 'build-native');

/**
 * The environment for a native program: without LD_PRELOAD, which
 * `npm run test:sanitize` sets to the AddressSanitizer runtime for node (it
 * would break a ThreadSanitizer program, and slow the compiler).
 */
export function nativeToolEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.LD_PRELOAD;
  return env;
}

/** Configures build-native/ and builds one target; returns its path. */
export function buildNativeTool(target: string): string {
  const opts = { stdio: 'pipe' as const, env: nativeToolEnv() };
  execFileSync('cmake', ['-S', join(root, 'native', 'tools'), '-B', nativeBuild, '-DCMAKE_BUILD_TYPE=Release'], opts);
  execFileSync('cmake', ['--build', nativeBuild, '--target', target], opts);
  return join(nativeBuild, target);
}

/** Prints a program's output indented under the test's name. */
export function printIndented(out: string): void {
  console.log(out.trim().split('\n').map((l) => `      ${l}`).join('\n'));
}
