import { EventEmitter } from 'node:events';
import { v7 as uuidv7 } from 'uuid';
import { LessoncastError } from '../errors.js';
import { Lesson, type LessonDefinition, type LessonOptions } from './lesson.js';
import type { LessonMediaPort } from './mediaPort.js';

export interface CreateLessonInput {
  title: string;
  subject?: string;
  instructorId: string;
  schools?: string[];
  record?: boolean;
}

/** A lesson this node hosts and the media it made for it. */
export interface HostedLesson<M extends LessonMediaPort> {
  lesson: Lesson;
  /** For this node's own observers (recorder, stats sampler); participants reach media only through the lesson. */
  media: M;
}

type RegistryEvents<M extends LessonMediaPort> = {
  created: [hosted: HostedLesson<M>];
};

export interface RegistryOptions<M extends LessonMediaPort> {
  /** Makes the media of a new lesson (this node's routers, in production). */
  createMedia(lessonId: string): M;
  lessonOptions: LessonOptions;
  recordByDefault: boolean;
  /** Ended lessons stay answerable (LESSON_ENDED, not LESSON_NOT_FOUND) this long; the archive keeps them after. */
  keepEndedMs?: number;
}

const DAY_MS = 24 * 3600 * 1000;

/** The lessons this node hosts. */
export class LessonRegistry<M extends LessonMediaPort = LessonMediaPort> extends EventEmitter<RegistryEvents<M>> {
  private readonly lessons = new Map<string, HostedLesson<M>>();
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly keepEndedMs: number;

  constructor(private readonly opts: RegistryOptions<M>) {
    super();
    this.keepEndedMs = opts.keepEndedMs ?? DAY_MS;
    // On a timer, not only when a lesson is created: a quiet node must not hold a day's lessons forever.
    this.pruneTimer = setInterval(() => this.pruneEnded(), Math.min(this.keepEndedMs, 3600 * 1000));
    this.pruneTimer.unref();
  }

  create(input: CreateLessonInput): Lesson {
    const def: LessonDefinition = {
      id: uuidv7(),
      title: input.title,
      subject: input.subject ?? '',
      instructorId: input.instructorId,
      schools: input.schools ?? [],
      record: input.record ?? this.opts.recordByDefault,
      createdAt: new Date(),
    };
    const media = this.opts.createMedia(def.id);
    const hosted = { lesson: new Lesson(def, media, this.opts.lessonOptions), media };
    this.lessons.set(def.id, hosted);
    this.pruneEnded();
    this.emit('created', hosted);
    return hosted.lesson;
  }

  get(id: string): Lesson {
    const hosted = this.lessons.get(id);
    if (!hosted) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
    return hosted.lesson;
  }

  find(id: string): Lesson | undefined {
    return this.lessons.get(id)?.lesson;
  }

  /** The media this node made for a lesson, for its own observers. */
  mediaOf(id: string): M | undefined {
    return this.lessons.get(id)?.media;
  }

  list(): Lesson[] {
    return [...this.lessons.values()].map((h) => h.lesson);
  }

  hosted(): Array<HostedLesson<M>> {
    return [...this.lessons.values()];
  }

  /** Drops lessons that ended more than keepEndedMs ago. */
  pruneEnded(now = Date.now()): void {
    const cutoff = now - this.keepEndedMs;
    for (const [id, { lesson }] of this.lessons) if (lesson.endedAt && lesson.endedAt.getTime() < cutoff) this.lessons.delete(id);
  }

  /** Shutdown: end every lesson (media closes, recordings finalize through their listeners). */
  endAll(reason: string): void {
    for (const lesson of this.list()) lesson.end(undefined, reason);
  }

  /** Stops the pruning timer. Idempotent. */
  close(): void {
    clearInterval(this.pruneTimer);
  }
}
