import type { Logger } from '../logger.js';
import { assembleSnapshot, deliverToEach, schoolKey, stampEvent } from './liveState.js';
import type { LiveListener, LiveState, NodeAnnouncement } from './liveState.js';
import type { LiveEvent, LiveEventBody, LiveLesson, LiveNode, LiveSchool, LiveSnapshot, SchoolQuality } from './types.js';

interface NodeEntry {
  state: MemoryLiveState;
  expiresAt: number;
}

/**
 * The in-process store (embedded default: no Redis). Several nodes may share
 * one hub (tests); each sees the others exactly as through Redis: entries
 * expire with heartbeats, events reach every subscriber once.
 */
export class MemoryLiveHub {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly listeners = new Map<LiveListener, MemoryLiveState>();

  constructor(
    readonly nodeTtlMs: number,
    private readonly log?: Logger,
  ) {}

  /** A node's handle on this hub. */
  state(nodeId: string): MemoryLiveState {
    return new MemoryLiveState(this, nodeId);
  }

  /** @internal */ announce(state: MemoryLiveState): void {
    this.nodes.set(state.nodeId, { state, expiresAt: Date.now() + this.nodeTtlMs });
  }

  /** @internal */ leave(state: MemoryLiveState): void {
    if (this.nodes.get(state.nodeId)?.state === state) this.nodes.delete(state.nodeId);
  }

  /** @internal */ deliver(event: LiveEvent): void {
    const hearing = [...this.listeners].filter(
      ([, owner]) => event.type !== 'quality' || event.node === owner.nodeId || owner.remoteQuality,
    );
    deliverToEach(
      hearing.map(([listener]) => listener),
      event,
      this.log,
    );
  }

  /** @internal */ listen(listener: LiveListener, owner: MemoryLiveState): () => void {
    this.listeners.set(listener, owner);
    return () => this.listeners.delete(listener);
  }

  /** @internal */ dropListeners(owner: MemoryLiveState): void {
    for (const [l, o] of this.listeners) if (o === owner) this.listeners.delete(l);
  }

  /** @internal */ alive(now = Date.now()): MemoryLiveState[] {
    return [...this.nodes.values()].filter((n) => n.expiresAt > now).map((n) => n.state);
  }

  /** @internal Removes expired nodes; each is returned to exactly one caller. */
  claimExpired(except: string, now = Date.now()): MemoryLiveState[] {
    const out: MemoryLiveState[] = [];
    for (const [id, n] of this.nodes) {
      if (id !== except && n.expiresAt <= now) {
        this.nodes.delete(id);
        out.push(n.state);
      }
    }
    return out;
  }
}

export class MemoryLiveState implements LiveState {
  readonly backend = 'memory' as const;
  /** This node's own records; the hub reads them while the node's heartbeat holds. */
  readonly lessons = new Map<string, LiveLesson>();
  readonly schools = new Map<string, { lessonId: string; school: LiveSchool }>();
  node: LiveNode | undefined;
  remoteQuality = false;
  private closed = false;

  constructor(
    private readonly hub: MemoryLiveHub,
    readonly nodeId: string,
  ) {}

  async heartbeat(announcement: NodeAnnouncement): Promise<void> {
    if (this.closed) return;
    this.node = { ...announcement, id: this.nodeId, heartbeatAt: new Date().toISOString() };
    this.hub.announce(this);
  }

  putLesson(lesson: LiveLesson): void {
    this.lessons.set(lesson.id, structuredClone(lesson));
  }

  removeLesson(lessonId: string): void {
    this.lessons.delete(lessonId);
    for (const [k, v] of this.schools) if (v.lessonId === lessonId) this.schools.delete(k);
  }

  putSchool(lessonId: string, school: LiveSchool): void {
    this.schools.set(schoolKey(lessonId, school.schoolId), { lessonId, school: structuredClone(school) });
  }

  removeSchool(lessonId: string, schoolId: string): void {
    this.schools.delete(schoolKey(lessonId, schoolId));
  }

  setQuality(lessonId: string, entries: SchoolQuality[]): void {
    for (const e of entries) {
      const rec = this.schools.get(schoolKey(lessonId, e.schoolId));
      if (rec) rec.school = { ...rec.school, connected: e.connected, quality: e.quality };
    }
  }

  publish(body: LiveEventBody): LiveEvent {
    const event = stampEvent(body, this.nodeId);
    this.hub.deliver(event);
    return event;
  }

  subscribe(listener: LiveListener): () => void {
    return this.hub.listen(listener, this);
  }

  setRemoteQuality(on: boolean): void {
    this.remoteQuality = on;
  }

  async snapshot(): Promise<LiveSnapshot> {
    return assembleSnapshot(
      this.hub.alive().map((s) => ({
        node: structuredClone(s.node!),
        lessons: structuredClone([...s.lessons.values()]),
        schools: structuredClone([...s.schools.values()]),
      })),
    );
  }

  async sweep(): Promise<void> {
    for (const lost of this.hub.claimExpired(this.nodeId)) {
      const lessons = [...lost.lessons.values()].map((l) => ({
        id: l.id,
        title: l.title,
        schools: [...lost.schools.values()].filter((s) => s.lessonId === l.id).length,
      }));
      this.publish({ type: 'nodeLost', lostNode: lost.nodeId, lessons });
    }
  }

  problem(): string | undefined {
    return undefined;
  }

  async flush(): Promise<void> {}

  async close(opts: { keepEntries?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!opts.keepEntries) this.hub.leave(this);
    this.hub.dropListeners(this);
  }
}
