/**
 * `oneWayStream`: a participant of a live, recorded lesson gets a link to its live HLS with a
 * capability for that one recording's playlists and segments (docs/protocol.md, *One-way mode*).
 * `reportMediaMode`: a classroom says it watches one way; the instructor and the control room are told.
 */
import t from 'tap';
import { publish } from '../kit/peers.js';
import { type RequestFailed, SignalClient } from '../kit/signalClient.js';
import type { LiveSnapshot } from '../src/live/types.js';
import { cleanupStack, createLesson, expectCode, startTestServer, type TestServer } from './support/lessoncast.js';
import { FeedClient } from './support/liveFeed.js';
import { playlistSegments, until } from './support/recording.js';

const ACCESS_SECONDS = 40;
let s: TestServer;
t.before(async () => {
  s = await startTestServer({ recording: { segmentSeconds: 1, oneWayAccessSeconds: ACCESS_SECONDS } });
});
t.teardown(() => s.close());

const codeOf = (p: Promise<unknown>): Promise<{ code: string; details?: Record<string, unknown> } | 'ok'> =>
  p.then(
    () => 'ok' as const,
    (e: RequestFailed) => ({ code: e.code, ...(e.details ? { details: e.details } : {}) }),
  );

t.test('who may ask, and when: participants of a live lesson that is being recorded', async (t) => {
  const cleanups = cleanupStack(t);
  const recorded = await createLesson(s, { record: true, title: 'Recorded' });
  const unrecorded = await createLesson(s, { record: false, title: 'Not recorded' });

  const lone = await SignalClient.connect(s.wsUrl);
  cleanups.push(() => lone.close());
  t.ok(await expectCode(lone.request('oneWayStream', {}), 'UNAUTHENTICATED'), 'before authenticate');
  await lone.request('authenticate', { token: await s.token('classroom', 'school-9') });
  t.ok(await expectCode(lone.request('oneWayStream', {}), 'NOT_IN_LESSON'), 'before join');
  t.ok(await expectCode(lone.request('oneWayStream', { extra: 1 }), 'INVALID_REQUEST'), 'its data is checked');

  const { client: school } = await SignalClient.join(s, 'classroom', 'school-1', recorded);
  cleanups.push(() => school.close());
  t.ok(await expectCode(school.request('oneWayStream', {}), 'LESSON_NOT_LIVE'), 'not before the lesson goes live');

  const { client: teacher2 } = await SignalClient.join(s, 'instructor', 'teacher-1', unrecorded);
  const { client: school2 } = await SignalClient.join(s, 'classroom', 'school-2', unrecorded);
  cleanups.push(
    () => teacher2.close(),
    () => school2.close(),
  );
  await teacher2.request('goLive', {});
  t.same(
    await codeOf(school2.request('oneWayStream', {})),
    { code: 'NOT_RECORDING', details: { reason: 'notRecorded' } },
    'a lesson that is not recorded has no live stream: NOT_RECORDING, reason notRecorded',
  );
  await teacher2.request('endLesson', {});
  t.ok(await expectCode(school2.request('oneWayStream', {}), 'NOT_IN_LESSON'), 'after the lesson ended, the session is out of it');
});

