/**
 * Boards and revocation across two nodes sharing Redis and PostgreSQL: an admin on one node enrols a
 * school's board, the board trades its credential for a session on the other and joins; revoking the
 * device, or deleting a person, closes their live connections on the other node within 5 s and
 * refuses their next request and reconnect with TOKEN_REVOKED. The catalog's REST is checked on the
 * way: bodies validated, timetable conflicts coded.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { cleanupStack, startTestServer, type TestServer } from './support/lessoncast.js';
import { startPostgres } from './support/postgres.js';
import { testRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pg = await startPostgres();
t.teardown(() => pg.close());
const redis = await testRedis();
t.teardown(() => redis.close());

async function call(s: TestServer, method: string, route: string, token: string | undefined, body?: unknown) {
  const res = await fetch(`${s.url}${route}`, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

t.test('two nodes: enrol on one, revoke on one, closed on the other', async (t) => {
  const url = await pg.database();
  const shared = {
    catalog: { url },
    redis: { url: redis.url, keyPrefix: `revoke-${randomBytes(4).toString('hex')}:` },
    auth: { tokenSecret: randomBytes(32).toString('hex') },
  };
  const a = await startTestServer({ ...shared, nodeId: 'node-a' });
  const b = await startTestServer({ ...shared, nodeId: 'node-b' });
  const stack = cleanupStack(t);
  stack.push(
    () => a.close(),
    () => b.close(),
  );
  const admin = await a.token('admin', 'ops');

  // The catalog, through node A.
  t.equal((await call(a, 'PUT', '/api/schools/school-7', admin, { name: 'School 7', district: 'Sabail', boards: 2 })).status, 201);
  t.equal((await call(a, 'PUT', '/api/schools/school-7', admin, { name: 'School 7', boards: 3 })).status, 200, 'a second put replaces');
  t.match(await call(a, 'PUT', '/api/schools/school-8', admin, { name: '', boards: -1 }), {
    status: 400,
    body: { code: 'INVALID_REQUEST' },
  });
  t.match(await call(a, 'PUT', '/api/people/teacher-7', admin, { name: 'Leyla', role: 'janitor' }), { status: 400 });
  t.equal((await call(a, 'PUT', '/api/people/teacher-7', admin, { name: 'Leyla', role: 'instructor' })).status, 201);
  t.equal((await call(a, 'PUT', '/api/subjects/physics', admin, { name: 'Physics' })).status, 201);
  t.match(await call(a, 'PUT', '/api/subjects/physics', await a.token('instructor', 'teacher-7'), { name: 'x' }), {
    status: 403,
    body: { code: 'FORBIDDEN' },
  });
  const now = Date.now();
  const at = (ms: number) => new Date(ms).toISOString();
  const entry = { title: 'Levers', subjectId: 'physics', instructorId: 'teacher-7', schools: ['school-7'], record: false };
  const scheduled = await call(a, 'POST', '/api/timetable', admin, { ...entry, startsAt: at(now - 60_000), endsAt: at(now + 3600_000) });
  t.equal(scheduled.status, 201, 'scheduled now');
  const lessonId = (scheduled.body['lessons'] as Array<{ id: string }>)[0]!.id;
  t.match(await call(b, 'POST', '/api/timetable', admin, { ...entry, startsAt: at(now + 1800_000), endsAt: at(now + 5400_000) }), {
    status: 409,
    body: { code: 'INSTRUCTOR_BUSY', details: { lessonId } },
  });
  t.match(await call(b, 'POST', '/api/timetable', admin, { ...entry, startsAt: at(now), endsAt: at(now - 1) }), {
    status: 422,
    body: { code: 'TIMETABLE_INVALID' },
  });
  t.match(
    await call(b, 'POST', '/api/timetable', admin, { ...entry, schools: ['school-x'], startsAt: at(now + 9e6), endsAt: at(now + 9.1e6) }),
    {
      status: 404,
      body: { code: 'SCHOOL_NOT_FOUND' },
    },
  );
  const weekly = await call(b, 'POST', '/api/timetable', admin, {
    ...entry,
    startsAt: at(now + 7 * 86_400_000),
    endsAt: at(now + 7 * 86_400_000 + 3600_000),
    weekly: { until: at(now + 28 * 86_400_000).slice(0, 10) },
  });
  t.equal((weekly.body['lessons'] as unknown[]).length, 4, 'a weekly series: four lessons');

  // The board: enrolled on A, its session made on B.
  const enrolled = await call(a, 'POST', '/api/devices', admin, { schoolId: 'school-7', name: 'Board 1' });
  t.equal(enrolled.status, 201);
  const credential = enrolled.body['credential'] as string;
  t.match(enrolled.body['link'], new RegExp(`^${a.url}/classroom#device=lcd1\\.`), 'a link with the credential in its fragment');
  const deviceId = (enrolled.body['device'] as { id: string }).id;
  t.match(await call(b, 'POST', '/api/devices/session', undefined, { credential: credential.slice(0, -2) + 'xx' }), {
    status: 401,
    body: { code: 'UNAUTHENTICATED' },
  });
  const session = await call(b, 'POST', '/api/devices/session', undefined, { credential });
  t.equal(session.status, 200);
  t.match(session.body, { school: { id: 'school-7', name: 'School 7' }, lessons: [{ id: lessonId, state: 'created' }] }, "today's lessons");
  const boardToken = session.body['token'] as string;

  const board = await SignalClient.connect(b.wsUrl);
  await board.request('authenticate', { token: boardToken });
  const joined = await board.request('join', { lessonId });
  t.match(joined, { lesson: { id: lessonId } }, 'the board joins the lesson on B with its session');
  const teacher = await SignalClient.connect(b.wsUrl);
  const teacherToken = await b.token('instructor', 'teacher-7', [lessonId]);
  await teacher.request('authenticate', { token: teacherToken });
  await teacher.request('join', { lessonId });
  stack.push(
    () => board.close(),
    () => teacher.close(),
  );

  // Revoke the device on A: B closes the board within 5 s.
  const revokedAt = Date.now();
  t.equal((await call(a, 'DELETE', `/api/devices/${deviceId}`, admin)).status, 200);
  const closed = await Promise.race([board.closed, new Promise<'late'>((r) => setTimeout(() => r('late'), 5000))]);
  t.match(closed, { code: 4401 }, `the board's connection on B closed ${Date.now() - revokedAt} ms after the revocation`);
  await teacher.waitFor('participantLeft', (d) => d.participantId === 'school-7');
  t.pass('and its seat is taken at once');
  const again = await SignalClient.connect(b.wsUrl);
  stack.push(() => again.close());
  const refused = await again.request('authenticate', { token: boardToken }).catch((e: { code?: string }) => e.code);
  t.equal(refused, 'TOKEN_REVOKED', 'its reconnect is refused');
  t.match(
    await call(a, 'POST', '/api/devices/session', undefined, { credential }),
    { status: 401, body: { code: 'TOKEN_REVOKED' } },
    'no new session',
  );

  // Delete the instructor on B: A refuses their token, B closes their connection.
  const personGone = Date.now();
  t.equal((await call(b, 'DELETE', '/api/people/teacher-7', admin)).status, 200);
  const teacherClosed = await Promise.race([teacher.closed, new Promise<'late'>((r) => setTimeout(() => r('late'), 5000))]);
  t.match(teacherClosed, { code: 4401 }, `the instructor's connection closed ${Date.now() - personGone} ms after the deletion`);
  // A hears of it over the bus (B applied it at once): the next request there is refused within the same 5 s.
  let onA: number;
  const deadline = Date.now() + 5000;
  while ((onA = (await call(a, 'GET', '/api/timetable', teacherToken)).status) === 200 && Date.now() < deadline) await sleep(20);
  t.equal(onA, 401, `next request refused on A (${Date.now() - personGone} ms after the deletion)`);
  t.match(await call(a, 'GET', '/api/timetable', teacherToken), { body: { code: 'TOKEN_REVOKED' } });
  t.match(
    await call(a, 'GET', '/api/people?deleted=true', admin),
    { status: 200, body: { people: [{ id: 'teacher-7' }] } },
    'kept, deleted',
  );
  t.equal((await call(a, 'GET', '/api/people/teacher-7', admin)).status, 404);
});
