// The native programs of bench/responder.ts build and measure what they say:
// the load generator against the UDP echo floor reached through the
// multicast group (the responders' path), and against a real native
// responder, with every REPLY verified and decoded.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

import { addonOrSkip } from '../helpers/addon';
import { haveCommand, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const build = join(root, 'build-native');
const group = '239.255.91.9';

async function serve(cmd: string[]): Promise<ChildProcess> {
  const child = spawn(cmd[0], cmd.slice(1), { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const first = await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next();
  assert.equal(first.value, 'ready', `${cmd.join(' ')} did not start`);
  return child;
}

function load(port: number, extra: string[]): { answered: number; badReplies: number; repliesPerSecond: number } {
  const r = spawnSync(join(build, 'query_loadgen'), ['--group', group, '--port', String(port), '--keys', '1000', '--inflight', '4', '--seconds', '0.5', '--warmup', '0.1', ...extra], { encoding: 'utf8' });
  assert.equal(r.status, 0, `loadgen: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout);
}

describe('native bench programs (query_loadgen, udp_echo)', function () {
  this.timeout(300_000);

  before(function () {
    requireOrSkip(this, haveCommand('cmake'), 'cmake is not installed (apt-get install cmake)');
    requireOrSkip(this, haveCommand('g++'), 'g++ is not installed');
    execFileSync('cmake', ['-S', join(root, 'native', 'tools'), '-B', build, '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'pipe' });
    execFileSync('cmake', ['--build', build, '--target', 'query_loadgen', 'udp_echo'], { stdio: 'pipe' });
  });

  it('the echo floor answers QUERYs that came through the group', async () => {
    const port = 39000 + Math.floor(Math.random() * 500);
    const echo = await serve([join(build, 'udp_echo'), String(port), group]);
    try {
      const r = load(port, ['--raw']);
      assert.ok(r.answered > 100, `only ${r.answered} echoes`);
      assert.equal(r.badReplies, 0);
    } finally {
      echo.stdin!.end();
    }
  });

  it('against a native responder, every answer is a verified REPLY for the QUERY sent', async function () {
    addonOrSkip(this);
    const port = 39500 + Math.floor(Math.random() * 500);
    const responder = await serve([process.execPath, '--import', 'tsx', join(root, 'bench', 'fixtures', 'native-responder.ts'), group, String(port), '1000']);
    try {
      const r = load(port, ['--verify']);
      assert.ok(r.answered > 100, `only ${r.answered} REPLYs`);
      assert.equal(r.badReplies, 0);
    } finally {
      responder.stdin!.end();
    }
  });
});
