/**
 * Real coturn (Debian's turnserver) on loopback, configured by `lessoncast coturn-config`,
 * and the credentials a real `join` hands out: they allocate and relay (UDP, and TLS with media); a wrong or
 * expired one is refused; the generated peer rules refuse what they should; and a classroom
 * forced to relay receives the instructor's media through coturn.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { turnCredential } from '../src/turn/credentials.js';
import { coturnInstalled, freePort, startCoturn, startPeer, uclient, type Coturn } from './support/coturn.js';
import { builtEntry } from './support/dist.js';
import { cleanupStack, startTestServer } from './support/lessoncast.js';
import { lessonWithSchool, watchInstructor } from './support/mediaPath.js';

const SECRET = 'c0ffee'.repeat(8);

const version = coturnInstalled();
if (!version) throw new Error('turnserver is not installed: apt-get install coturn (scripts/setup.sh test does it)');

const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-coturn-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// A throwaway certificate for TURN over TLS.
const cert = path.join(dir, 'turn.crt');
const key = path.join(dir, 'turn.key');
const made = spawnSync(
  'openssl',
  [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ],
  { encoding: 'utf8' },
);
if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);

/** The relay ports: a random band away from mediasoup's (40000-43999) so concurrent runs rarely meet. */
const relayMin = 45000 + Math.floor(Math.random() * 80) * 50;
const relayMax = relayMin + 49;

/** `lessoncast coturn-config` as an operator runs it (dist/cli.js), from lessoncast's own settings. */
function generate(out: string, ports: { plain: number; tls: number }): void {
  const r = spawnSync(
    process.execPath,
    [
      builtEntry('cli'),
      'coturn-config',
      '--out',
      out,
      '--listening-ip',
      '127.0.0.1',
      '--relay-ip',
      '127.0.0.1',
      '--listening-port',
      String(ports.plain),
      '--tls-listening-port',
      String(ports.tls),
      '--cert',
      cert,
      '--pkey',
      key,
      '--min-port',
      String(relayMin),
      '--max-port',
      String(relayMax),
      '--log',
      'stdout',
    ],
    { encoding: 'utf8', env: { ...process.env, LESSONCAST_CONFIG_DIR: path.resolve('config'), LESSONCAST_TURN_SECRET: SECRET } },
  );
  if (r.status !== 0) throw new Error(`coturn-config failed: ${r.stderr}`);
  if (r.stderr.includes(SECRET) || r.stdout.includes(SECRET)) throw new Error('coturn-config printed the secret');
}

