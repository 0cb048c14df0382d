import dgram from 'node:dgram';
import type { types } from 'mediasoup';
import { FfmpegRun, type FfmpegExit } from './ffmpegRun.js';
import { isRtcp, startsKeyframe } from './rtp.js';
import { describeConsumerStream, recorderRtpCapabilities, type RtpStreamDescription } from './sdp.js';
import type { RecordedTrack } from './track.js';

export interface FeedFault {
  kind: 'ffmpeg' | 'storage' | 'media';
  code: string;
  message: string;
  detail?: Record<string, unknown>;
}

export interface FeedOptions {
  router: types.Router;
  producerId: string;
  participantId: string;
  kind: 'audio' | 'video';
  /** Address of the PlainTransport and of our relay socket (media.listenIp; loopback when that is a wildcard). */
  tapIp: string;
  ffmpegPath: string;
  segmentSeconds: number;
  origin: Date;
  track: RecordedTrack;
  title: string;
  onFault(fault: FeedFault): void;
  onRun(event: 'runStarted' | 'runEnded', runIndex: number, detail: Record<string, unknown>): void;
}

type FeedState = 'waitingKeyframe' | 'starting' | 'streaming' | 'closed';

/** Keyframe requests while waiting for the first one. */
const KEYFRAME_RETRY_MS = 1000;
/** No media this long: the run is ended cleanly (muted or stalled publisher); the next keyframe starts a new one. */
const IDLE_MS = 6000;
/** Packets held while ffmpeg starts (about 10 s of HD video). */
const MAX_BUFFERED = 4000;
/** A run that receives media but lists no segment for this many segment lengths is stuck (disk full, broken output). */
const STALL_SEGMENTS = 3;
/** A run that lasted this long resets the restart back-off. */
const STABLE_RUN_MS = 30_000;

/**
 * One producer feeding one track: a paused consumer on its own PlainTransport,
 * relayed through a UDP socket of ours into ffmpeg. The relay lets us start
 * every ffmpeg run exactly at a keyframe and know the wall-clock time of its
 * first sample (the run's place on the lesson timeline), and restart ffmpeg
 * without touching mediasoup. Never throws into the lesson: faults go to onFault.
 */
export class TrackFeed {
  private state: FeedState = 'waitingKeyframe';
  private run: FfmpegRun | undefined;
  private runStartedAt = 0;
  private buffer: Buffer[] = [];
  private lastPacketAt = 0;
  private restartNotBefore = 0;
  private failures = 0;
  private closeReason = 'stopped';
  private packets = 0;
  private readonly ticker: NodeJS.Timeout;
  private boundaryTimer?: NodeJS.Timeout;
  private closing?: Promise<void>;
  private markDone!: () => void;
  /** Resolves once the feed has closed (for whatever reason) and its last run is published. */
  readonly done = new Promise<void>((resolve) => (this.markDone = resolve));

  private constructor(
    private readonly opts: FeedOptions,
    private readonly transport: types.PlainTransport,
    private readonly consumer: types.Consumer,
    private readonly inbound: dgram.Socket,
    readonly stream: RtpStreamDescription,
  ) {
    inbound.on('message', (msg) => {
      try {
        this.onPacket(msg);
      } catch {
        // A malformed datagram must never reach the event loop as an exception.
      }
    });
    consumer.on('producerclose', () => void this.close('producer closed'));
    consumer.on('transportclose', () => void this.close('media closed'));
    this.ticker = setInterval(() => this.tick(), KEYFRAME_RETRY_MS);
    this.ticker.unref();
  }

  /** Creates transport, relay and paused consumer; resumes once the relay listens. */
  static async open(opts: FeedOptions): Promise<TrackFeed> {
    const inbound = await bindSocket(opts.tapIp);
    let transport: types.PlainTransport | undefined;
    try {
      transport = await opts.router.createPlainTransport({
        listenInfo: { protocol: 'udp', ip: opts.tapIp },
        rtcpMux: true,
        comedia: false,
        // ffmpeg sends no congestion feedback: nothing to estimate, and nothing may hold back the layer recorded.
        enableBwe: false,
        appData: { recording: true, producerId: opts.producerId },
      });
      await transport.connect({ ip: opts.tapIp, port: (inbound.address() as { port: number }).port });
      const consumer = await transport.consume({
        producerId: opts.producerId,
        rtpCapabilities: recorderRtpCapabilities(opts.router.rtpCapabilities),
        paused: true,
        appData: { recording: true },
      });
      const stream = describeConsumerStream(opts.kind, consumer.rtpParameters);
      if (!stream) throw new Error(`cannot record codec ${consumer.rtpParameters.codecs[0]?.mimeType ?? 'unknown'}`);
      const feed = new TrackFeed(opts, transport, consumer, inbound, stream);
      await consumer.resume();
      if (opts.kind === 'video') await consumer.requestKeyFrame().catch(() => undefined);
      return feed;
    } catch (err) {
      transport?.close();
      inbound.close();
      throw err;
    }
  }

