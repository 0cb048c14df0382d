import type { Logger } from '../logger.js';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, lstat, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LessoncastError } from '../errors.js';
import { hashFile, writeFileAtomic } from './files.js';
import { renderMediaPlaylist } from './hls.js';
import { isRecordingId, isServableFile, manifestBytes, readManifest, MANIFEST_NAME, type RecordingManifest } from './manifest.js';
import type { RecordingSummary, VerifyReport } from './archiveViews.js';

export type { RecordingSummary, VerifyReport } from './archiveViews.js';

export interface RecordingSearch {
  /** Recordings overlapping [from, to]. */
  from?: Date;
  to?: Date;
  instructor?: string;
  school?: string;
  subject?: string;
  /** Case-insensitive text in title, subject, instructor, school ids and names. */
  q?: string;
  limit?: number;
  offset?: number;
}

/**
 * A page of a search. `total` counts every match, except that an index stops counting a broad
 * search (no school, instructor, subject or text) at TOTAL_COUNT_CAP: `totalCapped` then says
 * there are more than `total`.
 */
export interface RecordingPage {
  total: number;
  totalCapped?: true;
  recordings: RecordingSummary[];
}

/** Where an index stops counting the matches of a broad search (see RecordingPage). */
export const TOTAL_COUNT_CAP = 10_000;

/** Who may see which recordings: every one, or those of these lessons (a token's list). */
export type SearchScope = 'all' | readonly string[];

/**
 * The archive's index in the catalog database (catalog/archiveIndex.ts): what lets a search
 * answer from 200,000 recordings without reading every manifest. Only ever a copy of the
 * manifests: the archive fills it, corrects it (reconcile) and rebuilds it (reindex).
 */
export interface RecordingIndexPort {
  search(q: RecordingSearch, scope: SearchScope): Promise<RecordingPage>;
  put(summaries: readonly RecordingSummary[]): Promise<void>;
  remove(ids: readonly string[]): Promise<void>;
  /** Every indexed recording's state, by id. */
  states(): Promise<Map<string, RecordingSummary['state']>>;
  /** The ids of the recordings indexed as still being written (state `recording`). */
  unfinished(): Promise<string[]>;
  clear(): Promise<void>;
  /** After many changes (a reindex): let the database plan searches afresh. */
  optimize?(): Promise<void>;
}

/** What one pass of bringing the index in line with the folder did. */
export interface ReconcileReport {
  added: number;
  removed: number;
  refreshed: number;
  /** Recordings in the index afterwards. */
  total: number;
  ms: number;
}

export type AuditActor = { id: string; role: string } | 'retention';

export type ExportAudio = 'auto' | 'mixed' | 'tracks';

/** A recording's MP4, ready to serve (byte ranges) from `path`. */
export interface Mp4File {
  path: string;
  size: number;
  /** How the audio was made: copied tracks, or one mix of all voices (re-encoded AAC). */
  audio: 'mixed' | 'tracks';
  /** Made for this request (false: it was already there). */
  made: boolean;
}

interface Mp4Plan {
  /** The tracks with media, in the file's order: video (camera, then board), then audio. */
  tracks: RecordingManifest['tracks'];
  audio: 'mixed' | 'tracks';
  /** ffmpeg's mapping and codec arguments. */
  args: string[];
}

