import type { Logger } from '../logger.js';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { types } from 'mediasoup';
import type { Mediasoup } from './mediasoup.js';
import { lessonMediaCodecs } from './codecs.js';

export interface WorkerPoolOptions {
  workers: number;
  listenIp: string;
  announcedAddress: string;
  /** Worker i's WebRtcServer listens on this + i (UDP and TCP). 0 = any free port. */
  webRtcServerPort: number;
  rtcMinPort: number;
  rtcMaxPort: number;
  logLevel: types.WorkerLogLevel;
  /** SO_RCVBUF of each WebRtcServer's UDP socket; 0 = the kernel default. */
  udpRecvBufferBytes: number;
}

/** One core's share of the SFU: a worker, its WebRtcServer, and how loaded it is. */
export interface WorkerSlot {
  readonly index: number;
  worker: types.Worker;
  webRtcServer: types.WebRtcServer;
  /** Consumers placed on routers of this worker (kept by the lessons' media). */
  consumers: number;
  routers: number;
  alive: boolean;
}

type PoolEvents = {
  /** A worker died; its routers are gone. A replacement is being started. */
  workerDied: [index: number, pid: number, error: Error];
  workerReplaced: [index: number, pid: number];
};

/**
 * One mediasoup worker per core. Dead workers are replaced in the same slot
 * (same WebRtcServer ports, so firewall rules keep holding).
 */
export class WorkerPool extends EventEmitter<PoolEvents> {
  readonly slots: WorkerSlot[] = [];
  private closing = false;

  constructor(
    private readonly ms: Mediasoup,
    private readonly opts: WorkerPoolOptions,
    private readonly log: Logger,
  ) {
    super();
  }

  async start(): Promise<void> {
    const rmemMax = kernelRecvBufferMax();
    if (rmemMax !== undefined && this.opts.udpRecvBufferBytes > rmemMax) {
      // The kernel silently caps SO_RCVBUF: say so once, or the setting looks applied when it is not.
      this.log.warn(
        { udpRecvBufferBytes: this.opts.udpRecvBufferBytes, rmemMax },
        'media.udpRecvBufferBytes is above net.core.rmem_max: the kernel caps each WebRTC socket at rmem_max (raise it with sysctl)',
      );
    }
    for (let i = 0; i < this.opts.workers; i++) {
      const { worker, webRtcServer } = await this.spawn(i);
      this.slots.push({ index: i, worker, webRtcServer, consumers: 0, routers: 0, alive: true });
    }
  }

  private async spawn(index: number): Promise<{ worker: types.Worker; webRtcServer: types.WebRtcServer }> {
    const worker = await this.ms.createWorker({
      logLevel: this.opts.logLevel,
      rtcMinPort: this.opts.rtcMinPort,
      rtcMaxPort: this.opts.rtcMaxPort,
      appData: { index },
    });
    worker.on('died', (error) => this.onDied(index, worker, error));
    const port = this.opts.webRtcServerPort ? this.opts.webRtcServerPort + index : undefined;
    const listen = (protocol: 'udp' | 'tcp'): types.TransportListenInfo => ({
      protocol,
      ip: this.opts.listenIp,
      announcedAddress: this.opts.announcedAddress !== this.opts.listenIp ? this.opts.announcedAddress : undefined,
      ...(port ? { port } : { portRange: { min: this.opts.rtcMinPort, max: this.opts.rtcMaxPort } }),
      // Every publisher of this worker arrives on this one socket: the kernel's default buffer
      // (~90 datagrams) overflows whenever the worker is descheduled for ~10 ms (docs/performance.md §3).
      ...(protocol === 'udp' && this.opts.udpRecvBufferBytes ? { recvBufferSize: this.opts.udpRecvBufferBytes } : {}),
    });
    try {
      const webRtcServer = await worker.createWebRtcServer({ listenInfos: [listen('udp'), listen('tcp')] });
      this.log.info({ worker: index, pid: worker.pid, port: port ?? 'auto' }, 'mediasoup worker started');
      return { worker, webRtcServer };
    } catch (err) {
      worker.close();
      throw new Error(`worker ${index}: cannot listen on ${this.opts.listenIp}:${port ?? 'auto'}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private onDied(index: number, worker: types.Worker, error: Error): void {
    const slot = this.slots[index];
    if (!slot || slot.worker !== worker) return;
    slot.alive = false;
    slot.consumers = 0;
    slot.routers = 0;
    this.log.error({ worker: index, pid: worker.pid, err: error.message }, 'mediasoup worker died');
    this.emit('workerDied', index, worker.pid, error);
    if (this.closing) return;
    void this.replace(slot, 0);
  }

  private async replace(slot: WorkerSlot, attempt: number): Promise<void> {
    try {
      const { worker, webRtcServer } = await this.spawn(slot.index);
      if (this.closing) {
        worker.close();
        return;
      }
      Object.assign(slot, { worker, webRtcServer, alive: true, consumers: 0, routers: 0 });
      this.log.warn({ worker: slot.index, pid: worker.pid }, 'mediasoup worker replaced');
      this.emit('workerReplaced', slot.index, worker.pid);
    } catch (err) {
      // Ports of the dead process may take a moment to free; back off and retry.
      this.log.error({ worker: slot.index, attempt, err: (err as Error).message }, 'worker replacement failed');
      if (!this.closing) setTimeout(() => void this.replace(slot, attempt + 1), Math.min(5000, 200 * 2 ** attempt)).unref();
    }
  }

  /** The live worker with the least load, optionally avoiding some (to spread a lesson). */
  leastLoaded(exclude: ReadonlySet<number> = new Set()): WorkerSlot {
    const alive = this.slots.filter((s) => s.alive);
    if (alive.length === 0) throw new Error('no live mediasoup worker');
    const preferred = alive.filter((s) => !exclude.has(s.index));
    const pool = preferred.length ? preferred : alive;
    return pool.reduce((a, b) => (b.consumers + b.routers < a.consumers + a.routers ? b : a));
  }

  async createRouter(slot: WorkerSlot, appData: types.AppData = {}): Promise<types.Router> {
    const worker = slot.worker;
    const router = await worker.createRouter({ mediaCodecs: lessonMediaCodecs, appData });
    slot.routers++;
    router.observer.once('close', () => {
      // A router closed by its worker's death must not count against the replacement.
      if (slot.worker === worker) slot.routers = Math.max(0, slot.routers - 1);
    });
    return router;
  }

  get aliveCount(): number {
    return this.slots.filter((s) => s.alive).length;
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const slot of this.slots) slot.worker.close();
  }
}

/** net.core.rmem_max on Linux (the cap on SO_RCVBUF); undefined elsewhere. */
function kernelRecvBufferMax(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  } catch {
    return undefined;
  }
}
