/**
 * Classroom: the lesson full screen (camera and board, switchable or side by
 * side), raise/lower the hand, speak while holding the floor (with an on-air
 * sign), and recover by itself when the network drops.
 */
import type { LessonView, MediaSource, ProducerView } from '../../../src/signalling/protocol.js';
import { takeCredentials } from '../lib/credentials.js';
import { micConstraints } from '../lib/devices.js';
import { byId, h, show, tryPlay } from '../lib/dom.js';
import { onLangChange, t, tx, type MessageKey } from '../lib/i18n.js';
import { LessonLink } from '../lib/link.js';
import { CurrentMedia, type ConsumerInfo } from '../lib/media.js';
import { Roster } from '../lib/roster.js';
import { SignalError } from '../lib/signal.js';
import { clearNotice, exposeDiagnostics, notice, showMissingToken, startPage } from '../lib/shell.js';
import { renderConnection } from '../lib/widgets.js';

startPage();

type Layout = 'camera' | 'board' | 'both';

const ui = {
  main: byId('main'),
  lessonTitle: byId('lesson-title'),
  schoolName: byId('school-name'),
  conn: byId('conn'),
  banner: byId('banner'),
  stage: byId('stage'),
  waiting: byId('waiting'),
  waitingText: byId('waiting-text'),
  camera: byId<HTMLVideoElement>('camera-video'),
  board: byId<HTMLVideoElement>('board-video'),
  onAir: byId('on-air'),
  hand: byId<HTMLButtonElement>('hand'),
  handStatus: byId('hand-status'),
  giveBack: byId<HTMLButtonElement>('give-back'),
  sound: byId<HTMLButtonElement>('sound'),
  fullscreen: byId<HTMLButtonElement>('fullscreen'),
  layoutButtons: Array.from(document.querySelectorAll<HTMLButtonElement>('[data-layout]')),
  remoteAudio: byId('remote-audio'),
};

const creds = takeCredentials('classroom');
if (!creds || !creds.lessonId) showMissingToken();
else void run(creds.token, creds.lessonId, creds.claims.sub, creds.claims.name);

