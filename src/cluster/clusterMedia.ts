import type { types } from 'mediasoup';
import { Type, type Static } from 'typebox';
import type { MediaKind, MediaSource } from '../domain/index.js';
import { LessoncastError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ConsumerParams, HeldMedia, LessonMediaEvents, MediaParameters, ProducerInfo, TransportParams } from '../lessons/mediaPort.js';
import { LessonMedia, type LessonMediaOptions } from '../media/lessonMedia.js';
import type { WorkerPool } from '../media/workerPool.js';
import type { ClusterChannel } from './channel.js';
import { PipeImport, type PipeAddresses } from './pipes.js';

/**
 * The media of a lesson this node is origin of, when some of its participants are connected to
 * other nodes (edges). The lesson (src/lessons/) sees one media port, as on a single node: calls
 * for a participant of this node go to the local routers (the LessonMedia this extends), calls
 * for a participant on an edge go to that edge (`media.call`), whose media events come back
 * (`media.event`). A producer made on an edge (a classroom given the floor there) is piped here
 * at once and adopted, so the recording and every other node can take it from the origin.
 */

export const MEDIA_OPS = [
  'createTransport',
  'connectTransport',
  'restartIce',
  'produce',
  'closeProducer',
  'consume',
  'resumeConsumer',
  'pauseConsumer',
  'setPreferredLayers',
  'closePeer',
] as const;
export type MediaOp = (typeof MEDIA_OPS)[number];

export const MediaCall = Type.Object(
  {
    lessonId: Type.String({ minLength: 1, maxLength: 128 }),
    peerId: Type.String({ minLength: 1, maxLength: 128 }),
    op: Type.Union(MEDIA_OPS.map((op) => Type.Literal(op))),
    args: Type.Array(Type.Unknown(), { maxItems: 6 }),
    /** consume: the producer as the origin knows it, for the edge to pipe it if it has not yet. */
    producer: Type.Optional(
      Type.Object({
        producerId: Type.String({ maxLength: 64 }),
        peerId: Type.String({ maxLength: 128 }),
        kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
        source: Type.String({ maxLength: 32 }),
      }),
    ),
  },
  { additionalProperties: false },
);
export type MediaCallBody = Omit<Static<typeof MediaCall>, 'op'> & { op: MediaOp };

/** What an edge answers a media call with: the result, and what the participant now holds there. */
export interface MediaCallAnswer {
  result: unknown;
  held: HeldMedia;
}

const FORWARDED_EVENTS = ['consumerClosed', 'consumerLayersChanged', 'linkChanged', 'mediaLost'] as const;
export type ForwardedEvent = (typeof FORWARDED_EVENTS)[number];
export const MediaEvent = Type.Object({
  lessonId: Type.String({ minLength: 1, maxLength: 128 }),
  event: Type.Union(FORWARDED_EVENTS.map((e) => Type.Literal(e))),
  args: Type.Array(Type.Unknown(), { maxItems: 4 }),
});

export interface ClusterMediaDeps {
  channel: ClusterChannel;
  addresses: PipeAddresses;
  log: Logger;
}

export class ClusterMedia extends LessonMedia {
  /** Participants whose media is on another node: participant → node. */
  private readonly remotePeers = new Map<string, string>();
  private readonly remoteHeld = new Map<string, HeldMedia>();
  /** One pipe from each edge that has produced here. */
  private readonly imports = new Map<string, PipeImport>();
  private readonly edgesUsed = new Set<string>();

  constructor(
    pool: WorkerPool,
    lessonId: string,
    opts: LessonMediaOptions,
    private readonly cluster: ClusterMediaDeps,
  ) {
    super(pool, lessonId, opts);
  }

  /** Where a participant's media is made: on `node`, or here (null). A move closes what it held where it was. */
  placePeer(peerId: string, node: string | null): void {
    const was = this.remotePeers.get(peerId) ?? null;
    if (was === node) return;
    this.closePeer(peerId);
    if (node) {
      this.remotePeers.set(peerId, node);
      this.edgesUsed.add(node);
    } else this.remotePeers.delete(peerId);
  }

  /** The node holding a participant's media, or null for this one. */
  nodeOf(peerId: string): string | null {
    return this.remotePeers.get(peerId) ?? null;
  }

  /** Edges serving participants of this lesson now. */
  edges(): string[] {
    return [...new Set(this.remotePeers.values())].sort();
  }

  /** An edge's media event for one of its participants. */
  deliver(from: string, event: ForwardedEvent, args: unknown[]): void {
    const peerIds = event === 'mediaLost' ? (args[0] as string[]) : [args[0] as string];
    if (!peerIds.every((id) => this.remotePeers.get(id) === from)) return; // not (or no longer) that edge's participant
    (this.emit as (e: keyof LessonMediaEvents, ...a: unknown[]) => boolean)(event, ...args);
  }

