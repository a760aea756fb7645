// The read-only control socket is reachable by its group (issue 13, item 2:
// the unit's RuntimeDirectoryMode=0750 on affinityd:affinityd kept
// affinityd-view members out, and the hint named the wrong group). The
// runtime directory is made as the unit says (its mode, owned by a stand-in
// affinityd user and group), the node's sockets in it; the command runs as
// an unprivileged user with and without the read-only group (setpriv).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';
import { haveCommand, isRoot, requireOrSkip } from '../helpers/require';
import { CLI } from '../helpers/run-node';

const root = join(__dirname, '..', '..');
// ids no account on a test machine has: the node's user and group, the view group, an operator
const NODE_UID = 64_901;
const NODE_GID = 64_901;
const VIEW_GID = 64_902;
const OPERATOR = 64_903;

const asUser = (uid: number, groups: number[], ...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const setpriv = [`--reuid=${uid}`, `--regid=${uid}`, groups.length ? `--groups=${groups.join(',')}` : '--clear-groups', '--inh-caps=-all'];
    execFile('setpriv', [...setpriv, ...CLI, ...args], { encoding: 'utf8', cwd: root, env: { ...process.env, HOME: '/tmp' } }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

describe('control sockets under the unit\'s runtime directory (issue 13, item 2)', function () {
  this.timeout(60_000);
  let dir = '';
  let node: AffinityNode;
  let run = '';

  before(async function () {
    addonOrSkip(this);
    requireOrSkip(this, isRoot(), 'needs root (to own files as other users and to run as them)');
    requireOrSkip(this, haveCommand('setpriv'), 'setpriv (util-linux) is not installed');
    dir = mkdtempSync(join(tmpdir(), 'affinityd-perm-'));
    chmodSync(dir, 0o755); // mkdtemp makes 0700: the path down to /run must be searchable, as /run is
    const unit = readFileSync(join(root, 'contrib', 'systemd', 'affinityd.service'), 'utf8');
    const mode = parseInt(/^RuntimeDirectoryMode=(\d+)$/m.exec(unit)![1], 8);
    run = join(dir, 'run-affinityd');
    mkdirSync(run);
    chownSync(run, NODE_UID, NODE_GID);
    chmodSync(run, mode);
    node = await createNode(
      {
        node: { id: 1 },
        cluster: { ...testGroup(), interface: '127.0.0.1' },
        sync: { enabled: false },
        endpoints: [{ name: 'lns-1', address: '198.51.100.1', port: 1701 }],
        control: { socket: join(run, 'control.sock'), readOnlySocket: join(run, 'control-ro.sock'), readOnlyGroup: String(VIEW_GID) },
      },
      { keyring: testKeyring() },
    );
    chownSync(join(run, 'control.sock'), NODE_UID, NODE_GID); // as the node's own user makes it
  });
  after(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a member of the read-only group reads through the read-only socket; it may not change anything', async () => {
    const r = await asUser(OPERATOR, [VIEW_GID], 'show', 'stats', '--socket', join(run, 'control-ro.sock'));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).node, 1);
    const c = await asUser(OPERATOR, [VIEW_GID], 'clear', '--all', '--socket', join(run, 'control-ro.sock'));
    assert.equal(c.status, 1);
    assert.match(c.stderr, /needs the admin control socket/);
  });

  it('someone outside the group is refused by the kernel, and told which group to join', async () => {
    const r = await asUser(OPERATOR, [], 'show', 'stats', '--socket', join(run, 'control-ro.sock'));
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`permission denied: .*control-ro\\.sock is \\S+:${VIEW_GID} 0660; join group ${VIEW_GID}`));
    const admin = await asUser(OPERATOR, [VIEW_GID], 'show', 'stats', '--socket', join(run, 'control.sock'));
    assert.equal(admin.status, 1, 'the view group does not open the admin socket');
    assert.match(admin.stderr, new RegExp(`control\\.sock is \\S+:${NODE_GID} 0660; join group ${NODE_GID}`));
  });

  it('a directory on the way that the user cannot enter is named as such', async () => {
    chmodSync(run, 0o750);
    try {
      const r = await asUser(OPERATOR, [VIEW_GID], 'show', 'stats', '--socket', join(run, 'control-ro.sock'));
      assert.equal(r.status, 1);
      assert.match(r.stderr, new RegExp(`cannot enter ${run.replace(/[/.]/g, '\\$&')} \\(\\S+:${NODE_GID} 0750\\)`));
    } finally {
      chmodSync(run, parseInt(/^RuntimeDirectoryMode=(\d+)$/m.exec(readFileSync(join(root, 'contrib', 'systemd', 'affinityd.service'), 'utf8'))![1], 8));
    }
  });
});
