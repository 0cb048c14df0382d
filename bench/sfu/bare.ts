/**
 * Bare mediasoup as a fan-out target whose per-packet settings can be varied
 * (for bench/sfu/levers.ts and the side-by-side run): the worker's log level
 * and tags, the outputs' SRTP suite, whether the outputs' transports run
 * mediasoup's bandwidth estimation, and what the plain outputs' consumers
 * negotiate (NACK, header extensions).
 *
 * The topology is bench/bare-mediasoup.ts's: one worker pinned to one CPU,
 * one router, the werift + ffmpeg instructor into a WebRtcTransport, and n
 * PlainTransports with SRTP (rtcpMux, comedia off) each consuming audio and
 * video towards a local UDP socket. No WebRTC classrooms here: Janus gets
 * none either, so both carry exactly the plain outputs.
 *
 * mediasoup picks its worker binary when its module is loaded, so a process
 * runs one binary; levers.ts starts a child process per binary.
 */
import type { types } from 'mediasoup';
import { lessonMediaCodecs } from '../../src/media/codecs.js';
import { loadMediasoup, resolveWorkerBin } from '../../src/media/mediasoup.js';
import { useSendBatch } from '../../src/media/workerPool.js';
import type { SharedRtpSource } from '../../kit/ffmpegRtp.js';
import { receiverRtpCapabilities } from '../../kit/rtcReceiver.js';
import type { RtcSender } from '../../kit/rtcSender.js';
import { barePlainOutputs, consumerScores, publishBare, sumSent, type FanoutTarget, type LessonSource } from '../fanout/target.js';
import { pinProcess } from '../lib.js';

/**
 * What a plain output's consumer negotiates:
 * - 'full': the bench receivers' capabilities (video NACK + PLI; mid and abs-send-time extensions), as lessoncast's plain receivers use them
 * - 'no-nack': no RTCP feedback, so no retransmission buffer per output (a plain UDP receiver never sends a NACK)
 * - 'no-nack-no-ext': also no header extensions (nothing to rewrite per packet)
 */
export type ConsumerCaps = 'full' | 'no-nack' | 'no-nack-no-ext';

export function consumerCapabilities(kind: ConsumerCaps): types.RtpCapabilities {
  const caps = structuredClone(receiverRtpCapabilities);
  if (kind !== 'full') for (const c of caps.codecs ?? []) c.rtcpFeedback = [];
  if (kind === 'no-nack-no-ext') caps.headerExtensions = [];
  return caps;
}

export interface BareSettings {
  logLevel: types.WorkerLogLevel;
  logTags?: types.WorkerLogTag[];
  srtpCryptoSuite: types.SrtpCryptoSuite;
  consumerCaps: ConsumerCaps;
  /**
   * enableBwe of the outputs' PlainTransports (mediasoup ≥ 3.32; its default is true: every
   * transport then runs a sender congestion controller on each packet sent, even with no
   * transport-cc feedback negotiated); undefined = mediasoup's default.
   */
  outputBwe?: boolean;
  /** Our worker build's sendmmsg() batching (lessoncast's media.udpSendBatch); undefined = lessoncast's default, on. */
  sendBatch?: boolean;
}

export interface BareTargetOptions {
  cpu: number;
  source: LessonSource;
  settings: BareSettings;
  /** One ffmpeg shared by successive targets in a process (same encoded lesson, no restart). */
  sharedSource?: SharedRtpSource;
  name?: string;
}

export async function startBareTarget(opts: BareTargetOptions): Promise<FanoutTarget & { workerBin: string }> {
  const workerBin = resolveWorkerBin('').path;
  const ms = await loadMediasoup(workerBin);
  const s = opts.settings;
  useSendBatch(s.sendBatch !== false);
  const worker = await ms.createWorker({ logLevel: s.logLevel, ...(s.logTags ? { logTags: s.logTags } : {}) });
  let sender: RtcSender | undefined;
  const close = async (): Promise<void> => {
    await sender?.close();
    worker.close();
  };
  try {
    pinProcess(worker.pid, String(opts.cpu));
    // lessoncast's own router codecs, as bench/bare-mediasoup.ts.
    const router = await worker.createRouter({ mediaCodecs: lessonMediaCodecs });
    const sendTransport = await router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] });
    const published = await publishBare(sendTransport, router.rtpCapabilities, opts.source, opts.sharedSource);
    sender = published.sender;
    const { producers } = published;
    const caps = consumerCapabilities(s.consumerCaps);
    const consumers = new Set<types.Consumer>();
    const setOutputs = barePlainOutputs(router, producers, {
      srtpCryptoSuite: s.srtpCryptoSuite,
      rtpCapabilities: caps,
      ...(s.outputBwe === undefined ? {} : { enableBwe: s.outputBwe }),
      onConsumer: (c) => {
        consumers.add(c);
        c.observer.once('close', () => consumers.delete(c));
      },
    });
    const src = sender.source.process.pid;
    return {
      name: opts.name ?? 'bare mediasoup',
      workerBin,
      sfu: [{ label: 'worker', pid: worker.pid, cpu: opts.cpu }],
      helperPids: src && !opts.sharedSource ? [src] : [],
      webrtcProbes: [],
      setOutputs,
      sent: () => sumSent([...consumers]),
      scores: () => consumerScores([...consumers]),
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
