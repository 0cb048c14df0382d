/**
 * SDP glue between mediasoup's ORTC-style parameters and werift.
 *
 * werift only speaks SDP, mediasoup only speaks parameter objects, so each
 * test client writes the *server's* half of the SDP exchange itself (the way
 * mediasoup-client's RemoteSdp does) and reads its own half back with werift's
 * SessionDescription parser.
 */
import type { types } from 'mediasoup';
import { SessionDescription, type RTCPeerConnection, type RTCPeerConnectionConfig } from 'werift';

/** What our server answers to `createTransport` (a mediasoup WebRtcTransport). */
export interface TransportParams {
  transportId: string;
  iceParameters: types.IceParameters;
  iceCandidates: types.IceCandidate[];
  dtlsParameters: types.DtlsParameters;
}

/** Called once per transport with the client's DTLS role and fingerprints (→ `transport.connect`). */
export type ConnectFn = (dtlsParameters: types.DtlsParameters) => Promise<void>;

/** One m-section offered or answered on behalf of the server. */
export interface RemoteMedia {
  kind: types.MediaKind;
  mid: string;
  /** From the server's point of view. */
  direction: 'sendonly' | 'recvonly' | 'inactive';
  codecs: types.RtpCodecParameters[];
  headerExtensions: Array<{ uri: string; id: number }>;
  /** Only for media the server sends: the SSRC and CNAME werift should route by. */
  ssrc?: number;
  cname?: string;
}

/**
 * The server's whole SDP. mediasoup is ICE-lite and puts every m-line on one
 * BUNDLEd transport, so ICE and DTLS lines are repeated per m-line (werift
 * reads candidates per m-section) and the BUNDLE group lists all mids.
 */
export function buildRemoteSdp(
  transport: TransportParams,
  setup: 'actpass' | 'passive',
  media: RemoteMedia[],
  opts: { tcp?: boolean } = {},
): string {
  const { iceParameters, dtlsParameters } = transport;
  const lines = [
    'v=0',
    `o=mediasoup ${Date.now()} ${Date.now()} IN IP4 0.0.0.0`,
    's=-',
    't=0 0',
    'a=ice-lite',
    `a=group:BUNDLE ${media.map((m) => m.mid).join(' ')}`,
    'a=msid-semantic: WMS *',
  ];
  for (const m of media) {
    // A rejected m-line keeps its slot (m-lines are never removed) but gets port 0.
    const port = m.direction === 'inactive' ? 0 : 7;
    lines.push(
      `m=${m.kind} ${port} UDP/TLS/RTP/SAVPF ${m.codecs.map((c) => c.payloadType).join(' ')}`,
      'c=IN IP4 127.0.0.1',
      `a=mid:${m.mid}`,
      `a=${m.direction}`,
      `a=ice-ufrag:${iceParameters.usernameFragment}`,
      `a=ice-pwd:${iceParameters.password}`,
      ...dtlsParameters.fingerprints.map((f) => `a=fingerprint:${f.algorithm} ${f.value.toUpperCase()}`),
      `a=setup:${setup}`,
      ...candidateLines(transport.iceCandidates, opts.tcp ?? false),
      'a=rtcp-mux',
      'a=rtcp-rsize',
      ...m.headerExtensions.map((e) => `a=extmap:${e.id} ${e.uri}`),
      ...m.codecs.flatMap(codecLines),
    );
    if (m.ssrc !== undefined && m.direction === 'sendonly') {
      const cname = m.cname ?? 'mediasoup';
      lines.push(`a=msid:${cname} track-${m.mid}`, `a=ssrc:${m.ssrc} cname:${cname}`, `a=ssrc:${m.ssrc} msid:${cname} track-${m.mid}`);
    }
  }
  return `${lines.join('\r\n')}\r\n`;
}

function candidateLines(candidates: types.IceCandidate[], tcp: boolean): string[] {
  // werift gathers UDP only unless iceUseTcp is set; then the server's passive TCP candidates count too.
  const wanted = candidates.filter((c) => c.protocol === 'udp' || tcp);
  return [
    ...wanted.map(
      (c) =>
        `a=candidate:${c.foundation} 1 ${c.protocol} ${c.priority} ${c.address ?? c.ip} ${c.port} typ host` +
        (c.protocol === 'tcp' ? ` tcptype ${c.tcpType ?? 'passive'}` : ''),
    ),
    'a=end-of-candidates',
  ];
}

function codecLines(codec: types.RtpCodecParameters): string[] {
  const [, name] = codec.mimeType.split('/');
  const channels = codec.channels && codec.channels > 1 ? `/${codec.channels}` : '';
  const lines = [`a=rtpmap:${codec.payloadType} ${name}/${codec.clockRate}${channels}`];
  const fmtp = formatFmtp(codec.parameters);
  if (fmtp) lines.push(`a=fmtp:${codec.payloadType} ${fmtp}`);
  for (const fb of codec.rtcpFeedback ?? []) {
    lines.push(`a=rtcp-fb:${codec.payloadType} ${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`);
  }
  return lines;
}

export function formatFmtp(parameters: Record<string, unknown> | undefined): string {
  return Object.entries(parameters ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(';');
}

/** The client's DTLS parameters, read from werift's own local description. */
export function localDtlsParameters(localSdp: string): types.DtlsParameters {
  const parsed = SessionDescription.parse(localSdp);
  const dtls = parsed.media.find((m) => m.dtlsParams)?.dtlsParams;
  if (!dtls || dtls.fingerprints.length === 0) throw new Error('local SDP has no DTLS fingerprint');
  // After negotiation werift is always the DTLS client with mediasoup (setup:active);
  // "auto" would only appear in an offer, where the answer decides.
  const role: types.DtlsRole = dtls.role === 'server' ? 'server' : 'client';
  return {
    role,
    fingerprints: dtls.fingerprints.map((f) => ({
      algorithm: f.algorithm as types.FingerprintAlgorithm,
      value: f.value,
    })),
  };
}

/** Resolve once werift reports ICE+DTLS up; reject on failure, close or timeout. */
export function waitConnected(pc: RTCPeerConnection, timeoutMs: number, what: string): Promise<void> {
  if (pc.connectionState === 'connected') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: still ${pc.connectionState} after ${timeoutMs} ms`)), timeoutMs);
    const sub = pc.connectionStateChange.subscribe((state) => {
      if (state === 'connected') done();
      else if (state === 'failed' || state === 'closed') done(new Error(`${what}: connection ${state}`));
    });
    function done(err?: Error): void {
      clearTimeout(timer);
      sub.unSubscribe();
      if (err) reject(err);
      else resolve();
    }
  });
}

/**
 * werift settings shared by both peers: IPv4 only, one BUNDLEd transport, and
 * loopback added explicitly because werift skips internal interfaces.
 * No ICE servers: mediasoup announces its own candidates (see also disableStun).
 */
export function baseConfig(localAddress: string): RTCPeerConnectionConfig {
  return {
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: [localAddress],
    bundlePolicy: 'max-bundle',
  };
}

/**
 * werift's ICE agent falls back to stun.l.google.com when no STUN server is
 * configured, and gathering waits up to 5 s for it. Offline, that DNS lookup
 * sometimes hangs the full 5 s (seen with 30 peers created at once), so clear
 * it on every transport; call right before setLocalDescription, which gathers.
 */
export function disableStun(pc: RTCPeerConnection): void {
  for (const t of pc.iceTransports) t.connection.stunServer = undefined;
}
