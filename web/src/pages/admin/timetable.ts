/**
 * The timetable as a week (Monday to Sunday, by hour, in the browser's time zone) with previous and
 * next week; a form that schedules a lesson once or weekly (with days left out); Cancel on a lesson
 * not yet live. The server refuses conflicts with a code (shown by errors.ts).
 */
import { api } from '../../lib/api.js';
import { byId, fieldText, fill, h, show } from '../../lib/dom.js';
import { hourMinute } from '../../lib/format.js';
import { locale, t } from '../../lib/i18n.js';
import { clearNotice, notice } from '../../lib/shell.js';
import { LESSON_STATE_TEXT } from '../../lib/widgets.js';
import type { Entry } from './directory.js';
import { showApiError } from './errors.js';
import type { Person, School } from './people.js';

export interface TimetableLesson {
  id: string;
  title: string;
  subject: string;
  instructorId: string;
  schools: string[];
  seriesId: string | null;
  startsAt: string;
  endsAt: string;
  state: 'created' | 'live' | 'ended' | 'cancelled';
}

/** Monday 00:00 (local time) of the week holding `d`. */
export function weekStart(d: Date): Date {
  const monday = new Date(d.getFullYear(), d.getMonth(), d.getDate());
  monday.setDate(monday.getDate() - ((monday.getDay() + 6) % 7));
  return monday;
}

/** The UTC day (what the API's `until` and `except` name) of a lesson starting on a local date at a local time. */
const utcDayOf = (localDate: string, time: string): string => new Date(`${localDate}T${time}`).toISOString().slice(0, 10);

export class Timetable {
  lessons: TimetableLesson[] = [];
  private week = weekStart(new Date());
  private readonly grid = byId('week');
  private readonly label = byId('week-label');
  private readonly form = byId<HTMLFormElement>('timetable-form');
  private readonly subjectForm = byId<HTMLFormElement>('subject-form');

