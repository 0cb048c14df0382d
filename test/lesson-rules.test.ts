/**
 * The lesson's rules, unit-tested against a fake of its media port (test/support/fakeMedia.ts):
 * who may join, publish and receive, hands, the floor, caps, monitors unseen, the lifecycle.
 * The same rules over real mediasoup media: lesson-media.test.ts and signalling.test.ts.
 */
import t from 'tap';
import type { Principal } from '../src/auth/tokens.js';
import type { Role } from '../src/domain/index.js';
import { LessoncastError } from '../src/errors.js';
import { Lesson, type LessonOptions, type Participant } from '../src/lessons/lesson.js';
import { ABANDONED, LessonRegistry, type RegistryOptions } from '../src/lessons/registry.js';
import { FakeMedia } from './support/fakeMedia.js';

const INSTRUCTOR = 'teacher-1';

function makeLesson(opts: Partial<LessonOptions> = {}, record = false): { lesson: Lesson; media: FakeMedia; refused: string[] } {
  const media = new FakeMedia();
  const refused: string[] = [];
  const lesson = new Lesson(
    { id: 'lesson-1', title: 'Physics', subject: 'science', instructorId: INSTRUCTOR, schools: [], record, createdAt: new Date() },
    media,
    {
      reconnectGraceMs: 0,
      maxFloorHolders: 1,
      limits: { transports: 4, producers: 3, consumers: 10, actionBurst: 100, actionsPerSecond: 100 },
      onRefused: (limit) => refused.push(limit),
      ...opts,
    },
  );
  return { lesson, media, refused };
}

const who = (role: Role, id: string, lessons: Principal['lessons'] = '*'): Principal => ({ id, role, name: id, lessons });

async function seat(lesson: Lesson, role: Role, id: string): Promise<Participant> {
  return (await lesson.join(who(role, id), `conn-${id}`)).participant;
}

/** The error code a call fails with (or 'ok'). */
async function codeOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    if (err instanceof LessoncastError) return err.code;
    throw err;
  }
}

async function publish(lesson: Lesson, by: Participant, source: 'camera' | 'microphone' | 'screen' = 'camera'): Promise<string> {
  const { transportId } = await lesson.createTransport(by, 'send', false);
  return lesson.produce(by, transportId, source === 'microphone' ? 'audio' : 'video', { codecs: [] }, source);
}

t.test('joining: who may, and what a rejoin keeps', async (t) => {
  const { lesson, media } = makeLesson();
  t.equal(await codeOf(() => lesson.join(who('archivist', 'arch-1'), 'c')), 'FORBIDDEN', 'an archivist does not join lessons');
  t.equal(
    await codeOf(() => lesson.join(who('classroom', 'school-1', ['other-lesson']), 'c')),
    'FORBIDDEN',
    'a token for another lesson is refused',
  );
  t.equal(await codeOf(() => lesson.join(who('instructor', 'teacher-2'), 'c')), 'FORBIDDEN', 'another instructor cannot teach it');
  t.equal(media.opened, 0, 'refused joins open no media');

  const school = await seat(lesson, 'classroom', 'school-1');
  t.equal(media.opened, 1, 'the first join opens the media');
  lesson.raiseHand(school);
  const again = await lesson.join(who('classroom', 'school-1'), 'conn-2');
  t.ok(again.rejoined, 'the same id rejoins');
  t.equal(again.replacedConnectionId, 'conn-school-1', 'the older connection is named, to be closed');
  t.not(again.participant.handRaisedAt, null, 'the raised hand is kept');
  t.equal(await codeOf(() => lesson.join(who('monitor', 'school-1'), 'c3')), 'FORBIDDEN', 'an id cannot come back under another role');
});

