/**
 * A signalling client over lessoncast's real /ws endpoint: requests with their replies,
 * notifications, and waiting for one. Shared by the tests and the benches.
 */
import WebSocket from 'ws';
import type { Role } from '../src/domain/index.js';
import type { NotificationData, NotificationEvent, ServerMessage, Method, RequestData, ResponseData } from '../src/signalling/protocol.js';

/** A running server as far as joining needs it: where /ws is and a token for a participant. */
export interface TokenIssuer {
  wsUrl: string;
  token(role: Role, id: string, lessons?: '*' | string[]): Promise<string>;
}

export class RequestFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
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
    ws.on('message', (raw: Buffer) => this.onMessage(raw.toString()));
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    void this.closed.then(() => {
      for (const p of this.pending.values()) p.reject(new Error('socket closed'));
      this.pending.clear();
    });
  }

  /** `options` are ws's client options, e.g. `{ ca }` for a wss:// server whose CA is private. */
  static async connect(wsUrl: string, options?: WebSocket.ClientOptions): Promise<SignalClient> {
    const ws = new WebSocket(wsUrl, options);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new SignalClient(ws);
  }

  /** Connect, authenticate and (optionally) join in one go. */
  static async join(
    t: TokenIssuer,
    role: Role,
    id: string,
    lessonId?: string,
  ): Promise<{ client: SignalClient; joined?: ResponseData['join'] }> {
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
      else p.reject(new RequestFailed(msg.error.code, msg.error.message, msg.error.details));
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
      this.pending.set(id, {
        resolve: () => resolve({ ok: true }),
        reject: (e) => resolve({ ok: false, code: (e as RequestFailed).code }),
      }),
    );
  }

  /** Waits for a notification (already received ones count) matching the predicate. */
  waitFor<E extends NotificationEvent>(
    event: E,
    pred: (d: NotificationData[E]) => boolean = () => true,
    timeoutMs = 15000,
  ): Promise<NotificationData[E]> {
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