t.test('coturn with the generated config, credentials from a real join', async (t) => {
  const cleanup = cleanupStack(t);
  const ports = { plain: await freePort(), tls: await freePort() };
  while (Math.abs(ports.tls - ports.plain) <= 1) ports.tls = await freePort(); // coturn-config refuses adjacent ports
  const conf = path.join(dir, 'turnserver.conf');
  generate(conf, ports);
  t.equal(statSync(conf).mode & 0o777, 0o600, 'the file holding the secret is mode 0600');
  const text = readFileSync(conf, 'utf8');
  t.match(text, /^use-auth-secret$/m);
  t.match(text, /^allowed-peer-ip=127\.0\.0\.1$/m, 'the media address (media.announcedAddress) is allowed by default');
  t.match(text, /^denied-peer-ip=127\.0\.0\.0-127\.255\.255\.255$/m);

  const s = await startTestServer({
    turn: {
      urls: [`turn:127.0.0.1:${ports.plain}?transport=udp`, `turns:127.0.0.1:${ports.tls}?transport=tcp`],
      secret: SECRET,
      credentialTtlSeconds: 600,
      relaySchools: ['school-c', 'school-t'],
    },
  });
  cleanup.push(() => s.close());
  const l = await lessonWithSchool(s, 'school-c');
  cleanup.push(() => l.close());
  const ice = l.joined.iceServers[0]!;
  t.equal(l.joined.iceTransportPolicy, 'relay');

  const peerPort = await freePort();
  const peer = startPeer('127.0.0.1', peerPort);
  cleanup.push(() => peer.stop());
  const creds = { username: ice.username, password: ice.credential, peer: '127.0.0.1', peerPort };

  // 1. As generated: 127.0.0.1 is allowed, but coturn refuses loopback peers before it reads the
  //    allow list (allow-loopback-peers is a separate switch): the credentials work, the peer does not.
  let coturn: Coturn = await startCoturn(conf, dir, ports.plain);
  cleanup.push(() => coturn.stop());
  const asGenerated = uclient({ port: ports.plain, ...creds });
  t.not(asGenerated.relayPort, undefined, 'the join credentials are accepted: a relay is allocated');
  t.match(asGenerated.output, /403 \(Forbidden IP\)/, 'a loopback peer is forbidden even when allowed-peer-ip lists it');
  t.equal(asGenerated.received, 0);
  await coturn.stop();

  // 2. A loopback lab needs allow-loopback-peers (tests only; never in production).
  appendFileSync(conf, '\n# test only: the media node is on loopback\nallow-loopback-peers\n');
  coturn = await startCoturn(conf, dir, ports.plain);

  const udp = uclient({ port: ports.plain, ...creds });
  t.ok(
    udp.sent > 0 && udp.received === udp.sent,
    `TURN/UDP with the join credentials: ${udp.received}/${udp.sent} echoed through the relay`,
  );
  // TURN/TLS is proven below with media (werift over turns:). turnutils_uclient 4.6.1 over TLS (-t -S)
  // hung in SSL_connect in about half the runs here while the same coturn served werift's TLS: not used.

  const refused = async (username: string, password: string): Promise<void> => {
    const r = uclient({ port: ports.plain, ...creds, username, password });
    t.match(r.output, /Cannot complete Allocation/, `${username}: no allocation`);
    t.equal(r.relayPort, undefined);
    const line = `check_stun_auth: Cannot find credentials of user <${username}>`;
    for (let i = 0; i < 50 && !coturn.output().includes(line); i++) await new Promise((r) => setTimeout(r, 100));
    t.ok(coturn.output().includes(line), `coturn refused it: "${line}"`);
  };
  await refused(ice.username, turnCredential('x'.repeat(64), 'school-c', 600).credential); // another secret
  const old = turnCredential(SECRET, 'school-c', 60, Date.now() - 3600_000);
  await refused(old.username, old.credential); // the right HMAC, expired an hour ago

  const denied = uclient({ port: ports.plain, ...creds, peer: '127.0.0.2' });
  t.match(denied.output, /403 \(Forbidden IP\)/, 'with loopback peers allowed, 127.0.0.2 (denied, not allowed) is still refused');
  t.equal(denied.received, 0);

  // 3. Media: the instructor publishes; school-c, told 'relay', receives only through coturn.
  const media = await watchInstructor(s, l, 'school-c', {
    ice: {
      iceServers: [{ urls: ice.urls[0]!, username: ice.username, credential: ice.credential }],
      iceTransportPolicy: l.joined.iceTransportPolicy,
    },
  });
  cleanup.push(() => media.close());
  const remotePort = media.transport?.iceSelectedTuple?.remotePort ?? 0;
  t.ok(
    remotePort >= relayMin && remotePort <= relayMax,
    `mediasoup's peer is coturn's relay port ${remotePort} (${relayMin}-${relayMax}): the media went through the relay`,
  );
  await new Promise((r) => setTimeout(r, 1000));
  t.ok(media.packets() > 10, `video through TURN: first packet after ${Math.round(media.firstPacketMs)} ms, ${media.packets()} packets`);

  // 4. The 443-only school's path: TURN over TLS (turns:) to coturn, trusting the test certificate.
  const lt = await lessonWithSchool(s, 'school-t');
  cleanup.push(() => lt.close());
  const iceT = lt.joined.iceServers[0]!;
  const overTls = await watchInstructor(s, lt, 'school-t', {
    ice: {
      iceServers: [{ urls: iceT.urls[1]!, username: iceT.username, credential: iceT.credential }],
      iceTransportPolicy: lt.joined.iceTransportPolicy,
      turnTlsOptions: { ca: readFileSync(cert), servername: '127.0.0.1' },
    },
  });
  cleanup.push(() => overTls.close());
  const tlsPort = overTls.transport?.iceSelectedTuple?.remotePort ?? 0;
  t.ok(tlsPort >= relayMin && tlsPort <= relayMax, `over turns: too, mediasoup's peer is a relay port (${tlsPort})`);
  t.ok(overTls.packets() > 0, `video through TURN/TLS: first packet after ${Math.round(overTls.firstPacketMs)} ms`);
  t.notMatch(coturn.output(), new RegExp(SECRET), 'coturn did not log the secret');
});
