import { EventEmitter } from 'node:events';
import { mayAccessLesson, type Principal } from '../auth/tokens.js';
import { aRole, can } from '../auth/permissions.js';
import { LessoncastError, fail } from '../errors.js';
import {
  kindOfSource,
  notRecording,
  type LessonState,
  type LessonView,
  type LinkView,
  type MediaKind,
  type MediaMode,
  type MediaSource,
  type ParticipantView,
  type ProducerView,
  type RecordingStatus,
  type Role,
} from '../domain/index.js';
import { subscribe } from '../events.js';
import { TokenBucket, type HeldKind, type ParticipantLimits } from './limits.js';
import type { ConsumerParams, LessonMediaEvents, LessonMediaPort, MediaParameters, ProducerInfo, TransportParams } from './mediaPort.js';

export interface LessonDefinition {
  id: string;
  title: string;
  subject: string;
  instructorId: string;
  /** Schools invited (informational; a classroom's token decides whether it may join). */
  schools: string[];
  record: boolean;
  createdAt: Date;
}

export interface Participant {
  id: string;
  role: Role;
  name: string;
  /** Monitors and admins watch without appearing to others. */
  hidden: boolean;
  connected: boolean;
  joinedAt: Date;
  /** The connection currently speaking for this participant. */
  connectionId: string;
  handRaisedAt: number | null;
  /** How it receives the lesson, as it last reported (kept across a rejoin, like hand and floor). */
  mediaMode: MediaMode;
  /** What its link lets through, as the weak-link policy last judged it; null until then. */
  link: LinkView | null;
  graceTimer?: NodeJS.Timeout;
  /** Hand, floor and media-path actions left (lessons.actionBurst, lessons.actionsPerSecond). */
  actions: TokenBucket;
}

/** Domain events of one lesson; signalling, live state and the archive listen. */
export type LessonEvents = {
  participantJoined: [p: ParticipantView, hidden: boolean];
  participantUpdated: [p: ParticipantView, hidden: boolean];
  participantLeft: [participantId: string, hidden: boolean];
  handRaised: [participantId: string, at: number];
  handLowered: [participantId: string];
  floorGranted: [participantId: string];
  floorRevoked: [participantId: string];
  newProducer: [info: ProducerInfo];
  producerClosed: [info: ProducerInfo];
  consumerClosed: [participantId: string, consumerId: string, producerId: string];
  consumerLayersChanged: [participantId: string, consumerId: string, spatial: number | null, temporal: number | null];
  /** The weak-link policy's word on a participant's link changed (layer, or video paused: 'audio-only'). */
  linkChanged: [link: LinkView, previous: LinkView | null, p: Participant];
  /** These participants must set up media again (worker died). */
  reconnectRequested: [participantIds: string[], reason: string];
  /** The recorder's word on this lesson changed (started, stopped, fault). */
  recordingChanged: [status: RecordingStatus];
  started: [];
  ended: [reason: string];
  /**
   * This node stops hosting the lesson without ending it: another node is its origin now
   * (docs/cluster.md). Participants here set up again there; `closed` follows.
   */
  handedOver: [reason: string, graceful: boolean];
  /** Last event: the lesson ended (or was handed over) and its media is closed; listeners should let go of it. */
  closed: [];
};

/** A lesson with who is in it, as GET /api/lessons/:id answers (and a lesson's origin tells other nodes). */
export interface LessonDetail {
  lesson: LessonView;
  schools: string[];
  participants: ParticipantView[];
  handQueue: string[];
  floor: string[];
}

export interface LessonOptions {
  reconnectGraceMs: number;
  maxFloorHolders: number;
  limits: ParticipantLimits;
  /** A limit refused a participant (metrics): transports, producers, consumers, lessonActions. */
  onRefused?(limit: string): void;
}

export interface JoinResult {
  participant: Participant;
  rejoined: boolean;
  /** A still-open connection that spoke for this participant and is now replaced. */
  replacedConnectionId?: string;
}

/**
 * A lesson as the school sees it: who is in it, in which role, whose hand is
 * up, who holds the floor, and whether it is live. Every rule about who may
 * do what in a lesson is checked here, and it is the only door to the
 * lesson's media (a LessonMediaPort: local routers, or later a remote one).
 */
export class Lesson extends EventEmitter<LessonEvents> {
  state: LessonState = 'created';
  startedAt: Date | null = null;
  endedAt: Date | null = null;
  readonly participants = new Map<string, Participant>();
  /** Classroom ids holding the floor, oldest first. */
  private readonly floor: string[] = [];
  private recordingStatus: RecordingStatus;
  private readonly unsubscribeMedia: () => void;

