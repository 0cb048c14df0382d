import { Type } from 'typebox';
import type { MediaKind, MediaSource } from '../domain/index.js';
import { LessoncastError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { LessonMediaEvents, MediaParameters, ProducerInfo } from '../lessons/mediaPort.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import { subscribe } from '../events.js';
import type { ClusterChannel } from './channel.js';
import { MediaCall, type ForwardedEvent, type MediaCallAnswer, type MediaCallBody } from './clusterMedia.js';
import { PipeImport, type PipeAddresses } from './pipes.js';

/** One lesson this node serves as an edge: its own routers, and the pipe from the origin. */
interface EdgeLesson {
  origin: string;
  media: LessonMedia;
  pipe: PipeImport;
  unsubscribe(): void;
}

export interface EdgeHostDeps {
  channel: ClusterChannel;
  addresses: PipeAddresses;
  /** This node's media for a lesson (its routers on this node's workers). */
  createMedia(lessonId: string): LessonMedia;
  /** The node holding the lesson's origin lease now (Redis), or null. */
  originOf(lessonId: string): Promise<string | null>;
  log: Logger;
}

const CloseLesson = Type.Object({ lessonId: Type.String({ minLength: 1, maxLength: 128 }) });

/**
 * The edge's half of a lesson whose origin is another node: the origin's lesson calls the media
 * of participants connected here (`media.call`), and this node makes it on its own routers. The
 * origin's producers are piped in once each, when a participant here first consumes them;
 * producers made here are exported to the origin (PipeExports). Media events of participants
 * here go back to the origin (`media.event`), which alone decides what they mean for the lesson.
 */
export class EdgeHost {
  private readonly lessons = new Map<string, EdgeLesson>();

  constructor(private readonly deps: EdgeHostDeps) {
    deps.channel.handle('media.call', MediaCall, (body, from) => this.call(body as MediaCallBody, from));
    deps.channel.onNotice('media.closeLesson', CloseLesson, (body, from) => {
      if (this.lessons.get(body.lessonId)?.origin === from) this.closeLesson(body.lessonId);
    });
  }

  /** This node's media of a lesson it serves as an edge (for PipeExports and observers). */
  mediaOf(lessonId: string): LessonMedia | undefined {
    return this.lessons.get(lessonId)?.media;
  }

  private async lesson(lessonId: string, origin: string): Promise<EdgeLesson> {
    let e = this.lessons.get(lessonId);
    if (e?.origin === origin) return e;
    // A new lesson here, or a new origin for one: only the node holding the lease may be it (a
    // paused origin that wakes up must not take the edge's media from the new one).
    const holder = await this.deps.originOf(lessonId);
    if (holder !== origin)
      throw new LessoncastError('LESSON_ELSEWHERE', `node ${origin} is not the origin of lesson ${lessonId}`, { node: holder });
    e = this.lessons.get(lessonId);
    if (e?.origin === origin) return e;
    if (e) this.closeLesson(lessonId); // the old origin's media goes
    const media = this.deps.createMedia(lessonId);
    const pipe = new PipeImport({
      channel: this.deps.channel,
      addresses: this.deps.addresses,
      lessonId,
      from: origin,
      router: () => media.producerRouter,
      log: this.deps.log,
    });
    const forward =
      (event: ForwardedEvent) =>
      (...args: unknown[]): void =>
        void this.deps.channel.notify(origin, 'media.event', { lessonId, event, args }).catch(() => undefined);
    const unsubscribe = subscribe<LessonMediaEvents>(media, {
      consumerClosed: forward('consumerClosed'),
      consumerLayersChanged: forward('consumerLayersChanged'),
      linkChanged: forward('linkChanged'),
      mediaLost: forward('mediaLost'),
    });
    e = { origin, media, pipe, unsubscribe };
    this.lessons.set(lessonId, e);
    this.deps.log.info({ lessonId, origin }, 'serving a lesson as its edge');
    return e;
  }

  private async call(body: MediaCallBody, from: string): Promise<MediaCallAnswer> {
    const { media, pipe } = await this.lesson(body.lessonId, from);
    const { peerId, args } = body;
    const a: unknown[] = args;
    let result: unknown = {};
    switch (body.op) {
      case 'createTransport':
        await media.ensureOpen();
        result = await media.createTransport(peerId, a[0] as 'send' | 'recv', Boolean(a[1]));
        break;
      case 'connectTransport':
        await media.connectTransport(peerId, String(a[0]), a[1] as MediaParameters);
        break;
      case 'restartIce':
        result = await media.restartIce(peerId, String(a[0]));
        break;
      case 'produce':
        result = await media.produce(peerId, String(a[0]), a[1] as MediaKind, a[2] as MediaParameters, a[3] as MediaSource);
        break;
      case 'closeProducer':
        media.closeProducer(peerId, String(a[0]));
        break;
      case 'consume': {
        const producerId = String(a[1]);
        const info = body.producer as ProducerInfo | undefined;
        if (!media.producer(producerId)) {
          if (!info) throw new LessoncastError('PRODUCER_NOT_FOUND', `no producer ${producerId} in this lesson`);
          await media.adoptProducer(info, () => pipe.producer(producerId));
        }
        result = await media.consume(peerId, String(a[0]), producerId, a[2] as MediaParameters);
        break;
      }
      case 'resumeConsumer':
        await media.resumeConsumer(peerId, String(a[0]));
        break;
      case 'pauseConsumer':
        await media.pauseConsumer(peerId, String(a[0]));
        break;
      case 'setPreferredLayers':
        await media.setPreferredLayers(peerId, String(a[0]), Number(a[1]), a[2] === undefined ? undefined : Number(a[2]));
        break;
      case 'closePeer':
        media.closePeer(peerId);
        break;
    }
    return { result: result ?? {}, held: media.held(peerId) };
  }

  /** Closes everything this node made for a lesson (it ended, or its origin changed). */
  closeLesson(lessonId: string): void {
    const e = this.lessons.get(lessonId);
    if (!e) return;
    this.lessons.delete(lessonId);
    e.unsubscribe();
    e.pipe.close();
    e.media.close();
    this.deps.log.info({ lessonId, origin: e.origin }, 'no longer an edge of the lesson');
  }

  /** The lessons served here as an edge, for the quality sampler (their schools' media is here). */
  served(): Array<{ lessonId: string; origin: string; media: LessonMedia; peerIds: () => Iterable<string> }> {
    return [...this.lessons].map(([lessonId, e]) => ({ lessonId, origin: e.origin, media: e.media, peerIds: () => e.media.peerIds() }));
  }

  /** The origin of these lessons died: their media here goes (participants reconnect and set it up again). */
  originLost(node: string): string[] {
    const gone = [...this.lessons].filter(([, e]) => e.origin === node).map(([id]) => id);
    for (const id of gone) this.closeLesson(id);
    return gone;
  }

  close(): void {
    for (const id of [...this.lessons.keys()]) this.closeLesson(id);
  }
}