  constructor(private readonly token: string) {
    byId('week-prev').addEventListener('click', () => this.move(-7));
    byId('week-next').addEventListener('click', () => this.move(7));
    byId('week-today').addEventListener('click', () => {
      this.week = weekStart(new Date());
      void this.load();
    });
    const weekly = this.form.querySelector<HTMLInputElement>('[name=weekly]')!;
    const repeat = byId('tt-repeat');
    weekly.addEventListener('change', () => show(repeat, weekly.checked));
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.schedule();
    });
    this.subjectForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.addSubject();
    });
  }

  private move(days: number): void {
    this.week = new Date(this.week.getFullYear(), this.week.getMonth(), this.week.getDate() + days);
    void this.load();
  }

  /** The week's lessons from the server, then the grid. */
  async load(): Promise<void> {
    const from = this.week;
    const to = new Date(from.getFullYear(), from.getMonth(), from.getDate() + 7);
    try {
      const q = new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
      this.lessons = (await api<{ lessons: TimetableLesson[] }>(this.token, `/api/timetable?${q}`)).lessons;
    } catch (e) {
      return showApiError(e);
    }
    this.render();
  }

  render(): void {
    const days = Array.from({ length: 7 }, (_, i) => new Date(this.week.getFullYear(), this.week.getMonth(), this.week.getDate() + i));
    const dayFmt = new Intl.DateTimeFormat(locale(), { weekday: 'short', day: 'numeric', month: 'short' });
    this.label.textContent = t('admin.weekOf', {
      from: days[0]!.toLocaleDateString(locale(), { dateStyle: 'medium' }),
      to: days[6]!.toLocaleDateString(locale(), { dateStyle: 'medium' }),
    });
    // By local date, not by 24-hour steps from Monday (a clock change would shift them).
    const dayOf = (l: TimetableLesson) => days.findIndex((d) => d.toDateString() === new Date(l.startsAt).toDateString());
    const hours = this.lessons.map((l) => new Date(l.startsAt).getHours());
    const first = Math.min(8, ...hours);
    const last = Math.max(18, ...hours);
    const rows: HTMLElement[] = [];
    for (let hour = first; hour <= last; hour++) {
      const cells = days.map((_, day) =>
        h(
          'td',
          { 'data-day': day, 'data-hour': hour },
          ...this.lessons.filter((l) => dayOf(l) === day && new Date(l.startsAt).getHours() === hour).map((l) => this.item(l)),
        ),
      );
      rows.push(h('tr', {}, h('th', { scope: 'row', class: 'week-hour' }, `${String(hour).padStart(2, '0')}:00`), ...cells));
    }
    fill(
      this.grid,
      h(
        'table',
        { class: 'week' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), ...days.map((d) => h('th', { scope: 'col' }, dayFmt.format(d))))),
        h('tbody', {}, ...rows),
      ),
    );
  }

  private item(l: TimetableLesson): HTMLElement {
    return h(
      'div',
      { class: `week-lesson state-${l.state}`, 'data-lesson': l.id, 'data-state': l.state, 'data-series': l.seriesId ?? '' },
      h('span', { class: 'week-time' }, `${hourMinute(l.startsAt)}–${hourMinute(l.endsAt)}`),
      h('strong', { class: 'week-title' }, l.title),
      h('span', { class: 'muted small' }, `${l.instructorId} · ${t('admin.nSchools', { n: l.schools.length })}`),
      l.seriesId ? h('span', { class: 'muted small' }, t('admin.weeklyBadge')) : null,
      h('span', { class: 'small' }, t(LESSON_STATE_TEXT[l.state])),
      l.state === 'created'
        ? h(
            'button',
            { type: 'button', class: 'btn small', 'data-action': 'cancel', onclick: () => void this.cancel(l) },
            t('common.cancel'),
          )
        : null,
    );
  }

  private async cancel(l: TimetableLesson): Promise<void> {
    if (!confirm(t('admin.cancelConfirm', { title: l.title, when: hourMinute(l.startsAt) }))) return;
    try {
      await api(this.token, `/api/timetable/${encodeURIComponent(l.id)}`, { method: 'DELETE' });
    } catch (e) {
      return showApiError(e);
    }
    clearNotice();
    await this.load();
  }

  private async schedule(): Promise<void> {
    const f = new FormData(this.form);
    const date = fieldText(f, 'date');
    const start = fieldText(f, 'start');
    const end = fieldText(f, 'end');
    const schools = f.getAll('schools').map(String);
    if (!schools.length) return notice('error', 'admin.pickSchools');
    const body: Record<string, unknown> = {
      title: fieldText(f, 'title'),
      subjectId: fieldText(f, 'subjectId'),
      instructorId: fieldText(f, 'instructorId'),
      schools,
      startsAt: new Date(`${date}T${start}`).toISOString(),
      endsAt: new Date(`${date}T${end}`).toISOString(),
      record: f.get('record') === 'on',
    };
    if (f.get('weekly') === 'on') {
      const except = fieldText(f, 'except')
        .split(/[\s,;]+/)
        .filter(Boolean);
      body['weekly'] = { until: utcDayOf(fieldText(f, 'until') || date, start), except: except.map((d) => utcDayOf(d, start)) };
    }
    let scheduled: TimetableLesson[];
    try {
      scheduled = (await api<{ lessons: TimetableLesson[] }>(this.token, '/api/timetable', { method: 'POST', body })).lessons;
    } catch (e) {
      return showApiError(e);
    }
    notice('info', 'admin.scheduled', { n: scheduled.length });
    // Show the week of the (first) lesson just added.
    this.week = weekStart(new Date(scheduled[0]!.startsAt));
    await this.load();
  }

  private async addSubject(): Promise<void> {
    const f = new FormData(this.subjectForm);
    try {
      await api(this.token, `/api/subjects/${encodeURIComponent(fieldText(f, 'id'))}`, {
        method: 'PUT',
        body: { name: fieldText(f, 'name') },
      });
    } catch (e) {
      return showApiError(e);
    }
    this.subjectForm.reset();
    clearNotice();
    await this.loadSubjects();
  }

  async loadSubjects(): Promise<void> {
    try {
      const { subjects } = await api<{ subjects: Entry[] }>(this.token, '/api/subjects');
      fillSelect(this.form.querySelector('[name=subjectId]')!, subjects);
    } catch (e) {
      showApiError(e);
    }
  }

  /** The form offers the instructors among the people. */
  setPeople(people: Person[]): void {
    fillSelect(
      this.form.querySelector('[name=instructorId]')!,
      people.filter((p) => p.role === 'instructor'),
    );
  }

  /** The form offers every school as a checkbox. */
  setSchools(schools: School[]): void {
    const box = byId('tt-schools');
    const checked = new Set(Array.from(box.querySelectorAll<HTMLInputElement>('input:checked')).map((i) => i.value));
    fill(
      box,
      ...schools.map((s) =>
        h(
          'label',
          { class: 'check' },
          h('input', { type: 'checkbox', name: 'schools', value: s.id, checked: checked.has(s.id) }),
          ` ${s.name}`,
        ),
      ),
    );
  }
}

/** A select of catalog entries (keeps the choice when it is still there). */
export function fillSelect(select: HTMLSelectElement, entries: Entry[]): void {
  const current = select.value;
  fill(select, ...entries.map((e) => h('option', { value: e.id, selected: e.id === current }, `${e.name} (${e.id})`)));
}
