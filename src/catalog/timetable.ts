/**
 * The timetable's rules, pure: a weekly series as its occurrences, and the conflicts a new slot
 * would make (the same instructor twice at once, a school in two lessons at once).
 */
import { LessoncastError } from '../errors.js';
import type { StoredLesson } from './types.js';

export const WEEK_MS = 7 * 24 * 3600 * 1000;
/** The longest lesson the timetable takes. */
export const MAX_LESSON_MS = 12 * 3600 * 1000;
/** Occurrences one weekly series may make (a school year and a bit). */
export const MAX_OCCURRENCES = 60;

export interface Slot {
  startsAt: number;
  endsAt: number;
}

export interface Weekly {
  /** Last day an occurrence may start on (YYYY-MM-DD, UTC), inclusive. */
  until: string;
  /** Days (YYYY-MM-DD, UTC) on which the series does not happen (holidays). */
  except?: string[];
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function day(value: string, field: string): number {
  const ms = DAY.test(value) ? Date.parse(`${value}T00:00:00Z`) : NaN;
  if (Number.isNaN(ms)) throw new LessoncastError('TIMETABLE_INVALID', `${field}: ${JSON.stringify(value)} is not a day (YYYY-MM-DD)`);
  return ms;
}

/** The slots of one entry: itself, or every week from it up to `weekly.until` except the days listed. */
export function occurrences(first: Slot, weekly?: Weekly): Slot[] {
  const length = first.endsAt - first.startsAt;
  if (!(length > 0)) throw new LessoncastError('TIMETABLE_INVALID', 'a lesson must end after it starts', { field: 'endsAt' });
  if (length > MAX_LESSON_MS)
    throw new LessoncastError('TIMETABLE_INVALID', `a lesson lasts at most ${MAX_LESSON_MS / 3600_000} hours`, { field: 'endsAt' });
  if (!weekly) return [first];
  const lastDay = day(weekly.until, 'weekly.until') + 24 * 3600 * 1000;
  if (lastDay <= first.startsAt)
    throw new LessoncastError('TIMETABLE_INVALID', 'weekly.until is before the first lesson', { field: 'weekly.until' });
  const skipped = new Set((weekly.except ?? []).map((d) => day(d, 'weekly.except')));
  const slots: Slot[] = [];
  for (let start = first.startsAt; start < lastDay; start += WEEK_MS) {
    const startDay = start - (((start % 86_400_000) + 86_400_000) % 86_400_000);
    if (skipped.has(startDay)) continue;
    if (slots.length === MAX_OCCURRENCES)
      throw new LessoncastError('TIMETABLE_INVALID', `a weekly series makes at most ${MAX_OCCURRENCES} lessons`, { field: 'weekly.until' });
    slots.push({ startsAt: start, endsAt: start + length });
  }
  if (slots.length === 0) throw new LessoncastError('TIMETABLE_INVALID', 'every occurrence is an exception', { field: 'weekly.except' });
  return slots;
}

const overlaps = (a: Slot, b: { startsAt: number | null; endsAt: number | null }): boolean =>
  b.startsAt !== null && b.endsAt !== null && a.startsAt < b.endsAt && b.startsAt < a.endsAt;

/** Lessons that still hold their slot: not cancelled, not over. */
export const holdsSlot = (l: StoredLesson): boolean => l.state === 'created' || l.state === 'live';

/**
 * Refuses `candidates` when one of them overlaps a lesson of `existing` (or another candidate) with
 * the same instructor (INSTRUCTOR_BUSY) or a school in common (SCHOOL_BUSY); details name the
 * lesson in the way and when.
 */
export function checkConflicts(candidates: StoredLesson[], existing: StoredLesson[]): void {
  const placed = existing.filter(holdsSlot);
  for (const c of candidates) {
    const slot = { startsAt: c.startsAt!, endsAt: c.endsAt! };
    for (const other of placed) {
      if (other.id === c.id || !overlaps(slot, other)) continue;
      const details = {
        lessonId: other.id,
        startsAt: new Date(other.startsAt!).toISOString(),
        endsAt: new Date(other.endsAt!).toISOString(),
      };
      if (other.instructorId === c.instructorId)
        throw new LessoncastError('INSTRUCTOR_BUSY', `${c.instructorId} teaches another lesson at that time`, {
          ...details,
          instructorId: c.instructorId,
        });
      const school = c.schools.find((s) => other.schools.includes(s));
      if (school !== undefined)
        throw new LessoncastError('SCHOOL_BUSY', `school ${school} is in another lesson at that time`, { ...details, schoolId: school });
    }
    placed.push(c);
  }
}
