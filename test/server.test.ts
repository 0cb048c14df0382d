import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { spawnLessoncastProcess, startTestServer } from './support/lessoncast.js';

t.test('the server starts, /healthz and /readyz answer, unknown routes are problem+json', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const health = await fetch(`${s.url}/healthz`);
  t.equal(health.status, 200);
  t.equal(((await health.json()) as { status: string }).status, 'ok');
  const ready = await fetch(`${s.url}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { status: 'ready', checks: { workers: 'ok', recordings: 'ok' } });
  const missing = await fetch(`${s.url}/nope`);
  t.equal(missing.status, 404);
  t.match(missing.headers.get('content-type'), /application\/problem\+json/);
});

t.test('SIGTERM: the process drains, tells clients, and exits 0 in bounded time', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-main-'));
  const child = spawnLessoncastProcess(dir, { LESSONCAST_LOG_LEVEL: 'info' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL:\n${out}`)), 30000);
    child.stdout.on('data', () => {
      const m = /health\s+(http:\/\/\S+)\/healthz/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  t.equal((await fetch(`${url}/healthz`)).status, 200, 'serves /healthz');
  const started = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - started < 15000, `stopped in ${Date.now() - started} ms`);
  t.match(out, /lessoncast stopped/, 'logged an orderly stop');
  t.notMatch(out, /eyJ[A-Za-z0-9_-]{10,}/, 'no token in the logs');
});
