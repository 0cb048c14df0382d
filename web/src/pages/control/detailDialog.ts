/** A lesson's detail: its picture, facts, and per school bitrate, loss, RTT, jitter and score now and over time. */
import type { LiveLessonView, QualitySummary } from '../../../../src/live/types.js';
import { byId, fill, h, tryPlay } from '../../lib/dom.js';
import { round, timeOfDay } from '../../lib/format.js';
import { t, type MessageKey } from '../../lib/i18n.js';
import { QUALITY_LABEL, qualityLevel } from '../../lib/quality.js';
import { sparkline } from '../../lib/sparkline.js';
import type { QualityHistory, Sample } from './qualityHistory.js';
import type { TileGrid } from './tileGrid.js';

export class DetailDialog {
  private readonly dialog = byId<HTMLDialogElement>('detail');
  private readonly title = byId('detail-title');
  private readonly video = byId<HTMLVideoElement>('detail-video');
  private readonly facts = byId('detail-facts');
  private readonly rows = byId('detail-table').querySelector('tbody')!;
  /** The lesson shown, while the dialog is open. */
  lessonId: string | undefined;

  constructor(
    private readonly tiles: TileGrid,
    private readonly history: QualityHistory,
    private readonly lesson: (id: string) => LiveLessonView | undefined,
  ) {
    byId<HTMLButtonElement>('detail-close').addEventListener('click', () => this.dialog.close());
    this.dialog.addEventListener('close', () => {
      const tile = this.lessonId ? tiles.get(this.lessonId) : undefined;
      this.lessonId = undefined;
      this.video.srcObject = null;
      tile?.open.focus();
    });
  }

  open(lessonId: string): void {
    this.lessonId = lessonId;
    void this.history.load(lessonId).then((loaded) => loaded && this.lessonId === lessonId && this.render());
    const stream = this.tiles.get(lessonId)?.watcher?.stream;
    this.video.srcObject = stream ?? null;
    if (stream) void tryPlay(this.video);
    this.render();
    this.dialog.showModal();
  }

  render(): void {
    if (!this.lessonId) return;
    const l = this.lesson(this.lessonId);
    if (!l) {
      this.title.textContent = t('control.lessonGone');
      this.rows.replaceChildren();
      return;
    }
    this.title.textContent = l.title;
    const fact = (k: MessageKey, v: string) => [h('dt', {}, t(k)), h('dd', {}, v)];
    fill(
      this.facts,
      ...fact('control.instructor', l.instructorId),
      ...fact('control.started', l.startedAt ? timeOfDay(l.startedAt) : '–'),
      ...fact('control.node', l.node),
      ...fact(
        'control.recordingState',
        l.recording.state === 'fault'
          ? `${t('control.recFault')}: ${l.recording.message ?? ''}`
          : l.recording.state === 'recording'
            ? t('studio.recording')
            : t('control.notRecording'),
      ),
      ...fact('control.schoolsConnected', `${l.schools.filter((s) => s.connected).length}/${l.schools.length}`),
    );
    const bySchool = this.history.of(l.id);
    this.rows.replaceChildren(
      ...l.schools.map((s) => {
        const samples: Sample[] = bySchool.get(s.schoolId) ?? [];
        const series = (pick: (q: QualitySummary) => number | null) => samples.map((x) => (x.q && x.connected ? pick(x.q) : null));
        const cell = (now: number | null | undefined, digits: number, values: Array<number | null>, label: string, max?: number) =>
          h(
            'td',
            {},
            h('span', { class: 'fig' }, round(now ?? undefined, digits)),
            sparkline(values, { label, ...(max !== undefined ? { max } : {}) }),
          );
        const q = s.quality;
        const level = qualityLevel(s.connected, q);
        return h(
          'tr',
          { 'data-school': s.schoolId },
          h('th', { scope: 'row' }, s.name || s.schoolId),
          h('td', {}, h('span', { class: `dot dot-${level}`, 'aria-hidden': 'true' }), ' ', t(QUALITY_LABEL[level])),
          cell(
            q?.bitrateKbps,
            0,
            series((x) => x.bitrateKbps),
            t('control.bitrate'),
          ),
          cell(
            q?.lossPct,
            1,
            series((x) => x.lossPct),
            t('control.loss'),
            5,
          ),
          cell(
            q?.rttMs,
            0,
            series((x) => x.rttMs),
            t('control.rtt'),
            100,
          ),
          cell(
            q?.jitterMs,
            1,
            series((x) => x.jitterMs),
            t('control.jitter'),
            10,
          ),
          cell(
            q?.score,
            0,
            series((x) => x.score),
            t('control.score'),
            10,
          ),
        );
      }),
    );
  }
}
