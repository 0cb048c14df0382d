/**
 * Administration: create a lesson, invite schools, and mint the links
 * (tokens in the fragment) for its instructor, its classrooms, the control
 * room and the archive.
 */
import type { LessonView, Role } from '../../../src/signalling/protocol.js';
import { api } from '../lib/api.js';
import { pageLink } from '../lib/credentials.js';
import { byId, fill, h, show } from '../lib/dom.js';
import { dateTime } from '../lib/format.js';
import { parseSchools } from '../lib/schools.js';
import { onLangChange, t, type MessageKey } from '../lib/i18n.js';
import { clearNotice, exposeDiagnostics, notice, runWithToken, startPage } from '../lib/shell.js';

startPage();

const ui = {
  lessonForm: byId<HTMLFormElement>('lesson-form'),
  linksPanel: byId('links-panel'),
  linksTitle: byId('links-h'),
  links: byId('links'),
  staffForm: byId<HTMLFormElement>('staff-form'),
  staffLinks: byId('staff-links'),
  lessons: byId('lessons').querySelector('tbody')!,
  refresh: byId<HTMLButtonElement>('refresh'),
};

/** Where each role works. */
const PAGE_OF: Record<Role, string> = { instructor: '/studio', classroom: '/classroom', monitor: '/control', archivist: '/archive', admin: '/admin' };
const ROLE_LABEL: Record<Role, MessageKey> = { instructor: 'role.instructor', classroom: 'role.classroom', monitor: 'role.monitor', archivist: 'role.archivist', admin: 'role.admin' };

interface PageLink {
  role: Role;
  name: string;
  url: string;
  expiresAt: string;
}

runWithToken('admin', run);

function run(token: string): void {
  let created: PageLink[] = [];

  async function mint(role: Role, id: string, name: string, lessons: '*' | string[], ttlSeconds: number): Promise<PageLink> {
    const r = await api<{ token: string; expiresAt: string }>(token, '/api/tokens', { method: 'POST', body: { role, id, name: name || id, lessons, ttlSeconds } });
    const lessonId = Array.isArray(lessons) && lessons.length === 1 ? lessons[0] : undefined;
    return { role, name: name || id, url: pageLink(PAGE_OF[role], r.token, lessonId), expiresAt: r.expiresAt };
  }

  function linkItem(l: PageLink): HTMLElement {
    const input = h('input', { type: 'text', readonly: true, value: l.url, class: 'link-url', 'aria-label': `${t(ROLE_LABEL[l.role])}: ${l.name}` });
    const copy = h('button', { type: 'button', class: 'btn small', onclick: () => void copyText(input, copy) }, t('admin.copy'));
    return h(
      'li',
      { class: 'link-item', 'data-role': l.role, 'data-name': l.name },
      h('span', { class: 'link-role' }, t(ROLE_LABEL[l.role])),
      h('span', { class: 'link-name' }, l.name),
      input,
      copy,
      h('a', { class: 'btn small', href: l.url, target: '_blank', rel: 'noopener noreferrer' }, t('admin.open')),
      h('span', { class: 'muted small' }, t('admin.validUntil', { when: dateTime(l.expiresAt) })),
    );
  }

  async function copyText(input: HTMLInputElement, button: HTMLButtonElement): Promise<void> {
    try {
      await navigator.clipboard.writeText(input.value);
    } catch {
      // No clipboard permission (plain http on a LAN): select it for Ctrl+C.
      input.select();
      document.execCommand('copy');
    }
    button.textContent = t('admin.copied');
    setTimeout(() => (button.textContent = t('admin.copy')), 2000);
  }

  ui.lessonForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = new FormData(ui.lessonForm);
    const { schools, bad } = parseSchools(String(form.get('schools') ?? ''));
    if (bad.length) return notice('error', 'admin.badSchools', { lines: bad.join(' | ') });
    const ttl = Number(form.get('ttl'));
    const instructorId = String(form.get('instructorId')).trim();
    const instructorName = String(form.get('instructorName') ?? '').trim();
    const submit = ui.lessonForm.querySelector<HTMLButtonElement>('button[type=submit]')!;
    submit.disabled = true;
    void (async () => {
      try {
        const { lesson } = await api<{ lesson: LessonView }>(token, '/api/lessons', {
          method: 'POST',
          body: { title: String(form.get('title')).trim(), subject: String(form.get('subject') ?? '').trim(), instructorId, schools: schools.map((s) => s.id), record: form.get('record') === 'on' },
        });
        created = [await mint('instructor', instructorId, instructorName, [lesson.id], ttl)];
        for (const s of schools) created.push(await mint('classroom', s.id, s.name, [lesson.id], ttl));
        clearNotice();
        showLinks(lesson);
        void loadLessons();
      } catch (e) {
        notice('error', 'common.failed', {}, (e as Error).message);
      } finally {
        submit.disabled = false;
      }
    })();
  });

  function showLinks(lesson: Pick<LessonView, 'id' | 'title'>): void {
    show(ui.linksPanel, true);
    ui.linksPanel.dataset['lesson'] = lesson.id;
    ui.linksTitle.textContent = t('admin.linksFor', { title: lesson.title });
    fill(ui.links, ...created.map(linkItem));
    ui.linksTitle.tabIndex = -1;
    ui.linksTitle.focus();
  }

  ui.staffForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = new FormData(ui.staffForm);
    const role = String(form.get('role')) as Role;
    void mint(role, String(form.get('id')).trim(), String(form.get('name') ?? '').trim(), '*', Number(form.get('ttl')))
      .then((l) => {
        clearNotice();
        ui.staffLinks.prepend(linkItem(l));
      })
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message));
  });

  async function loadLessons(): Promise<void> {
    try {
      const { lessons } = await api<{ lessons: Array<LessonView & { participants: number }> }>(token, '/api/lessons');
      lessons.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
      fill(
        ui.lessons,
        ...lessons.map((l) =>
          h(
            'tr',
            { 'data-lesson': l.id },
            h('th', { scope: 'row' }, l.title),
            h('td', {}, h('span', { class: `state state-${l.state}` }, t(`state.${l.state}`))),
            h('td', {}, l.instructorId),
            h('td', {}, dateTime(l.createdAt)),
            h('td', {}, String(l.participants)),
            h('td', {}, l.state === 'ended' ? '' : h('button', { type: 'button', class: 'btn small', onclick: () => void relink(l) }, t('admin.newLinks'))),
          ),
        ),
      );
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }

  /** New links for an existing lesson (school names are not stored with the lesson: ids stand in). */
  async function relink(l: LessonView): Promise<void> {
    try {
      const detail = await api<{ schools: string[] }>(token, `/api/lessons/${encodeURIComponent(l.id)}`);
      created = [await mint('instructor', l.instructorId, '', [l.id], 14400)];
      for (const s of detail.schools) created.push(await mint('classroom', s, '', [l.id], 14400));
      showLinks(l);
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }

  ui.refresh.addEventListener('click', () => void loadLessons());
  onLangChange(() => {
    void loadLessons();
    if (created.length) fill(ui.links, ...created.map(linkItem));
  });
  void loadLessons();
  exposeDiagnostics({ page: 'admin', linkCount: () => created.length });
}
