/** The lesson's per-school ledger under the player: who attended, how long, how well (docs/catalog.md#the-ledger). */
import type { LedgerView } from '../../../../src/catalog/ledgerView.js';
import { api } from '../../lib/api.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { round, timeOfDay } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';

/** "mean / p95", or a dash when the school was never measured. */
function pair(mean: number | null, p95: number | null, digits: number): string {
  return mean === null ? '–' : `${round(mean, digits)} / ${round(p95 ?? undefined, digits)}`;
}

export class LedgerTable {
  private readonly body = byId('ledger').querySelector('tbody')!;
  private readonly table = byId('ledger-wrap');
  private readonly empty = byId('no-ledger');
  private rows: LedgerView[] = [];
  /** The lesson asked for last: an older answer arriving late is dropped. */
  private asked = '';

  constructor(private readonly token: string) {}

  /** The rows shown (diagnostics). */
  shown(): LedgerView[] {
    return this.rows;
  }

  async show(lessonId: string): Promise<void> {
    this.asked = lessonId;
    this.rows = [];
    this.render();
    let rows: LedgerView[] = [];
    try {
      rows = (await api<{ rows: LedgerView[] }>(this.token, `/api/lessons/${encodeURIComponent(lessonId)}/ledger`)).rows;
    } catch {
      // A lesson from before the catalog, or a token that does not cover it: no rows to show.
    }
    if (this.asked !== lessonId) return;
    this.rows = rows;
    this.render();
  }

  render(): void {
    show(this.table, this.rows.length > 0);
    show(this.empty, this.rows.length === 0);
    fill(this.body, ...this.rows.map((r) => this.row(r)));
  }

  private row(r: LedgerView): HTMLElement {
    const at = (iso: string | null) => (iso ? h('time', { datetime: iso }, timeOfDay(iso)) : '–');
    return h(
      'tr',
      { 'data-school': r.schoolId, 'data-attendance': r.attendance },
      h('th', { scope: 'row' }, r.schoolName ?? r.schoolId),
      h('td', {}, t(r.attendance === 'present' ? 'archive.ledgerPresent' : 'archive.ledgerAbsent')),
      h('td', {}, at(r.firstJoinedAt)),
      h('td', {}, at(r.lastLeftAt)),
      h('td', { class: 'num' }, round(r.connectedMinutes, 1)),
      h('td', { class: 'num' }, round(r.audioOnlyMinutes, 1)),
      h('td', { class: 'num' }, pair(r.lossPctMean, r.lossPctP95, 1)),
      h('td', { class: 'num' }, pair(r.rttMsMean, r.rttMsP95, 0)),
      h('td', { class: 'num' }, String(r.handsRaised)),
      h('td', { class: 'num' }, String(r.floorSeconds)),
    );
  }
}
