/** The lesson's events beside the player; a click seeks to the event. */
import type { LessonLogEvent, RecordingManifest } from '../../../../src/recording/manifestSchema.js';
import { byId, fill, h, show } from '../../lib/dom.js';
import { clock, timeOfDay } from '../../lib/format.js';
import { icon } from '../../lib/icons.js';
import { isMessageKey, t, type MessageKey } from '../../lib/i18n.js';

/** Events a person cares about on the timeline (the recorder also logs its own workings). */
function timelineKey(type: string): MessageKey | undefined {
  const key = `timeline.${type}`;
  return isMessageKey(key) ? key : undefined;
}

export class Timeline {
  private readonly list = byId('timeline');
  private readonly empty = byId('no-events');
  private manifest: RecordingManifest | undefined;

  constructor(private readonly seek: (offset: number) => void) {}

  /** The events shown, in order. */
  events(): LessonLogEvent[] {
    return (this.manifest?.events ?? []).filter((e) => timelineKey(e.type));
  }

  show(manifest: RecordingManifest): void {
    this.manifest = manifest;
    this.render();
  }

  render(): void {
    const events = this.events();
    show(this.empty, events.length === 0);
    fill(this.list, ...events.map((ev) => this.item(ev)));
  }

  private nameOf(participantId: string | undefined): string {
    if (!participantId) return '';
    return this.manifest?.attendance.find((a) => a.participantId === participantId)?.name ?? participantId;
  }

  private item(ev: LessonLogEvent): HTMLElement {
    // t is the event's place on the lesson timeline, which is the recording's (0 = went live).
    const offset = Math.max(0, ev.t);
    return h(
      'li',
      { 'data-type': ev.type },
      h(
        'button',
        { type: 'button', class: 'timeline-btn', 'data-offset': String(offset), onclick: () => this.seek(offset) },
        h('time', { datetime: ev.at, title: timeOfDay(ev.at) }, clock(offset)),
        ev.type === 'handRaised' || ev.type === 'handLowered' ? icon('hand') : ev.type.startsWith('floor') ? icon('mic') : null,
        h('span', {}, t(timelineKey(ev.type)!, { who: this.nameOf(ev.participantId) })),
      ),
    );
  }
}
