/**
 * HTTPS in lessoncast, for real: certificates made by scripts/make-ca.sh (and openssl directly
 * for odd dates), the built server as its own process (dist/main.js), Node's TLS client trusting
 * the private CA. Start failures, SIGHUP reloads, HSTS, the redirect listener, the expiry gauge
 * and warning, and http.trustProxy.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { TokenService } from '../src/auth/tokens.js';
import { SignalClient } from '../kit/signalClient.js';
import { builtEntry } from './support/dist.js';
import { rawRequest } from './support/http.js';
import { startTestServer, watchedLessoncastProcess } from './support/lessoncast.js';
import { until } from './support/recording.js';
import { CertificateProblem, readCertificate } from '../src/http/tls.js';
import { chromiumAvailable, launchBrowser } from './support/browser.js';
import { certutil, httpsRequest, issueWithDates, leafOf, makeCa, openssl } from './support/tls.js';

const DAY = 86_400_000;
const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-tls-'));
const certs = path.join(dir, 'certs');
const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

makeCa(certs, ['localhost', '127.0.0.1']);
const ca = readFileSync(path.join(certs, 'ca.crt'));
const tlsEnv = (certFile: string, keyFile: string) => ({ LESSONCAST_HTTP_TLS_CERT_FILE: certFile, LESSONCAST_HTTP_TLS_KEY_FILE: keyFile });

/** A TCP port free on loopback now (for http.redirectPort, where 0 means off). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** dist/main.js with `env`, in its own folder; resolves once it printed its https URL. */
async function startHttps(env: Record<string, string>) {
  const p = watchedLessoncastProcess(mkdtempSync(path.join(dir, 'run-')), { LESSONCAST_LOG_LEVEL: 'info', ...env });
  children.push(p.child);
  const url = await until('the server to print its https URL', () => /health\s+(https:\/\/\S+)\/healthz/.exec(p.log())?.[1], 40_000, 100);
  return { ...p, url };
}

/** dist/main.js expected to refuse to start: its exit code and what it wrote. */
function failedStart(env: Record<string, string>): { code: number | null; stderr: string } {
  const home = mkdtempSync(path.join(dir, 'fail-'));
  const r = spawnSync(process.execPath, [builtEntry('main')], {
    cwd: home,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      LESSONCAST_CONFIG_DIR: path.resolve('config'),
      LESSONCAST_HTTP_PORT: '0',
      LESSONCAST_MEDIA_WORKERS: '1',
      LESSONCAST_RECORDING_DIR: path.join(home, 'recordings'),
      LESSONCAST_AUTH_SECRET_FILE: path.join(home, 'secret'),
      ...env,
    },
  });
  return { code: r.status, stderr: r.stderr };
}

