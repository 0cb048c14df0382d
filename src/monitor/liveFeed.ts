import type { Logger } from '../logger.js';
import type { RawData, WebSocket } from 'ws';
import { aRole, can } from '../auth/permissions.js';
import { mayAccessLesson, type Principal } from '../auth/tokens.js';
import { asLessoncastError, LessoncastError, type ErrorCode } from '../errors.js';
import type { LiveState } from '../live/liveState.js';
import type { LiveEvent, LiveSnapshot } from '../live/types.js';
import type { SocketGate } from '../signalling/admission.js';
import { frameBuffer, readableId, tooLarge } from '../signalling/frames.js';
import { PROTOCOL_VERSION } from '../signalling/protocol.js';
import { parseRequest } from '../signalling/validate.js';

export interface LiveFeedOptions {
  live: LiveState;
  log: Logger;
  maxMessageBytes: number;
  /** A frame was refused for its size, by error code (metrics). */
  countFrame?(code: ErrorCode): void;
  pingSeconds?: number;
  /** A client that lags this far behind misses notifications instead of growing our memory. */
  maxBufferedBytes?: number;
}

interface FeedClient {
  /** The door: token checks and the authentication clock (4408). */
  gate: SocketGate;
  principal?: Principal;
  /** Notifications held back until the authenticate reply (with its snapshot) has gone out. */
  held?: string[];
  alive: boolean;
}

/** How a failed authenticate closes the feed. */
const CLOSE_CODES: Partial<Record<ErrorCode, number>> = { FORBIDDEN: 4403, RATE_LIMITED: 4429 };

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

  attach(socket: WebSocket, gate: SocketGate): void {
    const client: FeedClient = { gate, alive: true };
    this.clients.set(socket, client);
    socket.on('message', (raw, isBinary) => void this.onMessage(socket, client, raw, isBinary));
    socket.on('pong', () => (client.alive = true));
    socket.on('close', () => {
      this.clients.delete(socket);
      if (client.principal) this.watching(-1);
    });
    socket.on('error', (err) => this.opts.log.debug({ err: err.message }, 'live feed socket error'));
  }

  private async onMessage(socket: WebSocket, client: FeedClient, raw: RawData, isBinary: boolean): Promise<void> {
    const frame = frameBuffer(raw);
    const max = this.opts.maxMessageBytes;
    // Every answer carries the request's id when it can be read, refusals included.
    const id = isBinary ? null : readableId(frame, max);
    try {
      if (frame.length > max) throw this.counted(tooLarge(frame.length, max));
      if (isBinary) throw new LessoncastError('INVALID_MESSAGE', 'send the authenticate request as one JSON text frame');
      if (client.principal || client.held) throw new LessoncastError('OUT_OF_ORDER', 'the live feed takes no requests after authenticate');
      const req = parseRequest(frame.toString('utf8'));
      if (req.method !== 'authenticate') throw new LessoncastError('UNAUTHENTICATED', 'the first message must be authenticate');
      client.held = [];
      const principal = await client.gate.verify((req.data as { token: string }).token);
      if (!can(principal.role, 'live.read')) throw new LessoncastError('FORBIDDEN', `${aRole(principal.role)} may not read the live view`);
      client.gate.authenticated();
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
      socket.close(CLOSE_CODES[e.code] ?? 4401, e.code);
    }
  }

  private counted(e: LessoncastError): LessoncastError {
    this.opts.countFrame?.(e.code);
    return e;
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
