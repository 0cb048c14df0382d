import { EventEmitter } from 'node:events';
import { v7 as uuidv7 } from 'uuid';
import { LessoncastError } from '../errors.js';
import type { LessonState } from '../domain/index.js';
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

/** A lesson as the book (the catalog) holds it. */
export interface BookedLesson {
  def: LessonDefinition;
  /** 'cancelled': taken out of the timetable before it happened. */
  state: LessonState | 'cancelled';
  startedAt: Date | null;
  endedAt: Date | null;
  /** The end of its slot in the timetable (none for a lesson opened at once). */
  endsAt?: Date | null;
}

/**
 * Where lessons outlive this process (the catalog, src/catalog/lessonBook.ts). Without one, lessons
 * live in this node's memory only (unit tests).
 */
export interface LessonBook {
  /** Stores a lesson opened at once; resolves once it is durable (CATALOG_UNAVAILABLE otherwise). */
  add(def: LessonDefinition): Promise<void>;
  /** A lesson this node does not hold: in the timetable, made on another node, or before a restart. */
  find(id: string): Promise<BookedLesson | undefined>;
  /** The lessons to hold at start: open or live when the node stopped. */
  current(): Promise<BookedLesson[]>;
  /** A state change (live, ended): written behind and retried, so a database away does not stop the lesson. */
  changed(id: string, change: { state: LessonState; startedAt: Date | null; endedAt: Date | null }): void;
}

type RegistryEvents<M extends LessonMediaPort> = {
  created: [hosted: HostedLesson<M>];
};

export interface RegistryOptions<M extends LessonMediaPort> {
  /** Makes the media of a new lesson (this node's routers, in production). */
  createMedia(lessonId: string): M;
  lessonOptions: LessonOptions;
  recordByDefault: boolean;
  /** The catalog; lessons are stored there and their state changes follow. */
  book?: LessonBook;
  /** Ended lessons stay answerable (LESSON_ENDED, not LESSON_NOT_FOUND) this long; the archive keeps them after. */
  keepEndedMs?: number;
  /**
   * A lesson nobody has been in for this long (counted from when it was opened, the end of its
   * slot, or the last participant's leaving, whichever is latest) is ended as abandoned; 0 = never.
   */
  abandonAfterMs?: number;
  /**
   * In a cluster: called before this node hosts a lesson (creates, resolves or restores it), and
   * throws when another node is its origin (src/cluster/). Without it, every lesson may be hosted here.
   */
  admit?(lessonId: string): Promise<void>;
  /**
   * In a cluster: whether this node still holds the lesson's origin lease, by its own clock. A
   * node waking from a pause may act on a lesson before its lease timer runs: its state changes
   * are not written to the book then (the new origin's are the truth).
   */
  holds?(lessonId: string): boolean;
}

/** The reason an abandoned lesson ends with (lessonEnded's `reason`, the journal, the recording). */
export const ABANDONED = 'abandoned: nobody in it';

const DAY_MS = 24 * 3600 * 1000;

/** The lessons this node hosts. */
export class LessonRegistry<M extends LessonMediaPort = LessonMediaPort> extends EventEmitter<RegistryEvents<M>> {
  private readonly lessons = new Map<string, HostedLesson<M> & { quietSince: number }>();
  private readonly pruneTimer: NodeJS.Timeout;
  private readonly keepEndedMs: number;
  private stopping = false;
  private readonly resolving = new Map<string, Promise<BookedLesson | undefined>>();

  constructor(private readonly opts: RegistryOptions<M>) {
    super();
    this.keepEndedMs = opts.keepEndedMs ?? DAY_MS;
    // On a timer, not only when a lesson is created: a quiet node must not hold a day's lessons
    // forever, nor a lesson nobody came to (it would stay open in the catalog and in memory).
    const abandon = opts.abandonAfterMs || Infinity;
    this.pruneTimer = setInterval(() => this.sweep(), Math.min(this.keepEndedMs, abandon / 8, 3600 * 1000));
    this.pruneTimer.unref();
  }

  /** A new lesson, stored in the book before it is hosted (a 201 means it survives a restart). */
  async create(input: CreateLessonInput): Promise<Lesson> {
    const def: LessonDefinition = {
      id: uuidv7(),
      title: input.title,
      subject: input.subject ?? '',
      instructorId: input.instructorId,
      schools: input.schools ?? [],
      record: input.record ?? this.opts.recordByDefault,
      createdAt: new Date(),
    };
    await this.opts.book?.add(def);
    await this.opts.admit?.(def.id);
    return this.host(def);
  }

