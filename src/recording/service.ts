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
  /** Named in what the manifest says of a recovery (config nodeId). */
  nodeId: string;
  /** Other nodes write the same folder (a cluster); absent on a single node. */
  shared?: SharedRecordings;
}

/**
 * What a node needs to keep a recordings folder it shares with other nodes (docs/cluster.md,
 * "The archive on every node"): closing a recording whose writer died exactly once, and the
 * hourly retention pass on one node only.
 */
export interface SharedRecordings {
  /**
   * Runs `close` only while no other node can be writing that lesson's recording (in a cluster:
   * while this node holds the lesson's origin lease). False, without running it, when another
   * node holds it.
   */
  exclusively(lessonId: string, close: () => Promise<void>): Promise<boolean>;
  /** True on exactly one node per `seconds` for `task`. */
  takeTurn(task: string, seconds: number): Promise<boolean>;
  /** How often to look for recordings whose writer died. */
  sweepSeconds: number;
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
  private sweepTimer?: NodeJS.Timeout;
  /** Recordings being closed (recovered) on this node, by id: one closing at a time each. */
  private readonly closing = new Map<string, Promise<void>>();
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
    try {
      // Hosting the lesson, this node holds its lease: nobody else closes or writes the recording now.
      await this.closeIfOpen(lesson.id, 'recording left open by its writer closed before it goes on');
      const previous = await readManifest(path.join(this.opts.recordingsDir, lesson.id));
      if (this.stopped || this.recorders.has(lesson.id) || lesson.state !== 'live') return;
      this.record(lesson, media, previous);
    } catch (err) {
      this.opts.log.error({ lesson: lesson.id, err }, "the lesson's earlier recording cannot be read; not continued");
    }
  }

  /**
   * Closes the lesson's recording if its writer left it open (recoverRecording): one closing per
   * recording at a time on this node, and never while this node's own recorder writes it.
   */
  private closeIfOpen(id: string, why: string): Promise<RecoveryResult | null> {
    const close = async (): Promise<RecoveryResult | null> => {
      if (this.recorders.has(id)) return null;
      const result = await recoverRecording(path.join(this.opts.recordingsDir, id), this.opts.nodeId);
      if (result) {
        this.opts.log.warn({ lesson: id, ...result }, why);
        this.archive.noticeChanged(id);
      }
      return result;
    };
    const turn = (this.closing.get(id) ?? Promise.resolve()).then(close, close);
    const settled = turn.then(
      () => undefined,
      () => undefined,
    );
    this.closing.set(id, settled);
    void settled.then(() => this.closing.get(id) === settled && this.closing.delete(id));
    return turn;
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

  /** Resolves once nothing of the lesson's recording is being written or closed here (its recorder closed). */
  async idle(lessonId: string): Promise<void> {
    const recorder = this.recorders.get(lessonId);
    await Promise.all([recorder && new Promise<void>((resolve) => recorder.once('closed', () => resolve())), this.closing.get(lessonId)]);
  }

  isRecording(lessonId: string): boolean {
    return this.recorders.has(lessonId);
  }

  recorder(lessonId: string): LessonRecorder | undefined {
    return this.recorders.get(lessonId);
  }

  /**
   * At start, and then every `shared.sweepSeconds` when the folder is shared: closes the
   * recordings whose writer died (orphaned ffmpeg stopped, playlists ENDLIST, manifest finalized).
   * In a cluster only a node that holds the lesson's origin lease closes one, so each is closed
   * exactly once, and never while a live node writes it.
   */
  async recoverUnfinished(): Promise<RecoveryResult[]> {
    const results: RecoveryResult[] = [];
    const ids = this.opts.shared
      ? await this.archive.unfinished()
      : (await readdir(this.opts.recordingsDir).catch(() => [] as string[])).filter(isRecordingId);
    for (const id of ids) {
      if (this.recorders.has(id) || this.stopped) continue;
      let result: RecoveryResult | null = null;
      const close = async (): Promise<void> => {
        result = await this.closeIfOpen(id, 'closed a recording its writer left open');
      };
      try {
        if (this.opts.shared) await this.opts.shared.exclusively(id, close);
        else await close();
        if (result) results.push(result);
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

  /** Looks for recordings whose writer died every `shared.sweepSeconds` (a shared folder only). */
  startSweeping(): void {
    const shared = this.opts.shared;
    if (!shared || this.sweepTimer) return;
    let sweeping = false;
    this.sweepTimer = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      this.recoverUnfinished()
        .catch((err: Error) => this.opts.log.warn({ err: err.message }, 'could not look for recordings left open'))
        .finally(() => (sweeping = false));
    }, shared.sweepSeconds * 1000);
    this.sweepTimer.unref();
  }

  /** Applies retention now and then hourly (config recording.retentionDays; 0 = never). */
  startRetention(): void {
    if (this.opts.retentionDays <= 0 || this.retentionTimer) return;
    const run = async (): Promise<void> => {
      // A shared folder: one node's pass per period is enough (two would race to delete the same recordings).
      if (this.opts.shared && !(await this.opts.shared.takeTurn('retention', RETENTION_INTERVAL_MS / 1000 - 60))) return;
      const deleted = await this.archive.applyRetention(this.opts.retentionDays);
      if (deleted.length) this.opts.log.info({ deleted, retentionDays: this.opts.retentionDays }, 'retention deleted recordings');
    };
    const pass = (): void => void run().catch((err: unknown) => this.opts.log.error({ err }, 'retention failed'));
    pass();
    this.retentionTimer = setInterval(pass, RETENTION_INTERVAL_MS);
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
    clearInterval(this.sweepTimer);
    await Promise.all([this.archive.abortExports(), ...[...this.recorders.values()].map((r) => r.finish(reason))]);
    this.recorders.clear();
  }
}
