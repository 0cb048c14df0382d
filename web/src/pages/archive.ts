/**
 * Archive: search recordings, play one with hls.js beside the lesson's event
 * timeline (a click seeks), download it as MP4, and verify its integrity.
 */
import Hls from 'hls.js';
import type { RecordingSummary, VerifyReport } from '../../../src/recording/archiveViews.js';
import type { LessonLogEvent, RecordingManifest } from '../../../src/recording/manifestSchema.js';
import { api, ApiError } from '../lib/api.js';
import { takeCredentials } from '../lib/credentials.js';
import { byId, fill, h, show, tryPlay } from '../lib/dom.js';
import { bytes, clock, dateTime, timeOfDay } from '../lib/format.js';
import { icon } from '../lib/icons.js';
import { isMessageKey, onLangChange, t, type MessageKey } from '../lib/i18n.js';
import { clearNotice, exposeDiagnostics, notice, showMissingToken, startPage } from '../lib/shell.js';

startPage();

const ui = {
  form: byId<HTMLFormElement>('search-form'),
  results: byId('results').querySelector('tbody')!,
  noResults: byId('no-results'),
  viewer: byId('viewer'),
  title: byId('viewer-title'),
  meta: byId('viewer-meta'),
  player: byId<HTMLVideoElement>('player'),
  download: byId<HTMLButtonElement>('download'),
  verify: byId<HTMLButtonElement>('verify'),
  verifyResult: byId<HTMLOutputElement>('verify-result'),
  timeline: byId('timeline'),
  noEvents: byId('no-events'),
};

interface Opened {
  summary: RecordingSummary;
  manifest: RecordingManifest;
}

const creds = takeCredentials('archive');
if (!creds) showMissingToken();
else run(creds.token);

/** Events a person cares about on the timeline (the recorder also logs its own workings). */
function timelineKey(type: string): MessageKey | undefined {
  const key = `timeline.${type}`;
  return isMessageKey(key) ? key : undefined;
}

