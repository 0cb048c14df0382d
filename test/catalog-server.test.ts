/**
 * The catalog in a running lessoncast: lessons survive a restart mid-lesson and participants rejoin
 * (SQLite, the process as production runs it); a PostgreSQL that goes away mid-lesson does not stop
 * the lesson (/readyz degraded, the catalog catches up when it is back); one that cannot be reached
 * at start stops the start.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { TokenService } from '../src/auth/tokens.js';
import type { Role } from '../src/domain/index.js';
import { SignalClient } from '../kit/signalClient.js';
import { cleanupStack, createLesson, runningProcess, startTestServer, until, watchedLessoncastProcess } from './support/lessoncast.js';
import { startPostgres } from './support/postgres.js';
import { freePort } from './support/redis.js';

const readyz = async (url: string) => (await (await fetch(`${url}/readyz`)).json()) as { status: string; checks: Record<string, string> };

t.test('a restart mid-lesson keeps the lesson live, and its participants rejoin', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-restart-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = randomBytes(32).toString('hex');
  const tokens = new TokenService(new TextEncoder().encode(secret), 3600);
  const env = { LESSONCAST_AUTH_TOKEN_SECRET: secret, LESSONCAST_HTTP_PORT: String(await freePort()) };
  const issuer = (url: string) => ({
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    token: async (role: Role, id: string, lessons: '*' | string[] = '*') => (await tokens.mint({ role, id, lessons })).token,
  });

  const first = await runningProcess(env, dir);
  const admin = await issuer(first.url).token('admin', 'ops');
  const created = await fetch(`${first.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Chemistry', instructorId: 'teacher-1', schools: ['school-1'], record: false }),
  });
  t.equal(created.status, 201);
  const lessonId = ((await created.json()) as { lesson: { id: string } }).lesson.id;
  const { client: teacher } = await SignalClient.join(issuer(first.url), 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(issuer(first.url), 'classroom', 'school-1', lessonId);
  const live = await teacher.request('goLive', {});
  void live;
  const before = (
    (await (await fetch(`${first.url}/api/lessons/${lessonId}`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
      lesson: { state: string; startedAt: string };
    }
  ).lesson;
  t.equal(before.state, 'live');

  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0, 'the first run stops cleanly');
  await Promise.all([teacher.closed, school.closed]);

  const second = await runningProcess(env, dir);
  t.teardown(async () => {
    second.child.kill('SIGTERM');
    await second.exited;
  });
  t.equal(second.url, first.url, 'the same address');
  t.match(second.output(), /lessons resumed from the catalog/);
  const after = (await (
    await fetch(`${second.url}/api/lessons/${lessonId}`, { headers: { authorization: `Bearer ${admin}` } })
  ).json()) as {
    lesson: { state: string; startedAt: string };
  };
  t.match(after.lesson, { state: 'live', startedAt: before.startedAt }, 'still live, from its first start');
  const listed = (await (await fetch(`${second.url}/api/lessons`, { headers: { authorization: `Bearer ${admin}` } })).json()) as {
    lessons: Array<{ id: string }>;
  };
  t.ok(
    listed.lessons.some((l) => l.id === lessonId),
    'listed again',
  );

  // The clients reconnect as they do after any drop: same tokens, same lesson.
  const rejoinedTeacher = await SignalClient.join(issuer(second.url), 'instructor', 'teacher-1', lessonId);
  const rejoinedSchool = await SignalClient.join(issuer(second.url), 'classroom', 'school-1', lessonId);
  t.teardown(() => [rejoinedTeacher.client, rejoinedSchool.client].forEach((c) => c.close()));
  t.match(rejoinedSchool.joined, { lesson: { id: lessonId, state: 'live' } }, 'the school rejoins a live lesson');
  await rejoinedSchool.client.request('raiseHand', {});
  await rejoinedTeacher.client.waitFor('handRaised', (d) => d.participantId === 'school-1');
  t.pass('and the lesson goes on: the instructor sees its hand');
});

t.test('PostgreSQL goes away mid-lesson: the lesson goes on, /readyz is degraded, the catalog catches up', async (t) => {
  const pg = await startPostgres();
  t.teardown(() => pg.close());
  const url = await pg.database();
  const s = await startTestServer({ catalog: { url, retrySeconds: 1, connectTimeoutSeconds: 2 } });
  const stack = cleanupStack(t);
  stack.push(() => s.close());
  t.same((await readyz(s.url)).checks['catalog'], 'ok');
  const lessonId = await createLesson(s, { schools: ['school-1'] });
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(s, 'classroom', 'school-1', lessonId);
  stack.push(
    () => teacher.close(),
    () => school.close(),
  );
  await teacher.request('goLive', {});
  await until(async () => (await s.internals.catalog.getLesson(lessonId))?.state === 'live', 'live in the catalog');

  await pg.stop();
  const degraded = await until(async () => {
    const r = await readyz(s.url);
    return r.status === 'degraded' && r;
  }, 'readyz degraded');
  t.match(degraded.checks['catalog'], /does not answer/, `readyz: ${degraded.checks['catalog']}`);

  await school.request('raiseHand', {});
  await teacher.waitFor('handRaised', (d) => d.participantId === 'school-1');
  await teacher.request('endLesson', {});
  t.pass('the lesson went on and ended without the database');
  const waiting = await until(async () => {
    const r = await readyz(s.url);
    return /lesson changes wait/.test(r.checks['catalog'] ?? '') && r;
  }, 'the change waiting');
  t.equal(waiting.status, 'degraded', `readyz: ${waiting.checks['catalog']}`);

  await pg.restart();
  await until(async () => (await s.internals.catalog.getLesson(lessonId))?.state === 'ended', 'the catalog caught up');
  const [row] = await until(async () => {
    const r = await s.internals.catalog.ledger.lesson(lessonId);
    return r[0]?.final && r;
  }, 'the ledger caught up');
  t.match(row, { schoolId: 'school-1', attendance: 'present', hands: 1 }, 'the ledger, kept meanwhile and written when it was back');
  const ready = await until(async () => {
    const r = await readyz(s.url);
    return r.status === 'ready' && r;
  }, 'readyz ready again');
  t.equal(ready.checks['catalog'], 'ok');
  t.equal(s.internals.book.waiting, 0, 'nothing left waiting');
  t.equal(s.internals.ledger.waiting, 0, 'no ledger rows left waiting');
});

t.test('a catalog that cannot be reached at start stops the start, naming where and why', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-nodb-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const p = watchedLessoncastProcess(dir, { LESSONCAST_CATALOG_URL: `postgres://lessoncast:hunter2secret@127.0.0.1:${port}/lessoncast` });
  t.equal(await p.exited, 1, 'exit code 1');
  t.match(
    p.log(),
    new RegExp(
      `lessoncast: failed to start: cannot open the catalog database at postgres://lessoncast:\\*\\*\\*@127\\.0\\.0\\.1:${port}/lessoncast: .*ECONNREFUSED`,
    ),
  );
  t.notMatch(p.log(), /hunter2secret/, 'the password is not shown');
});