async function run(token: string, lessonId: string, me: string, myName: string): Promise<void> {
  const link = new LessonLink(token, lessonId);
  const roster = new Roster(link);
  let lesson: LessonView | undefined;
  const media = new CurrentMedia();
  let micTrack: MediaStreamTrack | undefined;
  let layout: Layout = 'camera';
  let mediaTrouble = false;
  /** The simulcast layer of the camera the server forwards here (for diagnostics). */
  let cameraLayer: number | null = null;
  const videos = new Map<'camera' | 'screen', ConsumerInfo>();
  const timings: Record<string, number> = {};

  ui.schoolName.textContent = myName;

  // -- media --------------------------------------------------------------------

  async function receive(view: ProducerView): Promise<void> {
    if (view.participantId === me) return;
    const info = await media.with((m) => m.consume(view));
    if (!info || info.consumer.closed) return;
    if (info.kind === 'audio') {
      const audio = h('audio', { autoplay: true, 'data-producer': view.producerId, 'data-participant': view.participantId });
      audio.srcObject = new MediaStream([info.consumer.track]);
      ui.remoteAudio.append(audio);
      if (!(await tryPlay(audio))) show(ui.sound, true);
      return;
    }
    const slot = view.source === 'screen' ? 'screen' : 'camera';
    videos.set(slot, info);
    const el = slot === 'screen' ? ui.board : ui.camera;
    el.srcObject = new MediaStream([info.consumer.track]);
    void tryPlay(el);
    if (slot === 'camera' && !timings['firstFrameAt']) {
      timings['cameraConsumedAt'] ??= Date.now();
      watchFirstFrame(el);
    }
    if (slot === 'screen' && layout === 'camera') layout = 'both';
    render();
  }

  /** When the first picture shows (for the go-live → first-frame figure). */
  function watchFirstFrame(el: HTMLVideoElement): void {
    el.requestVideoFrameCallback(() => {
      timings['firstFrameAt'] ??= Date.now();
    });
  }

  function forget(info: ConsumerInfo): void {
    ui.remoteAudio.querySelector(`[data-producer="${CSS.escape(info.producerId)}"]`)?.remove();
    for (const [slot, v] of videos) {
      if (v.producerId !== info.producerId) continue;
      videos.delete(slot);
      (slot === 'screen' ? ui.board : ui.camera).srcObject = null;
      if (slot === 'screen' && layout !== 'camera') layout = 'camera';
    }
    render();
  }

  /** Speaks only while holding the floor: the microphone is opened on grant and closed on revoke. */
  async function syncMicrophone(): Promise<void> {
    const holding = Boolean(roster.get(me)?.hasFloor) && lesson?.state === 'live';
    if (holding && media.current && !media.current.isPublishing('microphone')) {
      try {
        micTrack ??= (await navigator.mediaDevices.getUserMedia({ audio: micConstraints(undefined) })).getAudioTracks()[0];
        if (micTrack && roster.get(me)?.hasFloor) await media.with((m) => m.publish('microphone', micTrack!));
      } catch (e) {
        notice('error', 'classroom.micFailed', {}, (e as Error).message);
      }
    } else if (!holding) {
      await media.current?.unpublish('microphone');
      micTrack?.stop();
      micTrack = undefined;
    }
    render();
  }

  // -- lesson link ----------------------------------------------------------------

  let joins = 0;
  let drops = 0;
  link.on('down', () => drops++);
  link.on('joined', (info, c) => {
    joins++;
    lesson = info.lesson;
    roster.reset(info);
    videos.clear();
    ui.remoteAudio.replaceChildren();
    // Set up synchronously: producers announced while this runs are queued on the new session.
    const ready = media.replace(c, info.routerRtpCapabilities);
    void (async () => {
      const session = await ready;
      session.on('consumerClosed', forget);
      session.on('layersChanged', (ci, spatial) => {
        if (ci.source === 'camera') cameraLayer = spatial;
      });
      session.on('transportState', (_dir, state) => {
        mediaTrouble = state === 'disconnected' || state === 'failed';
        render();
      });
      micTrack?.stop();
      micTrack = undefined;
      ui.main.setAttribute('aria-busy', 'false');
      clearNotice();
      await Promise.all(info.producers.map((p) => receive(p).catch(() => undefined)));
      await syncMicrophone();
      render();
    })().catch((e: unknown) => notice('error', 'common.failed', {}, String(e)));
  });
  link.on('newProducer', (p) => {
    if (p.source === 'camera') timings['cameraAnnouncedAt'] ??= Date.now();
    void receive(p).catch(() => undefined);
  });
  link.on('state', (s) => {
    renderConnection(ui.conn, s);
    render();
  });
  link.on('failed', (e) => {
    const key: MessageKey = e.code === 'REPLACED' ? 'common.replaced' : e.code === 'LESSON_ENDED' ? 'classroom.ended' : e.code === 'LESSON_NOT_FOUND' ? 'classroom.notFound' : 'common.refused';
    notice(e.code === 'LESSON_ENDED' ? 'info' : 'error', key, {}, e.code === 'LESSON_ENDED' ? undefined : e.message);
    render();
  });
  link.on('lessonStarted', ({ lesson: l }) => {
    lesson = l;
    render();
  });
  link.on('lessonEnded', ({ lesson: l }) => {
    lesson = l;
    void media.close();
    micTrack?.stop();
    micTrack = undefined;
    videos.clear();
    ui.camera.srcObject = null;
    ui.board.srcObject = null;
    ui.remoteAudio.replaceChildren();
    render();
  });
  link.on('floorGranted', ({ participantId }) => participantId === me && void syncMicrophone());
  link.on('floorRevoked', ({ participantId }) => participantId === me && void syncMicrophone());
  roster.on('change', render);
  link.start();
  renderConnection(ui.conn, link.state);

  // -- controls ---------------------------------------------------------------------

  function client() {
    if (!link.client?.open) throw new SignalError('DISCONNECTED', 'not connected');
    return link.client;
  }

  ui.hand.addEventListener('click', () => {
    const raised = roster.get(me)?.handRaisedAt != null;
    ui.hand.disabled = true;
    (raised ? client().request('lowerHand', {}) : client().request('raiseHand', {}))
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message))
      .finally(render);
  });
  ui.giveBack.addEventListener('click', () => {
    client()
      .request('revokeFloor', { participantId: me })
      .catch((e: unknown) => notice('error', 'common.failed', {}, (e as Error).message));
  });
  ui.sound.addEventListener('click', () => {
    void Promise.all(Array.from(ui.remoteAudio.querySelectorAll('audio')).map((a) => tryPlay(a))).then((ok) => show(ui.sound, ok.includes(false)));
  });
  for (const b of ui.layoutButtons) {
    b.addEventListener('click', () => {
      layout = b.dataset['layout'] as Layout;
      render();
    });
  }
  ui.fullscreen.addEventListener('click', () => {
    if (document.fullscreenElement) void document.exitFullscreen();
    else void ui.main.requestFullscreen().catch(() => undefined);
  });
  document.addEventListener('fullscreenchange', () => tx(ui.fullscreen, document.fullscreenElement ? 'classroom.exitFullscreen' : 'classroom.fullscreen'));
  // Keyboard on a smart board: H raises/lowers the hand, F toggles full screen.
  document.addEventListener('keydown', (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'h' || ev.key === 'H') ui.hand.click();
    else if (ev.key === 'f' || ev.key === 'F') ui.fullscreen.click();
  });

  // -- rendering ----------------------------------------------------------------------

  function render(): void {
    const state = lesson?.state;
    const meNow = roster.get(me);
    const hasBoard = videos.has('screen');
    const hasCamera = videos.has('camera');
    const linkDown = link.state === 'reconnecting';
    ui.lessonTitle.textContent = lesson?.title ?? '';
    show(ui.banner, (linkDown || mediaTrouble) && state !== 'ended');

    const effective: Layout = !hasBoard ? 'camera' : !hasCamera ? 'board' : layout;
    ui.stage.dataset['layout'] = effective;
    show(ui.camera, hasCamera && effective !== 'board');
    show(ui.board, hasBoard && effective !== 'camera');
    for (const b of ui.layoutButtons) {
      const l = b.dataset['layout'] as Layout;
      b.disabled = l !== 'camera' && !hasBoard;
      b.setAttribute('aria-pressed', String(l === effective));
    }

    const message: MessageKey | undefined =
      link.state === 'connecting' ? 'classroom.connecting'
      : state === 'ended' || link.state === 'ended' ? 'classroom.ended'
      : link.state === 'failed' ? 'classroom.cannotJoin'
      : state === 'created' ? 'classroom.waiting'
      : state === 'live' && !hasCamera && !hasBoard ? 'classroom.noVideo'
      : undefined;
    show(ui.waiting, message !== undefined);
    if (message) tx(ui.waitingText, message);

    const live = state === 'live' && link.state === 'joined';
    const raised = meNow?.handRaisedAt != null;
    const onFloor = Boolean(meNow?.hasFloor) && live;
    ui.hand.disabled = !live || onFloor;
    ui.hand.setAttribute('aria-pressed', String(raised));
    tx(ui.hand, raised ? 'classroom.lowerHand' : 'classroom.raiseHand');
    ui.hand.classList.toggle('raised', raised);
    const position = roster.handQueue().findIndex((p) => p.id === me);
    ui.handStatus.textContent = raised ? t('classroom.handQueued', { n: position + 1 }) : '';
    show(ui.onAir, onFloor && Boolean(media.current?.isPublishing('microphone')));
    show(ui.giveBack, onFloor);
  }
  onLangChange(render);

  window.addEventListener('pagehide', () => link.close());
  exposeDiagnostics({
    page: 'classroom',
    linkState: () => link.state,
    lessonState: () => lesson?.state,
    timings: () => ({ ...timings }),
    onAir: () => Boolean(media.current?.isPublishing('microphone')),
    reconnects: () => ({ drops, joins, banner: !ui.banner.hidden }),
    cameraLayer: () => cameraLayer,
    inboundStats: () => media.current?.inboundStats() ?? [],
    videoSize: (which: MediaSource = 'camera') => {
      const el = which === 'screen' ? ui.board : ui.camera;
      return { width: el.videoWidth, height: el.videoHeight, currentTime: el.currentTime };
    },
  });
  render();
}
