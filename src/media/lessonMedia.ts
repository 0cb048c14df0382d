import { EventEmitter } from 'node:events';
import type { types } from 'mediasoup';
import type { MediaKind, MediaSource } from '../domain/index.js';
import type {
  ConsumerParams,
  HeldMedia,
  LessonMediaEvents,
  LessonMediaPort,
  MediaParameters,
  ProducerInfo,
  TransportParams,
} from '../lessons/mediaPort.js';
import { LessoncastError } from '../errors.js';
import { LinkPolicy, type LinkSettings } from './linkPolicy.js';
import { announcedCandidates, type WorkerPool, type WorkerSlot } from './workerPool.js';

/** A router of this lesson on one worker. Producers live on the first; later ones receive them through pipes. */
interface LessonRouter {
  router: types.Router;
  slot: WorkerSlot;
  /** Receive transports placed here, for capacity accounting. */
  recvTransports: Set<types.Transport>;
  consumers: number;
}

interface PeerMedia {
  transports: Map<string, { transport: types.Transport; home: LessonRouter; direction: 'send' | 'recv' }>;
  producers: Map<string, types.Producer>;
  consumers: Map<string, types.Consumer>;
  /** Layers each consumer's receiver asked for (setPreferredLayers); absent = the best. */
  preferred: Map<string, types.ConsumerLayers>;
  /** Consumers the receiver has not resumed, or paused itself. */
  clientPaused: Set<string>;
}

export interface LessonMediaOptions {
  /** A router past this many (expected) consumers spills new classrooms onto another router. */
  consumersPerRouter: number;
  bwe: BweSettings;
  links: LinkSettings;
}

/**
 * mediasoup's bandwidth estimation for the lesson's WebRTC transports (settings
 * media.enableBwe and media.*Bitrate). Outgoing applies to classrooms' receive
 * transports, incoming to publishers' send transports; 0 = no limit.
 */
export interface BweSettings {
  enableBwe: boolean;
  initialOutgoingBitrate: number;
  minOutgoingBitrate: number;
  maxOutgoingBitrate: number;
  maxIncomingBitrate: number;
}

export const bweSettings = (media: BweSettings): BweSettings => ({
  enableBwe: media.enableBwe,
  initialOutgoingBitrate: media.initialOutgoingBitrate,
  minOutgoingBitrate: media.minOutgoingBitrate,
  maxOutgoingBitrate: media.maxOutgoingBitrate,
  maxIncomingBitrate: media.maxIncomingBitrate,
});

/** The WebRtcTransport options a transport in this direction gets from the settings. */
export interface BweTransportOptions {
  enableBwe: boolean;
  initialAvailableOutgoingBitrate?: number;
  minOutgoingBitrate?: number;
  maxOutgoingBitrate?: number;
  maxIncomingBitrate?: number;
}

export function bweTransportOptions(bwe: BweSettings, direction: 'send' | 'recv'): BweTransportOptions {
  const limit = (bps: number): number | undefined => (bps > 0 ? bps : undefined);
  if (direction === 'send') return { enableBwe: bwe.enableBwe, ...defined({ maxIncomingBitrate: limit(bwe.maxIncomingBitrate) }) };
  return {
    enableBwe: bwe.enableBwe,
    // The estimate starts inside its own bounds (mediasoup rejects a start outside them).
    initialAvailableOutgoingBitrate: Math.min(
      Math.max(bwe.initialOutgoingBitrate, bwe.minOutgoingBitrate),
      bwe.maxOutgoingBitrate > 0 ? bwe.maxOutgoingBitrate : Number.MAX_SAFE_INTEGER,
    ),
    ...defined({ minOutgoingBitrate: limit(bwe.minOutgoingBitrate), maxOutgoingBitrate: limit(bwe.maxOutgoingBitrate) }),
  };
}

const defined = <T extends object>(o: T): Partial<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

/**
 * All of one lesson's media: its routers (one per worker it spans), every
 * participant's transports, producers and consumers. Closing it closes them all.
 * It knows nothing of roles or wire formats: lessons/ decides who may do what.
 */
