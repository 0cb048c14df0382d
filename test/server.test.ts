import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { can, type Permission } from '../src/auth/permissions.js';
import { ROLES } from '../src/domain/index.js';
import { ConfigError } from '../src/config/load.js';
import { rawRequest, type RawResponse } from './support/http.js';
import { SignalClient } from '../kit/signalClient.js';
import { runningProcess, spawnLessoncastProcess, startTestServer } from './support/lessoncast.js';

const restDoc = readFileSync(path.resolve('docs/rest.md'), 'utf8');

/** dist/main.js as its own process in a fresh folder, once it has printed where it listens. */
t.test('the server starts, /healthz and /readyz answer, unknown routes are problem+json', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const health = await fetch(`${s.url}/healthz`);
  t.equal(health.status, 200);
  t.equal(((await health.json()) as { status: string }).status, 'ok');
  const ready = await fetch(`${s.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { status: 'ready', checks: { workers: 'ok', recordings: 'ok', catalog: 'ok' } });
  const missing = await fetch(`${s.url}/nope`);
  t.equal(missing.status, 404);
  t.match(missing.headers.get('content-type'), /application\/problem\+json/);
});

t.test('SIGTERM: the process drains, tells clients, and exits 0 in bounded time', async (t) => {
  const p = await runningProcess({ LESSONCAST_LOG_LEVEL: 'info' });
  t.teardown(p.cleanup);
  t.equal((await fetch(`${p.url}/healthz`)).status, 200, 'serves /healthz');
  const started = Date.now();
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0, 'exit code 0');
  t.ok(Date.now() - started < 15000, `stopped in ${Date.now() - started} ms`);
  t.match(p.output(), /lessoncast stopped/, 'logged an orderly stop');
  t.notMatch(p.output(), /eyJ[A-Za-z0-9_-]{10,}/, 'no token in the logs');
});

t.test('every error is problem+json with a code docs/rest.md lists, and every answer says nosniff', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const admin = { authorization: `Bearer ${await s.token('admin', 'ops')}` };
  const get = (target: string, headers: Record<string, string> = {}) => rawRequest(s.url, 'GET', target, headers);
  // The oversized body is announced, not sent: Fastify refuses it from content-length alone.
  const post = (headers: Record<string, string>, body: string) => rawRequest(s.url, 'POST', '/api/lessons', { ...admin, ...headers }, body);
  const cases: Array<[string, () => Promise<RawResponse>, number, string]> = [
    ['a URL that does not decode', () => get('/api/recordings/%ff%fe'), 400, 'BAD_URL'],
    ['an id of 300 characters', () => get(`/api/recordings/${'a'.repeat(300)}`), 414, 'URL_TOO_LONG'],
    [
      'a 1 MB Authorization header',
      () => get('/api/lessons', { authorization: `Bearer ${'a'.repeat(1 << 20)}` }),
      431,
      'HEADERS_TOO_LARGE',
    ],
    ['a request line that is not HTTP', () => rawRequest(s.url, 'GET', '/healthz HTTP/1.1 junk'), 400, 'BAD_HTTP_REQUEST'],
    ['a plain GET of /ws', () => get('/ws'), 426, 'UPGRADE_REQUIRED'],
    ['a plain GET of /api/live/feed', () => get('/api/live/feed'), 426, 'UPGRADE_REQUIRED'],
    [
      'a body over 1 MiB',
      () => post({ 'content-type': 'application/json', 'content-length': String(2 << 20) }, '{"title":"'),
      413,
      'BODY_TOO_LARGE',
    ],
    ['a body in XML', () => post({ 'content-type': 'application/xml' }, '<lesson/>'), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a body that breaks the schema', () => post({ 'content-type': 'application/json' }, '{"title":""}'), 400, 'INVALID_REQUEST'],
    ['no token', () => get('/api/lessons'), 401, 'UNAUTHENTICATED'],
    ['no such route', () => get('/nope'), 404, 'NOT_FOUND'],
  ];
  for (const [name, send, status, code] of cases) {
    const res = await send();
    t.equal(res.status, status, `${name}: ${status}`);
    t.match(res.headers['content-type'], /^application\/problem\+json/, `${name}: problem+json`);
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${name}: nosniff`);
    t.match(JSON.parse(res.body), { type: `urn:lessoncast:error:${code}`, status, code }, `${name}: ${code}`);
    t.match(restDoc, `| ${status} | \`${code}\` |`, `${code} is documented in docs/rest.md`);
    if (status === 426) t.equal(res.headers['upgrade'], 'websocket', `${name}: says which upgrade`);
  }
  const ok = await fetch(`${s.url}/api/lessons`, { headers: admin });
  t.equal(ok.status, 200);
  t.equal(ok.headers.get('x-content-type-options'), 'nosniff', 'API answers carry nosniff too');
});

