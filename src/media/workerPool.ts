import type { Logger } from '../logger.js';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { types } from 'mediasoup';
import type { Mediasoup } from './mediasoup.js';
import { lessonMediaCodecs } from './codecs.js';

/**
 * Where the WebRtcServers' ICE-TCP sockets listen and what their candidates say, apart from UDP
 * (resolveIceTcp). Worker i listens on port + i and announces announcedPort + i.
 */
export interface IceTcpListen {
  listenIp: string;
  announcedAddress: string;
  /** 0 = the UDP port of the worker (webRtcServerPort + i, or any free one). */
  port: number;
  /** 0 = the port it listens on; else a port mapping in front (e.g. 443 → 44000). */
  announcedPort: number;
}

/** The ICE-TCP settings with their defaults filled in from the UDP ones (config media.iceTcp.*). */
export function resolveIceTcp(media: { listenIp: string; iceTcp: IceTcpListen }, udpAnnouncedAddress: string): IceTcpListen {
  const { iceTcp } = media;
  return {
    listenIp: iceTcp.listenIp || media.listenIp,
    announcedAddress: iceTcp.announcedAddress || iceTcp.listenIp || udpAnnouncedAddress,
    port: iceTcp.port,
    announcedPort: iceTcp.announcedPort,
  };
}

export interface WorkerPoolOptions {
  workers: number;
  listenIp: string;
  announcedAddress: string;
  /** Worker i's WebRtcServer listens on this + i (UDP, and TCP unless iceTcp.port is set). 0 = any free port. */
  webRtcServerPort: number;
  iceTcp: IceTcpListen;
  rtcMinPort: number;
  rtcMaxPort: number;
  logLevel: types.WorkerLogLevel;
  /** SO_RCVBUF of each WebRtcServer's UDP socket; 0 = the kernel default. */
  udpRecvBufferBytes: number;
  /** One sendmmsg() per socket for a received packet's fan-out (our worker build's patch; docs/forwarding.md). */
  udpSendBatch: boolean;
}

/**
 * Switches our worker build's send batching (scripts/worker/patches/3.32.2/0001-udp-send-batch.patch)
 * for the workers created next. mediasoup gives a worker this process's environment and no other
 * way to pass it one; the patch reads the variable once, when the worker starts, so call this
 * before every createWorker (an earlier caller may have set it otherwise).
 */
export function useSendBatch(enabled: boolean): void {
  process.env['MEDIASOUP_UDP_SEND_BATCH'] = enabled ? '1' : '0';
}

/** One core's share of the SFU: a worker, its WebRtcServer, and how loaded it is. */
export interface WorkerSlot {
  readonly index: number;
  worker: types.Worker;
  webRtcServer: types.WebRtcServer;
  /** The port this worker's TCP candidates carry when a port mapping is in front (media.iceTcp.announcedPort + i). */
  readonly tcpAnnouncedPort: number | undefined;
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
    const { iceTcp, workers } = this.opts;
    if (workers > 1 && iceTcp.port && iceTcp.port < 1024) {
      // A school that reaches only 443 reaches worker 0 alone there: say so (docs/turn.md).
      this.log.warn(
        { iceTcpPort: iceTcp.port, workers, lastPort: iceTcp.port + workers - 1 },
        'media.iceTcp.port: worker i listens on port + i, so only worker 0 is on the configured port; give ICE-TCP its own address per worker or one worker, or use TURN/TLS for 443-only schools',
      );
    }
    for (let i = 0; i < workers; i++) {
      const { worker, webRtcServer } = await this.spawn(i);
      const tcpAnnouncedPort = iceTcp.announcedPort ? iceTcp.announcedPort + i : undefined;
      this.slots.push({ index: i, worker, webRtcServer, tcpAnnouncedPort, consumers: 0, routers: 0, alive: true });
    }
  }

  private async spawn(index: number): Promise<{ worker: types.Worker; webRtcServer: types.WebRtcServer }> {
    useSendBatch(this.opts.udpSendBatch);
    const worker = await this.ms.createWorker({
      logLevel: this.opts.logLevel,
      rtcMinPort: this.opts.rtcMinPort,
      rtcMaxPort: this.opts.rtcMaxPort,
      appData: { index },
    });
    worker.on('died', (error) => this.onDied(index, worker, error));
    const { iceTcp } = this.opts;
    const port = this.opts.webRtcServerPort ? this.opts.webRtcServerPort + index : undefined;
    const tcpPort = iceTcp.port ? iceTcp.port + index : port;
    const listen = (protocol: 'udp' | 'tcp', ip: string, announcedAddress: string, at: number | undefined): types.TransportListenInfo => ({
      protocol,
      ip,
      announcedAddress: announcedAddress !== ip ? announcedAddress : undefined,
      ...(at ? { port: at } : { portRange: { min: this.opts.rtcMinPort, max: this.opts.rtcMaxPort } }),
      // Every publisher of this worker arrives on this one socket: the kernel's default buffer
      // (~90 datagrams) overflows whenever the worker is descheduled for ~10 ms (docs/performance.md §3).
      ...(protocol === 'udp' && this.opts.udpRecvBufferBytes ? { recvBufferSize: this.opts.udpRecvBufferBytes } : {}),
    });
    const where = `udp ${this.opts.listenIp}:${port ?? 'auto'}, tcp ${iceTcp.listenIp}:${tcpPort ?? 'auto'}`;
    try {
      const webRtcServer = await worker.createWebRtcServer({
        listenInfos: [
          listen('udp', this.opts.listenIp, this.opts.announcedAddress, port),
          listen('tcp', iceTcp.listenIp, iceTcp.announcedAddress, tcpPort),
        ],
      });
      this.log.info({ worker: index, pid: worker.pid, port: port ?? 'auto', tcpPort: tcpPort ?? 'auto' }, 'mediasoup worker started');
      return { worker, webRtcServer };
    } catch (err) {
      worker.close();
      throw new Error(`worker ${index}: cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
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

/**
 * The ICE candidates to give a client of this worker: its TCP candidates carry the mapped port
 * when a port mapping is in front (mediasoup announces the port it listens on).
 */
export function announcedCandidates<C extends { protocol: string; port: number }>(candidates: C[], slot: WorkerSlot): C[] {
  const mapped = slot.tcpAnnouncedPort;
  return mapped === undefined ? candidates : candidates.map((c) => (c.protocol === 'tcp' ? { ...c, port: mapped } : c));
}

/** net.core.rmem_max on Linux (the cap on SO_RCVBUF); undefined elsewhere. */
function kernelRecvBufferMax(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  } catch {
    return undefined;
  }
}
