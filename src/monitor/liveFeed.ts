import type { RawData, WebSocket } from 'ws';
import { can } from '../auth/permissions.js';
import { mayAccessLesson, type Principal, type TokenService } from '../auth/tokens.js';
import { asLessoncastError, LessoncastError } from '../errors.js';
import type { LiveState } from '../live/liveState.js';
import type { LiveEvent, LiveLogger, LiveSnapshot } from '../live/types.js';
import { PROTOCOL_VERSION } from '../signalling/protocol.js';
import { parseRequest, salvageId } from '../signalling/validate.js';

export interface LiveFeedOptions {
  tokens: TokenService;
  live: LiveState;
  log: LiveLogger;
  maxMessageBytes: number;
  /** A connection that has not authenticated by then is closed (4408). */
  authTimeoutMs?: number;
  pingSeconds?: number;
  /** A client that lags this far behind misses notifications instead of growing our memory. */
  maxBufferedBytes?: number;
}

interface FeedClient {
  principal?: Principal;
  /** Notifications held back until the authenticate reply (with its snapshot) has gone out. */
  held?: string[];
  alive: boolean;
  authTimer: NodeJS.Timeout;
}

/** What a principal may see of the live view. */
export function visibleSnapshot(snapshot: LiveSnapshot, who: Principal): LiveSnapshot {
  return { ...snapshot, lessons: snapshot.lessons.filter((l) => mayAccessLesson(who, l.id)) };
}

/**
 * The control room's live feed (WebSocket `/api/live/feed`). The first
 * message must be `authenticate` with a monitor or admin token, in the
 * signalling protocol's envelope; the reply carries the current snapshot.
 * After that the server pushes `{ kind: 'notification', event: 'live', data }`
 * for every bus event (quality samples included) the token may see.
 */
export class LiveFeed {
  private readonly clients = new Map<WebSocket, FeedClient>();
  private readonly unsubscribe: () => void;
  private readonly pingTimer: NodeJS.Timeout;
  private dropped = 0;
  private authenticated = 0;

  constructor(private readonly opts: LiveFeedOptions) {
    this.unsubscribe = opts.live.subscribe((e) => this.broadcast(e));
    this.pingTimer = setInterval(() => this.ping(), (opts.pingSeconds ?? 20) * 1000);
    this.pingTimer.unref();
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Notifications not sent to lagging clients so far. */
  get droppedCount(): number {
    return this.dropped;
  }

  attach(socket: WebSocket): void {
    const client: FeedClient = {
      alive: true,
      authTimer: setTimeout(() => socket.close(4408, 'authenticate first'), this.opts.authTimeoutMs ?? 10_000),
    };
    client.authTimer.unref();
    this.clients.set(socket, client);
    socket.on('message', (raw, isBinary) => void this.onMessage(socket, client, raw, isBinary));
    socket.on('pong', () => (client.alive = true));
    socket.on('close', () => {
      clearTimeout(client.authTimer);
      this.clients.delete(socket);
      if (client.principal) this.watching(-1);
    });
    socket.on('error', (err) => this.opts.log.debug({ err: err.message }, 'live feed socket error'));
  }

  private async onMessage(socket: WebSocket, client: FeedClient, raw: RawData, isBinary: boolean): Promise<void> {
    const text = Array.isArray(raw) ? Buffer.concat(raw).toString('utf8') : Buffer.from(raw as ArrayBuffer).toString('utf8');
    let id: number | string | null = null;
    try {
      if (isBinary || text.length > this.opts.maxMessageBytes) throw new LessoncastError('INVALID_MESSAGE', 'send the authenticate request as one JSON text frame');
      if (client.principal || client.held) throw new LessoncastError('OUT_OF_ORDER', 'the live feed takes no requests after authenticate');
      try {
        id = salvageId(JSON.parse(text));
      } catch {
        /* answered below as INVALID_MESSAGE */
      }
      const req = parseRequest(text);
      if (req.method !== 'authenticate') throw new LessoncastError('UNAUTHENTICATED', 'the first message must be authenticate');
      client.held = [];
      const principal = await this.opts.tokens.verify((req.data as { token: string }).token);
      if (!can(principal.role, 'live.read')) throw new LessoncastError('FORBIDDEN', `a ${principal.role} may not read the live view`);
      clearTimeout(client.authTimer);
      // Events from here on are held and sent after the snapshot, so none falls between the two.
      client.principal = principal;
      this.watching(+1);
      const snapshot = visibleSnapshot(await this.opts.live.snapshot(), principal);
      this.send(socket, JSON.stringify({ kind: 'response', id: req.id, ok: true, data: { participantId: principal.id, role: principal.role, name: principal.name, protocolVersion: PROTOCOL_VERSION, live: snapshot } }));
      const held = client.held ?? [];
      client.held = undefined;
      for (const msg of held) this.send(socket, msg);
      this.opts.log.info({ user: principal.id, role: principal.role }, 'live feed client authenticated');
    } catch (err) {
      const e = asLessoncastError(err);
      this.send(socket, JSON.stringify({ kind: 'response', id, ok: false, error: { code: e.code, message: e.message } }));
      if (e.code === 'OUT_OF_ORDER') return;
      // Authentication failed: this connection is done.
      if (client.principal) this.watching(-1);
      client.principal = undefined;
      client.held = undefined;
      socket.close(e.code === 'FORBIDDEN' ? 4403 : 4401, e.code);
    }
  }

  /** Other nodes' quality samples cross Redis only while someone here watches. */
  private watching(delta: number): void {
    this.authenticated += delta;
    this.opts.live.setRemoteQuality(this.authenticated > 0);
  }

  private broadcast(e: LiveEvent): void {
    if (this.clients.size === 0) return;
    const msg = JSON.stringify({ kind: 'notification', event: 'live', data: e });
    const lessonId = 'lessonId' in e ? e.lessonId : undefined;
    for (const [socket, c] of this.clients) {
      if (!c.principal || (lessonId && !mayAccessLesson(c.principal, lessonId))) continue;
      if (c.held) c.held.push(msg);
      else this.send(socket, msg);
    }
  }

  private send(socket: WebSocket, msg: string): void {
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > (this.opts.maxBufferedBytes ?? 4 * 1024 * 1024)) {
      this.dropped++;
      return;
    }
    socket.send(msg);
  }

  private ping(): void {
    for (const [socket, c] of this.clients) {
      if (!c.alive) {
        socket.terminate();
        continue;
      }
      c.alive = false;
      socket.ping();
    }
  }

  /** Shutdown: closes every feed connection (1001). */
  close(): void {
    this.unsubscribe();
    clearInterval(this.pingTimer);
    for (const socket of this.clients.keys()) socket.close(1001, 'server shutting down');
  }
}
