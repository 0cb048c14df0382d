/**
 * A receiving WebRTC peer ("classroom") on werift, fed by mediasoup consumers.
 *
 * Each consumer becomes one m-line of an SDP offer written on the server's
 * behalf (sendonly, the consumer's mid/PT/SSRC/CNAME/extensions); werift
 * answers as DTLS client. Adding consumers later re-offers the same m-lines
 * plus the new ones, over the already-connected transport.
 */
import type { types } from 'mediasoup';
import {
  RTCPeerConnection,
  RTCRtpCodecParameters,
  RTCRtpHeaderExtensionParameters,
  type RTCPeerConnectionConfig,
  type RtpPacket,
} from 'werift';
import {
  baseConfig,
  buildRemoteSdp,
  disableStun,
  localDtlsParameters,
  waitConnected,
  type ConnectFn,
  type RemoteMedia,
  type TransportParams,
} from './rtcSdp.js';
import { FeedbackSender, TRANSPORT_WIDE_CC_URI } from './transportFeedback.js';

/** What our server answers to `consume` (a mediasoup Consumer). */
export interface ConsumerParams {
  consumerId: string;
  producerId: string;
  kind: types.MediaKind;
  rtpParameters: types.RtpParameters;
}

export interface ConsumerRtpStats {
  kind: types.MediaKind;
  mid: string;
  ssrc: number;
  packets: number;
  /** Whole RTP packets (header + payload), as mediasoup's byteCount counts them. */
  bytes: number;
  payloadBytes: number;
  /** performance.now() of the first / latest packet. */
  firstPacketAt: number | undefined;
  lastPacketAt: number | undefined;
  /** RTP sequence number of the latest packet. */
  lastSeq: number | undefined;
  /** Highest extended (wrap-corrected) sequence number seen minus the first, plus one. */
  expected: number;
  /** expected − packets, floored at 0: losses not (yet) repaired by retransmission. */
  lost: number;
  /** Video: frames whose last packet (RTP marker) arrived, and freezes among them as Chromium counts them. */
  frames: number;
  freezeCount: number;
  totalFreezesMs: number;
  lastFrameAt: number | undefined;
  /** Mean of the recent inter-frame intervals (ms; an exponential mean over ~30 frames). */
  meanFrameIntervalMs: number | undefined;
}

export interface RtcReceiverOptions {
  transport: TransportParams;
  /** Pass to the server's `connectTransport` (mediasoup `transport.connect({ dtlsParameters })`). */
  connect: ConnectFn;
  /** Address werift adds as a host candidate; mediasoup in tests listens on loopback. */
  localAddress?: string;
  connectTimeoutMs?: number;
  /**
   * ICE as a page would get it from `join`: TURN servers (werift uses the first) and the policy
   * ('relay': relayed candidates only); iceUseTcp also offers the server's TCP candidates.
   */
  ice?: Pick<RTCPeerConnectionConfig, 'iceServers' | 'iceTransportPolicy' | 'iceUseTcp' | 'turnTlsOptions'>;
  /**
   * Behave like a browser towards the sender: negotiate transport-cc and send transport-wide
   * feedback for every packet (kit/transportFeedback.ts), so mediasoup's bandwidth estimation and
   * pacing run on this receiver as on Chromium. Off: no transport-cc (the minimal receiver).
   */
  transportFeedback?: boolean;
  /** Consume with these instead (a test's control: transport-cc negotiated, feedback withheld). */
  rtpCapabilities?: types.RtpCapabilities;
}

/**
 * What werift can receive, for `router.canConsume` / `transport.consume`.
 * Payload types match src/media/codecs.ts. Deliberately absent: RTX (keeps
 * sequence numbers meaningful for loss counting; mediasoup then resends NACKed
 * packets on the media SSRC) and transport-cc (werift keeps one TWCC counter
 * per m-line, which would look like heavy loss to mediasoup's estimator).
 */