export class LessonMedia extends EventEmitter<LessonMediaEvents> implements LessonMediaPort {
  private readonly routers: LessonRouter[] = [];
  private readonly peers = new Map<string, PeerMedia>();
  private readonly producers = new Map<string, ProducerInfo & { producer: types.Producer }>();
  /** Router creation and piping run one at a time so a new router never misses a producer. */
  private topology: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Producers of other nodes being adopted (adoptProducer), by id. */
  private readonly adopting = new Map<string, Promise<void>>();
  /** The weak-link policy over every receive transport of this lesson (media.links). */
  readonly links: LinkPolicy;

  constructor(
    private readonly pool: WorkerPool,
    readonly lessonId: string,
    private readonly opts: LessonMediaOptions,
  ) {
    super();
    this.links = new LinkPolicy(opts.links, {
      recvTransports: () => this.webRtcRecvTransports(),
      videoConsumers: (transportId) => this.videoConsumersOn(transportId),
      preferredLayers: (consumerId) => this.consumerEntry(consumerId)?.peer.preferred.get(consumerId),
      pausedByClient: (consumerId) => this.consumerEntry(consumerId)?.peer.clientPaused.has(consumerId) ?? true,
      changed: (peerId, layer, availableKbps) => this.emit('linkChanged', peerId, layer, availableKbps),
      failed: () => undefined,
    });
  }

  /** Creates the first router on first use (lessons may be created long before they start). */
  async ensureOpen(): Promise<void> {
    this.assertOpen();
    await this.serialized(async () => {
      if (this.routers.length === 0) await this.addRouter(new Set());
    });
    this.links.start();
  }

  get rtpCapabilities(): types.RtpCapabilities {
    return this.primary().router.rtpCapabilities;
  }

  /** Workers this lesson's routers live on (first = producers' home). */
  get workerIndexes(): number[] {
    return this.routers.map((r) => r.slot.index);
  }

  get routerCount(): number {
    return this.routers.length;
  }

  /**
   * The router that holds the lesson's producers (for taps such as recording,
   * which consume there through their own PlainTransports). It changes if its
   * worker dies; listeners re-attach on the next `newProducer`.
   */
  get producerRouter(): types.Router {
    return this.primary().router;
  }

  /** Read-only views for monitoring: who has media here, and their transports and consumers. */
  peerIds(): string[] {
    return [...this.peers.keys()];
  }

  transportsOf(peerId: string): Array<{ transport: types.Transport; direction: 'send' | 'recv' }> {
    return [...(this.peers.get(peerId)?.transports.values() ?? [])].map(({ transport, direction }) => ({ transport, direction }));
  }

  consumersOf(peerId: string): types.Consumer[] {
    return [...(this.peers.get(peerId)?.consumers.values() ?? [])];
  }

  producer(producerId: string): types.Producer | undefined {
    return this.producers.get(producerId)?.producer;
  }

  listProducers(): ProducerInfo[] {
    return [...this.producers.values()].map(({ producer: _p, ...info }) => info);
  }

  held(peerId: string): HeldMedia {
    const peer = this.peers.get(peerId);
    return { transports: peer?.transports.size ?? 0, producers: peer?.producers.size ?? 0, consumers: peer?.consumers.size ?? 0 };
  }

  consumerCount(): number {
    let n = 0;
    for (const p of this.peers.values()) n += p.consumers.size;
    return n;
  }

  async createTransport(peerId: string, direction: 'send' | 'recv', forceTcp = false): Promise<TransportParams> {
    this.assertOpen();
    const home = direction === 'send' ? this.primary() : await this.routerWithRoom();
    const transport = await home.router.createWebRtcTransport({
      webRtcServer: home.slot.webRtcServer,
      enableUdp: !forceTcp,
      enableTcp: true,
      preferUdp: !forceTcp,
      ...bweTransportOptions(this.opts.bwe, direction),
      appData: { peerId, direction },
    });
    this.track(peerId, transport, home, direction);
    return {
      transportId: transport.id,
      iceParameters: transport.iceParameters,
      iceCandidates: announcedCandidates(transport.iceCandidates, home.slot),
      dtlsParameters: transport.dtlsParameters,
    };
  }

