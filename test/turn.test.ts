import { createHmac } from 'node:crypto';
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { ConfigError, defaultConfigDir, loadConfig } from '../src/config/load.js';
import { parseTurnUrl } from '../src/config/turnUrls.js';
import { coturnConfig, DENIED_PEER_RANGES } from '../src/turn/coturnConfig.js';
import { TurnIssuer, turnCredential } from '../src/turn/credentials.js';
import { createLesson, startTestServer } from './support/lessoncast.js';

const SECRET = 'a'.repeat(16) + 'b'.repeat(16) + '0123456789';
const configDir = defaultConfigDir();

function configIssues(env: Record<string, string>): string[] {
  try {
    loadConfig({ configDir, env });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

t.test('credentials: "<expiry>:<user>" and base64 HMAC-SHA1 of it with the secret, as coturn computes it', async (t) => {
  const now = Date.UTC(2026, 11, 6, 12, 0, 0, 700);
  const c = turnCredential(SECRET, 'school-12', 3600, now);
  t.equal(c.username, `${Math.floor(now / 1000) + 3600}:school-12`, 'expiry = now (whole seconds) + ttl');
  t.equal(c.expiresAt, 1796558400 + 3600);
  // Computed here independently: a 20-byte SHA-1 MAC is 28 base64 characters.
  const expected = createHmac('sha1', Buffer.from(SECRET, 'utf8')).update(Buffer.from(c.username, 'utf8')).digest().toString('base64');
  t.equal(c.credential, expected);
  t.equal(c.credential.length, 28);
  t.not(turnCredential(SECRET + 'x', 'school-12', 3600, now).credential, c.credential, 'another secret, another password');
});

t.test('iceFor: [] and "all" without TURN; fresh credentials per join; "relay" only for listed classrooms', async (t) => {
  const off = new TurnIssuer({ urls: [], secret: '', credentialTtlSeconds: 60, relaySchools: [] });
  t.same(off.iceFor({ id: 'school-1', role: 'classroom' }), { iceServers: [], iceTransportPolicy: 'all' });
  let now = 1_000_000_000_000;
  const urls = ['turn:turn.example.edu:3478?transport=udp', 'turns:turn.example.edu:443?transport=tcp'];
  const on = new TurnIssuer({ urls, secret: SECRET, credentialTtlSeconds: 600, relaySchools: ['school-c'] }, () => now);
  const first = on.iceFor({ id: 'school-a', role: 'classroom' });
  t.equal(first.iceTransportPolicy, 'all');
  t.same(first.iceServers, [
    { urls, username: `${1_000_000_000 + 600}:school-a`, credential: turnCredential(SECRET, 'school-a', 600, now).credential },
  ]);
  t.equal(on.iceFor({ id: 'school-c', role: 'classroom' }).iceTransportPolicy, 'relay', 'a listed school relays');
  t.equal(
    on.iceFor({ id: 'school-c', role: 'instructor' }).iceTransportPolicy,
    'all',
    'the list names schools, not other roles with that id',
  );
  now += 5000;
  t.not(on.iceFor({ id: 'school-a', role: 'classroom' }).iceServers[0]!.username, first.iceServers[0]!.username, 'a later join renews');
});

t.test('TURN URLs: turn:/turns:, host, optional port, ?transport=udp|tcp; anything else is refused with why', async (t) => {
  t.same(parseTurnUrl('turn:turn.example.edu'), { scheme: 'turn', host: 'turn.example.edu', port: 3478, transport: undefined });
  t.same(parseTurnUrl('turns:10.0.0.5:443?transport=tcp'), { scheme: 'turns', host: '10.0.0.5', port: 443, transport: 'tcp' });
  t.same(parseTurnUrl('turns:turn.example.edu'), { scheme: 'turns', host: 'turn.example.edu', port: 5349, transport: undefined });
  t.same(parseTurnUrl('turn:[2001:db8::1]:3478?transport=udp'), { scheme: 'turn', host: '[2001:db8::1]', port: 3478, transport: 'udp' });
  const bad: Array<[string, RegExp]> = [
    ['turn://turn.example.edu:3478', /no "\/\/"/],
    ['stun:turn.example.edu', /scheme must be turn: or turns:/],
    ['https://turn.example.edu', /scheme/],
    ['turn:turn.example.edu:70000', /outside 1-65535/],
    ['turn:turn.example.edu:0', /outside/],
    ['turn:turn.example.edu?transport=sctp', /expected turn:host/],
    ['turns:turn.example.edu:443?transport=udp', /DTLS/],
    ['turn:-bad-.example.edu', /not a host/],
    ['turn:user@turn.example.edu', /expected/],
    ['turn:turn.example.edu:3478\nrealm=x', /expected/],
  ];
  for (const [url, why] of bad) t.match(parseTurnUrl(url), why, url);
});

t.test('turn settings are checked at start; lists come from env as JSON or comma-separated; the secret is never shown', async (t) => {
  const ok = loadConfig({
    configDir,
    env: {
      LESSONCAST_TURN_URLS: 'turn:turn.example.edu:3478?transport=udp, turns:turn.example.edu:443?transport=tcp',
      LESSONCAST_TURN_SECRET: SECRET,
      LESSONCAST_TURN_RELAY_SCHOOLS: '["school-c","school-d"]',
      LESSONCAST_MEDIA_ICE_TCP_LISTEN_IP: '127.0.0.2',
      LESSONCAST_MEDIA_ICE_TCP_PORT: '443',
    },
  });
  t.same(ok.turn.urls, ['turn:turn.example.edu:3478?transport=udp', 'turns:turn.example.edu:443?transport=tcp']);
  t.same(ok.turn.relaySchools, ['school-c', 'school-d']);
  t.equal(ok.media.iceTcp.port, 443);
  const d = loadConfig({ configDir, env: {} });
  t.same([d.turn.urls, d.turn.relaySchools, d.turn.credentialTtlSeconds, d.media.iceTcp.port], [[], [], 86400, 0], 'defaults: no TURN');
  t.same(loadConfig({ configDir, env: { LESSONCAST_TURN_RELAY_SCHOOLS: '' } }).turn.relaySchools, [], 'empty variable = []');

  const short = configIssues({ LESSONCAST_TURN_URLS: 'turn:t.example.edu', LESSONCAST_TURN_SECRET: 'short-secret-123' });
  t.match(short.join('\n'), /turn\.secret: \(hidden, 16 chars\) is not allowed when turn\.urls is set; allowed: at least 32/);
  t.notMatch(short.join('\n'), /short-secret-123/, 'the secret is not in the message');
  t.match(configIssues({ LESSONCAST_TURN_URLS: 'turn:t.example.edu' }).join('\n'), /turn\.secret: \(hidden, 0 chars\)/, 'required');
  const quoted = configIssues({ LESSONCAST_TURN_SECRET: `${SECRET}\nno-auth` });
  t.match(
    quoted.join('\n'),
    /turn\.secret: \(hidden\) is not allowed; allowed: letters, digits/,
    'nothing that could add a line to turnserver.conf',
  );
  t.notMatch(quoted.join('\n'), /no-auth/);
  t.match(configIssues({ LESSONCAST_TURN_URLS: 'turn://t.example.edu', LESSONCAST_TURN_SECRET: SECRET }), [
    /turn\.urls\[0\]: "turn:\/\/t\.example\.edu" is not allowed: a TURN URL has no "\/\/"/,
  ]);
  t.match(configIssues({ LESSONCAST_TURN_RELAY_SCHOOLS: 'school-c' }), [
    /turn\.relaySchools: \["school-c"\] is not allowed when turn\.urls is empty/,
  ]);
  t.match(
    configIssues({ LESSONCAST_TURN_URLS: '[not json' }).join('\n'),
    /turn\.urls \(from LESSONCAST_TURN_URLS\): \(hidden\) is not allowed; allowed: a list of/,
  );
  t.match(configIssues({ LESSONCAST_MEDIA_ICE_TCP_LISTEN_IP: '0.0.0.0' }), [
    /media\.iceTcp\.announcedAddress: "" is not allowed when media\.iceTcp\.listenIp is 0\.0\.0\.0/,
  ]);
  t.match(configIssues({ LESSONCAST_MEDIA_ICE_TCP_PORT: '70000' }).join('\n'), /media\.iceTcp\.port.*integer from 0 to 65535/);
});

t.test('coturn config: the secret and realm, every private range denied, the media nodes allowed, never no-auth', async (t) => {
  const text = coturnConfig({
    secret: SECRET,
    realm: 'lessons.example.edu',
    listeningPort: 3478,
    tls: { port: 443, cert: '/etc/coturn/tls/fullchain.pem', pkey: '/etc/coturn/tls/privkey.pem' },
    listeningIps: ['203.0.113.10'],
    relayIps: ['203.0.113.10'],
    externalIps: [],
    allowedPeerIps: ['10.20.0.5'],
    minPort: 49152,
    maxPort: 65535,
    log: 'syslog',
  });
  const lines = text.split('\n').filter((l) => l && !l.startsWith('#'));
  for (const want of [
    'use-auth-secret',
    `static-auth-secret=${SECRET}`,
    'realm=lessons.example.edu',
    'listening-port=3478',
    'tls-listening-port=443',
  ])
    t.ok(lines.includes(want), want);
  for (const want of ['fingerprint', 'no-cli', 'no-multicast-peers', 'allowed-peer-ip=10.20.0.5', 'listening-ip=203.0.113.10', 'syslog'])
    t.ok(lines.includes(want), want);
  t.notOk(
    lines.some((l) => /^(no-auth|no-tls|allow-loopback-peers|lt-cred-mech)$/.test(l)),
    'no no-auth, no no-tls, no loopback peers',
  );
  for (const cidr of [
    '0.0.0.0/8',
    '10.0.0.0/8',
    '100.64.0.0/10',
    '127.0.0.0/8',
    '169.254.0.0/16',
    '172.16.0.0/12',
    '192.168.0.0/16',
    'fc00::/7',
    'fe80::/10',
  ]) {
    const entry = DENIED_PEER_RANGES.find((r) => r.cidr === cidr);
    t.ok(entry && lines.includes(`denied-peer-ip=${entry.range}`), `denies ${cidr}`);
  }
  // Each IPv4 range is exactly its CIDR block, computed here apart from the table.
  for (const { cidr, range } of DENIED_PEER_RANGES.filter((r) => !r.cidr.includes(':'))) {
    const [base, bits] = cidr.split('/') as [string, string];
    const start = base.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const end = start + 2 ** (32 - Number(bits)) - 1;
    const dotted = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
    t.equal(range, `${dotted(start)}-${dotted(end)}`, cidr);
  }
  t.throws(() => coturnConfig({ ...baseOptions(), listeningIps: ['10.0.0.1\nno-auth'] }), /--listening-ip: .* is not an IP address/);
  t.throws(() => coturnConfig({ ...baseOptions(), secret: 'short' }), /turn\.secret must be set/);
  t.throws(() => coturnConfig({ ...baseOptions(), log: '/var/log/turn log' }), /--log/);
  t.match(coturnConfig({ ...baseOptions(), log: 'stdout' }), /^log-file=stdout$/m);
  const tls = { cert: '/etc/coturn/tls/fullchain.pem', pkey: '/etc/coturn/tls/privkey.pem' };
  t.throws(
    () => coturnConfig({ ...baseOptions(), tls: { ...tls, port: 3479 } }),
    /by more than 1/,
    "coturn's alt port (3478 + 1) would take TLS",
  );
  t.doesNotThrow(() => coturnConfig({ ...baseOptions(), tls: { ...tls, port: 5349 } }));
});

function baseOptions(): Parameters<typeof coturnConfig>[0] {
  return {
    secret: SECRET,
    realm: 'lessoncast',
    listeningPort: 3478,
    listeningIps: [],
    relayIps: [],
    externalIps: [],
    allowedPeerIps: [],
    minPort: 49152,
    maxPort: 65535,
    log: 'syslog',
  };
}

t.test('join over the real signalling: [] and "all" by default', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const lessonId = await createLesson(s);
  const { client, joined } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  t.teardown(() => client.close());
  t.same([joined!.iceServers, joined!.iceTransportPolicy], [[], 'all']);
});

t.test('join over the real signalling: TURN credentials for everyone, "relay" for the listed school', async (t) => {
  const urls = ['turn:127.0.0.1:3478?transport=udp', 'turns:127.0.0.1:443?transport=tcp'];
  const s = await startTestServer({ turn: { urls, secret: SECRET, credentialTtlSeconds: 900, relaySchools: ['school-c'] } });
  t.teardown(() => s.close());
  const lessonId = await createLesson(s);
  const before = Math.floor(Date.now() / 1000);
  const teacher = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const a = await SignalClient.join(s, 'classroom', 'school-a', lessonId);
  const c = await SignalClient.join(s, 'classroom', 'school-c', lessonId);
  t.teardown(() => [teacher, a, c].forEach((x) => x.client.close()));
  for (const [who, j, policy] of [
    ['teacher-1', teacher.joined!, 'all'],
    ['school-a', a.joined!, 'all'],
    ['school-c', c.joined!, 'relay'],
  ] as const) {
    t.equal(j.iceTransportPolicy, policy, `${who}: ${policy}`);
    t.equal(j.iceServers.length, 1);
    const server = j.iceServers[0]!;
    t.same(server.urls, urls);
    const [expiry, user] = server.username.split(':');
    t.equal(user, who, 'username names the participant');
    t.ok(Number(expiry) >= before + 900 && Number(expiry) <= Math.floor(Date.now() / 1000) + 900, 'expires ttl from now');
    t.equal(server.credential, createHmac('sha1', SECRET).update(server.username).digest('base64'));
  }
});
