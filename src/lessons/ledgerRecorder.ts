import { subscribe } from '../events.js';
import type { Logger } from '../logger.js';
import type { Lesson, LessonEvents } from './lesson.js';
import { emptyTally, mergeTally, SchoolTally, type SchoolTallyState } from './ledgerTally.js';

/** Where the ledger is kept (the catalog's LedgerTable). */
export interface LedgerPort {
  put(lessonId: string, lessonAt: number, rows: SchoolTallyState[], final: boolean): Promise<void>;
  stored(lessonId: string): Promise<{ rows: SchoolTallyState[] }>;
}

/** One quality tick of one lesson, as the control room's sampler measured it. */
export interface LedgerQualitySample {
  lessonId: string;
  schools: Array<{ schoolId: string; connected: boolean; quality: { bitrateKbps: number; lossPct: number; rttMs: number | null } | null }>;
}

export interface LedgerRecorderOptions {
  ledger: LedgerPort;
  /** How often the rows of running lessons are written (a crash loses at most this much). */
  writeSeconds: number;
  /** While the database is away: how often writes are retried. */
  retrySeconds: number;
  log: Logger;
  now?: () => number;
  /**
   * In a cluster: whether this node still holds the lesson's origin lease, by its own clock. A
   * node that does not writes no rows: the origin that took over owns them, and this node's
   * tally would count a pause (SIGSTOP, a frozen VM) as time the schools were there.
   */
  holds?(lessonId: string): boolean;
}

interface Tracked {
  lesson: Lesson;
  tallies: Map<string, SchoolTally>;
  /** Classroom participants seen (participantLeft names only the id). */
  classrooms: Set<string>;
  /** What a previous run stored (a lesson resumed after a restart); undefined until read. */
  stored: Map<string, SchoolTallyState> | undefined;
  /** Something happened since the last write. */
  dirty: boolean;
  /** Ended: its last write is final. */
  finalAt: number | undefined;
  unsubscribe: () => void;
}

/**
 * Follows every lesson of this node and keeps its per-school ledger (src/lessons/ledgerTally.ts):
 * joins and leaves, audio-only pauses, hands, the floor and the sampler's quality ticks. Rows are
 * written behind, like the lesson book's changes: every `writeSeconds` while a lesson runs and
 * once more, final, when it ends; kept and retried while the database is away, so a lesson never
 * waits for it. A lesson resumed after a restart adds to what the previous run stored.
 */
export class LedgerRecorder {
  private readonly lessons = new Map<string, Tracked>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> | undefined;
  private failure: string | undefined;
  private stopped = false;

