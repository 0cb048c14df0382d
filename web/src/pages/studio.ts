/**
 * Instructor studio: pick camera and microphone (with preview), go live,
 * share a screen or smart board, see schools and their reception, run the
 * raise-hand queue and the floor, and end the lesson.
 */
import type { LessonView, ProducerView, RecordingState } from '../../../src/signalling/protocol.js';
import { api } from '../lib/api.js';
import { takeCredentials } from '../lib/credentials.js';
import { LevelMeter, cameraConstraints, listDevices, micConstraints, recall, remember, type Resolution } from '../lib/devices.js';
import { byId, fill, h, show, tryPlay } from '../lib/dom.js';
import { clock } from '../lib/format.js';
import { icon } from '../lib/icons.js';
import { onLangChange, t, tx } from '../lib/i18n.js';
import { LessonLink } from '../lib/link.js';
import { CurrentMedia } from '../lib/media.js';
import { QUALITY_LABEL, qualityLevel, type QualitySample } from '../lib/quality.js';
import { Roster } from '../lib/roster.js';
import { SignalError } from '../lib/signal.js';
import { clearNotice, exposeDiagnostics, notice, showMissingToken, startPage } from '../lib/shell.js';
import { keepFocus, renderConnection } from '../lib/widgets.js';

startPage();

const ui = {
  main: byId('main'),
  lessonTitle: byId('lesson-title'),
  rec: byId('rec'),
  recElapsed: byId('rec-elapsed'),
  liveBadge: byId('live-badge'),
  conn: byId('conn'),
  cameraPreview: byId<HTMLVideoElement>('camera-preview'),
  screenFigure: byId('screen-figure'),
  screenPreview: byId<HTMLVideoElement>('screen-preview'),
  cameraSelect: byId<HTMLSelectElement>('camera-select'),
  micSelect: byId<HTMLSelectElement>('mic-select'),
  resolutionSelect: byId<HTMLSelectElement>('resolution-select'),
  micLevel: byId<HTMLMeterElement>('mic-level'),
  goLive: byId<HTMLButtonElement>('go-live'),
  endLesson: byId<HTMLButtonElement>('end-lesson'),
  shareScreen: byId<HTMLButtonElement>('share-screen'),
  muteMic: byId<HTMLButtonElement>('mute-mic'),
  handQueue: byId('hand-queue'),
  handCount: byId('hand-count'),
  handsEmpty: byId('hands-empty'),
  floorList: byId('floor-list'),
  floorEmpty: byId('floor-empty'),
  schoolList: byId('school-list'),
  schoolCount: byId('school-count'),
  schoolsEmpty: byId('schools-empty'),
  remoteAudio: byId('remote-audio'),
  endDialog: byId<HTMLDialogElement>('end-dialog'),
};

const creds = takeCredentials('studio');
if (!creds || !creds.lessonId) showMissingToken();
else void run(creds.token, creds.lessonId, creds.claims.sub);

