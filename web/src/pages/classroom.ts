/**
 * Classroom: the lesson full screen (camera and board, switchable or side by
 * side), raise/lower the hand, speak while holding the floor (with an on-air
 * sign), and recover by itself when the network drops. A network that blocks
 * live media gets the lesson one way, from its live recording (classroom/oneWay.ts). A school
 * board opened with `#device=<credential>` finds its lesson by itself (classroom/board.ts).
 */
import type { LessonView, LinkLayer, MediaMode, MediaSource, ProducerView } from '../../../src/domain/index.js';
import { takeCredentials, takeDeviceCredential } from '../lib/credentials.js';
import { byId, show } from '../lib/dom.js';
import { onLangChange, t, tx, type MessageKey } from '../lib/i18n.js';
import { LessonLink } from '../lib/link.js';
import { CurrentMedia } from '../lib/media.js';
import { Roster } from '../lib/roster.js';
import { clearNotice, exposeDiagnostics, notice, showMissingToken, startPage } from '../lib/shell.js';
import { renderConnection } from '../lib/widgets.js';
import { lessonDiagnostics } from '../views/lessonDiagnostics.js';
import { RemoteAudio } from '../views/remoteAudio.js';
import { FloorMicrophone } from './classroom/floorMicrophone.js';
import { HandControls } from './classroom/handControls.js';
import { Board } from './classroom/board.js';
import { OneWayFallback } from './classroom/oneWay.js';
import { Stage } from './classroom/stage.js';

startPage();

// A lesson link (#token=) wins over a board's stored device credential.
const device = location.hash.includes('token=') ? undefined : takeDeviceCredential();
const creds = device ? undefined : takeCredentials('classroom');
if (device) new Board(device, run).start();
else if (!creds || !creds.lessonId) showMissingToken();
else run(creds.token, creds.lessonId, creds.claims.sub, creds.claims.name);

