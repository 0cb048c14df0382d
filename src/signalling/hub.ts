import type { Logger } from '../logger.js';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import { LessoncastError, type ErrorCode } from '../errors.js';
import type { Lesson, LessonEvents } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import type { SocketAdmission, SocketGate } from './admission.js';
import { subscribeUntilClosed } from '../events.js';
import type { NotificationData, NotificationEvent } from './protocol.js';
import { CLOSE_REVOKED } from './admission.js';
import type { Principal } from '../auth/tokens.js';
import { Session, type OneWayStreams, type SessionDeps, type SessionWire } from './session.js';
import { Liveness, WireSocket } from './socket.js';

export interface HubDeps {
  /** The door: authentication clock, unauthenticated sockets per address, throttled token checks. */
  admission: SocketAdmission;
  registry: LessonRegistry;
  log: Logger;
  maxMessageBytes: number;
  iceFor: SessionDeps['iceFor'];
  /** Seconds between WebSocket pings; a peer missing one is dropped (its seat then waits out the grace period). */
  pingIntervalSeconds?: number;
  /** Told the outcome of every `join` request (metrics). */
  onJoinOutcome?(ok: boolean, code?: string): void;
  /** A frame was refused as the client's mistake, by error code (metrics). */
  countFrame?(code: ErrorCode): void;
  /** Live HLS links for one-way viewers (`oneWayStream`). */
  oneWay?: OneWayStreams;
  /** In a cluster: where a lesson lives, and a relay to it when elsewhere (src/cluster/relay.ts). */
  locate?: SessionDeps['locate'];
  /** In a cluster: a session joined a lesson hosted here; its media is made where its client is connected. */
  placeMedia?(session: Session, lesson: Lesson): void;
}

/** A relayed session cannot authenticate again: it arrived authenticated from its edge. */
const relayedGate: SocketGate = {
  verify: () => Promise.reject(new LessoncastError('OUT_OF_ORDER', 'already authenticated')),
  authenticated: () => undefined,
};

/**
 * All signalling sessions of this node: the /ws endpoint, and the routing of
 * each lesson's domain events to the sessions in that lesson.
 */
export class SignallingHub {
  private readonly sessions = new Map<string, Session>();
  private readonly byLesson = new Map<string, Set<Session>>();
  /** Lessons whose events reach their sessions; each lets go when its lesson closes. */
  private readonly wired = new Set<string>();
  private draining = false;
  private readonly liveness: Liveness;

  constructor(private readonly deps: HubDeps) {
    this.liveness = new Liveness(deps.pingIntervalSeconds ?? 15);
  }

  register(app: FastifyInstance): void {
    app.get(
      '/ws',
      { websocket: true, schema: { summary: 'Signalling for studios, classrooms and the control room (docs/protocol.md)' } },
      this.deps.admission.handler((socket, gate) => this.attach(socket, gate)),
    );
    app.addHook('onClose', async () => this.liveness.stop());
  }

  attach(socket: WebSocket, gate: SocketGate): Session {
    // The wire hands requests to the session made from it just below, and logs with its id.
    const ready: { session?: Session } = {};
    const logFields: { session?: string } = {};
    const wire = new WireSocket(socket, {
      maxMessageBytes: this.deps.maxMessageBytes,
      log: this.deps.log,
      logFields,
      liveness: this.liveness,
      ...(this.deps.countFrame ? { countFrame: this.deps.countFrame } : {}),
      onRequest: (request) => ready.session?.handle(request),
    });
    const session = this.createSession(wire, gate);
    ready.session = session;
    logFields.session = session.id;
    socket.on('close', () => session.closedByPeer());
    return session;
  }

  /**
   * A session another node relays here (its client is connected there and its lesson lives
   * here): requests come through `handle`, messages leave through `wire`, `closedByPeer` when
   * the client is gone.
   */
  attachRelayed(wire: SessionWire, relayed: { id: string; principal: Principal }): Session {
    return this.createSession(wire, relayedGate, relayed);
  }

  private createSession(wire: SessionWire, gate: SocketGate, relayed?: { id: string; principal: Principal }): Session {
    const session = new Session(
      wire,
      {
        gate,
        registry: this.deps.registry,
        log: this.deps.log,
        isDraining: () => this.draining,
        ...(this.deps.locate && !relayed ? { locate: this.deps.locate } : {}),
        onJoined: (s, lesson) => this.onJoined(s, lesson),
        onDetached: (s, lesson) => this.byLesson.get(lesson.id)?.delete(s),
        findSession: (id) => this.sessions.get(id),
        iceFor: this.deps.iceFor,
        ...(this.deps.onJoinOutcome ? { onJoinOutcome: this.deps.onJoinOutcome } : {}),
        ...(this.deps.countFrame ? { countFrame: this.deps.countFrame } : {}),
        ...(this.deps.oneWay ? { oneWay: this.deps.oneWay } : {}),
      },
      relayed,
    );
    this.sessions.set(session.id, session);
    session.once('closed', () => this.sessions.delete(session.id));
    return session;
  }