t.test('monitors watch unseen', async (t) => {
  const { lesson } = makeLesson();
  const joined: Array<[string, boolean]> = [];
  lesson.on('participantJoined', (p, hidden) => joined.push([p.id, hidden]));
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const monitor = await seat(lesson, 'monitor', 'control-room');
  t.same(
    joined,
    [
      [INSTRUCTOR, false],
      ['control-room', true],
    ],
    'a monitor joins hidden',
  );
  t.same(
    lesson.visibleParticipants().map((p) => p.id),
    [INSTRUCTOR],
    'and is not listed to others',
  );
  t.equal(await codeOf(() => lesson.grantFloor(teacher, 'control-room')), 'NOT_FOUND', 'the floor cannot be given to someone unseen');
  t.equal(await codeOf(() => lesson.raiseHand(monitor)), 'FORBIDDEN', 'a monitor raises no hand');
  t.equal(await codeOf(() => lesson.createTransport(monitor, 'send', false)), 'FORBIDDEN', 'a monitor cannot set up publishing');
  const { transportId } = await lesson.createTransport(monitor, 'recv', false);
  const cameraId = await publish(lesson, teacher);
  t.equal(await codeOf(() => lesson.consume(monitor, transportId, cameraId, {})), 'ok', 'but it receives the lesson');
});

t.test('who may publish what', async (t) => {
  const { lesson, media } = makeLesson();
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const school = await seat(lesson, 'classroom', 'school-1');
  const published: string[] = [];
  lesson.on('newProducer', (info) => published.push(`${info.peerId}:${info.source}`));

  for (const source of ['camera', 'microphone', 'screen'] as const)
    t.equal(await codeOf(() => publish(lesson, teacher, source)), 'ok', `the instructor publishes the ${source}`);
  const { transportId } = await lesson.createTransport(teacher, 'send', false);
  t.equal(
    await codeOf(() => lesson.produce(teacher, transportId, 'audio', {}, 'camera')),
    'INVALID_REQUEST',
    'a camera does not carry audio',
  );

  t.equal(
    await codeOf(() => lesson.createTransport(school, 'send', false)),
    'ok',
    'a classroom may prepare to publish before it has the floor',
  );
  t.equal(await codeOf(() => publish(lesson, school, 'microphone')), 'FORBIDDEN', 'but publishes only with the floor');
  lesson.grantFloor(teacher, 'school-1');
  t.equal(await codeOf(() => publish(lesson, school, 'microphone')), 'ok', 'with the floor: its microphone');
  t.equal(await codeOf(() => publish(lesson, school, 'screen')), 'FORBIDDEN', 'never its screen');
  t.same(
    published,
    [`${INSTRUCTOR}:camera`, `${INSTRUCTOR}:microphone`, `${INSTRUCTOR}:screen`, 'school-1:microphone'],
    'each accepted producer is announced once',
  );

  lesson.revokeFloor(teacher, 'school-1');
  t.same(
    media.listProducers().filter((p) => p.peerId === 'school-1'),
    [],
    "taking the floor back closes the classroom's producers",
  );
});

t.test('hands', async (t) => {
  const { lesson } = makeLesson();
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const a = await seat(lesson, 'classroom', 'school-a');
  const b = await seat(lesson, 'classroom', 'school-b');
  t.equal(await codeOf(() => lesson.raiseHand(teacher)), 'FORBIDDEN', 'the instructor raises no hand');
  lesson.raiseHand(b);
  await new Promise((r) => setTimeout(r, 2));
  lesson.raiseHand(a);
  t.same(lesson.handQueue(), ['school-b', 'school-a'], 'hands queue in the order raised');
  t.equal(await codeOf(() => lesson.lowerHand(a, 'school-b')), 'FORBIDDEN', 'a classroom lowers only its own hand');
  lesson.lowerHand(teacher, 'school-b');
  t.same(lesson.handQueue(), ['school-a'], "the instructor lowers anyone's");
  t.equal(await codeOf(() => lesson.lowerHand(teacher, 'nobody')), 'NOT_FOUND');
});

