/**
 * The control room during a real lesson: an instructor publishing through
 * werift, two werift classrooms receiving; /api/live, the live feed, alerts
 * when a classroom vanishes, and the lesson's history.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { LiveEvent, LiveSnapshot } from '../src/live/types.js';
import type { HistoryResult } from '../src/monitor/history.js';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, startTestServer } from './support/lessoncast.js';
import { FeedClient } from './support/liveFeed.js';
import { Watcher, publish } from '../kit/peers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v).slice(0, 2000)}`);
    await sleep(200);
  }
}

const s = await startTestServer({ monitor: { sampleSeconds: 1, silentSeconds: 4, alerts: { disconnectedSeconds: 0, lossSeconds: 2 } } });
t.teardown(() => s.close());
const auth = async (role: 'monitor' | 'admin' | 'classroom' = 'monitor') => ({
  authorization: `Bearer ${await s.token(role, `${role}-1`)}`,
});
const liveView = async () => (await (await fetch(`${s.url}/api/live`, { headers: await auth() })).json()) as LiveSnapshot;

t.test('a real lesson with two werift classrooms: live view, feed, alerts, history', async (t) => {
  const cleanups: Array<() => unknown> = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const { feed } = await FeedClient.open(s.url, await s.token('monitor', 'control-room'));
  cleanups.push(() => feed.close());

  const lessonId = await createLesson(s, { title: 'Geometry: circles' });
  const { client: teacher, joined: tj } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  await teacher.request('goLive', {});
  const sender = await publish(teacher, tj!.routerRtpCapabilities, {
    videoSize: { width: 320, height: 180, fps: 15 },
    videoBitrateKbps: 250,
  });
  cleanups.push(() => sender.close());
  const cam = sender.producerId('video');

  const schools: Record<string, { client: SignalClient; watcher: Watcher }> = {};
  for (const id of ['school-1', 'school-2']) {
    const { client, joined } = await SignalClient.join(s, 'classroom', id, lessonId);
    const watcher = await Watcher.start(client, joined!.producers);
    cleanups.push(
      () => client.close(),
      () => watcher.close(),
    );
    schools[id] = { client, watcher };
    await watcher.firstPacket(cam);
  }

  const view = await until(
    liveView,
    (v) => {
      const l = v.lessons.find((x) => x.id === lessonId);
      return (
        !!l && l.schools.length === 2 && l.schools.every((sc) => (sc.quality?.bitrateKbps ?? 0) > 0) && v.nodes[0]?.load.consumers === 4
      );
    },
    15000,
    'both schools with a bitrate, and the node heartbeat with its load',
  );
  const lesson = view.lessons.find((l) => l.id === lessonId)!;
  t.match(lesson, {
    title: 'Geometry: circles',
    instructorId: 'teacher-1',
    node: s.server.config.nodeId,
    state: 'live',
    recording: { enabled: false, state: 'stopped' },
  });
  t.ok(Date.parse(lesson.startedAt!) > 0, 'startedAt set');
  t.same(
    view.nodes.map((n) => n.id),
    [s.server.config.nodeId],
    'this node listed',
  );
  t.match(view.nodes[0]!.load, { workers: 1, lessons: 1, schools: 2, consumers: 4 }, 'node load: 2 schools × (audio + video)');
  for (const sc of lesson.schools) {
    const q = sc.quality!;
    t.ok(q.bitrateKbps > 0, `${sc.schoolId}: ${q.bitrateKbps} kbit/s`);
    t.ok(q.lossPct >= 0 && q.lossPct <= 100, `${sc.schoolId}: loss ${q.lossPct} %`);
    t.ok(q.score !== null && q.score >= 0 && q.score <= 10, `${sc.schoolId}: score ${q.score}`);
    t.ok(q.jitterMs !== null && q.jitterMs >= 0, `${sc.schoolId}: jitter ${q.jitterMs} ms`);
    t.ok(q.rttMs === null || q.rttMs >= 0, `${sc.schoolId}: rtt ${q.rttMs} ms`);
    t.equal(sc.connected, true);
    t.match(sc, { name: `classroom ${sc.schoolId}` });
  }
  const sample = await feed.waitFor(
    (e) => e.type === 'quality' && e.lessonId === lessonId && e.schools.length === 2,
    5000,
    'quality sample on the feed',
  );
  t.match(
    sample,
    { node: s.server.config.nodeId, schools: [{ schoolId: 'school-1' }, { schoolId: 'school-2' }] },
    'quality samples reach the feed',
  );
  t.ok(
    feed.events.some((e) => e.type === 'lessonStarted' && e.lessonId === lessonId),
    'lessonStarted on the feed',
  );
  t.ok(
    feed.events.some((e) => e.type === 'schoolJoined' && e.schoolId === 'school-2'),
    'schoolJoined on the feed',
  );

  // A classroom's WebRTC peer dies abruptly while its signalling stays up.
  await schools['school-2']!.watcher.close();
  const alert2 = await feed.waitFor(
    (e) => e.type === 'alert' && e.rule === 'schoolDisconnected' && e.schoolId === 'school-2' && e.state === 'raised',
    15000,
    'alert for school-2',
  );
  t.match(alert2, { lessonId, message: /school-2 is unreachable: media transport/ }, `alert: ${(alert2 as { message: string }).message}`);
  const after = await until(
    liveView,
    (v) => v.lessons.find((l) => l.id === lessonId)?.schools.find((x) => x.schoolId === 'school-2')?.connected === false,
    5000,
    'school-2 shown disconnected',
  );
  t.equal(
    after.lessons.find((l) => l.id === lessonId)?.schools.find((x) => x.schoolId === 'school-1')?.connected,
    true,
    'school-1 still connected',
  );

  // Another classroom's connection is cut (no close handshake).
  schools['school-1']!.client.ws.terminate();
  const alert1 = await feed.waitFor(
    (e) => e.type === 'alert' && e.rule === 'schoolDisconnected' && e.schoolId === 'school-1' && e.state === 'raised',
    10000,
    'alert for school-1',
  );
  t.match(alert1, { message: /school-1 is unreachable/ }, `alert: ${(alert1 as { message: string }).message}`);
  await feed.waitFor((e) => e.type === 'schoolDisconnected' && e.schoolId === 'school-1', 5000, 'schoolDisconnected event');

  // It comes back: the alert clears.
  const { client: again, joined: j2 } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  cleanups.push(() => again.close());
  t.equal(j2!.rejoined, true);
  await feed.waitFor(
    (e) => e.type === 'alert' && e.rule === 'schoolDisconnected' && e.schoolId === 'school-1' && e.state === 'cleared',
    5000,
    'alert cleared',
  );
  t.pass('the alert clears when the school is back');

  await teacher.request('endLesson', {});
  await feed.waitFor((e) => e.type === 'lessonEnded' && e.lessonId === lessonId, 5000, 'lessonEnded');
  t.notOk(
    (await liveView()).lessons.some((l) => l.id === lessonId),
    'an ended lesson leaves the live view',
  );
  again.ws.terminate();
  const ended = s.internals.registry.get(lessonId);
  const seat = ended.participants.get('school-1');
  if (seat?.connected) ended.disconnect('school-1', seat.connectionId);
  await sleep(300);
  t.notOk(
    (await liveView()).lessons.some((l) => l.id === lessonId),
    'and late disconnects do not bring it back',
  );

  // History kept with the recording, per school.
  const dir = path.join(s.server.config.recording.dir, lessonId);
  t.ok(
    existsSync(path.join(dir, 'quality.ndjson')) && existsSync(path.join(dir, 'live-events.ndjson')),
    'quality.ndjson and live-events.ndjson written',
  );
  const h1 = (await (
    await fetch(`${s.url}/api/live/lessons/${lessonId}/history?school=school-1`, { headers: await auth() })
  ).json()) as HistoryResult;
  t.ok(h1.samples.length >= 2, `${h1.samples.length} samples of school-1`);
  t.ok(
    h1.samples.every((x) => x.schoolId === 'school-1'),
    'only school-1 samples',
  );
  t.ok(
    h1.samples.some((x) => (x.bitrateKbps ?? 0) > 0),
    'with bitrate',
  );
  const types = h1.events.map((e: LiveEvent) => e.type);
  t.ok(
    types.includes('schoolJoined') && types.includes('alert') && types.includes('lessonStarted') && types.includes('lessonEnded'),
    `school-1 events and lesson-wide ones: ${[...new Set(types)].join(', ')}`,
  );
  t.notOk(
    h1.events.some((e) => 'schoolId' in e && e.schoolId === 'school-2'),
    'no events of school-2',
  );
  const all = (await (
    await fetch(`${s.url}/api/live/lessons/${lessonId}/history`, { headers: await auth('admin') })
  ).json()) as HistoryResult;
  t.same([...new Set(all.samples.map((x) => x.schoolId))].sort(), ['school-1', 'school-2'], 'unfiltered: both schools');
  const since = h1.samples.at(-1)!.at;
  const later = (await (
    await fetch(`${s.url}/api/live/lessons/${lessonId}/history?school=school-1&since=${encodeURIComponent(since)}&limit=1`, {
      headers: await auth(),
    })
  ).json()) as HistoryResult;
  t.equal(later.samples.length, 1, 'since and limit apply');
  t.equal(later.samples[0]!.at, since);
});

t.test("a lossy instructor uplink shows as the instructor's loss, not as every school's", async (t) => {
  const cleanups: Array<() => unknown> = [];
  t.teardown(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const { feed } = await FeedClient.open(s.url, await s.token('monitor', 'control-room-uplink'));
  cleanups.push(() => feed.close());
  const lessonId = await createLesson(s, { title: 'Lossy uplink', instructorId: 'teacher-lossy' });
  const { client: teacher, joined: tj } = await SignalClient.join(s, 'instructor', 'teacher-lossy', lessonId);
  cleanups.push(() => teacher.close());
  await teacher.request('goLive', {});
  // Every 10th packet of each track never leaves the instructor: 10 % uplink loss.
  const sender = await publish(teacher, tj!.routerRtpCapabilities, {
    videoSize: { width: 320, height: 180, fps: 15 },
    videoBitrateKbps: 250,
    dropEvery: 10,
  });
  cleanups.push(() => sender.close());
  for (const id of ['school-a', 'school-b']) {
    const { client, joined } = await SignalClient.join(s, 'classroom', id, lessonId);
    const watcher = await Watcher.start(client, joined!.producers);
    cleanups.push(
      () => client.close(),
      () => watcher.close(),
    );
    await watcher.firstPacket(sender.producerId('video'));
  }
  // Samples once the schools' receiver reports have had time to arrive (several ticks of 1 s).
  await sleep(3000);
  const samples: LiveEvent[] = [];
  let after = new Date().toISOString();
  for (let i = 0; i < 6; i++) {
    const e = await feed.waitFor(
      (e) => e.at > after && e.type === 'quality' && e.lessonId === lessonId && e.schools.length === 2 && e.uplink.length === 1,
      5000,
      'a quality sample with both schools and the uplink',
    );
    samples.push(e);
    after = e.at;
  }
  // mediasoup counts a stream's loss when it builds its receiver report (about once a second), so
  // one 1-s sample may hold more or less than a second's worth (or none): judge the mean of six.
  const uplinkLoss: number[] = [];
  for (const e of samples) {
    if (e.type !== 'quality') continue;
    const up = e.uplink[0]!;
    t.match(up, { participantId: 'teacher-lossy', role: 'instructor' }, "the uplink is the instructor's");
    uplinkLoss.push(up.lossPct);
    for (const sc of e.schools)
      t.ok(
        (sc.quality?.lossPct ?? 100) < 2,
        `${sc.schoolId}: downlink loss ${sc.quality?.lossPct} % (the uplink's gaps are not the school's)`,
      );
  }
  const mean = uplinkLoss.reduce((a, b) => a + b, 0) / uplinkLoss.length;
  t.ok(mean >= 6 && mean <= 16, `instructor uplink loss ${uplinkLoss.join(', ')} %, mean ${mean.toFixed(1)} % (10 % dropped)`);
  const view = await until(
    liveView,
    (v) => (v.lessons.find((l) => l.id === lessonId)?.uplink[0]?.lossPct ?? 0) > 0,
    10_000,
    'the uplink loss in /api/live',
  );
  const uplink = view.lessons.find((l) => l.id === lessonId)!.uplink;
  t.match(
    uplink,
    [{ participantId: 'teacher-lossy', role: 'instructor' }],
    `/api/live carries the uplink on the lesson (loss ${uplink[0]!.lossPct} %)`,
  );
});

t.test('the control-room API refuses what it must', async (t) => {
  t.equal((await fetch(`${s.url}/api/live`)).status, 401, 'no token: 401');
  t.equal((await fetch(`${s.url}/api/live`, { headers: await auth('classroom') })).status, 403, 'a classroom: 403');
  t.equal((await fetch(`${s.url}/api/live/lessons/../history`, { headers: await auth() })).status, 404, 'no path tricks');
  t.equal(
    (await fetch(`${s.url}/api/live/lessons/..%2F..%2Fetc/history`, { headers: await auth() })).status,
    400,
    'no encoded path tricks',
  );
  t.equal((await fetch(`${s.url}/api/live/lessons/unknown-lesson/history`, { headers: await auth() })).status, 404, 'unknown lesson: 404');
  t.equal((await fetch(`${s.url}/api/live/lessons/x/history?limit=0`, { headers: await auth() })).status, 400, 'bad limit: 400');

  const first = await FeedClient.connect(s.url);
  const r1 = await first.send(JSON.stringify({ kind: 'request', id: 5, method: 'join', data: { lessonId: 'x' } }));
  t.match(r1, { ok: false, id: 5, error: { code: 'UNAUTHENTICATED' } }, 'feed: the first message must be authenticate');
  t.equal((await first.closed).code, 4401, 'and the feed closes');
  const garbage = await FeedClient.connect(s.url);
  t.match(await garbage.send('{nope'), { ok: false, id: null, error: { code: 'INVALID_MESSAGE' } }, 'feed: not JSON');
  const big = await FeedClient.connect(s.url);
  t.match(
    await big.send(`{"kind":"request","id":"big-1","method":"authenticate","data":{"token":"${'x'.repeat(70 * 1024)}"}}`),
    { ok: false, id: 'big-1', error: { code: 'MESSAGE_TOO_LARGE' } },
    'feed: an oversized frame is answered with its id',
  );
  t.equal((await garbage.closed).code, 4401);
  const classroom = await FeedClient.connect(s.url);
  t.match(
    await classroom.authenticate(await s.token('classroom', 'school-9')),
    { ok: false, error: { code: 'FORBIDDEN' } },
    'feed: a classroom token is refused',
  );
  t.equal((await classroom.closed).code, 4403);
  const forged = await FeedClient.connect(s.url);
  t.match(
    await forged.authenticate('eyJhbGciOiJIUzI1NiJ9.e30.x'),
    { ok: false, error: { code: 'UNAUTHENTICATED' } },
    'feed: a bad token is refused',
  );
  const ok = await FeedClient.open(s.url, await s.token('admin', 'ops'));
  t.match(
    await ok.feed.send(JSON.stringify({ kind: 'request', id: 2, method: 'authenticate', data: { token: 'again' } })),
    { ok: false, id: 2, error: { code: 'OUT_OF_ORDER' } },
    "feed: nothing after authenticate, answered with the request's id",
  );
  ok.feed.close();
});
