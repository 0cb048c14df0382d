/**
 * A sending WebRTC peer ("instructor", or a classroom holding the floor) on
 * werift, publishing ffmpeg's test pattern and tone into a mediasoup
 * WebRtcTransport.
 *
 * werift makes the offer (one sendonly m-line per track, codecs and header
 * extension ids taken from the router's capabilities); we answer on the
 * server's behalf (recvonly, setup:passive) and turn each offered m-line into
 * mediasoup `rtpParameters` for `transport.produce`.
 */
import type { types } from 'mediasoup';
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, SessionDescription } from 'werift';
import { startFfmpegRtp, type FfmpegRtpSource, type SharedRtpSource, type VideoCodecName } from './ffmpegRtp.js';
import {
  baseConfig,
  disableStun,
  buildRemoteSdp,
  formatFmtp,
  localDtlsParameters,
  waitConnected,
  type ConnectFn,
  type RemoteMedia,
  type TransportParams,
} from './rtcSdp.js';

export type { VideoCodecName } from './ffmpegRtp.js';

/** Passes rtpParameters to the server's `produce` (mediasoup `transport.produce`); returns the producer id. */
export type ProduceFn = (kind: types.MediaKind, rtpParameters: types.RtpParameters) => Promise<string>;

export interface RtcSenderOptions {
  transport: TransportParams;
  routerRtpCapabilities: types.RtpCapabilities;
  connect: ConnectFn;
  produce: ProduceFn;
  /** Default true. */
  audio?: boolean;
  /** Default 'h264'; false for audio only. */
  video?: VideoCodecName | false;
  videoBitrateKbps?: number;
  /** Test pattern size and rate; default 640x360 at 30 fps (benchmarks send 1280x720). */
  videoSize?: { width: number; height: number; fps?: number };
  /** Load tests: take packets from an already running (shared) ffmpeg instead of starting one; its codecs must match. */
  sharedSource?: SharedRtpSource;
  localAddress?: string;
  /**
   * A lossy uplink: every Nth RTP packet of each track is never sent. werift keeps the source's
   * sequence numbers (plus an offset), so the gap is real loss that no retransmission can repair.
   */
  dropEvery?: number;
  connectTimeoutMs?: number;
  ffmpegPath?: string;
}

export interface SentTrackStats {
  producerId: string;
  rtpParameters: types.RtpParameters;
  /** Packets/bytes (RTP as received from ffmpeg) handed to werift while DTLS was up. */
  packetsWritten: number;
  bytesWritten: number;
  /** PLIs mediasoup sent us (ffmpeg cannot be asked for a keyframe; it makes one per second). */
  pliReceived: number;
}

/** RTCP feedback werift's sender acts on; anything else the router offers is left out. */
const SENDER_FEEDBACK = new Set(['nack', 'nack pli', 'goog-remb', 'transport-cc']);
/** Header extensions werift's sender writes. */
const SENDER_EXTENSIONS = new Set([
  'urn:ietf:params:rtp-hdrext:sdes:mid',
  'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
  'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01',
]);

interface PlannedTrack {
  kind: types.MediaKind;
  codec: types.RtpCodecParameters;
  extensions: Array<{ uri: types.RtpHeaderExtensionUri; id: number }>;
  track: MediaStreamTrack;
  mid?: string;
  stats?: SentTrackStats;
}

export class RtcSender {
  private closed = false;

  private constructor(
    readonly pc: RTCPeerConnection,
    readonly source: FfmpegRtpSource,
    private readonly tracks: PlannedTrack[],
  ) {}

  /** Negotiates, connects, produces every track and starts ffmpeg; cleans up if any step fails. */
  static async create(options: RtcSenderOptions): Promise<RtcSender> {
    const planned = planTracks(options);
    const pc = new RTCPeerConnection({
      ...baseConfig(options.localAddress ?? '127.0.0.1'),
      codecs: {
        audio: planned.filter((t) => t.kind === 'audio').map((t) => toWeriftCodec(t.codec)),
        video: planned.filter((t) => t.kind === 'video').map((t) => toWeriftCodec(t.codec)),
      },
      headerExtensions: {
        audio: weriftExtensions(planned, 'audio'),
        video: weriftExtensions(planned, 'video'),
      },
    });
    let source: FfmpegRtpSource | undefined;
    try {
      for (const t of planned) pc.addTransceiver(t.track, { direction: 'sendonly' });
      // Start encoding right away; werift drops packets until DTLS is up.
      source = await startSource(options, planned, pc);
      const sender = new RtcSender(pc, source, planned);
      await sender.negotiate(options);
      return sender;
    } catch (err) {
      await Promise.allSettled([source?.close(), pc.close()]);
      throw err;
    }
  }

