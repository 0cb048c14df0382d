/**
 * What docs/deployment.md ships: the systemd unit passes systemd's own check, and the example
 * environment file is a configuration lessoncast accepts (every variable a setting, every value valid).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../src/config/load.js';

const root = path.resolve(import.meta.dirname, '..');
const UNIT = path.join(root, 'deploy', 'lessoncast.service');
const ENV_FILE = path.join(root, 'deploy', 'lessoncast.env');

/** systemd's EnvironmentFile= syntax as the example uses it: KEY=VALUE lines, # comments. */
function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const trimmed = line.trim();
    if (!trimmed || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`${file}: not KEY=VALUE: ${line}`);
    env[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return env;
}

t.test('the example environment file is a valid configuration', async (t) => {
  const env = readEnvFile(ENV_FILE);
  t.ok(Object.keys(env).length >= 10, 'it sets the settings a media node needs');
  for (const name of Object.keys(env)) t.match(name, /^LESSONCAST_[A-Z0-9_]+$/, `${name} is a lessoncast setting's variable`);
  // Read as the unit runs it: NODE_ENV=production beside the file's variables.
  const config = loadConfig({ env: { NODE_ENV: 'production', ...env } });
  t.equal(config.http.port, 443);
  t.equal(config.http.tls.certFile, '/etc/lessoncast/tls/server.crt');
  t.equal(config.http.redirectPort, 80);
  t.equal(config.recording.dir, '/srv/lessoncast/recordings');
  t.match(config.http.publicUrl, /^https:\/\//, 'the public URL is https');
});

// setup.sh (test mode) installs systemd; outside CI a machine without it skips this, in CI it fails.
const noSystemd = spawnSync('systemd-analyze', ['--version']).error ? 'systemd-analyze is not installed' : false;

t.test('the systemd unit passes systemd-analyze verify', { skip: process.env['CI'] ? false : noSystemd }, async (t) => {
  t.notOk(noSystemd, 'systemd-analyze is there (scripts/setup.sh test installs systemd)');
  const unit = readFileSync(UNIT, 'utf8');
  t.match(unit, /ExecReload=\/bin\/kill -HUP \$MAINPID/, 'reload is SIGHUP (certificate reload)');
  t.match(unit, /AmbientCapabilities=CAP_NET_BIND_SERVICE/, 'binds 443 without root');
  // verify checks that ExecStart's program exists: point the install path at this checkout.
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = path.join(dir, 'lessoncast.service');
  writeFileSync(copy, unit.replaceAll('/opt/lessoncast', root));
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  // Lines about units this machine lacks (redis-server, coturn) or about running outside systemd are not the unit's own faults.
  const own = `${r.stdout}${r.stderr}`
    .split('\n')
    .filter((l) => l.includes('lessoncast.service') && !/not found|No such file or directory.*\.service/i.test(l));
  t.same(own, [], 'no complaint about the unit itself');
});
