/** The timetable's pure rules: weekly series with exceptions, bounds, and conflicts. */
import t from 'tap';
import { checkConflicts, MAX_OCCURRENCES, occurrences, WEEK_MS } from '../src/catalog/timetable.js';
import type { StoredLesson } from '../src/catalog/types.js';
import { LessoncastError } from '../src/errors.js';

const H = 3600_000;
const MON = Date.parse('2027-02-01T09:00:00Z');
const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return err instanceof LessoncastError ? `${err.code}:${(err.details?.['field'] as string | undefined) ?? ''}` : String(err);
  }
};

t.test('a weekly series: every week up to the last day, holidays skipped', async (t) => {
  const slots = occurrences({ startsAt: MON, endsAt: MON + H }, { until: '2027-02-22', except: ['2027-02-08'] });
  t.same(
    slots.map((s) => new Date(s.startsAt).toISOString()),
    ['2027-02-01T09:00:00.000Z', '2027-02-15T09:00:00.000Z', '2027-02-22T09:00:00.000Z'],
    'the until day itself is included; the exception is left out',
  );
  t.ok(
    slots.every((s) => s.endsAt - s.startsAt === H),
    'each as long as the first',
  );
  t.same(occurrences({ startsAt: MON, endsAt: MON + H }), [{ startsAt: MON, endsAt: MON + H }], 'no series: the one lesson');
});

t.test('impossible entries are refused with the field at fault', async (t) => {
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON })),
    'TIMETABLE_INVALID:endsAt',
    'zero length',
  );
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON - H })),
    'TIMETABLE_INVALID:endsAt',
    'ends before it starts',
  );
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON + 13 * H })),
    'TIMETABLE_INVALID:endsAt',
    'longer than 12 h',
  );
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON + H }, { until: '2027-01-31' })),
    'TIMETABLE_INVALID:weekly.until',
  );
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON + H }, { until: '2027-02-30x' })),
    'TIMETABLE_INVALID:',
  );
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON + H }, { until: '2027-02-01', except: ['2027-02-01'] })),
    'TIMETABLE_INVALID:weekly.except',
    'nothing left',
  );
  const until = new Date(MON + MAX_OCCURRENCES * WEEK_MS).toISOString().slice(0, 10);
  t.equal(
    codeOf(() => occurrences({ startsAt: MON, endsAt: MON + H }, { until })),
    'TIMETABLE_INVALID:weekly.until',
    'too many',
  );
});

const lesson = (id: string, instructorId: string, schools: string[], startsAt: number, endsAt: number, state = 'created'): StoredLesson =>
  ({
    id,
    title: id,
    subject: '',
    instructorId,
    schools,
    record: false,
    seriesId: null,
    startsAt,
    endsAt,
    state,
    createdAt: 0,
    startedAt: null,
    endedAt: null,
  }) as StoredLesson;

t.test('conflicts', async (t) => {
  const existing = [lesson('a', 'teacher-1', ['s1', 's2'], MON, MON + H), lesson('gone', 'teacher-2', ['s3'], MON, MON + H, 'cancelled')];
  t.equal(
    codeOf(() => checkConflicts([lesson('b', 'teacher-1', ['s9'], MON + H - 1, MON + 2 * H)], existing)),
    'INSTRUCTOR_BUSY:',
  );
  t.equal(
    codeOf(() => checkConflicts([lesson('b', 'teacher-9', ['s2'], MON - H, MON + 1)], existing)),
    'SCHOOL_BUSY:',
  );
  t.equal(
    codeOf(() => checkConflicts([lesson('b', 'teacher-1', ['s1'], MON + H, MON + 2 * H)], existing)),
    undefined,
    'touching is no overlap',
  );
  t.equal(
    codeOf(() => checkConflicts([lesson('b', 'teacher-2', ['s3'], MON, MON + H)], existing)),
    undefined,
    'cancelled holds no slot',
  );
  t.equal(
    codeOf(() => checkConflicts([lesson('b', 'teacher-5', ['s5'], MON, MON + H), lesson('c', 'teacher-6', ['s5'], MON, MON + H)], [])),
    'SCHOOL_BUSY:',
    'within the batch',
  );
});
