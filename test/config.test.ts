import { mkdtempSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ConfigError, defaultConfigDir, envName, loadConfig, settingLeaves } from '../src/config/load.js';

const configDir = defaultConfigDir();

function issuesOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

t.test('defaults load and derive the public URL and announced address', async (t) => {
  const c = loadConfig({ configDir, env: {} });
  t.equal(c.http.host, '127.0.0.1', 'loopback by default');
  t.equal(c.http.port, 8080);
  t.equal(c.publicUrl, 'http://127.0.0.1:8080');
  t.equal(c.announcedAddress, '127.0.0.1');
  t.equal(c.redis.url, '', 'no Redis: in-process live state');
  t.equal(c.recording.dir, './recordings');
  t.ok(c.nodeId.length > 0);
});

t.test('HTTPS settings: plain HTTP by default, https publicUrl with TLS, checked together', async (t) => {
  const plain = loadConfig({ configDir, env: {} });
  t.same(plain.http.tls, { certFile: '', keyFile: '', hstsMaxAgeSeconds: 31536000 }, 'no TLS by default');
  t.equal(plain.http.redirectPort, 0, 'no redirect listener by default');
  t.same(plain.http.trustProxy, [], 'no proxy trusted by default');
  const tls = loadConfig({
    configDir,
    env: { LESSONCAST_HTTP_TLS_CERT_FILE: '/etc/lessoncast/server.crt', LESSONCAST_HTTP_TLS_KEY_FILE: '/etc/lessoncast/server.key' },
  });
  t.equal(tls.publicUrl, 'https://127.0.0.1:8080', 'with TLS the derived public URL is https');
  t.equal(tls.http.tls.certFile, '/etc/lessoncast/server.crt', 'LESSONCAST_HTTP_TLS_CERT_FILE');
  const lists: Array<[string, string[]]> = [
    ['10.0.0.5, 10.1.0.0/16 ,::1', ['10.0.0.5', '10.1.0.0/16', '::1']],
    ['["loopback","192.168.4.0/24"]', ['loopback', '192.168.4.0/24']],
    ['', []],
  ];
  for (const [raw, want] of lists) {
    t.same(
      loadConfig({ configDir, env: { LESSONCAST_HTTP_TRUST_PROXY: raw } }).http.trustProxy,
      want,
      `LESSONCAST_HTTP_TRUST_PROXY=${raw}`,
    );
  }
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'only the certificate',
      { LESSONCAST_HTTP_TLS_CERT_FILE: '/x.crt' },
      /http\.tls\.keyFile: "" is not allowed when http\.tls\.certFile is set/,
    ],
    ['only the key', { LESSONCAST_HTTP_TLS_KEY_FILE: '/x.key' }, /http\.tls\.certFile: "" is not allowed when http\.tls\.keyFile is set/],
    ['redirect without TLS', { LESSONCAST_HTTP_REDIRECT_PORT: '8081' }, /http\.redirectPort: 8081 is not allowed without http\.tls/],
    [
      'redirect on the HTTPS port',
      { LESSONCAST_HTTP_TLS_CERT_FILE: '/x.crt', LESSONCAST_HTTP_TLS_KEY_FILE: '/x.key', LESSONCAST_HTTP_REDIRECT_PORT: '8080' },
      /http\.redirectPort: 8080 is not allowed; allowed: a port other than http\.port/,
    ],
    [
      'a proxy that is no address',
      { LESSONCAST_HTTP_TRUST_PROXY: 'proxy.example' },
      /http\.trustProxy: "proxy\.example" is not allowed; allowed: IP addresses or CIDRs/,
    ],
    ['a prefix too long', { LESSONCAST_HTTP_TRUST_PROXY: '10.0.0.0/33' }, /http\.trustProxy: "10\.0\.0\.0\/33" is not allowed/],
    ['trust everyone', { LESSONCAST_HTTP_TRUST_PROXY: 'true' }, /http\.trustProxy: "true" is not allowed/],
    ['not a JSON list', { LESSONCAST_HTTP_TRUST_PROXY: '[10.0.0.1' }, /http\.trustProxy \(from LESSONCAST_HTTP_TRUST_PROXY\).*a list of/],
    [
      'HSTS too long',
      { LESSONCAST_HTTP_TLS_HSTS_MAX_AGE_SECONDS: '99999999' },
      /http\.tls\.hstsMaxAgeSeconds: 99999999.*integer from 0 to 63072000/,
    ],
  ];
  for (const [name, env, re] of cases) t.match(issuesOf(() => loadConfig({ configDir, env })).join('\n'), re, name);
});

t.test('default.json holds every setting of the schema', async (t) => {
  const c = loadConfig({ configDir, env: {} }) as unknown as Record<string, Record<string, unknown>>;
  for (const leaf of settingLeaves()) {
    let cur: unknown = c;
    for (const k of leaf.path) cur = (cur as Record<string, unknown>)[k];
    t.not(cur, undefined, `${leaf.path.join('.')} has a default`);
  }
});