  get producerId(): string {
    return this.opts.producerId;
  }

  status(): { producerId: string; trackId: string; state: FeedState; pid: number | null; packets: number; codec: string } {
    return {
      producerId: this.opts.producerId,
      trackId: this.opts.track.id,
      state: this.state,
      pid: this.run?.pid ?? null,
      packets: this.packets,
      codec: this.stream.codec,
    };
  }

  /** The running ffmpeg, for supervision and tests. */
  get ffmpegPid(): number | null {
    return this.run?.running ? this.run.pid : null;
  }

  private onPacket(packet: Buffer): void {
    if (isRtcp(packet)) return;
    const now = Date.now();
    this.lastPacketAt = now;
    this.packets++;
    switch (this.state) {
      case 'waitingKeyframe':
        if (now < this.restartNotBefore || !startsKeyframe(this.stream.codec, packet)) return;
        this.buffer = [packet];
        void this.startRun(now);
        return;
      case 'starting':
        if (this.buffer.length < MAX_BUFFERED) this.buffer.push(packet);
        return;
      case 'streaming':
        this.send(packet);
        return;
      default:
        return;
    }
  }

  /** (A method, so TypeScript does not narrow the state across awaits.) */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  private send(packet: Buffer): void {
    this.run?.send(packet);
  }

