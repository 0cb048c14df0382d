import type { types } from 'mediasoup';
import { RtcReceiver, type RtcReceiverOptions } from './rtcReceiver.js';
import { RtcSender, type RtcSenderOptions, type VideoCodecName } from './rtcSender.js';
import type { SignalClient } from './signalClient.js';
import type { ProducerView } from '../src/domain/index.js';
import type { TransportParams } from './rtcSdp.js';

/** Publishes a test pattern (and tone) through the real protocol: createTransport → connect → produce. */
export async function publish(
  client: SignalClient,
  routerRtpCapabilities: Record<string, unknown>,
  opts: { audio?: boolean; video?: VideoCodecName | false } & Pick<
    RtcSenderOptions,
    'videoBitrateKbps' | 'videoSize' | 'sharedSource' | 'dropEvery'
  > = {},
): Promise<RtcSender> {
  const t = await client.request('createTransport', { direction: 'send' });
  return RtcSender.create({
    transport: t as unknown as TransportParams,
    routerRtpCapabilities: routerRtpCapabilities,
    connect: async (dtlsParameters) => {
      await client.request('connectTransport', {
        transportId: t.transportId,
        dtlsParameters: dtlsParameters,
      });
    },
    produce: async (kind, rtpParameters) =>
      (
        await client.request('produce', {
          transportId: t.transportId,
          kind,
          rtpParameters: rtpParameters,
          source: kind === 'audio' ? 'microphone' : 'camera',
        })
      ).producerId,
    audio: opts.audio ?? true,
    video: opts.video ?? 'h264',
    ...(opts.videoBitrateKbps !== undefined ? { videoBitrateKbps: opts.videoBitrateKbps } : {}),
    ...(opts.videoSize ? { videoSize: opts.videoSize } : {}),
    ...(opts.sharedSource ? { sharedSource: opts.sharedSource } : {}),
    ...(opts.dropEvery ? { dropEvery: opts.dropEvery } : {}),
  });
}

/**
 * A receiving participant: one receive transport; consumes every producer
 * already in the lesson and each new one announced, resuming each consumer
 * once werift is ready for it.
 */
export class Watcher {
  readonly consumerOf = new Map<string, string>(); // producerId → consumerId
  private receiver?: RtcReceiver;
  private transportId = '';
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly client: SignalClient) {}

  static async start(
    client: SignalClient,
    producers: ProducerView[],
    opts: Pick<RtcReceiverOptions, 'ice' | 'connectTimeoutMs' | 'transportFeedback' | 'rtpCapabilities' | 'localAddress'> & {
      forceTcp?: boolean;
    } = {},
  ): Promise<Watcher> {
    const w = new Watcher(client);
    const t = await client.request('createTransport', { direction: 'recv', ...(opts.forceTcp ? { forceTcp: true } : {}) });
    w.transportId = t.transportId;
    w.receiver = new RtcReceiver({
      ...(opts.ice ? { ice: opts.ice } : {}),
      ...(opts.connectTimeoutMs ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
      ...(opts.transportFeedback ? { transportFeedback: true } : {}),
      ...(opts.rtpCapabilities ? { rtpCapabilities: opts.rtpCapabilities } : {}),
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      transport: t as unknown as TransportParams,
      connect: async (dtlsParameters) => {
        await client.request('connectTransport', {
          transportId: t.transportId,
          dtlsParameters: dtlsParameters,
        });
      },
    });
    client.onNotification = (event, data) => {
      if (event === 'newProducer') void w.consume((data as ProducerView).producerId);
    };
    for (const p of producers) await w.consume(p.producerId);
    return w;
  }

  get rtc(): RtcReceiver {
    return this.receiver!;
  }

  /** Consumes one producer (serialized: werift renegotiates one offer at a time). */
  consume(producerId: string): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.consumerOf.has(producerId)) return;
      const c = await this.client.request('consume', {
        transportId: this.transportId,
        producerId,
        rtpCapabilities: this.rtc.rtpCapabilities,
      });
      this.consumerOf.set(producerId, c.consumerId);
      await this.rtc.addConsumer({
        consumerId: c.consumerId,
        producerId,
        kind: c.kind,
        rtpParameters: c.rtpParameters as unknown as types.RtpParameters,
      });
      await this.client.request('resumeConsumer', { consumerId: c.consumerId });
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves when RTP of this producer has arrived; returns ms since the watcher was created. */
  async firstPacket(producerId: string, timeoutMs = 15000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (!this.consumerOf.has(producerId)) {
      if (Date.now() > deadline) throw new Error(`never consumed ${producerId}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const at = await this.rtc.firstPacket(this.consumerOf.get(producerId)!, Math.max(1, deadline - Date.now()));
    return at - this.rtc.createdAt;
  }

  packets(producerId: string): number {
    const id = this.consumerOf.get(producerId);
    return id ? this.rtc.stats(id).packets : 0;
  }

  async close(): Promise<void> {
    await this.receiver?.close();
  }
}
