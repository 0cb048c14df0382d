import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { Logger } from '../logger.js';
import { aRole, can } from '../auth/permissions.js';
import { mayAccessLesson, type Principal } from '../auth/tokens.js';
import { LessoncastError, type ErrorCode } from '../errors.js';
import type { LiveState } from '../live/liveState.js';
import type { LiveEvent, LiveSnapshot } from '../live/types.js';
import type { SocketAdmission, SocketGate } from './admission.js';
import { PROTOCOL_VERSION } from './protocol.js';
import { CLOSE_REVOKED } from './admission.js';
import { Liveness, WireSocket } from './socket.js';
import type { ParsedRequest } from './validate.js';

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
  wire: WireSocket;
  /** The door: token checks and the authentication clock (4408). */
  gate: SocketGate;
  principal?: Principal;
  /** Notifications held back until the authenticate reply (with its snapshot) has gone out. */
  held?: string[];
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
  private readonly clients = new Set<FeedClient>();
  private readonly unsubscribe: () => void;
  private readonly liveness: Liveness;
  private dropped = 0;
  private authenticated = 0;

  constructor(private readonly opts: LiveFeedOptions) {
    this.unsubscribe = opts.live.subscribe((e) => this.broadcast(e));
    this.liveness = new Liveness(opts.pingSeconds ?? 20);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Notifications not sent to lagging clients so far (lessoncast_live_feed_dropped_total). */
  get droppedCount(): number {
    return this.dropped;
  }

  /** The endpoint. Tokens travel in the first message, never in the URL; the door is the one of /ws (authentication clock, per-address caps). */
  register(app: FastifyInstance, admission: SocketAdmission): void {
    app.get(
      '/api/live/feed',
      { websocket: true, schema: { summary: "The control room's live event feed (docs/monitoring.md)" } },
      admission.handler((socket, gate) => this.attach(socket, gate)),
    );
  }

  attach(socket: WebSocket, gate: SocketGate): void {
    const client: FeedClient = {
      gate,
      wire: new WireSocket(socket, {
        maxMessageBytes: this.opts.maxMessageBytes,
        log: this.opts.log,
        logFields: { feed: 'live' },
        liveness: this.liveness,
        maxBufferedBytes: this.opts.maxBufferedBytes ?? 4 * 1024 * 1024,
        onDropped: () => this.dropped++,
        ...(this.opts.countFrame ? { countFrame: this.opts.countFrame } : {}),
        onRequest: (req) => void this.onRequest(client, req),
        // A refused first frame ends the connection like a failed authenticate; once authenticated, the feed goes on.
        onRefused: (e) => {
          if (!client.principal && !client.held) this.refused(client, e.code);
        },
      }),
    };
    this.clients.add(client);
    socket.on('close', () => {
      this.clients.delete(client);
      if (client.principal) this.watching(-1);
    });
  }

  private async onRequest(client: FeedClient, req: ParsedRequest): Promise<void> {
    if (client.principal || client.held)
      return void client.wire.replyError(req.id, new LessoncastError('OUT_OF_ORDER', 'the live feed takes no requests after authenticate'));
    try {
      if (req.method !== 'authenticate') throw new LessoncastError('UNAUTHENTICATED', 'the first message must be authenticate');
      client.held = [];
      const principal = await client.gate.verify((req.data as { token: string }).token);
      if (!can(principal.role, 'live.read')) throw new LessoncastError('FORBIDDEN', `${aRole(principal.role)} may not read the live view`);
      client.gate.authenticated();
      // Events from here on are held and sent after the snapshot, so none falls between the two.
      client.principal = principal;
      this.watching(+1);
      const snapshot = visibleSnapshot(await this.opts.live.snapshot(), principal);
      client.wire.send({
        kind: 'response',
        id: req.id,
        ok: true,
        data: {
          participantId: principal.id,
          role: principal.role,
          name: principal.name,
          protocolVersion: PROTOCOL_VERSION,
          live: snapshot,
        },
      });
      const held = client.held ?? [];
      client.held = undefined;
      for (const msg of held) client.wire.send(msg);
      this.opts.log.info({ user: principal.id, role: principal.role }, 'live feed client authenticated');
    } catch (err) {
      this.refused(client, client.wire.replyError(req.id, err).code);
    }
  }

  /** Authentication failed (its error already answered): this connection is done. */
  private refused(client: FeedClient, code: ErrorCode): void {
    if (client.principal) this.watching(-1);
    client.principal = undefined;
    client.held = undefined;
    client.wire.close(CLOSE_CODES[code] ?? 4401, code);
  }

  /** Other nodes' quality samples cross Redis only while someone here watches. */
  private watching(delta: number): void {
    this.authenticated += delta;
    this.opts.live.setRemoteQuality(this.authenticated > 0);
  }

  /** Closes the feeds whose token `refused` names (revoked): 4401. */
  revoke(refused: (p: Principal) => boolean): number {
    let n = 0;
    for (const c of this.clients) {
      if (!c.principal || !refused(c.principal)) continue;
      c.wire.close(CLOSE_REVOKED, 'token revoked');
      n++;
    }
    return n;
  }

  private broadcast(e: LiveEvent): void {
    // Revocations are for the nodes, not the control room.
    if (this.clients.size === 0 || e.type === 'revoked') return;
    const msg = JSON.stringify({ kind: 'notification', event: 'live', data: e });
    const lessonId = 'lessonId' in e ? e.lessonId : undefined;
    for (const c of this.clients) {
      if (!c.principal || (lessonId && !mayAccessLesson(c.principal, lessonId))) continue;
      if (c.held) c.held.push(msg);
      else c.wire.send(msg);
    }
  }

  /** Shutdown: closes every feed connection (1001). */
  close(): void {
    this.unsubscribe();
    this.liveness.stop();
    for (const c of this.clients) c.wire.close(1001, 'server shutting down');
  }
}
