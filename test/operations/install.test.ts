// Packaging (issue 7): the systemd units pass `systemd-analyze verify`, and
// contrib/install.sh lays out a working installation under a staging root.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { haveCommand, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');

describe('packaging: systemd units and the install script', function () {
  this.timeout(180_000);

  it('the units pass systemd-analyze verify, with Type=notify, a watchdog, a dedicated user and no capabilities', function () {
    requireOrSkip(this, haveCommand('systemd-analyze'), 'systemd-analyze is not installed (apt-get install systemd)');
    for (const unit of ['affinityd.service', 'affinityd-capture@.service']) {
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(root, 'contrib/systemd', unit)], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
      assert.equal(r.stderr.trim(), '', `${unit}: ${r.stderr}`);
    }
    const u = readFileSync(join(root, 'contrib/systemd/affinityd.service'), 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=30', 'User=affinityd', 'CapabilityBoundingSet=\n', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      assert.ok(u.includes(line), `affinityd.service lacks ${line.trim()}`);
    }
    const c = readFileSync(join(root, 'contrib/systemd/affinityd-capture@.service'), 'utf8');
    assert.match(c, /^AmbientCapabilities=CAP_NET_RAW$/m);
    assert.match(c, /^CapabilityBoundingSet=CAP_NET_RAW$/m);
  });

  it('install.sh --root lays out program, command, config (0640), key (0600) and units; the result runs', function () {
    requireOrSkip(this, existsSync(join(root, 'build/Release/affinityd.node')), 'the addon is not built');
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' }); // install what is checked out now
    const dest = mkdtempSync(join(tmpdir(), 'affinityd-install-'));
    try {
      const r = spawnSync('bash', [join(root, 'contrib/install.sh'), '--root', dest, '--no-users'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr + r.stdout);
      const etc = join(dest, 'etc/affinityd');
      assert.equal(statSync(join(etc, 'affinityd.yaml')).mode & 0o777, 0o640);
      assert.equal(statSync(join(etc, 'cluster.key')).mode & 0o777, 0o600);
      assert.match(readFileSync(join(etc, 'cluster.key'), 'utf8'), /^1 [0-9a-f]{64} send\n$/);
      assert.ok(existsSync(join(dest, 'etc/systemd/system/affinityd.service')));
      assert.ok(existsSync(join(dest, 'opt/affinityd/build/Release/affinityd.node')));
      assert.ok(!existsSync(join(dest, 'opt/affinityd/node_modules/mocha')), 'no dev dependencies');
      const cfg = readFileSync(join(etc, 'affinityd.yaml'), 'utf8');
      assert.match(cfg, /^ {2}socket: \/run\/affinityd\/control\.sock/m);
      assert.match(cfg, /^ {2}snapshotFile: \/var\/lib\/affinityd\/table\.snap/m);
      // the installed program checks the installed configuration (key path moved under the staging root)
      const staged = join(dest, 'check.yaml');
      writeFileSync(staged, cfg.replace('/etc/affinityd/cluster.key', join(etc, 'cluster.key')));
      const check = spawnSync('node', [join(dest, 'opt/affinityd/dist/src/cli/main.js'), 'check-config', staged], { encoding: 'utf8' });
      assert.equal(check.status, 0, check.stderr);
      assert.match(check.stdout, /good\. node 1/);
      // a second run keeps the configuration and the key
      const key = readFileSync(join(etc, 'cluster.key'), 'utf8');
      const again = spawnSync('bash', [join(root, 'contrib/install.sh'), '--root', dest, '--no-users'], { encoding: 'utf8' });
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stdout, /kept .*affinityd\.yaml/);
      assert.equal(readFileSync(join(etc, 'cluster.key'), 'utf8'), key);
    } finally {
      rmSync(dest, { recursive: true, force: true });
    }
  });
});
