import type { types } from 'mediasoup';
import type { Lesson } from '../lessons/lesson.js';
import type { HostedLesson } from '../lessons/registry.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import type { SchoolSample } from './qualitySampler.js';

/**
 * What the control room reads of the rest of the node, kept narrow so that
 * monitor/ depends on no registry or pool class (src/server.ts adapts them).
 */

/** This node's lessons. */
export interface LessonsSource {
  /** Every lesson the node holds now, with this node's media of it (ended ones may still be listed). */
  list(): Iterable<HostedLesson<LessonMedia>>;
  /** Calls `listener` with each lesson created from now on; returns the call that stops it. */
  onCreated(listener: (lesson: Lesson) => void): () => void;
  /** In a cluster: the other nodes serving classrooms of a lesson hosted here. */
  edgesOf?(lessonId: string): string[];
  /**
   * In a cluster, the schools of other nodes' lessons that connect here (this node an edge): it
   * samples their media and hands each tick to the lesson's origin, which reports them with the
   * rest of the lesson (the origin has no stats of media made elsewhere).
   */
  edgeQuality?: EdgeQualityPort;
}

/** A lesson of another node as this node serves it (an edge): its media here. */
export interface ServedLesson {
  lessonId: string;
  origin: string;
  media: LessonMedia;
  /** Participants whose media is made here. */
  peerIds(): Iterable<string>;
}

export interface EdgeQualityPort {
  served(): Iterable<ServedLesson>;
  /** Hands this node's samples of a lesson's schools to its origin. */
  send(origin: string, lessonId: string, schools: SchoolSample[]): void;
  /** The latest samples edges sent for a lesson hosted here, by school. */
  received(lessonId: string): ReadonlyMap<string, SchoolSample>;
}

/** One mediasoup worker slot: its current process and whether it is alive. */
export interface WorkerView {
  readonly index: number;
  readonly worker: types.Worker;
  readonly alive: boolean;
}

/** This node's mediasoup workers. */
export interface WorkersSource {
  /** One per configured worker, in index order. */
  slots(): readonly WorkerView[];
  aliveCount(): number;
  /** Calls `listener` with the slot each time a dead worker is replaced; returns the call that stops it. */
  onReplaced(listener: (slot: WorkerView) => void): () => void;
}