  /**
   * The lesson, from this node's memory or else from the book (a lesson in the timetable, or one
   * that was open when this node restarted): LESSON_NOT_FOUND, or LESSON_ENDED for one over or
   * cancelled.
   */
  async resolve(id: string): Promise<Lesson> {
    const held = this.lessons.get(id);
    if (held) return held.lesson;
    if (!this.opts.book) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
    let pending = this.resolving.get(id);
    if (!pending) {
      pending = this.opts.book.find(id).finally(() => this.resolving.delete(id));
      this.resolving.set(id, pending);
    }
    const booked = await pending;
    // Another caller may have hosted it meanwhile.
    const raced = this.lessons.get(id);
    if (raced) return raced.lesson;
    if (!booked) throw new LessoncastError('LESSON_NOT_FOUND', `no lesson ${id}`);
    if (booked.state === 'ended' || booked.state === 'cancelled')
      throw new LessoncastError('LESSON_ENDED', booked.state === 'cancelled' ? 'this lesson was cancelled' : 'this lesson has ended');
    await this.opts.admit?.(id);
    return this.lessons.get(id)?.lesson ?? this.host(booked.def, booked);
  }

  /** Start: hosts the lessons that were open or live when the node stopped (participants rejoin them). */
  async restore(): Promise<number> {
    if (!this.opts.book) return 0;
    let n = 0;
    for (const booked of await this.opts.book.current()) {
      if (this.lessons.has(booked.def.id) || (booked.state !== 'created' && booked.state !== 'live')) continue;
      // In a cluster, each lesson is restored by the one node that wins its lease.
      if (!(await this.admitted(booked.def.id)) || this.lessons.has(booked.def.id)) continue;
      this.host(booked.def, booked);
      n++;
    }
    return n;
  }

  /** Whether this node may host the lesson (always, outside a cluster). */
  private async admitted(id: string): Promise<boolean> {
    try {
      await this.opts.admit?.(id);
      return true;
    } catch {
      return false;
    }
  }

  private host(def: LessonDefinition, booked?: BookedLesson): Lesson {
    const media = this.opts.createMedia(def.id);
    const lesson = new Lesson(def, media, this.opts.lessonOptions);
    if (booked?.state === 'live') lesson.resumeLive(booked.startedAt ?? new Date());
    // An abandoned lesson's clock starts now, or at the end of its slot if that is later.
    const hosted = { lesson, media, quietSince: Math.max(Date.now(), booked?.endsAt?.getTime() ?? 0) };
    const book = this.opts.book;
    if (book) {
      const record = (): void => {
        if (this.stopping) return;
        if (this.opts.holds && !this.opts.holds(def.id)) return;
        book.changed(def.id, { state: lesson.state, startedAt: lesson.startedAt, endedAt: lesson.endedAt });
      };
      lesson.on('started', record);
      lesson.on('ended', record);
      lesson.once('closed', () => {
        lesson.off('started', record);
        lesson.off('ended', record);
      });
    }
    this.lessons.set(def.id, hosted);
    this.pruneEnded();
    this.emit('created', hosted);
    return lesson;
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

  /** The timer's round: ends abandoned lessons, drops long-ended ones. */
  sweep(now = Date.now()): void {
    this.endAbandoned(now);
    this.pruneEnded(now);
  }

  /**
   * Ends the lessons nobody (no connected participant other than a hidden monitor) has been in for
   * abandonAfterMs: their recordings close and the catalog records them as ended.
   */
  endAbandoned(now = Date.now()): void {
    const after = this.opts.abandonAfterMs ?? 0;
    if (after <= 0) return;
    for (const hosted of this.lessons.values()) {
      const { lesson } = hosted;
      if (lesson.state === 'ended') continue;
      if ([...lesson.participants.values()].some((p) => p.connected && !p.hidden)) hosted.quietSince = now;
      else if (now - hosted.quietSince >= after) lesson.end(undefined, ABANDONED);
    }
  }

  /** Drops lessons that ended more than keepEndedMs ago. */
  pruneEnded(now = Date.now()): void {
    const cutoff = now - this.keepEndedMs;
    for (const [id, { lesson }] of this.lessons) if (lesson.endedAt && lesson.endedAt.getTime() < cutoff) this.lessons.delete(id);
  }

  /**
   * Shutdown: end every lesson here (media closes, recordings finalize through their listeners).
   * The book is not told: in the catalog they stay open or live, and the next start resumes them.
   */
  endAll(reason: string): void {
    this.stopping = true;
    for (const lesson of this.list()) lesson.end(undefined, reason);
  }

  /** Shutdown in a cluster: every lesson here is handed over instead of ended (another node takes it on the next join). */
  handOverAll(reason: string): void {
    this.stopping = true;
    for (const id of [...this.lessons.keys()]) this.handOver(id, reason, true);
  }

  /** This node stops hosting a lesson without ending it (Lesson.handOver): another node is its origin now. */
  handOver(id: string, reason: string, graceful = false): void {
    const hosted = this.lessons.get(id);
    if (!hosted) return;
    this.lessons.delete(id);
    hosted.lesson.handOver(reason, graceful);
  }

  /** Stops the pruning timer. Idempotent. */
  close(): void {
    clearInterval(this.pruneTimer);
  }
}
