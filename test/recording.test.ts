import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, startTestServer, type TestServer } from './support/lessoncast.js';
import { Watcher, publish } from '../kit/peers.js';
import { playlistSegments, probe, readText, sleep, until } from './support/recording.js';
import type { RecordingFault } from '../src/recording/service.js';
import type { RecordingManifest } from '../src/recording/manifest.js';

const SEGMENT = 4;
let s: TestServer;
const faults: RecordingFault[] = [];
t.before(async () => {
  s = await startTestServer({ recording: { segmentSeconds: SEGMENT } });
  s.internals.recording.on('fault', (f) => faults.push(f));
});
t.teardown(() => s.close());

const recDir = (lessonId: string): string => path.join(s.server.config.recording.dir, lessonId);
const recorderStatus = (lessonId: string): string => s.internals.registry.get(lessonId).recording.state;
const manifestOf = async (lessonId: string): Promise<RecordingManifest> =>
  JSON.parse(await readFile(path.join(recDir(lessonId), 'manifest.json'), 'utf8')) as RecordingManifest;

t.test('a lesson is recorded while live: camera and voice in HLS, classroom question, manifest, archive REST, MP4 download', async (t) => {
  const lessonId = await createLesson(s, { record: true, title: 'Levers and pulleys', schools: ['school-1'] });
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  const liveAt = Date.now();
  await teacher.request('goLive', {});
  const sender = await publish(teacher, joined!.routerRtpCapabilities);
  const publishedAt = Date.now();
  t.teardown(async () => {
    await sender.close();
    teacher.close();
    school.close();
  });

  const camera = path.join(recDir(lessonId), 'camera.m3u8');
  await until('the first camera segment', async () => existsSync(camera) && playlistSegments(await readText(camera)).length > 0, 20000, 50);
  t.comment(`first playable camera segment ${Date.now() - liveAt} ms after goLive (segments of ${SEGMENT} s)`);
  t.equal(joined!.recording.state, 'stopped', 'before going live, join answers: not recording');
  t.equal(
    (await school.waitFor('recordingChanged', (r) => r.state === 'recording')).state,
    'recording',
    'participants are told recording started',
  );
  const late = await SignalClient.join(s, 'monitor', 'control-room', lessonId);
  t.equal(late.joined!.recording.state, 'recording', 'a later join is answered with the recording state');
  late.client.close();

  // A classroom asks a question while holding the floor.
  await school.request('raiseHand', {});
  await teacher.waitFor('handRaised');
  await teacher.request('grantFloor', { participantId: 'school-1' });
  const voice = await publish(school, joined!.routerRtpCapabilities, { audio: true, video: false });
  const recorder = s.internals.recording.recorder(lessonId)!;
  await until('the classroom voice to be recorded', () =>
    recorder.status().feeds.some((f) => f.trackId === 'classrooms' && f.state === 'streaming'),
  );
  const questionStart = Date.now();
  await sleep(4000);
  await teacher.request('revokeFloor', { participantId: 'school-1' });
  const questionSeconds = (Date.now() - questionStart) / 1000;
  await voice.close();
  await sleep(Math.max(0, 15000 - (Date.now() - publishedAt)));
  await teacher.request('endLesson', {});
  const lessonSeconds = (Date.now() - publishedAt) / 1000;
  await until('the recording to finish', () => !s.internals.recording.isRecording(lessonId), 15000);

  const cam = await readText(camera);
  t.match(cam, /#EXT-X-ENDLIST\n$/, 'camera playlist closed');
  t.match(cam, /#EXT-X-PROGRAM-DATE-TIME:/, 'with wall-clock times');
  const video = await probe(camera);
  t.same(
    video.streams.map((x) => x.codec_name),
    ['h264'],
    'camera: H264, copied',
  );
  t.ok(video.firstVideoIsKey, 'the first segment starts with a keyframe');
  const near = (value: number | undefined, expected: number): boolean => value !== undefined && Math.abs(value - expected) <= SEGMENT;
  t.ok(
    near(video.durations['video'], lessonSeconds),
    `camera: ${video.durations['video']?.toFixed(2)} s for a ${lessonSeconds.toFixed(1)} s lesson (±1 segment)`,
  );
  const audio = await probe(path.join(recDir(lessonId), 'voice.m3u8'));
  t.same(
    audio.streams.map((x) => x.codec_name),
    ['opus'],
    'voice: Opus, copied',
  );
  t.ok(
    near(audio.durations['audio'], lessonSeconds),
    `voice: ${audio.durations['audio']?.toFixed(2)} s for a ${lessonSeconds.toFixed(1)} s lesson (±1 segment)`,
  );
  const question = await probe(path.join(recDir(lessonId), 'classrooms.m3u8'));
  t.ok(
    near(question.durations['audio'], questionSeconds),
    `the classroom's question: ${question.durations['audio']?.toFixed(2)} s of ${questionSeconds.toFixed(1)} s`,
  );
  const master = await readText(path.join(recDir(lessonId), 'index.m3u8'));
  t.match(master, /TYPE=AUDIO.*NAME="Instructor".*DEFAULT=YES.*URI="voice.m3u8"/, 'master: instructor voice is the default audio');
  t.match(master, /TYPE=AUDIO.*NAME="Classrooms".*DEFAULT=NO.*URI="classrooms.m3u8"/, 'master: classroom voices as a second rendition');
  t.match(master, /CODECS="avc1\.[0-9a-f]{6},opus",AUDIO="audio"\ncamera.m3u8/, 'master: camera with its audio group');

  const m = await manifestOf(lessonId);
  t.equal(m.state, 'complete');
  t.same(m.tracks.map((x) => x.id).sort(), ['camera', 'classrooms', 'voice']);
  t.ok(
    m.tracks.every((x) => x.segments.every((seg) => /^[0-9a-f]{64}$/.test(seg.sha256) && seg.size > 0 && seg.duration > 0)),
    'every segment has duration, size and SHA-256',
  );
  t.ok(m.tracks.find((x) => x.id === 'classrooms')!.runs[0]!.participantId === 'school-1', 'the question is attributed to its school');
  t.ok(
    m.attendance.some((a) => a.participantId === 'school-1' && a.intervals.length === 1 && a.intervals[0]!.leftAt),
    'attendance lists the school with join and leave',
  );
  for (const type of ['handRaised', 'floorGranted', 'floorRevoked'])
    t.ok(
      m.events.some((e) => e.type === type && e.participantId === 'school-1'),
      `event log has ${type}`,
    );
  const firstSegmentOf = (id: string): number => m.tracks.find((x) => x.id === id)!.segments[0]!.startSeconds;
  t.ok(
    Math.abs(firstSegmentOf('camera') - firstSegmentOf('voice')) < 1.5,
    `camera and voice start together on the lesson timeline (${firstSegmentOf('camera')} s, ${firstSegmentOf('voice')} s)`,
  );
  t.same(faults, [], 'no recording faults');

  // -- the archive over REST ------------------------------------------------
  const api = `${s.url}/api/recordings`;
  const archivist = { authorization: `Bearer ${await s.token('archivist', 'archivist-1')}` };
  const admin = { authorization: `Bearer ${await s.token('admin', 'admin-1')}` };
  t.equal((await fetch(api)).status, 401, 'no token: 401');
  t.equal(
    (await fetch(api, { headers: { authorization: `Bearer ${await s.token('classroom', 'school-1')}` } })).status,
    403,
    'a classroom may not browse the archive',
  );
  const ids = async (query: string): Promise<string[]> =>
    ((await (await fetch(`${api}?${query}`, { headers: archivist })).json()) as { recordings: Array<{ id: string }> }).recordings.map(
      (x) => x.id,
    );
  t.ok((await ids('')).includes(lessonId), 'listed');
  for (const q of [
    'school=school-1',
    'subject=Physics',
    'q=PULLEYS',
    'instructor=teacher-1',
    `from=${new Date(Date.now() - 3600_000).toISOString()}`,
    `to=${new Date().toISOString().slice(0, 10)}`,
  ]) {
    t.ok((await ids(q)).includes(lessonId), `found by ${q}`);
  }
  for (const q of ['school=school-9', 'q=chemistry', `from=${new Date(Date.now() + 86_400_000).toISOString().slice(0, 10)}`])
    t.notOk((await ids(q)).includes(lessonId), `not found by ${q}`);
  t.equal((await fetch(`${api}?limit=abc`, { headers: archivist })).status, 400, 'bad query: 400');

  const details = (await (await fetch(`${api}/${lessonId}`, { headers: archivist })).json()) as {
    manifest: RecordingManifest;
    recording: { tracks: unknown[] };
  };
  t.equal(details.manifest.lessonId, lessonId, 'details carry the manifest');
  t.equal((await fetch(`${api}/not-a-lesson`, { headers: archivist })).status, 400, 'malformed id: 400');
  t.equal(
    (await fetch(`${api}/${lessonId.replace(/.$/, lessonId.endsWith('0') ? '1' : '0')}`, { headers: archivist })).status,
    404,
    'unknown id: 404',
  );
  for (const evil of ['..%2F..%2Fsecret', 'camera%2F..%2F..%2Fmanifest.json', '.r001.m3u8', 'camera/.r001.m3u8', 'manifest.json']) {
    t.ok(
      [400, 404].includes((await fetch(`${api}/${lessonId}/files/${evil}`, { headers: archivist })).status),
      `no way out of the recording: ${evil}`,
    );
  }

  const segUri = m.tracks.find((x) => x.id === 'camera')!.segments[0]!.uri;
  const whole = await readFile(path.join(recDir(lessonId), segUri));
  const ranged = await fetch(`${api}/${lessonId}/files/${segUri}`, { headers: { ...archivist, range: 'bytes=100-1099' } });
  t.equal(ranged.status, 206, 'range request: 206');
  t.equal(ranged.headers.get('content-range'), `bytes 100-1099/${whole.length}`);
  t.same(Buffer.from(await ranged.arrayBuffer()), whole.subarray(100, 1100), 'the right bytes');
  t.equal(
    (await fetch(`${api}/${lessonId}/files/${segUri}`, { headers: { ...archivist, range: `bytes=${whole.length + 10}-` } })).status,
    416,
    'unsatisfiable range: 416',
  );
  const playlist = await fetch(`${api}/${lessonId}/files/camera.m3u8`, { headers: archivist });
  t.equal(playlist.headers.get('content-type'), 'application/vnd.apple.mpegurl');

  const { access } = (await (await fetch(`${api}/${lessonId}/access`, { method: 'POST', headers: archivist })).json()) as {
    access: string;
  };
  const linked = await fetch(`${api}/${lessonId}/files/index.m3u8?access=${access}`);
  t.equal(linked.status, 200, 'a short-lived ?access= link opens files');
  t.match(
    await linked.text(),
    new RegExp(`URI="voice.m3u8\\?access=${access}"[\\s\\S]*\ncamera.m3u8\\?access=${access}\n`),
    'and the playlist passes the link on to what it lists',
  );
  t.equal((await fetch(`${api}/${lessonId}/files/${segUri}?access=${access}`)).status, 200, 'segments open with the link too');
  t.equal((await fetch(`${api}/${lessonId}/files/index.m3u8?access=nonsense`)).status, 401, 'a bad link does not');
  t.equal(
    (await fetch(`${api}/${lessonId}`, { method: 'DELETE', headers: { authorization: `Bearer ${access}` } })).status,
    401,
    'and the link is no bearer token: it cannot delete',
  );

  const download = await fetch(`${api}/${lessonId}/download.mp4?access=${access}`);
  t.equal(download.status, 200);
  t.equal(download.headers.get('x-lessoncast-audio'), 'mixed', 'with classroom voices the download mixes the audio');
  const mp4 = path.join(s.dir, 'lesson.mp4');
  await writeFile(mp4, Buffer.from(await download.arrayBuffer()));
  const probed = await probe(mp4);
  t.same(
    probed.streams.map((x) => `${x.codec_type}:${x.codec_name}`),
    ['video:h264', 'audio:aac'],
    'MP4: copied H264 video and the mixed voices',
  );
  t.ok(near(probed.durations['video'], lessonSeconds), `MP4 video lasts ${probed.durations['video']?.toFixed(2)} s`);
  const tracks = await fetch(`${api}/${lessonId}/download.mp4?audio=tracks`, { headers: archivist });
  await writeFile(mp4, Buffer.from(await tracks.arrayBuffer()));
  t.same(
    (await probe(mp4)).streams.map((x) => `${x.codec_type}:${x.codec_name}`),
    ['video:h264', 'audio:opus', 'audio:opus'],
    '?audio=tracks: every track copied, nothing re-encoded',
  );

  const verified = (await (await fetch(`${api}/${lessonId}/verify`, { method: 'POST', headers: archivist })).json()) as {
    ok: boolean;
    checkedFiles: number;
  };
  t.ok(verified.ok, `verify: ${verified.checkedFiles} files match the manifest`);
  const segPath = path.join(recDir(lessonId), segUri);
  const tampered = Buffer.from(whole);
  tampered[500] = tampered[500]! ^ 0xff;
  await writeFile(segPath, tampered);
  const broken = (await (await fetch(`${api}/${lessonId}/verify`, { method: 'POST', headers: archivist })).json()) as {
    ok: boolean;
    mismatches: Array<{ uri: string; problem: string }>;
  };
  t.same(
    broken.mismatches.map((x) => [x.uri, x.problem]),
    [[segUri, 'sha256']],
    'a changed segment is reported',
  );
  await writeFile(segPath, whole);

  t.equal(
    (
      await fetch(`${api}/${lessonId}/pin`, {
        method: 'POST',
        headers: { ...archivist, 'content-type': 'application/json' },
        body: JSON.stringify({ pinned: true }),
      })
    ).status,
    200,
    'an archivist pins',
  );
  t.equal(
    (
      await fetch(`${api}/${lessonId}/pin`, {
        method: 'POST',
        headers: { ...archivist, 'content-type': 'application/json' },
        body: JSON.stringify({ pinned: false }),
      })
    ).status,
    403,
    'but may not unpin',
  );
  t.equal((await fetch(`${api}/${lessonId}`, { method: 'DELETE', headers: archivist })).status, 403, 'nor delete');
  t.equal((await fetch(`${api}/${lessonId}?reason=test`, { method: 'DELETE', headers: admin })).status, 204, 'an admin deletes');
  t.equal((await fetch(`${api}/${lessonId}`, { headers: archivist })).status, 404, 'gone');
  const audit = (await readText(path.join(s.server.config.recording.dir, 'audit.log')))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { action: string; recordingId: string; by: { id: string } });
  t.ok(
    audit.some((a) => a.action === 'delete' && a.recordingId === lessonId && a.by.id === 'admin-1'),
    'the deletion is in the audit log',
  );
});

t.test('ffmpeg killed mid-lesson is restarted with a discontinuity; a re-created producer continues the same recording', async (t) => {
  const lessonId = await createLesson(s, { record: true, title: 'Optics' });
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  let sender = await publish(teacher, joined!.routerRtpCapabilities);
  t.teardown(async () => {
    await sender.close();
    teacher.close();
  });
  const recorder = s.internals.recording.recorder(lessonId)!;
  const camera = path.join(recDir(lessonId), 'camera.m3u8');
  await until('two camera segments', async () => existsSync(camera) && playlistSegments(await readText(camera)).length >= 2, 30000);
  const before = playlistSegments(await readText(camera));
  const hashesBefore = new Map(
    await Promise.all(before.map(async (uri) => [uri, (await readFile(path.join(recDir(lessonId), uri))).toString('base64')] as const)),
  );

  // ffmpeg dies.
  const pid = recorder.ffmpegPid('camera')!;
  t.ok(pid, `camera ffmpeg runs (pid ${pid})`);
  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  const restartedPid = await until(
    'a new camera ffmpeg',
    () => {
      const p = recorder.ffmpegPid('camera');
      return p && p !== pid ? p : null;
    },
    15000,
    50,
  );
  t.comment(`ffmpeg restarted ${Date.now() - killedAt} ms after it was killed`);
  t.ok(restartedPid !== pid, 'restarted');
  await until('the fault event', () => faults.find((f) => f.lessonId === lessonId && f.trackId === 'camera' && f.kind === 'ffmpeg'));
  await until('segments of the second run', async () => (await readText(camera)).includes('camera/r002-'), 20000);
  // The studio's badge follows the recorder: fault while ffmpeg is down, recording again once the new run produces.
  const badge = (): Array<{ state: string; recovering?: boolean }> =>
    teacher.notifications
      .filter((n) => n.event === 'recordingChanged')
      .map((n) => n.data as { state: string; recovering?: boolean })
      .map((r) => ({ state: r.state, ...(r.recovering === undefined ? {} : { recovering: r.recovering }) }));
  await until('the badge to say recording again', () => badge().at(-1)?.state === 'recording' && badge().length > 2, 10000, 50);
  t.same(
    badge(),
    [{ state: 'recording' }, { state: 'fault', recovering: true }, { state: 'recording' }],
    'recording, fault (recovering), recording',
  );
  t.equal(recorderStatus(lessonId), 'recording', 'the lesson says recording');
  const told = teacher.notifications.filter((n) => n.event === 'recordingChanged').map((n) => Date.parse((n.data as { at: string }).at));
  t.comment(`badge: fault ${told[1]! - killedAt} ms after the kill, recording again ${told[2]! - killedAt} ms after it`);

  // The instructor's camera and microphone are closed and published anew (camera switched, reconnect).
  await teacher.request('closeProducer', { producerId: sender.producerId('video') });
  await teacher.request('closeProducer', { producerId: sender.producerId('audio') });
  await sender.close();
  await sleep(500);
  sender = await publish(teacher, joined!.routerRtpCapabilities);
  await until('segments of the third run', async () => (await readText(camera)).includes('camera/r003-'), 20000);
  await teacher.request('endLesson', {});
  await until('the recording to finish', () => !s.internals.recording.isRecording(lessonId), 15000);
  t.same(
    badge(),
    [{ state: 'recording' }, { state: 'fault', recovering: true }, { state: 'recording' }, { state: 'stopped' }],
    'a new producer is no fault; the end of the lesson stops the recording',
  );
  const order = teacher.notifications.map((n) => n.event).filter((e) => e === 'recordingChanged' || e === 'lessonEnded');
  t.equal(order.at(-1), 'lessonEnded', 'stopped is told before lessonEnded');

  const text = await readText(camera);
  const after = playlistSegments(text);
  t.same(after.slice(0, before.length), before, 'every segment listed before the crash is still listed, in place');
  for (const [uri, content] of hashesBefore)
    t.equal((await readFile(path.join(recDir(lessonId), uri))).toString('base64'), content, `${uri} unchanged`);
  t.equal(text.match(/#EXT-X-DISCONTINUITY/g)?.length, 2, 'two discontinuities (restart, new producer)');
  t.equal(text.match(/#EXT-X-MAP:/g)?.length, 3, 'each run has its init segment');
  const m = await manifestOf(lessonId);
  const cam = m.tracks.find((x) => x.id === 'camera')!;
  t.same(
    cam.runs.map((r) => r.endReason),
    ['ffmpeg exited (SIGKILL)', 'producer closed', 'ended by the instructor'],
    'run end reasons',
  );
  t.equal(new Set(cam.runs.map((r) => r.producerId)).size, 2, 'two producers, one track');
  t.same(m.tracks.map((x) => x.id).sort(), ['camera', 'voice'], 'no extra tracks for the new producers');
  t.ok(
    cam.segments.every((seg, i) => i === 0 || seg.startSeconds >= cam.segments[i - 1]!.startSeconds + cam.segments[i - 1]!.duration - 0.05),
    'the lesson timeline only moves forward',
  );
  t.ok(
    m.events.some((e) => e.type === 'fault' && e.trackId === 'camera'),
    'the fault is in the event log',
  );
  t.ok((await s.internals.recording.archive.verify(lessonId)).ok, 'hashes match');
  const video = await probe(camera);
  t.ok((video.packets['video'] ?? 0) > 100, `the whole playlist decodes as one (${video.packets['video']} video packets)`);
});

t.test('an unwritable recording folder: a fault event, and the live lesson goes on', async (t) => {
  const lessonId = await createLesson(s, { record: true, title: 'Storage trouble' });
  // A file where the lesson's folder should go: mkdir fails, as on a read-only or broken mount (root ignores modes).
  await writeFile(recDir(lessonId), 'in the way');
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  const sender = await publish(teacher, joined!.routerRtpCapabilities);
  const { client: school, joined: sj } = await SignalClient.join(s, 'classroom', 'school-3', lessonId);
  const watcher = await Watcher.start(school, sj!.producers);
  t.teardown(async () => {
    await watcher.close();
    await sender.close();
    school.close();
    teacher.close();
  });
  const fault = await until('a storage fault', () => faults.find((f) => f.lessonId === lessonId));
  t.equal(fault.kind, 'storage');
  t.match(fault.code, /^E[A-Z]+$/, `with the system's code (${fault.code})`);
  t.match(fault.message, new RegExp(lessonId), 'naming the folder');
  t.equal(fault.recovering, true, 'the recorder keeps retrying');
  await watcher.firstPacket(sender.producerId('video'));
  await sleep(1000);
  t.ok(watcher.packets(sender.producerId('video')) > 20, 'the classroom still receives the lesson');
  await teacher.request('endLesson', {});
  await until('the recorder to stop', () => !s.internals.recording.isRecording(lessonId), 10000);
});

t.test('a VP8 publisher is recorded too: re-encoded to H264, and the manifest says so', async (t) => {
  const lessonId = await createLesson(s, { record: true, title: 'VP8 only' });
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  const sender = await publish(teacher, joined!.routerRtpCapabilities, { audio: false, video: 'vp8' });
  t.teardown(async () => {
    await sender.close();
    teacher.close();
  });
  const camera = path.join(recDir(lessonId), 'camera.m3u8');
  await until('a camera segment', async () => existsSync(camera) && playlistSegments(await readText(camera)).length >= 1, 30000);
  await teacher.request('endLesson', {});
  await until('the recording to finish', () => !s.internals.recording.isRecording(lessonId), 15000);
  const probed = await probe(camera);
  t.same(
    probed.streams.map((x) => x.codec_name),
    ['h264'],
    'stored as H264 (fMP4 cannot hold VP8 with ffmpeg 5.1)',
  );
  t.ok(probed.firstVideoIsKey, 'starting with a keyframe');
  const track = (await manifestOf(lessonId)).tracks.find((x) => x.id === 'camera')!;
  t.same(
    track.runs.map((r) => [r.sourceCodec, r.transcoded]),
    [['VP8', true]],
    'the manifest says the run was transcoded from VP8',
  );
});