  constructor(
    readonly def: LessonDefinition,
    private readonly media: LessonMediaPort,
    private readonly opts: LessonOptions,
  ) {
    super();
    this.recordingStatus = notRecording(def.record);
    this.unsubscribeMedia = subscribe<LessonMediaEvents>(media, {
      producerClosed: (info) => this.emit('producerClosed', info),
      consumerClosed: (peer, consumerId, producerId) => this.emit('consumerClosed', peer, consumerId, producerId),
      consumerLayersChanged: (peer, c, s, t) => this.emit('consumerLayersChanged', peer, c, s, t),
      linkChanged: (peer, layer, availableKbps) => this.linkChanged(peer, layer, availableKbps),
      mediaLost: (peers, reason) => this.emit('reconnectRequested', peers, reason),
    });
  }

  get id(): string {
    return this.def.id;
  }

  view(): LessonView {
    return {
      id: this.def.id,
      title: this.def.title,
      subject: this.def.subject,
      instructorId: this.def.instructorId,
      state: this.state,
      record: this.def.record,
      createdAt: this.def.createdAt.toISOString(),
      startedAt: this.startedAt?.toISOString() ?? null,
      endedAt: this.endedAt?.toISOString() ?? null,
    };
  }

  /** The lesson with who is in it (GET /api/lessons/:id). */
  detail(): LessonDetail {
    return {
      lesson: this.view(),
      schools: this.def.schools,
      participants: this.visibleParticipants(),
      handQueue: this.handQueue(),
      floor: [...this.floorHolders()],
    };
  }

  participantView(p: Participant): ParticipantView {
    return {
      id: p.id,
      role: p.role,
      name: p.name,
      connected: p.connected,
      handRaisedAt: p.handRaisedAt,
      hasFloor: this.floor.includes(p.id),
      mediaMode: p.mediaMode,
    };
  }

  /** Participants others may see (monitors are invisible). */
  visibleParticipants(): ParticipantView[] {
    return [...this.participants.values()].filter((p) => !p.hidden).map((p) => this.participantView(p));
  }

  /** The published tracks, as receivers are told of them. */
  producers(): ProducerView[] {
    return this.media.listProducers().map(producerView);
  }

  get recording(): RecordingStatus {
    return this.recordingStatus;
  }

  /** The recorder's word on this lesson; participants and the control room are told (`recordingChanged`). */
  setRecording(change: Omit<RecordingStatus, 'enabled'>): void {
    if (this.state === 'ended' && change.state !== 'stopped') return;
    const was = this.recordingStatus;
    // Only changes are told: the same state said again (a fault repeating, a second stop) is not news.
    if (was.at !== null && was.state === change.state && was.message === change.message && was.recovering === change.recovering) return;
    this.recordingStatus = { enabled: this.def.record, ...change };
    this.emit('recordingChanged', this.recordingStatus);
  }

  floorHolders(): readonly string[] {
    return this.floor;
  }

  handQueue(): string[] {
    return [...this.participants.values()]
      .filter((p) => p.handRaisedAt !== null)
      .sort((a, b) => a.handRaisedAt! - b.handRaisedAt!)
      .map((p) => p.id);
  }

  // -- membership --------------------------------------------------------

  /** Admits a principal (or takes back their seat); the lesson's media opens on the first join. */
  async join(principal: Principal, connectionId: string): Promise<JoinResult> {
    this.mayJoin(principal);
    await this.media.ensureOpen();
    // The lesson may have ended while the media opened.
    this.mayJoin(principal);
    return this.seat(principal, connectionId);
  }

  private mayJoin(principal: Principal): void {
    this.requireOpen();
    if (!can(principal.role, 'lesson.join')) fail('FORBIDDEN', `${aRole(principal.role)} cannot join lessons`);
    if (!mayAccessLesson(principal, this.id)) fail('FORBIDDEN', 'your token does not allow this lesson');
    if (principal.role === 'instructor' && principal.id !== this.def.instructorId) {
      fail('FORBIDDEN', "only the lesson's own instructor can teach it");
    }
  }