t.test('client mistakes are logged as warnings without a stack, and counted in /metrics', async (t) => {
  const p = await runningProcess({ LESSONCAST_LOG_LEVEL: 'info' });
  t.teardown(p.cleanup);
  /** Opens a socket, sends one frame, and waits for the server to close it. */
  const sendFrame = async (route: string, frame: Buffer) => {
    const ws = new WebSocket(p.url.replace(/^http/, 'ws') + route);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => undefined);
    ws.send(frame, { binary: false });
    return closed;
  };
  t.equal(await sendFrame('/ws', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 1007, 'invalid UTF-8 in a text frame: closed with 1007');
  t.equal(await sendFrame('/api/live/feed', Buffer.alloc(1.5 * 1024 * 1024, 0x61)), 1009, 'a frame past the hard cap: closed with 1009');
  t.equal((await rawRequest(p.url, 'GET', '/api/lessons', { authorization: `Bearer ${'a'.repeat(1 << 20)}` })).status, 431);
  t.equal((await fetch(`${p.url}/nope`)).status, 404);
  const metrics = await (await fetch(`${p.url}/metrics`)).text();
  for (const code of ['INVALID_MESSAGE', 'MESSAGE_TOO_LARGE', 'HEADERS_TOO_LARGE', 'NOT_FOUND']) {
    t.match(metrics, new RegExp(`^lessoncast_client_errors_total\\{code="${code}"\\} 1$`, 'm'), `counted: ${code}`);
  }
  p.child.kill('SIGTERM');
  t.equal(await p.exited, 0);
  const lines = p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; code?: string; cause?: string; msg: string });
  t.same(
    lines.filter((l) => l.level >= 50),
    [],
    'nothing at error level',
  );
  t.notMatch(p.output(), /"stack"/, 'no stack trace anywhere');
  for (const [code, cause] of [
    ['INVALID_MESSAGE', 'WS_ERR_INVALID_UTF8'],
    ['MESSAGE_TOO_LARGE', 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'],
    ['HEADERS_TOO_LARGE', 'HPE_HEADER_OVERFLOW'],
  ]) {
    t.ok(
      lines.some((l) => l.level === 40 && l.msg === 'client error' && l.code === code && l.cause === cause),
      `a warning names ${code} (${cause})`,
    );
  }
});

t.test('a recordings folder under a regular file stops the start, naming recording.dir', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-dir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'file'), 'not a folder');
  const bad = path.join(dir, 'file', 'recordings');
  const err = await startTestServer({ recording: { dir: bad } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConfigError, 'a configuration error');
  t.match((err as ConfigError).issues, [
    new RegExp(`^recording\\.dir: "${bad.replace(/[./]/g, '\\$&')}" is not allowed \\(ENOTDIR.*\\); allowed: a folder`),
  ]);
  const child = spawnLessoncastProcess(dir, { LESSONCAST_RECORDING_DIR: bad });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  t.equal(await new Promise((resolve) => child.on('exit', resolve)), 2, 'the process exits 2, as for any configuration error');
  t.match(stderr, /lessoncast: invalid configuration:\n {2}- recording\.dir: .*ENOTDIR/);
});

