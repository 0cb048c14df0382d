import type { Logger } from '../logger.js';
import { EventEmitter } from 'node:events';
import { readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { subscribeUntilClosed } from '../events.js';
import type { Lesson, LessonEvents } from '../lessons/lesson.js';
import type { HostedLesson } from '../lessons/registry.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import { Archive } from './archive.js';
import { isRecordingId, MANIFEST_NAME, readManifest, type RecordingManifest } from './manifest.js';
import type { RecordingFault } from './faults.js';
import { LessonRecorder } from './recorder.js';
import { recoverRecording, type RecoveryResult } from './recovery.js';

export type { RecordingFault } from './faults.js';

export interface RecordingServiceOptions {
  recordingsDir: string;
  /** Resolved by locateFfmpeg (config recording.ffmpegPath, FFMPEG_PATH, ffmpeg-static, PATH). */
  ffmpegPath: string;
  segmentSeconds: number;
  /** Delete finished, unpinned recordings after this many days; 0 = keep forever. */
  retentionDays: number;
  /** config media.listenIp: where the recording PlainTransports listen (loopback when it is a wildcard). */
  listenIp: string;
  log: Logger;
}

type RecordingServiceEvents = {
  /** Something went wrong with a recording; the live lesson is unaffected. Payload: docs/recording.md. */
  fault: [fault: RecordingFault];
  recordingStarted: [lessonId: string];
  recordingFinished: [lessonId: string];
};

const RETENTION_INTERVAL_MS = 3600_000;

/**
 * Records lessons as they go live and keeps the archive: one LessonRecorder
 * per recorded lesson (driven by the lesson's domain events), crash recovery
 * at start, retention, and an orderly stop.
 */
export class RecordingService extends EventEmitter<RecordingServiceEvents> {
  readonly archive: Archive;
  private readonly recorders = new Map<string, LessonRecorder>();
  private retentionTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly opts: RecordingServiceOptions) {
    super();
    this.archive = new Archive({
      recordingsDir: opts.recordingsDir,
      ffmpegPath: opts.ffmpegPath,
      log: opts.log,
      isLive: (id) => this.recorders.has(id),
    });
  }

  /** Called for every new lesson: records it from the moment it goes live, if the lesson asks for it. */
  attach({ lesson, media }: HostedLesson<LessonMedia>): void {
    if (!lesson.def.record) return;
    const begin = (): void => {
      if (this.stopped || this.recorders.has(lesson.id)) return;
      // A lesson resumed (after a restart, or on a cluster's new origin) already has a recording:
      // it goes on as new runs of the same recording, after closing it if its writer died.
      if (existsSync(path.join(this.opts.recordingsDir, lesson.id, MANIFEST_NAME))) return void this.continueRecording(lesson, media);
      this.record(lesson, media);
    };
    if (lesson.state === 'live') begin();
    // Until it goes live; a lesson that ends unstarted takes the listener with it.
    else if (lesson.state === 'created') subscribeUntilClosed<LessonEvents>(lesson, { started: begin });
  }

  /** The lesson's earlier recording, closed (recovered first if its writer died), continued as new runs. */
  private async continueRecording(lesson: Lesson, media: LessonMedia): Promise<void> {
    const dir = path.join(this.opts.recordingsDir, lesson.id);
    try {
      let previous = await readManifest(dir);
      if (previous.state === 'recording') {
        const recovered = await recoverRecording(dir);
        this.opts.log.warn({ lesson: lesson.id, ...recovered }, 'recording left open by its writer closed before it goes on');
        previous = await readManifest(dir);
      }
      if (this.stopped || this.recorders.has(lesson.id) || lesson.state !== 'live') return;
      this.record(lesson, media, previous);
    } catch (err) {
      this.opts.log.error({ lesson: lesson.id, err }, "the lesson's earlier recording cannot be read; not continued");
    }
  }

  private record(lesson: Lesson, media: LessonMedia, previous?: RecordingManifest): void {
    try {
      const settings = {
        recordingsDir: this.opts.recordingsDir,
        ffmpegPath: this.opts.ffmpegPath,
        segmentSeconds: this.opts.segmentSeconds,
        tapIp: ['0.0.0.0', '::'].includes(this.opts.listenIp) ? '127.0.0.1' : this.opts.listenIp,
        log: this.opts.log,
        emitFault: (fault: RecordingFault) => this.emit('fault', fault),
      };
      const recorder = new LessonRecorder(lesson, media, settings, previous);
      this.recorders.set(lesson.id, recorder);
      // The recorder finishes itself on the lesson's 'ended' (with its reason) and then closes.
      recorder.once('closed', () => {
        this.recorders.delete(lesson.id);
        this.archive.noticeChanged(lesson.id);
        this.emit('recordingFinished', lesson.id);
      });
      recorder.start();
      this.archive.noticeChanged(lesson.id);
      this.emit('recordingStarted', lesson.id);
    } catch (err) {
      this.opts.log.error({ lesson: lesson.id, err }, 'could not start recording the lesson');
    }
  }

  isRecording(lessonId: string): boolean {
    return this.recorders.has(lessonId);
  }

  recorder(lessonId: string): LessonRecorder | undefined {
    return this.recorders.get(lessonId);
  }

  /** At start: closes the recordings a crash left open (orphaned ffmpeg stopped, playlists ENDLIST, manifest finalized). */
  async recoverUnfinished(): Promise<RecoveryResult[]> {
    const results: RecoveryResult[] = [];
    let names: string[];
    try {
      names = await readdir(this.opts.recordingsDir);
    } catch {
      return results;
    }
    for (const id of names) {
      if (!isRecordingId(id) || this.recorders.has(id)) continue;
      try {
        const result = await recoverRecording(path.join(this.opts.recordingsDir, id));
        if (!result) continue;
        results.push(result);
        this.opts.log.warn({ lesson: id, ...result }, 'closed a recording left open by a crash');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // a folder without manifest
        const fault: RecordingFault = {
          lessonId: id,
          trackId: null,
          kind: 'recovery',
          code: 'RECOVERY_FAILED',
          message: `could not close the unfinished recording: ${(err as Error).message}`,
          at: new Date().toISOString(),
          recovering: false,
        };
        this.opts.log.error({ lesson: id, err }, fault.message);
        this.emit('fault', fault);
      }
    }
    return results;
  }

  /** Applies retention now and then hourly (config recording.retentionDays; 0 = never). */
  startRetention(): void {
    if (this.opts.retentionDays <= 0 || this.retentionTimer) return;
    const run = (): void => {
      this.archive.applyRetention(this.opts.retentionDays).then(
        (deleted) =>
          deleted.length && this.opts.log.info({ deleted, retentionDays: this.opts.retentionDays }, 'retention deleted recordings'),
        (err: unknown) => this.opts.log.error({ err }, 'retention failed'),
      );
    };
    run();
    this.retentionTimer = setInterval(run, RETENTION_INTERVAL_MS);
    this.retentionTimer.unref();
  }

  /**
   * Shutdown (after the lessons were ended): every ffmpeg is stopped cleanly, its last
   * segment is published, playlists get ENDLIST, manifests are finalized;
   * MP4s still being made are cut off.
   */
  async stopAll(reason = 'server stopping'): Promise<void> {
    this.stopped = true;
    clearInterval(this.retentionTimer);
    await Promise.all([this.archive.abortExports(), ...[...this.recorders.values()].map((r) => r.finish(reason))]);
    this.recorders.clear();
  }
}