t.test('the floor', async (t) => {
  const { lesson } = makeLesson({ maxFloorHolders: 2 });
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const [a, b, c] = [await seat(lesson, 'classroom', 'a'), await seat(lesson, 'classroom', 'b'), await seat(lesson, 'classroom', 'c')];
  const revoked: string[] = [];
  lesson.on('floorRevoked', (id) => revoked.push(id));

  t.equal(await codeOf(() => lesson.grantFloor(a, 'b')), 'FORBIDDEN', 'only the instructor gives the floor');
  lesson.raiseHand(a);
  lesson.grantFloor(teacher, 'a');
  t.equal(a.handRaisedAt, null, 'being given the floor lowers the hand');
  lesson.grantFloor(teacher, 'b');
  lesson.grantFloor(teacher, 'c');
  t.same(lesson.floorHolders(), ['b', 'c'], 'past the limit the oldest holder gives way');
  t.same(revoked, ['a']);
  t.equal(await codeOf(() => lesson.revokeFloor(b, 'c')), 'FORBIDDEN', "a classroom cannot take another's floor");
  lesson.revokeFloor(b, 'b');
  t.same(lesson.floorHolders(), ['c'], 'but hands its own back');
  t.equal(await codeOf(() => lesson.revokeFloor(teacher, 'a')), 'NOT_FOUND', 'revoking a floor not held is an error');
  lesson.leave(c.id);
  t.same(lesson.floorHolders(), [], 'leaving gives the floor back');
});

t.test('caps and rationed actions', async (t) => {
  const { lesson, refused } = makeLesson({
    limits: { transports: 2, producers: 1, consumers: 1, actionBurst: 2, actionsPerSecond: 0.001 },
  });
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const school = await seat(lesson, 'classroom', 'school-1');
  await lesson.createTransport(school, 'recv', false);
  await lesson.createTransport(school, 'recv', false);
  t.equal(await codeOf(() => lesson.createTransport(school, 'recv', false)), 'LIMIT_REACHED', 'transports are capped');
  await publish(lesson, teacher);
  t.equal(await codeOf(() => lesson.createTransport(teacher, 'send', false)), 'ok');
  lesson.raiseHand(school);
  lesson.lowerHand(school);
  t.equal(await codeOf(() => lesson.raiseHand(school)), 'RATE_LIMITED', 'hand and floor actions are rationed');
  t.same(refused, ['transports', 'lessonActions'], 'each refusal is counted by its limit');
});

t.test("media operations go through the lesson's checks", async (t) => {
  const { lesson } = makeLesson();
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const school = await seat(lesson, 'classroom', 'school-1');
  const cameraId = await publish(lesson, teacher);
  const { transportId } = await lesson.createTransport(school, 'recv', false);
  const consumer = await lesson.consume(school, transportId, cameraId, {});
  t.equal(consumer.paused, true, 'consumers start paused');
  await lesson.resumeConsumer(school, consumer.consumerId);
  t.equal(
    await codeOf(() => lesson.resumeConsumer(teacher, consumer.consumerId)),
    'CONSUMER_NOT_FOUND',
    "nobody resumes another's consumer",
  );
  t.equal(await codeOf(() => lesson.closeProducer(school, cameraId)), 'PRODUCER_NOT_FOUND', "nobody closes another's producer");
  t.equal(await codeOf(() => lesson.restartIce(teacher, transportId)), 'TRANSPORT_NOT_FOUND', "nor restarts another's transport");
  t.same(
    lesson.producers(),
    [{ producerId: cameraId, participantId: INSTRUCTOR, kind: 'video', source: 'camera' }],
    'producers as receivers see them',
  );
});

