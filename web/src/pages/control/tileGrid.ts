/** A tile per open lesson: a small live picture, badges, elapsed time, uplinks and its schools coloured by reception. */
import type { LiveLessonView, LiveSchool, UplinkQuality } from '../../../../src/live/types.js';
import { byId, fill, h } from '../../lib/dom.js';
import { clock, round } from '../../lib/format.js';
import { t } from '../../lib/i18n.js';
import { QUALITY_LABEL, qualityLevel } from '../../lib/quality.js';
import { Watcher } from './watcher.js';

/** One tile: its elements stay in the page across refreshes so the video keeps playing. */
export interface Tile {
  root: HTMLElement;
  open: HTMLButtonElement;
  video: HTMLVideoElement;
  meta: HTMLElement;
  schools: HTMLElement;
  watcher?: Watcher;
}

export class TileGrid {
  private readonly grid = byId('tiles');
  private readonly tiles = new Map<string, Tile>();

  constructor(
    private readonly token: string,
    private readonly openDetail: (lessonId: string) => void,
  ) {}

  get(lessonId: string): Tile | undefined {
    return this.tiles.get(lessonId);
  }

  /** Lessons in display order; tiles of lessons no longer listed go (and stop watching). */
  render(lessons: LiveLessonView[]): void {
    for (const [id, tile] of this.tiles) {
      if (lessons.some((l) => l.id === id)) continue;
      tile.watcher?.close();
      tile.root.remove();
      this.tiles.delete(id);
    }
    for (const l of lessons) {
      const tile = this.tiles.get(l.id) ?? this.create(l);
      this.update(tile, l);
      this.grid.append(tile.root); // keeps the sorted order (moving a node keeps its state)
    }
  }

  /** Elapsed times, once a second. */
  tick(): void {
    for (const el of Array.from(document.querySelectorAll<HTMLElement>('time.since[data-since]')))
      el.textContent = clock((Date.now() - Date.parse(el.dataset['since']!)) / 1000);
  }

  close(): void {
    for (const tile of this.tiles.values()) tile.watcher?.close();
  }

  private create(l: LiveLessonView): Tile {
    const video = h('video', { muted: true, playsinline: true, autoplay: true, class: 'tile-video' });
    video.muted = true;
    const open = h('button', { type: 'button', class: 'tile-open', onclick: () => this.openDetail(l.id) });
    const meta = h('div', { class: 'tile-meta' });
    const schools = h('ul', { class: 'tile-schools' });
    const root = h(
      'article',
      { class: 'tile', 'data-lesson': l.id },
      h(
        'div',
        { class: 'tile-picture' },
        video,
        h('span', { class: 'tile-nopic', 'data-i18n': 'control.noPicture' }, t('control.noPicture')),
      ),
      open,
      meta,
      schools,
    );
    const tile: Tile = { root, open, video, meta, schools };
    this.tiles.set(l.id, tile);
    return tile;
  }

  private update(tile: Tile, l: LiveLessonView): void {
    if (l.state === 'live' && !tile.watcher)
      tile.watcher = new Watcher(this.token, l.id, tile.video, () =>
        tile.root.classList.toggle('has-picture', Boolean(tile.watcher?.stream)),
      );
    tile.root.dataset['state'] = l.state;
    fill(tile.open, h('span', { class: 'tile-title' }, l.title), h('span', { class: 'visually-hidden' }, ` — ${t('control.openDetail')}`));
    const rec = l.recording;
    fill(
      tile.meta,
      l.state === 'live'
        ? h('span', { class: 'live-badge small' }, t('common.live'))
        : h('span', { class: 'badge' }, t('control.notStarted')),
      rec.state === 'fault'
        ? h('span', { class: 'badge error', title: rec.message ?? '' }, t('control.recFault'))
        : rec.state === 'recording'
          ? h('span', { class: 'rec small' }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), t('studio.recording'))
          : null,
      l.startedAt ? h('time', { class: 'since', 'data-since': l.startedAt }, clock((Date.now() - Date.parse(l.startedAt)) / 1000)) : null,
      h('span', { class: 'muted' }, l.instructorId),
      ...(l.uplink ?? []).map((u) => uplinkItem(u)),
    );
    fill(tile.schools, ...l.schools.map((s) => schoolItem(s)));
    if (l.schools.length === 0) tile.schools.append(h('li', { class: 'empty' }, t('studio.noSchools')));
  }
}

function schoolItem(s: LiveSchool): HTMLElement {
  const level = qualityLevel(s.connected, s.quality);
  return h(
    'li',
    { class: `school q-${level}`, 'data-school': s.schoolId },
    h('span', { class: `dot dot-${level}`, role: 'img', 'aria-label': t(QUALITY_LABEL[level]), title: t(QUALITY_LABEL[level]) }),
    h('span', { class: 'school-name' }, s.name || s.schoolId),
    s.mediaMode === 'one-way' ? h('span', { class: 'badge one-way', title: t('studio.oneWayTitle') }, t('studio.oneWay')) : null,
    s.link && s.connected
      ? h('span', { class: `badge layer layer-${s.link}`, 'data-layer': s.link, title: t('link.title') }, t(`link.${s.link}`))
      : null,
    s.quality && s.connected
      ? h('span', { class: 'school-figs' }, `${round(s.quality.bitrateKbps)} kbit/s · ${round(s.quality.lossPct, 1)} %`)
      : null,
  );
}

/** How this node receives a publisher: a lossy instructor link is the instructor's, not every school's. */
function uplinkItem(u: UplinkQuality): HTMLElement {
  const level = qualityLevel(true, { ...u, rttMs: null });
  return h(
    'span',
    { class: `uplink q-${level}`, 'data-uplink': u.participantId, title: t(QUALITY_LABEL[level]) },
    h('span', { class: `dot dot-${level}`, 'aria-hidden': 'true' }),
    t('control.uplink', { who: u.participantId, kbps: round(u.bitrateKbps), loss: round(u.lossPct, 1) }),
  );
}
