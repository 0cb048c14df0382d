import type { LessonEvents, Participant } from './lesson.js';
import { subscribe, type Subscribable } from '../events.js';

/** One participant's presence in a lesson: an interval per stay, `leftAt` null while present. */
export interface AttendanceEntry {
  participantId: string;
  role: string;
  name: string;
  intervals: Array<{ joinedAt: string; leftAt: string | null }>;
}

/** One line of a lesson's event log. */
export interface JournalEvent {
  /** ISO time. */
  at: string;
  /** Seconds on the lesson timeline (negative: before the lesson went live). */
  t: number;
  type: string;
  participantId?: string;
  trackId?: string;
  detail?: Record<string, unknown>;
}

/** What the journal reads of a participant present when it opens. */
export type JournalParticipant = Pick<Participant, 'id' | 'role' | 'name' | 'hidden' | 'connected' | 'joinedAt'>;

/** What the journal reads of a lesson: who is present now, and its events. */
export interface JournalSubject extends Subscribable<LessonEvents> {
  readonly participants: ReadonlyMap<string, JournalParticipant>;
}

export interface JournalOptions {
  /** Zero of the timeline (`t`): when the lesson went live. */
  origin: Date;
  /** Something was added or changed (whoever keeps the journal saves it). */
  onChange(): void;
  /** A lesson event could not be journaled (never thrown into the lesson). */
  onError(event: keyof LessonEvents, err: unknown): void;
  /** What an earlier part of the same lesson journaled (a recording continued after a restart or a failover): kept, and added to. */
  previous?: { attendance: AttendanceEntry[]; events: readonly JournalEvent[] };
}

/** Past this many events a lesson's log stops growing (a reconnect storm must not grow it forever). */
const MAX_EVENTS = 50_000;

/**
 * A lesson's attendance and event log: who was there when, and what happened
 * (joins, leaves, hands, the floor, lost media, the end). It belongs to the
 * lesson, not to whoever stores it: today a recording keeps it in its
 * manifest; others may add their own lines with `note()`.
 */
export class LessonJournal {
  private readonly attendanceById = new Map<string, AttendanceEntry>();
  /** Last known connection state, so only changes are logged. */
  private readonly connected = new Map<string, boolean>();
  private readonly log: JournalEvent[] = [];
  private stopListening?: () => void;
  private closed = false;

  constructor(
    private readonly lesson: JournalSubject,
    private readonly opts: JournalOptions,
  ) {
    for (const a of opts.previous?.attendance ?? []) this.attendanceById.set(a.participantId, structuredClone(a));
    this.log.push(...(opts.previous?.events ?? []));
  }

  /** Takes in whoever is present now and follows the lesson's events from here on. */
  open(): void {
    if (this.stopListening || this.closed) return;
    for (const p of this.lesson.participants.values()) {
      if (p.hidden) continue;
      const entry = this.attendanceById.get(p.id) ?? { participantId: p.id, role: p.role, name: p.name, intervals: [] };
      entry.intervals.push({ joinedAt: p.joinedAt.toISOString(), leftAt: null });
      this.attendanceById.set(p.id, entry);
      this.connected.set(p.id, p.connected);
    }
    this.stopListening = subscribe<LessonEvents>(
      this.lesson,
      {
        participantJoined: (p, hidden) => {
          if (hidden) return;
          const entry = this.attendanceById.get(p.id) ?? { participantId: p.id, role: p.role, name: p.name, intervals: [] };
          entry.intervals.push({ joinedAt: new Date().toISOString(), leftAt: null });
          this.attendanceById.set(p.id, entry);
          this.connected.set(p.id, true);
          this.note('participantJoined', p.id, { role: p.role, name: p.name });
        },
        participantUpdated: (p, hidden) => {
          if (hidden || this.connected.get(p.id) === p.connected) return;
          this.connected.set(p.id, p.connected);
          this.note(p.connected ? 'participantReconnected' : 'participantDisconnected', p.id);
        },
        participantLeft: (id, hidden) => {
          if (hidden) return;
          const open = this.attendanceById.get(id)?.intervals.find((i) => i.leftAt === null);
          if (open) open.leftAt = new Date().toISOString();
          this.connected.delete(id);
          this.note('participantLeft', id);
        },
        handRaised: (id) => this.note('handRaised', id),
        handLowered: (id) => this.note('handLowered', id),
        floorGranted: (id) => this.note('floorGranted', id),
        floorRevoked: (id) => this.note('floorRevoked', id),
        // The archive's timeline keeps both moments of an audio-first pause (not every layer change).
        linkChanged: (link, previous, p) => {
          if (p.hidden) return;
          const kbps = { availableKbps: link.availableKbps };
          if (link.layer === 'audio-only') this.note('videoPausedForLink', link.participantId, kbps);
          else if (previous?.layer === 'audio-only') this.note('videoResumedForLink', link.participantId, { ...kbps, layer: link.layer });
        },
        reconnectRequested: (ids, reason) => this.note('mediaLost', undefined, { participants: ids, reason }),
        ended: (reason) => this.note('lessonEnded', undefined, { reason }),
      },
      this.opts.onError,
    );
  }

  /** Adds a line to the event log, stamped now. */
  note(type: string, participantId?: string, detail?: Record<string, unknown>, trackId?: string): void {
    if (this.log.length >= MAX_EVENTS) return;
    const at = new Date();
    this.log.push({
      at: at.toISOString(),
      t: Math.round(at.getTime() - this.opts.origin.getTime()) / 1000,
      type,
      ...(participantId ? { participantId } : {}),
      ...(trackId ? { trackId } : {}),
      ...(detail ? { detail } : {}),
    });
    this.opts.onChange();
  }

  attendance(): AttendanceEntry[] {
    return [...this.attendanceById.values()];
  }

  events(): readonly JournalEvent[] {
    return this.log;
  }

  /** Ends every stay still open at `at` (the lesson is over for everyone). */
  closeAttendance(at: Date): void {
    const end = at.toISOString();
    for (const a of this.attendanceById.values()) for (const i of a.intervals) i.leftAt ??= end;
  }

  /** Stops following the lesson; what was journaled stays readable. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopListening?.();
  }
}