  /**
   * A receive transport that the caller creates on the router given (the one a classroom would be
   * placed on), tracked as the peer's like any other: consume() and closePeer() take it, and it
   * counts towards the router's load. For transports this class does not make itself, such as
   * the plain RTP outputs of kit/plainReceiver.ts.
   */
  async addRecvTransport<T extends types.Transport>(peerId: string, create: (router: types.Router) => Promise<T>): Promise<T> {
    this.assertOpen();
    const home = await this.routerWithRoom();
    const transport = await create(home.router);
    this.track(peerId, transport, home, 'recv');
    return transport;
  }

  private track(peerId: string, transport: types.Transport, home: LessonRouter, direction: 'send' | 'recv'): void {
    const peer = this.peer(peerId);
    peer.transports.set(transport.id, { transport, home, direction });
    if (direction === 'recv') home.recvTransports.add(transport);
    transport.observer.once('close', () => {
      peer.transports.delete(transport.id);
      home.recvTransports.delete(transport);
    });
  }

  async connectTransport(peerId: string, transportId: string, dtlsParameters: MediaParameters): Promise<void> {
    const { transport } = this.transport(peerId, transportId);
    if (transport.type !== 'webrtc') throw new LessoncastError('INVALID_REQUEST', 'only WebRTC transports take DTLS parameters');
    await this.mediasoupCall(() =>
      (transport as types.WebRtcTransport).connect({ dtlsParameters: dtlsParameters as types.DtlsParameters }),
    );
  }

  async restartIce(peerId: string, transportId: string): Promise<types.IceParameters> {
    const { transport } = this.transport(peerId, transportId);
    if (transport.type !== 'webrtc') throw new LessoncastError('INVALID_REQUEST', 'only WebRTC transports restart ICE');
    return (transport as types.WebRtcTransport).restartIce();
  }

  async produce(
    peerId: string,
    transportId: string,
    kind: MediaKind,
    rtpParameters: MediaParameters,
    source: MediaSource,
  ): Promise<string> {
    const entry = this.transport(peerId, transportId);
    if (entry.direction !== 'send') throw new LessoncastError('INVALID_REQUEST', 'cannot produce on a receive transport');
    const producer = await this.mediasoupCall(() =>
      entry.transport.produce({
        kind,
        rtpParameters: rtpParameters as types.RtpParameters,
        // mediasoup's own throttle: one keyframe request per stream per interval, however many receivers ask.
        ...(kind === 'video' && this.opts.links.keyFrameRequestDelayMs > 0
          ? { keyFrameRequestDelay: this.opts.links.keyFrameRequestDelayMs }
          : {}),
        appData: { peerId, source },
      }),
    );
    const info: ProducerInfo = { producerId: producer.id, peerId, kind, source };
    this.producers.set(producer.id, { ...info, producer });
    this.peer(peerId).producers.set(producer.id, producer);
    producer.observer.once('close', () => {
      this.producers.delete(producer.id);
      this.peers.get(peerId)?.producers.delete(producer.id);
      this.emit('producerClosed', info);
    });
    // Every other router of the lesson gets the producer too.
    await this.serialized(async () => {
      for (const r of this.routers.slice(1)) await this.pipe(producer.id, r);
    });
    return producer.id;
  }