/** Where a documented answer and a real one differ: field names all the way down, and the kind of each value. */
function differences(doc: unknown, real: unknown, at = '$'): string[] {
  const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (kind(doc) !== kind(real)) return [`${at}: documented ${kind(doc)}, answered ${kind(real)}`];
  if (Array.isArray(doc) && Array.isArray(real)) return doc.length && real.length ? differences(doc[0], real[0], `${at}[0]`) : [];
  if (kind(doc) !== 'object') return [];
  const [d, r] = [doc as Record<string, unknown>, real as Record<string, unknown>];
  return [...new Set([...Object.keys(d), ...Object.keys(r)])].flatMap((k) =>
    !(k in r)
      ? [`${at}.${k}: documented, not answered`]
      : !(k in d)
        ? [`${at}.${k}: answered, not documented`]
        : differences(d[k], r[k], `${at}.${k}`),
  );
}

t.test('docs/rest.md: who may call what, and the lesson and token answers, as the server does them', async (t) => {
  const rows = [...restDoc.matchAll(/^\| `([A-Z]+ \/[^`]+)` \| `([a-z.A-Z]+)` \| ([^|]+) \|$/gm)];
  t.ok(rows.length >= 8, `${rows.length} rows in the table`);
  for (const [, endpoint, permission, roles] of rows) {
    const documented = ROLES.filter((r) => new RegExp(`\\b${r}\\b`).test(roles!));
    t.same(
      documented,
      ROLES.filter((r) => can(r, permission as Permission)),
      `${endpoint}: ${permission} is held by ${documented.join(', ')}`,
    );
  }

  const s = await startTestServer();
  t.teardown(() => s.close());
  /** The answer example of a section: the JSON block after "Answer `NNN`". */
  const documented = (heading: string) => {
    const section = restDoc.split(/^## /m).find((x) => x.startsWith(`\`${heading}\``)) ?? '';
    const m = /^Answer `(\d+)`[\s\S]*?```json\n([\s\S]*?)\n```/m.exec(section);
    if (!m) throw new Error(`docs/rest.md has no answer example for ${heading}`);
    return { status: Number(m[1]), body: JSON.parse(m[2]!) as unknown };
  };
  const call = async (method: string, route: string, token: string, body?: unknown) => {
    const res = await fetch(`${s.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const expectAsDocumented = (heading: string, answer: { status: number; body: unknown }) => {
    const doc = documented(heading);
    t.equal(answer.status, doc.status, `${heading}: ${doc.status}`);
    t.same(differences(doc.body, answer.body), [], `${heading}: the fields documented are the fields answered`);
  };

  // An instructor creates a lesson, goes live, a school joins and raises its hand.
  const instructor = await s.token('instructor', 'teacher-1', []);
  const created = await call('POST', '/api/lessons', instructor, {
    title: 'Physics: levers',
    subject: 'physics',
    schools: ['school-12'],
    record: false,
  });
  expectAsDocumented('POST /api/lessons', created);
  const lessonId = (created.body as { lesson: { id: string } }).lesson.id;
  t.match(created.body, { lesson: { instructorId: 'teacher-1' } }, 'an instructor creates lessons for themself');
  t.equal((await call('POST', '/api/lessons', instructor, { title: 'x', instructorId: 'teacher-2' })).status, 403, 'and only for themself');
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  const { client: school } = await SignalClient.join(s, 'classroom', 'school-12', lessonId);
  t.teardown(() => [teacher, school].forEach((c) => c.close()));
  await teacher.request('goLive', {});
  await school.request('raiseHand', {});

  expectAsDocumented('GET /api/lessons', await call('GET', '/api/lessons', instructor));
  expectAsDocumented('GET /api/lessons/:id', await call('GET', `/api/lessons/${lessonId}`, instructor));
  const admin = await s.token('admin', 'ops');
  const minted = await call('POST', '/api/tokens', admin, {
    role: 'classroom',
    id: 'school-12',
    name: 'School 12',
    lessons: [lessonId],
    ttlSeconds: 14400,
  });
  expectAsDocumented('POST /api/tokens', minted);
  const liveOf = async (token: string) =>
    ((await call('GET', '/api/live', token)).body as { lessons: Array<{ id: string }> }).lessons.map((l) => l.id);
  t.same(
    await liveOf(await s.token('instructor', 'teacher-1', [lessonId])),
    [lessonId],
    'an instructor reads the live view of the lessons its token lists…',
  );
  t.same(await liveOf(instructor), [], '…and of no other');
});
