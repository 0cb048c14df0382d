import type { Logger } from '../logger.js';
import { mkdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { Lesson, LessonEvents } from '../lessons/lesson.js';
import type { ProducerInfo } from '../lessons/mediaPort.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import { TrackFeed, type FeedFault } from './feed.js';
import { AtomicFile, writeFileAtomic } from './files.js';
import { renderMasterPlaylist } from './hls.js';
import { MANIFEST_NAME, MASTER_PLAYLIST, type AttendanceEntry, type LessonLogEvent, type ManifestTrack, type RecordingManifest } from './manifest.js';
import { rfc6381 } from './sdp.js';
import { RecordedTrack, type TrackContext } from './track.js';

/** What the control room is told when recording goes wrong (RecordingService 'fault' event; docs/recording.md). */
export interface RecordingFault {
  lessonId: string;
  /** The track concerned, or null for the whole recording. */
  trackId: string | null;
  kind: 'storage' | 'ffmpeg' | 'media' | 'recovery';
  /** ENOSPC, EACCES, ENOTDIR…, FFMPEG_EXITED, FFMPEG_START, TAP_FAILED, RECOVERY_FAILED. */
  code: string;
  message: string;
  at: string;
  /** True while the recorder keeps retrying on its own; the live lesson is never affected. */
  recovering: boolean;
  detail?: Record<string, unknown>;
}

export interface RecorderSettings {
  recordingsDir: string;
  ffmpegPath: string;
  segmentSeconds: number;
  /** Address for the recording PlainTransports and relay sockets. */
  tapIp: string;
  log: Logger;
  emitFault(fault: RecordingFault): void;
}

type RecorderState = 'preparing' | 'storageFailed' | 'recording' | 'finishing' | 'finished';

/** Which track a producer is recorded into: the instructor's camera, board and voice; classrooms' voices while they hold the floor. */
function trackBase(role: string | undefined, source: string): { base: string; role: 'instructor' | 'classroom' } | null {
  if (role === 'instructor') {
    const base = ({ camera: 'camera', screen: 'screen', microphone: 'voice' } as Record<string, string>)[source];
    return base ? { base, role } : null;
  }
  if (role === 'classroom' && source === 'microphone') return { base: 'classrooms', role };
  return null;
}

const STORAGE_RETRY_MS = 10_000;
const MANIFEST_DELAY_MS = 1000;
const FAULT_REPEAT_MS = 30_000;
const MAX_EVENTS = 50_000;
/** Below this much free space the control room is warned, before segments start failing. */
const LOW_SPACE_BYTES = 100 * 1024 * 1024;
const SPACE_CHECK_MS = 15_000;

/**
 * Records one lesson from the moment it goes live until it ends: one track
 * per recorded source, the attendance and an event log, all described by
 * manifest.json. Listens to the lesson's domain events; never throws into
 * the lesson — every fault becomes a 'fault' and a log line.
 */
export class LessonRecorder {
  readonly dir: string;
  readonly origin: Date;
  private state: RecorderState = 'preparing';
  private readonly tracks = new Map<string, RecordedTrack>();
  private readonly trackCreation = new Map<string, Promise<RecordedTrack>>();
  /** Producer → the feed recording it; a producer's entry goes as soon as it closes, so its track is free again. */
  private readonly feeds = new Map<string, { trackId: string; feed?: TrackFeed; opening: Promise<void> }>();
  /** Every feed not yet fully closed (a closing one may still publish its last segment). */
  private readonly openFeeds = new Set<TrackFeed>();
  private readonly attendance = new Map<string, AttendanceEntry>();
  private readonly connected = new Map<string, boolean>();
  private readonly events: LessonLogEvent[] = [];
  private faults = 0;
  private readonly lastFaultAt = new Map<string, number>();
  private endedAt: Date | null = null;
  private endReason: string | null = null;
  private readonly manifestFile: AtomicFile;
  private readonly masterFile: AtomicFile;
  private manifestTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private spaceTimer?: NodeJS.Timeout;
  private cancelRetry?: () => void;
  private ready: Promise<boolean> = Promise.resolve(false);
  private finishing?: Promise<void>;
  private readonly unsubscribe: Array<() => void> = [];
  private readonly trackContext: TrackContext;

  constructor(
    private readonly lesson: Lesson,
    /** This node's media of the lesson: the recorder taps its producers where they live. */
    private readonly media: LessonMedia,
    private readonly settings: RecorderSettings,
  ) {
    this.dir = path.join(settings.recordingsDir, lesson.id);
    this.origin = lesson.startedAt ?? new Date();
    this.manifestFile = new AtomicFile(path.join(this.dir, MANIFEST_NAME), () => JSON.stringify(this.manifest(), null, 1), (err) => this.storageFault(err, 'writing the manifest'), { fsync: true });
    this.masterFile = new AtomicFile(path.join(this.dir, MASTER_PLAYLIST), () => renderMasterPlaylist([...this.tracks.values()].map((t) => t.data)), (err) => this.storageFault(err, 'writing the master playlist'));
    this.trackContext = {
      recordingDir: this.dir,
      origin: this.origin,
      segmentSeconds: settings.segmentSeconds,
      onStorageError: (err, what) => this.storageFault(err, what),
      onChange: (urgent) => this.markDirty(urgent),
    };
  }

  get lessonId(): string {
    return this.lesson.id;
  }

  /** Subscribes to the lesson and prepares the folder; recording proper begins once storage is usable. */
  start(): void {
    this.subscribe();
    for (const p of this.lesson.participants.values()) {
      if (p.hidden) continue;
      this.attendance.set(p.id, { participantId: p.id, role: p.role, name: p.name, intervals: [{ joinedAt: p.joinedAt.toISOString(), leftAt: null }] });
      this.connected.set(p.id, p.connected);
    }
    this.log('recordingStarted', undefined, { segmentSeconds: this.settings.segmentSeconds });
    this.ready = this.prepare();
  }

  status(): { lessonId: string; state: RecorderState; dir: string; tracks: Array<{ id: string; segments: number; runs: number }>; feeds: Array<ReturnType<TrackFeed['status']>> } {
    return {
      lessonId: this.lesson.id,
      state: this.state,
      dir: this.dir,
      tracks: [...this.tracks.values()].map((t) => ({ id: t.id, segments: t.data.segments.length, runs: t.data.runs.length })),
      feeds: [...this.feeds.values()].flatMap((f) => (f.feed ? [f.feed.status()] : [])),
    };
  }

  /** The running ffmpeg of a track (supervision, tests). */
  ffmpegPid(trackId: string): number | null {
    for (const f of this.feeds.values()) if (f.trackId === trackId && f.feed) return f.feed.ffmpegPid;
    return null;
  }

  /** Stops every feed (ffmpeg ends its input on an RTCP BYE, last segment published), closes the playlists (ENDLIST) and finalizes the manifest. */
  finish(reason: string): Promise<void> {
    this.finishing ??= (async () => {
      // Synchronously, before the lesson closes its media (which would end the feeds as "media closed").
      const closing = [...this.openFeeds].map((feed) => feed.close(reason));
      clearTimeout(this.retryTimer);
      clearInterval(this.spaceTimer);
      this.cancelRetry?.();
      const usable = await this.ready;
      this.state = 'finishing';
      for (const off of this.unsubscribe.splice(0)) off();
      this.endedAt = this.lesson.endedAt ?? new Date();
      this.endReason = reason;
      await Promise.all([...this.feeds.values()].map((f) => f.opening));
      await Promise.all([...closing, ...[...this.openFeeds].map((feed) => feed.close(reason))]);
      this.feeds.clear();
      if (!usable) {
        this.state = 'finished';
        return;
      }
      const end = this.endedAt.toISOString();
      for (const a of this.attendance.values()) for (const i of a.intervals) i.leftAt ??= end;
      for (const track of this.tracks.values()) {
        for (const run of track.data.runs) track.endRun(run.index, reason, this.endedAt);
        await track.close();
      }
      this.log('recordingStopped', undefined, { reason });
      this.state = 'finished';
      clearTimeout(this.manifestTimer);
      await this.masterFile.write();
      await this.manifestFile.write();
      for (const track of this.tracks.values()) await track.removePrivateFiles();
      this.settings.log.info({ lesson: this.lesson.id, tracks: this.status().tracks }, 'recording finished');
    })().catch((err: unknown) => {
      this.settings.log.error({ lesson: this.lesson.id, err }, 'finishing the recording failed');
    });
    return this.finishing;
  }

  // -- storage -------------------------------------------------------------

  private async prepare(): Promise<boolean> {
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFileAtomic(path.join(this.dir, MANIFEST_NAME), JSON.stringify(this.manifest(), null, 1), { fsync: true });
    } catch (err) {
      if (this.finishing) return false;
      this.storageFault(err as NodeJS.ErrnoException, `creating ${this.dir}`, true);
      this.state = 'storageFailed';
      // Keep trying while the lesson is live: an operator may free space or fix permissions.
      return new Promise<boolean>((resolve) => {
        this.cancelRetry = () => resolve(false);
        this.retryTimer = setTimeout(() => resolve(this.finishing ? false : this.prepare()), STORAGE_RETRY_MS);
        this.retryTimer.unref();
      });
    }
    // Ending while the folder was being prepared: finish() closes what exists.
    if (this.finishing) return true;
    if (this.state === 'storageFailed') this.settings.log.info({ lesson: this.lesson.id }, 'recording storage usable again');
    this.state = 'recording';
    this.settings.log.info({ lesson: this.lesson.id, dir: this.dir }, 'recording started');
    this.checkSpace();
    this.spaceTimer = setInterval(() => this.checkSpace(), SPACE_CHECK_MS);
    this.spaceTimer.unref();
    for (const info of this.media.listProducers()) this.onNewProducer(info);
    return true;
  }

  private markDirty(urgent = false): void {
    if (this.state === 'finished') return;
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

  // -- lesson events -------------------------------------------------------

  private subscribe(): void {
    const on = <E extends keyof LessonEvents>(event: E, handler: (...args: LessonEvents[E]) => void): void => {
      const safe = (...args: LessonEvents[E]): void => {
        try {
          handler(...args);
        } catch (err) {
          this.settings.log.error({ lesson: this.lesson.id, event, err }, 'recorder failed to handle a lesson event');
        }
      };
      (this.lesson.on as (e: E, l: (...a: LessonEvents[E]) => void) => unknown)(event, safe);
      this.unsubscribe.push(() => (this.lesson.off as (e: E, l: (...a: LessonEvents[E]) => void) => unknown)(event, safe));
    };
    on('newProducer', (info) => this.onNewProducer(info));
    on('producerClosed', (info) => this.onProducerClosed(info));
    on('participantJoined', (p, hidden) => {
      if (hidden) return;
      const entry = this.attendance.get(p.id) ?? { participantId: p.id, role: p.role, name: p.name, intervals: [] };
      entry.intervals.push({ joinedAt: new Date().toISOString(), leftAt: null });
      this.attendance.set(p.id, entry);
      this.connected.set(p.id, true);
      this.log('participantJoined', p.id, { role: p.role, name: p.name });
    });
    on('participantUpdated', (p, hidden) => {
      if (hidden || this.connected.get(p.id) === p.connected) return;
      this.connected.set(p.id, p.connected);
      this.log(p.connected ? 'participantReconnected' : 'participantDisconnected', p.id);
    });
    on('participantLeft', (id, hidden) => {
      if (hidden) return;
      const open = this.attendance.get(id)?.intervals.find((i) => i.leftAt === null);
      if (open) open.leftAt = new Date().toISOString();
      this.connected.delete(id);
      this.log('participantLeft', id);
    });
    on('handRaised', (id) => this.log('handRaised', id));
    on('handLowered', (id) => this.log('handLowered', id));
    on('floorGranted', (id) => this.log('floorGranted', id));
    on('floorRevoked', (id) => this.log('floorRevoked', id));
    on('reconnectRequested', (ids, reason) => this.log('mediaLost', undefined, { participants: ids, reason }));
    on('ended', (reason) => {
      this.log('lessonEnded', undefined, { reason });
      void this.finish(reason);
    });
  }

  private log(type: string, participantId?: string, detail?: Record<string, unknown>, trackId?: string): void {
    if (this.events.length >= MAX_EVENTS) return;
    const at = new Date();
    this.events.push({
      at: at.toISOString(),
      t: Math.round(at.getTime() - this.origin.getTime()) / 1000,
      type,
      ...(participantId ? { participantId } : {}),
      ...(trackId ? { trackId } : {}),
      ...(detail ? { detail } : {}),
    });
    this.markDirty();
  }

  // -- producers → tracks --------------------------------------------------

  private onNewProducer(info: ProducerInfo): void {
    if (this.state !== 'recording' || this.feeds.has(info.producerId)) return;
    const role = this.lesson.participants.get(info.peerId)?.role;
    const slot = trackBase(role, info.source);
    if (!slot) return;
    const busy = new Set([...this.feeds.values()].map((f) => f.trackId));
    let trackId = slot.base;
    for (let n = 2; busy.has(trackId); n++) trackId = `${slot.base}-${n}`;
    const entry: { trackId: string; feed?: TrackFeed; opening: Promise<void> } = { trackId, opening: Promise.resolve() };
    this.feeds.set(info.producerId, entry);
    entry.opening = (async () => {
      const track = await this.ensureTrack(trackId, info, slot.role);
      const feed = await TrackFeed.open({
        router: this.media.producerRouter,
        producerId: info.producerId,
        participantId: info.peerId,
        kind: info.kind,
        tapIp: this.settings.tapIp,
        ffmpegPath: this.settings.ffmpegPath,
        segmentSeconds: this.settings.segmentSeconds,
        origin: this.origin,
        track,
        title: `${this.lesson.def.title} (${trackId})`,
        onFault: (f) => this.feedFault(trackId, f),
        onRun: (event, runIndex, detail) => this.log(event, info.peerId, { run: runIndex, ...detail }, trackId),
      });
      if (track.data.runs.length === 0 && feed.stream.codec === 'H264') track.data.codecs = rfc6381('H264', feed.stream.parameters);
      entry.feed = feed;
      this.openFeeds.add(feed);
      this.log('trackFed', info.peerId, { producerId: info.producerId, codec: feed.stream.codec }, trackId);
      if (this.state !== 'recording') await feed.close('recording finished');
      void feed.done.then(() => {
        this.openFeeds.delete(feed);
        if (this.feeds.get(info.producerId)?.feed === feed) this.feeds.delete(info.producerId);
      });
      void this.masterFile.write();
    })().catch((err: unknown) => {
      if (this.feeds.get(info.producerId) === entry) this.feeds.delete(info.producerId);
      // The lesson ended, or the producer went away, while the tap was being set up: nothing to report.
      if (this.state !== 'recording' || !this.media.producer(info.producerId)) return;
      const e = err as NodeJS.ErrnoException;
      if (e.code && /^E[A-Z]+$/.test(e.code)) return this.storageFault(e, `preparing track ${trackId}`);
      this.fault({ kind: 'media', code: 'TAP_FAILED', trackId, message: `could not tap producer ${info.producerId} for ${trackId}: ${e.message}`, recovering: false });
    });
  }

  private onProducerClosed(info: ProducerInfo): void {
    const entry = this.feeds.get(info.producerId);
    if (!entry) return;
    // Free the track at once, so a re-created producer continues it.
    this.feeds.delete(info.producerId);
    void entry.opening.then(() => entry.feed?.close('producer closed'));
  }

  private ensureTrack(id: string, info: ProducerInfo, role: 'instructor' | 'classroom'): Promise<RecordedTrack> {
    let pending = this.trackCreation.get(id);
    if (!pending) {
      pending = (async () => {
        await mkdir(path.join(this.dir, id), { recursive: true });
        const data: ManifestTrack = {
          id,
          kind: info.kind,
          role,
          source: info.source as ManifestTrack['source'],
          playlist: `${id}.m3u8`,
          codec: info.kind === 'video' ? 'H264' : 'Opus',
          codecs: info.kind === 'video' ? 'avc1.4d4028' : 'opus',
          container: 'fmp4',
          runs: [],
          segments: [],
        };
        const track = new RecordedTrack(this.trackContext, data);
        this.tracks.set(id, track);
        await track.writePlaylist();
        this.markDirty();
        return track;
      })();
      this.trackCreation.set(id, pending);
      pending.catch(() => this.trackCreation.delete(id));
    }
    return pending;
  }

  // -- faults --------------------------------------------------------------

  private checkSpace(): void {
    statfs(this.dir).then(
      (fs) => {
        const free = fs.bavail * fs.bsize;
        if (free < LOW_SPACE_BYTES && this.state === 'recording') {
          this.fault({ kind: 'storage', code: 'LOW_DISK_SPACE', trackId: null, message: `only ${Math.round(free / 1024 / 1024)} MB left for recordings in ${this.settings.recordingsDir}`, recovering: true, detail: { freeBytes: free } });
        }
      },
      () => undefined, // unreadable: the writes themselves will report it
    );
  }

  private feedFault(trackId: string, f: FeedFault): void {
    this.fault({ ...f, trackId, recovering: true });
  }

  private storageFault(err: NodeJS.ErrnoException, what: string, recovering = true): void {
    this.fault({ kind: 'storage', code: err.code ?? 'EIO', trackId: null, message: `recording storage failed while ${what}: ${err.message}`, recovering });
  }

  private fault(f: Omit<RecordingFault, 'lessonId' | 'at'>): void {
    // The same fault repeating (a full disk) is reported once per interval, not once per segment.
    const key = `${f.kind}:${f.code}:${f.trackId ?? ''}`;
    const now = Date.now();
    if (now - (this.lastFaultAt.get(key) ?? 0) < FAULT_REPEAT_MS) return;
    this.lastFaultAt.set(key, now);
    const fault: RecordingFault = { lessonId: this.lesson.id, at: new Date(now).toISOString(), ...f };
    this.faults++;
    this.log('fault', undefined, { kind: f.kind, code: f.code, message: f.message }, f.trackId ?? undefined);
    this.settings.log.error({ lesson: fault.lessonId, track: fault.trackId, kind: fault.kind, code: fault.code, detail: fault.detail }, `recording fault: ${fault.message}`);
    try {
      this.settings.emitFault(fault);
    } catch (err) {
      this.settings.log.error({ err }, 'a recording fault listener threw');
    }
  }

  private manifest(): RecordingManifest {
    const def = this.lesson.def;
    return {
      format: 'lessoncast-recording',
      version: 1,
      lessonId: def.id,
      title: def.title,
      subject: def.subject,
      instructorId: def.instructorId,
      invitedSchools: def.schools,
      state: this.state === 'finished' ? 'complete' : 'recording',
      recovered: false,
      startedAt: this.origin.toISOString(),
      endedAt: this.state === 'finished' ? (this.endedAt?.toISOString() ?? null) : null,
      endReason: this.state === 'finished' ? this.endReason : null,
      segmentSeconds: this.settings.segmentSeconds,
      playlist: MASTER_PLAYLIST,
      tracks: [...this.tracks.values()].map((t) => t.data),
      attendance: [...this.attendance.values()],
      events: this.events,
      faults: this.faults,
      updatedAt: new Date().toISOString(),
    };
  }
}
