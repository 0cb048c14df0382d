/**
 * Media for one join of one lesson, through mediasoup-client: a send transport
 * for what this page publishes, a receive transport for what it consumes.
 * A rejoin builds a new MediaSession (the server set up media afresh).
 */
import { Device, type types } from 'mediasoup-client';
import type { MediaSource, ProducerView } from '../../../src/domain/index.js';
import type { ResponseData } from '../../../src/signalling/protocol.js';
import { Emitter } from './emitter.js';
import type { SignalConnection } from './signal.js';

/** Instructor camera: three simulcast layers so each classroom (and the control room) gets what its link carries. */
const CAMERA_SIMULCAST: types.RtpEncodingParameters[] = [
  { rid: 'r0', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'r1', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'r2', scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];
/** Board/screen: one sharp layer; text matters more than motion. */
const SCREEN_ENCODING: types.RtpEncodingParameters[] = [{ maxBitrate: 1_500_000 }];

export interface ConsumerInfo {
  consumer: types.Consumer;
  producerId: string;
  participantId: string;
  source: MediaSource;
  kind: 'audio' | 'video';
}

export interface InboundStat {
  producerId: string;
  participantId: string;
  source: MediaSource;
  kind: 'audio' | 'video';
  bytesReceived: number;
  packetsReceived: number;
  packetsLost: number;
  framesDecoded: number;
  frameWidth: number;
  frameHeight: number;
  jitter: number;
}

export type TransportDirection = 'send' | 'recv';

/**
 * What media needs of a join response: the router's capabilities, and the ICE servers (TURN
 * credentials, renewed on every join) and policy ('relay' for schools that must use TURN).
 */
export type JoinMedia = Pick<ResponseData['join'], 'routerRtpCapabilities' | 'iceServers' | 'iceTransportPolicy'>;

type MediaEvents = {
  /** A transport's ICE/DTLS state changed ('disconnected' and 'failed' deserve a banner). */
  transportState: [direction: TransportDirection, state: string];
  /** The server closed a consumer (its producer went away). */
  consumerClosed: [info: ConsumerInfo];
  layersChanged: [info: ConsumerInfo, spatialLayer: number | null];
};

/** After this long in 'disconnected', ask the server for new ICE parameters. */
const ICE_RESTART_AFTER_MS = 3000;

export class MediaSession extends Emitter<MediaEvents> {
  private sendTransport?: Promise<types.Transport>;
  private recvTransport?: Promise<types.Transport>;
  private readonly producers = new Map<MediaSource, types.Producer>();
  /** By producer id. */
  readonly consumers = new Map<string, ConsumerInfo>();
  /** Consumes in flight, so a producer announced twice (join reply and notification) is consumed once. */
  private readonly consuming = new Map<string, Promise<ConsumerInfo>>();
  private readonly unsubscribe: Array<() => void> = [];
  private closed = false;

  private constructor(
    private readonly client: SignalConnection,
    readonly device: Device,
    private readonly ice: Pick<JoinMedia, 'iceServers' | 'iceTransportPolicy'>,
  ) {
    super();
    this.unsubscribe.push(
      client.on('consumerClosed', ({ producerId }) => this.dropConsumer(producerId)),
      client.on('producerClosed', ({ producerId }) => {
        this.dropConsumer(producerId);
        for (const [source, p] of this.producers) if (p.id === producerId) this.forgetProducer(source);
      }),
      client.on('consumerLayersChanged', ({ consumerId, spatialLayer }) => {
        const info = [...this.consumers.values()].find((c) => c.consumer.id === consumerId);
        if (info) this.emit('layersChanged', info, spatialLayer);
      }),
    );
  }

  static async create(client: SignalConnection, join: JoinMedia): Promise<MediaSession> {
    const device = new Device();
    await device.load({ routerRtpCapabilities: join.routerRtpCapabilities });
    return new MediaSession(client, device, { iceServers: join.iceServers, iceTransportPolicy: join.iceTransportPolicy });
  }

  // -- publishing -----------------------------------------------------------

  /** Publishes a track as camera, microphone or screen; replaces the track if that source is already published. */
  async publish(source: MediaSource, track: MediaStreamTrack): Promise<types.Producer> {
    const existing = this.producers.get(source);
    if (existing && !existing.closed) {
      await existing.replaceTrack({ track });
      return existing;
    }
    const transport = await this.ensureTransport('send');
    if (source === 'screen') track.contentHint = 'detail';
    const options: types.ProducerOptions =
      source === 'camera'
        ? { track, encodings: CAMERA_SIMULCAST, codecOptions: { videoGoogleStartBitrate: 1000 } }
        : source === 'screen'
          ? { track, encodings: SCREEN_ENCODING }
          : { track, codecOptions: { opusStereo: false, opusFec: true } };
    const producer = await transport.produce({ ...options, stopTracks: false, appData: { source } });
    this.producers.set(source, producer);
    producer.on('transportclose', () => this.producers.delete(source));
    return producer;
  }

  /** Stops publishing a source (tells the server, which tells everyone). */
  async unpublish(source: MediaSource): Promise<void> {
    const producer = this.producers.get(source);
    if (!producer) return;
    this.forgetProducer(source);
    if (this.client.open) await this.client.request('closeProducer', { producerId: producer.id }).catch(() => undefined);
  }

  isPublishing(source: MediaSource): boolean {
    return this.producers.has(source);
  }

  private forgetProducer(source: MediaSource): void {
    const producer = this.producers.get(source);
    this.producers.delete(source);
    if (producer && !producer.closed) producer.close();
  }

  // -- receiving --------------------------------------------------------------

  /**
   * Consumes a producer and resumes it once set up locally (the server starts consumers paused).
   * A preferred simulcast layer is set before the resume, so the first key frame asked for is of that layer.
   */
  consume(view: ProducerView, opts: { spatialLayer?: 0 | 1 | 2 } = {}): Promise<ConsumerInfo> {
    const known = this.consumers.get(view.producerId);
    if (known) return Promise.resolve(known);
    let pending = this.consuming.get(view.producerId);
    if (!pending) {
      pending = this.startConsume(view, opts.spatialLayer).finally(() => this.consuming.delete(view.producerId));
      this.consuming.set(view.producerId, pending);
    }
    return pending;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private async startConsume(view: ProducerView, spatialLayer: 0 | 1 | 2 | undefined): Promise<ConsumerInfo> {
    const transport = await this.ensureTransport('recv');
    const reply = await this.client.request('consume', {
      transportId: transport.id,
      producerId: view.producerId,
      rtpCapabilities: this.device.recvRtpCapabilities,
    });
    const consumer = await transport.consume({
      id: reply.consumerId,
      producerId: reply.producerId,
      kind: reply.kind,
      rtpParameters: reply.rtpParameters as unknown as types.RtpParameters,
    });
    const info: ConsumerInfo = {
      consumer,
      producerId: view.producerId,
      participantId: view.participantId,
      source: view.source,
      kind: view.kind,
    };
    if (this.closed) {
      consumer.close();
      throw new Error('media closed');
    }
    this.consumers.set(view.producerId, info);
    if (spatialLayer !== undefined && view.kind === 'video')
      await this.client.request('setPreferredLayers', { consumerId: consumer.id, spatialLayer });
    await this.client.request('resumeConsumer', { consumerId: consumer.id });
    return info;
  }

  private dropConsumer(producerId: string): void {
    const info = this.consumers.get(producerId);
    if (!info) return;
    this.consumers.delete(producerId);
    info.consumer.close();
    this.emit('consumerClosed', info);
  }

  // -- transports -------------------------------------------------------------

  private ensureTransport(direction: TransportDirection): Promise<types.Transport> {
    if (direction === 'send') return (this.sendTransport ??= this.createTransport('send'));
    return (this.recvTransport ??= this.createTransport('recv'));
  }

  private async createTransport(direction: TransportDirection): Promise<types.Transport> {
    const p = await this.client.request('createTransport', { direction });
    const options: types.TransportOptions = {
      id: p.transportId,
      iceParameters: p.iceParameters as unknown as types.IceParameters,
      iceCandidates: p.iceCandidates as unknown as types.IceCandidate[],
      dtlsParameters: p.dtlsParameters as unknown as types.DtlsParameters,
      iceServers: this.ice.iceServers,
      iceTransportPolicy: this.ice.iceTransportPolicy,
    };
    const transport = direction === 'send' ? this.device.createSendTransport(options) : this.device.createRecvTransport(options);
    transport.on('connect', ({ dtlsParameters }, done, fail) => {
      this.client.request('connectTransport', { transportId: transport.id, dtlsParameters: dtlsParameters }).then(() => done(), fail);
    });
    if (direction === 'send') {
      transport.on('produce', ({ kind, rtpParameters, appData }, done, fail) => {
        this.client
          .request('produce', {
            transportId: transport.id,
            kind,
            rtpParameters: rtpParameters,
            source: (appData as { source: MediaSource }).source,
          })
          .then(({ producerId }) => done({ id: producerId }), fail);
      });
    }
    let restartTimer: number | undefined;
    transport.on('connectionstatechange', (state) => {
      this.emit('transportState', direction, state);
      clearTimeout(restartTimer);
      if (state === 'failed') void this.restartIce(transport);
      else if (state === 'disconnected') restartTimer = window.setTimeout(() => void this.restartIce(transport), ICE_RESTART_AFTER_MS);
    });
    if (this.closed) transport.close();
    return transport;
  }

  private async restartIce(transport: types.Transport): Promise<void> {
    if (this.closed || transport.closed || !this.client.open) return;
    try {
      const { iceParameters } = await this.client.request('restartIce', { transportId: transport.id });
      await transport.restartIce({ iceParameters: iceParameters as unknown as types.IceParameters });
    } catch {
      // The signalling link reconnects by itself and a rejoin builds new transports.
    }
  }

  // -- diagnostics --------------------------------------------------------------

  /** inbound-rtp figures per consumer, picked by the consumer's own SSRC (not mediasoup's probation stream). */
  async inboundStats(): Promise<InboundStat[]> {
    const out: InboundStat[] = [];
    for (const info of this.consumers.values()) {
      if (info.consumer.closed) continue;
      const ssrc = info.consumer.rtpParameters.encodings?.[0]?.ssrc;
      const report = await info.consumer.getStats();
      report.forEach((s: Record<string, unknown>) => {
        if (s['type'] !== 'inbound-rtp' || (ssrc !== undefined && s['ssrc'] !== ssrc)) return;
        out.push({
          producerId: info.producerId,
          participantId: info.participantId,
          source: info.source,
          kind: info.kind,
          bytesReceived: num(s['bytesReceived']),
          packetsReceived: num(s['packetsReceived']),
          packetsLost: num(s['packetsLost']),
          framesDecoded: num(s['framesDecoded']),
          frameWidth: num(s['frameWidth']),
          frameHeight: num(s['frameHeight']),
          jitter: num(s['jitter']),
        });
      });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const u of this.unsubscribe) u();
    for (const source of [...this.producers.keys()]) this.forgetProducer(source);
    for (const info of this.consumers.values()) info.consumer.close();
    this.consumers.clear();
    for (const t of [this.sendTransport, this.recvTransport]) {
      const transport = await t?.catch(() => undefined);
      if (transport && !transport.closed) transport.close();
    }
    this.removeAllListeners();
  }
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/**
 * The media of the link's current join. A rejoin replaces it: the old session is closed first,
 * and work queued for the old one (a late notification) is dropped instead of touching it.
 */
export class CurrentMedia {
  private pending?: Promise<MediaSession>;
  /** The ready session, if any (undefined while a new one is being set up). */
  current?: MediaSession;

  replace(client: SignalConnection, join: JoinMedia): Promise<MediaSession> {
    const old = this.pending;
    this.current = undefined;
    const next = (async () => {
      await (await old?.catch(() => undefined))?.close();
      return MediaSession.create(client, join);
    })();
    this.pending = next;
    next.then(
      (m) => {
        if (this.pending === next) this.current = m;
        else void m.close();
      },
      () => undefined,
    );
    return next;
  }

  /** Runs fn on the current session once it is ready, unless a newer join replaced it meanwhile. */
  async with<T>(fn: (m: MediaSession) => Promise<T> | T): Promise<T | undefined> {
    const pending = this.pending;
    if (!pending) return undefined;
    const m = await pending;
    if (pending !== this.pending || m.isClosed) return undefined;
    return fn(m);
  }

  async close(): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    this.current = undefined;
    await (await pending?.catch(() => undefined))?.close();
  }
}
