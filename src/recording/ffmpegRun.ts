import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import type { RtpStreamDescription } from './sdp.js';
import { rtcpByePacket } from './rtp.js';
import { ffmpegInputSdp } from './sdp.js';
import type { RecordedTrack, RunFiles } from './track.js';

export interface FfmpegExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** We asked it to stop: not a fault. */
  requested: boolean;
  /** Why we asked (null when it ended on its own). */
  reason: string | null;
  stderrTail: string;
}

export interface FfmpegRunOptions {
  ffmpegPath: string;
  stream: RtpStreamDescription;
  track: RecordedTrack;
  runIndex: number;
  /** Where the run's first sample sits on the lesson timeline (seconds). */
  offsetSeconds: number;
  segmentSeconds: number;
  title: string;
}

/** How long ffmpeg gets to finish its last segment once asked to stop, before SIGKILL. */
const STOP_GRACE_MS = 5000;
/** Publishing follows ffmpeg's playlist renames (inotify); polling is the fallback. */
const POLL_MS = 1000;

/** ffmpeg's arguments for one run: RTP (from an SDP) → HLS fMP4, copying H264/Opus, re-encoding VP8 to H264. */
export function ffmpegRecordArgs(opts: {
  sdpFile: string;
  files: RunFiles;
  stream: RtpStreamDescription;
  offsetSeconds: number;
  segmentSeconds: number;
}): string[] {
  const { files, stream, segmentSeconds } = opts;
  const codec =
    stream.codec === 'VP8'
      ? [
          // VP8 cannot go into fMP4 with ffmpeg 5.1: re-encode, with a keyframe at every segment boundary.
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-tune',
          'zerolatency',
          '-profile:v',
          'main',
          '-level:v',
          '4.0',
          '-pix_fmt',
          'yuv420p',
          '-crf',
          '23',
          '-maxrate',
          '2500k',
          '-bufsize',
          '5000k',
          '-threads',
          '1',
          '-force_key_frames',
          `expr:gte(t,n_forced*${segmentSeconds})`,
          '-sc_threshold',
          '0',
        ]
      : ['-c', 'copy'];
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'warning',
    '-protocol_whitelist',
    'file,udp,rtp',
    '-i',
    opts.sdpFile,
    '-map',
    '0:0',
    ...codec,
    // Media timestamps on the lesson timeline: tracks that start at different moments stay aligned.
    '-output_ts_offset',
    opts.offsetSeconds.toFixed(3),
    '-f',
    'hls',
    '-hls_time',
    String(segmentSeconds),
    '-hls_list_size',
    '0',
    '-hls_playlist_type',
    'event',
    '-hls_segment_type',
    'fmp4',
    '-hls_flags',
    stream.kind === 'video' ? 'temp_file+independent_segments' : 'temp_file',
    '-hls_fmp4_init_filename',
    files.initName,
    '-hls_segment_filename',
    files.segmentPattern,
    files.ffmpegPlaylist,
  ];
}

/**
 * One ffmpeg process recording one RTP stream into a track (a "run"). Owns the
 * process, the socket that feeds it and the watch that publishes its finished
 * segments; `stop()` ends it so that the last segment is completed.
 */