t.test('lifecycle: going live, ending, letting go', async (t) => {
  const { lesson, media } = makeLesson({}, true);
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const school = await seat(lesson, 'classroom', 'school-1');
  t.same(lesson.recording, { enabled: true, state: 'stopped', at: null }, 'a lesson to be recorded starts not recording');
  const statuses: string[] = [];
  lesson.on('recordingChanged', (s) => statuses.push(s.state));
  lesson.setRecording({ state: 'recording', at: new Date().toISOString() });
  t.equal(lesson.recording.state, 'recording');

  t.equal(await codeOf(() => lesson.goLive(school)), 'FORBIDDEN', 'only the instructor goes live');
  lesson.goLive(teacher);
  t.equal(lesson.state, 'live');
  t.equal(await codeOf(() => lesson.end(school, 'x')), 'FORBIDDEN', 'only the instructor ends it');

  const order: string[] = [];
  lesson.on('ended', () => order.push('ended'));
  lesson.on('closed', () => order.push('closed'));
  t.ok(media.listenerCount('producerClosed') > 0, 'the lesson listens to its media');
  lesson.end(teacher, 'done');
  lesson.end(undefined, 'again');
  t.same(order, ['ended', 'closed'], 'ending is idempotent: ended, then closed, once');
  t.ok(media.closed, 'its media is closed');
  t.equal(media.listenerCount('producerClosed') + media.listenerCount('mediaLost'), 0, 'and no longer listened to');
  t.equal(await codeOf(() => lesson.join(who('classroom', 'school-2'), 'c')), 'LESSON_ENDED');
  t.equal(await codeOf(() => lesson.createTransport(school, 'recv', false)), 'LESSON_ENDED', 'media refused after the end');
  lesson.setRecording({ state: 'fault', at: null, message: 'late' });
  lesson.setRecording({ state: 'stopped', at: new Date().toISOString() });
  t.same(statuses, ['recording', 'stopped'], "after the end only the recorder's final stop is told");
});

t.test('a dropped connection leaves after the grace period', async (t) => {
  const { lesson } = makeLesson({ reconnectGraceMs: 20 });
  const school = await seat(lesson, 'classroom', 'school-1');
  const left: string[] = [];
  lesson.on('participantLeft', (id) => left.push(id));
  lesson.disconnect(school.id, 'some-other-connection');
  t.ok(school.connected, "a stale connection's drop is ignored");
  lesson.disconnect(school.id, 'conn-school-1');
  t.notOk(school.connected, 'the seat is kept, disconnected');
  await new Promise((r) => setTimeout(r, 40));
  t.same(left, ['school-1'], 'and freed after the grace period');
});

t.test('media path: a classroom reports one-way or live; a change is told as participantUpdated', async (t) => {
  const { lesson, refused } = makeLesson({
    limits: { transports: 4, producers: 3, consumers: 10, actionBurst: 3, actionsPerSecond: 0.001 },
  });
  const teacher = await seat(lesson, 'instructor', INSTRUCTOR);
  const school = await seat(lesson, 'classroom', 'school-1');
  const monitor = await seat(lesson, 'monitor', 'control-room');
  t.equal(lesson.participantView(school).mediaMode, 'live', "a new seat is 'live'");
  const updates: Array<[string, string, boolean]> = [];
  lesson.on('participantUpdated', (p, hidden) => updates.push([p.id, p.mediaMode, hidden]));

  t.equal(await codeOf(() => lesson.reportMediaMode(teacher, 'one-way')), 'FORBIDDEN', 'the instructor does not report one');
  t.equal(await codeOf(() => lesson.reportMediaMode(monitor, 'one-way')), 'FORBIDDEN', 'nor does a monitor');
  lesson.reportMediaMode(school, 'one-way');
  t.equal(lesson.visibleParticipants().find((p) => p.id === 'school-1')?.mediaMode, 'one-way', 'the lesson keeps it');
  lesson.reportMediaMode(school, 'one-way');
  t.same(updates, [['school-1', 'one-way', false]], 'a change is told once; the same mode again is not news');

  const again = await lesson.join(who('classroom', 'school-1'), 'conn-2');
  t.equal(lesson.participantView(again.participant).mediaMode, 'one-way', 'a rejoin keeps it');
  lesson.reportMediaMode(school, 'live');
  t.same(updates.at(-1), ['school-1', 'live', false], 'back to live is told');
  t.equal(await codeOf(() => lesson.reportMediaMode(school, 'one-way')), 'RATE_LIMITED', 'each report is a lesson action');
  t.same(refused, ['lessonActions']);

  lesson.leave(school.id);
  const fresh = await seat(lesson, 'classroom', 'school-1');
  t.equal(lesson.participantView(fresh).mediaMode, 'live', 'a new seat after leaving starts live');
  lesson.end(teacher, 'done');
  t.equal(await codeOf(() => lesson.reportMediaMode(fresh, 'one-way')), 'LESSON_ENDED', 'not after the end');
});

