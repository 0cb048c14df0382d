/**
 * Control room: every open lesson as a tile with a small live picture (the
 * lowest simulcast layer) and its schools coloured by reception; an alerts
 * feed; a lesson's detail with per-school figures over time.
 */
import type { LiveEvent, LiveLessonView, LiveSchool, LiveSnapshot, QualitySummary, UplinkQuality } from '../../../src/live/types.js';
import type { QualityRecord } from '../../../src/monitor/qualityRecord.js';
import type { ProducerView } from '../../../src/signalling/protocol.js';
import { api, ApiError } from '../lib/api.js';
import { takeCredentials } from '../lib/credentials.js';
import { byId, fill, h, show, tryPlay } from '../lib/dom.js';
import { LiveFeedClient, type FeedState } from '../lib/feed.js';
import { clock, round, timeOfDay } from '../lib/format.js';
import { onLangChange, t, type MessageKey } from '../lib/i18n.js';
import { LessonLink } from '../lib/link.js';
import { CurrentMedia, type MediaSession } from '../lib/media.js';
import { QUALITY_LABEL, qualityLevel } from '../lib/quality.js';
import { exposeDiagnostics, notice, clearNotice, showMissingToken, startPage } from '../lib/shell.js';
import { sparkline } from '../lib/sparkline.js';

startPage();

const ui = {
  main: byId('main'),
  summary: byId('summary'),
  feedState: byId('feed-state'),
  tiles: byId('tiles'),
  noLessons: byId('no-lessons'),
  alerts: byId('alerts'),
  noAlerts: byId('no-alerts'),
  detail: byId<HTMLDialogElement>('detail'),
  detailTitle: byId('detail-title'),
  detailClose: byId<HTMLButtonElement>('detail-close'),
  detailVideo: byId<HTMLVideoElement>('detail-video'),
  detailFacts: byId('detail-facts'),
  detailBody: byId('detail-table').querySelector('tbody')!,
};

/** Ten minutes of samples at the 3–5 s the server samples at. */
const HISTORY_SAMPLES = 200;
const POLL_MS = 5000;
const MAX_ALERTS = 100;

interface Sample {
  at: number;
  connected: boolean;
  q: QualitySummary | null;
}

/** One tile: its elements stay in the page across refreshes so the video keeps playing. */
interface Tile {
  root: HTMLElement;
  open: HTMLButtonElement;
  video: HTMLVideoElement;
  meta: HTMLElement;
  schools: HTMLElement;
  watcher?: Watcher;
}

const creds = takeCredentials('control');
if (!creds) showMissingToken();
else run(creds.token);

/** Watches one lesson invisibly and shows its camera (or board) at the lowest layer. */
class Watcher {
  private readonly link: LessonLink;
  private readonly media = new CurrentMedia();
  stream?: MediaStream;
  /** The simulcast layer the server forwards to this tile (it was asked for the lowest). */
  spatialLayer: number | null = null;

  constructor(token: string, lessonId: string, private readonly video: HTMLVideoElement, private readonly onStream: () => void) {
    this.link = new LessonLink(token, lessonId);
    this.link.on('joined', (info, client) => {
      const ready = this.media.replace(client, info.routerRtpCapabilities);
      void (async () => {
        const session = await ready;
        session.on('consumerClosed', () => void this.pick(undefined));
        session.on('layersChanged', (_info, spatial) => (this.spatialLayer = spatial));
        await this.pick(info.producers);
      })().catch(() => undefined);
    });
    this.link.on('newProducer', (p) => void this.pick([p]).catch(() => undefined));
    this.link.start();
  }

  /** The camera if there is one, else the board; video only (the control room watches silently). */
  private async pick(candidates: ProducerView[] | undefined): Promise<void> {
    await this.media.with((m) => this.pickOn(m, candidates));
  }

