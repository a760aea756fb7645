// Runs native/tools/splice_pump_test built with -fsanitize=thread (CMake):
// the front ends' splice pump (native/splice_pump.h) without Node, 16 echo
// calls at once checked octet for octet, a close, an idle time-out and a stop
// with a call open, then no fd left. ThreadSanitizer must report no race.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { haveCommand, requireOrSkip } from '../helpers/require';
import { buildNativeTool, nativeToolEnv, printIndented } from './native-tools';

describe('the splice pump on its own (ThreadSanitizer)', function () {
  this.timeout(300_000);

  it('carries calls intact, ends them as asked, leaves no fd, and has no data race', function () {
    requireOrSkip(this, haveCommand('cmake'), 'cmake is not installed (apt-get install cmake)');
    requireOrSkip(this, haveCommand('g++'), 'g++ is not installed');
    const bin = buildNativeTool('splice_pump_test');
    const r = spawnSync(bin, [], { encoding: 'utf8', env: nativeToolEnv({ TSAN_OPTIONS: 'halt_on_error=1 exitcode=66' }) });
    const out = `${r.stdout}${r.stderr}`;
    printIndented(out);
    assert.ok(!/ThreadSanitizer/.test(out), 'ThreadSanitizer reported a problem');
    assert.equal(r.status, 0, 'the test program failed');
    assert.match(out, /^ok: /m);
  });
});
