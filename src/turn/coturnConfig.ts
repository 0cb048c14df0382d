/**
 * A turnserver.conf for Debian's coturn 4.6, derived from lessoncast's TURN settings: the
 * TURN REST shared secret (use-auth-secret), TLS for schools that reach only 443, and peer
 * rules that keep it from being an open relay into the ministry's network: every private,
 * loopback and reserved range is denied except the media nodes' own addresses.
 */
import { isIP } from 'node:net';

/** Ranges a relay must never reach unless a media node sits there (coturn takes `first-last`, not CIDR). */
export const DENIED_PEER_RANGES: ReadonlyArray<{ cidr: string; range: string; what: string }> = [
  { cidr: '0.0.0.0/8', range: '0.0.0.0-0.255.255.255', what: '"this network"' },
  { cidr: '10.0.0.0/8', range: '10.0.0.0-10.255.255.255', what: 'private (RFC 1918)' },
  { cidr: '100.64.0.0/10', range: '100.64.0.0-100.127.255.255', what: 'carrier-grade NAT' },
  { cidr: '127.0.0.0/8', range: '127.0.0.0-127.255.255.255', what: 'loopback' },
  { cidr: '169.254.0.0/16', range: '169.254.0.0-169.254.255.255', what: 'link-local' },
  { cidr: '172.16.0.0/12', range: '172.16.0.0-172.31.255.255', what: 'private (RFC 1918)' },
  { cidr: '192.0.0.0/24', range: '192.0.0.0-192.0.0.255', what: 'IETF protocol assignments' },
  { cidr: '192.0.2.0/24', range: '192.0.2.0-192.0.2.255', what: 'documentation' },
  { cidr: '192.88.99.0/24', range: '192.88.99.0-192.88.99.255', what: '6to4 relay' },
  { cidr: '192.168.0.0/16', range: '192.168.0.0-192.168.255.255', what: 'private (RFC 1918)' },
  { cidr: '198.18.0.0/15', range: '198.18.0.0-198.19.255.255', what: 'benchmarking' },
  { cidr: '198.51.100.0/24', range: '198.51.100.0-198.51.100.255', what: 'documentation' },
  { cidr: '203.0.113.0/24', range: '203.0.113.0-203.0.113.255', what: 'documentation' },
  { cidr: '224.0.0.0/3', range: '224.0.0.0-255.255.255.255', what: 'multicast, reserved, broadcast' },
  { cidr: '::/128', range: '::', what: 'unspecified' },
  { cidr: '::1/128', range: '::1', what: 'loopback' },
  { cidr: '::ffff:0:0/96', range: '::ffff:0.0.0.0-::ffff:255.255.255.255', what: 'IPv4-mapped' },
  { cidr: '64:ff9b::/96', range: '64:ff9b::-64:ff9b::ffff:ffff', what: 'NAT64' },
  { cidr: '100::/64', range: '100::-100::ffff:ffff:ffff:ffff', what: 'discard' },
  { cidr: '2001::/23', range: '2001::-2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', what: 'IETF protocol assignments' },
  { cidr: '2001:db8::/32', range: '2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', what: 'documentation' },
  { cidr: 'fc00::/7', range: 'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', what: 'unique local (private)' },
  { cidr: 'fe80::/10', range: 'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', what: 'link-local' },
  { cidr: 'ff00::/8', range: 'ff00::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', what: 'multicast' },
];

export interface CoturnOptions {
  /** coturn's static-auth-secret: lessoncast's turn.secret. */
  secret: string;
  realm: string;
  /** UDP and TCP (plain TURN). */
  listeningPort: number;
  /** TLS (TURN/TLS); undefined = no TLS listener (`no-tls`). */
  tls?: { port: number; cert: string; pkey: string };
  /** Addresses coturn listens on; [] = every address of the host. */
  listeningIps: string[];
  /** Local addresses coturn relays from; [] = coturn picks. */
  relayIps: string[];
  /** `public` or `public/private` when coturn sits behind a 1:1 NAT. */
  externalIps: string[];
  /** The media nodes' addresses: allowed even where a denied range covers them. */
  allowedPeerIps: string[];
  minPort: number;
  maxPort: number;
  /** 'syslog', 'stdout', or a log file path. */
  log: string;
}

/** A problem with an option, named by the option. */
export class CoturnOptionError extends Error {}

