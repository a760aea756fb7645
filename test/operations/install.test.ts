// Packaging (issues 7 and 13): the systemd units pass `systemd-analyze
// verify` (judged on our units alone: other packages' units may warn), and
// contrib/install.sh lays out a working installation under a staging root
// without touching the build host's users or owners (the image's
// systemd-sysusers and systemd-tmpfiles set them: run here against the
// staging root), refuses a Node.js older than 20, keeps the configuration,
// the key and the administrator's drop-ins on a re-run, and installs the
// units where a re-run may replace them.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { haveCommand, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const units = ['affinityd.service', 'affinityd-capture@.service'];

/** systemd-analyze verify's findings about our unit files, not about other units it loads on the way. */
export function ownFindings(stderr: string, unitFiles: string[]): string[] {
  return stderr
    .split('\n')
    .filter((l) => l.trim())
    .filter((l) => {
      const m = /^(\/[^:]+):\d+:/.exec(l); // "/lib/systemd/system/other.service:23: ..." is about another unit
      return !m || unitFiles.includes(m[1]);
    });
}

describe('packaging: systemd units and the install script', function () {
  this.timeout(240_000);
  let dest = '';
  let bin = '';
  before(function () {
    requireOrSkip(this, existsSync(join(root, 'build/Release/affinityd.node')), 'the addon is not built');
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' }); // install what is checked out now
    bin = mkdtempSync(join(tmpdir(), 'affinityd-fakebin-'));
  });
  afterEach(() => {
    if (dest) rmSync(dest, { recursive: true, force: true });
    dest = '';
  });
  after(() => bin && rmSync(bin, { recursive: true, force: true }));

  /** Commands that must not run on the build host: each records that it was called. */
  const spies = (names: string[]) => {
    const log = join(bin, 'called');
    for (const n of names) {
      writeFileSync(join(bin, n), `#!/bin/sh\necho "${n} $*" >> ${log}\n`);
      chmodSync(join(bin, n), 0o755);
    }
    return () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  };
  const install = (...args: string[]) =>
    spawnSync('bash', [join(root, 'contrib/install.sh'), ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });

  it('the units pass systemd-analyze verify (our units judged, not others), with Type=notify, a watchdog, a dedicated user and no capabilities', function () {
    requireOrSkip(this, haveCommand('systemd-analyze'), 'systemd-analyze is not installed (apt-get install systemd)');
    for (const unit of units) {
      const file = join(root, 'contrib/systemd', unit);
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${unit}: ${r.stderr}`);
      assert.deepEqual(ownFindings(r.stderr, [file]), [], `${unit}: ${r.stderr}`);
    }
    const u = readFileSync(join(root, 'contrib/systemd/affinityd.service'), 'utf8');
    for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=30', 'User=affinityd', 'CapabilityBoundingSet=\n', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ExecReload=/bin/kill -HUP $MAINPID']) {
      assert.ok(u.includes(line), `affinityd.service lacks ${line.trim()}`);
    }
    // the read-only socket's group must be able to reach it (issue 13, item 2)
    const mode = parseInt(/^RuntimeDirectoryMode=(\d+)$/m.exec(u)![1], 8);
    assert.equal(mode & 0o005, 0o005, 'the runtime directory is searchable by affinityd-view members');
    const c = readFileSync(join(root, 'contrib/systemd/affinityd-capture@.service'), 'utf8');
    assert.match(c, /^AmbientCapabilities=CAP_NET_RAW$/m);
    assert.match(c, /^CapabilityBoundingSet=CAP_NET_RAW$/m);
    assert.match(c, /^UMask=0077$/m, 'captures hold client identities: written 0600');
  });

  it('the filter keeps our findings and drops other units\' warnings', () => {
    const stderr = '/lib/systemd/system/freeradius.service:23: Unit uses MemoryLimit=; please use MemoryMax= instead.\n/x/affinityd.service:5: Unknown key name \'Foo\'\nSomething without a file\n';
    assert.deepEqual(ownFindings(stderr, ['/x/affinityd.service']), ["/x/affinityd.service:5: Unknown key name 'Foo'", 'Something without a file']);
  });

  it('install.sh --root stages a working tree and touches no user or owner of the build host; the image\'s systemd sets them', function () {
    requireOrSkip(this, haveCommand('systemd-sysusers') && haveCommand('systemd-tmpfiles'), 'systemd-sysusers and systemd-tmpfiles are needed (apt-get install systemd)');
    dest = mkdtempSync(join(tmpdir(), 'affinityd-install-'));
    const called = spies(['useradd', 'groupadd', 'chown', 'systemd-sysusers', 'systemd-tmpfiles', 'systemctl']);
    const r = install('--root', dest, '--node', process.execPath);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.equal(called(), '', 'no user, group or owner changed on the build host');
    const etc = join(dest, 'etc/affinityd');
    assert.equal(statSync(join(etc, 'affinityd.yaml')).mode & 0o777, 0o640);
    assert.equal(statSync(join(etc, 'cluster.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(etc, 'cluster.key')).uid, process.getuid!(), 'left as made: the first boot sets the owner');
    assert.match(readFileSync(join(etc, 'cluster.key'), 'utf8'), /^1 [0-9a-f]{64} send\n$/);
    for (const u of units) assert.ok(existsSync(join(dest, 'usr/local/lib/systemd/system', u)), u);
    assert.ok(!existsSync(join(dest, 'etc/systemd/system/affinityd.service')), '/etc/systemd/system is left to the administrator');
    assert.match(readFileSync(join(dest, 'usr/local/lib/systemd/system/affinityd.service'), 'utf8'), new RegExp(`^ExecStart=${process.execPath} /opt/affinityd/dist/src/cli/main\\.js run`, 'm'));
    assert.ok(existsSync(join(dest, 'opt/affinityd/build/Release/affinityd.node')));
    assert.ok(!existsSync(join(dest, 'opt/affinityd/node_modules/mocha')), 'no dev dependencies');
    assert.ok(existsSync(join(dest, 'usr/local/share/man/man8/affinityd.8')));
    assert.ok(existsSync(join(dest, 'usr/local/share/bash-completion/completions/affinityd')));
    const cfg = readFileSync(join(etc, 'affinityd.yaml'), 'utf8');
    assert.match(cfg, /^ {2}socket: \/run\/affinityd\/control\.sock/m);
    assert.match(cfg, /^ {2}snapshotFile: \/var\/lib\/affinityd\/table\.snap/m);
    assert.match(cfg, /^ {2}# id: 1 .*required/m, 'node.id is left for the operator to set');

    // what the image's first boot does: sysusers and tmpfiles, against the staged root, with the real tools
    const real = (cmd: string) => spawnSync(cmd, [`--root=${dest}`, ...(cmd === 'systemd-tmpfiles' ? ['--create'] : [])], { encoding: 'utf8', env: { ...process.env, PATH: process.env.PATH } });
    for (const cmd of ['systemd-sysusers', 'systemd-tmpfiles']) {
      const x = real(cmd);
      assert.equal(x.status, 0, `${cmd}: ${x.stderr}`);
    }
    const passwd = readFileSync(join(dest, 'etc/passwd'), 'utf8');
    const uid = Number(/^affinityd:x:(\d+):/m.exec(passwd)![1]);
    const group = readFileSync(join(dest, 'etc/group'), 'utf8');
    assert.match(group, /^affinityd-view:x:\d+:affinityd$/m);
    assert.equal(statSync(join(etc, 'cluster.key')).uid, uid, 'the key belongs to the image\'s affinityd');
    assert.equal(statSync(join(etc, 'affinityd.yaml')).gid, Number(/^affinityd:x:(\d+):/m.exec(group)![1]));
    assert.equal(statSync(join(dest, 'var/lib/affinityd')).uid, uid);

    // the installed program checks the installed configuration once node.id is set (key path moved under the staging root)
    const staged = join(dest, 'check.yaml');
    writeFileSync(staged, cfg.replace('/etc/affinityd/cluster.key', join(etc, 'cluster.key')).replace(/^ {2}# id: 1 .*$/m, '  id: 7'));
    const check = spawnSync('node', [join(dest, 'opt/affinityd/dist/src/cli/main.js'), 'check-config', '--offline', staged], { encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /good .*node 7/);
    const unset = spawnSync('node', [join(dest, 'opt/affinityd/dist/src/cli/main.js'), 'check-config', '--offline', join(etc, 'affinityd.yaml')], { encoding: 'utf8' });
    assert.equal(unset.status, 1);
    assert.match(unset.stderr, /node\.id: required/);
  });

  it('a re-run keeps the configuration, the key and the administrator\'s drop-in, replaces the units, and points out an old unit in /etc', () => {
    dest = mkdtempSync(join(tmpdir(), 'affinityd-install-'));
    assert.equal(install('--root', dest, '--node', process.execPath).status, 0);
    const etc = join(dest, 'etc/affinityd');
    writeFileSync(join(etc, 'affinityd.yaml'), readFileSync(join(etc, 'affinityd.yaml'), 'utf8') + '\n# edited\n');
    const key = readFileSync(join(etc, 'cluster.key'), 'utf8');
    const dropin = join(dest, 'etc/systemd/system/affinityd.service.d/override.conf');
    mkdirSync(join(dropin, '..'), { recursive: true });
    writeFileSync(dropin, '[Service]\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n');
    writeFileSync(join(dest, 'etc/systemd/system/affinityd-capture@.service'), '# an old copy\n');
    const unit = join(dest, 'usr/local/lib/systemd/system/affinityd.service');
    writeFileSync(unit, '# stale\n');
    const again = install('--root', dest, '--node', process.execPath);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /kept .*affinityd\.yaml/);
    assert.match(readFileSync(join(etc, 'affinityd.yaml'), 'utf8'), /# edited\n$/);
    assert.equal(readFileSync(join(etc, 'cluster.key'), 'utf8'), key);
    assert.equal(readFileSync(dropin, 'utf8'), '[Service]\nAmbientCapabilities=CAP_NET_BIND_SERVICE\n', 'the drop-in is the administrator\'s');
    assert.match(readFileSync(unit, 'utf8'), /^Type=notify$/m, 'the unit is ours to replace');
    assert.match(readFileSync(unit, 'utf8'), /systemctl edit affinityd/, 'and it says how to change it');
    assert.equal(readFileSync(join(dest, 'etc/systemd/system/affinityd-capture@.service'), 'utf8'), '# an old copy\n', 'a unit in /etc is never overwritten');
    assert.match(again.stderr, /affinityd-capture@\.service .* overrides .*drop-in/);
  });

  it('refuses a Node.js older than 20, saying which it found and what is needed', () => {
    // the image's /usr/bin/node (what the units run) is Debian 12's own
    dest = mkdtempSync(join(tmpdir(), 'affinityd-install-'));
    mkdirSync(join(dest, 'usr/bin'), { recursive: true });
    writeFileSync(join(dest, 'usr/bin/node'), '#!/bin/sh\nprintf 18.20.4\n');
    chmodSync(join(dest, 'usr/bin/node'), 0o755);
    const r = install('--root', dest);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is Node\.js 18\.20\.4: affinityd needs Node\.js 20 or later/);
    assert.ok(!existsSync(join(dest, 'opt/affinityd')), 'nothing installed');
  });
});
