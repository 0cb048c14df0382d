import { EventEmitter } from 'node:events';
import path from 'node:path';
import { LessonJournal } from '../lessons/journal.js';
import type { Lesson, LessonEvents } from '../lessons/lesson.js';
import { subscribe } from '../events.js';
import type { ProducerInfo } from '../lessons/mediaPort.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import type { Logger } from '../logger.js';
import { FaultReporter, type RecordingFault } from './faults.js';
import { TrackFeed } from './feed.js';
import { renderMasterPlaylist } from './hls.js';
import { MASTER_PLAYLIST, type ManifestTrack, type RecordingManifest } from './manifest.js';
import { rfc6381 } from './sdp.js';
import { RecordingStorage } from './storage.js';
import { RecordedTrack, type TrackContext } from './track.js';

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

/**
 * Records one lesson from the moment it goes live until it ends: each
 * recorded producer is tapped into a track (TrackFeed → ffmpeg → HLS), and
 * manifest.json describes the tracks together with the lesson's journal
 * (attendance, event log). Storage (folder, free space, manifest writes) is
 * RecordingStorage's; faults go through FaultReporter. Never throws into the
 * lesson: every fault becomes a 'fault' and a log line.
 */
export class LessonRecorder extends EventEmitter<{ closed: [] }> {
  readonly dir: string;
  readonly origin: Date;
  private state: RecorderState = 'preparing';
  private readonly tracks = new Map<string, RecordedTrack>();
  private readonly trackCreation = new Map<string, Promise<RecordedTrack>>();
  /** Producer → the feed recording it; a producer's entry goes as soon as it closes, so its track is free again. */
  private readonly feeds = new Map<string, { trackId: string; feed?: TrackFeed; opening: Promise<void> }>();
  /** Every feed not yet fully closed (a closing one may still publish its last segment). */
  private readonly openFeeds = new Set<TrackFeed>();
  private readonly journal: LessonJournal;
  private readonly faults: FaultReporter;
  private readonly storage: RecordingStorage;
  private endedAt: Date | null = null;
  private endReason: string | null = null;
  private ready: Promise<boolean> = Promise.resolve(false);
  private finishing?: Promise<void>;
  private stopListening?: () => void;
  private readonly trackContext: TrackContext;
  /**
   * Faults not yet overcome, by track ('' = the whole recording), each with the last run the
   * track had when it happened: the lesson's recording state is `fault` while any is open. A
   * track's fault is overcome when a later run publishes a segment; a whole-recording fault when
   * storage becomes usable or any segment is published.
   */
  private readonly openFaults = new Map<string, { fault: RecordingFault; afterRun: number }>();

  constructor(
    private readonly lesson: Lesson,
    /** This node's media of the lesson: the recorder taps its producers where they live. */
    private readonly media: LessonMedia,
    private readonly settings: RecorderSettings,
    /**
     * The lesson's recording so far, closed (finished, or recovered after a crash): it goes on as
     * new runs of the same tracks, on the same timeline, with its journal kept (after a restart,
     * or on a cluster's new origin).
     */
    private readonly previous?: RecordingManifest,
  ) {
    super();
    this.dir = path.join(settings.recordingsDir, lesson.id);
    this.origin = previous ? new Date(previous.startedAt) : (lesson.startedAt ?? new Date());
    this.journal = new LessonJournal(lesson, {
      origin: this.origin,
      onChange: () => this.manifestChanged(),
      onError: (event, err) => this.listenerFailed(event, err),
      ...(previous ? { previous: { attendance: previous.attendance, events: previous.events } } : {}),
    });
    this.faults = new FaultReporter({
      lessonId: lesson.id,
      log: settings.log,
      emit: settings.emitFault,
      onReported: (f) => this.journal.note('fault', undefined, { kind: f.kind, code: f.code, message: f.message }, f.trackId ?? undefined),
      onFault: (f) => this.faultOpened(f),
    });
    this.storage = new RecordingStorage({
      dir: this.dir,
      recordingsDir: settings.recordingsDir,
      lessonId: lesson.id,
      log: settings.log,
      faults: this.faults,
      renderManifest: () => JSON.stringify(this.manifest(), null, 1),
      renderMaster: () => renderMasterPlaylist([...this.tracks.values()].map((t) => t.data)),
    });
    this.trackContext = {
      recordingDir: this.dir,
      origin: this.origin,
      segmentSeconds: settings.segmentSeconds,
      onStorageError: (err, what) => this.faults.reportStorage(err, what),
      onChange: (urgent) => this.manifestChanged(urgent),
      onPublished: (trackId, runIndex) => this.segmentsPublished(trackId, runIndex),
    };
    // Earlier tracks go on: a new producer of the same kind continues its track with a new run.
    for (const data of previous?.tracks ?? []) {
      const track = new RecordedTrack(this.trackContext, structuredClone(data));
      this.tracks.set(data.id, track);
      this.trackCreation.set(data.id, Promise.resolve(track));
    }
  }