/** The turnserver.conf text. Every value is checked first: nothing a caller passes can add a line. */
export function coturnConfig(o: CoturnOptions): string {
  check(o);
  const lines = [
    '# turnserver.conf for coturn 4.6, written by `lessoncast coturn-config` (docs/turn.md).',
    '# It holds turn.secret: keep it mode 0600, owned by the turnserver user.',
    '',
    '# Where schools reach it: UDP and TCP on listening-port, TLS on tls-listening-port.',
    `listening-port=${o.listeningPort}`,
    ...(o.tls ? [`tls-listening-port=${o.tls.port}`] : []),
    ...o.listeningIps.map((ip) => `listening-ip=${ip}`),
    ...o.relayIps.map((ip) => `relay-ip=${ip}`),
    ...o.externalIps.map((ip) => `external-ip=${ip}`),
    `min-port=${o.minPort}`,
    `max-port=${o.maxPort}`,
    '',
    '# Time-limited credentials (TURN REST API): lessoncast gives each participant',
    '# username "<expiry>:<participantId>", password base64(HMAC-SHA1(secret, username)).',
    'use-auth-secret',
    `static-auth-secret=${o.secret}`,
    `realm=${o.realm}`,
    'fingerprint',
    '',
    ...(o.tls
      ? [
          '# TURN over TLS (full chain and its key; TLS 1.2 or newer).',
          `cert=${o.tls.cert}`,
          `pkey=${o.tls.pkey}`,
          'no-tlsv1',
          'no-tlsv1_1',
        ]
      : ['# No TLS listener (asked for with --no-tls): schools that reach only TCP 443 cannot use this server.', 'no-tls']),
    '# Browsers never use TURN over DTLS.',
    'no-dtls',
    '',
    '# Not an open relay: WebRTC needs UDP relays to the media nodes, nothing else.',
    'no-tcp-relay',
    'no-multicast-peers',
    ...DENIED_PEER_RANGES.flatMap(({ range, cidr, what }) => [`# ${cidr}: ${what}`, `denied-peer-ip=${range}`]),
    ...(o.allowedPeerIps.length
      ? ['# The media nodes (allowed wins over denied in coturn).', ...o.allowedPeerIps.map((ip) => `allowed-peer-ip=${ip}`)]
      : []),
    '',
    '# Operations',
    'no-cli',
    'no-software-attribute',
    ...(o.log === 'syslog' ? ['syslog'] : [`log-file=${o.log}`, 'simple-log']),
  ];
  return `${lines.join('\n')}\n`;
}

function check(o: CoturnOptions): void {
  if (o.secret.length < 32 || !/^[A-Za-z0-9+/=._~-]+$/.test(o.secret)) {
    throw new CoturnOptionError('turn.secret must be set: at least 32 letters, digits or + / = . _ ~ - (`openssl rand -hex 32`)');
  }
  if (!/^[A-Za-z0-9.-]+$/.test(o.realm))
    throw new CoturnOptionError(`turn.realm ${JSON.stringify(o.realm)}: letters, digits, dots, dashes`);
  for (const [name, port] of [
    ['--listening-port', o.listeningPort],
    ['--tls-listening-port', o.tls?.port ?? 1],
    ['--min-port', o.minPort],
    ['--max-port', o.maxPort],
  ] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new CoturnOptionError(`${name}: ${port} is not a port (1-65535)`);
  }
  if (o.minPort > o.maxPort) throw new CoturnOptionError(`--min-port ${o.minPort} is above --max-port ${o.maxPort}`);
  // coturn also listens on port + 1 of each (its "alt" listeners, even with no-rfc5780): measured with
  // coturn 4.6.1, a TLS port right above the plain one lands TLS clients on a plain listener (SSL_connect hangs).
  if (o.tls && Math.abs(o.tls.port - o.listeningPort) <= 1) {
    throw new CoturnOptionError(
      '--tls-listening-port must differ from --listening-port by more than 1 (coturn also listens on each port + 1)',
    );
  }
  const addresses: Array<[string, string[]]> = [
    ['--listening-ip', o.listeningIps],
    ['--relay-ip', o.relayIps],
    ['--allowed-peer-ip', o.allowedPeerIps],
  ];
  for (const [name, ips] of addresses) {
    for (const ip of ips) if (!isIP(ip)) throw new CoturnOptionError(`${name}: ${JSON.stringify(ip)} is not an IP address`);
  }
  for (const mapping of o.externalIps) {
    const parts = mapping.split('/');
    if (parts.length > 2 || !parts.every((p) => isIP(p))) {
      throw new CoturnOptionError(`--external-ip: ${JSON.stringify(mapping)} is not <public-ip> or <public-ip>/<private-ip>`);
    }
  }
  for (const [name, file] of [
    ['--cert', o.tls?.cert ?? 'x'],
    ['--pkey', o.tls?.pkey ?? 'x'],
    ['--log', o.log],
  ] as const) {
    if (!/^[^\s#"']+$/.test(file)) throw new CoturnOptionError(`${name}: ${JSON.stringify(file)}: a path without spaces, quotes or #`);
  }
}
