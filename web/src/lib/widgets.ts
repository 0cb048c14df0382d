/** Small pieces of UI several pages share. */
import { t, type MessageKey } from './i18n.js';
import type { LinkState } from './link.js';

const CONNECTION_TEXT: Record<LinkState, MessageKey> = {
  connecting: 'conn.connecting',
  joined: 'conn.connected',
  reconnecting: 'conn.reconnecting',
  ended: 'conn.ended',
  failed: 'conn.failed',
  closed: 'conn.closed',
};

/** A lesson's state in words, the catalog's `cancelled` included (the timetable, a board's list). */
export const LESSON_STATE_TEXT: Record<'created' | 'live' | 'ended' | 'cancelled', MessageKey> = {
  created: 'state.created',
  live: 'state.live',
  ended: 'state.ended',
  cancelled: 'state.cancelled',
};

export function renderConnection(el: HTMLElement, state: LinkState): void {
  el.dataset['state'] = state;
  el.dataset['i18n'] = CONNECTION_TEXT[state];
  el.textContent = t(CONNECTION_TEXT[state]);
}

/**
 * Re-renders a list without losing keyboard focus: the focused control is
 * found again by its data-focus-key (or focus moves to the list's first control).
 */
export function keepFocus(container: HTMLElement, render: () => void): void {
  const active = document.activeElement as HTMLElement | null;
  const hadFocus = Boolean(active && container.contains(active));
  const key = active?.dataset['focusKey'];
  render();
  if (!hadFocus) return;
  const again = key ? container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`) : null;
  (again ?? container.querySelector<HTMLElement>('button, [tabindex]') ?? container).focus();
}
