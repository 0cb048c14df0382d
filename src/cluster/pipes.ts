import type { types } from 'mediasoup';
import { Type, type Static } from 'typebox';
import { LessoncastError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { ClusterChannel } from './channel.js';

/**
 * Media between nodes (docs/cluster.md, "The pipe"): an edge serves a lesson whose origin is
 * another node by piping the origin's producers into a router of its own, over one mediasoup
 * PipeTransport pair per lesson and edge, SRTP-encrypted (`enableSrtp`) with keys exchanged on
 * the signed cluster channel, RTX on so losses between the nodes are repaired. Each producer
 * crosses once per edge, whatever the number of classrooms there: the edge fans it out locally.
 *
 *   edge                                   origin
 *   pipe.open {lesson, edge end}     →     creates its end, connects it to the edge's
 *                                    ←     its end (ip, port, SRTP key)
 *   pipe.producer {lesson, producer} →     consumes the producer on its end
 *                                    ←     kind, RTP parameters, paused
 *   (the edge produces it, same id, on its end)
 *   pipe.producerState (notice)      ←     paused / resumed / closed
 *   pipe.close {lesson}              →     closes its end (the edge leaves the lesson)
 */

const SrtpParameters = Type.Object({ cryptoSuite: Type.String({ maxLength: 64 }), keyBase64: Type.String({ maxLength: 256 }) });
const PipeEnd = Type.Object({
  ip: Type.String({ minLength: 1, maxLength: 64 }),
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
  srtpParameters: SrtpParameters,
});
export type PipeEnd = Static<typeof PipeEnd>;
const LessonId = Type.String({ minLength: 1, maxLength: 128 });
const OpenRequest = Type.Object({ lessonId: LessonId, end: PipeEnd }, { additionalProperties: false });
const ProducerRequest = Type.Object(
  { lessonId: LessonId, producerId: Type.String({ minLength: 1, maxLength: 64 }) },
  { additionalProperties: false },
);
const CloseRequest = Type.Object({ lessonId: LessonId }, { additionalProperties: false });
const ProducerState = Type.Object({
  lessonId: LessonId,
  producerId: Type.String({ minLength: 1, maxLength: 64 }),
  state: Type.Union([Type.Literal('paused'), Type.Literal('resumed'), Type.Literal('closed')]),
});

/** What the edge needs to produce the origin's producer on its own router. */
export interface PipedProducer {
  producerId: string;
  kind: 'audio' | 'video';
  rtpParameters: types.RtpParameters;
  paused: boolean;
  appData: Record<string, unknown>;
}

export interface PipeAddresses {
  /** Address the pipe ports bind (media.listenIp). */
  listenIp: string;
  /** Address other nodes reach them at (cluster.mediaAddress, else media.announcedAddress, else listenIp). */
  announcedAddress?: string;
}

async function openEnd(
  router: types.Router,
  addresses: PipeAddresses,
  appData: Record<string, unknown>,
): Promise<{ transport: types.PipeTransport; end: PipeEnd }> {
  const transport = await router.createPipeTransport({
    listenInfo: {
      protocol: 'udp',
      ip: addresses.listenIp,
      ...(addresses.announcedAddress ? { announcedAddress: addresses.announcedAddress } : {}),
    },
    enableSrtp: true,
    enableRtx: true,
    appData: { cluster: true, ...appData },
  });
  const end = {
    ip: addresses.announcedAddress || transport.tuple.localAddress,
    port: transport.tuple.localPort,
    srtpParameters: transport.srtpParameters as PipeEnd['srtpParameters'],
  };
  return { transport, end };
}

/** The exporting side of one importer's pipe in one lesson. */
interface ExportEnd {
  transport: types.PipeTransport;
  consumers: Map<string, types.Consumer>;
}

export interface PipeExportsOptions {
  channel: ClusterChannel;
  addresses: PipeAddresses;
  /** The router a lesson's producers live on here (origin or edge), if this node has one. */
  routerOf(lessonId: string): types.Router | undefined;
  log: Logger;
}

/**
 * The exporting half, on every node: answers pipe requests for the lessons it has a router for
 * (an origin exports to its edges; an edge exports a producer made there, such as a classroom
 * given the floor, to the origin).
 */
export class PipeExports {
  /** "<lesson>/<edge node>" → that edge's end here. */
  private readonly ends = new Map<string, ExportEnd>();

  constructor(private readonly opts: PipeExportsOptions) {
    const { channel } = opts;
    channel.handle('pipe.open', OpenRequest, (body, from) => this.open(body.lessonId, from, body.end));
    channel.handle('pipe.producer', ProducerRequest, (body, from) => this.pipeProducer(body.lessonId, from, body.producerId));
    channel.handle('pipe.close', CloseRequest, (body, from) => {
      this.closeEnd(body.lessonId, from);
      return {};
    });
  }

  /** Edges holding a pipe of this lesson (for the live view and placement). */
  edgesOf(lessonId: string): string[] {
    return [...this.ends.keys()].filter((k) => k.startsWith(`${lessonId}/`)).map((k) => k.slice(lessonId.length + 1));
  }

  private router(lessonId: string): types.Router {
    const router = this.opts.routerOf(lessonId);
    if (!router) throw new LessoncastError('LESSON_NOT_FOUND', `this node has no media of lesson ${lessonId}`, { lessonId });
    return router;
  }

  private async open(lessonId: string, edge: string, edgeEnd: PipeEnd): Promise<PipeEnd> {
    const router = this.router(lessonId);
    this.closeEnd(lessonId, edge); // an edge that opens again has lost its end (restart): start afresh
    const { transport, end } = await openEnd(router, this.opts.addresses, { lessonId, edge });
    await transport.connect({ ip: edgeEnd.ip, port: edgeEnd.port, srtpParameters: edgeEnd.srtpParameters as types.SrtpParameters });
    const key = `${lessonId}/${edge}`;
    this.ends.set(key, { transport, consumers: new Map() });
    transport.observer.once('close', () => {
      if (this.ends.get(key)?.transport === transport) this.ends.delete(key);
    });
    this.opts.log.info({ lessonId, edge, port: end.port }, 'pipe opened to an edge');
    return end;
  }

  private async pipeProducer(lessonId: string, edge: string, producerId: string): Promise<PipedProducer> {
    this.router(lessonId);
    const end = this.ends.get(`${lessonId}/${edge}`);
    if (!end) throw new LessoncastError('TRANSPORT_NOT_FOUND', `edge ${edge} has no pipe in lesson ${lessonId}`, { lessonId });
    let consumer = end.consumers.get(producerId);
    if (!consumer) {
      try {
        consumer = await end.transport.consume({ producerId });
      } catch {
        throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} in lesson ${lessonId}`, { producerId });
      }
      const piped = consumer;
      end.consumers.set(producerId, piped);
      const tell = (state: 'paused' | 'resumed' | 'closed'): void =>
        void this.opts.channel.notify(edge, 'pipe.producerState', { lessonId, producerId, state }).catch(() => undefined);
      piped.on('producerpause', () => tell('paused'));
      piped.on('producerresume', () => tell('resumed'));
      piped.on('producerclose', () => {
        end.consumers.delete(producerId);
        tell('closed');
      });
      piped.on('transportclose', () => end.consumers.delete(producerId));
    }
    return {
      producerId,
      kind: consumer.kind,
      rtpParameters: consumer.rtpParameters,
      paused: consumer.producerPaused,
      appData: {},
    };
  }

  private closeEnd(lessonId: string, edge: string): void {
    const key = `${lessonId}/${edge}`;
    const end = this.ends.get(key);
    if (!end) return;
    this.ends.delete(key);
    end.transport.close();
  }
}

export interface PipeImportOptions {
  channel: ClusterChannel;
  addresses: PipeAddresses;
  lessonId: string;
  /** The node whose producers are imported (the origin, or an edge where a classroom publishes). */
  from: string;
  /** This node's router for the lesson, where the piped producers appear (asked again after it was lost). */
  router(): types.Router;
  log: Logger;
  /** A piped producer closed at the origin (its local consumers close with it). */
  onProducerClosed?(producerId: string): void;
}

/**
 * The importing half, for one lesson from one other node: one PipeTransport to that node, each
 * of its producers produced here once (concurrent asks for the same producer share one pipe).
 */
export class PipeImport {
  private transport: types.PipeTransport | undefined;
  private opening: Promise<types.PipeTransport> | undefined;
  private readonly producers = new Map<string, Promise<types.Producer>>();
  private readonly unlisten: () => void;
  private closed = false;

  constructor(private readonly opts: PipeImportOptions) {
    const onState = (body: Static<typeof ProducerState>, from: string): void => {
      if (from !== opts.from || body.lessonId !== opts.lessonId) return;
      void this.producers
        .get(body.producerId)
        ?.then((p) => {
          if (body.state === 'paused') return p.pause();
          if (body.state === 'resumed') return p.resume();
          this.producers.delete(body.producerId);
          p.close();
          opts.onProducerClosed?.(body.producerId);
        })
        .catch(() => undefined);
    };
    this.unlisten = registerEdge(opts.channel, opts.lessonId, onState);
  }

  /** The local copy of an origin producer, piped on first ask. */
  producer(producerId: string): Promise<types.Producer> {
    if (this.closed) return Promise.reject(new LessoncastError('LESSON_ENDED', 'the pipe is closed'));
    let p = this.producers.get(producerId);
    if (!p) {
      p = this.pipe(producerId);
      this.producers.set(producerId, p);
      p.catch(() => this.producers.delete(producerId));
    }
    return p;
  }

  private async pipe(producerId: string): Promise<types.Producer> {
    const transport = await this.ensureTransport();
    const d = (await this.opts.channel.request(this.opts.from, 'pipe.producer', {
      lessonId: this.opts.lessonId,
      producerId,
    })) as PipedProducer;
    const producer = await transport.produce({
      id: d.producerId,
      kind: d.kind,
      rtpParameters: d.rtpParameters,
      paused: d.paused,
      appData: { piped: true, from: this.opts.from },
    });
    if (this.closed) producer.close();
    return producer;
  }

  private ensureTransport(): Promise<types.PipeTransport> {
    if (this.transport && !this.transport.closed) return Promise.resolve(this.transport);
    this.opening ??= (async () => {
      const { transport, end } = await openEnd(this.opts.router(), this.opts.addresses, {
        lessonId: this.opts.lessonId,
        from: this.opts.from,
      });
      try {
        const remote = (await this.opts.channel.request(this.opts.from, 'pipe.open', { lessonId: this.opts.lessonId, end })) as PipeEnd;
        await transport.connect({ ip: remote.ip, port: remote.port, srtpParameters: remote.srtpParameters as types.SrtpParameters });
      } catch (err) {
        transport.close();
        throw err;
      }
      this.transport = transport;
      // Its router closed (a worker died): what was piped is gone with it; the next ask pipes afresh.
      transport.observer.once('close', () => {
        if (this.transport !== transport) return;
        this.transport = undefined;
        this.producers.clear();
      });
      this.opts.log.info({ lessonId: this.opts.lessonId, from: this.opts.from }, 'pipe opened from the origin');
      return transport;
    })().finally(() => (this.opening = undefined));
    return this.opening;
  }

  /** Closes the edge's end and tells the origin (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unlisten();
    this.transport?.close();
    this.producers.clear();
    void this.opts.channel.request(this.opts.from, 'pipe.close', { lessonId: this.opts.lessonId }, 2000).catch(() => undefined);
  }
}

/** One notice handler per channel, dispatching producer states to the edge pipes of each lesson. */
const edgeRegistries = new WeakMap<ClusterChannel, Map<string, (body: Static<typeof ProducerState>, from: string) => void>>();
function registerEdge(
  channel: ClusterChannel,
  lessonId: string,
  fn: (body: Static<typeof ProducerState>, from: string) => void,
): () => void {
  let byLesson = edgeRegistries.get(channel);
  if (!byLesson) {
    const map = new Map<string, (body: Static<typeof ProducerState>, from: string) => void>();
    byLesson = map;
    edgeRegistries.set(channel, map);
    channel.onNotice('pipe.producerState', ProducerState, (body, from) => map.get(body.lessonId)?.(body, from));
  }
  byLesson.set(lessonId, fn);
  return () => {
    if (byLesson.get(lessonId) === fn) byLesson.delete(lessonId);
  };
}