export const receiverRtpCapabilities: types.RtpCapabilities = {
  codecs: [
    {
      kind: 'audio',
      mimeType: 'audio/opus',
      clockRate: 48000,
      channels: 2,
      preferredPayloadType: 100,
      parameters: { minptime: 10, useinbandfec: 1 },
      rtcpFeedback: [],
    },
    {
      kind: 'video',
      mimeType: 'video/H264',
      clockRate: 90000,
      preferredPayloadType: 102,
      parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
    },
    {
      kind: 'video',
      mimeType: 'video/VP8',
      clockRate: 90000,
      preferredPayloadType: 101,
      parameters: {},
      rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
    },
  ],
  headerExtensions: [
    { kind: 'audio', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, preferredEncrypt: false, direction: 'sendrecv' },
    { kind: 'video', uri: 'urn:ietf:params:rtp-hdrext:sdes:mid', preferredId: 1, preferredEncrypt: false, direction: 'sendrecv' },
    {
      kind: 'audio',
      uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
      preferredId: 4,
      preferredEncrypt: false,
      direction: 'sendrecv',
    },
    {
      kind: 'video',
      uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time',
      preferredId: 4,
      preferredEncrypt: false,
      direction: 'sendrecv',
    },
  ],
};

/**
 * The same, plus transport-cc (header extension and RTCP feedback) on every codec, as a browser
 * asks: for a receiver with `transportFeedback`.
 */
export const feedbackReceiverRtpCapabilities: types.RtpCapabilities = {
  codecs: (receiverRtpCapabilities.codecs ?? []).map((c) => ({
    ...c,
    rtcpFeedback: [...(c.rtcpFeedback ?? []), { type: 'transport-cc' }],
  })),
  headerExtensions: [
    ...(receiverRtpCapabilities.headerExtensions ?? []),
    ...(['audio', 'video'] as const).map((kind): types.RtpHeaderExtension => ({
      kind,
      uri: TRANSPORT_WIDE_CC_URI,
      preferredId: 5,
      preferredEncrypt: false,
      direction: 'sendrecv',
    })),
  ],
};

/** Inter-frame gaps Chromium counts as a freeze: more than max(3 × the mean frame interval, mean + 150 ms). */
function isFreeze(gapMs: number, meanMs: number): boolean {
  return gapMs > Math.max(3 * meanMs, meanMs + 150);
}

interface ConsumerEntry {
  params: ConsumerParams;
  media: RemoteMedia;
  stats: ConsumerRtpStats;
  /** Extended sequence numbers: first seen and highest seen. */
  baseExtSeq: number | undefined;
  highestExtSeq: number | undefined;
  firstPacket?: { promise: Promise<number>; resolve: (at: number) => void };
  unsubscribe?: () => void;
}

export class RtcReceiver {
  /** A copy: mediasoup normalises capabilities in place. */
  readonly rtpCapabilities: types.RtpCapabilities;
  /** performance.now() at construction, to measure time to first packet. */
  readonly createdAt = performance.now();
  readonly pc: RTCPeerConnection;
  private readonly consumers = new Map<string, ConsumerEntry>();
  /** m-lines in offer order; never shrinks (closed consumers go inactive). */
  private readonly media: RemoteMedia[] = [];
  private dtlsConnected = false;
  private closed = false;
  /** Negotiations run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  private feedback: FeedbackSender | undefined;
  /** Sees every RTP packet as it arrives (benches matching packets across receivers). */
  onPacket?: (consumerId: string, packet: RtpPacket, at: number) => void;

  constructor(private readonly options: RtcReceiverOptions) {
    this.rtpCapabilities = structuredClone(
      options.rtpCapabilities ?? (options.transportFeedback ? feedbackReceiverRtpCapabilities : receiverRtpCapabilities),
    );
    this.pc = new RTCPeerConnection({
      ...baseConfig(options.localAddress ?? '127.0.0.1'),
      ...options.ice,
      codecs: {
        audio: capabilityCodecs('audio'),
        video: capabilityCodecs('video'),
      },
      headerExtensions: {
        audio: capabilityExtensions('audio'),
        video: capabilityExtensions('video'),
      },
    });
  }

  get transportId(): string {
    return this.options.transport.transportId;
  }

  get connectionState(): string {
    return this.pc.connectionState;
  }

  addConsumer(consumer: ConsumerParams): Promise<void> {
    return this.addConsumers([consumer]);
  }

  /** Adds m-lines for these consumers in one offer/answer; the first call also connects. */
  addConsumers(consumers: ConsumerParams[]): Promise<void> {
    return this.enqueue(async () => {
      for (const c of consumers) this.register(c);
      await this.negotiate();
    });
  }