  /** Shutdown: refuse joins, tell every client, close the sockets. */
  drain(reason: string): void {
    this.draining = true;
    for (const s of this.sessions.values()) {
      s.notify('serverShuttingDown', { reason });
      s.close(1001, 'server shutting down');
    }
  }

  /**
   * Closes the sessions whose token `refused` names (revoked) with 4401, and takes their seats at
   * once: a revoked board or person gets no grace period. Returns how many were closed.
   */
  revoke(refused: (p: Principal) => boolean): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (!s.principal || !refused(s.principal)) continue;
      const { lesson, participant } = s;
      s.close(CLOSE_REVOKED, 'token revoked');
      if (lesson && participant) lesson.leave(participant.id);
      n++;
    }
    return n;
  }

  private onJoined(session: Session, lesson: Lesson): void {
    this.deps.placeMedia?.(session, lesson);
    let set = this.byLesson.get(lesson.id);
    if (!set) {
      set = new Set();
      this.byLesson.set(lesson.id, set);
    }
    set.add(session);
    if (!this.wired.has(lesson.id)) this.wire(lesson);
  }

  private inLesson(lessonId: string): Session[] {
    return [...(this.byLesson.get(lessonId) ?? [])];
  }

  private toAll<E extends NotificationEvent>(lesson: Lesson, event: E, data: NotificationData[E], except?: string): void {
    for (const s of this.inLesson(lesson.id)) if (s.participant?.id !== except) s.notify(event, data);
  }

  private toParticipant<E extends NotificationEvent>(lesson: Lesson, participantId: string, event: E, data: NotificationData[E]): void {
    for (const s of this.inLesson(lesson.id)) if (s.participant?.id === participantId) s.notify(event, data);
  }

  /** Subscribes once per lesson, until it closes: domain events become notifications. */
  private wire(lesson: Lesson): void {
    this.wired.add(lesson.id);
    const toAll = <E extends NotificationEvent>(event: E, data: NotificationData[E], except?: string): void =>
      this.toAll(lesson, event, data, except);
    subscribeUntilClosed<LessonEvents>(
      lesson,
      {
        participantJoined: (p, hidden) => hidden || toAll('participantJoined', p, p.id),
        participantUpdated: (p, hidden) => hidden || toAll('participantUpdated', p, p.id),
        participantLeft: (id, hidden) => hidden || toAll('participantLeft', { participantId: id }, id),
        handRaised: (id, at) => toAll('handRaised', { participantId: id, at }),
        handLowered: (id) => toAll('handLowered', { participantId: id }),
        floorGranted: (id) => toAll('floorGranted', { participantId: id }),
        floorRevoked: (id) => toAll('floorRevoked', { participantId: id }),
        newProducer: (info) =>
          toAll(
            'newProducer',
            { producerId: info.producerId, participantId: info.peerId, kind: info.kind, source: info.source },
            info.peerId,
          ),
        producerClosed: (info) => toAll('producerClosed', { producerId: info.producerId }),
        consumerClosed: (pid, consumerId, producerId) => this.toParticipant(lesson, pid, 'consumerClosed', { consumerId, producerId }),
        consumerLayersChanged: (pid, consumerId, spatialLayer, temporalLayer) =>
          this.toParticipant(lesson, pid, 'consumerLayersChanged', { consumerId, spatialLayer, temporalLayer }),
        // A link's word goes to its own participant and to the instructor (the studio counts audio-only schools).
        linkChanged: (link) => {
          for (const s of this.inLesson(lesson.id))
            if (s.participant?.id === link.participantId || s.participant?.id === lesson.def.instructorId) s.notify('linkChanged', link);
        },
        reconnectRequested: (ids, reason) => {
          for (const id of ids) this.toParticipant(lesson, id, 'reconnectRequested', { reason });
        },
        recordingChanged: (status) => toAll('recordingChanged', status),
        started: () => toAll('lessonStarted', { lesson: lesson.view() }),
        handedOver: (reason) => {
          for (const s of this.inLesson(lesson.id)) s.handOver(reason);
          this.byLesson.delete(lesson.id);
        },
        ended: (reason) => {
          toAll('lessonEnded', { lesson: lesson.view(), reason });
          for (const s of this.inLesson(lesson.id)) s.detach();
          this.byLesson.delete(lesson.id);
        },
      },
      () => this.wired.delete(lesson.id),
    );
  }
}
