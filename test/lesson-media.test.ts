import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { cleanupStack, createLesson, expectCode, startTestServer, type TestServer } from './support/lessoncast.js';
import { Watcher, publish } from '../kit/peers.js';
import type { RtcSender } from '../kit/rtcSender.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let s: TestServer;
t.before(async () => {
  s = await startTestServer();
});
t.teardown(() => s.close());

t.test('an instructor broadcasts; three classrooms receive audio and video; the floor goes to a classroom and back', async (t) => {
  const lessonId = await createLesson(s);
  const { client: teacher, joined: tj } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  const sender = await publish(teacher, tj!.routerRtpCapabilities);
  const cleanups = cleanupStack(t);
  cleanups.push(
    () => sender.close(),
    () => teacher.close(),
  );
  const cam = sender.producerId('video');
  const mic = sender.producerId('audio');

  const schools: Array<{ client: SignalClient; watcher: Watcher }> = [];
  for (const id of ['school-1', 'school-2', 'school-3']) {
    const { client, joined } = await SignalClient.join(s, 'classroom', id, lessonId);
    t.same(joined!.producers.map((p) => p.source).sort(), ['camera', 'microphone'], `${id} sees the instructor's camera and microphone`);
    const watcher = await Watcher.start(client, joined!.producers);
    cleanups.push(
      () => client.close(),
      () => watcher.close(),
    );
    schools.push({ client, watcher });
  }
  const { client: monitor, joined: mj } = await SignalClient.join(s, 'monitor', 'control-room', lessonId);
  const monitorWatch = await Watcher.start(monitor, mj!.producers);
  cleanups.push(
    () => monitor.close(),
    () => monitorWatch.close(),
  );

  for (const [i, { watcher }] of schools.entries()) {
    const audioMs = await watcher.firstPacket(mic);
    const videoMs = await watcher.firstPacket(cam);
    t.pass(`school-${i + 1}: first audio after ${audioMs.toFixed(0)} ms, first video after ${videoMs.toFixed(0)} ms`);
  }
  await monitorWatch.firstPacket(cam);
  await sleep(1500);
  for (const [i, { watcher }] of schools.entries()) {
    t.ok(watcher.packets(mic) > 30, `school-${i + 1} audio flows (${watcher.packets(mic)} packets)`);
    t.ok(watcher.packets(cam) > 20, `school-${i + 1} video flows (${watcher.packets(cam)} packets)`);
  }
  t.ok(monitorWatch.packets(cam) > 20, 'the monitor watches too');

  // Pause and resume one classroom's video; ask for a layer (single-layer stream: accepted, no effect).
  const third = schools[2]!;
  const camConsumer = third.watcher.consumerOf.get(cam)!;
  await third.client.request('pauseConsumer', { consumerId: camConsumer });
  await sleep(300);
  const pausedAt = third.watcher.packets(cam);
  await sleep(700);
  t.ok(third.watcher.packets(cam) - pausedAt <= 2, 'a paused consumer sends nothing');
  await third.client.request('resumeConsumer', { consumerId: camConsumer });
  await third.client.request('setPreferredLayers', { consumerId: camConsumer, spatialLayer: 2 });
  await sleep(1500);
  t.ok(third.watcher.packets(cam) - pausedAt > 10, 'resumed, video flows again');
  t.notOk(
    teacher.notifications.some((n) => n.event === 'participantJoined' && (n.data as { id: string }).id === 'control-room'),
    'invisibly',
  );

  // A classroom asks, is given the floor, and speaks to the others.
  const asker = schools[0]!;
  await asker.client.request('raiseHand', {});
  await teacher.waitFor('handRaised', (d) => d.participantId === 'school-1');
  await teacher.request('grantFloor', { participantId: 'school-1' });
  await asker.client.waitFor('floorGranted', (d) => d.participantId === 'school-1');
  const voice: RtcSender = await publish(asker.client, tj!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => voice.close());
  const voiceId = voice.producerId('audio');
  for (const other of schools.slice(1)) {
    await other.client.waitFor('newProducer', (d) => d.producerId === voiceId && d.participantId === 'school-1');
    await other.watcher.firstPacket(voiceId);
  }
  await sleep(1000);
  for (const other of schools.slice(1))
    t.ok(other.watcher.packets(voiceId) > 20, `the classroom's voice reaches the others (${other.watcher.packets(voiceId)} packets)`);

  // The floor is taken back: its producer closes and everyone is told.
  await teacher.request('revokeFloor', { participantId: 'school-1' });
  for (const other of schools.slice(1)) await other.client.waitFor('producerClosed', (d) => d.producerId === voiceId);
  await schools[1]!.client.waitFor('consumerClosed', (d) => d.producerId === voiceId);
  const lesson = s.internals.registry.get(lessonId);
  t.notOk(
    lesson.producers().some((p) => p.producerId === voiceId),
    'the classroom producer is gone',
  );
  t.ok(
    await expectCode(
      asker.client.request('produce', { transportId: 'x', kind: 'audio', rtpParameters: { codecs: [] }, source: 'microphone' }),
      'FORBIDDEN',
    ),
    'and it cannot publish again',
  );

  // Ending the lesson releases every mediasoup object.
  await teacher.request('endLesson', {});
  const dump = await s.internals.pool.slots[0]!.worker.dump();
  t.same(dump.routerIds, [], 'no router left');
  // Signalling, the live agent and every other observer let go of the lesson when it closes.
  t.same(lesson.eventNames(), [], 'nobody listens to the ended lesson any more');
});