  private seat(principal: Principal, connectionId: string): JoinResult {
    const hidden = can(principal.role, 'lesson.watchHidden');
    const existing = this.participants.get(principal.id);
    if (existing) {
      if (existing.role !== principal.role) fail('FORBIDDEN', 'this id is in the lesson under another role');
      const replaced = existing.connected && existing.connectionId !== connectionId ? existing.connectionId : undefined;
      clearTimeout(existing.graceTimer);
      existing.graceTimer = undefined;
      // A rejoin sets up media afresh; seat, hand and floor are kept.
      this.media.closePeer(existing.id);
      existing.connected = true;
      existing.connectionId = connectionId;
      existing.name = principal.name;
      this.emit('participantUpdated', this.participantView(existing), existing.hidden);
      return { participant: existing, rejoined: true, ...(replaced ? { replacedConnectionId: replaced } : {}) };
    }
    const participant: Participant = {
      id: principal.id,
      role: principal.role,
      name: principal.name,
      hidden,
      connected: true,
      joinedAt: new Date(),
      connectionId,
      handRaisedAt: null,
      mediaMode: 'live',
      link: null,
      actions: new TokenBucket(this.opts.limits.actionBurst, this.opts.limits.actionsPerSecond),
    };
    this.participants.set(participant.id, participant);
    this.emit('participantJoined', this.participantView(participant), hidden);
    return { participant, rejoined: false };
  }

  /** The connection dropped: keep the seat for the grace period, then leave. */
  disconnect(participantId: string, connectionId: string): void {
    const p = this.participants.get(participantId);
    if (!p || p.connectionId !== connectionId || !p.connected) return;
    p.connected = false;
    this.media.closePeer(p.id);
    // Media sent under the floor stops with the connection; the floor itself is kept for the grace period.
    this.emit('participantUpdated', this.participantView(p), p.hidden);
    if (this.opts.reconnectGraceMs <= 0) return this.leave(participantId);
    p.graceTimer = setTimeout(() => this.leave(participantId), this.opts.reconnectGraceMs);
    p.graceTimer.unref();
  }

  leave(participantId: string): void {
    const p = this.participants.get(participantId);
    if (!p) return;
    clearTimeout(p.graceTimer);
    if (p.handRaisedAt !== null) this.lowerHandOf(p);
    if (this.floor.includes(p.id)) this.takeFloor(p.id);
    this.media.closePeer(p.id);
    this.participants.delete(p.id);
    this.emit('participantLeft', p.id, p.hidden);
  }

  // -- lifecycle ---------------------------------------------------------

  goLive(by: Participant): void {
    this.requireTeacher(by);
    if (this.state === 'live') return;
    this.state = 'live';
    this.startedAt = new Date();
    this.emit('started');
  }

  /** A lesson that was live when the node restarted is live again at once, from its first start (no `started`: it is not news). */
  resumeLive(startedAt: Date): void {
    if (this.state !== 'created') return;
    this.state = 'live';
    this.startedAt = startedAt;
  }

  /** Ends the lesson: everyone is told, all media closes. `by` undefined = the server (admin, shutdown). */
  end(by: Participant | undefined, reason: string): void {
    if (by) this.requireTeacher(by);
    if (this.state === 'ended') return;
    this.state = 'ended';
    this.endedAt = new Date();
    for (const p of this.participants.values()) clearTimeout(p.graceTimer);
    // Recording stops with the lesson: told before 'ended', while everyone is still there to hear it.
    if (this.recordingStatus.state !== 'stopped') this.setRecording({ state: 'stopped', at: this.endedAt.toISOString() });
    this.emit('ended', reason);
    this.unsubscribeMedia();
    this.media.close();
    this.emit('closed');
  }

  /**
   * Many nodes: this node stops being the lesson's origin. `graceful`: it is stopping and still
   * holds the lease (its part of the recording is finished properly); otherwise it lost the lease
   * and another node may already be origin (it must write nothing more). Nothing is ended: the
   * catalog keeps it live, participants are asked to join again (and reach the new origin), this
   * node's media and recording of it close.
   */
  handOver(reason: string, graceful = false): void {
    if (this.state === 'ended') return;
    for (const p of this.participants.values()) clearTimeout(p.graceTimer);
    this.emit('handedOver', reason, graceful);
    this.unsubscribeMedia();
    this.media.close();
    this.emit('closed');
  }

  // -- hands and floor ---------------------------------------------------

  raiseHand(by: Participant): number {
    if (!can(by.role, 'hand.raise')) fail('FORBIDDEN', `${aRole(by.role)} does not raise hands`);
    this.spendAction(by);
    if (by.handRaisedAt === null) {
      by.handRaisedAt = Date.now();
      this.emit('handRaised', by.id, by.handRaisedAt);
    }
    return by.handRaisedAt;
  }

  lowerHand(by: Participant, targetId?: string): void {
    const target = targetId && targetId !== by.id ? this.participants.get(targetId) : by;
    if (!target) fail('NOT_FOUND', `no participant ${targetId}`);
    if (target !== by) this.requireTeacher(by);
    this.spendAction(by);
    if (target!.handRaisedAt !== null) this.lowerHandOf(target!);
  }