async function run(token: string, lessonId: string, me: string): Promise<void> {
  const link = new LessonLink(token, lessonId);
  const roster = new Roster(link);
  let lesson: LessonView | undefined;
  /** What the recorder says (pushed by the server): the badge shows it, faults included. */
  let recording: RecordingState = { state: 'stopped', at: null };
  const media = new CurrentMedia();
  let camTrack: MediaStreamTrack | undefined;
  let micTrack: MediaStreamTrack | undefined;
  let screenTrack: MediaStreamTrack | undefined;
  let micMuted = false;
  /** Quality per school from the live view, when this token may read it. */
  let quality = new Map<string, QualitySample>();
  let liveViewAllowed = true;
  const meter = new LevelMeter();
  const timings: Record<string, number> = {};

  // -- devices and preview --------------------------------------------------

  ui.resolutionSelect.value = recall('resolution') ?? '720';

  async function openCamera(): Promise<void> {
    const next = (await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(ui.cameraSelect.value || recall('camera'), ui.resolutionSelect.value as Resolution) })).getVideoTracks()[0]!;
    camTrack?.stop();
    camTrack = next;
    ui.cameraPreview.srcObject = new MediaStream([next]);
    void tryPlay(ui.cameraPreview);
    if (media.current?.isPublishing('camera')) await media.current.publish('camera', next);
  }

  async function openMic(): Promise<void> {
    const next = (await navigator.mediaDevices.getUserMedia({ audio: micConstraints(ui.micSelect.value || recall('mic')) })).getAudioTracks()[0]!;
    micTrack?.stop();
    micTrack = next;
    next.enabled = !micMuted;
    meter.attach(next);
    if (media.current?.isPublishing('microphone')) await media.current.publish('microphone', next);
  }

  async function fillDeviceLists(): Promise<void> {
    const { cameras, mics } = await listDevices();
    const options = (list: MediaDeviceInfo[], current: string | undefined, fallbackKey: 'studio.cameraN' | 'studio.micN') =>
      list.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current }, d.label || t(fallbackKey, { n: i + 1 })));
    fill(ui.cameraSelect, ...options(cameras, camTrack?.getSettings().deviceId, 'studio.cameraN'));
    fill(ui.micSelect, ...options(mics, micTrack?.getSettings().deviceId, 'studio.micN'));
  }

  ui.cameraSelect.addEventListener('change', () => {
    remember('camera', ui.cameraSelect.value);
    openCamera().catch((e: unknown) => notice('error', 'studio.cameraFailed', {}, String(e)));
  });
  ui.resolutionSelect.addEventListener('change', () => {
    remember('resolution', ui.resolutionSelect.value);
    openCamera().catch((e: unknown) => notice('error', 'studio.cameraFailed', {}, String(e)));
  });
  ui.micSelect.addEventListener('change', () => {
    remember('mic', ui.micSelect.value);
    openMic().catch((e: unknown) => notice('error', 'studio.micFailed', {}, String(e)));
  });
  ui.muteMic.addEventListener('click', () => {
    micMuted = !micMuted;
    if (micTrack) micTrack.enabled = !micMuted;
    ui.muteMic.setAttribute('aria-pressed', String(micMuted));
    tx(ui.muteMic, micMuted ? 'studio.unmuteMic' : 'studio.muteMic');
  });

  try {
    await openCamera();
    await openMic();
    await fillDeviceLists();
  } catch (e) {
    notice('error', 'studio.devicesFailed', {}, (e as Error).message);
  }

  // -- lesson link ------------------------------------------------------------

  function client() {
    if (!link.client?.open) throw new SignalError('DISCONNECTED', 'not connected');
    return link.client;
  }

  async function publishAll(): Promise<void> {
    await media.with(async (m) => {
      if (camTrack) await m.publish('camera', camTrack);
      if (micTrack) await m.publish('microphone', micTrack);
      if (screenTrack) await m.publish('screen', screenTrack);
    });
  }

  /** The instructor hears a classroom that holds the floor. */
  async function listen(view: ProducerView): Promise<void> {
    if (view.participantId === me || view.kind !== 'audio') return;
    const info = await media.with((m) => m.consume(view));
    if (!info || info.consumer.closed) return;
    const audio = h('audio', { autoplay: true, 'data-producer': view.producerId });
    audio.srcObject = new MediaStream([info.consumer.track]);
    ui.remoteAudio.append(audio);
    if (!(await tryPlay(audio))) notice('warn', 'studio.clickForSound');
  }

  link.on('joined', (info, c) => {
    lesson = info.lesson;
    recording = info.recording;
    roster.reset(info);
    ui.remoteAudio.replaceChildren();
    const ready = media.replace(c, info.routerRtpCapabilities);
    void (async () => {
      const session = await ready;
      session.on('consumerClosed', (ci) => ui.remoteAudio.querySelector(`[data-producer="${CSS.escape(ci.producerId)}"]`)?.remove());
      session.on('transportState', (_dir, state) => {
        if (state === 'failed' || state === 'disconnected') notice('warn', 'common.mediaTrouble');
        else if (state === 'connected') clearNotice();
      });
      for (const p of info.producers) void listen(p).catch(() => undefined);
      // Back after a drop while live: the server set media up afresh, so publish again.
      if (info.lesson.state === 'live') await publishAll();
      ui.main.setAttribute('aria-busy', 'false');
      render();
    })().catch((e: unknown) => notice('error', 'common.failed', {}, String(e)));
  });
  link.on('state', (s) => renderConnection(ui.conn, s));
  // Browsers may refuse to play sound before the user has interacted with the page: any click retries.
  document.addEventListener('click', () => {
    for (const a of Array.from(ui.remoteAudio.querySelectorAll('audio'))) if (a.paused) void tryPlay(a);
  });
  link.on('failed', (e) => notice('error', e.code === 'REPLACED' ? 'common.replaced' : e.code === 'LESSON_ENDED' ? 'studio.ended' : 'common.refused', {}, e.message));
  link.on('newProducer', (p) => void listen(p).catch(() => undefined));
  link.on('recordingChanged', (r) => {
    recording = r;
    render();
  });
  link.on('lessonStarted', ({ lesson: l }) => {
    lesson = l;
    render();
  });
  link.on('lessonEnded', ({ lesson: l }) => {
    lesson = l;
    void media.close();
    // The lesson is over: release the camera, microphone and screen (their lights go off).
    for (const track of [camTrack, micTrack, screenTrack]) track?.stop();
    camTrack = micTrack = screenTrack = undefined;
    ui.cameraPreview.srcObject = null;
    notice('info', 'studio.ended');
    render();
  });
  roster.on('change', render);
  link.start();
  renderConnection(ui.conn, link.state);

  // -- actions ----------------------------------------------------------------

  ui.goLive.addEventListener('click', () => {
    void (async () => {
      ui.goLive.disabled = true;
      try {
        timings['goLiveClickedAt'] = Date.now();
        lesson = (await client().request('goLive', {})).lesson;
        timings['liveAt'] = Date.now();
        await publishAll();
        timings['publishedAt'] = Date.now();
      } catch (e) {
        notice('error', 'studio.goLiveFailed', {}, (e as Error).message);
      }
      render();
    })();
  });

  ui.endLesson.addEventListener('click', () => ui.endDialog.showModal());
  ui.endDialog.addEventListener('close', () => {
    if (ui.endDialog.returnValue !== 'end') return;
    client()
      .request('endLesson', {})
      .then((r) => {
        lesson = r.lesson;
        render();
      })
      .catch((e: unknown) => notice('error', 'common.failed', {}, String(e)));
  });

  ui.shareScreen.addEventListener('click', () => {
    void (async () => {
      if (screenTrack) return stopSharing();
      try {
        const track = (await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false })).getVideoTracks()[0]!;
        screenTrack = track;
        track.addEventListener('ended', () => void stopSharing());
        ui.screenPreview.srcObject = new MediaStream([track]);
        void tryPlay(ui.screenPreview);
        if (lesson?.state === 'live') await media.with((m) => m.publish('screen', track));
      } catch (e) {
        if ((e as Error).name !== 'NotAllowedError') notice('error', 'studio.shareFailed', {}, (e as Error).message);
      }
      render();
    })();
  });

  async function stopSharing(): Promise<void> {
    screenTrack?.stop();
    screenTrack = undefined;
    ui.screenPreview.srcObject = null;
    await media.current?.unpublish('screen');
    render();
  }

  // -- rendering ----------------------------------------------------------------

  function render(): void {
    const live = lesson?.state === 'live';
    const ended = lesson?.state === 'ended';
    ui.lessonTitle.textContent = lesson ? lesson.title : '';
    show(ui.liveBadge, live);
    show(ui.goLive, !live && !ended);
    ui.goLive.disabled = !lesson || live || ended || link.state !== 'joined';
    show(ui.endLesson, live);
    ui.shareScreen.disabled = !live;
    ui.shareScreen.setAttribute('aria-pressed', String(Boolean(screenTrack)));
    tx(ui.shareScreen, screenTrack ? 'studio.stopSharing' : 'studio.shareScreen');
    show(ui.screenFigure, Boolean(screenTrack));
    ui.muteMic.disabled = !micTrack;
    show(ui.rec, live && recording.state !== 'stopped');
    ui.rec.classList.toggle('fault', recording.state === 'fault');
    ui.rec.title = recording.state === 'fault' ? t('studio.recordingFault', { message: recording.message ?? '' }) : '';
    renderHands();
    renderFloor();
    renderSchools();
    tick();
  }

  function renderHands(): void {
    const queue = roster.handQueue();
    ui.handCount.textContent = queue.length ? `(${queue.length})` : '';
    show(ui.handsEmpty, queue.length === 0);
    keepFocus(ui.handQueue, () =>
      fill(
        ui.handQueue,
        ...queue.map((p, i) =>
          h(
            'li',
            { class: 'queue-item', 'data-participant': p.id },
            h('span', { class: 'queue-pos', 'aria-hidden': 'true' }, String(i + 1)),
            h('span', { class: 'queue-name' }, p.name),
            h('time', { class: 'queue-wait', 'data-since': String(p.handRaisedAt) }, clock((Date.now() - p.handRaisedAt!) / 1000)),
            h(
              'span',
              { class: 'queue-actions' },
              h('button', { type: 'button', class: 'btn primary', 'data-focus-key': `grant:${p.id}`, onclick: () => act('grantFloor', p.id) }, icon('mic'), t('studio.giveFloor')),
              h('button', { type: 'button', class: 'btn', 'data-focus-key': `lower:${p.id}`, 'aria-label': t('studio.lowerHandOf', { name: p.name }), onclick: () => act('lowerHand', p.id) }, t('studio.lowerHand')),
            ),
          ),
        ),
      ),
    );
  }

  function renderFloor(): void {
    const holders = roster.floor();
    show(ui.floorEmpty, holders.length === 0);
    keepFocus(ui.floorList, () =>
      fill(
        ui.floorList,
        ...holders.map((p) =>
          h(
            'li',
            { class: 'queue-item on-floor', 'data-participant': p.id },
            icon('mic'),
            h('span', { class: 'queue-name' }, p.name),
            h('button', { type: 'button', class: 'btn danger', 'data-focus-key': `revoke:${p.id}`, onclick: () => act('revokeFloor', p.id) }, t('studio.takeBack')),
          ),
        ),
      ),
    );
  }

  function renderSchools(): void {
    const schools = roster.classrooms();
    ui.schoolCount.textContent = `(${schools.filter((s) => s.connected).length}/${schools.length})`;
    show(ui.schoolsEmpty, schools.length === 0);
    fill(
      ui.schoolList,
      ...schools.map((s) => {
        const level = qualityLevel(s.connected, quality.get(s.id));
        return h(
          'li',
          { class: 'school', 'data-participant': s.id },
          h('span', { class: `dot dot-${level}`, role: 'img', 'aria-label': t(QUALITY_LABEL[level]), title: t(QUALITY_LABEL[level]) }),
          h('span', { class: 'school-name' }, s.name),
          s.handRaisedAt !== null ? h('span', { class: 'badge hand', title: t('studio.handUp') }, icon('hand', t('studio.handUp'))) : null,
          s.hasFloor ? h('span', { class: 'badge floor', title: t('studio.speaking') }, icon('mic', t('studio.speaking'))) : null,
        );
      }),
    );
  }

  async function act(method: 'grantFloor' | 'revokeFloor' | 'lowerHand', participantId: string): Promise<void> {
    try {
      await client().request(method, { participantId });
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }

  /** Once a second: elapsed recording time and hand waiting times, updated in place (focus stays put). */
  function tick(): void {
    if (recording.at && recording.state === 'recording') ui.recElapsed.textContent = clock((Date.now() - Date.parse(recording.at)) / 1000);
    for (const el of Array.from(ui.handQueue.querySelectorAll<HTMLElement>('time[data-since]'))) el.textContent = clock((Date.now() - Number(el.dataset['since'])) / 1000);
  }
  setInterval(tick, 1000);
  setInterval(() => {
    ui.micLevel.value = micTrack && !micMuted ? meter.level() : 0;
  }, 150);

  /** Reception per school comes from the control room's live view, if this token may read it. */
  async function pollQuality(): Promise<void> {
    if (!liveViewAllowed || lesson?.state !== 'live') return;
    try {
      const live = await api<{ lessons: Array<{ id: string; schools: Array<{ schoolId: string; quality?: QualitySample }> }> }>(token, '/api/live');
      const mine = live.lessons.find((l) => l.id === lessonId);
      quality = new Map((mine?.schools ?? []).filter((s) => s.quality).map((s) => [s.schoolId, s.quality!]));
      renderSchools();
    } catch (e) {
      // Without the live view, dots show only whether a school is connected.
      if ((e as { status?: number }).status === 403 || (e as { status?: number }).status === 404) liveViewAllowed = false;
    }
  }
  setInterval(() => void pollQuality(), 5000);
  onLangChange(render);

  window.addEventListener('pagehide', () => link.close());
  exposeDiagnostics({
    page: 'studio',
    linkState: () => link.state,
    lessonState: () => lesson?.state,
    timings: () => ({ ...timings }),
    publishing: () => (['camera', 'microphone', 'screen'] as const).filter((s) => media.current?.isPublishing(s)),
    inboundStats: () => media.current?.inboundStats() ?? [],
  });
  render();
}