  producerId(kind: types.MediaKind): string {
    const t = this.tracks.find((x) => x.kind === kind);
    if (!t?.stats) throw new Error(`no ${kind} producer`);
    return t.stats.producerId;
  }

  stats(): Partial<Record<types.MediaKind, SentTrackStats>> {
    const out: Partial<Record<types.MediaKind, SentTrackStats>> = {};
    for (const t of this.tracks) if (t.stats) out[t.kind] = { ...t.stats };
    return out;
  }

  /** Kills ffmpeg (SIGINT) and closes the peer connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.source.close(), this.pc.close()]);
  }

  private async negotiate(options: RtcSenderOptions): Promise<void> {
    const offer = await this.pc.createOffer();
    disableStun(this.pc);
    await this.pc.setLocalDescription(offer);
    const local = SessionDescription.parse(offer.sdp);
    // Our offer says actpass; the answer below says passive, so werift is the DTLS client.
    await options.connect(localDtlsParameters(offer.sdp));

    const answerMedia: RemoteMedia[] = [];
    const rtpParameters: types.RtpParameters[] = [];
    for (const [i, t] of this.tracks.entries()) {
      const m = local.media[i];
      const mid = m?.rtp.muxId;
      const ssrc = m?.ssrc[0];
      if (!m || mid === undefined || !ssrc) throw new Error(`werift offer has no mid/ssrc for m-line ${i}`);
      t.mid = mid;
      const headerExtensions = m.rtp.headerExtensions
        .filter((e) => t.extensions.some((x) => x.uri === e.uri))
        .map((e) => ({ uri: e.uri as types.RtpHeaderExtensionUri, id: e.id }));
      answerMedia.push({ kind: t.kind, mid, direction: 'recvonly', codecs: [t.codec], headerExtensions });
      rtpParameters.push({
        mid,
        codecs: [t.codec],
        headerExtensions: headerExtensions.map((e) => ({ ...e, encrypt: false, parameters: {} })),
        encodings: [{ ssrc: ssrc.ssrc }],
        rtcp: { cname: ssrc.cname ?? this.pc.cname, reducedSize: true },
      });
    }
    await this.pc.setRemoteDescription({ type: 'answer', sdp: buildRemoteSdp(options.transport, 'passive', answerMedia) });

    for (const [i, t] of this.tracks.entries()) {
      const params = rtpParameters[i];
      if (!params) continue;
      const producerId = await options.produce(t.kind, params);
      t.stats = { producerId, rtpParameters: params, packetsWritten: 0, bytesWritten: 0, pliReceived: 0 };
    }
    for (const sender of this.pc.getSenders()) {
      const t = this.tracks.find((x) => x.track === sender.track);
      sender.onPictureLossIndication.subscribe(() => {
        if (t?.stats) t.stats.pliReceived += 1;
      });
    }
    await waitConnected(this.pc, options.connectTimeoutMs ?? 10_000, `sender ${options.transport.transportId}`);
  }
}

/** Pick each track's codec and header extensions from the router's capabilities. */
function planTracks(options: RtcSenderOptions): PlannedTrack[] {
  const caps = options.routerRtpCapabilities;
  const planned: PlannedTrack[] = [];
  const add = (kind: types.MediaKind, cap: types.RtpCodecCapability | undefined, what: string): void => {
    if (!cap) throw new Error(`router cannot receive ${what}`);
    const codec: types.RtpCodecParameters = {
      mimeType: cap.mimeType,
      payloadType: cap.preferredPayloadType,
      clockRate: cap.clockRate,
      ...(cap.channels !== undefined ? { channels: cap.channels } : {}),
      parameters: { ...cap.parameters },
      rtcpFeedback: (cap.rtcpFeedback ?? []).filter((fb) => SENDER_FEEDBACK.has(`${fb.type}${fb.parameter ? ` ${fb.parameter}` : ''}`)),
    };
    const extensions = (caps.headerExtensions ?? [])
      .filter(
        (e) =>
          e.kind === kind &&
          SENDER_EXTENSIONS.has(e.uri) &&
          (e.direction === undefined || e.direction === 'sendrecv' || e.direction === 'recvonly'),
      )
      .map((e) => ({ uri: e.uri, id: e.preferredId }));
    planned.push({ kind, codec, extensions, track: new MediaStreamTrack({ kind }) });
  };
  const codecs = caps.codecs ?? [];
  const isMime = (c: types.RtpCodecCapability, mime: string): boolean => c.mimeType.toLowerCase() === mime;
  if (options.audio ?? true)
    add(
      'audio',
      codecs.find((c) => isMime(c, 'audio/opus')),
      'audio/opus',
    );
  const video = options.video ?? 'h264';
  if (video === 'h264') {
    // ffmpeg's RTP packetizer uses FU-A, i.e. packetization-mode 1.
    const h264 = codecs.filter((c) => isMime(c, 'video/h264') && Number(c.parameters?.['packetization-mode']) === 1);
    add(
      'video',
      h264.find((c) => String(c.parameters?.['profile-level-id']).toLowerCase() === '42e01f') ?? h264[0],
      'H264 packetization-mode 1',
    );
  } else if (video === 'vp8') {
    add(
      'video',
      codecs.find((c) => isMime(c, 'video/vp8')),
      'VP8',
    );
  }
  if (planned.length === 0) throw new Error('RtcSender: nothing to send');
  return planned;
}

function toWeriftCodec(codec: types.RtpCodecParameters): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: codec.mimeType,
    clockRate: codec.clockRate,
    channels: codec.channels,
    payloadType: codec.payloadType,
    parameters: formatFmtp(codec.parameters) || undefined,
    rtcpFeedback: (codec.rtcpFeedback ?? []).map((fb) => ({ type: fb.type, parameter: fb.parameter || undefined })),
  });
}