t.test('make-ca.sh: a CA, a server certificate for names and addresses, keys 0600, and the CA reused', async (t) => {
  const out = path.join(dir, 'made');
  makeCa(out, ['lessons.school.example', '10.20.0.5', '::1'], ['--days', '30']);
  for (const f of ['ca.key', 'server.key']) t.equal(statSync(path.join(out, f)).mode & 0o777, 0o600, `${f} is mode 0600`);
  const caCert = new X509Certificate(readFileSync(path.join(out, 'ca.crt')));
  t.equal(caCert.ca, true, 'ca.crt has basicConstraints CA:TRUE');
  t.match(openssl(['x509', '-in', path.join(out, 'ca.crt'), '-noout', '-ext', 'keyUsage']), /Certificate Sign/, 'CA keyUsage keyCertSign');
  const chain = readFileSync(path.join(out, 'server.crt'), 'utf8').match(/-----BEGIN CERTIFICATE-----/g) ?? [];
  t.equal(chain.length, 2, 'server.crt is the full chain: server, then the CA');
  const leaf = leafOf(path.join(out, 'server.crt'));
  t.equal(leaf.ca, false, 'the server certificate is no CA');
  t.ok(leaf.checkIssued(caCert) && leaf.verify(caCert.publicKey), 'issued and signed by the CA');
  t.equal(leaf.subjectAltName, 'DNS:lessons.school.example, IP Address:10.20.0.5, IP Address:0:0:0:0:0:0:0:1', 'every name in SAN');
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage: serverAuth only');
  const days = (leaf.validToDate.getTime() - leaf.validFromDate.getTime()) / DAY;
  t.equal(Math.round(days), 30, '--days sets the validity');
  t.match(openssl(['verify', '-CAfile', path.join(out, 'ca.crt'), '-purpose', 'sslserver', path.join(out, 'server.crt')]), /: OK/);

  makeCa(out, ['lessons.school.example']);
  t.equal(new X509Certificate(readFileSync(path.join(out, 'ca.crt'))).fingerprint256, caCert.fingerprint256, 'a second run reuses the CA');
  t.not(leafOf(path.join(out, 'server.crt')).serialNumber, leaf.serialNumber, '…and issues a new server certificate');
  t.equal(Math.round((leafOf(path.join(out, 'server.crt')).validToDate.getTime() - Date.now()) / DAY), 365, 'default validity 365 days');

  t.throws(() => makeCa(path.join(dir, 'long'), ['x.example'], ['--days', '398']), /at most|1 to 397/, 'more than 397 days refused');
  t.throws(() => makeCa(path.join(dir, 'bad'), ['not a name']), /neither a DNS name nor an IP address/);
  const half = path.join(dir, 'half');
  makeCa(half, ['x.example']);
  rmSync(path.join(half, 'ca.key'));
  t.throws(() => makeCa(half, ['x.example']), /only one of ca\.key and ca\.crt/, 'a CA without its key is not silently replaced');
});

t.test('lessoncast tls runs make-ca.sh', async (t) => {
  const out = path.join(dir, 'cli');
  const r = spawnSync(process.execPath, [builtEntry('cli'), 'tls', out, 'board.example'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, 'exit 0');
  t.match(r.stderr, /made a new CA[\s\S]*CA fingerprint \(compare on each device\): ([0-9A-F]{2}:){31}[0-9A-F]{2}/, 'says what it made');
  t.equal(leafOf(path.join(out, 'server.crt')).subjectAltName, 'DNS:board.example');
  const bad = spawnSync(process.execPath, [builtEntry('cli'), 'tls'], { encoding: 'utf8', timeout: 60_000 });
  t.equal(bad.status, 64, 'usage error without arguments');
});

t.test('a certificate that cannot be served stops the start, naming the file and what is wrong (exit 2)', async (t) => {
  const cert = path.join(certs, 'server.crt');
  const key = path.join(certs, 'server.key');
  const notPem = path.join(dir, 'not-pem.crt');
  writeFileSync(notPem, 'this is not a certificate\n');
  const otherKey = path.join(dir, 'other.key');
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey]);
  const expired = issueWithDates(certs, 'expired', new Date(Date.now() - 60 * DAY), new Date(Date.now() - 2 * DAY));
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['missing certificate', tlsEnv(path.join(dir, 'nope.crt'), key), /http\.tls\.certFile: ".*nope\.crt": file not found/],
    ['not PEM', tlsEnv(notPem, key), /http\.tls\.certFile: ".*not-pem\.crt": not a PEM certificate/],
    [
      'key of another certificate',
      tlsEnv(cert, otherKey),
      /http\.tls\.keyFile: ".*other\.key": the key does not match the certificate in ".*server\.crt"/,
    ],
    [
      'expired',
      tlsEnv(expired.certFile, expired.keyFile),
      /http\.tls\.certFile: ".*expired\.crt": the server certificate expired on \d{4}-/,
    ],
  ];
  for (const [name, env, message] of cases) {
    const r = failedStart(env);
    t.equal(r.code, 2, `${name}: exit code 2`);
    t.match(r.stderr, /^lessoncast: invalid configuration:/, `${name}: a configuration error`);
    t.match(r.stderr, message, `${name}: says which file and what is wrong`);
    t.notMatch(r.stderr, /PRIVATE KEY-----|[A-Za-z0-9+/]{40,}/, `${name}: no key material`);
  }
});