  private async startRun(firstPacketAt: number): Promise<void> {
    this.state = 'starting';
    const { track } = this.opts;
    const offsetSeconds = Math.round(firstPacketAt - this.opts.origin.getTime()) / 1000;
    const run = track.beginRun({
      producerId: this.opts.producerId,
      participantId: this.opts.participantId,
      sourceCodec: this.stream.codec,
      transcoded: this.stream.codec === 'VP8',
      startedAt: new Date(firstPacketAt).toISOString(),
      offsetSeconds,
    });
    let ff: FfmpegRun;
    try {
      ff = await FfmpegRun.start({
        ffmpegPath: this.opts.ffmpegPath,
        stream: this.stream,
        track,
        runIndex: run.index,
        offsetSeconds,
        segmentSeconds: this.opts.segmentSeconds,
        title: this.opts.title,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      track.endRun(run.index, 'could not start ffmpeg');
      this.opts.onFault({
        kind: e.code === 'ENOSPC' || e.code === 'EACCES' || e.code === 'EROFS' ? 'storage' : 'ffmpeg',
        code: e.code ?? 'FFMPEG_START',
        message: `could not start ffmpeg: ${e.message}`,
      });
      this.backOff(firstPacketAt);
      return;
    }
    if (this.isClosed()) {
      await ff.stop(this.closeReason);
      track.endRun(run.index, this.closeReason);
      return;
    }
    this.run = ff;
    this.runStartedAt = firstPacketAt;
    track.setRunPid(run.index, ff.pid);
    track.writePlaylist().catch(() => undefined);
    void ff.exited.then((exit) => this.onRunExit(ff, run.index, exit));
    this.opts.onRun('runStarted', run.index, { producerId: this.opts.producerId, pid: ff.pid, offsetSeconds, codec: this.stream.codec });
    await ff.listening(5000);
    // Flush what arrived meanwhile, in order and in small batches (ffmpeg's socket buffer is finite).
    while (this.state === 'starting' && this.run === ff && this.buffer.length) {
      for (const p of this.buffer.splice(0, 32)) this.send(p);
      await new Promise((r) => setImmediate(r));
    }
    this.buffer = [];
    if (this.state !== 'starting' || this.run !== ff) return;
    this.state = 'streaming';
    this.scheduleBoundaryKeyframes(ff, firstPacketAt);
  }

  /** ffmpeg cuts a segment at the first keyframe after each boundary; WebRTC senders make keyframes only when asked. */
  private scheduleBoundaryKeyframes(ff: FfmpegRun, startedAt: number): void {
    if (this.stream.kind !== 'video' || this.stream.codec === 'VP8') return; // VP8 is re-encoded with forced keyframes
    const period = this.opts.segmentSeconds * 1000;
    const next = (): void => {
      const due = startedAt + Math.ceil((Date.now() - startedAt + 1) / period) * period;
      this.boundaryTimer = setTimeout(() => {
        if (this.run !== ff || this.state !== 'streaming') return;
        this.consumer.requestKeyFrame().catch(() => undefined);
        next();
      }, due - Date.now());
      this.boundaryTimer.unref();
    };
    next();
  }

  private onRunExit(ff: FfmpegRun, runIndex: number, exit: FfmpegExit): void {
    const { track } = this.opts;
    const unexpected = !exit.requested && this.state !== 'closed';
    const reason = exit.reason ?? (unexpected ? `ffmpeg exited (${exit.signal ?? `code ${exit.code}`})` : this.closeReason);
    track.endRun(runIndex, reason);
    this.opts.onRun('runEnded', runIndex, { reason });
    if (this.run === ff) {
      this.run = undefined;
      clearTimeout(this.boundaryTimer);
    }
    if (!unexpected) return;
    const storage = storageCode(exit.stderrTail);
    this.opts.onFault({
      kind: storage ? 'storage' : 'ffmpeg',
      code: storage ?? 'FFMPEG_EXITED',
      message: `ffmpeg recording ${track.id} exited unexpectedly (${exit.signal ?? `code ${exit.code}`}); restarting from the next keyframe`,
      detail: { code: exit.code, signal: exit.signal, stderr: exit.stderrTail.split('\n').slice(-5).join('\n') },
    });
    this.backOff(this.runStartedAt);
  }

  /** Back to waiting for a keyframe, after a delay that grows while runs keep failing. */
  private backOff(runStartedAt: number): void {
    if (this.state === 'closed') return;
    this.failures = Date.now() - runStartedAt > STABLE_RUN_MS ? 1 : this.failures + 1;
    this.restartNotBefore = Date.now() + Math.min(30_000, 500 * 2 ** (this.failures - 1));
    this.state = 'waitingKeyframe';
    this.buffer = [];
  }

  /** Every second: ask for a keyframe while waiting for one; end a run whose media stopped or that is stuck. */
  private tick(): void {
    const now = Date.now();
    if (this.state === 'waitingKeyframe' && this.stream.kind === 'video' && now >= this.restartNotBefore) {
      this.consumer.requestKeyFrame().catch(() => undefined);
    }
    if (this.state === 'streaming' && now - this.lastPacketAt > IDLE_MS && this.run) {
      this.state = 'waitingKeyframe';
      void this.run.stop('no media');
    } else if (
      this.state === 'streaming' &&
      this.run &&
      this.run.msSinceProgress > Math.max(10, STALL_SEGMENTS * this.opts.segmentSeconds) * 1000
    ) {
      // Media flows in but no segment comes out: ffmpeg cannot write (disk full…). Report and start afresh.
      const ff = this.run;
      const tail = ff.stderrTail();
      const storage = storageCode(tail);
      this.opts.onFault({
        kind: storage ? 'storage' : 'ffmpeg',
        code: storage ?? 'FFMPEG_STALLED',
        message: `ffmpeg recording ${this.opts.track.id} has written no segment for ${Math.round(ff.msSinceProgress / 1000)} s${storage ? ' (the disk refuses writes)' : ''}; restarting it`,
        detail: { stderr: tail.split('\n').slice(-5).join('\n') },
      });
      void ff.stop('stalled');
      this.backOff(this.runStartedAt);
    }
  }

  /** Stops ffmpeg (it completes the last segment, which is published) and releases transport, consumer and sockets. */
  close(reason: string): Promise<void> {
    this.closing ??= (async () => {
      this.closeReason = reason;
      this.state = 'closed';
      clearInterval(this.ticker);
      clearTimeout(this.boundaryTimer);
      this.buffer = [];
      await this.run?.stop(reason);
      if (!this.transport.closed) this.transport.close();
      this.inbound.close();
      this.markDone();
    })();
    return this.closing;
  }
}

/** The file-system error ffmpeg reported, if its last words name one. */
function storageCode(stderr: string): string | null {
  if (/No space left on device/i.test(stderr)) return 'ENOSPC';
  if (/Permission denied/i.test(stderr)) return 'EACCES';
  if (/Read-only file system/i.test(stderr)) return 'EROFS';
  if (/Disk quota exceeded/i.test(stderr)) return 'EDQUOT';
  return null;
}

function bindSocket(ip: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: ip.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 1 << 20 });
    socket.once('error', reject);
    socket.bind(0, ip, () => {
      socket.off('error', reject);
      // A loopback send/receive error is not actionable; it must never crash the server.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}