export class FfmpegRun {
  readonly exited: Promise<FfmpegExit>;
  private stopReason: string | null = null;
  private stderr = '';
  private poll?: NodeJS.Timeout;
  private byeTimer?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private lastProgressAt = Date.now();
  private socketOpen = true;

  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    /** Our socket that feeds ffmpeg's RTP port. */
    private readonly socket: dgram.Socket,
    opts: FfmpegRunOptions,
  ) {
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4096);
    });
    const publish = (): void =>
      void opts.track.publishFrom(opts.runIndex).then((added) => {
        if (added) this.lastProgressAt = Date.now();
      });
    this.poll = setInterval(publish, POLL_MS);
    const playlistName = path.basename(opts.track.runFiles(opts.runIndex).ffmpegPlaylist);
    try {
      // ffmpeg renames its playlist into place after each segment (temp_file): publish at once.
      this.watcher = watch(opts.track.dir, (_event, name) => {
        if (name === playlistName) publish();
      });
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify watches left: the poll still publishes, a little later.
    }
    this.exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (err) => {
        this.stderr += `\nspawn failed: ${err.message}`;
        resolve({ code: -1, signal: null });
      });
    }).then(async ({ code, signal }) => {
      clearInterval(this.poll);
      clearInterval(this.byeTimer);
      this.watcher?.close();
      this.socketOpen = false;
      socket.close();
      // Whatever ffmpeg finished before it ended is published; its temp files go.
      await opts.track.publishFrom(opts.runIndex);
      await opts.track.cleanRun(opts.runIndex);
      return { code, signal, requested: this.stopReason !== null, reason: this.stopReason, stderrTail: this.stderr.trim() };
    });
  }

  /** Writes the SDP and spawns ffmpeg on a free port pair (RTP, RTCP). Resolves once spawned (not yet listening). */
  static async start(opts: FfmpegRunOptions): Promise<FfmpegRun> {
    const files = opts.track.runFiles(opts.runIndex);
    const port = await freeUdpPortPair();
    await writeFile(files.sdp, ffmpegInputSdp(opts.stream, port, opts.title));
    const socket = await bind(0);
    // A loopback send error is not actionable; it must never crash the server.
    socket.on('error', () => undefined);
    const args = ffmpegRecordArgs({
      sdpFile: files.sdp,
      files,
      stream: opts.stream,
      offsetSeconds: opts.offsetSeconds,
      segmentSeconds: opts.segmentSeconds,
    });
    const child = spawn(opts.ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    return new FfmpegRun(child, port, socket, opts);
  }

  /** Hands one RTP packet to ffmpeg. */
  send(packet: Buffer): void {
    if (this.stopReason === null) this.sendRaw(packet);
  }

  /** Never throws: a packet for an ffmpeg that is gone is simply dropped. */
  private sendRaw(packet: Buffer): void {
    if (!this.socketOpen) return;
    try {
      this.socket.send(packet, this.port, '127.0.0.1');
    } catch {
      /* closed meanwhile */
    }
  }

  get pid(): number | null {
    return this.child.pid ?? null;
  }

  /** How long since this run last produced a segment (or started). */
  get msSinceProgress(): number {
    return Date.now() - this.lastProgressAt;
  }

  /** The last lines ffmpeg wrote on stderr. */
  stderrTail(): string {
    return this.stderr.trim();
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves true once ffmpeg has bound its RTP port (Linux /proc), false on timeout or exit. */
  async listening(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && this.running) {
      const bound = await udpPortBound(this.port);
      if (bound === true) return true;
      if (bound === null) {
        // No /proc: give ffmpeg the time it usually needs.
        await sleep(400);
        return this.running;
      }
      await sleep(30);
    }
    return false;
  }

  /**
   * Ends the run cleanly: an RTCP BYE makes ffmpeg's RTP input end (EOF), so
   * it completes the last segment and closes its playlist even when no media
   * flows any more (a SIGINT alone waits for the next packet). SIGINT after
   * that, SIGKILL as the last resort.
   */
  async stop(reason: string): Promise<FfmpegExit> {
    if (this.stopReason === null) {
      this.stopReason = reason;
      const bye = rtcpByePacket();
      const sayBye = (): void => this.sendRaw(bye);
      sayBye();
      // Repeated: ffmpeg may be holding packets of a gap in its reorder queue, which hides a BYE.
      this.byeTimer = setInterval(sayBye, 250);
    }
    if (this.running) {
      const interrupt = setTimeout(() => this.child.kill('SIGINT'), STOP_GRACE_MS / 2);
      const killer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(interrupt);
      clearTimeout(killer);
    }
    return this.exited;
  }
}

/** A port p with p and p+1 free on loopback (ffmpeg takes RTCP on p+1). */
export async function freeUdpPortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const a = await bind(0);
    const port = (a.address() as { port: number }).port;
    const b = await bind(port + 1).catch(() => null);
    a.close();
    b?.close();
    if (b && port < 65535) return port;
  }
  throw new Error('no free UDP port pair on 127.0.0.1');
}

function bind(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', (err) => {
      s.close();
      reject(err);
    });
    s.bind(port, '127.0.0.1', () => resolve(s));
  });
}

/** true/false from /proc/net/udp; null where /proc is not available. */
async function udpPortBound(port: number): Promise<boolean | null> {
  let table: string;
  try {
    table = await readFile('/proc/net/udp', 'utf8');
  } catch {
    return null;
  }
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(hex));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