  grantFloor(by: Participant, targetId: string): void {
    this.requireTeacher(by);
    this.spendAction(by);
    const target = this.participants.get(targetId);
    if (!target || target.hidden) fail('NOT_FOUND', `no participant ${targetId}`);
    if (!can(target!.role, 'media.publishWithFloor')) fail('FORBIDDEN', `${aRole(target!.role)} cannot be given the floor`);
    if (this.floor.includes(targetId)) return;
    while (this.floor.length >= this.opts.maxFloorHolders) this.takeFloor(this.floor[0]!);
    this.floor.push(targetId);
    if (target!.handRaisedAt !== null) this.lowerHandOf(target!);
    this.emit('floorGranted', targetId);
  }

  revokeFloor(by: Participant, targetId: string): void {
    // The instructor takes the floor back; a classroom may hand it back itself.
    if (by.id !== targetId) this.requireTeacher(by);
    this.spendAction(by);
    if (!this.floor.includes(targetId)) fail('NOT_FOUND', `${targetId} does not hold the floor`);
    this.takeFloor(targetId);
  }

  private takeFloor(id: string): void {
    this.floor.splice(this.floor.indexOf(id), 1);
    this.media.closeProducersOf(id);
    this.emit('floorRevoked', id);
  }

  private lowerHandOf(p: Participant): void {
    p.handRaisedAt = null;
    this.emit('handLowered', p.id);
  }

  // -- media path ----------------------------------------------------------

  /**
   * A classroom says how it receives the lesson: 'one-way' when its network blocks live media
   * (it watches the live recording and cannot speak), 'live' when WebRTC carries it again. A change
   * is told as `participantUpdated`; the same mode said again is not news. Costs a lesson action.
   */
  reportMediaMode(by: Participant, mode: MediaMode): void {
    this.requireOpen();
    if (!can(by.role, 'media.publishWithFloor')) fail('FORBIDDEN', `${aRole(by.role)} does not report a media path`);
    this.spendAction(by);
    if (by.mediaMode === mode) return;
    by.mediaMode = mode;
    this.emit('participantUpdated', this.participantView(by), by.hidden);
  }

  /** Links the weak-link policy has judged (the instructor sees every one, anyone else its own). */
  links(by: Participant): LinkView[] {
    const all = [...this.participants.values()].filter((p) => !p.hidden && p.link !== null);
    return all.filter((p) => this.teaches(by) || p.id === by.id).map((p) => p.link!);
  }

  private linkChanged(participantId: string, layer: LinkView['layer'], availableKbps: number | null): void {
    const p = this.participants.get(participantId);
    if (!p || this.state === 'ended') return;
    const previous = p.link;
    if (previous?.layer === layer) return;
    p.link = { participantId, layer, availableKbps };
    this.emit('linkChanged', p.link, previous, p);
  }

  // -- media: every operation checks who may do it ------------------------

  /** What a receiver needs of the lesson's codecs. */
  routerCapabilities(): MediaParameters {
    this.requireOpen();
    return this.media.rtpCapabilities;
  }

  async createTransport(by: Participant, direction: 'send' | 'recv', forceTcp: boolean): Promise<TransportParams> {
    this.requireOpen();
    // A classroom may set up its send transport before it is given the floor: producing is what needs it.
    if (direction === 'recv') this.requireConsumer(by);
    else if (!can(by.role, 'lesson.teach') && !can(by.role, 'media.publishWithFloor'))
      fail('FORBIDDEN', `${aRole(by.role)} does not publish media`);
    this.requireRoom(by, 'transports');
    return this.media.createTransport(by.id, direction, forceTcp);
  }

  async connectTransport(by: Participant, transportId: string, dtlsParameters: MediaParameters): Promise<void> {
    this.requireOpen();
    await this.media.connectTransport(by.id, transportId, dtlsParameters);
  }

  async restartIce(by: Participant, transportId: string): Promise<MediaParameters> {
    this.requireOpen();
    return this.media.restartIce(by.id, transportId);
  }

