/**
 * The region's durable record, as the catalog stores it: schools, people, subjects, the timetable
 * (lessons), devices and revocations. Times are milliseconds since the epoch (UTC).
 */
import type { RevocationKind } from '../auth/revocations.js';
import type { LessonState } from '../domain/index.js';

export type { RevocationKind } from '../auth/revocations.js';
import type { LessonDefinition } from '../lessons/lesson.js';

/** Roles a person of the catalog holds (a classroom is a school's board, not a person). */
export const PERSON_ROLES = ['instructor', 'monitor', 'archivist', 'admin'] as const;
export type PersonRole = (typeof PERSON_ROLES)[number];

export interface School {
  id: string;
  name: string;
  district: string;
  /** Boards (classroom screens) the school has. */
  boards: number;
  createdAt: number;
  updatedAt: number;
  /** Soft delete: the school's recordings and ledger stay; its tokens are revoked. */
  deletedAt: number | null;
}

export interface Person {
  id: string;
  name: string;
  role: PersonRole;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

export interface Subject {
  id: string;
  name: string;
  createdAt: number;
  updatedAt: number;
  deletedAt: number | null;
}

/** A timetable lesson's state: the live lesson's, or cancelled before it happened. */
export type StoredLessonState = LessonState | 'cancelled';

/** A lesson as the catalog keeps it: the live lesson's definition (subject: an id from the timetable, or free text), its slot and its state. */
export interface StoredLesson extends Omit<LessonDefinition, 'createdAt'> {
  /** The weekly series this lesson is one of, if any. */
  seriesId: string | null;
  /** Planned slot; null for a lesson opened at once (not in the timetable, never in a conflict). */
  startsAt: number | null;
  endsAt: number | null;
  state: StoredLessonState;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** A lesson's state change, as the live lesson reports it. */
export interface LessonChange {
  state: LessonState;
  startedAt: number | null;
  endedAt: number | null;
}

export interface LessonQuery {
  /** Lessons whose slot (or, unscheduled, whose creation) ends after `from` and starts before `to`. */
  from?: number;
  to?: number;
  schoolId?: string;
  instructorId?: string;
  states?: StoredLessonState[];
  limit?: number;
}

export interface Device {
  id: string;
  schoolId: string;
  name: string;
  createdAt: number;
  lastSeenAt: number | null;
  revokedAt: number | null;
}

export interface Revocation {
  kind: RevocationKind;
  subject: string;
  /** Tokens of a person or a school issued up to this time are refused (ms). */
  at: number;
  reason: string;
}
