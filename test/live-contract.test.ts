/**
 * One contract, two stores: the in-process hub and Redis (a real redis-server)
 * must behave the same for live lessons, schools, nodes, node death and the bus.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { LiveState } from '../src/live/liveState.js';
import { MemoryLiveHub } from '../src/live/memoryLiveState.js';
import { RedisLiveState } from '../src/live/redisLiveState.js';
import type { LiveEvent, LiveLesson, LiveSchool } from '../src/live/types.js';
import { testRedis } from './support/redis.js';

const TTL_SECONDS = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Store {
  name: string;
  /** A fresh, isolated deployment: returns a maker of node handles. */
  deployment(): (nodeId: string) => Promise<LiveState>;
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

const lesson = (id: string, node: string, title = `Lesson ${id}`): LiveLesson => ({
  id,
  title,
  instructorId: `teacher-${id}`,
  node,
  state: 'live',
  startedAt: new Date().toISOString(),
  recording: { enabled: true, state: 'recording', at: null },
  uplink: [],
  edges: [],
});
const school = (id: string, since = new Date().toISOString()): LiveSchool => ({
  schoolId: id,
  name: `School ${id}`,
  since,
  connected: true,
  mediaMode: 'live',
  link: null,
  quality: null,
});
const announce = (s: LiveState) =>
  s.heartbeat({
    address: `http://${s.nodeId}.test:8080`,
    startedAt: new Date().toISOString(),
    load: { workers: 2, lessons: 1, schools: 3, consumers: 6 },
  });

const redis = await testRedis();
t.teardown(() => redis.close());

const stores: Store[] = [
  {
    name: 'in-process',
    deployment: () => {
      const hub = new MemoryLiveHub(TTL_SECONDS * 1000);
      return async (id) => hub.state(id);
    },
  },
  {
    name: 'redis',
    deployment: () => {
      const keyPrefix = `contract-${randomBytes(4).toString('hex')}:`;
      return async (id) => {
        const s = new RedisLiveState({ url: redis.url, keyPrefix, nodeId: id, nodeTtlSeconds: TTL_SECONDS, log: silent, flushMs: 10 });
        await until(() => s.problem() === undefined, 5000, 'redis ready');
        return s;
      };
    },
  },
];