  /** Marks the consumer's m-line inactive (e.g. on `consumerClosed`); its stats stay readable. */
  removeConsumer(consumerId: string): Promise<void> {
    return this.enqueue(async () => {
      const entry = this.entry(consumerId);
      if (entry.media.direction === 'inactive') return;
      entry.unsubscribe?.();
      entry.media.direction = 'inactive';
      await this.negotiate();
    });
  }

  stats(consumerId: string): ConsumerRtpStats {
    const { stats } = this.entry(consumerId);
    return { ...stats };
  }

  allStats(): Record<string, ConsumerRtpStats> {
    return Object.fromEntries([...this.consumers].map(([id, e]) => [id, { ...e.stats }]));
  }

  /** Resolves with performance.now() of the consumer's first RTP packet. */
  firstPacket(consumerId: string, timeoutMs = 10_000): Promise<number> {
    const entry = this.entry(consumerId);
    if (entry.stats.firstPacketAt !== undefined) return Promise.resolve(entry.stats.firstPacketAt);
    if (!entry.firstPacket) {
      let resolve!: (at: number) => void;
      const promise = new Promise<number>((r) => (resolve = r));
      entry.firstPacket = { promise, resolve };
    }
    return withTimeout(entry.firstPacket.promise, timeoutMs, `no RTP for consumer ${consumerId} (${entry.stats.kind})`);
  }

