import type { LessonDefinition } from '../lessons/lesson.js';
import type { BookedLesson, LessonBook } from '../lessons/registry.js';
import type { Logger } from '../logger.js';
import type { CatalogStore } from './store.js';
import type { LessonChange, StoredLesson } from './types.js';

const HOUR = 3600_000;

/** A stored lesson as the registry hosts it. */
export function bookedOf(l: StoredLesson): BookedLesson {
  return {
    def: {
      id: l.id,
      title: l.title,
      subject: l.subject,
      instructorId: l.instructorId,
      schools: l.schools,
      record: l.record,
      createdAt: new Date(l.createdAt),
    },
    state: l.state,
    startedAt: l.startedAt === null ? null : new Date(l.startedAt),
    endedAt: l.endedAt === null ? null : new Date(l.endedAt),
    endsAt: l.endsAt === null ? null : new Date(l.endsAt),
  };
}

/**
 * The catalog as the lessons registry's book. New lessons are stored before they are hosted; state
 * changes are written behind: kept (the latest per lesson) while the database is away, retried
 * every `retrySeconds`, so a lesson goes on without it and the catalog catches up once it is back.
 */
export class CatalogLessonBook implements LessonBook {
  private readonly pending = new Map<string, LessonChange>();
  private retryTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private failure: string | undefined;
  private closed = false;

  constructor(
    private readonly store: CatalogStore,
    private readonly opts: { retrySeconds: number; log: Logger },
  ) {}

  async add(def: LessonDefinition): Promise<void> {
    await this.store.addLesson({
      ...def,
      seriesId: null,
      startsAt: null,
      endsAt: null,
      state: 'created',
      createdAt: def.createdAt.getTime(),
      startedAt: null,
      endedAt: null,
    });
  }

  async find(id: string): Promise<BookedLesson | undefined> {
    const stored = await this.store.getLesson(id);
    return stored && bookedOf(stored);
  }

  /** Lessons open or live now: opened at once and not ended, or scheduled within half a day either side. */
  async current(now = Date.now()): Promise<BookedLesson[]> {
    const lessons = await this.store.listLessons({ from: now - 12 * HOUR, to: now + 12 * HOUR, states: ['created', 'live'] });
    return lessons.map(bookedOf);
  }

  changed(id: string, change: { state: LessonChange['state']; startedAt: Date | null; endedAt: Date | null }): void {
    this.pending.set(id, {
      state: change.state,
      startedAt: change.startedAt?.getTime() ?? null,
      endedAt: change.endedAt?.getTime() ?? null,
    });
    void this.flush();
  }

  /** Lesson changes not yet in the catalog. */
  get waiting(): number {
    return this.pending.size;
  }

  /** Why the catalog is behind, or undefined when it has every change. */
  problem(): string | undefined {
    return this.pending.size > 0 && this.failure ? `${this.pending.size} lesson changes wait for the catalog (${this.failure})` : undefined;
  }

  /** Writes what is waiting; resolves when done or when the database refused (a retry is then scheduled). */
  flush(): Promise<void> {
    this.flushing ??= this.writeAll().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /** Stops retrying after one last attempt. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private async writeAll(): Promise<void> {
    for (const [id, change] of [...this.pending]) {
      try {
        await this.store.setLessonState(id, change);
      } catch (err) {
        const first = this.failure === undefined;
        this.failure = err instanceof Error ? err.message : String(err);
        if (first) this.opts.log.warn({ waiting: this.pending.size, err: this.failure }, 'catalog away: lesson changes kept and retried');
        this.retryLater();
        return;
      }
      // A newer change that came meanwhile stays for the next round.
      if (this.pending.get(id) === change) this.pending.delete(id);
    }
    if (this.failure !== undefined) this.opts.log.info({}, 'catalog back: lesson changes caught up');
    this.failure = undefined;
    if (this.pending.size > 0) setImmediate(() => void this.flush());
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.flush();
    }, this.opts.retrySeconds * 1000);
    this.retryTimer.unref();
  }
}
