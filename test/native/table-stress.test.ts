// Runs native/tools/table_stress optimized, without a sanitizer (about ten
// times the operations per second of the ThreadSanitizer build): a key that
// is never removed is never missed, a read is never torn or stale, and a
// walk lists each entry once, while entries are replaced, recycled, removed,
// moved and expired all the time. native/tools/mutation-test.sh (run by CI)
// checks that this program fails on each broken variant of the table.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { haveCommand, requireOrSkip } from '../helpers/require';
import { buildNativeTool, nativeToolEnv, printIndented } from './native-tools';

describe('stress of the table, optimized build', function () {
  this.timeout(300_000);

  it('never misses a key that is in the table, and never reads one torn or stale', function () {
    requireOrSkip(this, haveCommand('cmake'), 'cmake is not installed (apt-get install cmake)');
    requireOrSkip(this, haveCommand('g++'), 'g++ is not installed');
    const bin = buildNativeTool('table_stress_fast');
    // 3 s, longer on a loaded machine until 300,000 pinned-key reads are made
    const r = spawnSync(bin, ['3', '300000'], { encoding: 'utf8', env: nativeToolEnv() });
    const out = `${r.stdout}${r.stderr}`;
    printIndented(out);
    assert.equal(r.status, 0, 'the stress program failed');
    assert.match(out, /ok: no torn, stale or missed read/);
    const retries = Number(/(\d+) read retries/.exec(out)?.[1]);
    const moved = Number(/(\d+) mobile keys moved/.exec(out)?.[1]);
    assert.ok(retries > 0, 'readers never retried: the test did not exercise the retry paths');
    assert.ok(moved > 0, 'no key moved back in its chain');
  });
});
