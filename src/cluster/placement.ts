import type { LiveNode } from '../live/types.js';

/**
 * Where a lesson's origin goes (docs/cluster.md, "Placement"): the least-loaded healthy node.
 * Load is what a node carries per worker (each worker is one core): consumers, with every
 * lesson counted as the cost of its publisher and recording. A pure rule, unit-tested.
 */

/** A lesson's publisher and recording cost about as much as this many classroom consumers. */
export const LESSON_WEIGHT = 20;

export interface PlacementCandidate {
  node: LiveNode;
  /** The node is draining (shutting down) or its heartbeat is older than the freshness bound. */
  healthy: boolean;
}

/** Load per core of a node, in consumer units. */
export function loadPerCore(node: LiveNode): number {
  const { workers, consumers, lessons } = node.load;
  return (consumers + LESSON_WEIGHT * lessons) / Math.max(1, workers);
}

/** Whether a node's heartbeat is recent enough to give it a lesson (it may die between beats). */
export function isFresh(node: LiveNode, now: number, freshMs: number): boolean {
  const at = Date.parse(node.heartbeatAt);
  return Number.isFinite(at) && now - at <= freshMs;
}

/**
 * The node to become a lesson's origin: the healthy one with the least load per core; ties go to
 * the lower id, so two nodes placing the same lesson at once choose the same one. Null when no
 * node is healthy.
 */
export function chooseOrigin(candidates: readonly PlacementCandidate[]): string | null {
  let best: { id: string; load: number } | null = null;
  for (const c of candidates) {
    if (!c.healthy || c.node.load.workers < 1) continue;
    const load = loadPerCore(c.node);
    if (!best || load < best.load || (load === best.load && c.node.id < best.id)) best = { id: c.node.id, load };
  }
  return best?.id ?? null;
}
