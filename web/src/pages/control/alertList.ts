/** The alerts feed: raised and cleared alerts, recording faults, lost nodes, lessons started and ended. */
import type { LiveEvent, LiveSnapshot } from '../../../../src/live/types.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { round, timeOfDay } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';

const MAX_ALERTS = 100;

type Level = 'error' | 'warn' | 'info' | 'ok';

export class AlertList {
  private readonly list = byId('alerts');
  private readonly empty = byId('no-alerts');
  /** Newest first. */
  readonly alerts: LiveEvent[] = [];

  /** Names come from the latest snapshot (an event carries only ids). */
  constructor(private readonly snapshot: () => LiveSnapshot) {}

  static worthy(ev: LiveEvent): boolean {
    return (
      ev.type === 'alert' ||
      ev.type === 'recordingFault' ||
      ev.type === 'nodeLost' ||
      ev.type === 'lessonStarted' ||
      ev.type === 'lessonEnded'
    );
  }

  add(ev: LiveEvent): void {
    this.alerts.unshift(ev);
    this.alerts.splice(MAX_ALERTS);
    this.render();
  }

  render(): void {
    show(this.empty, this.alerts.length === 0);
    fill(
      this.list,
      ...this.alerts.map((ev) => {
        const { level, text } = this.describe(ev);
        return h(
          'li',
          { class: `alert alert-${level}`, 'data-type': ev.type },
          h('time', { datetime: ev.at }, timeOfDay(ev.at)),
          h('span', {}, text),
        );
      }),
    );
  }

  private lessonTitle(id: string): string {
    return this.snapshot().lessons.find((l) => l.id === id)?.title ?? id.slice(0, 8);
  }

  private schoolName(lessonId: string, schoolId: string | undefined): string {
    if (!schoolId) return '';
    return (
      this.snapshot()
        .lessons.find((l) => l.id === lessonId)
        ?.schools.find((s) => s.schoolId === schoolId)?.name ?? schoolId
    );
  }

  private describe(ev: LiveEvent): { level: Level; text: string } {
    switch (ev.type) {
      case 'alert': {
        const p = { lesson: this.lessonTitle(ev.lessonId), school: this.schoolName(ev.lessonId, ev.schoolId), value: round(ev.value, 1) };
        if (ev.state === 'cleared') return { level: 'ok', text: t(`alert.${ev.rule}.cleared`, p) };
        return { level: ev.rule === 'packetLoss' || ev.rule === 'audioOnly' ? 'warn' : 'error', text: t(`alert.${ev.rule}`, p) };
      }
      case 'recordingFault':
        return { level: 'error', text: t('alert.recordingFault', { lesson: this.lessonTitle(ev.lessonId), value: ev.message }) };
      case 'nodeLost':
        return { level: 'error', text: t('alert.nodeLost', { node: ev.lostNode, value: ev.lessons.length }) };
      case 'lessonStarted':
        return { level: 'info', text: t('alert.lessonStarted', { lesson: ev.lesson.title }) };
      case 'lessonEnded':
        return { level: 'info', text: t('alert.lessonEnded', { lesson: this.lessonTitle(ev.lessonId) }) };
      default:
        return { level: 'info', text: ev.type };
    }
  }
}