for (const store of stores) {
  t.test(`live state contract: ${store.name}`, async (t) => {
    const handles: LiveState[] = [];
    const deployment = () => {
      const make = store.deployment();
      return async (id: string) => {
        const s = await make(id);
        handles.push(s);
        return s;
      };
    };
    t.teardown(async () => {
      for (const h of handles) await h.close();
    });

    t.test('a node appears with its heartbeat, with address and load', async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      t.same((await b.snapshot()).nodes, [], 'nothing before any heartbeat');
      await announce(a);
      const snap = await b.snapshot();
      t.equal(snap.nodes.length, 1);
      t.match(snap.nodes[0], {
        id: 'node-a',
        address: 'http://node-a.test:8080',
        load: { workers: 2, lessons: 1, schools: 3, consumers: 6 },
      });
      t.ok(Date.parse(snap.nodes[0]!.heartbeatAt) > Date.now() - 5000, 'heartbeat time recorded');
      t.notOk(snap.degraded, 'not degraded');
    });

    t.test('lessons and schools of several nodes: put, quality, removals', async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      await Promise.all([announce(a), announce(b)]);
      a.putLesson(lesson('L1', 'node-a', 'Physics'));
      a.putSchool('L1', school('s1', '2030-01-01T00:00:00.000Z'));
      a.putSchool('L1', school('s2', '2030-01-01T00:00:01.000Z'));
      b.putLesson(lesson('L2', 'node-b', 'Chemistry'));
      b.putSchool('L2', school('s3'));
      const quality = { bitrateKbps: 812.5, lossPct: 1.5, rttMs: 12, jitterMs: 3.2, score: 9, sampledAt: new Date().toISOString() };
      a.setQuality('L1', [
        { schoolId: 's1', connected: true, quality },
        { schoolId: 'ghost', connected: true, quality },
      ]);
      await Promise.all([a.flush(), b.flush()]);
      for (const viewer of [a, b]) {
        const snap = await viewer.snapshot();
        t.same(
          snap.nodes.map((n) => n.id),
          ['node-a', 'node-b'],
          `${viewer.nodeId} sees both nodes`,
        );
        const l1 = snap.lessons.find((l) => l.id === 'L1');
        const l2 = snap.lessons.find((l) => l.id === 'L2');
        t.match(l1, { title: 'Physics', node: 'node-a', instructorId: 'teacher-L1', recording: { enabled: true, state: 'recording' } });
        t.same(
          l1?.schools.map((s) => s.schoolId),
          ['s1', 's2'],
          'schools in joining order',
        );
        t.same(l1?.schools[0]?.quality, quality, 'quality stored');
        t.equal(l1?.schools[1]?.quality, null, 'no quality yet for s2');
        t.notOk(
          l1?.schools.some((s) => s.schoolId === 'ghost'),
          'quality for an unknown school is ignored',
        );
        t.same(
          l2?.schools.map((s) => s.schoolId),
          ['s3'],
        );
      }
      a.removeSchool('L1', 's2');
      a.setQuality('L1', [{ schoolId: 's1', connected: false, quality: null }]);
      b.removeLesson('L2');
      await Promise.all([a.flush(), b.flush()]);
      const snap = await b.snapshot();
      t.same(
        snap.lessons.map((l) => l.id),
        ['L1'],
        'L2 removed with its schools',
      );
      t.same(
        snap.lessons[0]?.schools,
        [{ ...school('s1', '2030-01-01T00:00:00.000Z'), connected: false, quality: null }],
        's2 removed, s1 updated',
      );
      b.putLesson(lesson('L2', 'node-b'));
      await b.flush();
      t.same((await a.snapshot()).lessons.find((l) => l.id === 'L2')?.schools, [], 'a re-opened lesson starts without its old schools');
    });

    t.test('events reach every node once, stamped with uuid v7, time and node', async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      const seenA: LiveEvent[] = [];
      const seenB: LiveEvent[] = [];
      a.subscribe((e) => seenA.push(e));
      const unsubscribe = b.subscribe((e) => seenB.push(e));
      const sent = a.publish({ type: 'handRaised', lessonId: 'L1', schoolId: 's1' });
      t.match(sent.id, UUID_V7, 'uuid v7 id');
      t.ok(Math.abs(Date.parse(sent.at) - Date.now()) < 5000, 'ISO timestamp');
      t.equal(sent.node, 'node-a');
      t.equal(seenA.length, 1, 'delivered locally at once');
      b.publish({ type: 'floorChanged', lessonId: 'L1', holders: ['s1'], granted: 's1' });
      await Promise.all([a.flush(), b.flush()]);
      await until(() => seenA.length === 2 && seenB.length === 2, 5000, 'both events on both nodes');
      await sleep(100);
      t.same(
        seenA.map((e) => e.type),
        ['handRaised', 'floorChanged'],
        'node a got each event once',
      );
      t.same(seenB.map((e) => e.id).sort(), [seenA[0]!.id, seenA[1]!.id].sort(), 'node b got the same events, each once');
      t.same(
        seenB.find((e) => e.type === 'handRaised'),
        sent,
        'unchanged in transit',
      );
      unsubscribe();
      a.publish({ type: 'handLowered', lessonId: 'L1', schoolId: 's1' });
      await a.flush();
      await sleep(150);
      t.equal(seenB.length, 2, 'an unsubscribed listener hears nothing more');
    });

    t.test("other nodes' quality samples arrive only while asked for", async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      const atB: LiveEvent[] = [];
      const atA: LiveEvent[] = [];
      b.subscribe((e) => atB.push(e));
      a.subscribe((e) => atA.push(e));
      const sample = () =>
        a.publish({ type: 'quality', lessonId: 'L1', schools: [{ schoolId: 's1', connected: true, quality: null }], uplink: [] });
      sample();
      a.publish({ type: 'schoolJoined', lessonId: 'L1', schoolId: 's2', name: 'S2', rejoined: false });
      await a.flush();
      await until(() => atB.some((e) => e.type === 'schoolJoined'), 5000, 'schoolJoined at b');
      await sleep(100);
      t.notOk(
        atB.some((e) => e.type === 'quality'),
        'no samples of node a at node b by default',
      );
      t.equal(atA.filter((e) => e.type === 'quality').length, 1, 'node a itself hears its own samples');
      b.setRemoteQuality(true);
      await until(
        async () => {
          sample();
          await a.flush();
          await sleep(50);
          return atB.some((e) => e.type === 'quality');
        },
        5000,
        'samples at b once asked for',
      );
      t.pass('samples reach node b once it asks');
    });

    t.test('a node whose heartbeat stops vanishes within the TTL; one sweeper announces it lost', async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      const c = await node('node-c');
      const lost: LiveEvent[] = [];
      b.subscribe((e) => e.type === 'nodeLost' && lost.push(e));
      c.subscribe((e) => e.type === 'nodeLost' && lost.push(e));
      await Promise.all([announce(a), announce(b), announce(c)]);
      a.putLesson(lesson('LA', 'node-a', 'Biology'));
      a.putSchool('LA', school('s1'));
      a.putSchool('LA', school('s2'));
      b.putLesson(lesson('LB', 'node-b'));
      await Promise.all([a.flush(), b.flush()]);
      const stoppedAt = Date.now();
      t.ok(
        (await b.snapshot()).lessons.some((l) => l.id === 'LA'),
        "node a's lesson is live before",
      );
      // b and c keep beating and sweeping; a has stopped (hung or dead).
      const beat = setInterval(() => void Promise.all([announce(b), announce(c)]).then(() => Promise.all([b.sweep(), c.sweep()])), 200);
      t.teardown(() => clearInterval(beat));
      await until(async () => !(await b.snapshot()).nodes.some((n) => n.id === 'node-a'), TTL_SECONDS * 1000 + 2000, 'node a to expire');
      const goneAfter = Date.now() - stoppedAt;
      const snap = await c.snapshot();
      t.same(
        snap.lessons.map((l) => l.id),
        ['LB'],
        "node a's lesson and schools are gone from the live view",
      );
      t.same(
        snap.nodes.map((n) => n.id),
        ['node-b', 'node-c'],
      );
      t.ok(goneAfter <= TTL_SECONDS * 1000 + 1500, `gone ${goneAfter} ms after its last heartbeat (TTL ${TTL_SECONDS * 1000} ms)`);
      await until(() => lost.length >= 2, 5000, 'nodeLost on both subscribers');
      await sleep(500);
      clearInterval(beat);
      t.equal(lost.length, 2, 'announced once, heard by both survivors');
      t.equal(lost[0]!.id, lost[1]!.id, 'the same event');
      t.match(lost[0], { type: 'nodeLost', lostNode: 'node-a', lessons: [{ id: 'LA', title: 'Biology', schools: 2 }] });

      // The "dead" node comes back (it was only stalled): it puts its whole state back.
      await announce(a);
      await a.flush();
      await until(async () => (await b.snapshot()).lessons.some((l) => l.id === 'LA'), 3000, 'node a back');
      const back = (await b.snapshot()).lessons.find((l) => l.id === 'LA');
      t.same(back?.schools.map((s) => s.schoolId).sort(), ['s1', 's2'], 'with its schools');
    });

    t.test('a node that closes leaves at once and is not announced lost', async (t) => {
      const node = deployment();
      const a = await node('node-a');
      const b = await node('node-b');
      const lost: LiveEvent[] = [];
      const ended: LiveEvent[] = [];
      b.subscribe((e) => (e.type === 'nodeLost' ? lost : ended).push(e));
      await Promise.all([announce(a), announce(b)]);
      a.putLesson(lesson('LA', 'node-a'));
      a.publish({ type: 'lessonEnded', lessonId: 'LA', reason: 'server stop' });
      await a.close();
      t.same(
        (await b.snapshot()).nodes.map((n) => n.id),
        ['node-b'],
        'gone without waiting for the TTL',
      );
      await sleep(TTL_SECONDS * 1000 + 300);
      await announce(b);
      await b.sweep();
      await sleep(200);
      t.equal(lost.length, 0, 'no nodeLost for a clean leave');
      t.match(ended, [{ type: 'lessonEnded', lessonId: 'LA' }], 'events published just before closing still went out');
    });
  });
}