  /**
   * A producer that lives on another node and reaches this lesson through a cross-node pipe
   * (src/cluster/pipes.ts): `create` makes it on the primary router, and from then on it is one
   * of the lesson's producers (listed, piped to the other routers, consumable, producerClosed
   * when its pipe closes it), though no participant here holds it. Concurrent adoptions of one
   * id share one; adopting a producer already here does nothing.
   */
  adoptProducer(info: ProducerInfo, create: (router: types.Router) => Promise<types.Producer>): Promise<void> {
    if (this.producers.has(info.producerId)) return Promise.resolve();
    let pending = this.adopting.get(info.producerId);
    if (!pending) {
      pending = (async () => {
        await this.ensureOpen();
        const producer = await create(this.primary().router);
        if (this.closed || producer.closed) {
          producer.close();
          throw new LessoncastError('PRODUCER_NOT_FOUND', `producer ${info.producerId} is gone`);
        }
        this.producers.set(producer.id, { ...info, producer });
        producer.observer.once('close', () => {
          this.producers.delete(producer.id);
          this.emit('producerClosed', info);
        });
        await this.serialized(async () => {
          for (const r of this.routers.slice(1)) await this.pipe(producer.id, r);
        });
      })().finally(() => this.adopting.delete(info.producerId));
      this.adopting.set(info.producerId, pending);
    }
    return pending;
  }