  constructor(private readonly opts: LedgerRecorderOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Starts the periodic writes. */
  start(): void {
    this.schedule(this.opts.writeSeconds);
  }

  /** Follows a lesson from its hosting on. */
  attach(lesson: Lesson): void {
    if (this.stopped || this.lessons.has(lesson.id) || lesson.state === 'ended') return;
    const tracked: Tracked = {
      lesson,
      tallies: new Map(),
      classrooms: new Set(),
      stored: undefined,
      dirty: false,
      finalAt: undefined,
      unsubscribe: () => undefined,
    };
    const tally = (schoolId: string): SchoolTally => {
      let t = tracked.tallies.get(schoolId);
      if (!t) {
        t = new SchoolTally(schoolId, lesson.def.schools.includes(schoolId), lesson.startedAt?.getTime() ?? null);
        tracked.tallies.set(schoolId, t);
      }
      tracked.dirty = true;
      return t;
    };
    const classroom = (id: string): SchoolTally | undefined => (tracked.classrooms.has(id) ? tally(id) : undefined);
    // A classroom's participant id is its school's id (the token's subject), whichever board speaks for it.
    const joined = (id: string, role: string, connected: boolean): void => {
      if (role !== 'classroom') return;
      tracked.classrooms.add(id);
      if (connected) tally(id).joined(id, this.now());
      else tally(id).left(id, this.now());
    };
    for (const p of lesson.participants.values()) joined(p.id, p.role, p.connected);
    tracked.unsubscribe = subscribe<LessonEvents>(
      lesson,
      {
        participantJoined: (p) => joined(p.id, p.role, p.connected),
        participantUpdated: (p) => joined(p.id, p.role, p.connected),
        participantLeft: (id) => classroom(id)?.left(id, this.now()),
        handRaised: (id) => classroom(id)?.handRaised(),
        floorGranted: (id) => classroom(id)?.floorGranted(id, this.now()),
        floorRevoked: (id) => classroom(id)?.floorRevoked(id, this.now()),
        linkChanged: (link, _previous, p) => {
          if (p.role === 'classroom') classroom(p.id)?.audio(p.id, link.layer === 'audio-only', this.now());
        },
        started: () => {
          const at = lesson.startedAt?.getTime() ?? this.now();
          for (const t of tracked.tallies.values()) t.live(at);
          tracked.dirty = true;
        },
        ended: () => {
          // At shutdown the lesson stays live in the catalog: stop() wrote its rows, the next start adds to them.
          if (this.stopped) return;
          // A lesson that never happened (cancelled, or ended before anyone came) leaves no rows: nobody was absent from it.
          if (lesson.startedAt === null && tracked.tallies.size === 0) {
            tracked.unsubscribe();
            this.lessons.delete(lesson.id);
            return;
          }
          tracked.finalAt = lesson.endedAt?.getTime() ?? this.now();
          for (const t of tracked.tallies.values()) t.end(tracked.finalAt);
          tracked.dirty = true;
          void this.flush();
        },
        // Another node hosts it now. Handed over in order (this node stops): its rows are written as
        // they stand, before the lease is given up, and the next origin adds to them. Lease lost:
        // the next origin already owns the rows (what it read includes this node's last write).
        handedOver: (_reason, graceful) => {
          if (!graceful) return void this.lessons.delete(lesson.id);
          tracked.dirty = true;
          void this.flush().finally(() => this.lessons.delete(lesson.id));
        },
        closed: () => tracked.unsubscribe(),
      },
      (event, err) => this.opts.log.warn({ lessonId: lesson.id, event, err: (err as Error).message }, 'ledger: lesson event not counted'),
    );
    this.lessons.set(lesson.id, tracked);
  }

  /** A sampling tick: each connected school's loss and RTT. */
  sampled(samples: Iterable<LedgerQualitySample>): void {
    for (const s of samples) {
      const tracked = this.lessons.get(s.lessonId);
      if (!tracked || tracked.finalAt !== undefined) continue;
      for (const school of s.schools) {
        const t = tracked.tallies.get(school.schoolId);
        if (!t || !school.connected || !school.quality) continue;
        // Loss of a tick that carried nothing says nothing (as the alerts read it).
        t.sample(school.quality.bitrateKbps > 0 ? school.quality.lossPct : null, school.quality.rttMs);
        tracked.dirty = true;
      }
    }
  }

  /** Lessons whose rows wait for the database. */
  get waiting(): number {
    return [...this.lessons.values()].filter((t) => t.dirty || t.finalAt !== undefined).length;
  }

  /** Why the ledger is behind, or undefined. */
  problem(): string | undefined {
    return this.failure ? `the ledger of ${this.waiting} lessons waits for the catalog (${this.failure})` : undefined;
  }

  /** Writes every lesson with something new; resolves when done or when the database refused (retried later). */
  flush(): Promise<void> {
    this.writing ??= this.writeAll().finally(() => (this.writing = undefined));
    return this.writing;
  }

  /**
   * Shutdown, before the lessons end: writes what each running lesson has up to now (not final:
   * the catalog keeps the lesson live and the next start adds to it), then lets go.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.writing;
    for (const t of this.lessons.values()) if (t.lesson.state === 'live' || t.tallies.size > 0) t.dirty = true;
    await this.writeAll();
    for (const t of this.lessons.values()) t.unsubscribe();
    this.lessons.clear();
  }

  private async writeAll(): Promise<void> {
    for (const [id, t] of [...this.lessons]) {
      // A running live lesson's connected time grows without events: written every round.
      if (!t.dirty && !(t.lesson.state === 'live' && t.finalAt === undefined)) continue;
      try {
        await this.write(t);
      } catch (err) {
        const first = this.failure === undefined;
        this.failure = err instanceof Error ? err.message : String(err);
        if (first) this.opts.log.warn({ waiting: this.waiting, err: this.failure }, 'catalog away: ledger rows kept and retried');
        if (!this.stopped) this.schedule(this.opts.retrySeconds);
        return;
      }
      if (t.finalAt !== undefined) this.lessons.delete(id);
    }
    if (this.failure !== undefined) this.opts.log.info({}, 'catalog back: ledger caught up');
    this.failure = undefined;
  }

  private async write(t: Tracked): Promise<void> {
    const { lesson } = t;
    if (this.opts.holds && !this.opts.holds(lesson.id)) {
      t.dirty = false;
      return;
    }
    // What a previous run stored is read once, before the first write: never written over with less.
    t.stored ??= new Map((await this.opts.ledger.stored(lesson.id)).rows.map((r) => [r.schoolId, r]));
    const at = t.finalAt ?? this.now();
    const schools = new Set([...lesson.def.schools, ...t.stored.keys(), ...t.tallies.keys()]);
    const rows = [...schools].sort().map((schoolId) => {
      const invited = lesson.def.schools.includes(schoolId);
      const since = t.tallies.get(schoolId)?.state(at) ?? emptyTally(schoolId, invited);
      const before = t.stored!.get(schoolId);
      return before ? mergeTally(before, since) : since;
    });
    t.dirty = false;
    const lessonAt = (lesson.startedAt ?? lesson.def.createdAt).getTime();
    try {
      await this.opts.ledger.put(lesson.id, lessonAt, rows, t.finalAt !== undefined);
    } catch (err) {
      t.dirty = true;
      throw err;
    }
  }

  private schedule(seconds: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.flush().finally(() => {
        if (this.failure === undefined) this.schedule(this.opts.writeSeconds);
      });
    }, seconds * 1000);
    this.timer.unref();
  }
}