function weriftExtensions(planned: PlannedTrack[], kind: types.MediaKind): RTCRtpHeaderExtensionParameters[] {
  return (planned.find((t) => t.kind === kind)?.extensions ?? []).map((e) => new RTCRtpHeaderExtensionParameters(e));
}

/** One ffmpeg for all tracks; every RTP packet goes to its werift track (which rewrites SSRC/PT/seq). */
function startSource(options: RtcSenderOptions, planned: PlannedTrack[], pc: RTCPeerConnection): Promise<FfmpegRtpSource> {
  const sink = (t: PlannedTrack) => {
    let n = 0;
    return (rtp: Buffer) => {
      if (pc.connectionState !== 'connected') return;
      if (options.dropEvery && ++n % options.dropEvery === 0) return;
      t.track.writeRtp(rtp);
      if (t.stats) {
        t.stats.packetsWritten += 1;
        t.stats.bytesWritten += rtp.length;
      }
    };
  };
  const audio = planned.find((t) => t.kind === 'audio');
  const video = planned.find((t) => t.kind === 'video');
  if (options.sharedSource) {
    const shared = options.sharedSource;
    const unsubscribe = [audio && shared.subscribe('audio', sink(audio)), video && shared.subscribe('video', sink(video))];
    return Promise.resolve({
      process: shared.source.process,
      exited: shared.source.exited,
      stderrTail: () => shared.source.stderrTail(),
      close: async () => {
        for (const u of unsubscribe) if (u) u();
      },
    });
  }
  const randomSsrc = (): number => 1 + Math.floor(Math.random() * 0x7ffffffe); // ffmpeg's -ssrc is a signed int
  return startFfmpegRtp({
    ffmpegPath: options.ffmpegPath,
    audio: audio && { payloadType: audio.codec.payloadType, ssrc: randomSsrc(), onPacket: sink(audio) },
    video: video && {
      codec: video.codec.mimeType.toLowerCase() === 'video/vp8' ? 'vp8' : 'h264',
      payloadType: video.codec.payloadType,
      ssrc: randomSsrc(),
      onPacket: sink(video),
      bitrateKbps: options.videoBitrateKbps,
      ...options.videoSize,
    },
  });
}
