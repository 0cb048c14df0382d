/**
 * Control room: every open lesson as a tile with a small live picture (the
 * lowest simulcast layer) and its schools coloured by reception; an alerts
 * feed; a lesson's detail with per-school figures over time.
 */
import type { LiveSnapshot } from '../../../src/live/types.js';
import { api, type ApiError } from '../lib/api.js';
import { byId, show } from '../lib/dom.js';
import { LiveFeedClient, type FeedState } from '../lib/feed.js';
import { onLangChange, t, type MessageKey } from '../lib/i18n.js';
import { exposeDiagnostics, notice, clearNotice, runWithToken, startPage } from '../lib/shell.js';
import { AlertList } from './control/alertList.js';
import { DetailDialog } from './control/detailDialog.js';
import { QualityHistory } from './control/qualityHistory.js';
import { TileGrid } from './control/tileGrid.js';

startPage();

const POLL_MS = 5000;
const FEED_TEXT: Record<FeedState, MessageKey> = {
  connecting: 'conn.connecting',
  open: 'control.feedOpen',
  reconnecting: 'conn.reconnecting',
  refused: 'control.feedRefused',
};

runWithToken('control', run);

function run(token: string): void {
  const main = byId('main');
  const summary = byId('summary');
  const feedState = byId('feed-state');
  const noLessons = byId('no-lessons');
  let snapshot: LiveSnapshot = { nodes: [], lessons: [] };
  let refreshTimer: number | undefined;
  const history = new QualityHistory(token);
  const tiles = new TileGrid(token, (id) => detail.open(id));
  const detail = new DetailDialog(tiles, history, (id) => snapshot.lessons.find((l) => l.id === id));
  const alerts = new AlertList(() => snapshot);

  async function refresh(): Promise<void> {
    try {
      snapshot = await api<LiveSnapshot>(token, '/api/live');
      clearNotice();
      if (snapshot.degraded) notice('warn', 'control.degraded', {}, snapshot.degraded);
      for (const l of snapshot.lessons) for (const s of l.schools) history.record(l.id, s.schoolId, s.connected, s.quality);
      main.setAttribute('aria-busy', 'false');
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

  const feed = new LiveFeedClient(token);
  feed.on('state', renderFeedState);
  feed.on('opened', refreshSoon);
  feed.on('event', (ev) => {
    if (ev.type === 'quality') {
      const lesson = snapshot.lessons.find((l) => l.id === ev.lessonId);
      if (lesson) lesson.uplink = ev.uplink ?? [];
      for (const s of ev.schools) {
        history.record(ev.lessonId, s.schoolId, s.connected, s.quality);
        const known = lesson?.schools.find((x) => x.schoolId === s.schoolId);
        if (known) Object.assign(known, { connected: s.connected, quality: s.quality });
      }
      render();
      return;
    }
    if (AlertList.worthy(ev)) alerts.add(ev);
    refreshSoon();
  });
  feed.start();
  renderFeedState(feed.state);
  void refresh();
  setInterval(() => void refresh(), POLL_MS);
  setInterval(() => tiles.tick(), 1000);

  function render(): void {
    const lessons = [...snapshot.lessons].sort(
      (a, b) => (a.startedAt ?? '').localeCompare(b.startedAt ?? '') || a.title.localeCompare(b.title),
    );
    const live = lessons.filter((l) => l.state === 'live');
    summary.textContent = t('control.summary', {
      lessons: live.length,
      schools: live.reduce((n, l) => n + l.schools.filter((s) => s.connected).length, 0),
      nodes: snapshot.nodes.length,
    });
    show(noLessons, lessons.length === 0);
    tiles.render(lessons);
    detail.render();
  }

  function renderFeedState(s: FeedState): void {
    feedState.dataset['state'] = s === 'open' ? 'joined' : s === 'refused' ? 'failed' : s;
    feedState.textContent = t(FEED_TEXT[s]);
  }

  onLangChange(() => {
    render();
    alerts.render();
    renderFeedState(feed.state);
  });
  alerts.render();

  window.addEventListener('pagehide', () => {
    feed.close();
    tiles.close();
  });
  exposeDiagnostics({
    page: 'control',
    lessons: () =>
      snapshot.lessons.map((l) => ({
        id: l.id,
        title: l.title,
        state: l.state,
        schools: l.schools.map((s) => ({ id: s.schoolId, connected: s.connected, link: s.link })),
      })),
    feedState: () => feed.state,
    alerts: () => alerts.alerts.map((a) => a.type),
    tile: async (lessonId: string) => {
      const w = tiles.get(lessonId)?.watcher;
      return { spatialLayer: w?.spatialLayer ?? null, stats: (await w?.stats()) ?? [] };
    },
  });
}
