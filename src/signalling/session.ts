import type { Logger } from '../logger.js';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
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
import { WireSocket, type Liveness } from './socket.js';
import type { ParsedRequest } from './validate.js';

export interface SessionDeps {
  /** Token checks and the authentication clock of this connection's door. */
  gate: SocketGate;
  registry: LessonRegistry;
  log: Logger;
  maxMessageBytes: number;
  /** The endpoint's pings: a socket that misses a pong is dropped. */
  liveness: Liveness;
  isDraining(): boolean;
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

/** Requests waiting beyond this are refused: a client cannot queue unbounded work. */
const MAX_QUEUED = 64;

type Handler<M extends Method> = (data: RequestData<M>) => Promise<ResponseData[M]>;

/**
 * One WebSocket connection: authenticates once, joins one lesson, and turns
 * each request into a call on the lesson. Requests run in order, one at a time.
 */
export class Session extends EventEmitter<{ closed: [] }> {
  readonly id = randomUUID();
  principal?: Principal;
  lesson?: Lesson;
  participant?: Participant;
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private closed = false;
  private readonly wire: WireSocket;

  constructor(
    socket: WebSocket,
    private readonly deps: SessionDeps,
  ) {
    super();
    this.wire = new WireSocket(socket, {
      maxMessageBytes: deps.maxMessageBytes,
      log: deps.log,
      logFields: { session: this.id },
      liveness: deps.liveness,
      ...(deps.countFrame ? { countFrame: deps.countFrame } : {}),
      onRequest: (request) => this.onRequest(request),
    });
    socket.on('close', () => this.onClose());
  }

  notify<E extends NotificationEvent>(event: E, data: NotificationData[E]): void {
    this.send({ kind: 'notification', event, data } as ServerMessage);
  }

  /** Close the connection (replaced, lesson over, shutdown). */
  close(code = 1000, reason = ''): void {
    this.wire.close(code, reason);
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

  /** Requests run one at a time, in order; a client cannot queue more than MAX_QUEUED. */
  private onRequest(request: ParsedRequest): void {
    if (this.queued >= MAX_QUEUED)
      return void this.wire.replyError(request.id, new LessoncastError('UNAVAILABLE', 'too many requests in flight'));
    this.queued++;
    const { id, method, data } = request;
    this.queue = this.queue.then(async () => {
      try {
        const result = await (this.handlers[method] as Handler<Method>)(data);
        if (method === 'join') this.deps.onJoinOutcome?.(true);
        this.send({ kind: 'response', id, ok: true, data: result });
      } catch (err) {
        if (method === 'join') this.deps.onJoinOutcome?.(false, asLessoncastError(err).code);
        this.wire.replyError(id, err);
      } finally {
        this.queued--;
      }
    });
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
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