/** Which tracks go into the MP4 and how (video copied; audio copied, or mixed into one AAC track). */
function mp4Plan(manifest: RecordingManifest, audio: ExportAudio): Mp4Plan {
  const order = (t: RecordingManifest['tracks'][number]): number =>
    (t.kind === 'video' ? 0 : 10) + (t.role === 'instructor' ? 0 : 5) + (t.source === 'screen' ? 1 : 0);
  const tracks = manifest.tracks.filter((t) => t.segments.length > 0).sort((a, b) => order(a) - order(b));
  if (tracks.length === 0) throw new LessoncastError('RECORDING_NOT_FOUND', 'this recording has no media yet');
  const audios = tracks.map((t, i) => ({ t, i })).filter((x) => x.t.kind === 'audio');
  const videos = tracks.map((t, i) => ({ t, i })).filter((x) => x.t.kind === 'video');
  const mode: 'mixed' | 'tracks' =
    audio === 'mixed' || (audio !== 'tracks' && audios.length > 1) ? (audios.length > 0 ? 'mixed' : 'tracks') : 'tracks';
  const args: string[] = [];
  for (const v of videos) args.push('-map', `${v.i}:v:0`);
  if (mode === 'mixed') {
    // Each voice padded with silence from the lesson's start and across its gaps, then summed.
    const pads = audios.map((a, n) => `[${a.i}:a:0]aresample=async=1:first_pts=0[a${n}]`);
    const inputs = audios.map((_, n) => `[a${n}]`).join('');
    args.push(
      '-filter_complex',
      `${pads.join(';')};${inputs}amix=inputs=${audios.length}:duration=longest:dropout_transition=0:normalize=0[voices]`,
      '-map',
      '[voices]',
    );
    args.push('-c:v', 'copy', '-c:a', 'aac', '-b:a', '128k');
  } else {
    for (const a of audios) args.push('-map', `${a.i}:a:0`);
    args.push('-c', 'copy');
  }
  videos.forEach((v, n) => args.push(`-metadata:s:v:${n}`, `title=${v.t.id}`));
  if (mode === 'tracks') audios.forEach((a, n) => args.push(`-metadata:s:a:${n}`, `title=${a.t.id}`));
  return { tracks, audio: mode, args };
}

export interface ArchiveOptions {
  recordingsDir: string;
  ffmpegPath: string;
  log: Logger;
  /** A recording still being written (its lesson is live on this node). */
  isLive(id: string): boolean;
}

const PIN_FILE = 'pin.json';
/** Summaries kept in memory, keyed by manifest mtime. */
const SUMMARY_CACHE = 5000;
/** How soon a change to a recording this node writes reaches the index (other nodes search it). */
const FLUSH_DELAY_MS = 1000;
export const AUDIT_LOG = 'audit.log';

/**
 * The recordings folder seen as an archive: catalog and search, a
 * recording's manifest and files, integrity checks, MP4 export, deletion
 * (audited), pinning and retention. Ids and file names are checked before
 * they touch the file system.
 */
export class Archive {
  private readonly cache = new Map<string, { mtimeMs: number; summary: RecordingSummary }>();
  /** ffmpeg processes making MP4s (ended at shutdown). */
  private readonly exports = new Set<{ abort(): void; done: Promise<unknown> }>();
  /** MP4s being made, by file: a second request for the same one waits for it. */
  private readonly making = new Map<string, Promise<void>>();
  private index: RecordingIndexPort | undefined;
  /** The index has been reconciled with the folder once: searches may trust it. */
  private indexed = false;
  private indexTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<ReconcileReport> | undefined;
  /** Recordings this node writes that changed (started, finished) since the index last heard: read before the next search. */
  private readonly dirty = new Set<string>();

  constructor(private readonly opts: ArchiveOptions) {}

  get recordingsDir(): string {
    return this.opts.recordingsDir;
  }