function run(token: string, lessonId: string, me: string, myName: string): LessonLink {
  const main = byId('main');
  const lessonTitle = byId('lesson-title');
  const conn = byId('conn');
  const banner = byId('banner');
  const sound = byId<HTMLButtonElement>('sound');
  const fullscreen = byId<HTMLButtonElement>('fullscreen');
  const oneWayBanner = byId('one-way');
  const speak = byId<HTMLButtonElement>('speak');
  const speakReason = byId('speak-reason');
  const link = new LessonLink(token, lessonId);
  const roster = new Roster(link);
  const media = new CurrentMedia();
  const voices = new RemoteAudio(byId('remote-audio'));
  const stage = new Stage(render);
  const oneWay = new OneWayFallback({
    video: stage.oneWayVideo,
    request: () => link.connected().request('oneWayStream', {}),
    onChange: () => {
      render();
      reportMediaMode();
      if (oneWay.active && roster.get(me)?.hasFloor) declineFloor();
      if (oneWay.mode === 'one-way' && oneWay.mutedByBrowser) show(sound, true);
    },
  });
  // In one-way mode nothing this board sends can reach the lesson: the microphone stays shut.
  const microphone = new FloorMicrophone(media, () => Boolean(roster.get(me)?.hasFloor) && lesson?.state === 'live' && !oneWay.active);
  const hand = new HandControls({ toggleHand, finishSpeaking }, () => roster.get(me)?.handRaisedAt != null);
  let lesson: LessonView | undefined;
  let mediaTrouble = false;
  /** The simulcast layer of the camera the server forwards here (for diagnostics). */
  let cameraLayer: number | null = null;
  const timings: Record<string, number> = {};

  byId('school-name').textContent = myName;

  async function receive(view: ProducerView): Promise<void> {
    if (view.participantId === me) return;
    oneWay.receiving();
    const info = await media.with((m) => m.consume(view));
    if (!info || info.consumer.closed) return;
    if (info.kind === 'audio') {
      if (!(await voices.play(info, { 'data-participant': view.participantId }))) show(sound, true);
      return;
    }
    const el = stage.show(info);
    if (info.source !== 'screen' && !timings['firstFrameAt']) {
      timings['cameraConsumedAt'] ??= Date.now();
      // When the first picture shows (for the go-live → first-frame figure).
      el.requestVideoFrameCallback(() => {
        timings['firstFrameAt'] ??= Date.now();
      });
    }
  }

  async function syncMicrophone(): Promise<void> {
    await microphone.sync();
    render();
  }

  // -- lesson link ----------------------------------------------------------------

  let joins = 0;
  let drops = 0;
  const weakLink = byId('weak-link');
  let linkLayer: LinkLayer | null = null;
  link.on('down', () => drops++);
  link.on('joined', (info, c) => {
    joins++;
    lesson = info.lesson;
    roster.reset(info);
    linkLayer = info.links?.find((l) => l.participantId === me)?.layer ?? null;
    show(weakLink, linkLayer === 'audio-only');
    stage.reset();
    voices.clear();
    oneWay.rejoined();
    // The server keeps the mode across a rejoin and starts a new seat at 'live': tell it if that is not ours.
    reportedMode = roster.get(me)?.mediaMode ?? 'live';
    reportMediaMode();
    // Set up synchronously: producers announced while this runs are queued on the new session.
    const ready = media.replace(c, info);
    void (async () => {
      const session = await ready;
      session.on('consumerClosed', (ci) => {
        voices.remove(ci.producerId);
        stage.forget(ci.producerId);
      });
      session.on('layersChanged', (ci, spatial) => {
        if (ci.source === 'camera') cameraLayer = spatial;
      });
      session.on('transportState', (dir, state) => {
        mediaTrouble = state === 'disconnected' || state === 'failed';
        if (dir === 'recv') oneWay.transportState(state);
        render();
      });
      microphone.release();
      main.setAttribute('aria-busy', 'false');
      clearNotice();
      await Promise.all(info.producers.map((p) => receive(p).catch(() => undefined)));
      await syncMicrophone();
    })().catch((e: unknown) => notice('error', 'common.failed', {}, String(e)));
  });
  // The server paused our video for a weak link (docs/links.md): say so, and that it comes back by itself.
  link.on('linkChanged', (l) => {
    if (l.participantId !== me) return;
    linkLayer = l.layer;
    show(weakLink, linkLayer === 'audio-only');
  });
  link.on('newProducer', (p) => {
    if (p.source === 'camera') timings['cameraAnnouncedAt'] ??= Date.now();
    void receive(p).catch(() => undefined);
  });
  link.on('state', (s) => {
    // Nothing more comes on this link (a revoked board must not keep the lesson's last picture).
    if (s === 'failed' || s === 'closed') stopMedia();
    renderConnection(conn, s);
    render();
  });
  link.on('failed', (e) => {
    const key: MessageKey =
      e.code === 'REPLACED'
        ? 'common.replaced'
        : e.code === 'LESSON_ENDED'
          ? 'classroom.ended'
          : e.code === 'LESSON_NOT_FOUND'
            ? 'classroom.notFound'
            : e.code === 'TOKEN_REVOKED'
              ? 'classroom.revoked'
              : 'common.refused';
    notice(e.code === 'LESSON_ENDED' ? 'info' : 'error', key, {}, e.code === 'LESSON_ENDED' ? undefined : e.message);
    render();
  });
  link.on('lessonStarted', (started) => {
    lesson = started.lesson;
    render();
  });
  link.on('lessonEnded', (ended) => {
    lesson = ended.lesson;
    stopMedia();
    render();
  });
  function stopMedia(): void {
    oneWay.stop();
    void media.close();
    microphone.release();
    stage.clear();
    voices.clear();
  }
  link.on('floorGranted', ({ participantId }) => {
    if (participantId !== me) return;
    if (oneWay.active) declineFloor();
    else void syncMicrophone();
  });
  link.on('floorRevoked', ({ participantId }) => participantId === me && void syncMicrophone());
  roster.on('change', render);
  link.start();
  renderConnection(conn, link.state);

  // -- controls ---------------------------------------------------------------------

  function toggleHand(raised: boolean): void {
    Promise.resolve()
      .then(() => link.connected().request(raised ? 'lowerHand' : 'raiseHand', {}))
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message))
      .finally(render);
  }
  /** Given the floor in one-way mode: hand it straight back, and say why. */
  let declining = false;
  function declineFloor(): void {
    if (declining) return;
    declining = true;
    notice('warn', 'classroom.floorDeclined');
    Promise.resolve()
      .then(() => link.connected().request('revokeFloor', { participantId: me }))
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message))
      .finally(() => (declining = false));
  }
  /**
   * The studio and the control room show a classroom that watches one way (and the studio offers it
   * no floor): tell the server whenever this board's media path changes. Without live media
   * (one-way, or nothing to fall back to) it cannot speak either way.
   */
  let reportedMode: MediaMode = 'live';
  let reporting = false;
  function reportMediaMode(): void {
    const mode: MediaMode = oneWay.active ? 'one-way' : 'live';
    if (mode === reportedMode || reporting || lesson?.state === 'ended') return;
    reporting = true;
    Promise.resolve()
      .then(() => link.connected().request('reportMediaMode', { mode }))
      .then(
        () => {
          reportedMode = mode;
          reporting = false;
          reportMediaMode(); // the mode may have changed meanwhile
        },
        // Not told (link down, rate limited): the next change or join tells it.
        () => (reporting = false),
      );
  }
  function finishSpeaking(): void {
    Promise.resolve()
      .then(() => link.connected().request('revokeFloor', { participantId: me }))
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message));
  }
  sound.addEventListener('click', () => {
    void Promise.all([voices.resume(), oneWay.resumeSound()]).then(([a, b]) => show(sound, !(a && b)));
  });
  fullscreen.addEventListener('click', () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void main.requestFullscreen().catch(() => undefined);
  });
  document.addEventListener('fullscreenchange', () =>
    tx(fullscreen, document.fullscreenElement ? 'classroom.exitFullscreen' : 'classroom.fullscreen'),
  );
  // Keyboard on a smart board: H raises/lowers the hand, F toggles full screen.
  document.addEventListener('keydown', (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'h' || ev.key === 'H') hand.hand.click();
    else if (ev.key === 'f' || ev.key === 'F') fullscreen.click();
  });

  // -- rendering ----------------------------------------------------------------------

  function render(): void {
    const state = lesson?.state;
    const hasPicture = stage.has('camera') || stage.has('screen');
    lessonTitle.textContent = lesson?.title ?? '';
    const ended = state === 'ended' || link.state === 'ended';
    // One-way mode has its own banner: media trouble is the reason for it, not news.
    show(banner, (link.state === 'reconnecting' || (mediaTrouble && !oneWay.active)) && !ended);
    renderOneWay(ended);
    stage.render(
      link.state === 'connecting'
        ? 'classroom.connecting'
        : state === 'ended' || link.state === 'ended'
          ? 'classroom.ended'
          : link.state === 'failed' || link.state === 'closed'
            ? 'classroom.cannotJoin'
            : state === 'created'
              ? 'classroom.waiting'
              : oneWay.mode === 'one-way' && stage.oneWayVideo.dataset['state'] !== 'playing'
                ? 'classroom.oneWayStarting'
                : state === 'live' && !hasPicture && oneWay.mode === 'live'
                  ? 'classroom.noVideo'
                  : undefined,
      ended ? 'live' : oneWay.mode,
    );
    hand.render({
      me: roster.get(me),
      live: state === 'live' && link.state === 'joined',
      place: roster.handQueue().findIndex((p) => p.id === me) + 1,
      speaking: microphone.speaking,
    });
  }
  onLangChange(render);
  stage.oneWayVideo.addEventListener('playing', render);

  /** The one-way banner: the mode and its delay, or why there is nothing to fall back to; and the Speak button's reason. */
  function renderOneWay(ended: boolean): void {
    const mode = ended ? 'live' : oneWay.mode;
    oneWayBanner.dataset['mode'] = mode;
    show(oneWayBanner, mode !== 'live');
    if (mode === 'one-way') oneWayBanner.textContent = t('classroom.oneWay', { n: oneWay.delaySeconds ?? '…' });
    else if (mode === 'no-fallback')
      oneWayBanner.textContent = t(
        oneWay.reason === 'notRecorded'
          ? 'classroom.noFallbackNotRecorded'
          : oneWay.reason === 'noHls'
            ? 'classroom.noFallbackNoHls'
            : 'classroom.noFallbackNotRunning',
      );
    // Taking the floor needs live media: say so where the floor's controls are.
    show(speak, mode !== 'live');
    show(speakReason, mode !== 'live');
  }

  window.addEventListener('pagehide', () => link.close());
  exposeDiagnostics({
    ...lessonDiagnostics('classroom', link, () => lesson, timings, media),
    onAir: () => microphone.speaking,
    reconnects: () => ({ drops, joins, banner: !banner.hidden }),
    cameraLayer: () => cameraLayer,
    link: () => ({ layer: linkLayer, notice: !weakLink.hidden }),
    videoSize: (which: MediaSource = 'camera') => stage.videoSize(which),
    oneWay: () => oneWay.diagnostics(),
  });
  render();
  return link;
}