  async produce(
    by: Participant,
    transportId: string,
    kind: MediaKind,
    rtpParameters: MediaParameters,
    source: MediaSource,
  ): Promise<string> {
    this.requireOpen();
    this.requirePublisher(by, source);
    if (kindOfSource(source) !== kind) fail('INVALID_REQUEST', `source ${source} does not carry ${kind}`);
    this.requireRoom(by, 'producers');
    const producerId = await this.media.produce(by.id, transportId, kind, rtpParameters, source);
    // The lesson may have ended (its media closed with it), or the floor been taken back, while
    // the producer was being made.
    this.requireOpen();
    if (!this.teaches(by) && !this.floor.includes(by.id)) {
      this.media.closeProducer(by.id, producerId);
      fail('FORBIDDEN', 'the floor was taken back');
    }
    const info = this.media.listProducers().find((p) => p.producerId === producerId);
    if (info) this.emit('newProducer', info);
    return producerId;
  }

  closeProducer(by: Participant, producerId: string): void {
    this.requireOpen();
    this.media.closeProducer(by.id, producerId);
  }

  async consume(by: Participant, transportId: string, producerId: string, rtpCapabilities: MediaParameters): Promise<ConsumerParams> {
    this.requireOpen();
    this.requireConsumer(by);
    this.requireRoom(by, 'consumers');
    return this.media.consume(by.id, transportId, producerId, rtpCapabilities);
  }

  async resumeConsumer(by: Participant, consumerId: string): Promise<void> {
    this.requireOpen();
    await this.media.resumeConsumer(by.id, consumerId);
  }

  async pauseConsumer(by: Participant, consumerId: string): Promise<void> {
    this.requireOpen();
    await this.media.pauseConsumer(by.id, consumerId);
  }

  async setPreferredLayers(by: Participant, consumerId: string, spatialLayer: number, temporalLayer?: number): Promise<void> {
    this.requireOpen();
    await this.media.setPreferredLayers(by.id, consumerId, spatialLayer, temporalLayer);
  }

  // -- the rules -----------------------------------------------------------

  private teaches(by: Participant): boolean {
    return can(by.role, 'lesson.teach') && by.id === this.def.instructorId;
  }

  /** The instructor publishes anything; a classroom its camera and microphone while it holds the floor; nobody else. */
  private requirePublisher(by: Participant, source?: MediaSource): void {
    if (can(by.role, 'lesson.teach')) {
      if (by.id !== this.def.instructorId) fail('FORBIDDEN', "only this lesson's instructor publishes");
    } else if (can(by.role, 'media.publishWithFloor')) {
      if (!this.floor.includes(by.id)) fail('FORBIDDEN', 'a classroom publishes only while it holds the floor');
      if (source === 'screen') fail('FORBIDDEN', 'a classroom publishes its microphone or camera only');
    } else {
      fail('FORBIDDEN', `${aRole(by.role)} does not publish media`);
    }
  }

  /** Watching the lesson one way (its live recording): a participant who receives media, while the lesson is live. */
  requireLiveViewer(by: Participant): void {
    this.requireOpen();
    this.requireConsumer(by);
    if (this.state !== 'live') fail('LESSON_NOT_LIVE', 'the lesson has not started yet');
  }

  private requireConsumer(by: Participant): void {
    if (!can(by.role, 'media.consume')) fail('FORBIDDEN', `${aRole(by.role)} does not receive media`);
  }

  /** Refuses one more transport, producer or consumer past the participant's cap (LIMIT_REACHED). */
  private requireRoom(by: Participant, kind: HeldKind): void {
    const max = this.opts.limits[kind];
    if (this.media.held(by.id)[kind] < max) return;
    this.refuse(new LessoncastError('LIMIT_REACHED', `a participant holds at most ${max} ${kind}; close one first`, { limit: kind, max }));
  }

  /**
   * Hands, floor and media paths are told to everyone in the lesson, so each action costs every
   * participant a notification: a participant's actions are rationed (RATE_LIMITED past the bucket).
   */
  private spendAction(by: Participant): void {
    const retryAfterSeconds = by.actions.take();
    if (retryAfterSeconds === undefined) return;
    this.refuse(
      new LessoncastError('RATE_LIMITED', `too many lesson actions (hands, floor, media path); retry in ${retryAfterSeconds} s`, {
        limit: 'lessonActions',
        retryAfterSeconds,
      }),
    );
  }

  private refuse(e: LessoncastError): never {
    this.opts.onRefused?.(String(e.details?.['limit']));
    throw e;
  }

  private requireTeacher(by: Participant): void {
    if (!this.teaches(by)) fail('FORBIDDEN', "only this lesson's instructor can do that");
  }

  private requireOpen(): void {
    if (this.state === 'ended') fail('LESSON_ENDED', 'this lesson has ended');
  }
}

const producerView = (p: ProducerInfo): ProducerView => ({
  producerId: p.producerId,
  participantId: p.peerId,
  kind: p.kind,
  source: p.source,
});