t.test('NODE_ENV file and environment overrides, env last', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lc-config-'));
  copyFileSync(path.join(configDir, 'default.json'), path.join(dir, 'default.json'));
  writeFileSync(path.join(dir, 'staging.json'), JSON.stringify({ http: { port: 9000 }, media: { workers: 3 } }));
  const c = loadConfig({
    configDir: dir,
    env: {
      NODE_ENV: 'staging',
      LESSONCAST_MEDIA_WORKERS: '2',
      LESSONCAST_RECORDING_ENABLED_BY_DEFAULT: 'false',
      LESSONCAST_HTTP_PUBLIC_URL: 'https://lessons.example.edu/',
    },
  });
  t.equal(c.http.port, 9000, 'from staging.json');
  t.equal(c.media.workers, 2, 'env beats the file');
  t.equal(c.recording.enabledByDefault, false, 'booleans from env');
  t.equal(c.publicUrl, 'https://lessons.example.edu', 'trailing slash dropped');
  t.doesNotThrow(
    () => loadConfig({ configDir: dir, env: { LESSONCAST_CACHE_DIR: '/tmp', LESSONCAST_WORKER: 'prebuilt' } }),
    'tooling variables are not settings',
  );
  const scripts = {
    LESSONCAST_NODE: '/x/node',
    LESSONCAST_APT_LOCK_TIMEOUT: '600',
    LESSONCAST_DEBIAN_SOURCE_URIS: 'http://mirror.example/debian',
  };
  t.doesNotThrow(() => loadConfig({ configDir: dir, env: scripts }), "nor are the scripts' own, which a server they start inherits");
});

t.test("the scripts' own variables (LESSONCAST_NODE from ensure_node …) are not settings", async (t) => {
  // npm start / npm test export these before the server starts: refusing them would stop every start.
  const cfg = loadConfig({
    configDir,
    env: { LESSONCAST_NODE: '/cache/node/bin/node', LESSONCAST_APT_LOCK_TIMEOUT: '300', LESSONCAST_CACHE_DIR: '/cache' },
  });
  t.equal(cfg.http.port, 8080, 'loads with the defaults');
});

t.test("tests' and benches' variables are theirs: without our prefix they are ignored, with it they are unknown settings", async (t) => {
  // What the config loader sees of them: a server that tests or benches start inherits their environment.
  const cfg = loadConfig({
    configDir,
    env: { TEST_REDIS_URL: 'redis://127.0.0.1:1', TEST_LOG: 'debug', BENCH_NICE: '0', BENCH_MEDIASOUP_DIR: '/x' },
  });
  t.equal(cfg.redis.url, '', 'TEST_REDIS_URL is not redis.url');
  t.equal(cfg.log.level, 'info', 'TEST_LOG is not log.level (default info)');
  for (const name of ['LESSONCAST_TEST_REDIS_URL', 'LESSONCAST_BENCH_NICE']) {
    t.match(
      issuesOf(() => loadConfig({ configDir, env: { [name]: '1' } })).join('\n'),
      new RegExp(`${name}: unknown setting`),
      `${name} is refused like any unknown setting`,
    );
  }
});

t.test('env names derive from key paths', async (t) => {
  t.equal(envName(['media', 'webRtcServerPort']), 'LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT');
  t.equal(envName(['http', 'port']), 'LESSONCAST_HTTP_PORT');
});

t.test('each kind of bad value is named with key, value and what is allowed', async (t) => {
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['out of range', { LESSONCAST_HTTP_PORT: '70000' }, /http\.port.*70000.*integer from 0 to 65535/],
    ['not a number', { LESSONCAST_MEDIA_WORKERS: 'two' }, /media\.workers.*"two".*integer from 0 to 256/],
    ['not a boolean', { LESSONCAST_RECORDING_ENABLED_BY_DEFAULT: 'maybe' }, /recording\.enabledByDefault.*"maybe".*true or false/],
    ['not in the enum', { LESSONCAST_LOG_LEVEL: 'loud' }, /log\.level.*"loud".*one of "fatal"/],
    ['unknown variable', { LESSONCAST_HTTP_PROT: '1' }, /LESSONCAST_HTTP_PROT: unknown setting/],
    ['empty required string', { LESSONCAST_HTTP_HOST: '' }, /http\.host.*"".*non-empty string/],
    ['short secret, not shown', { LESSONCAST_AUTH_TOKEN_SECRET: 'short' }, /auth\.tokenSecret: \(hidden, 5 chars\).*at least 32/],
    ['short metrics token, not shown', { LESSONCAST_METRICS_TOKEN: 'short' }, /metrics\.token: \(hidden, 5 chars\).*at least 16/],
    ['bad URL', { LESSONCAST_REDIS_URL: 'localhost:6379' }, /redis\.url.*redis:\/\//],
    ['wildcard listen without announced address', { LESSONCAST_MEDIA_LISTEN_IP: '0.0.0.0' }, /media\.announcedAddress.*0\.0\.0\.0/],
    [
      'inverted port range',
      { LESSONCAST_MEDIA_RTC_MIN_PORT: '50000', LESSONCAST_MEDIA_RTC_MAX_PORT: '40000' },
      /media\.rtcMinPort: 50000.*at most media\.rtcMaxPort/,
    ],
    [
      'weak links resumed below their pause threshold',
      { LESSONCAST_MEDIA_LINKS_PAUSE_BELOW_KBPS: '400', LESSONCAST_MEDIA_LINKS_RESUME_ABOVE_KBPS: '300' },
      /media\.links\.resumeAboveKbps: 300.*at least media\.links\.pauseBelowKbps \(400\)/,
    ],
    [
      'default token life past the maximum',
      { LESSONCAST_AUTH_TOKEN_TTL_SECONDS: '7200', LESSONCAST_AUTH_MAX_TOKEN_TTL_SECONDS: '3600' },
      /auth\.tokenTtlSeconds: 7200.*at most auth\.maxTokenTtlSeconds \(3600\)/,
    ],
  ];
  for (const [name, env, re] of cases) {
    const issues = issuesOf(() => loadConfig({ configDir, env }));
    t.match(issues.join('\n'), re, name);
  }
  const secretIssues = issuesOf(() => loadConfig({ configDir, env: { LESSONCAST_AUTH_TOKEN_SECRET: 'short' } }));
  t.notMatch(secretIssues.join('\n'), /short/, 'the secret itself is never printed');
});

