/**
 * The ledger's pure accounting (src/lessons/ledgerTally.ts) and its recorder's rules
 * (src/lessons/ledgerRecorder.ts) against small fakes: a lesson that is an EventEmitter, a ledger
 * that is a Map, a clock the test moves.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import type { Lesson } from '../src/lessons/lesson.js';
import { LedgerRecorder, type LedgerPort } from '../src/lessons/ledgerRecorder.js';
import {
  Coverage,
  emptyHistogram,
  LOSS_EDGES,
  mean,
  mergeTally,
  p95,
  addSample,
  SchoolTally,
  type SchoolTallyState,
} from '../src/lessons/ledgerTally.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} } as never;
const S = 1000;
const M = 60 * S;

t.test('coverage: the union of boards counts once, only from the start on', async (t) => {
  const c = new Coverage();
  c.open('a', 0);
  c.startCounting(10 * S);
  c.open('b', 20 * S);
  c.close('a', 30 * S); // b still on: the union goes on
  t.equal(c.totalMs(40 * S), 30 * S, 'open part counted from the start (10 s) to now');
  t.ok(c.close('b', 50 * S), 'the last board closes the union');
  t.equal(c.totalMs(100 * S), 40 * S);
  c.open('a', 60 * S);
  c.close('a', 70 * S);
  t.equal(c.totalMs(100 * S), 50 * S, 'a second stay adds');
  t.notOk(c.close('zzz', 80 * S), 'closing what is not open changes nothing');
  const never = new Coverage();
  never.open('a', 0);
  never.close('a', 50 * S);
  t.equal(never.totalMs(60 * S), 0, 'nothing counts before the lesson went live');
});

t.test('histogram: exact mean, p95 as a bucket edge, merge', async (t) => {
  const h = emptyHistogram(LOSS_EDGES);
  t.equal(mean(h), null);
  t.equal(p95(h, LOSS_EDGES), null);
  for (let i = 0; i < 95; i++) addSample(h, LOSS_EDGES, 0);
  for (let i = 0; i < 5; i++) addSample(h, LOSS_EDGES, 12);
  addSample(h, LOSS_EDGES, Number.NaN);
  addSample(h, LOSS_EDGES, -1);
  t.equal(h.count, 100, 'NaN and negatives are not samples');
  t.equal(mean(h), 0.6);
  t.equal(p95(h, LOSS_EDGES), 0, '95 of 100 at 0');
  addSample(h, LOSS_EDGES, 250);
  t.equal(p95(h, LOSS_EDGES), 15, 'the 96th of 101 is in the bucket up to 15');
  const a = new SchoolTally('s', true, 0);
  a.sample(1, 40);
  const b = new SchoolTally('s', true, 0);
  b.sample(3, null);
  const merged = mergeTally(a.state(0), b.state(0));
  t.equal(merged.loss.count, 2);
  t.equal(mean(merged.loss), 2);
  t.equal(merged.rtt.count, 1);
});

t.test('school tally: stays, audio only while connected, hands, floor, end', async (t) => {
  const s = new SchoolTally('school-1', true, null);
  s.joined('school-1', 5 * S); // before the lesson goes live
  s.live(10 * S);
  s.audio('school-1', true, 20 * S);
  s.audio('school-1', false, 50 * S);
  s.handRaised();
  s.floorGranted('school-1', 60 * S);
  s.floorRevoked('school-1', 75 * S);
  s.left('school-1', 2 * M);
  s.audio('school-1', true, 130 * S); // not connected: does not count
  s.joined('school-1', 3 * M);
  s.floorGranted('school-1', 4 * M);
  s.end(5 * M);
  const r = s.state(10 * M);
  t.match(r, {
    firstJoinedAt: 5 * S,
    lastLeftAt: 5 * M,
    connectedMs: 2 * M - 10 * S + 2 * M,
    audioOnlyMs: 30 * S,
    hands: 1,
    floorMs: 15 * S + M,
  });
});

/** A lesson as the recorder reads it: an emitter with a definition, a state and participants. */
function fakeLesson(id: string, schools: string[]) {
  const e = new EventEmitter() as EventEmitter & {
    id: string;
    def: { schools: string[]; createdAt: Date };
    state: string;
    startedAt: Date | null;
    endedAt: Date | null;
    participants: Map<string, unknown>;
  };
  Object.assign(e, {
    id,
    def: { schools, createdAt: new Date(0) },
    state: 'created',
    startedAt: null,
    endedAt: null,
    participants: new Map(),
  });
  return e;
}
const classroom = (id: string, connected = true) => ({ id, role: 'classroom', connected });
/** A lesson live since 0, followed by `recorder` (one run of it: the same id again is a later run). */
function liveRun(recorder: LedgerRecorder, id: string, schools: string[]) {
  const lesson = fakeLesson(id, schools);
  lesson.startedAt = new Date(0);
  lesson.state = 'live';
  recorder.attach(lesson as unknown as Lesson);
  return lesson;
}

function memoryLedger(): LedgerPort & { rows: Map<string, { rows: SchoolTallyState[]; final: boolean }>; away: boolean } {
  const rows = new Map<string, { rows: SchoolTallyState[]; final: boolean }>();
  const port = {
    rows,
    away: false,
    put: async (lessonId: string, _at: number, r: SchoolTallyState[], final: boolean) => {
      if (port.away) throw new Error('connect ECONNREFUSED');
      rows.set(lessonId, { rows: structuredClone(r), final });
    },
    stored: async (lessonId: string) => {
      if (port.away) throw new Error('connect ECONNREFUSED');
      return { rows: structuredClone(rows.get(lessonId)?.rows ?? []) };
    },
  };
  return port;
}

