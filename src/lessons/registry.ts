import { EventEmitter } from 'node:events';
import { v7 as uuidv7 } from 'uuid';
import { LessoncastError } from '../errors.js';
import { LessonMedia, type LessonMediaOptions } from '../media/lessonMedia.js';
import type { WorkerPool } from '../media/workerPool.js';
import { Lesson, type LessonDefinition, type LessonOptions } from './lesson.js';

export interface CreateLessonInput {
  title: string;
  subject?: string;
  instructorId: string;
  schools?: string[];
  record?: boolean;
}

type RegistryEvents = {
  created: [lesson: Lesson];
};

/** Ended lessons stay answerable (LESSON_ENDED, not LESSON_NOT_FOUND) for a day; the archive keeps them after. */
const KEEP_ENDED_MS = 24 * 3600 * 1000;

/** The lessons this node hosts. */
export class LessonRegistry extends EventEmitter<RegistryEvents> {
  private readonly lessons = new Map<string, Lesson>();

  constructor(
    private readonly pool: WorkerPool,
    private readonly mediaOpts: LessonMediaOptions,
    private readonly lessonOpts: LessonOptions,
    private readonly recordByDefault: boolean,
  ) {
    super();
  }

  create(input: CreateLessonInput): Lesson {
    const def: LessonDefinition = {
      id: uuidv7(),
      title: input.title,
      subject: input.subject ?? '',
      instructorId: input.instructorId,
      schools: input.schools ?? [],
      record: input.record ?? this.recordByDefault,
      createdAt: new Date(),
    };
    const lesson = new Lesson(def, new LessonMedia(this.pool, def.id, this.mediaOpts), this.lessonOpts);
    this.lessons.set(def.id, lesson);
    this.pruneEnded();
    this.emit('created', lesson);
    return lesson;
  }

  get(id: string): Lesson {
    const lesson = this.lessons.get(id);
    if (!lesson) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
    return lesson;
  }

  find(id: string): Lesson | undefined {
    return this.lessons.get(id);
  }

  private pruneEnded(): void {
    const cutoff = Date.now() - KEEP_ENDED_MS;
    for (const [id, l] of this.lessons) if (l.endedAt && l.endedAt.getTime() < cutoff) this.lessons.delete(id);
  }

  list(): Lesson[] {
    return [...this.lessons.values()];
  }

  /** Shutdown: end every lesson (media closes, recordings finalize through their listeners). */
  endAll(reason: string): void {
    for (const lesson of this.list()) lesson.end(undefined, reason);
  }
}
