import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { deepMerge, loadConfig, type DeepPartial, type Config } from '../../src/config/load.js';
import { createLessoncastForTests, type Lessoncast, type LessoncastInternals } from '../../src/server.js';
import type { Role, NotificationData, NotificationEvent, ServerMessage, Method, RequestData, ResponseData } from '../../src/signalling/protocol.js';

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
        log: { level: process.env['LESSONCAST_TEST_LOG'] ?? 'silent' },
        http: { port: 0 },
        media: { workers: 1, webRtcServerPort: 0 },
        recording: { dir: path.join(dir, 'recordings') },
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
 * lessoncast as its own process (src/main.ts, as `npm start` runs it) in `dir`:
 * free ports, one worker, config from config/, recordings and the token secret
 * file under `dir`; `env` adds or overrides settings. stdout and stderr are piped.
 */
export function spawnLessoncastProcess(dir: string, env: Record<string, string>, nodeArgs: string[] = []) {
  return spawn(process.execPath, [...nodeArgs, '--import', import.meta.resolve('tsx'), path.resolve('src/main.ts')], {
    cwd: dir,
    env: {
      ...process.env,
      LESSONCAST_CONFIG_DIR: path.resolve('config'),
      LESSONCAST_HTTP_PORT: '0',
      LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT: '0',
      LESSONCAST_MEDIA_WORKERS: '1',
      LESSONCAST_RECORDING_DIR: path.join(dir, 'recordings'),
      LESSONCAST_AUTH_SECRET_FILE: path.join(dir, 'secret'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export class RequestFailed extends Error {
  constructor(readonly code: string, message: string) {
    super(`${code}: ${message}`);
  }
}

type Notification = { event: string; data: unknown };

/** A signalling client over the real /ws endpoint. */
export class SignalClient {
  private nextId = 1;
  private readonly pending = new Map<number | string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly notifications: Notification[] = [];
  /** Error replies that answered no request of ours (id null). */
  readonly orphanErrors: Array<{ code: string; message: string }> = [];
  private readonly waiters = new Set<{ event: string; pred: (d: unknown) => boolean; resolve: (d: unknown) => void }>();
  readonly closed: Promise<{ code: number; reason: string }>;
  /** Called for every notification (after it is recorded). */
  onNotification?: (event: string, data: unknown) => void;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => this.onMessage(raw.toString()));
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    this.closed.then(() => {
      for (const p of this.pending.values()) p.reject(new Error('socket closed'));
      this.pending.clear();
    });
  }

  static async connect(wsUrl: string): Promise<SignalClient> {
    const ws = new WebSocket(wsUrl);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new SignalClient(ws);
  }

  /** Connect, authenticate and (optionally) join in one go. */
  static async join(t: TestServer, role: Role, id: string, lessonId?: string): Promise<{ client: SignalClient; joined?: ResponseData['join'] }> {
    const client = await SignalClient.connect(t.wsUrl);
    await client.request('authenticate', { token: await t.token(role, id, lessonId ? [lessonId] : '*') });
    const joined = lessonId ? await client.request('join', { lessonId }) : undefined;
    return { client, ...(joined ? { joined } : {}) };
  }

  private onMessage(text: string): void {
    const msg = JSON.parse(text) as ServerMessage;
    if (msg.kind === 'response') {
      const p = msg.id === null ? undefined : this.pending.get(msg.id);
      if (!p) {
        if (!msg.ok) this.orphanErrors.push(msg.error);
        return;
      }
      this.pending.delete(msg.id!);
      if (msg.ok) p.resolve(msg.data);
      else p.reject(new RequestFailed(msg.error.code, msg.error.message));
      return;
    }
    this.notifications.push({ event: msg.event, data: msg.data });
    this.onNotification?.(msg.event, msg.data);
    for (const w of [...this.waiters]) {
      if (w.event === msg.event && w.pred(msg.data)) {
        this.waiters.delete(w);
        w.resolve(msg.data);
      }
    }
  }

  request<M extends Method>(method: M, data: RequestData<M>): Promise<ResponseData[M]> {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ kind: 'request', id, method, data }));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }

  /** Sends anything (for bad-input tests); resolves with the reply that carries `id`, if any. */
  sendRaw(payload: string | Buffer, id?: number | string): Promise<{ ok: boolean; code?: string }> | void {
    this.ws.send(payload);
    if (id === undefined) return;
    return new Promise((resolve) =>
      this.pending.set(id, { resolve: () => resolve({ ok: true }), reject: (e) => resolve({ ok: false, code: (e as RequestFailed).code }) }),
    );
  }

  /** Waits for a notification (already received ones count) matching the predicate. */
  waitFor<E extends NotificationEvent>(event: E, pred: (d: NotificationData[E]) => boolean = () => true, timeoutMs = 15000): Promise<NotificationData[E]> {
    const seen = this.notifications.find((n) => n.event === event && pred(n.data as NotificationData[E]));
    if (seen) return Promise.resolve(seen.data as NotificationData[E]);
    return new Promise((resolve, reject) => {
      const w = { event, pred: pred as (d: unknown) => boolean, resolve: resolve as (d: unknown) => void };
      this.waiters.add(w);
      setTimeout(() => {
        if (this.waiters.delete(w)) reject(new Error(`timed out waiting for ${event}`));
      }, timeoutMs).unref();
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** Creates a lesson through the REST API as an admin. */
export async function createLesson(t: TestServer, body: { title?: string; instructorId?: string; schools?: string[]; record?: boolean } = {}): Promise<string> {
  const res = await fetch(`${t.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await t.token('admin', 'admin-1')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Physics: levers', subject: 'physics', instructorId: 'teacher-1', record: false, ...body }),
  });
  if (res.status !== 201) throw new Error(`create lesson: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { lesson: { id: string } }).lesson.id;
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
