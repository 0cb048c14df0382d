/**
 * Two real lessoncast nodes sharing a real redis-server of this test's own:
 * the control room on one node sees the other's lessons; a node whose
 * heartbeat stops drops out within the TTL; Redis stopped and restarted
 * leaves lessons running and the state re-published.
 */
import t from 'tap';
import type { LiveSnapshot } from '../src/live/types.js';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, startTestServer, type TestServer } from './support/lessoncast.js';
import { FeedClient } from './support/liveFeed.js';
import { Watcher, publish } from '../kit/peers.js';
import { startRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TTL_SECONDS = 2;

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

async function liveView(s: TestServer): Promise<LiveSnapshot> {
  const res = await fetch(`${s.url}/api/live`, { headers: { authorization: `Bearer ${await s.token('monitor', 'control-room')}` } });
  if (res.status !== 200) throw new Error(`/api/live: ${res.status} ${await res.text()}`);
  return (await res.json()) as LiveSnapshot;
}

async function readyz(s: TestServer): Promise<{ status: number; body: { status: string; checks: Record<string, string> } }> {
  const res = await fetch(`${s.url}/readyz`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string> } };
}

const redis = await startRedis();
t.teardown(() => redis.stop());
const shared = {
  redis: { url: redis.url, keyPrefix: 'live-redis-test:', heartbeatSeconds: 1, nodeTtlSeconds: TTL_SECONDS },
  monitor: { sampleSeconds: 1 },
};
const a = await startTestServer({ nodeId: 'node-a', ...shared });
const b = await startTestServer({ nodeId: 'node-b', ...shared });
const cleanups: Array<() => unknown> = [];
t.teardown(async () => {
  for (const c of cleanups.reverse()) await c();
  await a.close();
  await b.close();
});

const lessonId = await createLesson(a, { title: 'Astronomy: the Moon' });
const { feed } = await FeedClient.open(b.url, await b.token('monitor', 'control-room'));
cleanups.push(() => feed.close());