  closeProducer(peerId: string, producerId: string): void {
    const producer = this.peers.get(peerId)?.producers.get(producerId);
    if (!producer) throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} of yours`);
    producer.close();
  }

  /** Close a participant's producers of some sources (floor taken back). */
  closeProducersOf(peerId: string, predicate: (info: ProducerInfo) => boolean = () => true): void {
    for (const p of [...this.producers.values()]) if (p.peerId === peerId && predicate(p)) p.producer.close();
  }

  async consume(peerId: string, transportId: string, producerId: string, capabilities: MediaParameters): Promise<ConsumerParams> {
    // Checked by mediasoup (canConsume), not by us: it knows what a router can send.
    const rtpCapabilities = capabilities as types.RtpCapabilities;
    const entry = this.transport(peerId, transportId);
    if (entry.direction !== 'recv') throw new LessoncastError('INVALID_REQUEST', 'cannot consume on a send transport');
    if (!this.producers.has(producerId)) throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} in this lesson`);
    let canConsume: boolean;
    try {
      canConsume = entry.home.router.canConsume({ producerId, rtpCapabilities });
    } catch (err) {
      throw new LessoncastError('CANNOT_CONSUME', `rtpCapabilities rejected: ${(err as Error).message}`);
    }
    if (!canConsume) throw new LessoncastError('CANNOT_CONSUME', 'your rtpCapabilities cannot receive this producer');
    // Created paused: the client resumes once its side is ready, so the first packets are not lost.
    const consumer = await this.mediasoupCall(() =>
      entry.transport.consume({ producerId, rtpCapabilities, paused: true, appData: { peerId, transportId } }),
    );
    const peer = this.peer(peerId);
    peer.consumers.set(consumer.id, consumer);
    peer.clientPaused.add(consumer.id);
    await this.prioritise(consumer, producerId, transportId);
    const { home } = entry;
    const worker = home.slot.worker;
    home.consumers++;
    home.slot.consumers++;
    consumer.observer.once('close', () => {
      peer.consumers.delete(consumer.id);
      peer.preferred.delete(consumer.id);
      peer.clientPaused.delete(consumer.id);
      home.consumers--;
      // A consumer closed by its worker's death must not count against the replacement.
      if (home.slot.worker === worker) home.slot.consumers = Math.max(0, home.slot.consumers - 1);
    });
    consumer.on('producerclose', () => this.emit('consumerClosed', peerId, consumer.id, producerId));
    consumer.on('layerschange', (layers) =>
      this.emit('consumerLayersChanged', peerId, consumer.id, layers?.spatialLayer ?? null, layers?.temporalLayer ?? null),
    );
    return {
      consumerId: consumer.id,
      producerId,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
      paused: consumer.paused,
      producerPaused: consumer.producerPaused,
    };
  }

  async resumeConsumer(peerId: string, consumerId: string): Promise<void> {
    const consumer = this.consumer(peerId, consumerId);
    this.peers.get(peerId)?.clientPaused.delete(consumerId);
    const transportId = consumer.appData['transportId'] as string;
    if (consumer.kind === 'video' && this.links.holdsPaused(transportId)) {
      // The link carries audio only for now: the policy resumes it with the others.
      this.links.hold(transportId, consumerId);
      return;
    }
    // No requestKeyFrame here: the worker asks the producer for a key frame itself when a consumer is
    // resumed (or its transport connects). Asking again cost a channel request per join and, inside the
    // producer's keyFrameRequestDelay, a second key frame from the publisher one delay later for nothing.
    await consumer.resume();
  }

  async pauseConsumer(peerId: string, consumerId: string): Promise<void> {
    const consumer = this.consumer(peerId, consumerId);
    this.peers.get(peerId)?.clientPaused.add(consumerId);
    await consumer.pause();
  }

  async setPreferredLayers(peerId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const consumer = this.consumer(peerId, consumerId);
    if (consumer.type !== 'simulcast' && consumer.type !== 'svc') return; // single-layer streams: nothing to choose
    const wanted = { spatialLayer, ...(temporalLayer !== undefined ? { temporalLayer } : {}) };
    this.peers.get(peerId)?.preferred.set(consumerId, wanted);
    // A receiver held at the floor stays there until its link recovers; then it gets what it asked for.
    const layers = this.links.layersFor(consumer.appData['transportId'] as string, wanted) ?? wanted;
    await consumer.setPreferredLayers(layers);
  }

  /** A participant leaves or reconnects: close every transport (and with them producers and consumers). */
  closePeer(peerId: string): void {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    for (const { transport } of [...peer.transports.values()]) transport.close();
    this.peers.delete(peerId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.links.close();
    for (const r of this.routers) r.router.close();
    this.routers.length = 0;
    this.peers.clear();
    this.producers.clear();
  }

  // -- internals ---------------------------------------------------------

  /**
   * Weights in the transport's bitrate share (mediasoup gives audio its bitrate before any video
   * layer is chosen; among videos, the screen's slides before the camera), and a new consumer on a
   * transport held at the floor starts there.
   */
  private async prioritise(consumer: types.Consumer, producerId: string, transportId: string): Promise<void> {
    if (consumer.kind !== 'video') return;
    const source = this.producers.get(producerId)?.source;
    const priority = source === 'screen' ? this.opts.links.screenPriority : this.opts.links.cameraPriority;
    if (priority !== 1) await consumer.setPriority(priority);
    const layers = this.links.layersFor(transportId, undefined);
    if (layers && (consumer.type === 'simulcast' || consumer.type === 'svc')) await consumer.setPreferredLayers(layers);
  }

  private webRtcRecvTransports(): Array<{ peerId: string; transport: types.WebRtcTransport }> {
    const out: Array<{ peerId: string; transport: types.WebRtcTransport }> = [];
    for (const [peerId, peer] of this.peers)
      for (const { transport, direction } of peer.transports.values())
        if (direction === 'recv' && transport.type === 'webrtc' && !transport.closed)
          out.push({ peerId, transport: transport as types.WebRtcTransport });
    return out;
  }

  private videoConsumersOn(transportId: string): types.Consumer[] {
    const out: types.Consumer[] = [];
    for (const peer of this.peers.values())
      for (const c of peer.consumers.values()) if (c.kind === 'video' && c.appData['transportId'] === transportId && !c.closed) out.push(c);
    return out;
  }

  private consumerEntry(consumerId: string): { peer: PeerMedia; consumer: types.Consumer } | undefined {
    for (const peer of this.peers.values()) {
      const consumer = peer.consumers.get(consumerId);
      if (consumer) return { peer, consumer };
    }
    return undefined;
  }

  private primary(): LessonRouter {
    const r = this.routers[0];
    if (!r) throw new LessoncastError('UNAVAILABLE', 'lesson media is being re-created; reconnect shortly');
    return r;
  }

  /** Expected consumers on a router: each receive transport will take every producer of the lesson. */
  private load(r: LessonRouter): number {
    return Math.max(r.consumers, r.recvTransports.size * Math.max(1, this.producers.size));
  }

  /**
   * The router a new receive transport goes to: the first with room; else a new
   * router on a worker this lesson does not use yet; else (every worker already
   * holds one) the least loaded — a second router on the same worker would add
   * no CPU, and mediasoup cannot pipe a producer within one worker.
   */
  private async routerWithRoom(): Promise<LessonRouter> {
    return this.serialized(async () => {
      const withRoom = this.routers.find((r) => this.load(r) < this.opts.consumersPerRouter);
      if (withRoom) return withRoom;
      const used = new Set(this.routers.map((r) => r.slot.index));
      if (this.pool.slots.some((slot) => slot.alive && !used.has(slot.index))) return this.addRouter(used);
      return this.routers.reduce((a, b) => (this.load(b) < this.load(a) ? b : a));
    });
  }

  private async addRouter(avoidWorkers: Set<number>): Promise<LessonRouter> {
    const slot = this.pool.leastLoaded(avoidWorkers);
    const router = await this.pool.createRouter(slot, { lessonId: this.lessonId });
    const entry: LessonRouter = { router, slot, recvTransports: new Set(), consumers: 0 };
    const isPrimary = this.routers.length === 0;
    this.routers.push(entry);
    router.on('workerclose', () => this.onRouterLost(entry, isPrimary));
    if (!isPrimary) for (const id of this.producers.keys()) await this.pipe(id, entry);
    return entry;
  }

  private async pipe(producerId: string, target: LessonRouter): Promise<void> {
    const source = this.primary();
    if (source === target) return;
    await source.router.pipeToRouter({ producerId, router: target.router });
  }

  private onRouterLost(lost: LessonRouter, isPrimary: boolean): void {
    if (this.closed) return;
    const affected = new Set<string>();
    const routersGone = isPrimary ? [...this.routers] : [lost];
    for (const [peerId, peer] of this.peers) {
      for (const { home } of peer.transports.values()) if (routersGone.includes(home)) affected.add(peerId);
    }
    if (isPrimary) {
      // Producers lived there: every participant sets up media again on a fresh router.
      for (const r of this.routers) if (r !== lost) r.router.close();
      this.routers.length = 0;
      for (const peerId of this.peers.keys()) affected.add(peerId);
      for (const peerId of [...this.peers.keys()]) this.closePeer(peerId);
      this.producers.clear();
      this.topology = this.topology.then(() => this.recreatePrimary(0));
    } else {
      this.routers.splice(this.routers.indexOf(lost), 1);
      for (const peerId of affected) this.closePeer(peerId);
    }
    this.emit('mediaLost', [...affected], 'worker died');
  }

  private async recreatePrimary(attempt: number): Promise<void> {
    if (this.closed) return;
    try {
      await this.addRouter(new Set());
    } catch {
      // No live worker yet (its replacement is starting): retry with back-off.
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
      return this.recreatePrimary(attempt + 1);
    }
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.topology.then(fn, fn);
    this.topology = run.catch(() => undefined);
    return run;
  }

  private peer(peerId: string): PeerMedia {
    let p = this.peers.get(peerId);
    if (!p) {
      p = { transports: new Map(), producers: new Map(), consumers: new Map(), preferred: new Map(), clientPaused: new Set() };
      this.peers.set(peerId, p);
    }
    return p;
  }

  private transport(peerId: string, transportId: string): PeerMedia['transports'] extends Map<string, infer V> ? V : never {
    const t = this.peers.get(peerId)?.transports.get(transportId);
    if (!t) throw new LessoncastError('TRANSPORT_NOT_FOUND', `no transport ${transportId} of yours`);
    return t;
  }

  private consumer(peerId: string, consumerId: string): types.Consumer {
    const c = this.peers.get(peerId)?.consumers.get(consumerId);
    if (!c) throw new LessoncastError('CONSUMER_NOT_FOUND', `no consumer ${consumerId} of yours`);
    return c;
  }

  private assertOpen(): void {
    if (this.closed) throw new LessoncastError('LESSON_ENDED', 'lesson media is closed');
  }

  /** mediasoup rejects bad DTLS/RTP parameters with TypeError/Error: those are the client's fault. */
  private async mediasoupCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof LessoncastError) throw err;
      throw new LessoncastError('MEDIA_REJECTED', `mediasoup rejected the parameters: ${(err as Error).message}`);
    }
  }
}
