import { readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { AtomicFile, hashFile } from './files.js';
import { parseFfmpegPlaylist, renderMediaPlaylist } from './hls.js';
import type { ManifestRun, ManifestTrack } from './manifest.js';

export interface TrackContext {
  recordingDir: string;
  /** Origin of the lesson timeline (the lesson went live). */
  origin: Date;
  segmentSeconds: number;
  /** A write or read failed (disk full, unwritable): reported, never thrown into the lesson. */
  onStorageError(err: NodeJS.ErrnoException, what: string): void;
  /** The track's manifest entry changed; `urgent` (a run began or got its process) asks for an immediate manifest write. */
  onChange(urgent?: boolean): void;
  /** Segments of run `runIndex` were published (hashed, listed): the track is being recorded. */
  onPublished?(trackId: string, runIndex: number): void;
}

/** Names of one run's files inside the track folder. */
export interface RunFiles {
  /** ffmpeg's own playlist: only segments it lists are complete. Hidden: never served. */
  ffmpegPlaylist: string;
  initName: string;
  segmentPattern: string;
}

const runTag = (index: number): string => `r${String(index).padStart(3, '0')}`;

/**
 * One recorded track (camera, board, instructor voice, classroom voices): its
 * public media playlist and manifest entry. Runs of ffmpeg append to it; a
 * segment is published (hashed, listed) only once ffmpeg has listed it as
 * written, and nothing published is ever changed or removed.
 */
export class RecordedTrack {
  readonly dir: string;
  private readonly playlistFile: AtomicFile;
  private ended = false;
  /** Publishing is serialized: the poll timer and a run's exit may ask at once. */
  private publishing: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly ctx: TrackContext,
    readonly data: ManifestTrack,
  ) {
    this.dir = path.join(ctx.recordingDir, data.id);
    this.playlistFile = new AtomicFile(
      path.join(ctx.recordingDir, data.playlist),
      () => renderMediaPlaylist(this.data, { segmentSeconds: this.ctx.segmentSeconds, ended: this.ended }),
      (err) => ctx.onStorageError(err, `writing ${data.playlist}`),
    );
  }

  get id(): string {
    return this.data.id;
  }

  runFiles(index: number): RunFiles {
    const tag = runTag(index);
    return {
      ffmpegPlaylist: path.join(this.dir, `.${tag}.m3u8`),
      initName: `${tag}-init.mp4`,
      segmentPattern: path.join(this.dir, `${tag}-%05d.m4s`),
    };
  }

  /** Opens a new run (discontinuity) on the track. */
  beginRun(run: Omit<ManifestRun, 'index' | 'init' | 'endedAt' | 'endReason' | 'pid'>): ManifestRun {
    const index = (this.data.runs.at(-1)?.index ?? 0) + 1;
    const entry: ManifestRun = { ...run, index, init: null, endedAt: null, endReason: null, pid: null };
    this.data.runs.push(entry);
    this.ctx.onChange(true);
    return entry;
  }

  /** Records the run's ffmpeg pid, so that the next start can stop it if this server dies. */
  setRunPid(index: number, pid: number | null): void {
    const run = this.run(index);
    if (!run) return;
    run.pid = pid;
    this.ctx.onChange(true);
  }

  run(index: number): ManifestRun | undefined {
    return this.data.runs.find((r) => r.index === index);
  }

  endRun(index: number, reason: string, at = new Date()): void {
    const run = this.run(index);
    if (!run || run.endedAt) return;
    run.endedAt = at.toISOString();
    run.endReason = reason;
    run.pid = null;
    this.ctx.onChange();
  }

  /** Publishes, in order, the segments of a run that ffmpeg has finished since the last call. Returns how many were added. */
  publishFrom(index: number): Promise<number> {
    const next = this.publishing.then(() => this.publishRun(index));
    this.publishing = next.catch(() => undefined);
    return next;
  }

  private async publishRun(index: number): Promise<number> {
    const run = this.run(index);
    if (!run) return 0;
    const files = this.runFiles(index);
    let text: string;
    try {
      text = await readFile(files.ffmpegPlaylist, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.ctx.onStorageError(err as NodeJS.ErrnoException, `reading ${files.ffmpegPlaylist}`);
      return 0;
    }
    const written = parseFfmpegPlaylist(text).segments;
    const ofRun = this.data.segments.filter((s) => s.run === index);
    let start = ofRun.length ? ofRun.at(-1)!.startSeconds + ofRun.at(-1)!.duration : run.offsetSeconds;
    let added = 0;
    try {
      if (!run.init && written.length > ofRun.length) {
        const init = await hashFile(path.join(this.dir, files.initName));
        run.init = { uri: `${this.data.id}/${files.initName}`, ...init };
      }
      for (const seg of written.slice(ofRun.length)) {
        const { sha256, size } = await hashFile(path.join(this.dir, seg.name));
        this.data.segments.push({
          uri: `${this.data.id}/${seg.name}`,
          run: index,
          startSeconds: round6(start),
          duration: round6(seg.duration),
          size,
          sha256,
          programDateTime: new Date(this.ctx.origin.getTime() + start * 1000).toISOString(),
        });
        start += seg.duration;
        added++;
      }
    } catch (err) {
      this.ctx.onStorageError(err as NodeJS.ErrnoException, `hashing a segment of ${this.data.id}`);
    }
    if (added) {
      this.ctx.onChange();
      await this.playlistFile.write();
      this.ctx.onPublished?.(this.data.id, index);
    }
    return added;
  }

  /** Removes what a run left unfinished (ffmpeg's temp files); its listed segments stay. */
  async cleanRun(index: number): Promise<void> {
    const tag = runTag(index);
    try {
      for (const name of await readdir(this.dir)) {
        if (name.startsWith(`${tag}-`) && name.endsWith('.tmp')) await rm(path.join(this.dir, name), { force: true });
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        this.ctx.onStorageError(err as NodeJS.ErrnoException, `cleaning ${this.data.id}`);
    }
  }

  /** After the recording is closed: ffmpeg's private playlists are no longer needed. */
  async removePrivateFiles(): Promise<void> {
    for (const run of this.data.runs) await rm(this.runFiles(run.index).ffmpegPlaylist, { force: true }).catch(() => undefined);
  }

  writePlaylist(): Promise<void> {
    return this.playlistFile.write();
  }

  /** Closes the public playlist (ENDLIST). */
  async close(): Promise<void> {
    await this.publishing;
    this.ended = true;
    await this.playlistFile.write();
  }
}

const round6 = (n: number): number => Math.round(n * 1e6) / 1e6;
