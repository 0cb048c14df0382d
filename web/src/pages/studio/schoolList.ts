/** The schools in the lesson, each with a reception dot, its raised hand, whether it speaks and whether it watches one way. */
import { api } from '../../lib/api.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { icon } from '../../lib/icons.js';
import { t } from '../../lib/i18n.js';
import { QUALITY_LABEL, qualityLevel, type QualitySample } from '../../lib/quality.js';
import type { Roster } from '../../lib/roster.js';

type LiveAnswer = { lessons: Array<{ id: string; schools: Array<{ schoolId: string; quality?: QualitySample }> }> };

export class SchoolList {
  private readonly list = byId('school-list');
  private readonly count = byId('school-count');
  private readonly empty = byId('schools-empty');
  /** Quality per school from the live view, when this token may read it. */
  private quality = new Map<string, QualitySample>();
  private liveViewAllowed = true;

  constructor(private readonly roster: Roster) {}

  render(): void {
    const schools = this.roster.classrooms();
    this.count.textContent = `(${schools.filter((s) => s.connected).length}/${schools.length})`;
    show(this.empty, schools.length === 0);
    fill(
      this.list,
      ...schools.map((s) => {
        const level = qualityLevel(s.connected, this.quality.get(s.id));
        return h(
          'li',
          { class: 'school', 'data-participant': s.id },
          h('span', { class: `dot dot-${level}`, role: 'img', 'aria-label': t(QUALITY_LABEL[level]), title: t(QUALITY_LABEL[level]) }),
          h('span', { class: 'school-name' }, s.name),
          s.handRaisedAt !== null ? h('span', { class: 'badge hand', title: t('studio.handUp') }, icon('hand', t('studio.handUp'))) : null,
          s.hasFloor ? h('span', { class: 'badge floor', title: t('studio.speaking') }, icon('mic', t('studio.speaking'))) : null,
          s.mediaMode === 'one-way' ? h('span', { class: 'badge one-way', title: t('studio.oneWayTitle') }, t('studio.oneWay')) : null,
        );
      }),
    );
  }

  /** Reception per school comes from the control room's live view, if this token may read it. */
  async pollQuality(token: string, lessonId: string): Promise<void> {
    if (!this.liveViewAllowed) return;
    try {
      const live = await api<LiveAnswer>(token, '/api/live');
      const mine = live.lessons.find((l) => l.id === lessonId);
      this.quality = new Map((mine?.schools ?? []).filter((s) => s.quality).map((s) => [s.schoolId, s.quality!]));
      this.render();
    } catch (e) {
      // Without the live view, dots show only whether a school is connected.
      const status = (e as { status?: number }).status;
      if (status === 403 || status === 404) this.liveViewAllowed = false;
    }
  }
}
