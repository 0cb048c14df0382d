/**
 * lessoncast as a fan-out target: the server runs in this process
 * (createLessoncastForTests), the instructor publishes over the real /ws protocol
 * (werift + ffmpeg), WebRTC classrooms join over /ws, and the plain SRTP
 * outputs are placed and fed through LessonMedia's own code path
 * (kit/plainReceiver.ts's createPlainReceiver, placed by LessonMedia.addRecvTransport, + consume +
 * resumeConsumer), like any classroom.
 */
import type { types } from 'mediasoup';
import { SignalClient } from '../../kit/signalClient.js';
import { Watcher, publish } from '../../kit/peers.js';
import { createPlainReceiver } from '../../kit/plainReceiver.js';
import { receiverRtpCapabilities } from '../../kit/rtcReceiver.js';
import type { RtcSender } from '../../kit/rtcSender.js';
import type { TransportParams } from '../../kit/rtcSdp.js';
import { createLesson, pinProcess, startInProcess, type InProcessServer } from '../lib.js';
import type { Destination } from './probes.js';
import type { WorkerLevers } from '../fanout.js';
import {
  inBatches,
  consumerScores,
  consumerSample,
  sumSent,
  transportEstimate,
  weriftProbe,
  type BrowserOutput,
  type FanoutTarget,
  type LessonSource,
  type SfuProcess,
} from './target.js';

export interface LessoncastTargetOptions {
  name: string;
  workers: number;
  /** Small values make the lesson spill over every worker through pipeToRouter. */
  consumersPerRouter: number;
  /** CPU each worker is pinned to, by worker index. */
  workerCpus: number[];
  srtpCryptoSuite: types.SrtpCryptoSuite;
  webrtcClassrooms: number;
  source: LessonSource;
  /** Overrides of media.links (the weak-link policy). */
  links?: { floorBelowKbps?: number; pauseBelowKbps?: number };
  /** media.udpSendBatch and media.enableBwe. */
  worker: WorkerLevers;
}

export async function startLessoncastTarget(opts: LessoncastTargetOptions): Promise<FanoutTarget> {
  const s: InProcessServer = await startInProcess({
    media: {
      workers: opts.workers,
      consumersPerRouter: opts.consumersPerRouter,
      udpSendBatch: opts.worker.sendBatch,
      enableBwe: opts.worker.classroomBwe,
      ...(opts.links ? { links: opts.links } : {}),
    },
  });
  const clients: SignalClient[] = [];
  const watchers: Watcher[] = [];
  let sender: RtcSender | undefined;
  const close = async (): Promise<void> => {
    await Promise.allSettled(watchers.map((w) => w.close()));
    await sender?.close();
    for (const c of clients) c.close();
    await s.stop();
  };
  try {
    const sfu: SfuProcess[] = s.internals.pool.slots.map((slot) => ({
      label: `worker ${slot.index}`,
      pid: slot.worker.pid,
      cpu: opts.workerCpus[slot.index] ?? slot.index,
    }));
    for (const p of sfu) pinProcess(p.pid, String(p.cpu));

    const lessonId = await createLesson(s);
    const teacher = await SignalClient.connect(s.wsUrl);
    clients.push(teacher);
    await teacher.request('authenticate', { token: await s.token('instructor', 'teacher-1', [lessonId]) });
    const joined = await teacher.request('join', { lessonId });
    await teacher.request('goLive', {});
    sender = await publish(teacher, joined.routerRtpCapabilities, {
      audio: true,
      video: 'h264',
      videoBitrateKbps: opts.source.videoKbps,
      videoSize: { width: opts.source.width, height: opts.source.height, fps: opts.source.fps },
    });
    const media = s.internals.registry.mediaOf(lessonId)!;
    const producerIds = media.listProducers().map((p) => p.producerId);

    for (let k = 0; k < opts.webrtcClassrooms; k++) {
      const client = await SignalClient.connect(s.wsUrl);
      clients.push(client);
      await client.request('authenticate', { token: await s.token('classroom', `webrtc-${k}`, [lessonId]) });
      const j = await client.request('join', { lessonId });
      const w = await Watcher.start(client, j.producers);
      watchers.push(w);
    }

    const outputs: string[] = []; // peer ids, index = output number
    const addOutput = async (i: number, dest: Destination): Promise<void> => {
      const peerId = `plain-${i}`;
      const { transportId } = await createPlainReceiver(media, peerId, dest, {
        listenIp: '127.0.0.1',
        srtpCryptoSuite: opts.srtpCryptoSuite,
      });
      for (const producerId of producerIds) {
        const c = await media.consume(peerId, transportId, producerId, receiverRtpCapabilities);
        await media.resumeConsumer(peerId, c.consumerId);
      }
    };
    const allConsumers = (): types.Consumer[] => media.peerIds().flatMap((p) => media.consumersOf(p));

    // A browser classroom's output through LessonMedia's own calls, as the signalling handlers
    // make them for createTransport, consume, connectTransport and resumeConsumer.
    const openBrowserOutput = async (i: number, rtpCapabilities: types.RtpCapabilities): Promise<BrowserOutput> => {
      const peerId = `browser-${i}`;
      const t = (await media.createTransport(peerId, 'recv')) as unknown as TransportParams;
      const consumers: BrowserOutput['consumers'] = [];
      for (const producerId of producerIds) {
        const c = await media.consume(peerId, t.transportId, producerId, rtpCapabilities);
        consumers.push({ consumerId: c.consumerId, kind: c.kind, rtpParameters: c.rtpParameters as unknown as types.RtpParameters });
      }
      return {
        transport: t,
        connect: (dtlsParameters) => media.connectTransport(peerId, t.transportId, dtlsParameters),
        consumers,
        resume: async () => {
          for (const c of consumers) await media.resumeConsumer(peerId, c.consumerId);
        },
        estimate: async () => {
          const recv = media.transportsOf(peerId).find((x) => x.direction === 'recv');
          return recv ? transportEstimate(recv.transport) : undefined;
        },
        close: () => media.closePeer(peerId),
      };
    };

    return {
      name: opts.name,
      sfu,
      helperPids: sender.source.process.pid ? [sender.source.process.pid] : [],
      webrtcProbes: watchers.map((w, k) => weriftProbe(`webrtc-${k}`, w.rtc)),
      async setOutputs(n, destination) {
        while (outputs.length > n) media.closePeer(outputs.pop()!);
        const fresh = Array.from({ length: Math.max(0, n - outputs.length) }, (_, k) => outputs.length + k);
        for (const i of fresh) outputs[i] = `plain-${i}`;
        await inBatches(fresh, 16, (i) => addOutput(i, destination(i)));
      },
      sent: () => sumSent(allConsumers()),
      sentSample: (max) => consumerSample(allConsumers(), max),
      scores: () => consumerScores(allConsumers()),
      openBrowserOutput,
      close,
    };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
