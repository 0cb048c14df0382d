import { readFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { publish } from '../kit/peers.js';
import type { RtcSender } from '../kit/rtcSender.js';
import { createLesson, startTestServer, type TestServer } from './support/lessoncast.js';
import { sleep, until } from './support/recording.js';
import { SyncSource, encodeSyncMedia, recordedBeeps, recordedFrames, type SyncMedia } from './support/recordingSync.js';
import type { RecordingManifest } from '../src/recording/manifest.js';

/** Lip-sync and placement must hold within this (the bound; broadcasters allow ±45 ms). */
const TOLERANCE = 0.02;
/** Connections of the reconnecting publisher (the issue asks for 10). */
const RECONNECTS = Number(process.env['RECORDING_SYNC_RECONNECTS'] ?? 10);

let s: TestServer;
t.before(async () => {
  s = await startTestServer({ recording: { segmentSeconds: 2 } });
});
t.teardown(() => s.close());

const recDir = (lessonId: string): string => path.join(s.server.config.recording.dir, lessonId);
const manifestOf = async (lessonId: string): Promise<RecordingManifest> =>
  JSON.parse(await readFile(path.join(recDir(lessonId), 'manifest.json'), 'utf8')) as RecordingManifest;
const manifestTrack = async (lessonId: string, id: string) =>
  (await manifestOf(lessonId).catch(() => null))?.tracks.find((x) => x.id === id);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x: number): string => `${(x * 1000).toFixed(1)} ms`;

interface Studio {
  lessonId: string;
  /** Publishes the source from the instructor's current connection. */
  publish(): Promise<RtcSender>;
  /** The instructor connects again (a new session replaces the old one and its media, as a rejoining studio does). */
  rejoin(): Promise<void>;
}