  get lessonId(): string {
    return this.lesson.id;
  }

  /** Follows the lesson and prepares the folder; recording proper begins once storage is usable. */
  start(): void {
    // The journal listens first, so 'lessonEnded' is logged before the recorder finishes.
    this.journal.open();
    this.stopListening = subscribe<LessonEvents>(
      this.lesson,
      {
        newProducer: (info) => this.onNewProducer(info),
        producerClosed: (info) => this.onProducerClosed(info),
        ended: (reason) => void this.finish(reason),
        // This node is no longer the lesson's origin: its part of the recording is finished here if
        // it still holds the lease; otherwise the new origin owns the manifest and it writes no more.
        handedOver: (reason, graceful) => void (graceful ? this.finish(reason) : this.abandon(reason)),
      },
      (event, err) => this.listenerFailed(event, err),
    );
    this.journal.note('recordingStarted', undefined, { segmentSeconds: this.settings.segmentSeconds });
    this.ready = this.storage.prepare().then((usable) => {
      if (usable && !this.finishing) this.begin();
      return usable;
    });
  }

  status(): {
    lessonId: string;
    state: RecorderState;
    dir: string;
    tracks: Array<{ id: string; segments: number; runs: number }>;
    feeds: Array<ReturnType<TrackFeed['status']>>;
  } {
    return {
      lessonId: this.lesson.id,
      state: this.state === 'preparing' && this.storage.failing ? 'storageFailed' : this.state,
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
      this.lesson.setRecording({ state: 'stopped', at: new Date().toISOString() });
      this.storage.close();
      const usable = await this.ready;
      this.state = 'finishing';
      this.stopListening?.();
      this.journal.close();
      this.endedAt = this.lesson.endedAt ?? new Date();
      this.endReason = reason;
      await Promise.all(closing);
      await this.closeFeeds(reason);
      if (!usable) {
        this.state = 'finished';
        return;
      }
      this.journal.closeAttendance(this.endedAt);
      for (const track of this.tracks.values()) {
        for (const run of track.data.runs) track.endRun(run.index, reason, this.endedAt);
        await track.close();
      }
      this.journal.note('recordingStopped', undefined, { reason });
      this.state = 'finished';
      await this.storage.finalize();
      for (const track of this.tracks.values()) await track.removePrivateFiles();
      this.settings.log.info({ lesson: this.lesson.id, tracks: this.status().tracks }, 'recording finished');
    })()
      .catch((err: unknown) => {
        this.settings.log.error({ lesson: this.lesson.id, err }, 'finishing the recording failed');
      })
      // Finished or failed, the recorder is done: whoever follows it lets go.
      .finally(() => this.emit('closed'));
    return this.finishing;
  }

  /**
   * Stops recording without writing the manifest or the master playlist again: another node, the
   * lesson's new origin, continues this recording and owns them now. What ffmpeg finishes may
   * still be published into its track's playlist; the new origin's recovery lists it too.
   */
  private abandon(reason: string): void {
    if (this.finishing) return;
    this.state = 'finished';
    this.finishing = (async () => {
      this.stopListening?.();
      this.journal.close();
      this.storage.close();
      await this.closeFeeds(reason);
      this.settings.log.warn({ lesson: this.lesson.id, reason }, 'recording left to the new origin');
    })()
      .catch((err: unknown) => this.settings.log.error({ lesson: this.lesson.id, err }, 'stopping the recording failed'))
      .finally(() => this.emit('closed'));
  }

  /** Closes every feed, including those still being set up (their ffmpeg publishes its last segment). */
  private async closeFeeds(reason: string): Promise<void> {
    await Promise.all([...this.feeds.values()].map((f) => f.opening));
    await Promise.all([...this.openFeeds].map((feed) => feed.close(reason)));
    this.feeds.clear();
  }

  /** Storage is usable: record what the lesson already publishes, and whatever comes. */
  private begin(): void {
    this.state = 'recording';
    this.openFaults.delete('');
    this.tellState();
    if (this.previous) {
      this.journal.note('recordingResumed', undefined, { after: this.previous.endReason, endedAt: this.previous.endedAt });
      // Their playlists lose ENDLIST: the tracks are being recorded again.
      for (const track of this.tracks.values()) void track.writePlaylist();
      void this.storage.writeMaster();
    }
    this.settings.log.info({ lesson: this.lesson.id, dir: this.dir }, 'recording started');
    for (const info of this.media.listProducers()) this.onNewProducer(info);
  }

  private faultOpened(fault: RecordingFault): void {
    // A warning (the disk is getting full): reported, but the recording still works.
    if (fault.code === 'LOW_DISK_SPACE') return;
    const key = fault.trackId ?? '';
    this.openFaults.set(key, { fault, afterRun: this.tracks.get(key)?.data.runs.at(-1)?.index ?? 0 });
    this.tellState();
  }

  private segmentsPublished(trackId: string, runIndex: number): void {
    const open = this.openFaults.get(trackId);
    let overcome = this.openFaults.delete('');
    if (open && runIndex > open.afterRun) overcome = this.openFaults.delete(trackId) || overcome;
    if (overcome) this.tellState();
  }

  /** The lesson (its participants' badge, the control room) is told the recording's real state. */
  private tellState(): void {
    if (this.finishing) return; // the end is 'stopped', said by finish()
    const open = [...this.openFaults.values()].map((o) => o.fault);
    const latest = open.reduce<RecordingFault | undefined>((a, f) => (!a || f.at >= a.at ? f : a), undefined);
    if (latest)
      this.lesson.setRecording({ state: 'fault', at: latest.at, message: latest.message, recovering: open.every((f) => f.recovering) });
    else if (this.state === 'recording') this.lesson.setRecording({ state: 'recording', at: new Date().toISOString() });
  }

  private listenerFailed(event: string, err: unknown): void {
    this.settings.log.error({ lesson: this.lesson.id, event, err }, 'recorder failed to handle a lesson event');
  }

  private manifestChanged(urgent = false): void {
    if (this.state !== 'finished') this.storage.manifestChanged(urgent);
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
        onFault: (f) => this.faults.report({ ...f, trackId, recovering: true }),
        onRun: (event, runIndex, detail) => this.journal.note(event, info.peerId, { run: runIndex, ...detail }, trackId),
      });
      if (track.data.runs.length === 0 && feed.stream.codec === 'H264') track.data.codecs = rfc6381('H264', feed.stream.parameters);
      entry.feed = feed;
      this.openFeeds.add(feed);
      this.journal.note('trackFed', info.peerId, { producerId: info.producerId, codec: feed.stream.codec }, trackId);
      if (this.state !== 'recording') await feed.close('recording finished');
      void feed.done.then(() => {
        this.openFeeds.delete(feed);
        if (this.feeds.get(info.producerId)?.feed === feed) this.feeds.delete(info.producerId);
      });
      void this.storage.writeMaster();
    })().catch((err: unknown) => {
      if (this.feeds.get(info.producerId) === entry) this.feeds.delete(info.producerId);
      // The lesson ended, or the producer went away, while the tap was being set up: nothing to report.
      if (this.state !== 'recording' || !this.media.producer(info.producerId)) return;
      const e = err as NodeJS.ErrnoException;
      if (e.code && /^E[A-Z]+$/.test(e.code)) return this.faults.reportStorage(e, `preparing track ${trackId}`);
      this.faults.report({
        kind: 'media',
        code: 'TAP_FAILED',
        trackId,
        message: `could not tap producer ${info.producerId} for ${trackId}: ${e.message}`,
        recovering: false,
      });
    });
  }

  private onProducerClosed(info: ProducerInfo): void {
    const entry = this.feeds.get(info.producerId);
    if (!entry) return;
    // Free the track at once, so a re-created producer continues it.
    this.feeds.delete(info.producerId);
    // Nothing left to retry on that track: its fault is over (a new producer starts it afresh).
    if (this.openFaults.delete(entry.trackId)) this.tellState();
    void entry.opening.then(() => entry.feed?.close('producer closed'));
  }

  private ensureTrack(id: string, info: ProducerInfo, role: 'instructor' | 'classroom'): Promise<RecordedTrack> {
    let pending = this.trackCreation.get(id);
    if (!pending) {
      pending = (async () => {
        await this.storage.trackFolder(id);
        const data: ManifestTrack = {
          id,
          kind: info.kind,
          role,
          source: info.source,
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
        this.manifestChanged();
        return track;
      })();
      this.trackCreation.set(id, pending);
      pending.catch(() => this.trackCreation.delete(id));
    }
    return pending;
  }

  private manifest(): RecordingManifest {
    const def = this.lesson.def;
    const finished = this.state === 'finished';
    return {
      format: 'lessoncast-recording',
      version: 1,
      lessonId: def.id,
      title: def.title,
      subject: def.subject,
      instructorId: def.instructorId,
      invitedSchools: def.schools,
      state: finished ? 'complete' : 'recording',
      recovered: this.previous?.recovered ?? false,
      startedAt: this.origin.toISOString(),
      endedAt: finished ? (this.endedAt?.toISOString() ?? null) : null,
      endReason: finished ? this.endReason : null,
      segmentSeconds: this.settings.segmentSeconds,
      playlist: MASTER_PLAYLIST,
      tracks: [...this.tracks.values()].map((t) => t.data),
      attendance: this.journal.attendance(),
      events: [...this.journal.events()],
      faults: (this.previous?.faults ?? 0) + this.faults.count,
      updatedAt: new Date().toISOString(),
    };
  }
}
