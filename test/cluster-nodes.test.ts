/**
 * Two real lessoncast nodes as one cluster (shared Redis and PostgreSQL, cluster.enabled): the
 * lesson is hosted on its origin, and a classroom connected to the other node is served there as
 * an edge. Its requests are relayed to the origin; its media is made on its own node, which pipes
 * the instructor's producers once. A classroom given the floor on the edge is heard on the origin.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { SignalClient } from '../kit/signalClient.js';
import { Watcher, publish } from '../kit/peers.js';
import { ClusterMedia } from '../src/cluster/clusterMedia.js';
import type { LiveSnapshot } from '../src/live/types.js';
import { cleanupStack, createLesson, expectCode, startTestServer } from './support/lessoncast.js';
import { startPostgres } from './support/postgres.js';
import { startRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const redis = await startRedis();
const pg = await startPostgres();
t.teardown(async () => {
  await redis.stop();
  await pg.close();
});
const shared = {
  redis: { url: redis.url, keyPrefix: 'cluster-nodes-test:', heartbeatSeconds: 1, nodeTtlSeconds: 4 },
  catalog: { url: await pg.database() },
  cluster: { enabled: true, secret: randomBytes(32).toString('hex'), leaseSeconds: 6 },
  auth: { tokenSecret: randomBytes(32).toString('hex') },
};
const a = await startTestServer({ nodeId: 'node-a', ...shared });
const b = await startTestServer({ nodeId: 'node-b', ...shared });
let aStopped = false;
t.teardown(async () => {
  await b.close();
  if (!aStopped) await a.close();
});

t.test('a classroom on another node is served there as an edge of the origin', async (t) => {
  const cleanups = cleanupStack(t);
  const lessonId = await createLesson(a, { title: 'Cascade' });
  t.ok(a.internals.registry.find(lessonId), 'the node that created the lesson hosts it');
  t.same(await a.internals.cluster!.leases.holder(lessonId), { node: 'node-a', epoch: 1 }, 'and holds its origin lease');

  const { client: teacher, joined: tj } = await SignalClient.join(a, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  await teacher.request('goLive', {});
  const sender = await publish(teacher, tj!.routerRtpCapabilities);
  cleanups.push(() => sender.close());
  const cam = sender.producerId('video');
  const mic = sender.producerId('audio');

  // Two classrooms connect to node b; one to node a.
  const remote: Array<{ client: SignalClient; watcher: Watcher }> = [];
  for (const id of ['school-b1', 'school-b2']) {
    const { client, joined } = await SignalClient.join(b, 'classroom', id, lessonId);
    t.same(joined!.producers.map((p) => p.source).sort(), ['camera', 'microphone'], `${id} (on node b) joined and sees the instructor`);
    t.equal(joined!.lesson.state, 'live', 'the lesson as the origin has it');
    const watcher = await Watcher.start(client, joined!.producers);
    cleanups.push(
      () => client.close(),
      () => watcher.close(),
    );
    remote.push({ client, watcher });
  }
  t.notOk(b.internals.registry.find(lessonId), 'node b does not host the lesson');
  const { client: local, joined: lj } = await SignalClient.join(a, 'classroom', 'school-a1', lessonId);
  const localWatch = await Watcher.start(local, lj!.producers);
  cleanups.push(
    () => local.close(),
    () => localWatch.close(),
  );

  for (const { watcher } of remote) {
    await watcher.firstPacket(cam);
    await watcher.firstPacket(mic);
  }
  await sleep(1500);
  for (const [i, { watcher }] of remote.entries()) {
    t.ok(watcher.packets(cam) > 20, `edge classroom ${i + 1}: video flows (${watcher.packets(cam)} packets)`);
    t.ok(watcher.packets(mic) > 30, `edge classroom ${i + 1}: audio flows (${watcher.packets(mic)} packets)`);
  }

  // Where the media is: the edge's consumers on node b, one pipe per producer from node a.
  const media = a.internals.registry.mediaOf(lessonId) as ClusterMedia;
  t.ok(media instanceof ClusterMedia, 'the origin has cluster media');
  t.same(media.edges(), ['node-b'], 'the origin knows its edge');
  t.equal(media.nodeOf('school-b1'), 'node-b', "an edge classroom's media is on its edge");
  t.equal(media.nodeOf('school-a1'), null, "a local classroom's is on the origin");
  const bDump = await b.internals.pool.slots[0]!.worker.dump();
  t.equal(bDump.routerIds.length, 1, 'node b made one router for the lesson');
  const aRouter = await a.internals.pool.slots[0]!.worker.dump();
  t.equal(aRouter.routerIds.length, 1);

  // The control room on either node sees the origin and its edge.
  const liveView = async (node: typeof a) =>
    (await (
      await fetch(`${node.url}/api/live`, { headers: { authorization: `Bearer ${await node.token('monitor', 'm')}` } })
    ).json()) as LiveSnapshot;
  let seen: LiveSnapshot['lessons'][number] | undefined;
  for (let i = 0; i < 50 && !seen?.edges.length; i++) {
    await sleep(100);
    seen = (await liveView(b)).lessons.find((l) => l.id === lessonId);
  }
  t.match(seen, { node: 'node-a', edges: ['node-b'] }, '/api/live on node b: hosted by node a, with node b as its edge');

  // Quality of a school on the edge: sampled where its media is (node b), reported by the origin.
  let edgeSchool: LiveSnapshot['lessons'][number]['schools'][number] | undefined;
  for (let i = 0; i < 20 && !edgeSchool?.quality; i++) {
    await b.internals.controlRoom.sampleNow();
    await sleep(300);
    await a.internals.controlRoom.sampleNow();
    edgeSchool = (await liveView(a)).lessons.find((l) => l.id === lessonId)?.schools.find((x) => x.schoolId === 'school-b1');
  }
  t.ok(
    edgeSchool?.quality && edgeSchool.quality.bitrateKbps > 0,
    `the control room has the edge classroom's quality (${edgeSchool?.quality?.bitrateKbps} kbit/s sent by node b)`,
  );
  t.equal(edgeSchool?.connected, true, 'and counts it connected');

  // REST on either node answers for the lesson.
  const detail = async (node: typeof a) => {
    const res = await fetch(`${node.url}/api/lessons/${lessonId}`, {
      headers: { authorization: `Bearer ${await node.token('monitor', 'm')}` },
    });
    return { status: res.status, body: (await res.json()) as { participants: Array<{ id: string }> } };
  };
  const [fromA, fromB] = [await detail(a), await detail(b)];
  t.equal(fromB.status, 200, 'GET /api/lessons/:id on the edge node: 200');
  t.same(fromB.body, fromA.body, 'the same detail as the origin gives');
  t.same(fromB.body.participants.map((p) => p.id).sort(), ['school-a1', 'school-b1', 'school-b2', 'teacher-1']);

  // The lesson's rules run at the origin: the hand of an edge classroom reaches the instructor.
  await remote[0]!.client.request('raiseHand', {});
  await teacher.waitFor('handRaised', (d) => d.participantId === 'school-b1');
  t.pass('a hand raised on node b reaches the instructor on node a');
  t.ok(await expectCode(remote[0]!.client.request('goLive', {}), 'FORBIDDEN'), 'and its errors come back from the origin');

  // The floor on the edge: the classroom's voice is piped to the origin and heard on both nodes.
  await teacher.request('grantFloor', { participantId: 'school-b1' });
  await remote[0]!.client.waitFor('floorGranted', (d) => d.participantId === 'school-b1');
  const voice = await publish(remote[0]!.client, tj!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => voice.close());
  const voiceId = voice.producerId('audio');
  await local.waitFor('newProducer', (d) => d.producerId === voiceId);
  await localWatch.firstPacket(voiceId);
  await remote[1]!.client.waitFor('newProducer', (d) => d.producerId === voiceId);
  await remote[1]!.watcher.firstPacket(voiceId);
  await sleep(1000);
  t.ok(localWatch.packets(voiceId) > 20, `the edge classroom's voice reaches a classroom on the origin (${localWatch.packets(voiceId)})`);
  t.ok(remote[1]!.watcher.packets(voiceId) > 20, `and one on the edge (${remote[1]!.watcher.packets(voiceId)})`);

  await teacher.request('revokeFloor', { participantId: 'school-b1' });
  await local.waitFor('producerClosed', (d) => d.producerId === voiceId);
  await remote[1]!.client.waitFor('producerClosed', (d) => d.producerId === voiceId);
  t.pass('the floor taken back closes the voice everywhere');

  // A classroom on the edge that disconnects keeps its seat for the grace period, at the origin.
  remote[1]!.client.close();
  await teacher.waitFor('participantUpdated', (d) => d.id === 'school-b2' && d.connected === false);
  t.pass("an edge classroom's closed socket reaches the origin as a disconnect");

  await teacher.request('endLesson', {});
  await remote[0]!.client.waitFor('lessonEnded');
  await sleep(500);
  t.same((await b.internals.pool.slots[0]!.worker.dump()).routerIds, [], "the lesson's end releases the edge's media");
});

t.test('a lesson from the timetable is placed when it opens, and joins on either node reach it', async (t) => {
  const cleanups = cleanupStack(t);
  const admin = await a.token('admin', 'admin-1');
  const put = (path: string, body: unknown) =>
    fetch(`${a.url}${path}`, {
      method: path === '/api/timetable' ? 'POST' : 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  await put('/api/schools/school-x', { name: 'School X', district: 'Sabail', boards: 1 });
  await put('/api/people/teacher-2', { name: 'Leyla', role: 'instructor' });
  await put('/api/subjects/physics', { name: 'Physics' });
  const res = await put('/api/timetable', {
    title: 'Placed',
    subjectId: 'physics',
    instructorId: 'teacher-2',
    schools: ['school-x'],
    startsAt: new Date(Date.now() - 60_000).toISOString(),
    endsAt: new Date(Date.now() + 3600_000).toISOString(),
    record: false,
  });
  t.equal(res.status, 201, 'scheduled');
  const lesson = ((await res.json()) as { lessons: Array<{ id: string }> }).lessons[0]!;
  t.notOk(a.internals.registry.find(lesson.id) ?? b.internals.registry.find(lesson.id), 'nobody hosts a timetabled lesson before it opens');
  const { client: teacher, joined } = await SignalClient.join(b, 'instructor', 'teacher-2', lesson.id);
  cleanups.push(() => teacher.close());
  t.ok(joined, 'the instructor joins through node b');
  const holder = await a.internals.cluster!.leases.holder(lesson.id);
  t.ok(holder && ['node-a', 'node-b'].includes(holder.node), `placed on ${holder?.node}`);
  const origin = holder!.node === 'node-a' ? a : b;
  t.ok(origin.internals.registry.find(lesson.id), 'the origin hosts it');
  const { client: school, joined: sj } = await SignalClient.join(origin === a ? b : a, 'classroom', 'school-x', lesson.id);
  cleanups.push(() => school.close());
  t.equal(
    sj!.participants.some((p) => p.id === 'teacher-2'),
    true,
    'a classroom on the other node sees the instructor in the same lesson',
  );
});

t.test(
  'an origin that stops (a rolling upgrade) hands its lesson over: its edge classrooms join again and reach the other node',
  async (t) => {
    const cleanups = cleanupStack(t);
    const lessonId = await createLesson(a, { title: 'Rolling upgrade' });
    const { client: teacher } = await SignalClient.join(a, 'instructor', 'teacher-1', lessonId);
    cleanups.push(() => teacher.close());
    await teacher.request('goLive', {});
    const { client: school } = await SignalClient.join(b, 'classroom', 'school-r', lessonId);
    cleanups.push(() => school.close());
    aStopped = true;
    await a.close();
    const asked = await school.waitFor('reconnectRequested', () => true, 10_000);
    t.match(asked.reason, /join again/, `the edge classroom is asked to join again ("${asked.reason}")`);
    t.notOk(
      school.notifications.some((n) => n.event === 'lessonEnded'),
      'and is not told the lesson ended',
    );
    const joined = await school.request('join', { lessonId });
    t.equal(joined.lesson.state, 'live', 'joined again on the same socket: the lesson is live');
    t.ok(b.internals.registry.find(lessonId), 'node b hosts it now');
    t.same(await b.internals.cluster!.leases.holder(lessonId), { node: 'node-b', epoch: 2 }, 'under a new term');
  },
);
