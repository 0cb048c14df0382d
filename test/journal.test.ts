import { EventEmitter } from 'node:events';
import t from 'tap';
import { LessonJournal, type JournalParticipant } from '../src/lessons/journal.js';
import type { LessonEvents } from '../src/lessons/lesson.js';
import type { ParticipantView } from '../src/domain/index.js';

/** A lesson reduced to what the journal reads: present participants and domain events. */
function fakeLesson(): EventEmitter<LessonEvents> & { participants: Map<string, JournalParticipant> } {
  return Object.assign(new EventEmitter<LessonEvents>(), { participants: new Map() });
}

const view = (id: string, connected = true): ParticipantView => ({
  id,
  role: 'classroom',
  name: `School ${id}`,
  connected,
  handRaisedAt: null,
  hasFloor: false,
  mediaMode: 'live',
});

t.test('the journal: who was there when, what happened, nothing after close', async (t) => {
  const lesson = fakeLesson();
  const origin = new Date(Date.now() - 5000);
  lesson.participants.set('teacher-1', {
    id: 'teacher-1',
    role: 'instructor',
    name: 'Teacher',
    hidden: false,
    connected: true,
    joinedAt: new Date(origin.getTime() - 1000),
  });
  lesson.participants.set('monitor-1', {
    id: 'monitor-1',
    role: 'monitor',
    name: 'Monitor',
    hidden: true,
    connected: true,
    joinedAt: origin,
  });
  let changes = 0;
  const errors: string[] = [];
  const journal = new LessonJournal(lesson, { origin, onChange: () => changes++, onError: (event) => errors.push(event) });
  journal.open();
  journal.open(); // idempotent: one subscription
  t.same(
    journal.attendance().map((a) => a.participantId),
    ['teacher-1'],
    'present participants taken in, hidden ones not',
  );

  lesson.emit('participantJoined', view('school-1'), false);
  lesson.emit('participantJoined', view('admin-1'), true);
  lesson.emit('participantUpdated', view('school-1', false), false);
  lesson.emit('participantUpdated', view('school-1', false), false);
  lesson.emit('handRaised', 'school-1', Date.now());
  lesson.emit('reconnectRequested', ['school-1'], 'worker died');
  lesson.emit('participantLeft', 'school-1', false);
  lesson.emit('ended', 'instructor ended');
  journal.note('recordingStopped', undefined, { reason: 'instructor ended' });

  t.same(
    journal.events().map((e) => e.type),
    ['participantJoined', 'participantDisconnected', 'handRaised', 'mediaLost', 'participantLeft', 'lessonEnded', 'recordingStopped'],
    'visible events once each, in order',
  );
  t.ok(
    journal.events().every((e) => e.t >= 5),
    'on the lesson timeline',
  );
  t.equal(changes, 7, 'every line reported as a change');
  const school = journal.attendance().find((a) => a.participantId === 'school-1')!;
  t.equal(school.intervals.length, 1);
  t.not(school.intervals[0]!.leftAt, null, 'the stay ended when the school left');

  const end = new Date();
  journal.closeAttendance(end);
  t.equal(
    journal.attendance().find((a) => a.participantId === 'teacher-1')!.intervals[0]!.leftAt,
    end.toISOString(),
    'open stays end with the lesson',
  );

  journal.close();
  journal.close();
  lesson.emit('handLowered', 'school-1');
  t.equal(journal.events().length, 7, 'nothing journaled after close');
  t.equal(lesson.listenerCount('handLowered'), 0, 'no listener left on the lesson');
  t.same(errors, []);
});

t.test('a handler that throws is reported, never thrown into the lesson', async (t) => {
  const lesson = fakeLesson();
  const errors: string[] = [];
  const journal = new LessonJournal(lesson, {
    origin: new Date(),
    onChange: () => {
      throw new Error('disk on fire');
    },
    onError: (event) => errors.push(event),
  });
  journal.open();
  t.doesNotThrow(() => lesson.emit('floorGranted', 'school-1'));
  t.same(errors, ['floorGranted']);
});