t.test("the link plays the live recording's playlists and segments, is renewed, and opens nothing else", async (t) => {
  const cleanups = cleanupStack(t);
  const lessonId = await createLesson(s, { record: true, title: 'Levers, live one way' });
  const otherId = await createLesson(s, { record: true, title: 'Another lesson' });
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  const { client: monitor } = await SignalClient.join(s, 'monitor', 'control-room', lessonId);
  const { client: teacher2, joined: joined2 } = await SignalClient.join(s, 'instructor', 'teacher-1', otherId);
  const { client: school2 } = await SignalClient.join(s, 'classroom', 'school-2', otherId);
  await teacher.request('goLive', {});
  await teacher2.request('goLive', {});
  const sender = await publish(teacher, joined!.routerRtpCapabilities);
  const sender2 = await publish(teacher2, joined2!.routerRtpCapabilities, { audio: false });
  cleanups.push(
    () => sender.close(),
    () => sender2.close(),
    () => [teacher, school, monitor, teacher2, school2].forEach((c) => c.close()),
  );

  const asked = Date.now();
  const link = await school.request('oneWayStream', {});
  t.match(
    link.url,
    new RegExp(`^/api/recordings/${lessonId}/files/index\\.m3u8\\?access=[\\w.-]+$`),
    'a path on this server with ?access=',
  );
  const life = (Date.parse(link.expiresAt) - asked) / 1000;
  t.ok(life > ACCESS_SECONDS - 2 && life <= ACCESS_SECONDS + 1, `lives recording.oneWayAccessSeconds (${life.toFixed(1)} s)`);
  t.equal(link.renewAfterSeconds, ACCESS_SECONDS / 2, 'renew at half-life');
  t.equal(link.segmentSeconds, 1);
  t.ok(Math.abs(Date.parse(link.serverTime) - Date.now()) < 5000, 'with the server clock');
  t.equal(await codeOf(monitor.request('oneWayStream', {})), 'ok', 'any participant who receives media may ask (here a monitor)');
  const access = new URL(link.url, s.url).searchParams.get('access')!;

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${s.url}${path}`, { headers });
  const files = `/api/recordings/${lessonId}/files`;
  const camera: string = await until(
    'a camera segment listed in the live playlist',
    async () => {
      const res = await get(`${files}/camera.m3u8?access=${encodeURIComponent(access)}`);
      const text = res.ok ? await res.text() : '';
      return playlistSegments(text).length > 0 ? text : '';
    },
    20000,
    250,
  );
  t.notMatch(camera, /#EXT-X-ENDLIST/, 'the playlist is live (no ENDLIST)');
  const master = await get(link.url);
  t.equal(master.status, 200, 'the master playlist opens');
  const masterText = await master.text();
  t.match(masterText, `camera.m3u8?access=${encodeURIComponent(access)}`, 'its URIs carry the capability');
  const segment = playlistSegments(camera)[0]!;
  t.match(segment, /access=/, 'so do the segment URIs');
  const seg = await get(`${files}/${segment}`);
  t.equal(seg.status, 200, 'a segment opens');
  t.ok((await seg.arrayBuffer()).byteLength > 1000, 'with media in it');

  // Renewal: the page asks again; the new capability works alongside the old one until that expires.
  const again = await school.request('oneWayStream', {});
  const access2 = new URL(again.url, s.url).searchParams.get('access')!;
  t.ok(Date.parse(again.expiresAt) >= Date.parse(link.expiresAt), 'asking again gives a capability that lives as long from now');
  t.equal((await get(`${files}/camera.m3u8?access=${encodeURIComponent(access2)}`)).status, 200, 'which opens the same playlists');

  // Nothing else.
  const q = `access=${encodeURIComponent(access)}`;
  t.equal((await get(`/api/recordings/${otherId}/files/index.m3u8?${q}`)).status, 403, "not another recording's files");
  const link2 = await school2.request('oneWayStream', {});
  t.equal((await get(`${link2.url.replace(otherId, lessonId)}`)).status, 403, "the other lesson's link does not open this one");
  const mp4 = await get(`/api/recordings/${lessonId}/download.mp4?${q}`);
  t.equal(mp4.status, 403, 'not the MP4 (a one-way link reads playlists and segments only)');
  t.match(await mp4.json(), { code: 'FORBIDDEN' });
  t.equal((await get(`/api/recordings/${lessonId}?${q}`)).status, 401, "not the recording's details");
  t.equal((await get(`/api/recordings/${lessonId}`, { authorization: `Bearer ${access}` })).status, 401, 'not as a bearer token');
  const ws = await SignalClient.connect(s.wsUrl);
  cleanups.push(() => ws.close());
  t.ok(await expectCode(ws.request('authenticate', { token: access }), 'UNAUTHENTICATED'), 'not as a signalling token');
  const principal = { id: 'school-1', role: 'classroom' as const, name: 'School 1', lessons: [lessonId] };
  const expired = await s.internals.tokens.recordingAccess.mint(lessonId, principal, 'live', -5);
  const old = await get(`${files}/camera.m3u8?access=${encodeURIComponent(expired.access)}`);
  t.equal(old.status, 401, 'an expired capability is refused');
  t.match(await old.json(), { code: 'TOKEN_EXPIRED' }, 'as TOKEN_EXPIRED: the page asks again');
  const tooLong = await s.internals.tokens.recordingAccess.mint(lessonId, principal, 'live', 7200);
  t.equal(
    (await get(`${files}/camera.m3u8?access=${encodeURIComponent(tooLong.access)}`)).status,
    401,
    'one living over an hour is refused',
  );

  await teacher.request('endLesson', {});
  t.ok(await expectCode(school.request('oneWayStream', {}), 'NOT_IN_LESSON'), 'no new link once the lesson has ended');
});

t.test('reportMediaMode: the instructor and the control room are told when a classroom watches one way', async (t) => {
  const cleanups = cleanupStack(t);
  const lessonId = await createLesson(s, { record: true, title: 'Told one way' });
  const lone = await SignalClient.connect(s.wsUrl);
  cleanups.push(() => lone.close());
  await lone.request('authenticate', { token: await s.token('classroom', 'school-9') });
  t.ok(await expectCode(lone.request('reportMediaMode', { mode: 'one-way' }), 'NOT_IN_LESSON'), 'before join');

  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school, joined } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  const monitorToken = await s.token('monitor', 'control-room');
  const { feed } = await FeedClient.open(s.url, monitorToken);
  cleanups.push(
    () => feed.close(),
    () => [teacher, school].forEach((c) => c.close()),
  );
  t.equal(joined!.participants.find((p) => p.id === 'school-1')?.mediaMode, 'live', "a new seat is 'live'");
  await teacher.waitFor('participantJoined', (p) => p.id === 'school-1');

  t.ok(
    await expectCode(school.request('reportMediaMode', { mode: 'sideways' } as never), 'INVALID_REQUEST'),
    "a mode other than 'live' and 'one-way' is refused",
  );
  t.ok(await expectCode(school.request('reportMediaMode', {} as never), 'INVALID_REQUEST'), 'the mode is required');
  t.ok(await expectCode(teacher.request('reportMediaMode', { mode: 'one-way' }), 'FORBIDDEN'), 'only a classroom reports');

  const updates = () => teacher.notifications.filter((n) => n.event === 'participantUpdated');
  t.same(await school.request('reportMediaMode', { mode: 'one-way' }), {}, 'answered {}');
  const told = await teacher.waitFor('participantUpdated', (p) => p.id === 'school-1' && p.mediaMode === 'one-way');
  t.match(told, { id: 'school-1', role: 'classroom', connected: true, hasFloor: false, mediaMode: 'one-way' }, 'the instructor is told');
  const event = await feed.waitFor((e) => e.type === 'schoolMediaMode' && e.schoolId === 'school-1', 5000, 'schoolMediaMode');
  t.match(event, { lessonId, mode: 'one-way' }, 'the control room gets schoolMediaMode');
  const live = (await (await fetch(`${s.url}/api/live`, { headers: { authorization: `Bearer ${monitorToken}` } })).json()) as LiveSnapshot;
  t.equal(
    live.lessons.find((l) => l.id === lessonId)?.schools.find((x) => x.schoolId === 'school-1')?.mediaMode,
    'one-way',
    "and the live view's school says one-way",
  );

  const before = updates().length;
  await school.request('reportMediaMode', { mode: 'one-way' });
  await school.request('reportMediaMode', { mode: 'live' });
  await teacher.waitFor('participantUpdated', (p) => p.id === 'school-1' && p.mediaMode === 'live');
  t.equal(updates().length, before + 1, 'the same mode again is not news; back to live is');
  t.notOk(
    school.notifications.some((n) => n.event === 'participantUpdated'),
    'the classroom is not told of itself',
  );
});
