/** A minimal typed event emitter for the browser (no Node 'events'). */
export class Emitter<Events extends Record<string, unknown[]>> {
  private readonly handlers = new Map<keyof Events, Set<(...args: never[]) => void>>();

  on<E extends keyof Events>(event: E, handler: (...args: Events[E]) => void): () => void {
    let set = this.handlers.get(event);
    if (!set) {
      set = new Set();
      this.handlers.set(event, set);
    }
    const h = handler as unknown as (...args: never[]) => void;
    set.add(h);
    return () => set.delete(h);
  }

  protected emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const h of [...(this.handlers.get(event) ?? [])]) {
      try {
        (h as unknown as (...a: Events[E]) => void)(...args);
      } catch (err) {
        // One broken listener must not stop the others (or the socket loop that emitted).
        console.error(`listener for ${String(event)} failed`, err);
      }
    }
  }

  removeAllListeners(): void {
    this.handlers.clear();
  }
}
