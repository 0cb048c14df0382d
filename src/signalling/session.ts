import type { Logger } from '../logger.js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Principal } from '../auth/tokens.js';
import { asLessoncastError, LessoncastError, fail, type ErrorCode } from '../errors.js';
import type { Lesson, Participant } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import type { SocketGate } from './admission.js';
import {
  PROTOCOL_VERSION,
  type Method,
  type NotificationData,
  type NotificationEvent,
  type OneWayStream,
  type RequestData,
  type ResponseData,
  type ServerMessage,
  type IceServer,
  type IceTransportPolicy,
} from './protocol.js';
import type { ParsedRequest } from './validate.js';

export interface SessionDeps {
  /** Token checks and the authentication clock of this connection's door. */
  gate: SocketGate;
  registry: LessonRegistry;
  log: Logger;
  isDraining(): boolean;
  /**
   * Where a lesson is hosted, in a cluster (src/cluster/): null when this node hosts it (or may),
   * else a relay to its origin, which then runs this session's lesson requests.
   */
  locate?(lessonId: string, session: Session): Promise<SessionRelay | null>;
  /** Called when a session joins or leaves a lesson, so the hub can route notifications. */
  onJoined(session: Session, lesson: Lesson): Promise<void> | void;
  onDetached(session: Session, lesson: Lesson): void;
  findSession(id: string): Session | undefined;
  /** The ICE servers (fresh TURN credentials) and transport policy a joining participant gets. */
  iceFor(participant: Pick<Principal, 'id' | 'role'>): { iceServers: IceServer[]; iceTransportPolicy: IceTransportPolicy };
  /** Told the outcome of every `join` request (metrics). */
  onJoinOutcome?(ok: boolean, code?: string): void;
  /** A frame was refused as the client's mistake, by error code (metrics). */
  countFrame?(code: ErrorCode): void;
  /** Live HLS links for one-way viewers; without it `oneWayStream` answers NOT_RECORDING. */
  oneWay?: OneWayStreams;
}

/** The live recordings one-way viewers watch (the recorder and the access capabilities, wired in src/server.ts). */
export interface OneWayStreams {
  /** A link to the lesson's live master playlist for `by`; NOT_RECORDING when the lesson is not being recorded. */
  link(lesson: { id: string; recorded: boolean }, by: Principal): Promise<OneWayStream>;
}

/** Where a session's messages go: its WebSocket (WireSocket), or the edge node relaying it (src/cluster/relay.ts). */
export interface SessionWire {
  /** One message, or JSON serialised once for many; false when it was not sent. */
  send(msg: object | string): boolean;
  /** Answers request `id` with an error. */
  replyError(id: number | string | null, err: unknown): LessoncastError;
  close(code?: number, reason?: string): void;
  /** A relayed session's lesson moved (Session.handOver): the relaying node asks its client to join again. */
  handOver?(reason: string): void;
  /** A relayed session's join failed: the relaying node stops relaying, and the client's next join looks for the lesson afresh. */
  release?(): void;
}

/** A session whose lesson is hosted on another node: its requests go there, the answers come back through the wire. */
export interface SessionRelay {
  forward(request: ParsedRequest): void;
  /** The client's connection closed. */
  closed(): void;
}

/** Requests waiting beyond this are refused: a client cannot queue unbounded work. */
const MAX_QUEUED = 64;

type Handler<M extends Method> = (data: RequestData<M>) => Promise<ResponseData[M]>;

/**
 * One client connection: authenticates once, joins one lesson, and turns each request into a
 * call on the lesson. Requests run in order, one at a time. The connection is a WebSocket here,
 * or, for a lesson whose origin is this node, a client of another node that relays it; a
 * session on that node relays its requests here once its lesson turns out to live here.
 */
export class Session extends EventEmitter<{ closed: [] }> {
  readonly id: string;
  principal?: Principal;
  lesson?: Lesson;
  participant?: Participant;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private closed = false;
  private relay: SessionRelay | undefined;

  constructor(
    private readonly wire: SessionWire,
    private readonly deps: SessionDeps,
    /** A session relayed from another node arrives authenticated, under the id it has there. */
    relayed?: { id: string; principal: Principal },
  ) {
    super();
    this.id = relayed?.id ?? randomUUID();
    if (relayed) this.principal = relayed.principal;
  }

  /** Whether this session's lesson requests go to another node. */
  get relayed(): boolean {
    return this.relay !== undefined;
  }

