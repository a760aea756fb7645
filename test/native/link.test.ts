// An addon links with undefined symbols (Node supplies N-API, libuv and
// OpenSSL at load time), so a function declared in our headers and never
// defined would only fail when first called. Check that every undefined
// symbol of the binary is someone else's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { haveCommand, requireOrSkip } from '../helpers/require';

describe('the addon binary', () => {
  it('leaves no symbol of its own undefined', function () {
    const bin = join(__dirname, '..', '..', 'build', 'Release', 'affinityd.node');
    requireOrSkip(this, existsSync(bin), 'the addon is not built (npm install)');
    requireOrSkip(this, haveCommand('nm'), 'nm (binutils) is not installed');
    const undefinedSymbols = execFileSync('nm', ['-u', '-C', bin], { encoding: 'utf8' }).split('\n');
    const ours = undefinedSymbols.filter((l) => /affinityd::/.test(l));
    assert.deepEqual(ours, []);
  });
});
