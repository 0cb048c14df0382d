/** Minting page links (a token in the fragment) and showing one with Copy and Open. */
import type { Role } from '../../../../src/domain/index.js';
import { api } from '../../lib/api.js';
import { pageLink } from '../../lib/credentials.js';
import { h } from '../../lib/dom.js';
import { dateTime } from '../../lib/format.js';
import { t, type MessageKey } from '../../lib/i18n.js';

/** Where each role works. */
const PAGE_OF: Record<Role, string> = {
  instructor: '/studio',
  classroom: '/classroom',
  monitor: '/control',
  archivist: '/archive',
  admin: '/admin',
};
const ROLE_LABEL: Record<Role, MessageKey> = {
  instructor: 'role.instructor',
  classroom: 'role.classroom',
  monitor: 'role.monitor',
  archivist: 'role.archivist',
  admin: 'role.admin',
};

export interface PageLink {
  role: Role;
  name: string;
  url: string;
  expiresAt: string;
}

/** A link for one person: a token for the lessons named (or every lesson), valid for ttlSeconds. */
export async function mintLink(
  token: string,
  role: Role,
  id: string,
  name: string,
  lessons: '*' | string[],
  ttlSeconds: number,
): Promise<PageLink> {
  const r = await api<{ token: string; expiresAt: string }>(token, '/api/tokens', {
    method: 'POST',
    body: { role, id, name: name || id, lessons, ttlSeconds },
  });
  const lessonId = Array.isArray(lessons) && lessons.length === 1 ? lessons[0] : undefined;
  return { role, name: name || id, url: pageLink(PAGE_OF[role], r.token, lessonId), expiresAt: r.expiresAt };
}

export function linkItem(l: PageLink): HTMLElement {
  const input = h('input', {
    type: 'text',
    readonly: true,
    value: l.url,
    class: 'link-url',
    'aria-label': `${t(ROLE_LABEL[l.role])}: ${l.name}`,
  });
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
