import type { EventEmitter } from 'node:events';

/** Event name → listener arguments, as Node's typed EventEmitter takes them. */
type EventMap<T> = Record<keyof T, unknown[]>;
type Handlers<T extends EventMap<T>> = { [E in keyof T]?: (...args: T[E]) => void };
export type Subscribable<T extends EventMap<T>> = Pick<EventEmitter<T>, 'on' | 'off'>;

/**
 * Subscribes typed handlers; returns the one call that removes them all again. With `onError`, a
 * handler that throws is handed to it and never reaches the emitter: an observer (a journal, a
 * recorder) must not break what it observes.
 */
export function subscribe<T extends EventMap<T>>(
  emitter: Subscribable<T>,
  handlers: Handlers<T>,
  onError?: (event: keyof T, err: unknown) => void,
): () => void {
  // Typed at the call site; Node's own overloads cannot be spread over a mapped type.
  const untyped = emitter as unknown as Pick<EventEmitter, 'on' | 'off'>;
  const guard =
    (event: string, handler: (...args: unknown[]) => void) =>
    (...args: unknown[]): void => {
      try {
        handler(...args);
      } catch (err) {
        onError!(event as keyof T, err);
      }
    };
  const entries = (Object.entries(handlers) as Array<[string, (...args: unknown[]) => void]>).map(
    ([event, handler]) => [event, onError ? guard(event, handler) : handler] as const,
  );
  for (const [event, handler] of entries) untyped.on(event, handler);
  let subscribed = true;
  return () => {
    if (!subscribed) return;
    subscribed = false;
    for (const [event, handler] of entries) untyped.off(event, handler);
  };
}

/**
 * Subscribes until the emitter emits `closed` (mediasoup's lifecycle: the last event of an
 * object), then removes every handler, so nothing keeps a closed lesson or session alive.
 * `onClosed` runs after the handlers are removed.
 */
export function subscribeUntilClosed<T extends EventMap<T> & { closed: [] }>(
  emitter: Subscribable<T>,
  handlers: Handlers<T>,
  onClosed?: () => void,
): () => void {
  const unsubscribe = subscribe(emitter, handlers);
  const untyped = emitter as unknown as Pick<EventEmitter, 'on' | 'off'>;
  const closed = (): void => {
    stop();
    onClosed?.();
  };
  const stop = (): void => {
    unsubscribe();
    untyped.off('closed', closed);
  };
  untyped.on('closed', closed);
  return stop;
}