t.test('recorder: rows for every invited school, kept while the database is away, final at the end', async (t) => {
  let now = 0;
  const ledger = memoryLedger();
  const rec = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent, now: () => now });
  const lesson = fakeLesson('L1', ['a', 'b', 'c']);
  rec.attach(lesson as unknown as Lesson);
  lesson.emit('participantJoined', classroom('a'), false);
  lesson.emit('participantJoined', { id: 'teacher', role: 'instructor', connected: true }, false);
  lesson.startedAt = new Date(0);
  lesson.state = 'live';
  lesson.emit('started');
  now = 10 * S;
  lesson.emit('participantJoined', classroom('b'), false);
  lesson.emit('handRaised', 'b', now);
  lesson.emit('handRaised', 'teacher', now);
  lesson.emit('floorGranted', 'b');
  now = 20 * S;
  lesson.emit('floorRevoked', 'b');
  lesson.emit('participantUpdated', classroom('b', false), false);
  now = 30 * S;
  lesson.emit('participantUpdated', classroom('b', true), false);
  rec.sampled([{ lessonId: 'L1', schools: [{ schoolId: 'a', connected: true, quality: { bitrateKbps: 900, lossPct: 2, rttMs: 35 } }] }]);
  now = 60 * S;
  await rec.flush();
  const mid = ledger.rows.get('L1')!;
  t.equal(mid.final, false, 'a running lesson is not final');
  t.same(
    mid.rows.map((r) => [r.schoolId, r.connectedMs]),
    [
      ['a', 60 * S],
      ['b', 40 * S],
      ['c', 0],
    ],
    'open stays counted up to the write; the absent school has its row',
  );

  ledger.away = true;
  now = 90 * S;
  lesson.endedAt = new Date(now);
  lesson.state = 'ended';
  lesson.emit('ended', 'done');
  await rec.flush();
  t.match(rec.problem(), /waits for the catalog \(connect ECONNREFUSED\)/, 'behind, and says why');
  ledger.away = false;
  await new Promise((r) => setTimeout(r, 1300));
  t.equal(rec.problem(), undefined, 'caught up');
  const end = ledger.rows.get('L1')!;
  t.equal(end.final, true);
  t.match(end.rows, [
    { schoolId: 'a', connectedMs: 90 * S, firstJoinedAt: 0, lastLeftAt: 90 * S, loss: { count: 1 }, rtt: { count: 1 } },
    { schoolId: 'b', connectedMs: 70 * S, hands: 1, floorMs: 10 * S, lastLeftAt: 90 * S },
    { schoolId: 'c', invited: true, connectedMs: 0, firstJoinedAt: null },
  ]);
  t.equal(rec.waiting, 0, 'an ended lesson written final is let go');
});

t.test('recorder: a restart mid-lesson adds to what the first run stored', async (t) => {
  let now = 0;
  const ledger = memoryLedger();
  const first = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent, now: () => now });
  const run1 = liveRun(first, 'L2', ['a']);
  run1.emit('participantJoined', classroom('a'), false);
  run1.emit('handRaised', 'a', 0);
  now = 5 * M;
  await first.stop(); // shutdown: written as it stands
  run1.emit('ended', 'server stop'); // the registry ends it after: not final
  t.equal(ledger.rows.get('L2')!.final, false);

  const second = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent, now: () => now });
  const run2 = liveRun(second, 'L2', ['a']);
  now = 6 * M;
  run2.emit('participantJoined', classroom('a'), false);
  run2.emit('handRaised', 'a', now);
  now = 8 * M;
  run2.endedAt = new Date(now);
  run2.emit('ended', 'done');
  await second.flush();
  t.match(ledger.rows.get('L2'), {
    final: true,
    rows: [{ schoolId: 'a', connectedMs: 7 * M, hands: 2, firstJoinedAt: 0, lastLeftAt: 8 * M }],
  });
});

t.test('recorder: a lesson that never happened leaves no rows', async (t) => {
  const ledger = memoryLedger();
  const rec = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent });
  const cancelled = fakeLesson('L3', ['a', 'b']);
  rec.attach(cancelled as unknown as Lesson);
  cancelled.emit('ended', 'cancelled');
  await rec.flush();
  t.notOk(ledger.rows.has('L3'), 'no absent rows for a cancelled lesson');
  t.equal(rec.waiting, 0);
});

t.test('recorder in a cluster: a node that lost the lease writes nothing; the next origin adds to the last write', async (t) => {
  let now = 0;
  const ledger = memoryLedger();
  let leased = true;
  const old = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent, now: () => now, holds: () => leased });
  const run1 = liveRun(old, 'L4', ['a']);
  run1.emit('participantJoined', classroom('a'), false);
  now = 1 * M;
  await old.flush();
  t.match(ledger.rows.get('L4')!.rows, [{ connectedMs: 1 * M }], 'the origin writes while it holds the lease');

  // Paused for 2 minutes: another node took the lease and went on.
  leased = false;
  const next = new LedgerRecorder({ ledger, writeSeconds: 30, retrySeconds: 1, log: silent, now: () => now });
  const run2 = liveRun(next, 'L4', ['a']);
  now = 1.5 * M;
  run2.emit('participantJoined', classroom('a'), false);
  now = 3 * M;
  await next.flush();
  t.match(ledger.rows.get('L4')!.rows, [{ connectedMs: 2.5 * M }], 'the new origin adds to what the old one wrote');

  // The old one wakes: its timer fires before its renewal fails, then it hands the lesson over.
  await old.flush();
  run1.emit('handedOver', 'lease lost', false);
  await old.flush();
  t.match(ledger.rows.get('L4')!.rows, [{ connectedMs: 2.5 * M }], 'the old origin wrote nothing over it (its 3 min were not counted)');
  t.equal(old.waiting, 0, 'and let the lesson go');
});