t.test('readCertificate names every other problem with its file', async (t) => {
  const cert = path.join(certs, 'server.crt');
  const key = path.join(certs, 'server.key');
  const problem = (files: { certFile: string; keyFile: string }): string => {
    try {
      readCertificate(files);
    } catch (err) {
      if (err instanceof CertificateProblem) return err.message;
      throw err;
    }
    return 'no problem';
  };
  const [leafPem, caPem] = readFileSync(cert, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)!;
  writeFileSync(path.join(dir, 'reversed.crt'), caPem + leafPem);
  writeFileSync(path.join(dir, 'garbled.crt'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
  const encrypted = path.join(dir, 'encrypted.key');
  openssl(['pkey', '-in', key, '-aes256', '-passout', 'pass:secret-pass', '-out', encrypted]);
  const future = issueWithDates(certs, 'future', new Date(Date.now() + 2 * DAY), new Date(Date.now() + 60 * DAY));
  t.equal(problem({ certFile: cert, keyFile: key }), 'no problem', 'the pair make-ca.sh made is fine');
  t.match(problem({ certFile: cert, keyFile: path.join(dir, 'nope.key') }), /^http\.tls\.keyFile: ".*nope\.key": file not found$/);
  t.match(problem({ certFile: certs, keyFile: key }), /^http\.tls\.certFile: ".*certs": is a directory, not a file$/);
  t.match(
    problem({ certFile: cert, keyFile: path.join(dir, 'garbled.crt') }),
    /^http\.tls\.keyFile: ".*garbled\.crt": not a PEM private key/,
  );
  t.match(problem({ certFile: path.join(dir, 'garbled.crt'), keyFile: key }), /certificate 1 of the file is not a valid PEM certificate/);
  t.match(problem({ certFile: cert, keyFile: encrypted }), /http\.tls\.keyFile: ".*encrypted\.key": the key is encrypted/);
  t.match(problem(future), /http\.tls\.certFile: ".*future\.crt": the server certificate is not valid before \d{4}-/);
  t.match(problem({ certFile: path.join(dir, 'reversed.crt'), keyFile: key }), /certificate 2 of the chain did not issue certificate 1/);
  t.notMatch(problem({ certFile: cert, keyFile: encrypted }), /secret-pass/);
});

t.test('HTTPS: pages, REST, WSS, HSTS, the redirect listener, SIGHUP reloads and the expiry gauge', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const tokens = new TokenService(new TextEncoder().encode(secret), 3600);
  const mint = async (role: 'admin' | 'instructor', id: string) => (await tokens.mint({ role, id, name: id, lessons: '*' })).token;
  const live = path.join(dir, 'live');
  makeCa(live, ['127.0.0.1']);
  const liveCa = readFileSync(path.join(live, 'ca.crt'));
  const firstKey = readFileSync(path.join(live, 'server.key'), 'utf8');
  const redirectPort = await freePort();
  const s = await startHttps({
    ...tlsEnv(path.join(live, 'server.crt'), path.join(live, 'server.key')),
    LESSONCAST_AUTH_TOKEN_SECRET: secret,
    LESSONCAST_HTTP_REDIRECT_PORT: String(redirectPort),
  });
  t.teardown(() => void s.child.kill('SIGKILL'));
  t.match(s.url, /^https:\/\/127\.0\.0\.1:\d+$/, 'the banner prints https');
  t.match(s.log(), new RegExp(`signalling\\s+wss://127\\.0\\.0\\.1:${new URL(s.url).port}/ws`), '…and wss');

  const health = await httpsRequest(`${s.url}/healthz`, { ca: liveCa });
  t.equal(health.status, 200, '/healthz over https, trusting the CA');
  t.equal(health.headers['strict-transport-security'], 'max-age=31536000', 'HSTS');
  await t.rejects(httpsRequest(`${s.url}/healthz`), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }, 'refused without the CA');
  await t.rejects(httpsRequest(`${s.url}/healthz`, { ca }), /self-signed|unable to verify|SELF_SIGNED/, 'refused with another CA');

  const page = await httpsRequest(`${s.url}/`, { ca: liveCa });
  t.equal(page.status, 200, 'a page');
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.headers['content-security-policy'], /connect-src 'self' wss:\/\/127\.0\.0\.1:/, 'pages may open wss:// to this origin');
  t.equal(page.headers['strict-transport-security'], 'max-age=31536000', 'HSTS on pages');
  const missing = await httpsRequest(`${s.url}/nope`, { ca: liveCa });
  t.equal(missing.status, 404);
  t.equal(missing.headers['strict-transport-security'], 'max-age=31536000', 'HSTS on errors too');

  const created = await httpsRequest(`${s.url}/api/lessons`, {
    ca: liveCa,
    method: 'POST',
    headers: { authorization: `Bearer ${await mint('admin', 'ops')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Optics', subject: 'physics', instructorId: 'teacher-1', record: false }),
  });
  t.equal(created.status, 201, 'REST over https');
  const lessonId = (JSON.parse(created.body) as { lesson: { id: string } }).lesson.id;

  const wssUrl = `${s.url.replace(/^https/, 'wss')}/ws`;
  const client = await SignalClient.connect(wssUrl, { ca: liveCa });
  t.teardown(() => client.ws.close());
  const who = await client.request('authenticate', { token: await mint('instructor', 'teacher-1') });
  t.equal(who.role, 'instructor', 'WSS: authenticate round trip');
  await t.rejects(SignalClient.connect(wssUrl), /self-signed|SELF_SIGNED/, 'WSS refused without the CA');

  const redirected = await rawRequest(`http://127.0.0.1:${redirectPort}`, 'GET', '/classroom?lesson=abc');
  t.equal(redirected.status, 308, 'the plain-HTTP listener redirects');
  t.equal(redirected.headers['location'], `${s.url}/classroom?lesson=abc`, 'to the same path on https');
  t.notOk(redirected.headers['strict-transport-security'], 'no HSTS on plain HTTP');
  const absolute = await rawRequest(`http://127.0.0.1:${redirectPort}`, 'POST', 'http://elsewhere.example/x', {
    host: 'elsewhere.example',
  });
  t.equal(absolute.headers['location'], `${s.url}/`, 'never anywhere but the https origin, whatever Host says');

  const gauge = async () => {
    const m = await httpsRequest(`${s.url}/metrics`, { ca: liveCa });
    return Number(/^lessoncast_tls_certificate_expiry_timestamp_seconds (\S+)$/m.exec(m.body)?.[1]);
  };
  const first = leafOf(path.join(live, 'server.crt'));
  t.equal(await gauge(), first.validToDate.getTime() / 1000, 'the expiry gauge is the notAfter served');
  t.equal(health.peerSerial, first.serialNumber, 'serving the certificate made');

  // Renewal: a new certificate from the same CA, taken on SIGHUP by new connections; open ones go on.
  makeCa(live, ['127.0.0.1']);
  const renewed = leafOf(path.join(live, 'server.crt'));
  const renewedKey = readFileSync(path.join(live, 'server.key'), 'utf8');
  s.child.kill('SIGHUP');
  const swapped = await until('a new connection to see the renewed certificate', async () => {
    const r = await httpsRequest(`${s.url}/healthz`, { ca: liveCa });
    return r.peerSerial === renewed.serialNumber ? r : undefined;
  });
  t.equal(swapped.status, 200, 'a new connection gets the renewed certificate');
  t.match(s.log(), new RegExp(`"serial":"${renewed.serialNumber}".*"msg":"TLS certificate reloaded"`), 'logged with its serial');
  t.equal(await gauge(), renewed.validToDate.getTime() / 1000, 'the gauge follows the reload');
  const joined = await client.request('join', { lessonId });
  t.equal(joined.lesson.id, lessonId, 'the WSS opened before the reload goes on: it joins the lesson');

  // A broken file on SIGHUP: the old certificate stays, the error names the file.
  writeFileSync(path.join(live, 'server.crt'), 'half a renewal\n');
  s.child.kill('SIGHUP');
  await until('the failed reload to be logged', () => /TLS reload failed, still serving the old certificate/.test(s.log()));
  t.match(s.log(), /"setting":"http\.tls\.certFile","file":"[^"]*live\/server\.crt","problem":"not a PEM certificate/);
  t.equal((await httpsRequest(`${s.url}/healthz`, { ca: liveCa })).peerSerial, renewed.serialNumber, 'still serving the renewed one');
  copyFileSync(path.join(certs, 'server.crt'), path.join(live, 'server.crt'));
  s.child.kill('SIGHUP');
  await until('a mismatched pair to be refused', () => /"problem":"the key does not match the certificate/.test(s.log()));
  t.equal((await httpsRequest(`${s.url}/healthz`, { ca: liveCa })).peerSerial, renewed.serialNumber, 'a mismatched pair is refused too');

  // A certificate about to expire: warned on reload.
  const short = issueWithDates(live, 'short', new Date(Date.now() - DAY), new Date(Date.now() + 5 * DAY));
  copyFileSync(short.certFile, path.join(live, 'server.crt'));
  copyFileSync(short.keyFile, path.join(live, 'server.key'));
  s.child.kill('SIGHUP');
  await until('the expiry warning', () => /"level":40[^\n]*expires in less than 14 days/.test(s.log()));
  t.match(s.log(), /"daysLeft":4\.\d[^\n]*expires in less than 14 days/, 'says how many days are left');
  t.equal(await gauge(), leafOf(short.certFile).validToDate.getTime() / 1000, 'and the gauge shows it');
  t.notMatch(s.log(), /PRIVATE KEY-----/, 'no key in the logs');
  for (const [name, key] of [
    ['the first key', firstKey],
    ['the renewed key', renewedKey],
    ['the last key', readFileSync(short.keyFile, 'utf8')],
  ]) {
    t.notOk(s.log().includes(key!.split('\n')[1]!.slice(0, 24)), `nothing of ${name} in the logs`);
  }

  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0, 'stops cleanly');
  await t.rejects(
    rawRequest(`http://127.0.0.1:${redirectPort}`, 'GET', '/'),
    /ECONNREFUSED|no HTTP answer/,
    'the redirect listener is closed',
  );
});

t.test('a certificate with less than 14 days left is warned about at start', async (t) => {
  const short = issueWithDates(certs, 'start-short', new Date(Date.now() - DAY), new Date(Date.now() + 3 * DAY));
  const s = await startHttps(tlsEnv(short.certFile, short.keyFile));
  t.teardown(() => void s.child.kill('SIGKILL'));
  await until('the warning', () => /expires in less than 14 days/.test(s.log()));
  t.match(s.log(), /"level":40[^\n]*"daysLeft":2\.\d[^\n]*expires in less than 14 days/);
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
});

t.test('plain HTTP stays the default: on 127.0.0.1, no HSTS, and SIGHUP does not stop it', async (t) => {
  const { child, exited, log } = watchedLessoncastProcess(mkdtempSync(path.join(dir, 'plain-')), { LESSONCAST_LOG_LEVEL: 'info' });
  children.push(child);
  const url = await until('the URL', () => /health\s+(http:\/\/\S+)\/healthz/.exec(log())?.[1], 40_000, 100);
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const r = await rawRequest(url, 'GET', '/healthz');
  t.equal(r.status, 200);
  t.notOk(r.headers['strict-transport-security'], 'no HSTS on plain HTTP');
  t.notMatch(log(), /lessoncast_tls|serving HTTPS/);
  child.kill('SIGHUP');
  await until('the SIGHUP to be logged', () => /nothing to reload/.test(log()));
  t.equal((await rawRequest(url, 'GET', '/healthz')).status, 200, 'still serving after SIGHUP');
  const metrics = await rawRequest(url, 'GET', '/metrics');
  t.notMatch(metrics.body, /lessoncast_tls_certificate_expiry_timestamp_seconds/, 'no expiry gauge without TLS');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('http.trustProxy: X-Forwarded-For counts only from listed proxies', async (t) => {
  const badToken = async (url: string, forwardedFor: string) =>
    (await rawRequest(url, 'GET', '/api/lessons', { authorization: 'Bearer nonsense', 'x-forwarded-for': forwardedFor })).status;

  const direct = await startTestServer({ auth: { maxFailuresPerAddress: 2 } });
  t.teardown(() => direct.close());
  t.same(
    [await badToken(direct.url, '198.51.100.1'), await badToken(direct.url, '198.51.100.2'), await badToken(direct.url, '198.51.100.3')],
    [401, 401, 429],
    'untrusted: a client cannot spread its failures over made-up addresses',
  );

  const proxied = await startTestServer({ auth: { maxFailuresPerAddress: 2 }, http: { trustProxy: ['127.0.0.1'] } });
  t.teardown(() => proxied.close());
  t.same(
    [await badToken(proxied.url, '198.51.100.1'), await badToken(proxied.url, '198.51.100.1'), await badToken(proxied.url, '198.51.100.1')],
    [401, 401, 429],
    'behind a trusted proxy: the forwarded address is the one counted…',
  );
  t.equal(await badToken(proxied.url, '198.51.100.2'), 401, '…so another school behind the proxy has its own budget');
  t.equal(
    await badToken(proxied.url, '198.51.100.2, 198.51.100.1'),
    429,
    'the rightmost address the proxy added counts, not what the client put first',
  );
});

t.test('Chromium accepts the make-ca.sh chain once the CA is in its NSS database, and only then', async (t) => {
  if (!chromiumAvailable()) return void t.fail('Debian chromium is not installed (scripts/setup.sh test installs it)');
  const s = await startTestServer({
    http: { tls: { certFile: path.join(certs, 'server.crt'), keyFile: path.join(certs, 'server.key') } },
  });
  t.teardown(() => s.close());
  t.match(s.url, /^https:\/\/127\.0\.0\.1:/);
  // Chromium on Linux trusts what the user's NSS database trusts; since M146 it lives here.
  const trusting = path.join(dir, 'home-trusting');
  const nssdb = path.join(trusting, '.local', 'share', 'pki', 'nssdb');
  mkdirSync(nssdb, { recursive: true });
  certutil(['-d', `sql:${nssdb}`, '-N', '--empty-password']);
  certutil(['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'lessoncast test CA', '-i', path.join(certs, 'ca.crt')]);
  const untrusting = path.join(dir, 'home-untrusting');
  mkdirSync(untrusting);

  const trusted = await launchBrowser({ ...process.env, HOME: trusting });
  t.teardown(() => trusted.close());
  const page = await trusted.newPage();
  const answer = await page.goto(`${s.url}/`);
  t.equal(answer?.status(), 200, 'the home page loads over https');
  t.equal(await page.evaluate(() => window.isSecureContext), true, 'a secure context');
  const tracks = await page.evaluate(
    async () => (await navigator.mediaDevices.getUserMedia({ video: true, audio: true })).getTracks().length,
  );
  t.equal(tracks, 2, 'camera and microphone are given');

  const untrusted = await launchBrowser({ ...process.env, HOME: untrusting });
  t.teardown(() => untrusted.close());
  await t.rejects((await untrusted.newPage()).goto(`${s.url}/`), /ERR_CERT_AUTHORITY_INVALID/, 'without the CA: refused');
});
