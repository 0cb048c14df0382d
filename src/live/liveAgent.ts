import type { Logger } from '../logger.js';
import type { Lesson, LessonEvents } from '../lessons/lesson.js';
import { subscribeUntilClosed } from '../events.js';
import type { ParticipantView } from '../domain/index.js';
import type { LiveState } from './liveState.js';
import type { LiveLesson, LiveSchool, NodeLoad, SchoolQuality, UplinkQuality } from './types.js';

export interface LiveAgentOptions {
  nodeId: string;
  /** Base URL of this node (known once it listens). */
  address(): string;
  heartbeatSeconds: number;
  load(): NodeLoad;
  /** In a cluster: the edges serving classrooms of a lesson hosted here (refreshed with every heartbeat). */
  edgesOf?(lessonId: string): string[];
  log: Logger;
}

interface Tracked {
  live: LiveLesson;
  schools: Map<string, LiveSchool>;
}

/**
 * This node's reporter to the live state: turns its lessons' domain events
 * into live entries and bus events, and keeps the node's heartbeat (which
 * also sweeps for dead nodes). A lesson appears once someone visible joins or
 * it goes live, and disappears when it ends.
 */
export class LiveAgent {
  private readonly tracked = new Map<string, Tracked>();
  private readonly startedAt = new Date().toISOString();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly state: LiveState,
    private readonly opts: LiveAgentOptions,
  ) {}

  /** Follows one lesson (call from the registry's 'created' event) until it closes. */
  attach(lesson: Lesson): void {
    const publish = this.state.publish.bind(this.state);
    subscribeUntilClosed<LessonEvents>(lesson, {
      participantJoined: (p, hidden) => {
        if (hidden || !this.open(lesson)) return;
        if (p.role === 'classroom') this.schoolConnected(lesson, p, false);
      },
      participantUpdated: (p, hidden) => {
        if (hidden || p.role !== 'classroom' || !this.open(lesson)) return;
        this.schoolConnected(lesson, p, true);
      },
      participantLeft: (id) => {
        const t = this.tracked.get(lesson.id);
        if (!t?.schools.delete(id)) return;
        this.state.removeSchool(lesson.id, id);
        publish({ type: 'schoolLeft', lessonId: lesson.id, schoolId: id });
      },
      handRaised: (id) => this.ifSchool(lesson, id, () => publish({ type: 'handRaised', lessonId: lesson.id, schoolId: id })),
      handLowered: (id) => this.ifSchool(lesson, id, () => publish({ type: 'handLowered', lessonId: lesson.id, schoolId: id })),
      floorGranted: (id) =>
        this.tracked.has(lesson.id) &&
        publish({ type: 'floorChanged', lessonId: lesson.id, holders: [...lesson.floorHolders()], granted: id }),
      floorRevoked: (id) =>
        this.tracked.has(lesson.id) &&
        publish({ type: 'floorChanged', lessonId: lesson.id, holders: [...lesson.floorHolders()], revoked: id }),
      linkChanged: (link) => {
        const t = this.tracked.get(lesson.id);
        const school = t?.schools.get(link.participantId);
        if (!t || !school) return;
        t.schools.set(school.schoolId, { ...school, link: link.layer });
        this.state.putSchool(lesson.id, t.schools.get(school.schoolId)!);
        publish({
          type: 'schoolLink',
          lessonId: lesson.id,
          schoolId: school.schoolId,
          layer: link.layer,
          availableKbps: link.availableKbps,
        });
      },
      recordingChanged: (recording) => {
        const t = this.tracked.get(lesson.id);
        if (!t) return;
        t.live = { ...t.live, recording };
        this.state.putLesson(t.live);
        publish({ type: 'recordingChanged', lessonId: lesson.id, recording });
      },
      started: () => {
        const t = this.open(lesson);
        if (!t) return;
        t.live = { ...t.live, state: 'live', startedAt: (lesson.startedAt ?? new Date()).toISOString() };
        this.state.putLesson(t.live);
        publish({ type: 'lessonStarted', lessonId: lesson.id, lesson: t.live });
      },
      ended: (reason) => {
        if (!this.tracked.delete(lesson.id)) return;
        this.state.removeLesson(lesson.id);
        publish({ type: 'lessonEnded', lessonId: lesson.id, reason });
      },
      // Another node is its origin now and reports it from there; nothing ended.
      handedOver: () => {
        if (this.tracked.delete(lesson.id)) this.state.removeLesson(lesson.id);
      },
    });
  }

  /**
   * Latest quality of a lesson's schools and of its publishers' uplinks (from the sampler); also
   * goes out as a `quality` event.
   */
  reportQuality(lessonId: string, entries: SchoolQuality[], uplink: UplinkQuality[] = []): void {
    const t = this.tracked.get(lessonId);
    if (!t) return;
    const known = entries.filter((e) => t.schools.has(e.schoolId));
    if (known.length === 0 && uplink.length === 0 && t.live.uplink.length === 0) return;
    for (const e of known) {
      const s = t.schools.get(e.schoolId)!;
      t.schools.set(e.schoolId, { ...s, connected: e.connected, quality: e.quality });
    }
    if (known.length > 0) this.state.setQuality(lessonId, known);
    if (uplink.length > 0 || t.live.uplink.length > 0) {
      t.live = { ...t.live, uplink };
      this.state.putLesson(t.live);
    }
    this.state.publish({ type: 'quality', lessonId, schools: known, uplink });
  }

  /** A recording fault, published with its detail (the lesson's recording status says `fault` through its own event). */
  recordingFault(lessonId: string, message: string, detail?: Record<string, unknown>): void {
    this.state.publish({ type: 'recordingFault', lessonId, message, ...(detail ? { detail } : {}) });
  }

  /** Lessons of this node whose recorder is writing. */
  recordingsActive(): number {
    let n = 0;
    for (const t of this.tracked.values()) if (t.live.recording.state === 'recording') n++;
    return n;
  }

  start(): void {
    if (this.heartbeatTimer) return;
    void this.beat();
    this.heartbeatTimer = setInterval(() => void this.beat(), this.opts.heartbeatSeconds * 1000);
    this.heartbeatTimer.unref();
  }

  /** Stops announcing this node (shutdown; tests use it to play a hung node). */
  async stopHeartbeat(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.beating;
  }

  private beat(): Promise<void> {
    this.refreshEdges();
    this.beating ??= (async () => {
      try {
        await this.state.heartbeat({ address: this.opts.address(), startedAt: this.startedAt, load: this.opts.load() });
        await this.state.sweep();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'live state heartbeat failed');
      } finally {
        this.beating = undefined;
      }
    })();
    return this.beating;
  }

  /** Edges come and go as classrooms join through other nodes: their list is brought up to date with each heartbeat. */
  private refreshEdges(): void {
    if (!this.opts.edgesOf) return;
    for (const [id, t] of this.tracked) {
      const edges = this.opts.edgesOf(id);
      if (edges.join() === t.live.edges.join()) continue;
      t.live = { ...t.live, edges };
      this.state.putLesson(t.live);
    }
  }

  /** The lesson's live entry, created on first need; none once it has ended (late disconnects must not revive it). */
  private open(lesson: Lesson): Tracked | undefined {
    let t = this.tracked.get(lesson.id);
    if (t || lesson.state === 'ended') return t;
    const live: LiveLesson = {
      id: lesson.id,
      title: lesson.def.title,
      instructorId: lesson.def.instructorId,
      node: this.opts.nodeId,
      state: lesson.state === 'live' ? 'live' : 'created',
      startedAt: lesson.startedAt?.toISOString() ?? null,
      recording: lesson.recording,
      uplink: [],
      edges: this.opts.edgesOf?.(lesson.id) ?? [],
    };
    t = { live, schools: new Map() };
    this.tracked.set(lesson.id, t);
    this.state.putLesson(live);
    if (live.state === 'created') this.state.publish({ type: 'lessonOpened', lessonId: lesson.id, lesson: live });
    return t;
  }

  private schoolConnected(lesson: Lesson, p: ParticipantView, update: boolean): void {
    const t = this.tracked.get(lesson.id);
    if (!t) return;
    const before = t.schools.get(p.id);
    const since = (lesson.participants.get(p.id)?.joinedAt ?? new Date()).toISOString();
    const school: LiveSchool = {
      schoolId: p.id,
      name: p.name,
      since: before?.since ?? since,
      connected: p.connected,
      mediaMode: p.mediaMode,
      link: before?.link ?? lesson.participants.get(p.id)?.link?.layer ?? null,
      quality: before?.quality ?? null,
    };
    t.schools.set(p.id, school);
    this.state.putSchool(lesson.id, school);
    if (update && before && before.mediaMode !== p.mediaMode)
      this.state.publish({ type: 'schoolMediaMode', lessonId: lesson.id, schoolId: p.id, mode: p.mediaMode });
    if (update && before && before.connected === p.connected) return;
    if (p.connected) this.state.publish({ type: 'schoolJoined', lessonId: lesson.id, schoolId: p.id, name: p.name, rejoined: update });
    else this.state.publish({ type: 'schoolDisconnected', lessonId: lesson.id, schoolId: p.id });
  }

  private ifSchool(lesson: Lesson, id: string, fn: () => void): void {
    if (this.tracked.get(lesson.id)?.schools.has(id)) fn();
  }
}
