/**
 * The setup scripts' apt behaviour, run for real against a fake apt: a temporary apt
 * configuration (APT_CONFIG, as apt-config reads it) with sources in both formats, and an
 * `apt-get` on PATH that records what it was asked and can hold a lock like unattended-upgrades.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

const root = path.resolve(import.meta.dirname, '..');

/** apt-get: logs its arguments; `update` fails with apt's lock message while FAKE_LOCKED_UPDATES > 0; `source` keeps the list it was given and leaves an orig tarball. */
const FAKE_APT_GET = `#!/usr/bin/env bash
printf '%s\\n' "$*" >>"$FAKE/apt-get.log"
for a in "$@"; do
  case "$a" in Dir::Etc::SourceList=*) cp "\${a#*=}" "$FAKE/sources.list.seen" ;; esac
done
case " $* " in
  *" update "*)
    n=$(cat "$FAKE/locked" 2>/dev/null || echo "\${FAKE_LOCKED_UPDATES:-0}")
    if [ "$n" -gt 0 ]; then
      echo $((n - 1)) >"$FAKE/locked"
      echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)" >&2
      exit 100
    fi ;;
  *" source "*)
    pkg="\${*: -1}"
    mkdir -p "$pkg-1.0" && echo upstream >"$pkg-1.0/README" && tar -czf "\${pkg}_1.0.orig.tar.gz" "$pkg-1.0" ;;
esac
`;

interface Fake {
  dir: string;
  env: NodeJS.ProcessEnv;
  aptCalls(): string[];
}

/** A fake machine: apt-get, dpkg-query (nothing installed), sudo, a quick sleep, and an apt configuration of its own. */
function fakeMachine(
  t: { teardown(fn: () => unknown): void },
  sources: { list?: string; parts?: Record<string, string> },
  env: Record<string, string> = {},
): Fake {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-apt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'bin');
  const etc = path.join(dir, 'etc', 'apt');
  for (const d of [bin, path.join(etc, 'sources.list.d'), path.join(etc, 'apt.conf.d')]) mkdirSync(d, { recursive: true });
  const tool = (name: string, body: string) => {
    writeFileSync(path.join(bin, name), body);
    chmodSync(path.join(bin, name), 0o755);
  };
  tool('apt-get', FAKE_APT_GET);
  tool('dpkg-query', '#!/bin/sh\nexit 1\n');
  tool('sudo', '#!/bin/sh\nexec "$@"\n');
  tool('sleep', '#!/bin/sh\nexec /bin/sleep 0.2\n');
  if (sources.list !== undefined) writeFileSync(path.join(etc, 'sources.list'), sources.list);
  for (const [name, text] of Object.entries(sources.parts ?? {})) writeFileSync(path.join(etc, 'sources.list.d', name), text);
  writeFileSync(path.join(dir, 'apt.conf'), `Dir::Etc "${etc}/";\n`);
  return {
    dir,
    env: {
      ...process.env,
      PATH: `${bin}:${process.env['PATH']}`,
      FAKE: dir,
      APT_CONFIG: path.join(dir, 'apt.conf'),
      LESSONCAST_CACHE_DIR: path.join(dir, 'cache'),
      ...env,
    },
    aptCalls: () =>
      existsSync(path.join(dir, 'apt-get.log')) ? readFileSync(path.join(dir, 'apt-get.log'), 'utf8').trim().split('\n') : [],
  };
}

const bash = (script: string, env: NodeJS.ProcessEnv, args: string[] = []) =>
  spawnSync('bash', ['-c', script, 'test', ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });

/** A data centre that reaches only its own mirror, in both formats, beside what must be left out. */
const DATA_CENTRE = {
  list: [
    '# deb http://commented.example/debian trixie main',
    'deb [arch=amd64 signed-by=/etc/keys/dc.gpg] http://mirror.dc.example/debian/ trixie main contrib',
    'deb http://mirror.dc.example/debian-security trixie-security main',
    'deb https://vendor.example/apt nodistro main',
    '',
  ].join('\n'),
  parts: {
    'dc.sources': [
      'Types: deb',
      '# a comment inside the stanza',
      'URIs: http://mirror2.dc.example/debian',
      ' http://mirror3.dc.example/debian',
      'Suites: trixie trixie-updates',
      'Components: main non-free-firmware',
      'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
      '',
      'Types: deb',
      'URIs: http://disabled.example/debian',
      'Suites: trixie',
      'Components: main',
      'Enabled: no',
      '',
      'Types: deb',
      'URIs: http://security.dc.example/debian-security',
      'Suites: trixie-security',
      'Components: main',
      '',
    ].join('\n'),
    'vendor.sources': 'Types: deb\nURIs: https://vendor2.example/repo\nSuites: trixie\nComponents: stable\n',
    'old.list.disabled': 'deb http://ignored.example/debian trixie main\n',
  },
};

