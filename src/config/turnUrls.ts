/**
 * The shape of a TURN server URL as browsers take it (RFC 7065):
 * `turn:host[:port][?transport=udp|tcp]` or `turns:host[:port][?transport=tcp]`.
 * No `//`, no user info, no other query: browsers refuse those, so the start does too.
 */
export interface TurnUrl {
  scheme: 'turn' | 'turns';
  host: string;
  /** The port given, else the scheme's default (3478 for turn:, 5349 for turns:). */
  port: number;
  /** The transport given, else undefined (browsers then try UDP for turn:, TCP for turns:). */
  transport: 'udp' | 'tcp' | undefined;
}

const URL_SHAPE = /^(turns?):(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/;
const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** The parsed URL, or why it is not one (a sentence for the configuration error). */
export function parseTurnUrl(url: string): TurnUrl | string {
  const m = URL_SHAPE.exec(url);
  if (!m) {
    if (/^turns?:\/\//.test(url)) return 'a TURN URL has no "//" (turn:host:port, not turn://host:port)';
    if (/^turns?:/.test(url)) return 'expected turn:host[:port][?transport=udp|tcp] or turns:host[:port][?transport=tcp]';
    return 'the scheme must be turn: or turns:';
  }
  const [, scheme, host, portText, transport] = m as unknown as [string, 'turn' | 'turns', string, string?, ('udp' | 'tcp')?];
  if (!host.startsWith('[') && !host.split('.').every((label) => HOST_LABEL.test(label))) return `"${host}" is not a host name or address`;
  const port = portText === undefined ? (scheme === 'turns' ? 5349 : 3478) : Number(portText);
  if (port < 1 || port > 65535) return `port ${port} is outside 1-65535`;
  if (scheme === 'turns' && transport === 'udp') return 'turns: with transport=udp is TURN over DTLS, which browsers do not speak';
  return { scheme, host, port, transport };
}
