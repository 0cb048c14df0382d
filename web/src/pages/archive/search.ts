/** The search form and its results table; a click on a title opens that recording. */
import type { RecordingSummary } from '../../../../src/recording/archiveViews.js';
import { api, type ApiError } from '../../lib/api.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { clock, dateTime } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';
import { clearNotice, notice } from '../../lib/shell.js';

export class RecordingSearch {
  private readonly form = byId<HTMLFormElement>('search-form');
  private readonly rows = byId('results').querySelector('tbody')!;
  private readonly empty = byId('no-results');
  results: RecordingSummary[] = [];

  constructor(
    private readonly token: string,
    private readonly open: (id: string) => void,
    /** The recording shown, whose row is marked. */
    private readonly selected: () => string | undefined,
  ) {
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.search();
    });
    // After the reset has emptied the fields.
    this.form.addEventListener('reset', () => setTimeout(() => void this.search(), 0));
  }

  async search(): Promise<void> {
    const params = new URLSearchParams();
    new FormData(this.form).forEach((v, k) => {
      const value = typeof v === 'string' ? v.trim() : '';
      if (!value) return;
      // Dates are whole local days: "to" includes its day.
      if (k === 'from') params.set(k, new Date(`${value}T00:00:00`).toISOString());
      else if (k === 'to') params.set(k, new Date(`${value}T23:59:59.999`).toISOString());
      else params.set(k, value);
    });
    try {
      this.results = (
        await api<{ total: number; recordings: RecordingSummary[] }>(this.token, `/api/recordings?${params.toString()}`)
      ).recordings;
      clearNotice();
      this.render();
    } catch (e) {
      const err = e as ApiError;
      notice(
        'error',
        err.status === 404 ? 'archive.unavailable' : err.status === 401 || err.status === 403 ? 'common.refused' : 'common.failed',
        {},
        err.message,
      );
    }
  }

  render(): void {
    const selected = this.selected();
    show(this.empty, this.results.length === 0);
    fill(
      this.rows,
      ...this.results.map((r) =>
        h(
          'tr',
          { 'data-recording': r.id, class: selected === r.id ? 'selected' : '' },
          h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link-btn', onclick: () => this.open(r.id) }, r.title || r.id)),
          h('td', {}, r.subject),
          h('td', {}, r.instructorId),
          h('td', {}, dateTime(r.startedAt)),
          h('td', {}, r.state === 'recording' ? h('span', { class: 'live-badge small' }, t('common.live')) : clock(r.durationSeconds)),
          h('td', { title: r.schools.map((s) => s.name).join(', ') }, String(r.schools.length)),
        ),
      ),
    );
  }
}
