import dgram from 'node:dgram';
import type { types } from 'mediasoup';
import { FfmpegRun, type FfmpegExit } from './ffmpegRun.js';
import { FrameAssembler, type MediaFrame } from './frames.js';
import { matroskaFrame, matroskaHeader } from './matroska.js';
import { isRtcp, senderReports, type SenderReport } from './rtp.js';
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
/** Frames held while a run starts (about 30 s of video at 30 fps): past it the run starts afresh at a later keyframe. */
const MAX_HELD_FRAMES = 2000;
/** Frames kept for a restart since the start of the segment ffmpeg is writing; past it the oldest go. */
const MAX_KEPT_BYTES = 64 * 1024 * 1024;
/** A run that receives media but lists no segment for this many segment lengths is stuck (disk full, broken output). */
const STALL_SEGMENTS = 3;
/** A run that lasted this long resets the restart back-off. */
const STABLE_RUN_MS = 30_000;
/**
 * A run is placed on the lesson clock by a Sender Report of our consumer that left mediasoup at
 * least this long after the producer's first packet: mediasoup learns the sender's clock from
 * three of the sender's own reports (browsers send one a second for video) and, until then, can
 * only report when packets arrived.
 */
const CLOCK_SETTLE_MS = 2500;
/** With no report at all by then (a sender that sends no RTCP), the run is placed by arrival times. */
const CLOCK_WAIT_MS = 5000;

interface HeldFrame extends MediaFrame {
  /** When the frame was complete here (ms), for placement without Sender Reports. */
  at: number;
}

/**
 * One producer feeding one track: a paused consumer on its own PlainTransport,
 * relayed through a UDP socket of ours into ffmpeg. The relay turns RTP into
 * whole frames stamped with their RTP time (Matroska on ffmpeg's stdin), places
 * each run on the lesson clock through the consumer's RTCP Sender Reports
 * (mediasoup's estimate of the sender's capture clock), starts every run at a
 * keyframe, and restarts a dead ffmpeg from the start of the segment it was
 * writing, without touching mediasoup. Never throws into the lesson: faults go
 * to onFault.
 */