t.test('cluster.enabled needs Redis, a shared catalog and a long secret, and never prints it', async (t) => {
  const lone = issuesOf(() =>
    loadConfig({ configDir, env: { LESSONCAST_CLUSTER_ENABLED: 'true', LESSONCAST_CLUSTER_SECRET: 'tiny-secret' } }),
  ).join('\n');
  t.match(lone, /cluster\.enabled: true is not allowed without redis\.url/);
  t.match(lone, /cluster\.enabled: true is not allowed without catalog\.url/);
  t.match(lone, /cluster\.secret: \(hidden\) is not allowed; allowed: at least 32 characters/);
  t.notMatch(lone, /tiny-secret/, 'the secret itself is never printed');
  const named = issuesOf(() =>
    loadConfig({ configDir, env: { LESSONCAST_CLUSTER_ENABLED: 'true', LESSONCAST_CLUSTER_PIPE_ADDRESS: 'node-7.dc' } }),
  );
  t.match(named.join('\n'), /cluster\.pipeAddress: "node-7\.dc" is not allowed; allowed: an IP address/, 'a pipe address must be an IP');
  const whole = loadConfig({
    configDir,
    env: {
      LESSONCAST_CLUSTER_ENABLED: 'true',
      LESSONCAST_CLUSTER_SECRET: 'x'.repeat(32),
      LESSONCAST_REDIS_URL: 'redis://127.0.0.1:6379',
      LESSONCAST_CATALOG_URL: 'postgres://lessoncast@127.0.0.1/lessoncast',
    },
  });
  t.equal(whole.cluster.enabled, true, 'with all three it loads');
  t.equal(whole.cluster.leaseSeconds, 6);
});

t.test('a removed setting (media.liburing) stops the start with the key and why, from a file or the environment', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lc-config-'));
  copyFileSync(path.join(configDir, 'default.json'), path.join(dir, 'default.json'));
  writeFileSync(path.join(dir, 'old.json'), JSON.stringify({ media: { liburing: false } }));
  const fromFile = issuesOf(() => loadConfig({ configDir: dir, env: { NODE_ENV: 'old' } })).join('\n');
  t.match(fromFile, /media\.liburing: no longer a setting: removed with mediasoup 3\.32.*io_uring/, fromFile);
  t.notMatch(fromFile, /unknown setting/, 'not a bare "unknown setting"');
  const fromEnv = issuesOf(() => loadConfig({ configDir: dir, env: { LESSONCAST_MEDIA_LIBURING: 'true' } })).join('\n');
  t.match(fromEnv, /media\.liburing: no longer a setting: .*\(from LESSONCAST_MEDIA_LIBURING\)/, fromEnv);
});

t.test('bad files: unknown keys, wrong types, broken JSON, missing default', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lc-config-'));
  copyFileSync(path.join(configDir, 'default.json'), path.join(dir, 'default.json'));
  writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ http: { port: '80', colour: 'red' } }));
  const issues = issuesOf(() => loadConfig({ configDir: dir, env: { NODE_ENV: 'a' } }));
  t.match(issues.join('\n'), /http\.port: "80" is not allowed/);
  t.match(issues.join('\n'), /http\.colour: unknown setting/);
  writeFileSync(path.join(dir, 'b.json'), '{ not json');
  t.match(issuesOf(() => loadConfig({ configDir: dir, env: { NODE_ENV: 'b' } })).join('\n'), /b\.json: not valid JSON/);
  const empty = mkdtempSync(path.join(tmpdir(), 'lc-config-'));
  t.match(issuesOf(() => loadConfig({ configDir: empty, env: {} })).join('\n'), /default\.json: file not found/);
});
