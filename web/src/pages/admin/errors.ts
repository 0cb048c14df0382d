/** The catalog's coded errors in the user's language (docs/catalog.md#errors); others as "did not work". */
import { ApiError } from '../../lib/api.js';
import { hourMinute, dateTime } from '../../lib/format.js';
import type { MessageKey } from '../../lib/i18n.js';
import { notice } from '../../lib/shell.js';

const MESSAGES: Record<string, MessageKey> = {
  INSTRUCTOR_BUSY: 'admin.errInstructorBusy',
  SCHOOL_BUSY: 'admin.errSchoolBusy',
  TIMETABLE_INVALID: 'admin.errTimetableInvalid',
  LESSON_STARTED: 'admin.errLessonStarted',
  SCHOOL_NOT_FOUND: 'admin.errSchoolNotFound',
  PERSON_NOT_FOUND: 'admin.errPersonNotFound',
  SUBJECT_NOT_FOUND: 'admin.errSubjectNotFound',
  DEVICE_NOT_FOUND: 'admin.errDeviceNotFound',
  INVALID_REQUEST: 'admin.errInvalid',
  CATALOG_UNAVAILABLE: 'admin.errUnavailable',
  FORBIDDEN: 'admin.errForbidden',
};

/** Shows an error from api(): the code's message (with the lesson in the way, for a conflict) and the server's detail. */
export function showApiError(e: unknown): void {
  const err = e instanceof ApiError ? e : undefined;
  const key = err ? MESSAGES[err.code] : undefined;
  // The code on the notice, for support staff and the browser tests.
  const mark = () => document.getElementById('notice')?.setAttribute('data-code', err?.code ?? '');
  if (!err || !key) {
    notice('error', 'common.failed', {}, (e as Error).message);
    return mark();
  }
  const d = err.details;
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  notice(
    'error',
    key,
    {
      when: d['startsAt'] ? `${dateTime(text(d['startsAt']))}–${hourMinute(text(d['endsAt']))}` : '',
      school: text(d['schoolId']),
      instructor: text(d['instructorId']),
      field: text(d['field']),
    },
    err.code,
  );
  mark();
}