  /** Sends a PLI for the consumer's SSRC (mediasoup forwards it to the producer). */
  async requestKeyFrame(consumerId: string): Promise<void> {
    const { stats } = this.entry(consumerId);
    const transceiver = this.pc.getTransceivers().find((t) => t.mid === stats.mid);
    await transceiver?.receiver.sendRtcpPLI(stats.ssrc);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.consumers.values()) e.unsubscribe?.();
    this.feedback?.close();
    await this.pc.close();
  }

  private register(params: ConsumerParams): void {
    const { rtpParameters: rtp } = params;
    const ssrc = rtp.encodings?.[0]?.ssrc;
    if (rtp.mid === undefined || ssrc === undefined) {
      throw new Error(`consumer ${params.consumerId}: rtpParameters need mid and encodings[0].ssrc`);
    }
    if (this.consumers.has(params.consumerId)) throw new Error(`consumer ${params.consumerId} already added`);
    const media: RemoteMedia = {
      kind: params.kind,
      mid: rtp.mid,
      direction: 'sendonly',
      // werift's own transport-cc sender stays off: ours (FeedbackSender) reports every packet.
      codecs: rtp.codecs.map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((fb) => fb.type !== 'transport-cc') })),
      headerExtensions: (rtp.headerExtensions ?? []).map(({ uri, id }) => ({ uri, id })),
      ssrc,
      cname: rtp.rtcp?.cname,
    };
    this.media.push(media);
    this.consumers.set(params.consumerId, {
      params,
      media,
      baseExtSeq: undefined,
      highestExtSeq: undefined,
      stats: {
        kind: params.kind,
        mid: rtp.mid,
        ssrc,
        packets: 0,
        bytes: 0,
        payloadBytes: 0,
        firstPacketAt: undefined,
        lastPacketAt: undefined,
        lastSeq: undefined,
        expected: 0,
        lost: 0,
        frames: 0,
        freezeCount: 0,
        totalFreezesMs: 0,
        lastFrameAt: undefined,
        meanFrameIntervalMs: undefined,
      },
    });
  }

  private async negotiate(): Promise<void> {
    const sdp = buildRemoteSdp(this.options.transport, 'actpass', this.media, { tcp: this.options.ice?.iceUseTcp ?? false });
    await this.pc.setRemoteDescription({ type: 'offer', sdp });
    // werift created the remote tracks while applying the offer: listen before any RTP can flow.
    this.attachTracks();
    const answer = await this.pc.createAnswer();
    if (!this.dtlsConnected) {
      // The server must know our fingerprint before our DTLS ClientHello arrives.
      await this.options.connect(localDtlsParameters(answer.sdp));
      this.dtlsConnected = true;
    }
    disableStun(this.pc);
    await this.pc.setLocalDescription(answer);
    await waitConnected(this.pc, this.options.connectTimeoutMs ?? 10_000, `receiver ${this.transportId}`);
    this.startFeedback();
  }

  /** Once a consumer carries the transport-wide sequence number: feedback for every packet. */
  private startFeedback(): void {
    if (!this.options.transportFeedback || this.feedback) return;
    for (const { params } of this.consumers.values()) {
      const ext = params.rtpParameters.headerExtensions?.find((e) => e.uri === TRANSPORT_WIDE_CC_URI);
      if (!ext) continue;
      this.feedback = new FeedbackSender(this.pc, ext.id);
      return;
    }
  }

  /** Feedback messages sent and packets reported (transportFeedback receivers). */
  get feedbackSent(): { messages: number; reported: number } {
    return { messages: this.feedback?.messages ?? 0, reported: this.feedback?.reported ?? 0 };
  }

  private attachTracks(): void {
    for (const entry of this.consumers.values()) {
      if (entry.unsubscribe || entry.media.direction === 'inactive') continue;
      const transceiver = this.pc.getTransceivers().find((t) => t.mid === entry.stats.mid);
      const track = transceiver?.receiver.trackBySSRC[entry.stats.ssrc];
      if (!track) throw new Error(`werift made no track for mid ${entry.stats.mid} ssrc ${entry.stats.ssrc}`);
      const sub = track.onReceiveRtp.subscribe((packet) => this.onRtp(entry, packet));
      entry.unsubscribe = sub.unSubscribe;
    }
  }

  private onRtp(entry: ConsumerEntry, packet: RtpPacket): void {
    const now = performance.now();
    const { stats } = entry;
    this.onPacket?.(entry.params.consumerId, packet, now);
    const seq = packet.header.sequenceNumber;
    stats.packets += 1;
    // payloadOffset is where the payload started in the wire packet (werift keeps it from parsing).
    stats.bytes += packet.header.payloadOffset + packet.payload.length + (packet.header.padding ? packet.header.paddingSize : 0);
    stats.payloadBytes += packet.payload.length;
    stats.lastPacketAt = now;
    stats.lastSeq = seq;
    if (entry.highestExtSeq === undefined || entry.baseExtSeq === undefined) {
      entry.baseExtSeq = entry.highestExtSeq = seq;
      stats.firstPacketAt = now;
      entry.firstPacket?.resolve(now);
    } else {
      // Signed 16-bit distance from the highest seen: handles wrap, ignores reordering.
      const delta = ((seq - (entry.highestExtSeq & 0xffff) + 0x18000) & 0xffff) - 0x8000;
      if (delta > 0) entry.highestExtSeq += delta;
    }
    stats.expected = entry.highestExtSeq - entry.baseExtSeq + 1;
    stats.lost = Math.max(0, stats.expected - stats.packets);
    if (stats.kind === 'video' && packet.header.marker && packet.payload.length > 0) {
      if (stats.lastFrameAt !== undefined) {
        const gap = now - stats.lastFrameAt;
        if (stats.meanFrameIntervalMs !== undefined && isFreeze(gap, stats.meanFrameIntervalMs)) {
          stats.freezeCount++;
          stats.totalFreezesMs += gap;
        }
        stats.meanFrameIntervalMs =
          stats.meanFrameIntervalMs === undefined ? gap : stats.meanFrameIntervalMs + (gap - stats.meanFrameIntervalMs) / 30;
      }
      stats.frames++;
      stats.lastFrameAt = now;
    }
  }

  private entry(consumerId: string): ConsumerEntry {
    const entry = this.consumers.get(consumerId);
    if (!entry) throw new Error(`unknown consumer ${consumerId}`);
    return entry;
  }

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('receiver closed'));
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

function capabilityCodecs(kind: types.MediaKind): RTCRtpCodecParameters[] {
  // transport-cc stays out of werift's own configuration: see register().
  return (receiverRtpCapabilities.codecs ?? [])
    .filter((c) => c.kind === kind)
    .map(
      (c) =>
        new RTCRtpCodecParameters({
          mimeType: c.mimeType,
          clockRate: c.clockRate,
          channels: c.channels,
          payloadType: c.preferredPayloadType,
          rtcpFeedback: (c.rtcpFeedback ?? []).map((fb) => ({ type: fb.type, parameter: fb.parameter || undefined })),
        }),
    );
}

function capabilityExtensions(kind: types.MediaKind): RTCRtpHeaderExtensionParameters[] {
  return (feedbackReceiverRtpCapabilities.headerExtensions ?? [])
    .filter((e) => e.kind === kind)
    .map((e) => new RTCRtpHeaderExtensionParameters({ id: e.preferredId, uri: e.uri }));
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
