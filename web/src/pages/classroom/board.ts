/**
 * A school board (/classroom#device=<credential>): it trades its device credential for a
 * short-lived classroom session, lists the school's lessons for today, and joins the lesson of the
 * moment by itself: a live one, or one due to start, where it waits for the instructor to go live.
 * It re-trades the credential before the session expires; a revoked board says so and stops.
 */
import { api, ApiError } from '../../lib/api.js';
import { forgetDeviceCredential } from '../../lib/credentials.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { hourMinute } from '../../lib/format.js';
import { onLangChange, t, type MessageKey } from '../../lib/i18n.js';
import type { LessonLink } from '../../lib/link.js';
import { exposeDiagnostics, notice } from '../../lib/shell.js';
import { LESSON_STATE_TEXT } from '../../lib/widgets.js';
import { EARLY_MS, lessonOfTheMoment, type BoardLesson } from './boardRules.js';

interface Session {
  token: string;
  expiresAt: string;
  school: { id: string; name: string };
  device: { id: string; name: string };
  lessons: BoardLesson[];
}

/** Without a lesson to join, it asks again this often (new lessons, state changes). */
const IDLE_POLL_MS = 60_000;
/** It re-trades this long before the session token expires (or halfway through a shorter life). */
const RENEW_BEFORE_MS = 5 * 60_000;
const RETRY_MS = 10_000;
/** After a lesson (or a lesson it could not join), this long before the page starts afresh. */
const AFTER_LESSON_MS = 15_000;

export class Board {
  private session?: Session;
  private link?: LessonLink;
  private timer?: number;
  private state: 'starting' | 'waiting' | 'joined' | 'revoked' | 'invalid' = 'starting';
  private readonly panel = byId('board-today');
  private readonly list = byId('board-lessons');
  private readonly status = byId('board-status');

  constructor(
    private readonly credential: string,
    private readonly join: (token: string, lessonId: string, schoolId: string, schoolName: string) => LessonLink,
  ) {
    show(this.panel, true);
    onLangChange(() => this.render());
    exposeDiagnostics({
      board: () => ({
        state: this.state,
        school: this.session?.school.id,
        lessons: this.session?.lessons.map((l) => ({ id: l.id, state: l.state })) ?? [],
        joined: this.link?.lessonId,
      }),
    });
  }

  start(): void {
    void this.trade();
  }

  private async trade(): Promise<void> {
    clearTimeout(this.timer);
    let session: Session;
    try {
      session = await api<Session>('', '/api/devices/session', { method: 'POST', body: { credential: this.credential } });
    } catch (e) {
      const code = e instanceof ApiError ? e.code : '';
      if (code === 'TOKEN_REVOKED') return this.revoked();
      if (code === 'UNAUTHENTICATED') return this.stop('invalid', 'board.invalid');
      notice('warn', 'board.retrying', {}, (e as Error).message);
      this.timer = window.setTimeout(() => void this.trade(), RETRY_MS);
      return;
    }
    this.session = session;
    this.link?.setToken(session.token);
    const now = Date.now();
    const lesson = this.link ? undefined : lessonOfTheMoment(session.lessons, now);
    if (lesson) {
      this.state = 'joined';
      this.link = this.join(session.token, lesson.id, session.school.id, session.school.name);
      this.link.on('failed', (err) => {
        if (err.code === 'TOKEN_REVOKED') this.revoked();
        else this.afterLesson();
      });
      this.link.on('lessonStarted', ({ lesson: started }) => {
        for (const l of this.session?.lessons ?? []) if (l.id === started.id) l.state = started.state;
        this.render();
      });
      this.link.on('lessonEnded', () => this.afterLesson());
    } else if (!this.link) this.state = 'waiting';
    this.render();
    this.timer = window.setTimeout(() => void this.trade(), this.nextTradeIn(now));
  }

  /** Back to the list (and the next lesson) with a fresh page, a little after the lesson. */
  private afterLesson(): void {
    if (this.state !== 'revoked') window.setTimeout(() => location.reload(), AFTER_LESSON_MS);
  }

  /** Before the session expires; while idle also every IDLE_POLL_MS and when the next lesson is due. */
  private nextTradeIn(now: number): number {
    const s = this.session!;
    const expires = Date.parse(s.expiresAt);
    let at = Math.max(now + (expires - now) / 2, expires - RENEW_BEFORE_MS);
    if (!this.link) {
      at = Math.min(at, now + IDLE_POLL_MS);
      for (const l of s.lessons) {
        const due = l.startsAt ? Date.parse(l.startsAt) - EARLY_MS : NaN;
        if (due > now) at = Math.min(at, due);
      }
    }
    return Math.max(1000, at - now);
  }

  private revoked(): void {
    this.link?.close();
    forgetDeviceCredential();
    this.stop('revoked', 'board.revoked');
  }

  private stop(state: 'revoked' | 'invalid', key: MessageKey): void {
    clearTimeout(this.timer);
    this.state = state;
    notice('error', key);
    this.render();
  }

  private render(): void {
    const s = this.session;
    const today = new Date().toDateString();
    const lessons = (s?.lessons ?? []).filter((l) => l.startsAt && new Date(l.startsAt).toDateString() === today);
    fill(
      this.list,
      ...lessons.map((l) =>
        h(
          'li',
          { class: `board-lesson${l.id === this.link?.lessonId ? ' current' : ''}`, 'data-lesson': l.id, 'data-state': l.state },
          h('span', { class: 'board-time' }, `${hourMinute(l.startsAt)}–${hourMinute(l.endsAt)}`),
          h('span', { class: 'board-title' }, l.title),
          h('span', { class: `state state-${l.state}` }, t(LESSON_STATE_TEXT[l.state])),
        ),
      ),
    );
    const status: MessageKey =
      this.state === 'revoked'
        ? 'board.revoked'
        : this.state === 'invalid'
          ? 'board.invalid'
          : !s
            ? 'board.starting'
            : this.link
              ? 'board.joined'
              : lessons.length
                ? 'board.waiting'
                : 'board.none';
    this.status.dataset['state'] = this.state;
    this.status.textContent = t(status, { school: s?.school.name ?? '' });
  }
}
