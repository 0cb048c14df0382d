/**
 * Administration: create a lesson, invite schools, and mint the links
 * (tokens in the fragment) for its instructor, its classrooms, the control
 * room and the archive; and the catalog in tabs: schools, people, the
 * timetable's week, and school boards (enrol with a link and QR code, revoke).
 */
import type { LessonView, Role } from '../../../src/domain/index.js';
import { api } from '../lib/api.js';
import { byId, fieldText } from '../lib/dom.js';
import { onLangChange } from '../lib/i18n.js';
import { parseSchools } from '../lib/schools.js';
import { clearNotice, exposeDiagnostics, notice, runWithToken, startPage } from '../lib/shell.js';
import { Boards } from './admin/boards.js';
import { LessonLinks } from './admin/lessonLinks.js';
import { LessonList } from './admin/lessonList.js';
import { linkItem, mintLink } from './admin/links.js';
import { peopleEditor, schoolsEditor } from './admin/people.js';
import { Timetable } from './admin/timetable.js';

startPage();

/** How long links for an existing lesson stay valid (its form's first choice). */
const RELINK_TTL_SECONDS = 14400;

runWithToken('admin', run);

function run(token: string): void {
  const lessonForm = byId<HTMLFormElement>('lesson-form');
  const staffForm = byId<HTMLFormElement>('staff-form');
  const lessonLinks = new LessonLinks(token);
  const lessons = new LessonList(token, (l) => void relink(l));

  lessonForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = new FormData(lessonForm);
    const { schools, bad } = parseSchools(fieldText(form, 'schools'));
    if (bad.length) return notice('error', 'admin.badSchools', { lines: bad.join(' | ') });
    const instructor = { id: fieldText(form, 'instructorId'), name: fieldText(form, 'instructorName') };
    const submit = lessonForm.querySelector<HTMLButtonElement>('button[type=submit]')!;
    submit.disabled = true;
    void (async () => {
      try {
        const { lesson } = await api<{ lesson: LessonView }>(token, '/api/lessons', {
          method: 'POST',
          body: {
            title: fieldText(form, 'title'),
            subject: fieldText(form, 'subject'),
            instructorId: instructor.id,
            schools: schools.map((s) => s.id),
            record: form.get('record') === 'on',
          },
        });
        await lessonLinks.make(lesson, instructor, schools, Number(form.get('ttl')));
        clearNotice();
        void lessons.load();
      } catch (e) {
        notice('error', 'common.failed', {}, (e as Error).message);
      } finally {
        submit.disabled = false;
      }
    })();
  });

  staffForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = new FormData(staffForm);
    const role = fieldText(form, 'role') as Role;
    void mintLink(token, role, fieldText(form, 'id'), fieldText(form, 'name'), '*', Number(form.get('ttl')))
      .then((l) => {
        clearNotice();
        byId('staff-links').prepend(linkItem(l));
      })
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message));
  });

  /** New links for an existing lesson (school names are not stored with the lesson: ids stand in). */
  async function relink(l: LessonView): Promise<void> {
    try {
      const detail = await api<{ schools: string[] }>(token, `/api/lessons/${encodeURIComponent(l.id)}`);
      await lessonLinks.make(
        l,
        { id: l.instructorId, name: '' },
        detail.schools.map((id) => ({ id, name: '' })),
        RELINK_TTL_SECONDS,
      );
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }

  const schools = schoolsEditor(token);
  const people = peopleEditor(token);
  const timetable = new Timetable(token);
  const boards = new Boards(token);
  schools.onChange((list) => {
    timetable.setSchools(list);
    boards.setSchools(list);
  });
  people.onChange((list) => timetable.setPeople(list));
  /** Each tab loads its data when opened (and the catalog's lists the others offer). */
  const loaders: Record<string, () => void> = {
    lessons: () => void lessons.load(),
    schools: () => void schools.load(),
    people: () => void people.load(),
    timetable: () => void Promise.all([schools.load(), people.load(), timetable.loadSubjects(), timetable.load()]),
    boards: () => void schools.load(),
  };
  const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('[role=tab]'));
  const select = (tab: HTMLButtonElement) => {
    for (const other of tabs) {
      const on = other === tab;
      other.setAttribute('aria-selected', String(on));
      other.tabIndex = on ? 0 : -1;
      byId(other.getAttribute('aria-controls')!).hidden = !on;
    }
    clearNotice();
    loaders[tab.dataset['tab']!]?.();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener('click', () => select(tab));
    // Arrow keys move between tabs (the ARIA tabs pattern).
    tab.addEventListener('keydown', (ev) => {
      const step = ev.key === 'ArrowRight' ? 1 : ev.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      const next = tabs[(i + step + tabs.length) % tabs.length]!;
      next.focus();
      select(next);
    });
  });

  onLangChange(() => {
    void lessons.load();
    lessonLinks.render();
    schools.render();
    people.render();
    timetable.render();
    boards.render();
  });
  void lessons.load();
  exposeDiagnostics({
    page: 'admin',
    linkCount: () => lessonLinks.links.length,
    week: () => timetable.lessons.map((l) => ({ id: l.id, title: l.title, state: l.state, startsAt: l.startsAt })),
  });
}