t.test("the control room on node b sees node a's lesson and schools, and its events", async (t) => {
  t.equal(a.internals.live.backend, 'redis');
  const { client: teacher } = await SignalClient.join(a, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  await teacher.request('goLive', {});
  const { client: school1 } = await SignalClient.join(a, 'classroom', 'school-1', lessonId);
  cleanups.push(() => school1.close());
  await feed.waitFor(
    (e) => e.type === 'lessonStarted' && e.lessonId === lessonId && e.node === 'node-a',
    10000,
    'lessonStarted from node a',
  );
  await feed.waitFor(
    (e) => e.type === 'schoolJoined' && e.schoolId === 'school-1' && e.node === 'node-a',
    10000,
    'schoolJoined from node a',
  );
  await until(
    async () => {
      const v = await liveView(b);
      return (
        v.lessons.some((l) => l.id === lessonId && l.schools.length === 1) && v.nodes.some((n) => n.id === 'node-a' && n.load.lessons === 1)
      );
    },
    5000,
    'lesson in /api/live of node b, and node a heartbeating its load',
  );
  const view = await liveView(b);
  t.same(
    view.nodes.map((n) => n.id),
    ['node-a', 'node-b'],
    'both nodes listed',
  );
  t.match(view.nodes[0], { address: a.url, load: { workers: 1, lessons: 1 } });
  t.match(
    view.lessons.find((l) => l.id === lessonId),
    {
      title: 'Astronomy: the Moon',
      instructorId: 'teacher-1',
      node: 'node-a',
      state: 'live',
      schools: [{ schoolId: 'school-1', connected: true }],
    },
  );
  const ready = await readyz(a);
  t.same(
    ready,
    { status: 200, body: { status: 'ready', checks: { workers: 'ok', recordings: 'ok', redis: 'ok', catalog: 'ok' } } },
    '/readyz checks Redis',
  );
});

t.test('a node whose heartbeat stops leaves the live view within the TTL; nodeLost goes out', async (t) => {
  await a.internals.controlRoom.agent.stopHeartbeat();
  const stoppedAt = Date.now();
  await until(
    async () => !(await liveView(b)).lessons.some((l) => l.id === lessonId),
    (TTL_SECONDS + 3) * 1000,
    "node a's lesson to leave the view",
  );
  const goneMs = Date.now() - stoppedAt;
  t.ok(
    goneMs <= (TTL_SECONDS + 1) * 1000 + 500,
    `gone from node b's view ${goneMs} ms after node a's last heartbeat (TTL ${TTL_SECONDS} s)`,
  );
  t.same(
    (await liveView(b)).nodes.map((n) => n.id),
    ['node-b'],
    'node a is no longer listed',
  );
  const lost = await feed.waitFor((e) => e.type === 'nodeLost' && e.lostNode === 'node-a', 5000, 'nodeLost');
  t.match(
    lost,
    { node: 'node-b', lessons: [{ id: lessonId, title: 'Astronomy: the Moon', schools: 1 }] },
    'announced by the survivor, with what was lost',
  );
  // It was only stalled: once it beats again, it puts its whole state back.
  a.internals.controlRoom.agent.start();
  await until(async () => (await liveView(b)).lessons.some((l) => l.id === lessonId && l.schools.length === 1), 5000, 'node a back');
  t.pass('node a re-published its lesson and school after beating again');
});

t.test('Redis stopped and restarted: the lesson goes on, /readyz says degraded, state is re-published', async (t) => {
  const { client: teacher2 } = await SignalClient.join(a, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher2.close());
  const { client: viewer, joined } = await SignalClient.join(a, 'classroom', 'school-1', lessonId);
  cleanups.push(() => viewer.close());
  const watcher = await Watcher.start(viewer, joined!.producers);
  cleanups.push(() => watcher.close());
  const sender = await publish(teacher2, joined!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => sender.close());
  const mic = sender.producerId('audio');
  await watcher.firstPacket(mic);

  await redis.stop();
  await until(async () => (await readyz(a)).body.status === 'degraded', 5000, '/readyz degraded');
  const degraded = await readyz(a);
  t.equal(degraded.status, 200, 'still serving: 200, not 503');
  t.match(degraded.body.checks['redis'], /redis/, `redis check explains: ${degraded.body.checks['redis']}`);

  const before = watcher.packets(mic);
  await sleep(1500);
  t.ok(watcher.packets(mic) > before + 30, `media keeps flowing without Redis (${watcher.packets(mic) - before} packets in 1.5 s)`);
  const { client: school2 } = await SignalClient.join(a, 'classroom', 'school-2', lessonId);
  cleanups.push(() => school2.close());
  t.pass('a classroom can still join');
  const local = await liveView(a);
  t.match(local.degraded, /this node only/, 'the live view says it is partial');
  t.same(
    local.lessons.find((l) => l.id === lessonId)?.schools.map((s) => s.schoolId),
    ['school-1', 'school-2'],
    "and holds this node's schools",
  );
  const metrics = await (await fetch(`${a.url}/metrics`)).text();
  t.match(metrics, /^lessoncast_live_state_up 0$/m, 'metrics show live state down');

  await redis.restart();
  await until(async () => (await readyz(a)).body.status === 'ready', 10000, '/readyz ready again');
  await until(
    async () => (await liveView(b)).lessons.some((l) => l.id === lessonId && l.schools.length === 2),
    10000,
    'node b sees the re-published state',
  );
  const view = await liveView(b);
  t.same(
    view.nodes.map((n) => n.id),
    ['node-a', 'node-b'],
    'both nodes re-announced themselves',
  );
  t.same(
    view.lessons.find((l) => l.id === lessonId)?.schools.map((s) => s.schoolId),
    ['school-1', 'school-2'],
    'including the school that joined during the outage',
  );
  t.notOk(view.degraded, 'not degraded any more');
  const { client: school3 } = await SignalClient.join(a, 'classroom', 'school-3', lessonId);
  cleanups.push(() => school3.close());
  await feed.waitFor((e) => e.type === 'schoolJoined' && e.schoolId === 'school-3', 10000, 'schoolJoined after the restart');
  t.pass('events cross nodes again');
});