export class TrackFeed {
  private state: FeedState = 'waitingKeyframe';
  private run: FfmpegRun | undefined;
  private runStartedAt = 0;
  /** RTP timestamp and lesson-timeline offset of the running run's first frame. */
  private runTs0 = 0;
  private runOffset = 0;
  private readonly assembler: FrameAssembler;
  /** Frames waiting for the run that is starting. */
  private held: HeldFrame[] = [];
  /** Frames given to the running run since the start of the segment it is writing (what a restart replays). */
  private kept: MediaFrame[] = [];
  private keptBytes = 0;
  private clock: (SenderReport & { receivedAt: number }) | undefined;
  private firstPacketAt = 0;
  private lastPacketAt = 0;
  private restartNotBefore = 0;
  private failures = 0;
  private closeReason = 'stopped';
  private packets = 0;
  private readonly ticker: NodeJS.Timeout;
  private boundaryTimer?: NodeJS.Timeout;
  private starting?: Promise<void>;
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
    this.assembler = new FrameAssembler(stream.codec);
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
    const now = Date.now();
    if (isRtcp(packet)) {
      // Our consumer's reports: mediasoup's mapping of its RTP time to the sender's capture instant.
      const sr = senderReports(packet).at(-1);
      if (sr) this.clock = { ...sr, receivedAt: now };
      return;
    }
    if (this.state === 'closed') return;
    this.firstPacketAt ||= now;
    this.lastPacketAt = now;
    this.packets++;
    for (const frame of this.assembler.push(packet)) this.onFrame(frame, now);
  }

  private onFrame(frame: MediaFrame, now: number): void {
    switch (this.state) {
      case 'waitingKeyframe':
        if (now < this.restartNotBefore || !frame.key) return;
        if (this.stream.codec === 'H264' && !(this.assembler.sps && this.assembler.pps)) return; // ffmpeg needs the parameter sets
        this.held = [{ ...frame, at: now }];
        this.starting = this.startRun();
        return;
      case 'starting':
        this.held.push({ ...frame, at: now });
        if (this.held.length > MAX_HELD_FRAMES) {
          // Held too long (ffmpeg keeps failing): start again from a later keyframe.
          this.held = [];
          this.state = 'waitingKeyframe';
        }
        return;
      case 'streaming':
        this.write(frame);
        return;
      default:
        return;
    }
  }

  /** (A method, so TypeScript does not narrow the state across awaits.) */
  private isClosed(): boolean {
    return this.state === 'closed';
  }

  /** Microseconds of a frame into the running run. */
  private runUs(ts: number): number {
    return Math.round(((ts - this.runTs0) * 1e6) / this.stream.clockRate);
  }

  private write(frame: MediaFrame): void {
    const us = this.runUs(frame.ts);
    if (us < 0 || !this.run) return; // older than the run's first frame: reordered, nothing to place it in
    this.run.write(matroskaFrame(us, frame.key, frame.data));
    this.kept.push(frame);
    this.keptBytes += frame.data.length;
    while (this.keptBytes > MAX_KEPT_BYTES && this.kept.length > 1) this.keptBytes -= this.kept.shift()!.data.length;
  }

  /** Where an RTP timestamp sits on the wall clock (ms), through the latest Sender Report. */
  private wallOf(ts: number, sr: SenderReport): number {
    return sr.wallMs + (((ts - sr.rtpTs) | 0) * 1000) / this.stream.clockRate;
  }

  /** Waits until the sender's clock can be trusted, or for as long as a run may wait for it. */
  private async placement(first: HeldFrame): Promise<{ wallMs: number; by: 'senderReport' | 'arrival' }> {
    const settled = (): boolean => this.clock !== undefined && this.clock.receivedAt >= this.firstPacketAt + CLOCK_SETTLE_MS;
    while (!settled() && !this.isClosed() && Date.now() - first.at < CLOCK_WAIT_MS + CLOCK_SETTLE_MS) {
      if (this.clock && Date.now() - first.at >= CLOCK_WAIT_MS) break;
      await sleep(50);
    }
    if (this.clock) return { wallMs: this.wallOf(first.ts, this.clock), by: 'senderReport' };
    // No report: the earliest arrival, projected back along RTP time, is the best guess of when the first frame was sent.
    const projected = this.held.map((f) => f.at - ((f.ts - first.ts) * 1000) / this.stream.clockRate);
    return { wallMs: Math.min(...projected), by: 'arrival' };
  }

  /** Starts a run with the held frames; `continues` places it right after the run that died (same clock reading). */
  private async startRun(continues?: { ts0: number; offsetSeconds: number }): Promise<void> {
    this.state = 'starting';
    const first = this.held[0]!;
    const { track } = this.opts;
    const place = continues
      ? {
          wallMs: this.opts.origin.getTime() + (continues.offsetSeconds + (first.ts - continues.ts0) / this.stream.clockRate) * 1000,
          by: 'restart' as const,
        }
      : await this.placement(first);
    if (this.state !== 'starting' && !(this.isClosed() && this.held.length)) return;
    const offsetSeconds = (place.wallMs - this.opts.origin.getTime()) / 1000;
    const run = track.beginRun({
      producerId: this.opts.producerId,
      participantId: this.opts.participantId,
      sourceCodec: this.stream.codec,
      transcoded: this.stream.codec === 'VP8',
      startedAt: new Date(place.wallMs).toISOString(),
      offsetSeconds: round6(offsetSeconds),
    });
    let ff: FfmpegRun;
    try {
      ff = FfmpegRun.start({
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
      this.backOff(Date.now());
      return;
    }
    this.run = ff;
    this.runStartedAt = Date.now();
    this.runTs0 = first.ts;
    this.runOffset = offsetSeconds;
    this.kept = [];
    this.keptBytes = 0;
    track.setRunPid(run.index, ff.pid);
    track.writePlaylist().catch(() => undefined);
    void ff.exited.then((exit) => this.onRunExit(ff, run.index, exit));
    this.opts.onRun('runStarted', run.index, {
      producerId: this.opts.producerId,
      pid: ff.pid,
      offsetSeconds: round6(offsetSeconds),
      placedBy: place.by,
      codec: this.stream.codec,
    });
    ff.write(
      matroskaHeader({
        codec: this.stream.codec,
        sps: this.assembler.sps,
        pps: this.assembler.pps,
        ...(this.stream.channels !== undefined ? { channels: this.stream.channels } : {}),
        sampleRate: this.stream.clockRate,
      }),
    );
    const held = this.held;
    this.held = [];
    for (const f of held) this.write(f);
    if (this.isClosed()) {
      await ff.stop(this.closeReason);
      return;
    }
    this.state = 'streaming';
    this.scheduleBoundaryKeyframes(ff, this.runStartedAt);
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

  /** The kept frames from the start of the segment the run was writing: what it received but did not finish. */
  private unfinished(runIndex: number): MediaFrame[] {
    const published = this.opts.track.data.segments.filter((s) => s.run === runIndex);
    const endSeconds = published.length ? published.at(-1)!.startSeconds + published.at(-1)!.duration : this.runOffset;
    // ffmpeg cuts at keyframes: the unfinished segment starts at the keyframe where the published ones end.
    const endTs = this.runTs0 + Math.round((endSeconds - this.runOffset) * this.stream.clockRate);
    const slack = this.stream.clockRate / 200; // 5 ms: timestamps went through ffmpeg's rounding
    const start = this.kept.findIndex((f) => f.key && f.ts >= endTs - slack);
    return start < 0 ? [] : this.kept.slice(start);
  }

  private onRunExit(ff: FfmpegRun, runIndex: number, exit: FfmpegExit): void {
    const { track } = this.opts;
    const unexpected = !exit.requested && this.state !== 'closed';
    const reason = exit.reason ?? (unexpected ? `ffmpeg exited (${exit.signal ?? `code ${exit.code}`})` : this.closeReason);
    track.endRun(runIndex, reason);
    this.opts.onRun('runEnded', runIndex, { reason });
    const current = this.run === ff;
    if (current) {
      this.run = undefined;
      clearTimeout(this.boundaryTimer);
    }
    if (!unexpected) return;
    const storage = storageCode(exit.stderrTail);
    const unfinished = current && !storage ? this.unfinished(runIndex) : [];
    this.opts.onFault({
      kind: storage ? 'storage' : 'ffmpeg',
      code: storage ?? 'FFMPEG_EXITED',
      message: `ffmpeg recording ${track.id} exited unexpectedly (${exit.signal ?? `code ${exit.code}`}); restarting ${unfinished.length ? 'from the start of its unfinished segment' : 'from the next keyframe'}`,
      detail: { code: exit.code, signal: exit.signal, stderr: exit.stderrTail.split('\n').slice(-5).join('\n') },
    });
    this.backOff(this.runStartedAt);
    if (!current || !unfinished.length || this.state !== 'waitingKeyframe') return;
    // What ffmpeg received but had not finished is given to the next run, which starts at once after a first failure.
    const now = Date.now();
    this.held = unfinished.map((f) => ({ ...f, at: now }));
    this.state = 'starting';
    const continues = { ts0: this.runTs0, offsetSeconds: this.runOffset };
    this.starting = (async () => {
      await sleep(Math.max(0, this.restartNotBefore - Date.now()));
      if (this.state === 'starting' && this.held.length) await this.startRun(continues);
    })();
  }

  /** Back to waiting for a keyframe, after a delay that grows while runs keep failing (none after one failure). */
  private backOff(runStartedAt: number): void {
    if (this.state === 'closed') return;
    this.failures = Date.now() - runStartedAt > STABLE_RUN_MS ? 1 : this.failures + 1;
    this.restartNotBefore = Date.now() + (this.failures <= 1 ? 0 : Math.min(30_000, 500 * 2 ** (this.failures - 2)));
    this.state = 'waitingKeyframe';
    this.held = [];
  }

  /** Every second: ask for a keyframe while waiting for one; end a run whose media stopped or that is stuck. */
  private tick(): void {
    const now = Date.now();
    if (this.state === 'waitingKeyframe' && this.stream.kind === 'video' && now >= this.restartNotBefore) {
      this.consumer.requestKeyFrame().catch(() => undefined);
    }
    if (this.state === 'streaming' && this.run) {
      // Forget what is already published (keeps the restart buffer to about one segment).
      const keep = this.unfinished(this.opts.track.data.runs.at(-1)?.index ?? 0);
      if (keep.length && keep.length < this.kept.length) {
        this.kept = keep;
        this.keptBytes = keep.reduce((n, f) => n + f.data.length, 0);
      }
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
      // A run still being placed starts with what it holds, then ends.
      await this.starting;
      this.held = [];
      await this.run?.stop(reason);
      if (!this.transport.closed) this.transport.close();
      this.inbound.close();
      this.markDone();
    })();
    return this.closing;
  }
}

const round6 = (n: number): number => Math.round(n * 1e6) / 1e6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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
