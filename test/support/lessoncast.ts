import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { deepMerge, loadConfig, type DeepPartial, type Config } from '../../src/config/load.js';
import { createLessoncastForTests, type Lessoncast, type LessoncastInternals } from '../../src/server.js';
import type { Role } from '../../src/domain/index.js';
import { RequestFailed, SignalClient, type TokenIssuer } from '../../kit/signalClient.js';
import type { TokenService } from '../../src/auth/tokens.js';
import { publish } from '../../kit/peers.js';
import { builtEntry } from './dist.js';

export interface TestServer {
  server: Lessoncast;
  /** The server's parts, for assertions and fault injection. */
  internals: LessoncastInternals;
  url: string;
  wsUrl: string;
  dir: string;
  token(role: Role, id: string, lessons?: '*' | string[]): Promise<string>;
  close(): Promise<void>;
}

/** A real lessoncast (real mediasoup workers) on free loopback ports, with its own temp folders. */
export async function startTestServer(overrides: DeepPartial<Config> = {}): Promise<TestServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-test-'));
  const config = loadConfig({
    env: { NODE_ENV: 'test' },
    overrides: deepMerge(
      {
        log: { level: process.env['TEST_LOG'] ?? 'silent' },
        http: { port: 0 },
        media: { workers: 1, webRtcServerPort: 0 },
        recording: { dir: path.join(dir, 'recordings') },
        catalog: { sqlitePath: path.join(dir, 'catalog.db') },
        auth: { tokenSecret: randomBytes(32).toString('hex'), secretFile: path.join(dir, 'secret') },
        shutdown: { timeoutSeconds: 10 },
      },
      overrides,
    ) as DeepPartial<Config>,
  });
  const { server, internals } = await createLessoncastForTests(config);
  await server.start();
  return {
    server,
    internals,
    url: server.url,
    wsUrl: server.url.replace(/^http/, 'ws') + '/ws',
    dir,
    token: async (role, id, lessons = '*') => (await internals.tokens.mint({ role, id, name: `${role} ${id}`, lessons })).token,
    close: async () => {
      await server.stop('test done');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * lessoncast as its own process (dist/main.js, as `npm start` runs it) in `dir`:
 * free ports, one worker, config from config/, recordings and the token secret
 * file under `dir`; `env` adds or overrides settings. stdout and stderr are piped.
 */
export function spawnLessoncastProcess(dir: string, env: Record<string, string>, nodeArgs: string[] = [], netns?: string) {
  // `ip netns exec` runs node in place (exec): the child's pid is lessoncast's own, for signals.
  const [cmd, args] = netns
    ? ['ip', ['netns', 'exec', netns, process.execPath, ...nodeArgs, builtEntry('main')]]
    : [process.execPath, [...nodeArgs, builtEntry('main')]];
  return spawn(cmd, args, {
    cwd: dir,
    env: {
      ...process.env,
      LESSONCAST_CONFIG_DIR: path.resolve('config'),
      LESSONCAST_HTTP_PORT: '0',
      LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT: '0',
      LESSONCAST_MEDIA_WORKERS: '1',
      LESSONCAST_RECORDING_DIR: path.join(dir, 'recordings'),
      LESSONCAST_AUTH_SECRET_FILE: path.join(dir, 'secret'),
      LESSONCAST_CATALOG_SQLITE_PATH: path.join(dir, 'catalog.db'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * lessoncast as its own process (spawnLessoncastProcess) in `dir` (a new temp folder by default),
 * once it printed its URL; cleanup removes the folder.
 */
export async function runningProcess(
  env: Record<string, string>,
  dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-main-')),
  netns?: string,
) {
  const child = spawnLessoncastProcess(dir, env, [], netns);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not print its URL:\n${out}`)), 30000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited (${code}) before it printed its URL:\n${out}`));
    });
    child.stdout.on('data', () => {
      const m = /health\s+(http:\/\/\S+)\/healthz/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, url, exited, output: () => out, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * runningProcess as a cluster node `id`, with a token issuer for its /ws (tokens from `tokens`,
 * signed with the nodes' secret); in `where.dir` and network namespace `where.netns` if given.
 */
export async function runningNode(
  id: string,
  env: Record<string, string>,
  tokens: TokenService,
  where: { dir?: string; netns?: string } = {},
) {
  const p = await runningProcess({ ...env, LESSONCAST_NODE_ID: id }, where.dir, where.netns);
  const issuer: TokenIssuer = {
    wsUrl: `${p.url.replace(/^http/, 'ws')}/ws`,
    token: async (role: Role, who: string, lessons: '*' | string[] = '*') =>
      (await tokens.mint({ role, id: who, name: who, lessons })).token,
  };
  return { ...p, id, issuer };
}

/** spawnLessoncastProcess, with what it writes (stdout and stderr together) and its exit code to come. */
export function watchedLessoncastProcess(dir: string, env: Record<string, string>) {
  const child = spawnLessoncastProcess(dir, env);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, log: () => out };
}

/** Creates a lesson through the REST API as an admin. */
export async function createLesson(
  t: TestServer,
  body: { title?: string; instructorId?: string; schools?: string[]; record?: boolean } = {},
): Promise<string> {
  const res = await fetch(`${t.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await t.token('admin', 'admin-1')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Physics: levers', subject: 'physics', instructorId: 'teacher-1', record: false, ...body }),
  });
  if (res.status !== 201) throw new Error(`create lesson: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { lesson: { id: string } }).lesson.id;
}

/**
 * A server (with `overrides`) and a lesson whose instructor publishes audio and a 900 kbit/s VP8
 * camera (werift), for tests of what classrooms receive; everything closes at teardown.
 */
export async function publishingLesson(t: { teardown(fn: () => unknown): void }, overrides: DeepPartial<Config> = {}) {
  const s = await startTestServer(overrides);
  const cleanups = cleanupStack(t);
  cleanups.push(() => s.close());
  const lessonId = await createLesson(s);
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  const sender = await publish(teacher, joined!.routerRtpCapabilities, { audio: true, video: 'vp8', videoBitrateKbps: 900 });
  cleanups.push(() => sender.close());
  return { s, cleanups, lessonId, media: s.internals.registry.mediaOf(lessonId)!, sender };
}

/** Expects a request to fail with a given error code. */
export async function expectCode(promise: Promise<unknown>, code: string): Promise<boolean> {
  try {
    await promise;
    return false;
  } catch (err) {
    return err instanceof RequestFailed && err.code === code;
  }
}

/** The value of one sample of /metrics (`name{labels}` exactly as exposed), 0 when absent. */
export async function metricValue(t: TestServer, sample: string): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

/** Registers cleanups run in reverse order at teardown (clients before the server they talk to). */
export function cleanupStack(t: { teardown(fn: () => unknown): void }): { push(...fns: Array<() => unknown>): void } {
  const stack: Array<() => unknown> = [];
  t.teardown(async () => {
    for (const fn of stack.reverse()) await fn();
  });
  return { push: (...fns) => void stack.push(...fns) };
}

/** Polls `probe` every 100 ms until it returns something truthy (errors count as not yet); throws after the timeout. */
export async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