  /**
   * Searches the archive (newest first) within `scope`. From the index once it has been
   * reconciled; from the manifests themselves without an index, before the first reconcile, or
   * when the index's database does not answer (slower, never wrong).
   */
  async list(search: RecordingSearch = {}, scope: SearchScope = 'all'): Promise<RecordingPage> {
    if (this.index && this.indexed) {
      try {
        await this.flushDirty();
        return await this.index.search(search, scope);
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'archive index unavailable: searching the manifests');
      }
    }
    return this.scan(search, scope === 'all' ? () => true : (id) => scope.includes(id));
  }

  /** The search without an index: every manifest of the folder read (cached by mtime). */
  private async scan(search: RecordingSearch, visible: (id: string) => boolean): Promise<RecordingPage> {
    const all: RecordingSummary[] = [];
    let names: string[];
    try {
      names = await readdir(this.opts.recordingsDir);
    } catch {
      names = [];
    }
    for (const id of names) {
      if (!isRecordingId(id) || !visible(id)) continue;
      // A recordings folder holds only recordings (and the audit log); `.deleting-…` are on their way out.
      const summary = await this.summary(id).catch(() => null);
      if (summary && matchesSearch(summary, search)) all.push(summary);
    }
    all.sort((a, b) => Date.parse(b.startedAt) - Date.parse(a.startedAt) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    const offset = search.offset ?? 0;
    return { total: all.length, recordings: all.slice(offset, offset + (search.limit ?? 100)) };
  }

  /** Searches use `index` from the first reconcile() on; every change the archive makes goes to it too. */
  useIndex(index: RecordingIndexPort): void {
    this.index = index;
    this.indexed = false;
  }

  /**
   * Brings the index in line with the folder, which may have changed behind the archive's back
   * (another node, a restore, a hand): recordings on disk and not indexed are added, indexed and
   * gone are removed, and those still being written (state `recording`) are read again. One at a
   * time: a pass asked for while one runs gets that one.
   */
  reconcile(): Promise<ReconcileReport> {
    const index = this.index;
    if (!index) return Promise.reject(new Error('the archive has no index'));
    this.reconciling ??= (async () => {
      const began = performance.now();
      const onDisk = new Set((await readdir(this.opts.recordingsDir).catch(() => [] as string[])).filter(isRecordingId));
      const known = await index.states();
      const gone = [...known.keys()].filter((id) => !onDisk.has(id));
      const toRead = [...onDisk].filter((id) => known.get(id) !== 'complete');
      const summaries: RecordingSummary[] = [];
      // A few manifests read at once (file reads overlap with parsing), written in batches as they come.
      let next = 0;
      const reader = async (): Promise<void> => {
        while (next < toRead.length) {
          const id = toRead[next++]!;
          const summary = await this.summary(id).catch(() => null);
          if (summary) summaries.push(summary);
          else if (known.has(id)) gone.push(id); // unreadable now: out of the index until it reads again
        }
      };
      await Promise.all(Array.from({ length: Math.min(8, toRead.length) }, reader));
      summaries.sort((a, b) => (a.id < b.id ? -1 : 1));
      await index.put(summaries);
      await index.remove(gone);
      if (summaries.length + gone.length > 1000) await index.optimize?.();
      this.indexed = true;
      const added = summaries.filter((x) => !known.has(x.id)).length;
      return {
        added,
        removed: gone.length,
        refreshed: summaries.length - added,
        total: known.size + added - gone.length,
        ms: Math.round(performance.now() - began),
      };
    })().finally(() => (this.reconciling = undefined));
    return this.reconciling;
  }

  /** Empties the index and fills it again from every manifest (`lessoncast recordings reindex`). */
  async reindex(): Promise<ReconcileReport> {
    if (!this.index) throw new Error('the archive has no index');
    await this.reconciling?.catch(() => undefined);
    await this.index.clear();
    this.indexed = false;
    return this.reconcile();
  }

  /** Reconciles every `seconds` until stopIndexing(); a failed pass is logged and the next one tries again. */
  startIndexing(seconds: number): void {
    if (!this.index || this.indexTimer || seconds <= 0) return;
    this.indexTimer = setInterval(() => {
      this.reconcile().then(
        (r) => {
          if (r.added || r.removed) this.opts.log.info(r, 'archive index reconciled with the recordings folder');
        },
        (err: Error) =>
          this.opts.log.warn({ err: err.message }, 'archive index could not be reconciled; searching the manifests meanwhile'),
      );
    }, seconds * 1000);
    this.indexTimer.unref();
  }

  stopIndexing(): void {
    clearInterval(this.indexTimer);
    clearTimeout(this.flushTimer);
    this.indexTimer = undefined;
    this.flushTimer = undefined;
  }

  /**
   * A recording this node writes has changed (it started, it finished): the next search reads
   * it first, so a lesson being recorded is found at once, not at the next reconcile.
   */
  noticeChanged(id: string): void {
    if (!this.index) return;
    this.dirty.add(id);
    // Told to the shared index within a second as well: other nodes search it (and look there for
    // recordings whose writer died), and they do not see this node's dirty list.
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushDirty().catch((err: Error) =>
        this.opts.log.warn({ err: err.message }, 'archive index not told of a change; the next reconcile will'),
      );
    }, FLUSH_DELAY_MS);
    this.flushTimer.unref();
  }

  /**
   * The recordings still being written, as far as the archive knows (state `recording`): from the
   * index once reconciled, else from the manifests. Some may be this node's own; others' writers
   * may have died (RecordingService's sweep).
   */
  async unfinished(): Promise<string[]> {
    if (this.index && this.indexed) {
      try {
        await this.flushDirty();
        return await this.index.unfinished();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'archive index unavailable: reading the manifests');
      }
    }
    const names = await readdir(this.opts.recordingsDir).catch(() => [] as string[]);
    const open: string[] = [];
    for (const id of names.filter(isRecordingId)) if ((await this.summary(id).catch(() => null))?.state === 'recording') open.push(id);
    return open;
  }

  private async flushDirty(): Promise<void> {
    if (!this.index || this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty.clear();
    const summaries: RecordingSummary[] = [];
    for (const id of ids) {
      const summary = await this.summary(id).catch(() => null);
      if (summary) summaries.push(summary);
      else if (this.opts.isLive(id)) this.dirty.add(id); // its first manifest is not written yet
    }
    await this.index.put(summaries);
  }

  /** One recording's change told to the index at once; a failure waits for the next reconcile. */
  private async reindexOne(id: string, gone = false): Promise<void> {
    if (!this.index) return;
    try {
      if (gone) await this.index.remove([id]);
      else await this.index.put([await this.summary(id)]);
    } catch (err) {
      this.opts.log.warn({ recording: id, err: (err as Error).message }, 'archive index not updated; the next reconcile will');
    }
  }

  async manifest(id: string): Promise<RecordingManifest> {
    const dir = this.dirOf(id);
    try {
      return await readManifest(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LessoncastError('RECORDING_NOT_FOUND', `no recording ${id}`);
      throw new LessoncastError('INTERNAL', `recording ${id} has an unreadable manifest`, { cause: (err as Error).message });
    }
  }

  async summary(id: string): Promise<RecordingSummary> {
    const dir = this.dirOf(id);
    const [m, pinned] = await Promise.all([
      stat(path.join(dir, MANIFEST_NAME)).catch(() => {
        throw new LessoncastError('RECORDING_NOT_FOUND', `no recording ${id}`);
      }),
      this.isPinned(id),
    ]);
    const cached = this.cache.get(id);
    if (cached && cached.mtimeMs === m.mtimeMs) return { ...cached.summary, pinned };
    const summary = summarize(await this.manifest(id), pinned);
    // Bounded: a reindex reads every manifest of a region's archive (200,000 a year), and only
    // recent ones are asked for again. Oldest entry out first (a Map keeps insertion order).
    this.cache.delete(id);
    this.cache.set(id, { mtimeMs: m.mtimeMs, summary });
    if (this.cache.size > SUMMARY_CACHE) this.cache.delete(this.cache.keys().next().value!);
    return summary;
  }

  async isPinned(id: string): Promise<boolean> {
    return stat(path.join(this.dirOf(id), PIN_FILE)).then(
      () => true,
      () => false,
    );
  }

  /** A servable file of a recording (playlist, init or media segment): absolute path and size. */
  async file(id: string, rel: string): Promise<{ path: string; size: number; mtime: Date }> {
    if (!isServableFile(rel)) throw new LessoncastError('INVALID_REQUEST', 'not a recording file name');
    const dir = this.dirOf(id);
    const full = path.resolve(dir, rel);
    if (!full.startsWith(dir + path.sep)) throw new LessoncastError('INVALID_REQUEST', 'not a recording file name');
    try {
      const st = await lstat(full);
      if (!st.isFile()) throw new Error('not a regular file');
      return { path: full, size: st.size, mtime: st.mtime };
    } catch {
      throw new LessoncastError('NOT_FOUND', `no file ${rel} in recording ${id}`);
    }
  }

  /** Re-hashes every init and media segment and compares with the manifest. */
  async verify(id: string): Promise<VerifyReport> {
    const manifest = await this.manifest(id);
    const dir = this.dirOf(id);
    const report: VerifyReport = { recordingId: id, ok: true, state: manifest.state, checkedFiles: 0, checkedBytes: 0, mismatches: [] };
    const expected = manifest.tracks.flatMap((t) => [...t.runs.flatMap((r) => (r.init ? [r.init] : [])), ...t.segments]);
    for (const file of expected) {
      report.checkedFiles++;
      const full = path.resolve(dir, file.uri);
      if (!full.startsWith(dir + path.sep)) {
        report.mismatches.push({ uri: file.uri, problem: 'missing', expected: file.sha256, actual: null });
        continue;
      }
      let actual: { sha256: string; size: number };
      try {
        actual = await hashFile(full);
      } catch {
        report.mismatches.push({ uri: file.uri, problem: 'missing', expected: file.sha256, actual: null });
        continue;
      }
      report.checkedBytes += actual.size;
      if (actual.size !== file.size) report.mismatches.push({ uri: file.uri, problem: 'size', expected: file.size, actual: actual.size });
      else if (actual.sha256 !== file.sha256)
        report.mismatches.push({ uri: file.uri, problem: 'sha256', expected: file.sha256, actual: actual.sha256 });
    }
    report.ok = report.mismatches.length === 0;
    return report;
  }

  async setPinned(id: string, pinned: boolean, by: AuditActor): Promise<void> {
    await this.manifest(id); // exists
    const file = path.join(this.dirOf(id), PIN_FILE);
    if (pinned) await writeFileAtomic(file, JSON.stringify({ pinned: true, by, at: new Date().toISOString() }) + '\n');
    else await rm(file, { force: true });
    await this.audit(pinned ? 'pin' : 'unpin', id, by);
    await this.reindexOne(id);
  }

  /** Deletes a finished recording; the deletion is appended to the audit log. */
  async delete(id: string, by: AuditActor, reason = ''): Promise<void> {
    if (this.opts.isLive(id)) throw new LessoncastError('RECORDING_BUSY', 'this lesson is still being recorded; end it first');
    const summary = await this.summary(id);
    // Being written by another node sharing the folder (or left open by a writer that died, until it is recovered).
    if (summary.state === 'recording')
      throw new LessoncastError('RECORDING_BUSY', 'this recording is still being written; end the lesson first');
    const dir = this.dirOf(id);
    // Out of the catalog at once (rename is atomic), then removed.
    const doomed = path.join(this.opts.recordingsDir, `.deleting-${id}-${Date.now()}`);
    await rename(dir, doomed);
    this.cache.delete(id);
    await this.reindexOne(id, true);
    await this.audit(by === 'retention' ? 'retention-delete' : 'delete', id, by, {
      title: summary.title,
      startedAt: summary.startedAt,
      sizeBytes: summary.sizeBytes,
      ...(reason ? { reason } : {}),
    });
    await rm(doomed, { recursive: true, force: true });
    this.opts.log.info({ recording: id, by: by === 'retention' ? 'retention' : by.id }, 'recording deleted');
  }

  /** Deletes finished, unpinned recordings that ended more than `days` days ago. 0 = keep forever. */
  async applyRetention(days: number, now = new Date()): Promise<string[]> {
    if (days <= 0) return [];
    const cutoff = now.getTime() - days * 86_400_000;
    const deleted: string[] = [];
    // Ended before the cutoff implies started before it: the index narrows the candidates.
    const { recordings } = await this.list({ to: new Date(cutoff), limit: Number.MAX_SAFE_INTEGER });
    for (const r of recordings) {
      if (r.pinned || r.state !== 'complete' || this.opts.isLive(r.id)) continue;
      if (Date.parse(r.endedAt ?? r.startedAt) >= cutoff) continue;
      try {
        await this.delete(r.id, 'retention', `older than ${days} days`);
        deleted.push(r.id);
      } catch (err) {
        this.opts.log.error({ recording: r.id, err }, 'retention could not delete a recording');
      }
    }
    return deleted;
  }

  /**
   * One MP4 of the whole lesson, as a file: progressive, its index (`moov`, with every track's
   * duration and sample table) before the media, so that any player knows the duration at once
   * and seeks by byte ranges. Video is always copied; audio is copied track by track, or — with
   * classroom voices present, or when asked — mixed into one AAC track so the file is heard as the
   * lesson happened. Made once per recording content and audio form and kept beside the recording
   * (`.download-<audio>-<key>.mp4`, where the key names the segments it was made of); asking again
   * serves it, and a recording that grew (still live) gets a new one, replacing the old.
   */
  async mp4(id: string, opts: { audio?: ExportAudio } = {}): Promise<Mp4File> {
    const manifest = await this.manifest(id);
    const dir = this.dirOf(id);
    const plan = mp4Plan(manifest, opts.audio ?? 'auto');
    const key = createHash('sha256')
      .update(JSON.stringify([plan.audio, plan.tracks.map((t) => [t.id, t.segments.map((g) => g.sha256)])]))
      .digest('hex')
      .slice(0, 16);
    const file = path.join(dir, `.download-${plan.audio}-${key}.mp4`);
    const cached = await stat(file).catch(() => null);
    if (cached?.isFile()) return { path: file, size: cached.size, audio: plan.audio, made: false };
    let making = this.making.get(file);
    if (!making) {
      making = (async () => {
        await this.writeMp4(manifest, plan, file);
        // Older forms of this recording's download (fewer segments) are no longer asked for.
        for (const name of await readdir(dir))
          if (name.startsWith(`.download-${plan.audio}-`) && name !== path.basename(file)) await rm(path.join(dir, name), { force: true });
      })().finally(() => this.making.delete(file));
      this.making.set(file, making);
    }
    await making;
    return { path: file, size: (await stat(file)).size, audio: plan.audio, made: true };
  }

  /** The same MP4 written to `out` (the CLI's export): made aside and renamed into place once complete. */
  async exportMp4(id: string, out: string, opts: { audio?: ExportAudio } = {}): Promise<'mixed' | 'tracks'> {
    const manifest = await this.manifest(id);
    const plan = mp4Plan(manifest, opts.audio ?? 'auto');
    await this.writeMp4(manifest, plan, out);
    return plan.audio;
  }

  /** ffmpeg remuxes into `<out>.part` (then a second pass moves the index before the media: `+faststart`), renamed to `out`. */
  private async writeMp4(manifest: RecordingManifest, plan: Mp4Plan, out: string): Promise<void> {
    const dir = this.dirOf(manifest.lessonId);
    const temp = await mkdtemp(path.join(tmpdir(), 'lessoncast-export-'));
    const part = `${out}.part`;
    try {
      const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-copyts'];
      for (const t of plan.tracks) {
        // A frozen VOD copy of the playlist, pointing at the files by absolute path.
        const playlist = path.join(temp, `${t.id}.m3u8`);
        await writeFile(
          playlist,
          renderMediaPlaylist(t, { segmentSeconds: manifest.segmentSeconds, ended: true, vod: true, uri: (rel) => path.join(dir, rel) }),
        );
        args.push('-protocol_whitelist', 'file', '-i', playlist);
      }
      args.push(...plan.args, '-metadata', `title=${manifest.title}`, '-f', 'mp4', '-movflags', '+faststart', part);
      const started = Date.now();
      const { code, stderr } = await this.runFfmpeg(args);
      if (code !== 0) {
        this.opts.log.error({ recording: manifest.lessonId, code, stderr: stderr.trim().slice(-1000) }, 'making the MP4 failed');
        throw new LessoncastError('INTERNAL', 'the MP4 could not be made');
      }
      await rename(part, out);
      this.opts.log.info({ recording: manifest.lessonId, audio: plan.audio, ms: Date.now() - started }, 'MP4 made');
    } finally {
      await rm(part, { force: true });
      await rm(temp, { recursive: true, force: true });
    }
  }

  private runFfmpeg(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(this.opts.ffmpegPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-4096)));
    const abort = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const done = new Promise<{ code: number | null; stderr: string }>((resolve) => {
      child.once('error', (err) => resolve({ code: -1, stderr: `${stderr}\n${err.message}` }));
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    const handle = { abort, done };
    this.exports.add(handle);
    return done.finally(() => this.exports.delete(handle));
  }

  /** Shutdown: ends every MP4 still being made. */
  async abortExports(): Promise<void> {
    const running = [...this.exports];
    for (const e of running) e.abort();
    await Promise.all(running.map((e) => e.done));
  }

  private dirOf(id: string): string {
    if (!isRecordingId(id)) throw new LessoncastError('INVALID_REQUEST', 'a recording id is a lesson id (UUID)');
    return path.join(this.opts.recordingsDir, id);
  }

  private async audit(action: string, id: string, by: AuditActor, extra: Record<string, unknown> = {}): Promise<void> {
    const line = JSON.stringify({ at: new Date().toISOString(), action, recordingId: id, by, ...extra });
    await appendFile(path.join(this.opts.recordingsDir, AUDIT_LOG), line + '\n', { mode: 0o640 });
  }
}

export function summarize(m: RecordingManifest, pinned: boolean): RecordingSummary {
  const end = m.endedAt ? Date.parse(m.endedAt) : Date.now();
  return {
    id: m.lessonId,
    title: m.title,
    subject: m.subject,
    instructorId: m.instructorId,
    state: m.state,
    recovered: m.recovered,
    pinned,
    startedAt: m.startedAt,
    endedAt: m.endedAt,
    durationSeconds: Math.max(0, Math.round((end - Date.parse(m.startedAt)) / 1000)),
    sizeBytes: manifestBytes(m),
    schools: m.attendance.filter((a) => a.role === 'classroom').map((a) => ({ id: a.participantId, name: a.name })),
    invitedSchools: m.invitedSchools,
    tracks: m.tracks.map((t) => ({
      id: t.id,
      kind: t.kind,
      codec: t.codec,
      transcoded: t.runs.some((r) => r.transcoded),
      segments: t.segments.length,
      durationSeconds: Math.round(t.segments.reduce((s, x) => s + x.duration, 0) * 10) / 10,
    })),
    faults: m.faults,
  };
}

/** What a text search (`q`) looks in: title, subject, instructor, schools' ids and names, lower-cased. The index stores the same. */
export function searchText(s: RecordingSummary): string {
  return [s.title, s.subject, s.instructorId, ...s.schools.flatMap((x) => [x.id, x.name])].join('\n').toLowerCase();
}

/** What a search means, one recording at a time: the scan applies it, and the index must agree with it (test/archive-index.test.ts). */
export function matchesSearch(s: RecordingSummary, q: RecordingSearch, now = Date.now()): boolean {
  const start = Date.parse(s.startedAt);
  const end = s.endedAt ? Date.parse(s.endedAt) : now;
  if (q.from && end < q.from.getTime()) return false;
  if (q.to && start > q.to.getTime()) return false;
  if (q.instructor && s.instructorId !== q.instructor) return false;
  if (q.school && !s.schools.some((x) => x.id === q.school) && !s.invitedSchools.includes(q.school)) return false;
  if (q.subject && s.subject.toLowerCase() !== q.subject.toLowerCase()) return false;
  if (q.q) {
    const needle = q.q.toLowerCase();
    if (!searchText(s).includes(needle)) return false;
  }
  return true;
}

/** Reads the audit log (most recent last). */
export async function readAuditLog(recordingsDir: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path.join(recordingsDir, AUDIT_LOG), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