  notify<E extends NotificationEvent>(event: E, data: NotificationData[E]): void {
    this.send({ kind: 'notification', event, data } as ServerMessage);
  }

  /** Close the connection (replaced, lesson over, shutdown). */
  close(code = 1000, reason = ''): void {
    this.wire.close(code, reason);
  }

  /**
   * The lesson moved to another node (docs/cluster.md): the session forgets it and its client is
   * asked to join again (`reconnectRequested`), which reaches the new origin.
   */
  handOver(reason: string): void {
    this.detach();
    if (this.wire.handOver) this.wire.handOver(reason);
    else this.notify('reconnectRequested', { reason });
  }

  /** Forget the lesson without touching it (the lesson ended or the participant was replaced). */
  detach(): void {
    const lesson = this.lesson;
    this.lesson = undefined;
    this.participant = undefined;
    if (lesson) this.deps.onDetached(this, lesson);
  }

  private send(msg: ServerMessage): void {
    this.wire.send(msg);
  }

  /** A message the origin sent this relayed session's client (already serialised). */
  deliver(text: string): void {
    this.wire.send(text);
  }

  /** Answers one request with an error (a relayed request that could not be forwarded). */
  replyTo(id: number | string, err: unknown): void {
    this.wire.replyError(id, err);
  }

  /** Drops the relay (the origin ended this session's part in its lesson); later requests run here again. */
  unrelay(): void {
    this.relay = undefined;
  }

  /** Requests run one at a time, in order; a client cannot queue more than MAX_QUEUED. */
  handle(request: ParsedRequest): void {
    if (this.queued >= MAX_QUEUED)
      return void this.wire.replyError(request.id, new LessoncastError('UNAVAILABLE', 'too many requests in flight'));
    this.queued++;
    const { id, method, data } = request;
    this.queue = this.queue.then(async () => {
      try {
        if (this.relay) return this.relay.forward(request);
        if (method === 'join' && this.deps.locate && !this.lesson) {
          this.who();
          const relay = await this.deps.locate((data as RequestData<'join'>).lessonId, this);
          if (relay) {
            this.relay = relay;
            return relay.forward(request);
          }
        }
        const result = await (this.handlers[method] as Handler<Method>)(data);
        if (method === 'join') this.deps.onJoinOutcome?.(true);
        this.send({ kind: 'response', id, ok: true, data: result });
      } catch (err) {
        if (method === 'join') this.deps.onJoinOutcome?.(false, asLessoncastError(err).code);
        this.wire.replyError(id, err);
        if (method === 'join' && !this.lesson) this.wire.release?.();
      } finally {
        this.queued--;
      }
    });
  }

  /** The client's connection closed. */
  closedByPeer(): void {
    if (this.closed) return;
    this.closed = true;
    this.relay?.closed();
    const { lesson, participant } = this;
    if (lesson && participant) lesson.disconnect(participant.id, this.id);
    this.detach();
    this.emit('closed');
  }

  // -- state guards --------------------------------------------------------

  private who(): Principal {
    if (!this.principal) fail('UNAUTHENTICATED', 'authenticate first');
    return this.principal!;
  }

  private inLesson(): { lesson: Lesson; me: Participant } {
    this.who();
    if (!this.lesson || !this.participant) fail('NOT_IN_LESSON', 'join a lesson first');
    return { lesson: this.lesson!, me: this.participant! };
  }

  // -- handlers --------------------------------------------------------------

