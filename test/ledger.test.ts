/**
 * The per-school ledger in a running lessoncast (docs/catalog.md#the-ledger), with werift
 * classrooms: school A watches the instructor's video (so the sampler measures its link), leaves
 * and rejoins; school B raises its hand and gets the floor; school C is invited and never comes.
 * After the lesson the rows are right (bounds of ~2 s), a school's range and the region's CSV
 * return them, and bad input gets coded errors; a restart mid-lesson keeps what was counted.
 * SQLite, as one node runs it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { publish, Watcher } from '../kit/peers.js';
import { SignalClient } from '../kit/signalClient.js';
import type { LedgerRow } from '../src/catalog/ledger.js';
import { cleanupStack, createLesson, startTestServer, until } from './support/lessoncast.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const s = await startTestServer({ catalog: { ledgerWriteSeconds: 5 } });
const admin = await s.token('admin', 'admin-1');
const archivist = await s.token('archivist', 'archive-1');
// No await between this and the subtests: the root would end, and tear down, with none declared.
t.teardown(() => s.close());
const get = async (path: string, token = archivist, headers: Record<string, string> = {}) =>
  fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
const today = new Date().toISOString().slice(0, 10);
let lessonId = '';
let rows: LedgerRow[] = [];
let lessonMs = 0;
let awayMs = 0;

t.test('a lesson with two schools and an absent one', async (t) => {
  const stack = cleanupStack(t);
  const put = await fetch(`${s.url}/api/schools/school-a`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'Məktəb "Bir", Yasamal', district: 'Yasamal' }),
  });
  t.equal(put.status, 201);
  lessonId = await createLesson(s, { title: 'Fizika, rıçaqlar', schools: ['school-a', 'school-b', 'school-c'] });
  const teacher = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  let schoolA = await SignalClient.join(s, 'classroom', 'school-a', lessonId);
  const schoolB = await SignalClient.join(s, 'classroom', 'school-b', lessonId);
  stack.push(
    () => teacher.client.close(),
    () => schoolA.client.close(),
    () => schoolB.client.close(),
  );
  const sender = await publish(teacher.client, teacher.joined!.routerRtpCapabilities, { audio: false, video: 'h264' });
  stack.push(() => sender.close());
  const producerId = (await schoolA.client.waitFor('newProducer')).producerId;
  const watcher = await Watcher.start(schoolA.client, [], { connectTimeoutMs: 20_000 });
  stack.push(() => watcher.close());
  await watcher.consume(producerId);
  await watcher.firstPacket(producerId, 20_000);
  const live = await teacher.client.request('goLive', {});
  const startedAt = Date.parse(live.lesson.startedAt!);

  // Quality ticks while school A receives video.
  for (let i = 0; i < 3; i++) {
    await sleep(700);
    await s.internals.controlRoom.sampleNow();
  }
  await schoolB.client.request('raiseHand', {});
  await teacher.client.waitFor('handRaised', (d) => d.participantId === 'school-b');
  await teacher.client.request('grantFloor', { participantId: 'school-b' });
  await sleep(3000);
  await teacher.client.request('revokeFloor', { participantId: 'school-b' });

  // School A drops and comes back (as a board's page does after any drop).
  await watcher.close();
  const leftAt = Date.now();
  schoolA.client.close();
  await teacher.client.waitFor('participantUpdated', (d) => d.id === 'school-a' && !d.connected);
  await sleep(3000);
  schoolA = await SignalClient.join(s, 'classroom', 'school-a', lessonId);
  awayMs = Date.now() - leftAt;
  await sleep(2000);
  const ended = await teacher.client.request('endLesson', {});
  lessonMs = Date.parse(ended.lesson.endedAt!) - startedAt;

  rows = await until(async () => {
    const r = await s.internals.catalog.ledger.lesson(lessonId);
    return r.length === 3 && r.every((x) => x.final) && r;
  }, 'the final ledger rows');
  const [a, b, c] = rows;
  t.match(a, { schoolId: 'school-a', schoolName: 'Məktəb "Bir", Yasamal', invited: true, attendance: 'present', hands: 0, floorMs: 0 });
  t.ok(Math.abs(a!.connectedMs - (lessonMs - awayMs)) < 2000, `school A: ${a!.connectedMs} ms connected of ${lessonMs} (away ${awayMs})`);
  t.ok(a!.lastLeftAt! >= Date.parse(ended.lesson.endedAt!) - 1000, 'last left when the lesson ended');
  t.ok(a!.qualitySamples >= 2, `school A's link measured (${a!.qualitySamples} ticks)`);
  t.ok(a!.lossPctMean !== null && a!.lossPctMean < 5, `loss ${a!.lossPctMean} % on loopback`);
  t.match(b, { schoolId: 'school-b', attendance: 'present', hands: 1 });
  t.ok(Math.abs(b!.connectedMs - lessonMs) < 2000, `school B: ${b!.connectedMs} ms of ${lessonMs}`);
  t.ok(Math.abs(b!.floorMs - 3000) < 2000, `school B held the floor ${b!.floorMs} ms`);
  t.match(c, { schoolId: 'school-c', invited: true, attendance: 'absent', connectedMs: 0, firstJoinedAt: null, lastLeftAt: null });
  t.equal(
    rows.reduce((n, r) => n + r.audioOnlyMs, 0),
    0,
    'nobody was on audio only',
  );
});

t.test('REST: the lesson, a school over a range, the region as CSV', async (t) => {
  const lesson = await get(`/api/lessons/${lessonId}/ledger`);
  t.equal(lesson.status, 200);
  const body = (await lesson.json()) as { lessonId: string; rows: Array<Record<string, unknown>> };
  t.equal(body.rows.length, 3);
  t.match(body.rows[1], {
    lessonId,
    lessonTitle: 'Fizika, rıçaqlar',
    schoolId: 'school-b',
    attendance: 'present',
    handsRaised: 1,
    floorSeconds: Number,
    connectedMinutes: Number,
    final: true,
    lessonAt: String,
  });

  const school = (await (await get(`/api/schools/school-a/ledger?from=${today}&to=${today}`)).json()) as {
    total: number;
    rows: Array<{ lessonId: string }>;
  };
  t.match(school, { schoolId: 'school-a', total: 1, rows: [{ lessonId }] });

  const csv = await get(`/api/schools/school-a/ledger?from=${today}&to=${today}&format=csv`);
  t.equal(csv.status, 200);
  t.match(csv.headers.get('content-type'), /^text\/csv; charset=utf-8/);
  t.match(csv.headers.get('content-disposition'), /attachment; filename="ledger-school-a-/);
  const bytes = new Uint8Array(await csv.arrayBuffer());
  t.same([...bytes.slice(0, 3)], [0xef, 0xbb, 0xbf], 'a UTF-8 byte order mark');
  const lines = new TextDecoder('utf-8', { ignoreBOM: false }).decode(bytes).split('\r\n');
  t.ok(lines[0]!.startsWith('lessonId,lessonTitle,subject,instructorId,lessonAt,schoolId,schoolName'), 'a header row');
  t.match(lines[1], `${lessonId},"Fizika, rıçaqlar",physics,teacher-1,`);
  t.match(lines[1], ',school-a,"Məktəb ""Bir"", Yasamal",Yasamal,true,present,', 'quoted as RFC 4180 says');
  t.equal(lines[2], '', 'one row, CRLF-terminated');

  const region = await (await get(`/api/ledger?from=${today}&to=${today}&format=csv`)).text();
  t.equal(region.split('\r\n').filter(Boolean).length, 4, 'header and three schools');
  const paged = (await (await get(`/api/ledger?from=${today}&to=${today}&limit=1&offset=2`)).json()) as {
    total: number;
    rows: Array<{ schoolId: string }>;
  };
  t.match(paged, { total: 3, limit: 1, offset: 2, rows: [{ schoolId: 'school-c' }] });
});

t.test('bad input gets coded errors', async (t) => {
  const code = async (res: Promise<Response>) => {
    const r = await res;
    const b = (await r.json()) as { code: string; details?: { field?: string } };
    return `${r.status} ${b.code}${b.details?.field ? `:${b.details.field}` : ''}`;
  };
  t.equal(await code(get('/api/schools/school-a/ledger?from=2027-02-30')), '422 LEDGER_RANGE_INVALID:from', 'no such day');
  t.equal(await code(get('/api/schools/school-a/ledger?from=yesterday')), '422 LEDGER_RANGE_INVALID:from');
  t.equal(await code(get('/api/ledger?from=2027-03-01&to=2027-02-01')), '422 LEDGER_RANGE_INVALID:from', 'from after to');
  t.equal(await code(get('/api/ledger?from=2026-01-01&to=2027-06-01')), '422 LEDGER_RANGE_INVALID:to', 'over 400 days');
  t.equal(await code(get('/api/ledger?format=xml')), '400 INVALID_REQUEST');
  t.equal(await code(get('/api/ledger?limit=0')), '400 INVALID_REQUEST');
  t.equal(await code(get('/api/ledger?extra=1')), '400 INVALID_REQUEST');
  t.equal(await code(get('/api/schools/bad%20id/ledger')), '400 INVALID_REQUEST');
  t.equal(await code(get('/api/lessons/nope/ledger')), '404 LESSON_NOT_FOUND');
  t.equal(await code(get('/api/ledger', await s.token('instructor', 'teacher-1'))), '403 FORBIDDEN');
  t.equal(await code(get(`/api/lessons/${lessonId}/ledger`, await s.token('archivist', 'a-2', ['other']))), '403 FORBIDDEN');
  t.equal(await code(fetch(`${s.url}/api/ledger`)), '401 UNAUTHENTICATED');
  const scoped = (await (await get(`/api/ledger?from=${today}&to=${today}`, await s.token('monitor', 'm-1', ['other']))).json()) as {
    total: number;
  };
  t.equal(scoped.total, 0, 'a token listing other lessons sees none of these rows');
});

t.test('a restart mid-lesson keeps what was counted, and the next run adds to it', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-ledger-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const catalog = { sqlitePath: path.join(dir, 'catalog.db'), ledgerWriteSeconds: 5 };
  const first = await startTestServer({ catalog });
  const id = await createLesson(first, { schools: ['school-r'] });
  const teacher1 = await SignalClient.join(first, 'instructor', 'teacher-1', id);
  const school1 = await SignalClient.join(first, 'classroom', 'school-r', id);
  await teacher1.client.request('goLive', {});
  await school1.client.request('raiseHand', {});
  await sleep(3000);
  await first.close(); // SIGTERM's path: the lesson stays live in the catalog, its rows as they stood
  [teacher1.client, school1.client].forEach((c) => c.close());

  const second = await startTestServer({ catalog });
  t.teardown(() => second.close());
  const between = await second.internals.catalog.ledger.lesson(id);
  t.match(between, [{ schoolId: 'school-r', final: false, hands: 1 }], 'the first run’s row, not final');
  t.ok(between[0]!.connectedMs >= 2000, `${between[0]!.connectedMs} ms counted before the restart`);
  const teacher2 = await SignalClient.join(second, 'instructor', 'teacher-1', id);
  const school2 = await SignalClient.join(second, 'classroom', 'school-r', id);
  t.teardown(() => [teacher2.client, school2.client].forEach((c) => c.close()));
  await school2.client.request('raiseHand', {});
  await sleep(3000);
  await teacher2.client.request('endLesson', {});
  const [row] = await until(async () => {
    const r = await second.internals.catalog.ledger.lesson(id);
    return r[0]?.final && r;
  }, 'the final row');
  t.match(row, { schoolId: 'school-r', attendance: 'present', hands: 2 }, 'hands of both runs');
  t.ok(row!.connectedMs >= between[0]!.connectedMs + 2500, `${row!.connectedMs} ms: both runs' time`);
});
