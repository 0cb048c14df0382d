/**
 * Azerbaijani and English. Every string lives in one file per language
 * (web/src/i18n/*.json, bundled); markup names its strings with data-i18n
 * attributes, code calls t(). The choice is remembered per browser.
 */
import en from '../i18n/en.json' with { type: 'json' };
import az from '../i18n/az.json' with { type: 'json' };

export type Lang = 'az' | 'en';
export type MessageKey = keyof typeof en;
export const LANGS: readonly Lang[] = ['az', 'en'];

// Typed so that a key missing from az.json fails the type-check.
const DICTIONARIES: Record<Lang, Record<MessageKey, string>> = { en, az };
const STORAGE_KEY = 'lessoncast.lang';
const LOCALES: Record<Lang, string> = { az: 'az-Latn-AZ', en: 'en-GB' };

let current: Lang = initialLang();
const listeners = new Set<(lang: Lang) => void>();

function initialLang(): Lang {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === 'az' || stored === 'en') return stored;
  return navigator.languages.some((l) => l.toLowerCase().startsWith('az')) ? 'az' : 'en';
}

export function lang(): Lang {
  return current;
}

export function locale(): string {
  return LOCALES[current];
}

/** The string for a key in the current language, with {placeholders} filled. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = DICTIONARIES[current][key] ?? DICTIONARIES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

export function isMessageKey(key: string): key is MessageKey {
  return Object.hasOwn(DICTIONARIES.en, key);
}

export function setLang(next: Lang): void {
  if (next === current) return;
  current = next;
  localStorage.setItem(STORAGE_KEY, next);
  applyI18n(document);
  for (const l of listeners) l(next);
}

export function onLangChange(listener: (lang: Lang) => void): void {
  listeners.add(listener);
}

const ATTRIBUTES: Array<[data: string, attr: string]> = [
  ['i18nTitle', 'title'],
  ['i18nLabel', 'aria-label'],
  ['i18nPlaceholder', 'placeholder'],
];

/** Fills every element under root that names a string: data-i18n (text), -title, -label (aria-label), -placeholder. */
export function applyI18n(root: ParentNode): void {
  if (root === document) {
    document.documentElement.lang = current;
    const titleKey = document.documentElement.dataset['i18nDocTitle'];
    if (titleKey && isMessageKey(titleKey)) document.title = `${t(titleKey)} · lessoncast`;
  }
  for (const el of Array.from(
    root.querySelectorAll<HTMLElement>('[data-i18n],[data-i18n-title],[data-i18n-label],[data-i18n-placeholder]'),
  )) {
    const textKey = el.dataset['i18n'];
    if (textKey && isMessageKey(textKey)) el.textContent = t(textKey);
    for (const [data, attr] of ATTRIBUTES) {
      const k = el.dataset[data];
      if (k && isMessageKey(k)) el.setAttribute(attr, t(k));
    }
  }
}

/** An element whose text follows the language. */
export function tx(el: HTMLElement, key: MessageKey): HTMLElement {
  el.dataset['i18n'] = key;
  el.textContent = t(key);
  return el;
}
