/**
 * Where a forwarded packet's CPU goes in the mediasoup worker, from `perf record --call-graph
 * dwarf` samples (issue 18): each sample's stack is read from the sampled instruction towards the
 * root, and the first frame that belongs to a kind of work decides the sample's kind. So a
 * memcpy inside the transport-cc feedback handler counts as bandwidth estimation, a kernel
 * function under sendto() as the send syscall, AES inside srtp_protect as SRTP.
 *
 * Kinds (issue 18's split): BWE and pacing, RTCP, SRTP, send syscall, stats, and the rest, which
 * is shown as RTP forwarding, receive syscalls, and other (event loop, channel, allocator,
 * scheduler). Code the compiler inlined counts as its caller's: with the release build's
 * symbols, e.g. a rate calculator inlined into a send stream is forwarding, not stats.
 */

export const SPLIT_KINDS = [
  'BWE and pacing',
  'RTCP',
  'SRTP',
  'send syscall',
  'stats',
  'RTP forwarding',
  'receive syscalls',
  'other (event loop, channel, allocator, scheduler)',
] as const;
export type SplitKind = (typeof SPLIT_KINDS)[number];

/** Tried in this order on each frame (the most specific first). */
const RULES: Array<[SplitKind, RegExp]> = [
  ['SRTP', /\bsrtp_|SrtpSession::|\baes|AES|gcm|GCM|ghash|EVP_|CRYPTO_|OPENSSL|\bsha1|SHA1|HMAC|\(.*(libcrypto|libsrtp)[^)]*\)$/],
  [
    'send syscall',
    /__sys_sendto|__x64_sys_sendto|__sys_sendmsg|__x64_sys_sendmsg|__sys_sendmmsg|__x64_sys_sendmmsg|\budp_sendmsg|^(__libc_)?send(to|msg|mmsg) |uv__udp_sendmsg|uv__udp_send|uv_udp_try_send|uv__sendmmsg|UdpSocketHandler::Send|TcpConnectionHandler::Write/,
  ],
  ['receive syscalls', /__sys_recv|__x64_sys_recv|\budp_recvmsg|^(__libc_)?recv(from|msg|mmsg) |uv__udp_recv|uv__udp_io|uv__read/],
  [
    'BWE and pacing',
    /RTC::BWE::|TransportCongestionControl|SenderTransportCongestion|ReceiverTransportCongestion|Probation|Prob(e|ing)[A-Z:]|Pacer|Paced|OutgoingBitrate|DesiredBitrate|BitrateAllocat|IntervalBudget|TransportWideCc|Remb[A-Z:]/,
  ],
  ['RTCP', /RTCP|Rtcp/],
  ['stats', /RtpDataCounter|RateCalculator|FillBufferStats|FillStats|GetStats|::Stats\b|::Fill(Buffer)?Score/],
  // Requests from Node (getStats aside, whose filling is stats above): parsing, dispatching.
  ['other (event loop, channel, allocator, scheduler)', /::HandleRequest|::HandleNotification|ChannelSocket|Channel::/],
  [
    'RTP forwarding',
    /RTC::(Simple|Simulcast|Svc|Pipe)?Consumer::|RTC::RtpStream|RTC::RtpPacket|RtpRetransmissionBuffer|RTC::Router::|RTC::Producer::|SeqManager|RTC::(WebRtc|Plain|Pipe)?Transport::|RTC::RtpListener|RTC::WebRtcServer::|RTC::IceServer::|RTC::TransportTuple|RTC::UdpSocket|RTC::Codecs::/,
  ],
];

/** The kind of work of one sample, from its frames (sampled instruction first), and the frame that decided it. */
export function kindOfStack(frames: string[]): { kind: SplitKind; frame: string } {
  for (const f of frames) for (const [kind, re] of RULES) if (re.test(f)) return { kind, frame: f };
  return { kind: 'other (event loop, channel, allocator, scheduler)', frame: frames[0] ?? '?' };
}

/** `perf script -F ip,sym,dso` with call chains: one frame list per sample ("symbol (dso)", the sampled instruction first). */
export function parsePerfScript(text: string): string[][] {
  const samples: string[][] = [];
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('\t') || line.startsWith(' ')) {
      // "\t    7f12ab symbol+0x1f (/path/dso)": drop the address.
      const frame = line.trim().replace(/^[0-9a-f]+ /, '');
      if (frame) (current ??= []).push(frame);
    } else if (line.trim() === '') {
      if (current?.length) samples.push(current);
      current = undefined;
    } else {
      if (current?.length) samples.push(current);
      current = []; // a sample's header line (the command name)
    }
  }
  if (current?.length) samples.push(current);
  return samples;
}

/**
 * Share of samples per kind, in SPLIT_KINDS order (fractions summing to 1), each with the frames
 * that decided it most often (function names without offsets and arguments; shares of all samples).
 */
export function splitShares(
  samples: string[][],
  topFrames = 5,
): Array<{ kind: SplitKind; share: number; top: Array<{ frame: string; share: number }> }> {
  const counts = new Map<SplitKind, number>();
  const frames = new Map<SplitKind, Map<string, number>>();
  for (const s of samples) {
    const { kind, frame } = kindOfStack(s);
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    const name = frame.replace(/\+0x[0-9a-f]+/, '').replace(/\(([^()]|\([^()]*\))*\)(?= \()/, '');
    const byFrame = frames.get(kind) ?? new Map<string, number>();
    byFrame.set(name, (byFrame.get(name) ?? 0) + 1);
    frames.set(kind, byFrame);
  }
  const total = Math.max(1, samples.length);
  return SPLIT_KINDS.map((kind) => ({
    kind,
    share: (counts.get(kind) ?? 0) / total,
    top: [...(frames.get(kind) ?? [])]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topFrames)
      .map(([frame, c]) => ({ frame, share: c / total })),
  }));
}