  /** Every participant on `node` lost its media there (the node died): they set it up again wherever they reconnect. */
  nodeLost(node: string): string[] {
    const lost = [...this.remotePeers].filter(([, n]) => n === node).map(([id]) => id);
    for (const id of lost) {
      this.remotePeers.delete(id);
      this.remoteHeld.delete(id);
    }
    this.imports.get(node)?.close();
    this.imports.delete(node);
    this.edgesUsed.delete(node);
    return lost;
  }

  private async call(peerId: string, node: string, op: MediaOp, args: unknown[], producer?: ProducerInfo): Promise<unknown> {
    const body: MediaCallBody = { lessonId: this.lessonId, peerId, op, args, ...(producer ? { producer } : {}) };
    const answer = (await this.cluster.channel.request(node, 'media.call', body)) as MediaCallAnswer;
    this.remoteHeld.set(peerId, answer.held);
    return answer.result;
  }

  override held(peerId: string): HeldMedia {
    if (!this.remotePeers.has(peerId)) return super.held(peerId);
    return this.remoteHeld.get(peerId) ?? { transports: 0, producers: 0, consumers: 0 };
  }

  override async createTransport(peerId: string, direction: 'send' | 'recv', forceTcp = false): Promise<TransportParams> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.createTransport(peerId, direction, forceTcp);
    return (await this.call(peerId, node, 'createTransport', [direction, forceTcp])) as TransportParams;
  }

  override async connectTransport(peerId: string, transportId: string, dtlsParameters: MediaParameters): Promise<void> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.connectTransport(peerId, transportId, dtlsParameters);
    await this.call(peerId, node, 'connectTransport', [transportId, dtlsParameters]);
  }

  override async restartIce(peerId: string, transportId: string): Promise<types.IceParameters> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.restartIce(peerId, transportId);
    return (await this.call(peerId, node, 'restartIce', [transportId])) as types.IceParameters;
  }

  override async produce(
    peerId: string,
    transportId: string,
    kind: MediaKind,
    rtpParameters: MediaParameters,
    source: MediaSource,
  ): Promise<string> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.produce(peerId, transportId, kind, rtpParameters, source);
    const producerId = (await this.call(peerId, node, 'produce', [transportId, kind, rtpParameters, source])) as string;
    // Piped here before the lesson announces it: whoever consumes it next finds it on the origin.
    let pipe = this.imports.get(node);
    if (!pipe) {
      pipe = new PipeImport({
        channel: this.cluster.channel,
        addresses: this.cluster.addresses,
        lessonId: this.lessonId,
        from: node,
        router: () => this.producerRouter,
        log: this.cluster.log,
      });
      this.imports.set(node, pipe);
    }
    const from = pipe;
    await this.adoptProducer({ producerId, peerId, kind, source }, () => from.producer(producerId));
    return producerId;
  }

  override closeProducer(peerId: string, producerId: string): void {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.closeProducer(peerId, producerId);
    void this.call(peerId, node, 'closeProducer', [producerId]).catch(() => undefined);
  }

  override closeProducersOf(peerId: string, predicate: (info: ProducerInfo) => boolean = () => true): void {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.closeProducersOf(peerId, predicate);
    // The predicate is a function: judged here, over the edge's producers as adopted here.
    for (const info of this.listProducers())
      if (info.peerId === peerId && predicate(info))
        void this.call(peerId, node, 'closeProducer', [info.producerId]).catch(() => undefined);
  }

  override async consume(peerId: string, transportId: string, producerId: string, capabilities: MediaParameters): Promise<ConsumerParams> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.consume(peerId, transportId, producerId, capabilities);
    const producer = this.listProducers().find((p) => p.producerId === producerId);
    if (!producer) throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} in this lesson`);
    return (await this.call(peerId, node, 'consume', [transportId, producerId, capabilities], producer)) as ConsumerParams;
  }

  override async resumeConsumer(peerId: string, consumerId: string): Promise<void> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.resumeConsumer(peerId, consumerId);
    await this.call(peerId, node, 'resumeConsumer', [consumerId]);
  }

  override async pauseConsumer(peerId: string, consumerId: string): Promise<void> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.pauseConsumer(peerId, consumerId);
    await this.call(peerId, node, 'pauseConsumer', [consumerId]);
  }

  override async setPreferredLayers(peerId: string, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.setPreferredLayers(peerId, consumerId, spatialLayer, temporalLayer);
    await this.call(peerId, node, 'setPreferredLayers', [
      consumerId,
      spatialLayer,
      ...(temporalLayer !== undefined ? [temporalLayer] : []),
    ]);
  }

  override closePeer(peerId: string): void {
    const node = this.remotePeers.get(peerId);
    if (!node) return super.closePeer(peerId);
    this.remoteHeld.delete(peerId);
    void this.call(peerId, node, 'closePeer', []).catch(() => undefined);
  }

  override close(): void {
    for (const pipe of this.imports.values()) pipe.close();
    this.imports.clear();
    for (const node of this.edgesUsed)
      void this.cluster.channel.notify(node, 'media.closeLesson', { lessonId: this.lessonId }).catch(() => undefined);
    this.edgesUsed.clear();
    this.remotePeers.clear();
    super.close();
  }
}