  private readonly handlers: { [M in Method]: Handler<M> } = {
    authenticate: async ({ token }) => {
      if (this.principal) fail('OUT_OF_ORDER', 'already authenticated');
      this.principal = await this.deps.gate.verify(token);
      this.deps.gate.authenticated();
      this.deps.log.info({ session: this.id, role: this.principal.role, user: this.principal.id }, 'session authenticated');
      return { participantId: this.principal.id, role: this.principal.role, name: this.principal.name, protocolVersion: PROTOCOL_VERSION };
    },

    join: async ({ lessonId }) => {
      const principal = this.who();
      if (this.deps.isDraining()) fail('SHUTTING_DOWN', 'this server is shutting down; join again in a moment');
      if (this.lesson && this.lesson.id !== lessonId) fail('ALREADY_JOINED', 'leave your current lesson first');
      const lesson = await this.deps.registry.resolve(lessonId);
      const { participant, rejoined, replacedConnectionId } = await lesson.join(principal, this.id);
      if (replacedConnectionId) {
        const old = this.deps.findSession(replacedConnectionId);
        if (old) {
          old.detach();
          old.notify('sessionReplaced', {});
          old.close(4001, 'replaced by a newer connection');
        }
      }
      this.lesson = lesson;
      this.participant = participant;
      await this.deps.onJoined(this, lesson);
      return {
        lesson: lesson.view(),
        participantId: participant.id,
        rejoined,
        routerRtpCapabilities: lesson.routerCapabilities(),
        participants: lesson.visibleParticipants(),
        producers: lesson.producers(),
        recording: lesson.recording,
        links: lesson.links(participant),
        ...this.deps.iceFor({ id: participant.id, role: principal.role }),
      };
    },

    leave: async () => {
      const { lesson, me } = this.inLesson();
      lesson.leave(me.id);
      this.detach();
      return {};
    },

    goLive: async () => {
      const { lesson, me } = this.inLesson();
      lesson.goLive(me);
      return { lesson: lesson.view() };
    },

    endLesson: async () => {
      const { lesson, me } = this.inLesson();
      lesson.end(me, 'ended by the instructor');
      return { lesson: lesson.view() };
    },

    createTransport: async ({ direction, forceTcp }) => {
      const { lesson, me } = this.inLesson();
      return lesson.createTransport(me, direction, forceTcp ?? false);
    },

    connectTransport: async ({ transportId, dtlsParameters }) => {
      const { lesson, me } = this.inLesson();
      await lesson.connectTransport(me, transportId, dtlsParameters);
      return {};
    },

    restartIce: async ({ transportId }) => {
      const { lesson, me } = this.inLesson();
      return { iceParameters: await lesson.restartIce(me, transportId) };
    },

    produce: async ({ transportId, kind, rtpParameters, source }) => {
      const { lesson, me } = this.inLesson();
      return { producerId: await lesson.produce(me, transportId, kind, rtpParameters, source) };
    },

    closeProducer: async ({ producerId }) => {
      const { lesson, me } = this.inLesson();
      lesson.closeProducer(me, producerId);
      return {};
    },

    consume: async ({ transportId, producerId, rtpCapabilities }) => {
      const { lesson, me } = this.inLesson();
      return lesson.consume(me, transportId, producerId, rtpCapabilities);
    },

    resumeConsumer: async ({ consumerId }) => {
      const { lesson, me } = this.inLesson();
      await lesson.resumeConsumer(me, consumerId);
      return {};
    },

    pauseConsumer: async ({ consumerId }) => {
      const { lesson, me } = this.inLesson();
      await lesson.pauseConsumer(me, consumerId);
      return {};
    },

    setPreferredLayers: async ({ consumerId, spatialLayer, temporalLayer }) => {
      const { lesson, me } = this.inLesson();
      await lesson.setPreferredLayers(me, consumerId, spatialLayer, temporalLayer);
      return {};
    },

    raiseHand: async () => {
      const { lesson, me } = this.inLesson();
      return { handRaisedAt: lesson.raiseHand(me) };
    },

    lowerHand: async ({ participantId }) => {
      const { lesson, me } = this.inLesson();
      lesson.lowerHand(me, participantId);
      return {};
    },

    grantFloor: async ({ participantId }) => {
      const { lesson, me } = this.inLesson();
      lesson.grantFloor(me, participantId);
      return {};
    },

    revokeFloor: async ({ participantId }) => {
      const { lesson, me } = this.inLesson();
      lesson.revokeFloor(me, participantId);
      return {};
    },

    reportMediaMode: async ({ mode }) => {
      const { lesson, me } = this.inLesson();
      lesson.reportMediaMode(me, mode);
      return {};
    },

    oneWayStream: async () => {
      const { lesson, me } = this.inLesson();
      lesson.requireLiveViewer(me);
      const recorded = lesson.def.record;
      if (!this.deps.oneWay) fail('NOT_RECORDING', 'this server has no live recordings to watch', { reason: 'notRunning' });
      const stream = await this.deps.oneWay!.link({ id: lesson.id, recorded }, this.who());
      this.deps.log.info(
        { session: this.id, lesson: lesson.id, participant: me.id, expiresAt: stream.expiresAt },
        'one-way stream link issued',
      );
      return stream;
    },
  };
}
