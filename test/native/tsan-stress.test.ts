// Runs native/tools/table_stress built with -fsanitize=thread (CMake): two
// writers and two readers on a small, always-full table whose entries are
// replaced, removed, moved and expired all the time, with race points that
// stretch every race window (see table_stress.cc), plus the inbound queue.
// ThreadSanitizer must report no race, and the program no torn, stale or
// missed read.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { haveCommand, requireOrSkip } from '../helpers/require';
import { buildNativeTool, nativeToolEnv, printIndented } from './native-tools';

describe('ThreadSanitizer stress of the table and the inbound queue', function () {
  this.timeout(300_000);

  it('finds no data race and no torn, stale or missed read', function () {
    requireOrSkip(this, haveCommand('cmake'), 'cmake is not installed (apt-get install cmake)');
    requireOrSkip(this, haveCommand('g++'), 'g++ is not installed');
    const bin = buildNativeTool('table_stress');
    // 4 s, longer on a loaded machine until 50,000 pinned-key reads are made
    const r = spawnSync(bin, ['4', '50000'], { encoding: 'utf8', env: nativeToolEnv({ TSAN_OPTIONS: 'halt_on_error=1 exitcode=66' }) });
    const out = `${r.stdout}${r.stderr}`;
    printIndented(out);
    assert.ok(!/ThreadSanitizer/.test(out), 'ThreadSanitizer reported a problem');
    assert.equal(r.status, 0, 'the stress program failed');
    assert.match(out, /ok: no torn, stale or missed read/);
    assert.match(out, /[1-9]\d* read retries/, 'readers never met a recycled record: the test did not exercise the retry path');
  });
});
