// The Debian package, installed and started (issue 13, "also expected"):
// contrib/make-deb.sh builds it with dpkg-deb; `dpkg -i` installs it in a
// throwaway copy of this machine (an overlay over /, its own /run, /tmp and
// network namespace: test/fixtures/deb-overlay.sh), where its maintainer
// scripts make the user, the key and the owners; the service starts as its
// unit says (test/fixtures/run-unit.py: systemd is not PID 1 here) and
// notifies READY=1; an affinityd-view member reads through the read-only
// socket; the scrape passes promtool; SIGTERM stops it with 0; purge leaves
// nothing. And contrib/install.sh, as root on an appliance, the same way.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { haveCommand, isRoot, requireOrSkip } from '../helpers/require';

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures');

/** Runs a fixture script inside a throwaway overlay copy of this machine; returns its FACT lines. */
function inOverlay(work: string, script: string, ...args: string[]): { facts: Map<string, string>; output: string; status: number | null } {
  const overlay = mkdtempSync(join(work, 'overlay-')); // a fresh copy for each scenario
  const r = spawnSync('unshare', ['--mount', '--net', '--propagation', 'private', 'bash', join(fixtures, 'deb-overlay.sh'), overlay, join(fixtures, script), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  const output = r.stdout + r.stderr;
  const facts = new Map<string, string>();
  for (const m of output.matchAll(/^FACT (\S+) ?(.*)$/gm)) facts.set(m[1], m[2]);
  return { facts, output, status: r.status };
}

function overlayUnavailable(): string | undefined {
  if (!isRoot()) return 'needs root (mount namespaces, an overlay, chroot)';
  for (const c of ['unshare', 'chroot', 'dpkg-deb', 'python3', 'promtool', 'ip']) if (!haveCommand(c)) return `${c} is not installed (apt-get install util-linux coreutils dpkg-dev python3 prometheus iproute2)`;
  const probe = spawnSync('unshare', ['--mount', 'sh', '-c', 'd=$(mktemp -d -p /var/tmp) && mkdir $d/u $d/w $d/m && mount -t overlay o -o lowerdir=/,upperdir=$d/u,workdir=$d/w $d/m; r=$?; umount $d/m 2>/dev/null; rm -rf $d; exit $r'], { encoding: 'utf8' });
  if (probe.status !== 0) return `an overlay over / cannot be mounted here: ${probe.stderr.trim()}`;
  return undefined;
}

describe('the Debian package and install.sh on an appliance, installed and started (issue 13)', function () {
  this.timeout(600_000);
  let work = '';

  before(function () {
    const why = overlayUnavailable();
    requireOrSkip(this, !why, why ?? '');
    requireOrSkip(this, existsSync(join(root, 'build/Release/affinityd.node')), 'the addon is not built');
    // not under /tmp: the overlay gives the copy a fresh /tmp, and the package must be visible inside
    work = mkdtempSync('/var/tmp/affinityd-deb-');
  });
  after(() => work && rmSync(work, { recursive: true, force: true }));

  it('make-deb.sh builds a .deb; dpkg -i installs it; the service starts and answers; SIGTERM stops it with 0; purge leaves nothing', () => {
    spawnSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
    const b = spawnSync('bash', [join(root, 'contrib', 'make-deb.sh'), '--out', work], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    const deb = b.stdout.trim();
    assert.match(deb, /affinityd_\d+\.\d+\.\d+-1_\w+\.deb$/);
    const contents = spawnSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
    for (const f of ['./usr/bin/affinityd', './lib/systemd/system/affinityd.service', './usr/lib/sysusers.d/affinityd.conf', './usr/lib/tmpfiles.d/affinityd.conf',
      './usr/share/man/man8/affinityd.8.gz', './usr/share/doc/affinityd/copyright', './usr/share/affinityd/prometheus/affinityd.rules.yml', './etc/affinityd/affinityd.yaml']) {
      assert.ok(contents.includes(f), `the package has ${f}`);
    }
    assert.doesNotMatch(contents, /\.\/usr\/lib\/affinityd\/dist\/test\//, 'no compiled tests in the package');
    assert.doesNotMatch(contents, /^\S+ (?!root\/root)/m, 'every file owned by root in the archive');

    const { facts, output, status } = inOverlay(work, 'deb-inside.sh', deb, fixtures);
    assert.equal(status, 0, output);
    const f = (k: string) => facts.get(k) ?? assert.fail(`no fact ${k}: ${output}`);
    assert.match(f('installed'), /^install ok installed \d/);
    assert.equal(f('postinst-says'), '1', 'postinst says what to set before starting');
    assert.equal(f('user'), 'affinityd:/var/lib/affinityd:/usr/sbin/nologin');
    assert.equal(f('view-group'), 'affinityd-view:affinityd');
    assert.equal(f('key'), 'affinityd:affinityd 600 1', 'a new key, the node\'s alone');
    assert.equal(f('config'), 'root:affinityd 640');
    assert.equal(f('state'), 'affinityd:affinityd 750');
    assert.equal(f('check-unset'), '1 1', 'as shipped node.id is unset, and check-config says so');
    assert.match(f('check-set'), /good\. node 1/);
    assert.match(f('ready'), /^NOTIFY READY=1 \| STATUS=ready/);
    assert.equal(f('process-user'), 'affinityd');
    assert.equal(f('sockets'), '/run/affinityd affinityd:affinityd 755;/run/affinityd/control.sock affinityd:affinityd 660;/run/affinityd/control-ro.sock affinityd:affinityd-view 660;');
    assert.equal(f('stats-node'), '1', 'an affinityd-view member reads through the read-only socket');
    assert.equal(f('operator-clear'), '1 1', 'and may not clear');
    assert.match(f('build-info'), /^affinityd_build_info\{version="\d+\.\d+\.\d+",revision="[^"]+",nodejs="[^"]+"\} 1$/);
    assert.equal(f('promtool'), 'clean');
    assert.equal(f('readyz'), '200');
    assert.equal(f('stopped'), 'EXIT 0 1', 'SIGTERM: exit 0, STOPPING=1 sent');
    assert.equal(f('snapshot'), 'affinityd:affinityd', 'the table saved at stop');
    assert.equal(f('purged'), 'done', 'purge removed the program, /etc/affinityd and the state');
  });

  it('install.sh as root on an appliance: user and groups from sysusers.d, owners from tmpfiles.d, units in /usr/local/lib; the service starts', () => {
    const { facts, output, status } = inOverlay(work, 'install-inside.sh', root, fixtures);
    assert.equal(status, 0, output);
    const f = (k: string) => facts.get(k) ?? assert.fail(`no fact ${k}: ${output}`);
    assert.equal(f('user'), 'affinityd:/var/lib/affinityd:/usr/sbin/nologin');
    assert.equal(f('view-group'), 'affinityd-view:affinityd');
    assert.equal(f('key'), 'affinityd:affinityd 600');
    assert.equal(f('config'), 'root:affinityd 640');
    assert.equal(f('state'), 'affinityd:affinityd 750');
    assert.equal(f('units').trim(), 'affinityd-capture@.service affinityd.service');
    assert.equal(f('etc-units'), '0', '/etc/systemd/system is the administrator\'s');
    assert.match(f('ready'), /^NOTIFY READY=1/);
    assert.equal(f('stats-node'), '2');
    assert.equal(f('stopped'), 'EXIT 0');
  });
});
