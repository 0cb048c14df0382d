import type { ProducerView } from '../../../../src/domain/index.js';
import { tryPlay } from '../../lib/dom.js';
import { LessonLink } from '../../lib/link.js';
import { CurrentMedia, type MediaSession } from '../../lib/media.js';

/** Watches one lesson invisibly and shows its camera (or board) at the lowest layer. */
export class Watcher {
  private readonly link: LessonLink;
  private readonly media = new CurrentMedia();
  stream?: MediaStream;
  /** The simulcast layer the server forwards to this tile (it was asked for the lowest). */
  spatialLayer: number | null = null;

  constructor(
    token: string,
    lessonId: string,
    private readonly video: HTMLVideoElement,
    private readonly onStream: () => void,
  ) {
    this.link = new LessonLink(token, lessonId);
    this.link.on('joined', (info, client) => {
      const ready = this.media.replace(client, info);
      void (async () => {
        const session = await ready;
        session.on('consumerClosed', () => void this.pick(undefined));
        session.on('layersChanged', (_info, spatial) => (this.spatialLayer = spatial));
        await this.pick(info.producers);
      })().catch(() => undefined);
    });
    this.link.on('newProducer', (p) => void this.pick([p]).catch(() => undefined));
    this.link.start();
  }

  /** The camera if there is one, else the board; video only (the control room watches silently). */
  private async pick(candidates: ProducerView[] | undefined): Promise<void> {
    await this.media.with((m) => this.pickOn(m, candidates));
  }

  private async pickOn(media: MediaSession, candidates: ProducerView[] | undefined): Promise<void> {
    const showing = [...media.consumers.values()].find((c) => c.kind === 'video');
    if (showing && candidates) {
      if (showing.source === 'camera') return;
      if (!candidates.some((p) => p.source === 'camera')) return;
    }
    const choice = candidates?.find((p) => p.kind === 'video' && p.source === 'camera') ?? candidates?.find((p) => p.kind === 'video');
    if (!choice) {
      if (!showing) this.setStream(undefined);
      return;
    }
    const info = await media.consume(choice, { spatialLayer: 0 });
    this.setStream(new MediaStream([info.consumer.track]));
  }

  private setStream(stream: MediaStream | undefined): void {
    this.stream = stream;
    this.video.srcObject = stream ?? null;
    if (stream) void tryPlay(this.video);
    this.onStream();
  }

  stats() {
    return this.media.current?.inboundStats() ?? Promise.resolve([]);
  }

  close(): void {
    void this.media.close();
    this.link.close();
  }
}