function run(token: string): void {
  let hls: Hls | undefined;
  let current: Opened | undefined;
  let list: RecordingSummary[] = [];
  /** Recent player errors, for diagnostics. */
  const playerErrors: string[] = [];

  // -- search ---------------------------------------------------------------------------

  async function search(): Promise<void> {
    const params = new URLSearchParams();
    new FormData(ui.form).forEach((v, k) => {
      const value = String(v).trim();
      if (!value) return;
      // Dates are whole local days: "to" includes its day.
      if (k === 'from') params.set(k, new Date(`${value}T00:00:00`).toISOString());
      else if (k === 'to') params.set(k, new Date(`${value}T23:59:59.999`).toISOString());
      else params.set(k, value);
    });
    try {
      list = (await api<{ total: number; recordings: RecordingSummary[] }>(token, `/api/recordings?${params.toString()}`)).recordings;
      clearNotice();
      renderList();
    } catch (e) {
      const err = e as ApiError;
      notice('error', err.status === 404 ? 'archive.unavailable' : err.status === 401 || err.status === 403 ? 'common.refused' : 'common.failed', {}, err.message);
    }
  }

  function renderList(): void {
    show(ui.noResults, list.length === 0);
    fill(
      ui.results,
      ...list.map((r) =>
        h(
          'tr',
          { 'data-recording': r.id, class: current?.summary.id === r.id ? 'selected' : '' },
          h('th', { scope: 'row' }, h('button', { type: 'button', class: 'link-btn', onclick: () => void open(r.id) }, r.title || r.id)),
          h('td', {}, r.subject),
          h('td', {}, r.instructorId),
          h('td', {}, dateTime(r.startedAt)),
          h('td', {}, r.state === 'recording' ? h('span', { class: 'live-badge small' }, t('common.live')) : clock(r.durationSeconds)),
          h('td', { title: r.schools.map((s) => s.name).join(', ') }, String(r.schools.length)),
        ),
      ),
    );
  }

  ui.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void search();
  });
  ui.form.addEventListener('reset', () => setTimeout(() => void search(), 0));

  // -- one recording ---------------------------------------------------------------------

  async function open(id: string): Promise<void> {
    try {
      const res = await api<{ recording: RecordingSummary; manifest: RecordingManifest }>(token, `/api/recordings/${encodeURIComponent(id)}`);
      current = { summary: res.recording, manifest: res.manifest };
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
      return;
    }
    const { summary } = current;
    show(ui.viewer, true);
    ui.title.textContent = summary.title || id;
    ui.meta.textContent = [summary.subject, summary.instructorId, dateTime(summary.startedAt), clock(summary.durationSeconds), bytes(summary.sizeBytes)].filter(Boolean).join(' · ');
    ui.verifyResult.value = '';
    ui.verifyResult.className = 'verify-result';
    renderTimeline();
    renderList();
    play(current);
    ui.title.tabIndex = -1;
    ui.title.focus();
  }

  function play({ summary, manifest }: Opened): void {
    hls?.destroy();
    hls = undefined;
    if (!Hls.isSupported()) {
      notice('error', 'archive.noHls');
      return;
    }
    hls = new Hls({
      // Files are protected: every playlist and segment request carries the bearer token (never the URL).
      xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${token}`),
      enableWorker: true,
      startPosition: 0,
    });
    hls.on(Hls.Events.ERROR, (_ev, data) => {
      playerErrors.push(`${data.fatal ? 'fatal ' : ''}${data.details}`);
      playerErrors.splice(0, playerErrors.length - 20);
      if (data.fatal) notice('error', 'archive.playFailed', {}, data.details);
    });
    // The user picked this recording: start it (their click allows sound).
    hls.on(Hls.Events.MANIFEST_PARSED, () => void tryPlay(ui.player));
    hls.loadSource(`/api/recordings/${encodeURIComponent(summary.id)}/files/${manifest.playlist.split('/').map(encodeURIComponent).join('/')}`);
    hls.attachMedia(ui.player);
  }

  function nameOf(participantId: string | undefined): string {
    if (!participantId) return '';
    return current?.manifest.attendance.find((a) => a.participantId === participantId)?.name ?? participantId;
  }

  function renderTimeline(): void {
    const events = (current?.manifest.events ?? []).filter((e) => timelineKey(e.type));
    show(ui.noEvents, events.length === 0);
    fill(ui.timeline, ...events.map(timelineItem));
  }

  function timelineItem(ev: LessonLogEvent): HTMLElement {
    // t is the event's place on the lesson timeline, which is the recording's (0 = went live).
    const offset = Math.max(0, ev.t);
    return h(
      'li',
      { 'data-type': ev.type },
      h(
        'button',
        { type: 'button', class: 'timeline-btn', 'data-offset': String(offset), onclick: () => seek(offset) },
        h('time', { datetime: ev.at, title: timeOfDay(ev.at) }, clock(offset)),
        ev.type === 'handRaised' || ev.type === 'handLowered' ? icon('hand') : ev.type.startsWith('floor') ? icon('mic') : null,
        h('span', {}, t(timelineKey(ev.type)!, { who: nameOf(ev.participantId) })),
      ),
    );
  }

  function seek(offset: number): void {
    ui.player.currentTime = offset;
    void tryPlay(ui.player);
  }

  ui.download.addEventListener('click', () => {
    if (!current) return;
    const id = current.summary.id;
    ui.download.disabled = true;
    // A lesson's MP4 can be large: let the browser stream it to disk through a plain link with a
    // short-lived key for this one recording (the page's own token never goes into a URL).
    api<{ access: string }>(token, `/api/recordings/${encodeURIComponent(id)}/access`, { method: 'POST', body: {} })
      .then(({ access }) => {
        const a = h('a', { href: `/api/recordings/${encodeURIComponent(id)}/download.mp4?access=${encodeURIComponent(access)}`, download: '' });
        document.body.append(a);
        a.click();
        a.remove();
      })
      .catch((e: unknown) => notice('error', 'archive.downloadFailed', {}, (e as Error).message))
      .finally(() => (ui.download.disabled = false));
  });

  ui.verify.addEventListener('click', () => {
    if (!current) return;
    ui.verify.disabled = true;
    ui.verifyResult.value = t('archive.verifying');
    ui.verifyResult.className = 'verify-result';
    api<VerifyReport>(token, `/api/recordings/${encodeURIComponent(current.summary.id)}/verify`, { method: 'POST', body: {} })
      .then((r) => {
        ui.verifyResult.value = r.ok ? t('archive.verifyOk', { n: r.checkedFiles, size: bytes(r.checkedBytes) }) : t('archive.verifyBad', { n: r.mismatches.length });
        ui.verifyResult.className = `verify-result ${r.ok ? 'ok' : 'bad'}`;
      })
      .catch((e: unknown) => {
        ui.verifyResult.value = t('archive.verifyFailed');
        notice('error', 'common.failed', {}, (e as Error).message);
      })
      .finally(() => (ui.verify.disabled = false));
  });

  onLangChange(() => {
    renderList();
    renderTimeline();
  });
  void search();

  exposeDiagnostics({
    page: 'archive',
    recordings: () => list.map((r) => ({ id: r.id, title: r.title, state: r.state })),
    player: () => {
      const b = ui.player.buffered;
      const ranges = Array.from({ length: b.length }, (_, i) => [b.start(i), b.end(i)]);
      return { currentTime: ui.player.currentTime, paused: ui.player.paused, videoWidth: ui.player.videoWidth, readyState: ui.player.readyState, buffered: ranges, errors: [...playerErrors] };
    },
    timeline: () => (current?.manifest.events ?? []).filter((e) => timelineKey(e.type)).map((e) => e.type),
  });
}