/** A lesson with one instructor publishing `source`, recorded; `play` runs while it is live. */
async function recordLesson(
  source: SyncSource,
  play: (studio: Studio) => Promise<void>,
): Promise<{ lessonId: string; manifest: RecordingManifest }> {
  const lessonId = await createLesson(s, { record: true, title: 'Sync' });
  let { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const clients = [teacher];
  await teacher.request('goLive', {});
  const senders: RtcSender[] = [];
  try {
    await play({
      lessonId,
      publish: async () => {
        const sender = await publish(teacher, joined!.routerRtpCapabilities, { sharedSource: source });
        source.attach(sender);
        senders.push(sender);
        return sender;
      },
      rejoin: async () => {
        ({ client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId));
        clients.push(teacher);
      },
    });
    await teacher.request('endLesson', {});
    await until('the recording to finish', () => !s.internals.recording.isRecording(lessonId), 20000);
  } finally {
    source.stop();
    for (const x of senders) await x.close();
    for (const c of clients) c.close();
  }
  return { lessonId, manifest: await manifestOf(lessonId) };
}

/** How far each recorded frame and beep sits from where the sender's clock puts it (seconds; + = late). */
async function errors(lessonId: string, manifest: RecordingManifest, source: SyncSource) {
  const origin = Date.parse(manifest.startedAt);
  const track = (id: string) => manifest.tracks.find((x) => x.id === id)!;
  const frames = (await recordedFrames(recDir(lessonId), track('camera'))).map((f) => ({
    ...f,
    error: f.t - (source.frameAt(f.n) - origin) / 1000,
  }));
  const beeps = (await recordedBeeps(recDir(lessonId), track('voice'))).map((b) => {
    const k = Math.round((b * 1000 + origin - source.beepAt(0)) / 1000);
    return { t: b, k, error: b - (source.beepAt(k) - origin) / 1000 };
  });
  return { frames, beeps };
}

/** The runs of a track as lesson-time intervals. */
function runIntervals(manifest: RecordingManifest, trackId: string): Array<{ index: number; from: number; to: number }> {
  const track = manifest.tracks.find((x) => x.id === trackId)!;
  return track.runs
    .map((r) => {
      const segs = track.segments.filter((x) => x.run === r.index);
      return segs.length ? { index: r.index, from: segs[0]!.startSeconds, to: segs.at(-1)!.startSeconds + segs.at(-1)!.duration } : null;
    })
    .filter((x): x is { index: number; from: number; to: number } => x !== null);
}

const media = new Map<number, SyncMedia>();
t.before(async () => {
  for (const fps of [30, 15]) media.set(fps, await encodeSyncMedia(s.dir, { fps, seconds: fps === 30 ? 75 : 20 }));
});

for (const fps of [30, 15]) {
  t.test(`A/V sync at ${fps} fps: picture and sound recorded where the sender's clock puts them`, async (t) => {
    const source = new SyncSource(media.get(fps)!);
    const { lessonId, manifest } = await recordLesson(source, async (studio) => {
      await studio.publish();
      await sleep(7000);
    });
    const { frames, beeps } = await errors(lessonId, manifest, source);
    t.ok(frames.length > fps * 3, `${frames.length} frames decoded`);
    t.ok(beeps.length >= 3, `${beeps.length} beeps found`);
    const video = mean(frames.map((f) => f.error));
    const audio = mean(beeps.map((b) => b.error));
    const spread = Math.max(...frames.map((f) => Math.abs(f.error - video)));
    t.comment(
      `${fps} fps: video placed ${ms(video)} from the sender's clock (each frame within ${ms(spread)} of that), audio ${ms(audio)}`,
    );
    t.ok(spread <= 0.005, `every frame at its own time: the largest departure from the run's offset is ${ms(spread)}`);
    t.ok(Math.abs(audio - video) <= TOLERANCE, `A/V offset ${ms(audio - video)} (sound after picture when positive), within ±20 ms`);
    t.ok(Math.abs(video) <= TOLERANCE, `the picture is placed ${ms(video)} from the sender's clock`);
    t.ok(Math.abs(audio) <= TOLERANCE, `the sound is placed ${ms(audio)} from the sender's clock`);
  });
}

t.test('a publisher that reconnects 10 times: every run placed by the sender clock, not by when its first packet arrived', async (t) => {
  const source = new SyncSource(media.get(30)!);
  const paced: number[] = [];
  const { lessonId, manifest } = await recordLesson(source, async (studio) => {
    const recorder = s.internals.recording.recorder(studio.lessonId)!;
    for (let i = 0; i < RECONNECTS; i++) {
      if (i > 0) await studio.rejoin();
      // A fresh connection's pacer drains the first keyframe late (browsers start at a low bitrate).
      const pace = 150 + Math.round(Math.random() * 300);
      paced.push(pace);
      source.paceNextKeyframe(pace);
      const producerId = (await studio.publish()).producerId('video');
      await until(
        `the camera run of connection ${i + 1} to stream (feeds: ${JSON.stringify(recorder.status().feeds)})`,
        () => recorder.status().feeds.some((f) => f.producerId === producerId && f.state === 'streaming'),
        30000,
        50,
      );
      await sleep(1000);
    }
  });
  const { frames, beeps } = await errors(lessonId, manifest, source);
  const cameraRuns = runIntervals(manifest, 'camera');
  const voiceRuns = runIntervals(manifest, 'voice');
  t.equal(cameraRuns.length, RECONNECTS, `${RECONNECTS} camera runs`);
  t.equal(voiceRuns.length, RECONNECTS, `${RECONNECTS} voice runs`);
  const worst = { video: 0, audio: 0, av: 0 };
  for (const [i, run] of cameraRuns.entries()) {
    const v = frames.filter((f) => f.t >= run.from && f.t < run.to).map((f) => f.error);
    const voice = voiceRuns[i]!;
    const a = beeps.filter((b) => b.t >= voice.from && b.t < voice.to).map((b) => b.error);
    const video = mean(v);
    t.ok(v.length > 10, `run ${run.index}: ${v.length} frames`);
    t.ok(
      Math.abs(video) <= TOLERANCE,
      `run ${run.index} (keyframe paced ${paced[i]} ms): picture placed ${ms(video)} from the sender's clock`,
    );
    worst.video = Math.max(worst.video, Math.abs(video));
    if (a.length) {
      const audio = mean(a);
      t.ok(Math.abs(audio) <= TOLERANCE, `run ${voice.index}: sound placed ${ms(audio)} from the sender's clock`);
      worst.audio = Math.max(worst.audio, Math.abs(audio));
      worst.av = Math.max(worst.av, Math.abs(audio - video));
    }
  }
  t.comment(`over ${RECONNECTS} connections: worst picture placement ${ms(worst.video)}, sound ${ms(worst.audio)}, A/V ${ms(worst.av)}`);
});

t.test('ffmpeg killed mid-segment: the restarted run carries on from where the published segments end, nothing lost', async (t) => {
  const source = new SyncSource(media.get(30)!);
  let killedAt = 0;
  const { lessonId, manifest } = await recordLesson(source, async (studio) => {
    await studio.publish();
    const recorder = s.internals.recording.recorder(studio.lessonId)!;
    const camera = () => manifestTrack(studio.lessonId, 'camera');
    // Kill both ffmpegs half-way through a segment, with a segment already published.
    await until('a published camera segment', async () => ((await camera())?.segments.length ?? 0) >= 1, 20000, 100);
    await sleep(1000);
    const pids = [recorder.ffmpegPid('camera'), recorder.ffmpegPid('voice')];
    killedAt = Date.now();
    for (const pid of pids) if (pid) process.kill(pid, 'SIGKILL');
    await until(
      'both restarted',
      () => ['camera', 'voice'].every((id) => recorder.ffmpegPid(id) && !pids.includes(recorder.ffmpegPid(id))),
      10000,
      20,
    );
    t.comment(`both ffmpegs running again ${Date.now() - killedAt} ms after the kill`);
    await sleep(4000);
  });
  const { frames, beeps } = await errors(lessonId, manifest, source);
  for (const id of ['camera', 'voice']) {
    const track = manifest.tracks.find((x) => x.id === id)!;
    t.same(
      track.runs.map((r) => r.endReason),
      ['ffmpeg exited (SIGKILL)', 'ended by the instructor'],
      `${id}: two runs`,
    );
    const first = track.segments.filter((x) => x.run === 1);
    const second = track.segments.filter((x) => x.run === 2);
    const gap = second[0]!.startSeconds - (first.at(-1)!.startSeconds + first.at(-1)!.duration);
    t.comment(`${id}: the restarted run begins ${ms(gap)} after the published segments of the killed one end`);
    t.ok(Math.abs(gap) < 0.001, `${id}: no gap and no overlap on the timeline (${ms(gap)})`);
  }
  const numbers = frames.map((f) => f.n);
  const missing = numbers.slice(1).reduce((n, x, i) => n + Math.max(0, x - numbers[i]! - 1), 0);
  const repeated = numbers.length - new Set(numbers).size;
  t.comment(`camera: ${frames.length} frames, ${missing} missing (${(missing / 30).toFixed(2)} s lost), ${repeated} repeated`);
  t.equal(missing, 0, 'not one frame lost');
  t.equal(repeated, 0, 'none recorded twice');
  t.ok(Math.max(...frames.map((f) => Math.abs(f.error))) <= TOLERANCE, 'every frame still where the sender clock puts it');
  // The runs' sound is laid on one timeline before the beeps are looked for, so a beep cut by the
  // restart point is found only if neither run lost a sample of it.
  const voice = manifest.tracks.find((x) => x.id === 'voice')!;
  const restartAt = voice.segments.find((x) => x.run === 2)!.startSeconds;
  const ks = beeps.map((b) => b.k);
  t.comment(`voice restarted at ${restartAt.toFixed(3)} s; beeps found at ${beeps.map((b) => b.t.toFixed(3)).join(', ')}`);
  t.same(
    ks,
    Array.from({ length: ks.at(-1)! - ks[0]! + 1 }, (_, i) => ks[0]! + i),
    `every beep from ${ks[0]} to ${ks.at(-1)} s is there (${ks.length} found)`,
  );
  t.ok(Math.max(...beeps.map((b) => Math.abs(b.error))) <= TOLERANCE, 'every beep still where the sender clock puts it');
  t.ok((await s.internals.recording.archive.verify(lessonId)).ok, 'hashes match');
});
