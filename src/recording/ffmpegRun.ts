import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { RtpStreamDescription } from './sdp.js';
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
/** Media queued for an ffmpeg that does not read it (stuck) is dropped past this; the stall check restarts it. */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Publishing follows ffmpeg's playlist renames (inotify); polling is the fallback. */
const POLL_MS = 1000;

/** ffmpeg's arguments for one run: Matroska on stdin (frames with their RTP time) → HLS fMP4, copying H264/Opus, re-encoding VP8 to H264. */
export function ffmpegRecordArgs(opts: {
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
    '-f',
    'matroska',
    '-i',
    'pipe:0',
    '-map',
    '0:0',
    ...codec,
    // Media timestamps on the lesson timeline: tracks that start at different moments stay aligned.
    '-output_ts_offset',
    opts.offsetSeconds.toFixed(6),
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
 * One ffmpeg process recording one stream into a track (a "run"). Owns the
 * process, the pipe that feeds it (Matroska on stdin) and the watch that
 * publishes its finished segments; `stop()` ends its input so that the last
 * segment is completed.
 */
export class FfmpegRun {
  readonly exited: Promise<FfmpegExit>;
  private stopReason: string | null = null;
  private stderr = '';
  private poll?: NodeJS.Timeout;
  private watcher?: FSWatcher;
  private lastProgressAt = Date.now();
  private inputOpen = true;

  private constructor(
    readonly child: ChildProcess,
    opts: FfmpegRunOptions,
  ) {
    // ffmpeg gone or its pipe broken: what is still written is simply dropped.
    child.stdin?.on('error', () => (this.inputOpen = false));
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
      this.watcher?.close();
      this.inputOpen = false;
      // Whatever ffmpeg finished before it ended is published; its temp files go.
      await opts.track.publishFrom(opts.runIndex);
      await opts.track.cleanRun(opts.runIndex);
      return { code, signal, requested: this.stopReason !== null, reason: this.stopReason, stderrTail: this.stderr.trim() };
    });
  }

  /** Spawns ffmpeg reading Matroska from its stdin; what is written before it reads waits in the pipe. */
  static start(opts: FfmpegRunOptions): FfmpegRun {
    const files = opts.track.runFiles(opts.runIndex);
    const args = ffmpegRecordArgs({
      files,
      stream: opts.stream,
      offsetSeconds: opts.offsetSeconds,
      segmentSeconds: opts.segmentSeconds,
    });
    const child = spawn(opts.ffmpegPath, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    return new FfmpegRun(child, opts);
  }

  /** Hands ffmpeg a piece of its input stream; never throws. */
  write(chunk: Buffer): void {
    const stdin = this.child.stdin;
    if (this.stopReason !== null || !this.inputOpen || !stdin || stdin.writableLength > MAX_QUEUED_BYTES) return;
    try {
      stdin.write(chunk);
    } catch {
      this.inputOpen = false;
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

  /**
   * Ends the run cleanly: the end of its input makes ffmpeg complete the last
   * segment and close its playlist. SIGINT if it lingers, SIGKILL as the last resort.
   */
  async stop(reason: string): Promise<FfmpegExit> {
    if (this.stopReason === null) {
      this.stopReason = reason;
      this.inputOpen = false;
      this.child.stdin?.end();
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
