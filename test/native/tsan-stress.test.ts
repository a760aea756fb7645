// Runs native/tools/table_stress (built with -fsanitize=thread by CMake):
// two writers and two readers on a small, always-full table, plus the
// inbound queue. ThreadSanitizer must report no race and the program no
// torn or inconsistent read.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { haveCommand, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const build = join(root, 'build-native');

describe('ThreadSanitizer stress of the table and the inbound queue', function () {
  this.timeout(300_000);

  it('finds no data race and no torn read', function () {
    requireOrSkip(this, haveCommand('cmake'), 'cmake is not installed (apt-get install cmake)');
    requireOrSkip(this, haveCommand('g++'), 'g++ is not installed');
    execFileSync('cmake', ['-S', join(root, 'native', 'tools'), '-B', build, '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: 'pipe' });
    execFileSync('cmake', ['--build', build, '--target', 'table_stress'], { stdio: 'pipe' });
    const r = spawnSync(join(build, 'table_stress'), ['4'], {
      encoding: 'utf8',
      env: { ...process.env, TSAN_OPTIONS: 'halt_on_error=1 exitcode=66' },
    });
    const out = `${r.stdout}${r.stderr}`;
    console.log(out.trim().split('\n').map((l) => `      ${l}`).join('\n'));
    assert.ok(!/ThreadSanitizer/.test(out), 'ThreadSanitizer reported a problem');
    assert.equal(r.status, 0, 'the stress program failed');
    assert.match(out, /ok: no torn or inconsistent read/);
    assert.match(out, /[1-9]\d* read retries/, 'readers never met a recycled record: the test did not exercise the retry path');
  });
});
