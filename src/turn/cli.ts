import { chmodSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { stringOptions } from '../cliArgs.js';
import { loadConfig } from '../config/load.js';
import { resolveIceTcp } from '../media/workerPool.js';
import { coturnConfig, CoturnOptionError } from './coturnConfig.js';

export const COTURN_USAGE = `  lessoncast coturn-config [--out <file>] [--listening-ip <ip>]... [--relay-ip <ip>]... [--external-ip <ip>[/<private ip>]]...
                           [--listening-port <n>] [--tls-listening-port <n>] [--cert <file>] [--pkey <file>] [--no-tls]
                           [--allowed-peer-ip <ip>]... [--min-port <n>] [--max-port <n>] [--log syslog|stdout|<file>]
      Prints a turnserver.conf for Debian's coturn from turn.secret and turn.realm (docs/turn.md): UDP/TCP 3478,
      TLS on 443 (--tls-listening-port 5349 behind a port mapping), private ranges denied except the media
      addresses (default: media.announcedAddress and media.iceTcp.announcedAddress). --out writes it mode 0600.`;

export class CoturnUsageError extends Error {}

const many = { type: 'string', multiple: true } as const;

/** `lessoncast coturn-config …`: the file on stdout, or into --out (mode 0600); notes on stderr. */
export function coturnConfigCommand(args: string[], err: (line: string) => void = (l) => process.stderr.write(l + '\n')): void {
  const { values: v } = parseArgs({
    args,
    options: {
      ...stringOptions('out', 'listening-port', 'tls-listening-port', 'cert', 'pkey', 'min-port', 'max-port', 'log'),
      'listening-ip': many,
      'relay-ip': many,
      'external-ip': many,
      'allowed-peer-ip': many,
      'no-tls': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
  const config = loadConfig();
  if (config.turn.secret === '') {
    throw new Error(
      'turn.secret is empty: set it (LESSONCAST_TURN_SECRET or config; `openssl rand -hex 32`): coturn and lessoncast share it',
    );
  }
  const media = [config.announcedAddress, resolveIceTcp(config.media, config.announcedAddress).announcedAddress];
  const allowed = v['allowed-peer-ip'] ?? [...new Set(media)].filter((a) => isIP(a));
  for (const host of media.filter((a) => !isIP(a))) {
    err(`note: media address "${host}" is a host name; coturn needs its IP: pass --allowed-peer-ip <ip> if it is in a private range`);
  }
  if (allowed.some((ip) => /^127\.|^::1$/.test(ip))) {
    err('note: a loopback media address: coturn refuses loopback peers whatever allowed-peer-ip says (see docs/turn.md)');
  }
  try {
    const text = coturnConfig({
      secret: config.turn.secret,
      realm: config.turn.realm,
      listeningPort: port(v['listening-port'], 3478),
      ...(v['no-tls']
        ? {}
        : {
            tls: {
              port: port(v['tls-listening-port'], 443),
              cert: v.cert ?? '/etc/coturn/tls/fullchain.pem',
              pkey: v.pkey ?? '/etc/coturn/tls/privkey.pem',
            },
          }),
      listeningIps: v['listening-ip'] ?? [],
      relayIps: v['relay-ip'] ?? [],
      externalIps: v['external-ip'] ?? [],
      allowedPeerIps: allowed,
      minPort: port(v['min-port'], 49152),
      maxPort: port(v['max-port'], 65535),
      log: v.log ?? 'syslog',
    });
    if (v.out) {
      writeFileSync(v.out, text, { mode: 0o600 });
      chmodSync(v.out, 0o600); // an existing file keeps its mode otherwise
      err(`wrote ${v.out} (mode 0600; it holds turn.secret): chown turnserver: ${v.out}`);
    } else {
      process.stdout.write(text);
      if (process.stdout.isTTY) err('note: this holds turn.secret: save it mode 0600 (or use --out)');
    }
  } catch (e) {
    if (e instanceof CoturnOptionError) throw new CoturnUsageError(e.message);
    throw e;
  }
}

function port(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text)) throw new CoturnUsageError(`${JSON.stringify(text)} is not a port`);
  return Number(text);
}
