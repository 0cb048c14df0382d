import type { types } from 'mediasoup';

/**
 * Live counts of mediasoup objects on this node's workers, kept from
 * mediasoup's observer events: no request to the workers, exact at any time.
 */
export class MediaCounts {
  routers = 0;
  readonly transports = new Map<string, number>();
  readonly producers = new Map<string, number>();
  readonly consumers = new Map<string, number>();
  private readonly attached = new WeakSet<types.Worker>();

  /** Follows a worker from now on (attach before it creates routers). */
  attach(worker: types.Worker): void {
    if (this.attached.has(worker)) return;
    this.attached.add(worker);
    worker.observer.on('newrouter', (router) => {
      this.routers++;
      router.observer.once('close', () => this.routers--);
      router.observer.on('newtransport', (transport) => {
        bump(this.transports, transport.type, 1);
        transport.observer.once('close', () => bump(this.transports, transport.type, -1));
        transport.observer.on('newproducer', (p) => {
          bump(this.producers, p.kind, 1);
          p.observer.once('close', () => bump(this.producers, p.kind, -1));
        });
        transport.observer.on('newconsumer', (c) => {
          bump(this.consumers, c.kind, 1);
          c.observer.once('close', () => bump(this.consumers, c.kind, -1));
        });
      });
    });
  }

  total(map: Map<string, number>): number {
    let n = 0;
    for (const v of map.values()) n += v;
    return n;
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
