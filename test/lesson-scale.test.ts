import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { cleanupStack, createLesson, startTestServer } from './support/lessoncast.js';
import { Watcher, publish } from '../kit/peers.js';

/**
 * Two workers; a lesson router holds 4 consumers (2 classrooms × camera + mic),
 * so the third classroom is placed on a router on the other worker, fed through
 * pipeToRouter. With every worker in use, later classrooms go to the least loaded router.
 */
t.test('a lesson bigger than the threshold spreads over two routers and reaches everyone', async (t) => {
  const s = await startTestServer({ media: { workers: 2, consumersPerRouter: 4 } });
  const cleanups = cleanupStack(t);
  cleanups.push(() => s.close());
  const lessonId = await createLesson(s);
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  const sender = await publish(teacher, joined!.routerRtpCapabilities);
  cleanups.push(() => sender.close());
  const watchers: Watcher[] = [];
  for (let i = 1; i <= 5; i++) {
    const { client, joined: j } = await SignalClient.join(s, 'classroom', `school-${i}`, lessonId);
    const w = await Watcher.start(client, j!.producers);
    cleanups.push(
      () => client.close(),
      () => w.close(),
    );
    watchers.push(w);
  }
  const media = s.internals.registry.mediaOf(lessonId)!;
  t.equal(media.routerCount, 2, 'one router per worker');
  t.same(new Set(media.workerIndexes).size, 2, 'the routers span both workers');
  t.same(s.internals.pool.slots.map((slot) => slot.consumers).sort(), [4, 6], 'classrooms spread: 2 on the first router, 3 on the second');
  for (const [i, w] of watchers.entries()) {
    await w.firstPacket(sender.producerId('audio'));
    await w.firstPacket(sender.producerId('video'));
    t.pass(`school-${i + 1} receives audio and video`);
  }
  const perWorker = await Promise.all(s.internals.pool.slots.map(async (slot) => (await slot.worker.dump()).routerIds.length));
  t.same(perWorker, [1, 1], 'one router on each worker');
});

t.test('killing a worker mid-lesson: clients are told, the lesson continues on another worker after they reconnect', async (t) => {
  const s = await startTestServer({ media: { workers: 2 } });
  const cleanups = cleanupStack(t);
  cleanups.push(() => s.close());
  const lessonId = await createLesson(s);
  const bystander = await createLesson(s, { title: 'Another lesson', instructorId: 'teacher-2' });
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  let sender = await publish(teacher, joined!.routerRtpCapabilities);
  cleanups.push(() => sender.close());
  const { client: school, joined: sj } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  cleanups.push(() => school.close());
  let watcher = await Watcher.start(school, sj!.producers);
  cleanups.push(() => watcher.close());
  await watcher.firstPacket(sender.producerId('video'));

  // The other lesson lives on the other worker (least-loaded placement) and must not notice.
  const { client: other } = await SignalClient.join(s, 'instructor', 'teacher-2', bystander);
  cleanups.push(() => other.close());
  const media = s.internals.registry.mediaOf(lessonId)!;
  const otherMedia = s.internals.registry.mediaOf(bystander)!;
  const victim = media.workerIndexes[0]!;
  t.not(otherMedia.workerIndexes[0], victim, 'the two lessons are on different workers');

  process.kill(s.internals.pool.slots[victim]!.worker.pid, 'SIGKILL');
  await teacher.waitFor('reconnectRequested');
  await school.waitFor('reconnectRequested');
  t.pass('both participants were told to reconnect');
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(
    other.notifications.some((n) => n.event === 'reconnectRequested'),
    'the other lesson is not disturbed',
  );

  // Reconnect: join again (seat kept), publish and watch again.
  await sender.close();
  await watcher.close();
  const rejoin = await teacher.request('join', { lessonId });
  t.equal(rejoin.rejoined, true);
  sender = await publish(teacher, rejoin.routerRtpCapabilities);
  const sRejoin = await school.request('join', { lessonId });
  watcher = await Watcher.start(school, sRejoin.producers);
  await watcher.firstPacket(sender.producerId('video'));
  t.pass(`media flows again, now on worker ${media.workerIndexes[0]}`);
});
