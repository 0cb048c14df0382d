import type { Logger } from '../logger.js';
import { v7 as uuidv7 } from 'uuid';
import type { LiveEvent, LiveEventBody, LiveLesson, LiveLessonView, LiveNode, LiveSchool, LiveSnapshot, SchoolQuality } from './types.js';

export type NodeAnnouncement = Omit<LiveNode, 'id' | 'heartbeatAt'>;
export type LiveListener = (event: LiveEvent) => void;

/**
 * Hands an event to each listener. One that throws is logged (its bug must be seen) and the
 * others still hear the event.
 */
export function deliverToEach(listeners: Iterable<LiveListener>, event: LiveEvent, log: Logger | undefined): void {
  for (const listener of [...listeners]) {
    try {
      listener(event);
    } catch (err) {
      log?.error(
        { err: err instanceof Error ? err.message : String(err), stack: err instanceof Error ? err.stack : undefined, event: event.type },
        'live state: a listener failed',
      );
    }
  }
}

/**
 * The live state of the whole deployment, as seen through one node.
 *
 * Writes describe this node's own lessons and schools; they are write-behind
 * (they return at once, `flush()` waits until they are stored). Reads and the
 * event bus span every node. A node's entries live as long as its heartbeats:
 * `nodeTtlSeconds` after the last one they vanish from `snapshot()`, and the
 * next `sweep()` of any surviving node announces it once (`nodeLost`).
 */
export interface LiveState {
  readonly nodeId: string;
  readonly backend: 'memory' | 'redis';

  /** Refreshes this node's entry (and with it the lifetime of its lessons and schools). */
  heartbeat(node: NodeAnnouncement): Promise<void>;
  putLesson(lesson: LiveLesson): void;
  /** Removes the lesson and its schools. */
  removeLesson(lessonId: string): void;
  putSchool(lessonId: string, school: LiveSchool): void;
  removeSchool(lessonId: string, schoolId: string): void;
  /** Updates connection and quality of schools already put (others are ignored). */
  setQuality(lessonId: string, entries: SchoolQuality[]): void;

  /** Stamps the event (uuid v7, time, node), delivers it to local listeners now and to other nodes. */
  publish(body: LiveEventBody): LiveEvent;
  /**
   * Every event of every node, each once (other nodes' `quality` samples only
   * while `setRemoteQuality(true)`). Returns the unsubscribe function.
   */
  subscribe(listener: LiveListener): () => void;
  /** Whether this node wants other nodes' quality samples (they are most of the bus traffic; only a control room needs them). */
  setRemoteQuality(on: boolean): void;

  /** All live nodes, with their lessons and schools. */
  snapshot(): Promise<LiveSnapshot>;
  /** Finds nodes whose heartbeat expired, removes their leftovers, publishes `nodeLost` (once per node across all sweepers). */
  sweep(): Promise<void>;
  /** Why the shared store is unusable right now, or undefined. */
  problem(): string | undefined;
  /** Resolves once every write made so far is stored (or the store is unreachable). */
  flush(): Promise<void>;
  /** Removes this node's entries (a clean leave, unless `keepEntries`) and releases connections. */
  close(opts?: { keepEntries?: boolean }): Promise<void>;
}

export function stampEvent(body: LiveEventBody, node: string): LiveEvent {
  return { ...body, id: uuidv7(), at: new Date().toISOString(), node };
}

const EVENT_TYPES = new Set<string>([
  'lessonOpened',
  'lessonStarted',
  'lessonEnded',
  'schoolJoined',
  'schoolDisconnected',
  'schoolLeft',
  'handRaised',
  'handLowered',
  'floorChanged',
  'recordingChanged',
  'recordingFault',
  'alert',
  'quality',
  'nodeLost',
  'revoked',
] satisfies LiveEvent['type'][]);

/** Events from other nodes arrive as text: keep only well-formed ones. */
export function isLiveEvent(value: unknown): value is LiveEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['id'] === 'string' &&
    typeof v['at'] === 'string' &&
    typeof v['node'] === 'string' &&
    typeof v['type'] === 'string' &&
    EVENT_TYPES.has(v['type'])
  );
}

/** Builds the snapshot view from per-node records (shared by both stores). */
export function assembleSnapshot(
  nodes: Array<{ node: LiveNode; lessons: Iterable<LiveLesson>; schools: Iterable<{ lessonId: string; school: LiveSchool }> }>,
): LiveSnapshot {
  const lessons: LiveLessonView[] = [];
  for (const n of nodes) {
    const byLesson = new Map<string, LiveSchool[]>();
    for (const { lessonId, school } of n.schools) {
      let list = byLesson.get(lessonId);
      if (!list) byLesson.set(lessonId, (list = []));
      list.push(school);
    }
    for (const lesson of n.lessons) {
      const schools = (byLesson.get(lesson.id) ?? []).sort(
        (a, b) => a.since.localeCompare(b.since) || a.schoolId.localeCompare(b.schoolId),
      );
      lessons.push({ ...lesson, schools });
    }
  }
  lessons.sort((a, b) => (a.startedAt ?? '~').localeCompare(b.startedAt ?? '~') || a.id.localeCompare(b.id));
  return { nodes: nodes.map((n) => n.node).sort((a, b) => a.id.localeCompare(b.id)), lessons };
}

export function schoolKey(lessonId: string, schoolId: string): string {
  return `${lessonId}/${schoolId}`;
}
