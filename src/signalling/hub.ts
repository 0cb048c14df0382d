import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { ErrorCode } from '../errors.js';
import type { Lesson } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import type { SocketAdmission, SocketGate } from './admission.js';
import type { NotificationData, NotificationEvent, RecordingState } from './protocol.js';
import { Session, type SessionLogger } from './session.js';
import { Liveness } from './socket.js';

export interface HubDeps {
  /** The door: authentication clock, unauthenticated sockets per address, throttled token checks. */
  admission: SocketAdmission;
  registry: LessonRegistry;
  log: SessionLogger;
  maxMessageBytes: number;
  /** Seconds between WebSocket pings; a peer missing one is dropped (its seat then waits out the grace period). */
  pingIntervalSeconds?: number;
  /** Told the outcome of every `join` request (metrics). */
  onJoinOutcome?(ok: boolean, code?: string): void;
  /** A frame was refused as the client's mistake, by error code (metrics). */
  countFrame?(code: ErrorCode): void;
}

/**
 * All signalling sessions of this node: the /ws endpoint, and the routing of
 * each lesson's domain events to the sessions in that lesson.
 */
export class SignallingHub {
  private readonly sessions = new Map<string, Session>();
  private readonly byLesson = new Map<string, Set<Session>>();
  private readonly wired = new WeakSet<Lesson>();
  private draining = false;
  /** Last recording state announced per lesson (answered on join, then pushed as it changes). */
  private readonly recording = new Map<string, RecordingState>();
  private readonly liveness: Liveness;

  constructor(private readonly deps: HubDeps) {
    this.liveness = new Liveness(deps.pingIntervalSeconds ?? 15);
  }

  register(app: FastifyInstance): void {
    app.get('/ws', { websocket: true }, this.deps.admission.handler((socket, gate) => this.attach(socket, gate)));
    app.addHook('onClose', async () => this.liveness.stop());
  }

  attach(socket: WebSocket, gate: SocketGate): Session {
    const session = new Session(socket, {
      gate,
      registry: this.deps.registry,
      log: this.deps.log,
      maxMessageBytes: this.deps.maxMessageBytes,
      liveness: this.liveness,
      isDraining: () => this.draining,
      onJoined: (s, lesson) => this.onJoined(s, lesson),
      onDetached: (s, lesson) => this.byLesson.get(lesson.id)?.delete(s),
      findSession: (id) => this.sessions.get(id),
      recordingState: (lessonId) => this.recording.get(lessonId) ?? { state: 'stopped', at: null },
      ...(this.deps.onJoinOutcome ? { onJoinOutcome: this.deps.onJoinOutcome } : {}),
      ...(this.deps.countFrame ? { countFrame: this.deps.countFrame } : {}),
    });
    this.sessions.set(session.id, session);
    socket.on('close', () => this.sessions.delete(session.id));
    return session;
  }

  /** The recorder's view of a lesson changed: tell everyone in it (the studio shows it). */
  setRecordingState(lessonId: string, state: RecordingState): void {
    this.recording.set(lessonId, state);
    for (const s of this.inLesson(lessonId)) s.notify('recordingChanged', state);
  }

  /** Shutdown: refuse joins, tell every client, close the sockets. */
  drain(reason: string): void {
    this.draining = true;
    for (const s of this.sessions.values()) {
      s.notify('serverShuttingDown', { reason });
      s.close(1001, 'server shutting down');
    }
  }

  private onJoined(session: Session, lesson: Lesson): void {
    let set = this.byLesson.get(lesson.id);
    if (!set) {
      set = new Set();
      this.byLesson.set(lesson.id, set);
    }
    set.add(session);
    if (!this.wired.has(lesson)) this.wire(lesson);
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

  /** Subscribes once per lesson: domain events become notifications. */
  private wire(lesson: Lesson): void {
    this.wired.add(lesson);
    lesson.on('participantJoined', (p, hidden) => hidden || this.toAll(lesson, 'participantJoined', p, p.id));
    lesson.on('participantUpdated', (p, hidden) => hidden || this.toAll(lesson, 'participantUpdated', p, p.id));
    lesson.on('participantLeft', (id, hidden) => hidden || this.toAll(lesson, 'participantLeft', { participantId: id }, id));
    lesson.on('handRaised', (id, at) => this.toAll(lesson, 'handRaised', { participantId: id, at }));
    lesson.on('handLowered', (id) => this.toAll(lesson, 'handLowered', { participantId: id }));
    lesson.on('floorGranted', (id) => this.toAll(lesson, 'floorGranted', { participantId: id }));
    lesson.on('floorRevoked', (id) => this.toAll(lesson, 'floorRevoked', { participantId: id }));
    lesson.on('newProducer', (info) =>
      this.toAll(lesson, 'newProducer', { producerId: info.producerId, participantId: info.peerId, kind: info.kind, source: info.source as 'camera' }, info.peerId),
    );
    lesson.on('producerClosed', (info) => this.toAll(lesson, 'producerClosed', { producerId: info.producerId }));
    lesson.on('consumerClosed', (pid, consumerId, producerId) => this.toParticipant(lesson, pid, 'consumerClosed', { consumerId, producerId }));
    lesson.on('consumerLayersChanged', (pid, consumerId, spatialLayer, temporalLayer) =>
      this.toParticipant(lesson, pid, 'consumerLayersChanged', { consumerId, spatialLayer, temporalLayer }),
    );
    lesson.on('reconnectRequested', (ids, reason) => {
      for (const id of ids) this.toParticipant(lesson, id, 'reconnectRequested', { reason });
    });
    lesson.on('started', () => this.toAll(lesson, 'lessonStarted', { lesson: lesson.view() }));
    lesson.on('ended', (reason) => {
      this.toAll(lesson, 'lessonEnded', { lesson: lesson.view(), reason });
      for (const s of this.inLesson(lesson.id)) s.detach();
      this.byLesson.delete(lesson.id);
      this.recording.delete(lesson.id);
    });
  }
}
