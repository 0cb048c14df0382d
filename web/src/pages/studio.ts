/**
 * Instructor studio: pick camera and microphone (with preview), go live,
 * share a screen or smart board, see schools and their reception, run the
 * raise-hand queue and the floor, and end the lesson.
 */
import type { LessonView, ProducerView, RecordingStatus } from '../../../src/domain/index.js';
import { takeCredentials } from '../lib/credentials.js';
import { byId } from '../lib/dom.js';
import { onLangChange } from '../lib/i18n.js';
import { LessonLink } from '../lib/link.js';
import { CurrentMedia } from '../lib/media.js';
import { Roster } from '../lib/roster.js';
import { clearNotice, exposeDiagnostics, notice, showMissingToken, startPage } from '../lib/shell.js';
import { renderConnection } from '../lib/widgets.js';
import { lessonDiagnostics } from '../views/lessonDiagnostics.js';
import { RemoteAudio } from '../views/remoteAudio.js';
import { StudioDevices } from './studio/devices.js';
import { FloorPanel, type FloorAction } from './studio/floorPanel.js';
import { LessonBar } from './studio/lessonBar.js';
import { SchoolList } from './studio/schoolList.js';
import { ScreenShare } from './studio/screenShare.js';

startPage();

const creds = takeCredentials('studio');
if (!creds || !creds.lessonId) showMissingToken();
else void run(creds.token, creds.lessonId, creds.claims.sub);

async function run(token: string, lessonId: string, me: string): Promise<void> {
  const main = byId('main');
  const conn = byId('conn');
  const link = new LessonLink(token, lessonId);
  const roster = new Roster(link);
  const media = new CurrentMedia();
  const voices = new RemoteAudio(byId('remote-audio'));
  let lesson: LessonView | undefined;
  /** What the recorder says (pushed by the server): the badge shows it, faults included. */
  let recording: RecordingStatus = { enabled: false, state: 'stopped', at: null };
  const timings: Record<string, number> = {};

  const devices = new StudioDevices(media);
  const screen = new ScreenShare(media, () => lesson?.state === 'live', render);
  const floor = new FloorPanel(roster, (action, id) => void act(action, id));
  const schools = new SchoolList(roster);
  const bar = new LessonBar({ goLive, end: () => void endLesson() });
  await devices.start();

  async function publishAll(): Promise<void> {
    await media.with(async (m) => {
      if (devices.camera) await m.publish('camera', devices.camera);
      if (devices.microphone) await m.publish('microphone', devices.microphone);
      if (screen.track) await m.publish('screen', screen.track);
    });
  }

  async function goLive(): Promise<void> {
    try {
      timings['goLiveClickedAt'] = Date.now();
      lesson = (await link.connected().request('goLive', {})).lesson;
      timings['liveAt'] = Date.now();
      await publishAll();
      timings['publishedAt'] = Date.now();
    } catch (e) {
      notice('error', 'studio.goLiveFailed', {}, (e as Error).message);
    }
    render();
  }

  async function endLesson(): Promise<void> {
    try {
      lesson = (await link.connected().request('endLesson', {})).lesson;
      render();
    } catch (e) {
      notice('error', 'common.failed', {}, String(e));
    }
  }

  async function act(method: FloorAction, participantId: string): Promise<void> {
    try {
      await link.connected().request(method, { participantId });
    } catch (e) {
      notice('error', 'common.failed', {}, (e as Error).message);
    }
  }

  /** The instructor hears a classroom that holds the floor. */
  async function listen(view: ProducerView): Promise<void> {
    if (view.participantId === me || view.kind !== 'audio') return;
    const info = await media.with((m) => m.consume(view));
    if (!info || info.consumer.closed) return;
    if (!(await voices.play(info))) notice('warn', 'studio.clickForSound');
  }

  link.on('joined', (info, c) => {
    lesson = info.lesson;
    recording = info.recording;
    roster.reset(info);
    schools.setLinks(info.links ?? [], true);
    voices.clear();
    const ready = media.replace(c, info);
    void (async () => {
      const session = await ready;
      session.on('consumerClosed', (ci) => voices.remove(ci.producerId));
      session.on('transportState', (_dir, state) => {
        if (state === 'failed' || state === 'disconnected') notice('warn', 'common.mediaTrouble');
        else if (state === 'connected') clearNotice();
      });
      for (const p of info.producers) void listen(p).catch(() => undefined);
      // Back after a drop while live: the server set media up afresh, so publish again.
      if (info.lesson.state === 'live') await publishAll();
      main.setAttribute('aria-busy', 'false');
      render();
    })().catch((e: unknown) => notice('error', 'common.failed', {}, String(e)));
  });
  link.on('state', (s) => renderConnection(conn, s));
  // Browsers may refuse to play sound before the user has interacted with the page: any click retries.
  document.addEventListener('click', () => void voices.resume());
  link.on('failed', (e) =>
    notice(
      'error',
      e.code === 'REPLACED' ? 'common.replaced' : e.code === 'LESSON_ENDED' ? 'studio.ended' : 'common.refused',
      {},
      e.message,
    ),
  );
  link.on('newProducer', (p) => void listen(p).catch(() => undefined));
  link.on('linkChanged', (l) => schools.setLinks([l]));
  link.on('recordingChanged', (r) => {
    recording = r;
    render();
  });
  link.on('lessonStarted', ({ lesson: started }) => {
    lesson = started;
    render();
  });
  link.on('lessonEnded', ({ lesson: ended }) => {
    lesson = ended;
    void media.close();
    // The lesson is over: release the camera, microphone and screen (their lights go off).
    devices.release();
    screen.release();
    notice('info', 'studio.ended');
    render();
  });
  roster.on('change', render);
  link.start();
  renderConnection(conn, link.state);

  function render(): void {
    const live = lesson?.state === 'live';
    bar.render(lesson, recording, link.state === 'joined');
    screen.render(live);
    devices.render();
    floor.render();
    schools.render();
    floor.tick();
  }

  setInterval(() => {
    bar.tick(recording);
    floor.tick();
  }, 1000);
  setInterval(() => {
    if (lesson?.state === 'live') void schools.pollQuality(token, lessonId);
  }, 5000);
  onLangChange(render);

  window.addEventListener('pagehide', () => link.close());
  exposeDiagnostics({
    ...lessonDiagnostics('studio', link, () => lesson, timings, media),
    publishing: () => (['camera', 'microphone', 'screen'] as const).filter((s) => media.current?.isPublishing(s)),
    audioOnlySchools: () => schools.audioOnlyCount(),
  });
  render();
}
