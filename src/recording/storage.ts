import { mkdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../logger.js';
import type { FaultReporter } from './faults.js';
import { AtomicFile, writeFileAtomic } from './files.js';
import { MANIFEST_NAME, MASTER_PLAYLIST } from './manifest.js';

export interface RecordingStorageOptions {
  /** The recording's folder, `<recordingsDir>/<lessonId>`. */
  dir: string;
  recordingsDir: string;
  lessonId: string;
  log: Logger;
  faults: FaultReporter;
  /** The manifest as it should be written now. */
  renderManifest(): string;
  /** The master playlist as it should be written now. */
  renderMaster(): string;
}

const STORAGE_RETRY_MS = 10_000;
const MANIFEST_DELAY_MS = 1000;
/** Below this much free space the control room is warned, before segments start failing. */
const LOW_SPACE_BYTES = 100 * 1024 * 1024;
const SPACE_CHECK_MS = 15_000;

/**
 * Where one recording is written: its folder (created, and retried while
 * unusable), the free space under it (watched), and the manifest and master
 * playlist (rewritten as the recording changes, the manifest at most once a
 * second unless urgent). Storage failures become faults, never exceptions.
 */
export class RecordingStorage {
  /** True after a failed attempt to prepare the folder, until one succeeds. */
  failing = false;
  private readonly manifestFile: AtomicFile;
  private readonly masterFile: AtomicFile;
  private manifestTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private spaceTimer?: NodeJS.Timeout;
  private cancelRetry?: () => void;
  private closed = false;

  constructor(private readonly opts: RecordingStorageOptions) {
    const { dir, faults } = opts;
    this.manifestFile = new AtomicFile(
      path.join(dir, MANIFEST_NAME),
      opts.renderManifest,
      (err) => faults.reportStorage(err, 'writing the manifest'),
      { fsync: true },
    );
    this.masterFile = new AtomicFile(path.join(dir, MASTER_PLAYLIST), opts.renderMaster, (err) =>
      faults.reportStorage(err, 'writing the master playlist'),
    );
  }

  /**
   * Creates the folder and writes the first manifest. While that fails it
   * retries every 10 s (an operator may free space or fix permissions), until
   * it works (true) or close() gives up (false). Once usable, free space is watched.
   */
  async prepare(): Promise<boolean> {
    try {
      await mkdir(this.opts.dir, { recursive: true });
      await writeFileAtomic(path.join(this.opts.dir, MANIFEST_NAME), this.opts.renderManifest(), { fsync: true });
    } catch (err) {
      if (this.closed) return false;
      this.opts.faults.reportStorage(err as NodeJS.ErrnoException, `creating ${this.opts.dir}`, true);
      this.failing = true;
      return new Promise<boolean>((resolve) => {
        this.cancelRetry = () => resolve(false);
        this.retryTimer = setTimeout(() => resolve(this.closed ? false : this.prepare()), STORAGE_RETRY_MS);
        this.retryTimer.unref();
      });
    }
    // Closed while the folder was being prepared: the owner finishes what exists.
    if (this.closed) return true;
    if (this.failing) this.opts.log.info({ lesson: this.opts.lessonId }, 'recording storage usable again');
    this.failing = false;
    this.checkSpace();
    this.spaceTimer = setInterval(() => this.checkSpace(), SPACE_CHECK_MS);
    this.spaceTimer.unref();
    return true;
  }

  /** The folder of one track, created if missing. */
  async trackFolder(trackId: string): Promise<string> {
    const dir = path.join(this.opts.dir, trackId);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  /** The manifest's content changed: written within a second, or at once when `urgent`. */
  manifestChanged(urgent = false): void {
    if (urgent) {
      clearTimeout(this.manifestTimer);
      this.manifestTimer = undefined;
      void this.manifestFile.write();
      return;
    }
    if (this.manifestTimer) return;
    this.manifestTimer = setTimeout(() => {
      this.manifestTimer = undefined;
      void this.manifestFile.write();
    }, MANIFEST_DELAY_MS);
    this.manifestTimer.unref();
  }

  writeMaster(): Promise<void> {
    return this.masterFile.write();
  }

  /** The last writes, in this order: master playlist, then manifest (a pending delayed write is dropped). */
  async finalize(): Promise<void> {
    clearTimeout(this.manifestTimer);
    await this.masterFile.write();
    await this.manifestFile.write();
  }

  /** Stops retrying and watching (idempotent); writes still go through until finalize(). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.spaceTimer);
    this.cancelRetry?.();
  }

  private checkSpace(): void {
    statfs(this.opts.dir).then(
      (fs) => {
        const free = fs.bavail * fs.bsize;
        if (free < LOW_SPACE_BYTES && !this.closed) {
          this.opts.faults.report({
            kind: 'storage',
            code: 'LOW_DISK_SPACE',
            trackId: null,
            message: `only ${Math.round(free / 1024 / 1024)} MB left for recordings in ${this.opts.recordingsDir}`,
            recovering: true,
            detail: { freeBytes: free },
          });
        }
      },
      () => undefined, // unreadable: the writes themselves will report it
    );
  }
}
