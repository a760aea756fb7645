// The affinityd command as a stranger meets it (issue 13, item 5 and "also
// expected"): every command takes --help and does nothing else with it
// (check-config opened a file named --help; bench started a full run);
// --version; usage errors exit 2, "no entry" exits 3 (it exited 1 like an
// error); `npx affinityd` works in a built checkout (the bin file was not
// executable); the man page and the bash completion name every command and
// option the program has.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { COMMANDS, EXIT_STATUS } from '../../src/cli/usage';
import { type AffinityNode, createNode } from '../../src/daemon/create-node';
import { addonOrSkip } from '../helpers/addon';
import { testGroup, testKeyring } from '../helpers/loopback';
import { haveCommand, requireOrSkip } from '../helpers/require';
import { CLI } from '../helpers/run-node';

const root = join(__dirname, '..', '..');
const run = (...args: string[]) => spawnSync(CLI[0], [...CLI.slice(1), ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
const runAsync = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    execFile(CLI[0], [...CLI.slice(1), ...args], { encoding: 'utf8', cwd: root }, (err, stdout, stderr) =>
      resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
/** The long option names of a command, from its help table ("-c, --config FILE" -> --config). */
const optionsOf = (name: string) => COMMANDS.find((c) => c.name === name)!.options.map(([o]) => /--[\w-]+/.exec(o)![0]);

describe('the affinityd command: help, version, exit statuses, man page, completion (issue 13)', function () {
  this.timeout(120_000);

  it('every command answers --help and -h with its usage, exit 0, and does nothing else', () => {
    for (const c of COMMANDS) {
      for (const flag of ['run', 'show', 'capture'].includes(c.name) ? ['--help', '-h'] : ['--help']) {
        const r = run(c.name, flag);
        assert.equal(r.status, 0, `${c.name} ${flag}: ${r.stderr}`);
        assert.match(r.stdout, new RegExp(`^usage: affinityd ${c.name}`), `${c.name} ${flag}`);
        for (const o of optionsOf(c.name)) assert.ok(r.stdout.includes(o), `${c.name} --help lists ${o}`);
      }
    }
    // the two the issue found: no file opened, no benchmark started
    const cc = run('check-config', '--help');
    assert.doesNotMatch(cc.stdout + cc.stderr, /cannot read|ENOENT/);
    const t0 = Date.now();
    const b = run('bench', '--help');
    assert.equal(b.status, 0);
    assert.doesNotMatch(b.stdout, /affinityd benchmarks/);
    assert.ok(Date.now() - t0 < 20_000);
    // help COMMAND says the same
    assert.equal(run('help', 'clear').stdout, run('clear', '--help').stdout);
  });

  it('--version and version print the version, the revision and Node.js', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    for (const a of ['--version', '-V', 'version']) {
      const r = run(a);
      assert.equal(r.status, 0);
      assert.match(r.stdout, new RegExp(`^affinityd ${pkg.version.replace(/\./g, '\\.')} \\(revision \\S+, Node\\.js ${process.versions.node.replace(/\./g, '\\.')}\\)\\n$`));
    }
  });

  it('usage errors exit 2 with the command\'s usage; the overall usage lists every command and exit status', () => {
    for (const args of [['frobnicate'], ['show', '--bogus'], ['check-config'], ['run'], ['clear'], ['capture'], ['show', 'everything'], ['log-level']]) {
      const r = run(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.status} ${r.stderr}`);
      assert.match(r.stderr, /usage: affinityd/, args.join(' '));
    }
    const all = run('help');
    assert.equal(all.status, 0);
    for (const c of COMMANDS) assert.match(all.stdout, new RegExp(`^  ${c.name} `, 'm'));
    for (const [n] of EXIT_STATUS) assert.match(all.stdout, new RegExp(`^  ${n}  `, 'm'));
    assert.equal(run().status, 2, 'no command at all');
  });

  describe('against a node', () => {
    let dir = '';
    let node: AffinityNode;
    let socket = '';
    before(async function () {
      addonOrSkip(this);
      dir = mkdtempSync(join(tmpdir(), 'affinityd-cli-'));
      socket = join(dir, 'control.sock');
      node = await createNode(
        { node: { id: 1 }, cluster: { ...testGroup(), interface: '127.0.0.1' }, sync: { enabled: false }, endpoints: [{ name: 'lns-1', address: '198.51.100.1', port: 1701 }], control: { socket } },
        { keyring: testKeyring() },
      );
    });
    after(async () => {
      await node?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('show entry: 0 with the entry, 3 when the node holds none (not 1, which is an error), 1 when the node cannot be reached', async () => {
      await node.route('2:192.0.2.7/alice');
      const found = await runAsync('show', 'entry', '2:192.0.2.7/alice', '--socket', socket);
      assert.equal(found.status, 0, found.stderr);
      assert.match(found.stdout, /endpoint {3}lns-1=198\.51\.100\.1:1701/);
      const none = await runAsync('show', 'entry', '2:192.0.2.7/nobody', '--socket', socket);
      assert.equal(none.status, 3);
      assert.match(none.stdout, /no entry/);
      const noneJson = await runAsync('show', 'entry', '2:192.0.2.7/nobody', '--json', '--socket', socket);
      assert.equal(noneJson.status, 3);
      assert.equal(noneJson.stdout.trim(), 'null');
      const down = await runAsync('show', 'entry', '2:192.0.2.7/alice', '--socket', join(dir, 'nobody.sock'));
      assert.equal(down.status, 1);
      assert.match(down.stderr, /no such socket/);
    });
  });

  it('npx affinityd works in a built checkout: the command file is executable', () => {
    execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
    const bin = join(root, 'dist', 'src', 'cli', 'main.js');
    assert.ok((statSync(bin).mode & 0o111) !== 0, 'dist/src/cli/main.js is executable');
    const r = spawnSync('npx', ['--no-install', 'affinityd', '--version'], { cwd: root, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^affinityd \d+\.\d+\.\d+ \(revision/);
    assert.match(JSON.parse(readFileSync(join(root, 'dist', 'build-info.json'), 'utf8')).revision, /^[0-9a-f]{12}(-dirty)?$|^unknown$/);
  });

  it('the man page renders without warnings and names every command, option and exit status', function () {
    requireOrSkip(this, haveCommand('groff'), 'groff is not installed (apt-get install groff-base)');
    const page = join(root, 'contrib', 'man', 'affinityd.8');
    const r = spawnSync('groff', ['-man', '-ww', '-z', page], { encoding: 'utf8' });
    assert.equal(r.status, 0);
    assert.equal(r.stderr, '', r.stderr);
    const text = spawnSync('groff', ['-man', '-Tutf8', '-P', '-c', '-P', '-b', '-P', '-u', page], { encoding: 'utf8' }).stdout.replace(/\u2010|\u2011/g, '-');
    for (const c of COMMANDS) {
      assert.ok(text.includes(c.name), `the man page names ${c.name}`);
      for (const o of optionsOf(c.name)) assert.ok(text.includes(o), `the man page names ${c.name} ${o}`);
    }
    for (const [n] of EXIT_STATUS) assert.match(text, new RegExp(`^ {7}${n}\\s`, 'm'), `exit status ${n}`);
  });

  it('bash completion completes every command, and every option of each', function () {
    requireOrSkip(this, haveCommand('bash'), 'bash is not installed');
    const script = join(root, 'contrib', 'bash-completion', 'affinityd');
    const complete = (...words: string[]) =>
      execFileSync('bash', ['-c', `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _affinityd; printf '%s\\n' "\${COMPREPLY[@]}"`, script, ...words], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean);
    assert.deepEqual(complete('affinityd', '').filter((w) => !w.startsWith('-')).sort(), COMMANDS.map((c) => c.name).sort());
    for (const c of COMMANDS) {
      const words = c.name === 'show' ? ['affinityd', 'show', 'entries', '--'] : c.name === 'log-level' ? ['affinityd', 'log-level', 'info', '--'] : ['affinityd', c.name, '--'];
      const got = complete(...words);
      for (const o of optionsOf(c.name)) assert.ok(got.includes(o), `completion of ${c.name} offers ${o}: ${got.join(' ')}`);
      if (c.name !== 'help' && c.name !== 'version') assert.ok(got.includes('--help'), `${c.name} --help`);
    }
    assert.deepEqual(complete('affinityd', 'show', ''), ['entries', 'entry', 'peers', 'splits', 'stats']);
    assert.deepEqual(complete('affinityd', 'log-level', 'w'), ['warn']);
    assert.deepEqual(complete('affinityd', 'demo', '--policy', 'r'), ['rendezvous', 'round-robin']);
  });
});