/** A registry over fake media, ending lessons nobody is in after `abandonAfterMs`. */
function registryOf(abandonAfterMs: number, book?: RegistryOptions<FakeMedia>['book']): LessonRegistry<FakeMedia> {
  return new LessonRegistry({
    createMedia: () => new FakeMedia(),
    lessonOptions: {
      reconnectGraceMs: 0,
      maxFloorHolders: 1,
      limits: { transports: 4, producers: 3, consumers: 10, actionBurst: 100, actionsPerSecond: 100 },
    },
    recordByDefault: false,
    abandonAfterMs,
    ...(book ? { book } : {}),
  });
}

t.test('the registry ends a lesson nobody has been in for abandonAfterMs, and only such a lesson', async (t) => {
  const HOUR = 3600_000;
  const registry = registryOf(12 * HOUR);
  t.teardown(() => registry.close());
  const t0 = Date.now();
  const nobody = await registry.create({ title: 'Opened, nobody came', instructorId: INSTRUCTOR });
  const attended = await registry.create({ title: 'Attended', instructorId: INSTRUCTOR });
  const left = await registry.create({ title: 'Everyone left', instructorId: INSTRUCTOR });
  const watched = await registry.create({ title: 'Only the control room watches', instructorId: INSTRUCTOR });
  const reasons = new Map<string, string>();
  for (const l of [nobody, attended, left, watched]) l.on('ended', (reason) => reasons.set(l.def.id, reason));
  await attended.join(who('instructor', INSTRUCTOR), 'conn-a');
  const goer = await seat(left, 'classroom', 'school-1');
  const monitor = await watched.join(who('monitor', 'ops-1'), 'conn-m');
  t.ok(monitor.participant.hidden, 'the control room is a hidden watcher');

  registry.endAbandoned(t0 + 6 * HOUR);
  left.disconnect(goer.id, `conn-${goer.id}`);
  registry.endAbandoned(t0 + 6 * HOUR); // the last one left at 6 h: its clock starts there
  registry.endAbandoned(t0 + 12 * HOUR + 1000);
  t.equal(nobody.state, 'ended', 'opened 12 h ago and nobody came: ended');
  t.equal(reasons.get(nobody.def.id), ABANDONED, 'with the abandoned reason');
  t.equal(watched.state, 'ended', 'a hidden watcher does not keep it open');
  t.not(attended.state, 'ended', 'someone is in it: open');
  t.not(left.state, 'ended', 'everyone left 6 h ago: still open');
  registry.endAbandoned(t0 + 18 * HOUR + 1000);
  t.equal(left.state, 'ended', '12 h after the last one left: ended');
  t.not(attended.state, 'ended', 'the attended one stays open however long');

  const off = registryOf(0);
  t.teardown(() => off.close());
  const kept = await off.create({ title: 'Never ends by itself', instructorId: INSTRUCTOR });
  off.endAbandoned(t0 + 1000 * HOUR);
  t.not(kept.state, 'ended', 'abandonAfterMs 0: never');
});

t.test("a timetable lesson's abandon clock starts at the end of its slot", async (t) => {
  const HOUR = 3600_000;
  const now = Date.now();
  const def = {
    id: 'slot-1',
    title: 'Tomorrow',
    subject: '',
    instructorId: INSTRUCTOR,
    schools: [],
    record: false,
    createdAt: new Date(now),
  };
  const booked = { def, state: 'created' as const, startedAt: null, endedAt: null, endsAt: new Date(now + 20 * HOUR) };
  const registry = registryOf(12 * HOUR, {
    add: async () => undefined,
    find: async () => booked,
    current: async () => [booked],
    changed: () => undefined,
  });
  t.teardown(() => registry.close());
  const lesson = await registry.resolve('slot-1');
  registry.endAbandoned(now + 31 * HOUR);
  t.not(lesson.state, 'ended', '11 h after its slot ends: open');
  registry.endAbandoned(now + 32 * HOUR + 1);
  t.equal(lesson.state, 'ended', '12 h after: ended');
});
