import type { EventEmitter } from 'node:events';
import type { LessonEvents } from './lesson.js';

/** Whatever emits a lesson's events (a Lesson; a fake in tests). */
export type LessonEventSource = Pick<EventEmitter<LessonEvents>, 'on' | 'off'>;

/** Handlers for some of a lesson's events, by event name. */
export type LessonHandlers = { [E in keyof LessonEvents]?: (...args: LessonEvents[E]) => void };

type AnyListener = (...args: unknown[]) => void;

/**
 * Subscribes observers of a lesson (its journal, its recorder) to its events
 * and returns the one call that removes them all. A handler that throws is
 * handed to `onError` and never reaches the lesson's own emit: an observer
 * must not break the live lesson.
 */
export function listenTo(lesson: LessonEventSource, handlers: LessonHandlers, onError: (event: keyof LessonEvents, err: unknown) => void): () => void {
  // The lesson's typed on/off are generic per event name; handlers are looped over by name.
  const on = lesson.on.bind(lesson) as unknown as (event: string, listener: AnyListener) => unknown;
  const off = lesson.off.bind(lesson) as unknown as (event: string, listener: AnyListener) => unknown;
  const removals: Array<() => void> = [];
  for (const event of Object.keys(handlers) as Array<keyof LessonEvents>) {
    const handler = handlers[event] as AnyListener;
    const guarded: AnyListener = (...args) => {
      try {
        handler(...args);
      } catch (err) {
        onError(event, err);
      }
    };
    on(event, guarded);
    removals.push(() => off(event, guarded));
  }
  return () => {
    for (const remove of removals.splice(0)) remove();
  };
}