t.test('Debian sources come from the mirror apt is configured with (one-line and deb822), or LESSONCAST_DEBIAN_SOURCE_URIS', async (t) => {
  const fake = fakeMachine(t, DATA_CENTRE);
  const dest = path.join(fake.dir, 'src');
  const run = bash('bash scripts/worker/debian-source.sh libsrtp2 trixie "$1"', fake.env, [dest]);
  t.equal(run.status, 0, run.stderr);
  t.equal(readFileSync(path.join(dest, 'README'), 'utf8'), 'upstream\n', 'the source package is unpacked');
  t.equal(
    readFileSync(path.join(fake.dir, 'sources.list.seen'), 'utf8'),
    [
      'deb-src [signed-by=/etc/keys/dc.gpg] http://mirror.dc.example/debian trixie main',
      'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror2.dc.example/debian trixie main',
      'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror3.dc.example/debian trixie main',
      '',
    ].join('\n'),
    'deb-src from the configured mirrors only: no security archive, third-party or disabled entry, each with its key',
  );
  t.match(run.stderr, /libsrtp2 from Debian trixie: http:\/\/mirror\.dc\.example\/debian /, 'the log says where from');
  t.ok(
    fake.aptCalls().every((c) => c.includes('-o DPkg::Lock::Timeout=300')),
    'every apt-get call waits for the locks (300 s by default)',
  );

  const override = fakeMachine(t, DATA_CENTRE, { LESSONCAST_DEBIAN_SOURCE_URIS: 'http://other.example/debian' });
  const overridden = bash('bash scripts/worker/debian-source.sh libsrtp2 trixie "$1"', override.env, [path.join(override.dir, 'src')]);
  t.equal(overridden.status, 0, overridden.stderr);
  t.match(
    readFileSync(path.join(override.dir, 'sources.list.seen'), 'utf8'),
    /^deb-src (\[signed-by=[^\]]+\] )?http:\/\/other\.example\/debian trixie main\n$/,
    'the setting wins',
  );
});

t.test('no usable apt source: a WARNING naming the setting, and no host of our own choosing', async (t) => {
  const fake = fakeMachine(t, { list: 'deb https://vendor.example/apt nodistro main\n' });
  const run = bash('bash scripts/worker/debian-source.sh libsrtp2 trixie "$1"', fake.env, [path.join(fake.dir, 'src')]);
  t.not(run.status, 0);
  t.match(run.stderr, /WARNING: the apt sources name no archive holding trixie .*LESSONCAST_DEBIAN_SOURCE_URIS/);
  t.same(fake.aptCalls(), [], 'apt was not asked');
  for (const f of ['scripts/worker/debian-source.sh', 'scripts/build-worker.sh', 'scripts/lib.sh', 'scripts/apt-wait.sh']) {
    t.notMatch(readFileSync(path.join(root, f), 'utf8'), /https?:\/\/[a-z0-9.-]*debian\.org/, `${f} names no Debian host`);
  }
});

t.test('apt_install waits while another apt holds the lock, and says so', async (t) => {
  const fake = fakeMachine(t, {}, { FAKE_LOCKED_UPDATES: '2', LESSONCAST_APT_LOCK_TIMEOUT: '30' });
  const run = bash('source scripts/lib.sh && apt_install ffmpeg', fake.env);
  t.equal(run.status, 0, run.stderr);
  t.match(run.stderr, /apt-get waits up to 30 s for a lock another apt or dpkg holds \(LESSONCAST_APT_LOCK_TIMEOUT\)/);
  t.match(run.stderr, /WARNING: another apt or dpkg holds a lock; trying again in 5 s/);
  const calls = fake.aptCalls();
  t.same(
    calls.map((c) => c.split(' ').find((w) => ['update', 'install'].includes(w))),
    ['update', 'update', 'update', 'install'],
    'update retried until the lock was free, then install',
  );
  t.ok(
    calls.every((c) => c.startsWith('-o DPkg::Lock::Timeout=30 ')),
    'dpkg lock timeout on every call',
  );
});

t.test('the wait is bounded: a lock held past LESSONCAST_APT_LOCK_TIMEOUT fails the install', async (t) => {
  const fake = fakeMachine(t, {}, { FAKE_LOCKED_UPDATES: '1000', LESSONCAST_APT_LOCK_TIMEOUT: '1' });
  const started = Date.now();
  const run = bash('source scripts/lib.sh && apt_install ffmpeg', fake.env);
  t.not(run.status, 0, 'setup stops');
  t.ok(Date.now() - started < 10_000, `within ${Date.now() - started} ms`);
  t.match(run.stderr, /Could not get lock/, "apt's own message is shown");
  t.notOk(
    fake.aptCalls().some((c) => c.includes(' install ')),
    'nothing installed',
  );
});

t.test('the lessoncast bin runs dist/cli.js; unbuilt, it says to run npm run build and fails', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-bin-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'scripts'));
  writeFileSync(path.join(dir, 'scripts', 'lessoncast.mjs'), readFileSync(path.join(root, 'scripts', 'lessoncast.mjs')));
  const bin = () =>
    spawnSync(process.execPath, [path.join(dir, 'scripts', 'lessoncast.mjs'), 'token', '--help'], { encoding: 'utf8', timeout: 30_000 });
  const unbuilt = bin();
  t.equal(unbuilt.status, 1, 'exits 1');
  t.match(unbuilt.stderr, /dist\/cli\.js is missing\): run "npm run build"/);
  // A stand-in dist/cli.js shows which file the bin runs, and that its arguments and exit code pass through.
  mkdirSync(path.join(dir, 'dist'));
  writeFileSync(path.join(dir, 'dist', 'cli.js'), 'console.log(JSON.stringify(process.argv.slice(2))); process.exit(3);\n');
  const built = bin();
  t.equal(built.status, 3, "dist/cli.js's exit code");
  t.equal(built.stdout.trim(), '["token","--help"]');
});
