/**
 * One SFU under the fan-out bench. lessoncast and bare mediasoup implement it
 * today; any other SFU (Janus's rtp_forward, a raw sendto loop) fits the same
 * shape: receive the lesson, keep n plain SRTP outputs to the given UDP
 * destinations, say which processes do the forwarding.
 */
import type { types } from 'mediasoup';
import type { RtcReceiver } from '../../kit/rtcReceiver.js';
import type { ConnectFn, TransportParams } from '../../kit/rtcSdp.js';
import type { SharedRtpSource } from '../../kit/ffmpegRtp.js';
import { RtcSender } from '../../kit/rtcSender.js';
import { inBatches } from '../lib.js';
import { SeqTracker, type Destination, type LossProbe } from './probes.js';

export { inBatches } from '../lib.js';

export interface SfuProcess {
  label: string;
  pid: number;
  /** The CPU it is pinned to. */
  cpu: number;
}

export interface FanoutTarget {
  readonly name: string;
  /** The processes whose CPU is the measured figure. */
  readonly sfu: SfuProcess[];
  /** Load-generator processes besides this Node (e.g. the sender's ffmpeg), for CPU accounting. */
  readonly helperPids: number[];
  /** Real WebRTC classrooms checking loss and order. */
  readonly webrtcProbes: LossProbe[];
  /** Adds or removes outputs (one classroom each: audio + video) so that exactly n exist; output i goes to destination(i). */
  setOutputs(n: number, destination: (i: number) => Destination): Promise<void>;
  /** RTP packets and bytes sent so far by all outputs, from the SFU's own counters; undefined if it keeps none. */
  sent(): Promise<{ packets: number; bytes: number } | undefined>;
  /**
   * The same counters one by one (per consumer), each timed when read, for a
   * sample of at most `maxCounters`, each counter weighed by the outputs it
   * stands for, so that the sample's rate is the total's (consumerSample);
   * reading thousands of counters from a saturated worker would
   * take minutes (its channel is served between packet bursts). Optional.
   */
  sentSample?(maxCounters: number): Promise<SentCounters>;
  /**
   * mediasoup consumer scores (0–10) over all outputs; undefined if the SFU has
   * none. Plain outputs send no receiver reports, so theirs stay 10: the
   * minimum is where a WebRTC classroom's degraded score shows.
   */
  scores(): { mean: number; min: number } | undefined;
  /**
   * A browser classroom's output (issue 18), for the fan-out bench's browser profile: a WebRTC
   * receive transport on the worker's WebRtcServer with the SFU's classroom settings (DTLS-SRTP,
   * bandwidth estimation), consuming every producer, paused, with `rtpCapabilities`. The bench
   * connects a receiver to it, then resumes it. Optional: SFUs without WebRTC outputs have none.
   */
  openBrowserOutput?(i: number, rtpCapabilities: types.RtpCapabilities): Promise<BrowserOutput>;
  close(): Promise<void>;
}

/** One browser-classroom output: what a receiver needs to connect, and the SFU side's handles. */
export interface BrowserOutput {
  transport: TransportParams;
  connect: ConnectFn;
  consumers: Array<{ consumerId: string; kind: types.MediaKind; rtpParameters: types.RtpParameters }>;
  resume(): Promise<void>;
  /** The transport's bandwidth estimate towards the receiver (bps), from the SFU's stats. */
  estimate(): Promise<number | undefined>;
  close(): void;
}

/** A mediasoup WebRtcTransport's bandwidth estimate (availableOutgoingBitrate), or undefined once closed. */
export async function transportEstimate(t: types.Transport): Promise<number | undefined> {
  if (t.closed) return undefined;
  const [stats] = (await t.getStats().catch(() => [])) as Array<{ availableOutgoingBitrate?: number }>;
  return stats?.availableOutgoingBitrate;
}

/** Counter id → packets and bytes sent so far, and when (performance.now()) that was read. */
export type SentCounters = Map<string, { packets: number; bytes: number; at: number }>;

/** Packets and bits per second between two readings: each counter over its own interval. */
export function sendRates(a: SentCounters, b: SentCounters): { pktPerS: number; bitPerS: number } {
  let pktPerS = 0;
  let bitPerS = 0;
  for (const [id, cb] of b) {
    const ca = a.get(id);
    if (!ca || cb.at <= ca.at) continue;
    const s = (cb.at - ca.at) / 1000;
    pktPerS += (cb.packets - ca.packets) / s;
    bitPerS += ((cb.bytes - ca.bytes) * 8) / s;
  }
  return { pktPerS, bitPerS };
}

export interface LessonSource {
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
}

/**
 * The bare-mediasoup baselines' outputs: each a PlainTransport with SRTP to
 * one destination, consuming every producer. `setOutputs(n)` closes the
 * surplus and opens the missing ones (16 at a time); `onConsumer` sees every
 * consumer opened.
 */
