/**
 * What every page shares: strings applied, the language switch, a notice
 * area, and a small diagnostics hook (window.lessoncast) that support staff
 * and the browser tests read.
 */
import { takeCredentials } from './credentials.js';
import { fill, h } from './dom.js';
import { LANGS, applyI18n, lang, onLangChange, setLang, t, type Lang, type MessageKey } from './i18n.js';

export function startPage(): void {
  applyI18n(document);
  const slot = document.querySelector<HTMLElement>('[data-lang-switch]');
  if (slot) mountLanguageSwitch(slot);
}

function mountLanguageSwitch(slot: HTMLElement): void {
  const names: Record<Lang, string> = { az: 'AZ', en: 'EN' };
  const buttons = LANGS.map((l) =>
    h('button', { type: 'button', class: 'lang-btn', lang: l, 'aria-pressed': String(l === lang()), onclick: () => setLang(l) }, names[l]),
  );
  slot.replaceChildren(...buttons);
  slot.setAttribute('role', 'group');
  slot.dataset['i18nLabel'] = 'common.language';
  slot.setAttribute('aria-label', t('common.language'));
  onLangChange((l) => buttons.forEach((b, i) => b.setAttribute('aria-pressed', String(LANGS[i] === l))));
}

export type NoticeKind = 'info' | 'warn' | 'error';

/** Shows a message in the page's notice area (role=status / alert). */
export function notice(kind: NoticeKind, key: MessageKey, params: Record<string, string | number> = {}, detail?: string): void {
  const area = document.getElementById('notice');
  if (!area) return;
  area.hidden = false;
  area.className = `notice notice-${kind}`;
  area.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  fill(area, h('span', {}, t(key, params)), detail ? h('span', { class: 'notice-detail' }, ` (${detail})`) : null);
}

export function clearNotice(): void {
  const area = document.getElementById('notice');
  if (area) area.hidden = true;
}

/** The page cannot work without a token: explain how to get one, and take one pasted in. */
export function showMissingToken(): void {
  notice('error', 'common.noToken');
  const area = document.getElementById('notice');
  const input = h('input', {
    type: 'text',
    name: 'token',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    'data-i18n-label': 'common.pasteToken',
    'aria-label': t('common.pasteToken'),
  });
  const form = h(
    'form',
    { class: 'token-form' },
    input,
    h('button', { type: 'submit', class: 'btn primary', 'data-i18n': 'common.useToken' }, t('common.useToken')),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = input.value.trim().replace(/^.*#/, '');
    // Accept a whole link, a fragment, or a bare token.
    location.hash = value.includes('token=') ? value : `token=${value}`;
    location.reload();
  });
  area?.append(form);
  document.querySelector('main')?.setAttribute('aria-busy', 'false');
}

/** The staff pages (no lesson in the link): run with the page's token, or ask for one. */
export function runWithToken(page: string, run: (token: string) => void): void {
  const creds = takeCredentials(page);
  if (creds) run(creds.token);
  else showMissingToken();
}

type Diagnostics = Record<string, unknown>;

/** Exposes read-only diagnostics on window.lessoncast (never tokens). */
export function exposeDiagnostics(d: Diagnostics): void {
  (window as unknown as { lessoncast: Diagnostics }).lessoncast = Object.assign(
    (window as unknown as { lessoncast?: Diagnostics }).lessoncast ?? {},
    d,
  );
}
