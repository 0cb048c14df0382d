/** Which lesson a school board should be in: pure, so the unit tests run it without a browser. */

export interface BoardLesson {
  id: string;
  title: string;
  state: 'created' | 'live' | 'ended' | 'cancelled';
  startsAt: string | null;
  endsAt: string | null;
}

/** A board joins a lesson this long before it is due (the instructor may go live early). */
export const EARLY_MS = 10 * 60_000;

/** A live lesson; else the earliest not yet live that is due within EARLY_MS and not over; else none. */
export function lessonOfTheMoment(lessons: BoardLesson[], now: number): BoardLesson | undefined {
  const live = lessons.find((l) => l.state === 'live');
  if (live) return live;
  return lessons
    .filter((l) => l.state === 'created' && l.startsAt && l.endsAt)
    .filter((l) => Date.parse(l.startsAt!) - EARLY_MS <= now && now < Date.parse(l.endsAt!))
    .sort((a, b) => a.startsAt!.localeCompare(b.startsAt!))[0];
}
