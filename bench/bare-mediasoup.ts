/**
 * The same fan-out as lessoncast's, done by mediasoup alone: one worker, one
 * router, the instructor's werift sender (same ffmpeg source) into a plain
 * WebRtcTransport, WebRTC classrooms on their own WebRtcTransports, and n
 * PlainTransports with SRTP sending to the bench's UDP receivers. No
 * lessoncast code runs; the worker binary is the one lessoncast would use.
 *
 *   npx tsx bench/fanout.ts --targets bare    (the fan-out ladder on this target alone)
 */
import type { types } from 'mediasoup';
import { lessonMediaCodecs } from '../src/media/codecs.js';
import { loadMediasoup, resolveWorkerBin } from '../src/media/mediasoup.js';
import { useSendBatch } from '../src/media/workerPool.js';
import { RtcReceiver, receiverRtpCapabilities } from '../kit/rtcReceiver.js';
import type { RtcSender } from '../kit/rtcSender.js';
import { pinProcess } from './lib.js';
import {
  barePlainOutputs,
  consumerScores,
  publishBare,
  consumerSample,
  sumSent,
  transportEstimate,
  weriftProbe,
  type BrowserOutput,
  type FanoutTarget,
  type LessonSource,
} from './fanout/target.js';

export interface BareTargetOptions {
  cpu: number;
  srtpCryptoSuite: types.SrtpCryptoSuite;
  webrtcClassrooms: number;
  source: LessonSource;
  /** Our worker build's sendmmsg() batching (lessoncast's media.udpSendBatch). */
  sendBatch: boolean;
  /**
   * The bandwidth-estimation options of a browser output's transport: lessoncast's own defaults
   * for a classroom's receive transport, so that both targets run the same profile.
   */
  browserTransport: Pick<
    types.WebRtcTransportOptions,
    'enableBwe' | 'initialAvailableOutgoingBitrate' | 'minOutgoingBitrate' | 'maxOutgoingBitrate'
  >;
}

export async function startBareMediasoupTarget(opts: BareTargetOptions): Promise<FanoutTarget> {
  const ms = await loadMediasoup(resolveWorkerBin('').path);
  useSendBatch(opts.sendBatch);
  const worker = await ms.createWorker();
  const receivers: RtcReceiver[] = [];
  let sender: RtcSender | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled(receivers.map((r) => r.close()));
    await sender?.close();
    worker.close();
  };
  try {
    pinProcess(worker.pid, String(opts.cpu));
    // lessoncast's own router codecs, so the two targets negotiate alike.
    const router = await worker.createRouter({ mediaCodecs: lessonMediaCodecs });
    const listenInfos: types.TransportListenInfo[] = [{ protocol: 'udp', ip: '127.0.0.1' }];
    const webRtcParams = (t: types.WebRtcTransport) => ({
      transportId: t.id,
      iceParameters: t.iceParameters,
      iceCandidates: t.iceCandidates,
      dtlsParameters: t.dtlsParameters,
    });

    const sendTransport = await router.createWebRtcTransport({ listenInfos });
    const published = await publishBare(sendTransport, router.rtpCapabilities, opts.source);
    sender = published.sender;
    const { producers } = published;

    const consumers = new Set<types.Consumer>();
    const track = (c: types.Consumer): types.Consumer => {
      consumers.add(c);
      c.observer.once('close', () => consumers.delete(c));
      return c;
    };

    for (let k = 0; k < opts.webrtcClassrooms; k++) {
      const t = await router.createWebRtcTransport({ listenInfos });
      const rtc = new RtcReceiver({ transport: webRtcParams(t), connect: (dtlsParameters) => t.connect({ dtlsParameters }) });
      receivers.push(rtc);
      for (const p of producers) {
        const c = track(await t.consume({ producerId: p.id, rtpCapabilities: receiverRtpCapabilities, paused: true }));
        await rtc.addConsumer({ consumerId: c.id, producerId: p.id, kind: c.kind, rtpParameters: c.rtpParameters });
        await c.resume();
      }
    }

    // Browser outputs live on a WebRtcServer (UDP and TCP, as lessoncast's workers have one).
    const webRtcServer = await worker.createWebRtcServer({
      listenInfos: [
        { protocol: 'udp', ip: '127.0.0.1' },
        { protocol: 'tcp', ip: '127.0.0.1' },
      ],
    });
    const openBrowserOutput = async (_i: number, rtpCapabilities: types.RtpCapabilities): Promise<BrowserOutput> => {
      const t = await router.createWebRtcTransport({
        webRtcServer,
        enableUdp: true,
        enableTcp: true,
        preferUdp: true,
        ...opts.browserTransport,
      });
      const made: types.Consumer[] = [];
      for (const p of producers) made.push(track(await t.consume({ producerId: p.id, rtpCapabilities, paused: true })));
      return {
        transport: webRtcParams(t),
        connect: (dtlsParameters) => t.connect({ dtlsParameters }),
        consumers: made.map((c) => ({ consumerId: c.id, kind: c.kind, rtpParameters: c.rtpParameters })),
        resume: async () => {
          for (const c of made) await c.resume();
        },
        estimate: () => transportEstimate(t),
        close: () => t.close(),
      };
    };

    const setOutputs = barePlainOutputs(router, producers, {
      srtpCryptoSuite: opts.srtpCryptoSuite,
      rtpCapabilities: receiverRtpCapabilities,
      onConsumer: track,
    });

    return {
      name: 'bare mediasoup',
      sfu: [{ label: 'worker', pid: worker.pid, cpu: opts.cpu }],
      helperPids: sender.source.process.pid ? [sender.source.process.pid] : [],
      webrtcProbes: receivers.map((r, k) => weriftProbe(`webrtc-${k}`, r)),
      setOutputs,
      sent: () => sumSent([...consumers]),
      sentSample: (max) => consumerSample([...consumers], max),
      scores: () => consumerScores([...consumers]),
      openBrowserOutput,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
