/**
 * The schools in the lesson, each with a reception dot, its raised hand, whether it speaks, whether it
 * watches one way and whether its video is paused for a weak link; above them, how many schools are
 * on audio only.
 */
import { api } from '../../lib/api.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { icon } from '../../lib/icons.js';
import { t } from '../../lib/i18n.js';
import { QUALITY_LABEL, qualityLevel, type QualitySample } from '../../lib/quality.js';
import type { Roster } from '../../lib/roster.js';
import type { LinkLayer, LinkView } from '../../../../src/domain/index.js';

type LiveAnswer = { lessons: Array<{ id: string; schools: Array<{ schoolId: string; quality?: QualitySample }> }> };

export class SchoolList {
  private readonly list = byId('school-list');
  private readonly count = byId('school-count');
  private readonly empty = byId('schools-empty');
  private readonly audioOnly = byId('schools-audio-only');
  /** The server's weak-link word per school (join's `links`, then `linkChanged`). */
  private readonly links = new Map<string, LinkLayer>();
  /** Quality per school from the live view, when this token may read it. */
  private quality = new Map<string, QualitySample>();
  private liveViewAllowed = true;

  constructor(private readonly roster: Roster) {}

  /** Every link the server has judged (a fresh join), or one that changed. */
  setLinks(links: LinkView[], reset = false): void {
    if (reset) this.links.clear();
    for (const l of links) this.links.set(l.participantId, l.layer);
    this.render();
  }

  /** Connected schools whose video the server holds paused. */
  audioOnlyCount(): number {
    return this.roster.classrooms().filter((s) => s.connected && this.links.get(s.id) === 'audio-only').length;
  }

  render(): void {
    const schools = this.roster.classrooms();
    this.count.textContent = `(${schools.filter((s) => s.connected).length}/${schools.length})`;
    const audioOnly = this.audioOnlyCount();
    this.audioOnly.textContent = audioOnly > 0 ? t('studio.audioOnlyCount', { n: audioOnly }) : '';
    show(this.audioOnly, audioOnly > 0);
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
          s.connected && this.links.get(s.id) === 'audio-only'
            ? h('span', { class: 'badge audio-only', title: t('link.audioOnlyTitle') }, t('link.audio-only'))
            : null,
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
