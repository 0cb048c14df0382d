/** Schools and people of the catalog: their tables and forms, and revoking a person's tokens. */
import { api } from '../../lib/api.js';
import { byId, fieldText, h } from '../../lib/dom.js';
import { t, type MessageKey } from '../../lib/i18n.js';
import { notice } from '../../lib/shell.js';
import { DirectoryEditor, type Entry } from './directory.js';
import { showApiError } from './errors.js';

export interface School extends Entry {
  district: string;
  boards: number;
}
export interface Person extends Entry {
  role: 'instructor' | 'monitor' | 'archivist' | 'admin';
}

const ROLE_TEXT: Record<Person['role'], MessageKey> = {
  instructor: 'role.instructor',
  monitor: 'role.monitor',
  archivist: 'role.archivist',
  admin: 'role.admin',
};

export function schoolsEditor(token: string): DirectoryEditor<School> {
  return new DirectoryEditor<School>(token, {
    base: 'schools',
    form: byId<HTMLFormElement>('school-form'),
    list: byId('schools-list'),
    nameHead: 'admin.schoolName',
    idHead: 'admin.schoolId',
    heads: ['admin.district', 'admin.boards'],
    cells: (s) => [s.district, String(s.boards)],
    body: (f) => ({ name: fieldText(f, 'name'), district: fieldText(f, 'district'), boards: Number(fieldText(f, 'boards') || 1) }),
    deleteConfirm: 'admin.deleteSchoolConfirm',
    saved: 'admin.saved',
  });
}

export function peopleEditor(token: string): DirectoryEditor<Person> {
  return new DirectoryEditor<Person>(token, {
    base: 'people',
    form: byId<HTMLFormElement>('person-form'),
    list: byId('people-list'),
    nameHead: 'admin.personName',
    idHead: 'admin.personId',
    heads: ['admin.role'],
    cells: (p) => [t(ROLE_TEXT[p.role])],
    body: (f) => ({ name: fieldText(f, 'name'), role: fieldText(f, 'role') }),
    actions: (p) => [
      h(
        'button',
        { type: 'button', class: 'btn small', 'data-action': 'revoke', onclick: () => void revokePerson(token, p) },
        t('admin.revokeTokens'),
      ),
    ],
    deleteConfirm: 'admin.deletePersonConfirm',
    saved: 'admin.saved',
  });
}

/** Every token issued to the person so far stops working (their live connections close too). */
async function revokePerson(token: string, p: Person): Promise<void> {
  if (!confirm(t('admin.revokeConfirm', { name: p.name }))) return;
  try {
    await api(token, '/api/revocations', { method: 'POST', body: { kind: 'person', subject: p.id, reason: 'revoked on the admin page' } });
    notice('info', 'admin.revoked', { name: p.name });
  } catch (e) {
    showApiError(e);
  }
}