export function barePlainOutputs(
  router: types.Router,
  producers: types.Producer[],
  opts: {
    srtpCryptoSuite: types.SrtpCryptoSuite;
    rtpCapabilities: types.RtpCapabilities;
    onConsumer: (c: types.Consumer) => void;
    /** mediasoup ≥ 3.32's per-transport bandwidth estimation (its default: on); undefined = mediasoup's default. */
    enableBwe?: boolean;
  },
): (n: number, destination: (i: number) => Destination) => Promise<void> {
  const outputs: types.PlainTransport[] = [];
  const open = async (i: number, dest: Destination): Promise<void> => {
    const t = await router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: '127.0.0.1' },
      rtcpMux: true,
      comedia: false,
      enableSrtp: true,
      srtpCryptoSuite: opts.srtpCryptoSuite,
      ...(opts.enableBwe === undefined ? {} : { enableBwe: opts.enableBwe }),
    });
    outputs[i] = t;
    await t.connect({ ip: dest.ip, port: dest.port, srtpParameters: t.srtpParameters! });
    for (const p of producers) opts.onConsumer(await t.consume({ producerId: p.id, rtpCapabilities: opts.rtpCapabilities }));
  };
  return async (n, destination) => {
    while (outputs.length > n) outputs.pop()!.close();
    const fresh = Array.from({ length: Math.max(0, n - outputs.length) }, (_, k) => outputs.length + k);
    await inBatches(fresh, 16, (i) => open(i, destination(i)));
  };
}

/**
 * The lesson published by werift straight into a bare mediasoup send
 * transport (no signalling): what the bare-mediasoup baselines feed their fan-out with.
 */
export async function publishBare(
  sendTransport: types.WebRtcTransport,
  routerRtpCapabilities: types.RtpCapabilities,
  source: LessonSource,
  sharedSource?: SharedRtpSource,
): Promise<{ sender: RtcSender; producers: types.Producer[] }> {
  const producers: types.Producer[] = [];
  const sender = await RtcSender.create({
    transport: {
      transportId: sendTransport.id,
      iceParameters: sendTransport.iceParameters,
      iceCandidates: sendTransport.iceCandidates,
      dtlsParameters: sendTransport.dtlsParameters,
    },
    routerRtpCapabilities,
    connect: (dtlsParameters) => sendTransport.connect({ dtlsParameters }),
    produce: async (kind, rtpParameters) => {
      const p = await sendTransport.produce({ kind, rtpParameters });
      producers.push(p);
      return p.id;
    },
    audio: true,
    video: 'h264',
    videoBitrateKbps: source.videoKbps,
    videoSize: { width: source.width, height: source.height, fps: source.fps },
    ...(sharedSource ? { sharedSource } : {}),
  });
  return { sender, producers };
}

/** Sums consumer counters: only the consumer's own outbound stream (getStats also lists the producer's). */
export async function sumSent(consumers: types.Consumer[]): Promise<{ packets: number; bytes: number }> {
  let packets = 0;
  let bytes = 0;
  for (const c of (await consumerCounters(consumers)).values()) {
    packets += c.packets;
    bytes += c.bytes;
  }
  return { packets, bytes };
}

/** A sample of consumers' counters, spread over every kind of output. */
export async function consumerSample(consumers: types.Consumer[], maxCounters: number): Promise<SentCounters> {
  const live = consumers.filter((c) => !c.closed);
  // Audio and video consumers send at very different rates and usually alternate in the list, so
  // one stride over the list can pick a single kind (every other one, when the stride is even).
  // Each kind is sampled on its own, and each picked counter weighs for the consumers of its kind it
  // stands for.
  const picked: Array<{ consumer: types.Consumer; weight: number }> = [];
  const kinds = [...new Set(live.map((c) => c.kind))];
  for (const kind of kinds) {
    const ofKind = live.filter((c) => c.kind === kind);
    const n = Math.min(ofKind.length, Math.max(1, Math.floor(maxCounters / kinds.length)));
    for (let i = 0; i < n; i++) picked.push({ consumer: ofKind[Math.floor((i * ofKind.length) / n)]!, weight: ofKind.length / n });
  }
  const counters = await consumerCounters(picked.map((p) => p.consumer));
  for (const { consumer, weight } of picked) {
    const x = counters.get(consumer.id);
    if (x) counters.set(consumer.id, { ...x, packets: x.packets * weight, bytes: x.bytes * weight });
  }
  return counters;
}

/** Reads each consumer's own outbound stream counters (getStats also lists the producer's stream). */
export async function consumerCounters(consumers: types.Consumer[]): Promise<SentCounters> {
  const out: SentCounters = new Map();
  await inBatches(consumers, 200, async (c) => {
    if (c.closed) return;
    const stats = await c.getStats().catch(() => []);
    const at = performance.now();
    for (const st of stats) if (st.type === 'outbound-rtp') out.set(c.id, { packets: st.packetCount, bytes: st.byteCount, at });
  });
  return out;
}

export function consumerScores(consumers: types.Consumer[]): { mean: number; min: number } | undefined {
  const live = consumers.filter((c) => !c.closed).map((c) => c.score.score);
  return live.length ? { mean: live.reduce((a, x) => a + x, 0) / live.length, min: Math.min(...live) } : undefined;
}

/**
 * A werift classroom as a loss probe: listens to every received track itself
 * (after SRTP and NACK repair), so late packets are counted too.
 */
export function weriftProbe(label: string, rtc: RtcReceiver): LossProbe {
  const seq = new SeqTracker();
  for (const t of rtc.pc.getTransceivers()) {
    for (const track of t.receiver.tracks) track.onReceiveRtp.subscribe((p) => seq.add(p.header.ssrc, p.header.sequenceNumber));
  }
  return { label, counters: () => seq.counters() };
}