  private async pickOn(media: MediaSession, candidates: ProducerView[] | undefined): Promise<void> {
    const showing = [...media.consumers.values()].find((c) => c.kind === 'video');
    if (showing && candidates) {
      if (showing.source === 'camera') return;
      if (!candidates.some((p) => p.source === 'camera')) return;
    }
    const choice = candidates?.find((p) => p.kind === 'video' && p.source === 'camera') ?? candidates?.find((p) => p.kind === 'video');
    if (!choice) {
      if (!showing) this.setStream(undefined);
      return;
    }
    const info = await media.consume(choice, { spatialLayer: 0 });
    this.setStream(new MediaStream([info.consumer.track]));
  }

  private setStream(stream: MediaStream | undefined): void {
    this.stream = stream;
    this.video.srcObject = stream ?? null;
    if (stream) void tryPlay(this.video);
    this.onStream();
  }

  stats() {
    return this.media.current?.inboundStats() ?? Promise.resolve([]);
  }

  close(): void {
    void this.media.close();
    this.link.close();
  }
}

function run(token: string): void {
  let snapshot: LiveSnapshot = { nodes: [], lessons: [] };
  const tiles = new Map<string, Tile>();
  const history = new Map<string, Map<string, Sample[]>>();
  const alerts: LiveEvent[] = [];
  let detailLessonId: string | undefined;
  let refreshTimer: number | undefined;

  // -- data ---------------------------------------------------------------------------

  async function refresh(): Promise<void> {
    try {
      snapshot = await api<LiveSnapshot>(token, '/api/live');
      clearNotice();
      if (snapshot.degraded) notice('warn', 'control.degraded', {}, snapshot.degraded);
      for (const l of snapshot.lessons) for (const s of l.schools) record(l.id, s.schoolId, s.connected, s.quality);
      ui.main.setAttribute('aria-busy', 'false');
      render();
    } catch (e) {
      const err = e as ApiError;
      if (err.status === 401 || err.status === 403) notice('error', 'common.refused', {}, err.message);
      else if (err.status === 404) notice('error', 'control.unavailable');
      else notice('warn', 'control.cannotRefresh', {}, err.message);
    }
  }

  /** Refresh soon (events often come in bursts). */
  function refreshSoon(): void {
    clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(() => void refresh(), 300);
  }

  function record(lessonId: string, schoolId: string, connected: boolean, q: QualitySummary | null): void {
    let bySchool = history.get(lessonId);
    if (!bySchool) history.set(lessonId, (bySchool = new Map()));
    let samples = bySchool.get(schoolId);
    if (!samples) bySchool.set(schoolId, (samples = []));
    const at = q?.sampledAt ? Date.parse(q.sampledAt) : Date.now();
    // The same server sample arrives by poll and by feed; keep it once.
    if (samples.length && samples[samples.length - 1]!.at === at) return;
    samples.push({ at, connected, q });
    if (samples.length > HISTORY_SAMPLES) samples.splice(0, samples.length - HISTORY_SAMPLES);
  }

  const feed = new LiveFeedClient(token);
  feed.on('state', renderFeedState);
  feed.on('opened', refreshSoon);
  feed.on('event', (ev) => {
    if (ev.type === 'quality') {
      const lesson = snapshot.lessons.find((l) => l.id === ev.lessonId);
      if (lesson) lesson.uplink = ev.uplink ?? [];
      for (const s of ev.schools) {
        record(ev.lessonId, s.schoolId, s.connected, s.quality);
        const known = lesson?.schools.find((x) => x.schoolId === s.schoolId);
        if (known) Object.assign(known, { connected: s.connected, quality: s.quality });
      }
      render();
      return;
    }
    if (isAlertWorthy(ev)) {
      alerts.unshift(ev);
      alerts.splice(MAX_ALERTS);
      renderAlerts();
    }
    refreshSoon();
  });
  feed.start();
  renderFeedState(feed.state);
  void refresh();
  setInterval(() => void refresh(), POLL_MS);
  setInterval(tickClocks, 1000);

  function isAlertWorthy(ev: LiveEvent): boolean {
    return ev.type === 'alert' || ev.type === 'recordingFault' || ev.type === 'nodeLost' || ev.type === 'lessonStarted' || ev.type === 'lessonEnded';
  }

  // -- tiles ----------------------------------------------------------------------------

  function render(): void {
    const lessons = [...snapshot.lessons].sort((a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.title.localeCompare(b.title));
    const live = lessons.filter((l) => l.state === 'live');
    ui.summary.textContent = t('control.summary', {
      lessons: live.length,
      schools: live.reduce((n, l) => n + l.schools.filter((s) => s.connected).length, 0),
      nodes: snapshot.nodes.length,
    });
    show(ui.noLessons, lessons.length === 0);
    for (const [id, tile] of tiles) {
      if (lessons.some((l) => l.id === id)) continue;
      tile.watcher?.close();
      tile.root.remove();
      tiles.delete(id);
    }
    for (const l of lessons) {
      const tile = tiles.get(l.id) ?? createTile(l);
      updateTile(tile, l);
      ui.tiles.append(tile.root); // keeps the sorted order (moving a node keeps its state)
    }
    if (detailLessonId) renderDetail();
  }

  function createTile(l: LiveLessonView): Tile {
    const video = h('video', { muted: true, playsinline: true, autoplay: true, class: 'tile-video' });
    video.muted = true;
    const open = h('button', { type: 'button', class: 'tile-open', onclick: () => openDetail(l.id) });
    const meta = h('div', { class: 'tile-meta' });
    const schools = h('ul', { class: 'tile-schools' });
    const root = h('article', { class: 'tile', 'data-lesson': l.id }, h('div', { class: 'tile-picture' }, video, h('span', { class: 'tile-nopic', 'data-i18n': 'control.noPicture' }, t('control.noPicture'))), open, meta, schools);
    const tile: Tile = { root, open, video, meta, schools };
    tiles.set(l.id, tile);
    return tile;
  }

  function updateTile(tile: Tile, l: LiveLessonView): void {
    if (l.state === 'live' && !tile.watcher) tile.watcher = new Watcher(token, l.id, tile.video, () => tile.root.classList.toggle('has-picture', Boolean(tile.watcher?.stream)));
    tile.root.dataset['state'] = l.state;
    fill(tile.open, h('span', { class: 'tile-title' }, l.title), h('span', { class: 'visually-hidden' }, ` — ${t('control.openDetail')}`));
    const rec = l.recording;
    fill(
      tile.meta,
      l.state === 'live' ? h('span', { class: 'live-badge small' }, t('common.live')) : h('span', { class: 'badge' }, t('control.notStarted')),
      rec.fault ? h('span', { class: 'badge error', title: rec.fault }, t('control.recFault')) : rec.active ? h('span', { class: 'rec small' }, h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), t('studio.recording')) : null,
      l.startedAt ? h('time', { class: 'since', 'data-since': l.startedAt }, clock((Date.now() - Date.parse(l.startedAt)) / 1000)) : null,
      h('span', { class: 'muted' }, l.instructorId),
      ...(l.uplink ?? []).map((u) => uplinkItem(u)),
    );
    fill(tile.schools, ...l.schools.map((s) => schoolItem(s)));
    if (l.schools.length === 0) tile.schools.append(h('li', { class: 'empty' }, t('studio.noSchools')));
  }

  function schoolItem(s: LiveSchool): HTMLElement {
    const level = qualityLevel(s.connected, s.quality);
    return h(
      'li',
      { class: `school q-${level}`, 'data-school': s.schoolId },
      h('span', { class: `dot dot-${level}`, role: 'img', 'aria-label': t(QUALITY_LABEL[level]), title: t(QUALITY_LABEL[level]) }),
      h('span', { class: 'school-name' }, s.name || s.schoolId),
      s.quality && s.connected ? h('span', { class: 'school-figs' }, `${round(s.quality.bitrateKbps)} kbit/s · ${round(s.quality.lossPct, 1)} %`) : null,
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

  function tickClocks(): void {
    for (const el of Array.from(document.querySelectorAll<HTMLElement>('time.since[data-since]'))) el.textContent = clock((Date.now() - Date.parse(el.dataset['since']!)) / 1000);
  }

  // -- detail ------------------------------------------------------------------------------

  /** The server keeps every sample of the lesson: fill in what this screen did not see. */
  async function loadHistory(lessonId: string): Promise<void> {
    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    try {
      const res = await api<{ samples: QualityRecord[] }>(token, `/api/live/lessons/${encodeURIComponent(lessonId)}/history?since=${encodeURIComponent(since)}&limit=5000`);
      const bySchool = new Map<string, Sample[]>();
      for (const r of res.samples) {
        const list = bySchool.get(r.schoolId) ?? [];
        list.push({ at: Date.parse(r.at), connected: r.connected, q: r.bitrateKbps === null ? null : { ...r, bitrateKbps: r.bitrateKbps, lossPct: r.lossPct ?? 0, sampledAt: r.at } });
        bySchool.set(r.schoolId, list);
      }
      const mine = history.get(lessonId) ?? new Map<string, Sample[]>();
      for (const [school, fromServer] of bySchool) {
        const seen = mine.get(school) ?? [];
        const after = seen.filter((x) => x.at > (fromServer[fromServer.length - 1]?.at ?? 0));
        mine.set(school, [...fromServer, ...after].slice(-HISTORY_SAMPLES));
      }
      history.set(lessonId, mine);
      if (detailLessonId === lessonId) renderDetail();
    } catch {
      // Hosted on another node, or no history yet: the samples this screen saw will do.
    }
  }

  function openDetail(lessonId: string): void {
    detailLessonId = lessonId;
    void loadHistory(lessonId);
    const tile = tiles.get(lessonId);
    ui.detailVideo.srcObject = tile?.watcher?.stream ?? null;
    if (tile?.watcher?.stream) void tryPlay(ui.detailVideo);
    renderDetail();
    ui.detail.showModal();
  }
  ui.detailClose.addEventListener('click', () => ui.detail.close());
  ui.detail.addEventListener('close', () => {
    const tile = detailLessonId ? tiles.get(detailLessonId) : undefined;
    detailLessonId = undefined;
    ui.detailVideo.srcObject = null;
    tile?.open.focus();
  });

  function renderDetail(): void {
    const l = snapshot.lessons.find((x) => x.id === detailLessonId);
    if (!l) {
      ui.detailTitle.textContent = t('control.lessonGone');
      ui.detailBody.replaceChildren();
      return;
    }
    ui.detailTitle.textContent = l.title;
    const fact = (k: MessageKey, v: string) => [h('dt', {}, t(k)), h('dd', {}, v)];
    fill(
      ui.detailFacts,
      ...fact('control.instructor', l.instructorId),
      ...fact('control.started', l.startedAt ? timeOfDay(l.startedAt) : '–'),
      ...fact('control.node', l.node),
      ...fact('control.recordingState', l.recording.fault ? `${t('control.recFault')}: ${l.recording.fault}` : l.recording.active ? t('studio.recording') : t('control.notRecording')),
      ...fact('control.schoolsConnected', `${l.schools.filter((s) => s.connected).length}/${l.schools.length}`),
    );
    const bySchool = history.get(l.id) ?? new Map<string, Sample[]>();
    ui.detailBody.replaceChildren(
      ...l.schools.map((s) => {
        const samples = bySchool.get(s.schoolId) ?? [];
        const series = (pick: (q: QualitySummary) => number | null) => samples.map((x) => (x.q && x.connected ? pick(x.q) : null));
        const cell = (now: number | null | undefined, digits: number, values: Array<number | null>, label: string, max?: number) =>
          h('td', {}, h('span', { class: 'fig' }, round(now ?? undefined, digits)), sparkline(values, { label, ...(max !== undefined ? { max } : {}) }));
        const q = s.quality;
        const level = qualityLevel(s.connected, q);
        return h(
          'tr',
          { 'data-school': s.schoolId },
          h('th', { scope: 'row' }, s.name || s.schoolId),
          h('td', {}, h('span', { class: `dot dot-${level}`, 'aria-hidden': 'true' }), ' ', t(QUALITY_LABEL[level])),
          cell(q?.bitrateKbps, 0, series((x) => x.bitrateKbps), t('control.bitrate')),
          cell(q?.lossPct, 1, series((x) => x.lossPct), t('control.loss'), 5),
          cell(q?.rttMs, 0, series((x) => x.rttMs), t('control.rtt'), 100),
          cell(q?.jitterMs, 1, series((x) => x.jitterMs), t('control.jitter'), 10),
          cell(q?.score, 0, series((x) => x.score), t('control.score'), 10),
        );
      }),
    );
  }

  // -- alerts ----------------------------------------------------------------------------------

  function lessonTitle(id: string): string {
    return snapshot.lessons.find((l) => l.id === id)?.title ?? id.slice(0, 8);
  }

  function schoolName(lessonId: string, schoolId: string | undefined): string {
    if (!schoolId) return '';
    return snapshot.lessons.find((l) => l.id === lessonId)?.schools.find((s) => s.schoolId === schoolId)?.name ?? schoolId;
  }

  function alertText(ev: LiveEvent): { level: 'error' | 'warn' | 'info' | 'ok'; text: string } {
    switch (ev.type) {
      case 'alert': {
        const p = { lesson: lessonTitle(ev.lessonId), school: schoolName(ev.lessonId, ev.schoolId), value: round(ev.value, 1) };
        if (ev.state === 'cleared') return { level: 'ok', text: t(`alert.${ev.rule}.cleared`, p) };
        return { level: ev.rule === 'packetLoss' ? 'warn' : 'error', text: t(`alert.${ev.rule}`, p) };
      }
      case 'recordingFault':
        return { level: 'error', text: t('alert.recordingFault', { lesson: lessonTitle(ev.lessonId), value: ev.message }) };
      case 'nodeLost':
        return { level: 'error', text: t('alert.nodeLost', { node: ev.lostNode, value: ev.lessons.length }) };
      case 'lessonStarted':
        return { level: 'info', text: t('alert.lessonStarted', { lesson: ev.lesson.title }) };
      case 'lessonEnded':
        return { level: 'info', text: t('alert.lessonEnded', { lesson: lessonTitle(ev.lessonId) }) };
      default:
        return { level: 'info', text: ev.type };
    }
  }

  function renderAlerts(): void {
    show(ui.noAlerts, alerts.length === 0);
    fill(
      ui.alerts,
      ...alerts.map((ev) => {
        const { level, text } = alertText(ev);
        return h('li', { class: `alert alert-${level}`, 'data-type': ev.type }, h('time', { datetime: ev.at }, timeOfDay(ev.at)), h('span', {}, text));
      }),
    );
  }

  function renderFeedState(s: FeedState): void {
    const key: Record<FeedState, MessageKey> = { connecting: 'conn.connecting', open: 'control.feedOpen', reconnecting: 'conn.reconnecting', refused: 'control.feedRefused' };
    ui.feedState.dataset['state'] = s === 'open' ? 'joined' : s === 'refused' ? 'failed' : s;
    ui.feedState.textContent = t(key[s]);
  }

  onLangChange(() => {
    render();
    renderAlerts();
    renderFeedState(feed.state);
  });
  renderAlerts();

  window.addEventListener('pagehide', () => {
    feed.close();
    for (const tile of tiles.values()) tile.watcher?.close();
  });
  exposeDiagnostics({
    page: 'control',
    lessons: () => snapshot.lessons.map((l) => ({ id: l.id, title: l.title, state: l.state, schools: l.schools.map((s) => ({ id: s.schoolId, connected: s.connected })) })),
    feedState: () => feed.state,
    alerts: () => alerts.map((a) => a.type),
    tile: async (lessonId: string) => {
      const w = tiles.get(lessonId)?.watcher;
      return { spatialLayer: w?.spatialLayer ?? null, stats: (await w?.stats()) ?? [] };
    },
  });
}
