import { Type, type Static } from 'typebox';

/**
 * `recordings/<lessonId>/manifest.json`: everything the archive knows about
 * one recorded lesson. One schema gives the TypeScript types and the check
 * applied when the archive reads a manifest back.
 */
const IsoTime = Type.String({ minLength: 20, maxLength: 40, description: 'ISO 8601 time' });
const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });

export const ManifestFile = Type.Object({ uri: Type.String(), size: Type.Integer({ minimum: 0 }), sha256: Sha256 });
export type ManifestFile = Static<typeof ManifestFile>;

export const ManifestSegment = Type.Object({
  /** Path relative to the recording folder, e.g. `camera/r001-00003.m4s`. */
  uri: Type.String(),
  run: Type.Integer({ minimum: 1 }),
  /** Start on the lesson timeline (seconds since `startedAt`). */
  startSeconds: Type.Number(),
  duration: Type.Number({ minimum: 0 }),
  size: Type.Integer({ minimum: 0 }),
  sha256: Sha256,
  programDateTime: IsoTime,
});
export type ManifestSegment = Static<typeof ManifestSegment>;

export const ManifestRun = Type.Object({
  /** One ffmpeg process: a new run follows a restart, a replaced producer, or a pause in the media. */
  index: Type.Integer({ minimum: 1 }),
  producerId: Type.String(),
  participantId: Type.String(),
  /** The codec the publisher sent. */
  sourceCodec: Type.Union([Type.Literal('H264'), Type.Literal('VP8'), Type.Literal('Opus')]),
  /** True when the publisher's codec could not be copied (VP8) and was re-encoded to H264. */
  transcoded: Type.Boolean(),
  startedAt: IsoTime,
  /** Where the run's first sample sits on the lesson timeline. */
  offsetSeconds: Type.Number(),
  endedAt: Type.Union([IsoTime, Type.Null()]),
  endReason: Type.Union([Type.String(), Type.Null()]),
  init: Type.Union([ManifestFile, Type.Null()]),
  /** ffmpeg's pid while running (lets the next start stop an orphan after a crash). */
  pid: Type.Union([Type.Integer(), Type.Null()]),
});
export type ManifestRun = Static<typeof ManifestRun>;

export const ManifestTrack = Type.Object({
  /** `camera`, `screen`, `voice` (instructor), `classrooms` (classrooms holding the floor); `-2`… for concurrent ones. */
  id: Type.String({ pattern: '^[a-z][a-z0-9-]{0,39}$' }),
  kind: Type.Union([Type.Literal('audio'), Type.Literal('video')]),
  role: Type.Union([Type.Literal('instructor'), Type.Literal('classroom')]),
  source: Type.Union([Type.Literal('camera'), Type.Literal('screen'), Type.Literal('microphone')]),
  playlist: Type.String(),
  /** Codec stored in the segments. */
  codec: Type.Union([Type.Literal('H264'), Type.Literal('Opus')]),
  /** RFC 6381 string (HLS CODECS). */
  codecs: Type.String(),
  container: Type.Literal('fmp4'),
  runs: Type.Array(ManifestRun),
  segments: Type.Array(ManifestSegment),
});
export type ManifestTrack = Static<typeof ManifestTrack>;

/** `attendance` and `events` are the lesson's journal (src/lessons/journal.ts) as it stood when written. */
export const AttendanceEntry = Type.Object({
  participantId: Type.String(),
  role: Type.String(),
  name: Type.String(),
  intervals: Type.Array(Type.Object({ joinedAt: IsoTime, leftAt: Type.Union([IsoTime, Type.Null()]) })),
});
export type AttendanceEntry = Static<typeof AttendanceEntry>;

export const LessonLogEvent = Type.Object({
  at: IsoTime,
  /** Seconds on the lesson timeline (negative: before the lesson went live). */
  t: Type.Number(),
  type: Type.String(),
  participantId: Type.Optional(Type.String()),
  trackId: Type.Optional(Type.String()),
  detail: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type LessonLogEvent = Static<typeof LessonLogEvent>;

export const RecordingManifest = Type.Object({
  format: Type.Literal('lessoncast-recording'),
  version: Type.Literal(1),
  lessonId: Type.String(),
  title: Type.String(),
  subject: Type.String(),
  instructorId: Type.String(),
  invitedSchools: Type.Array(Type.String()),
  /** `recording` while live (or left by a crash until the next start closes it). */
  state: Type.Union([Type.Literal('recording'), Type.Literal('complete')]),
  /** Closed by the next start after a crash rather than by the lesson's end. */
  recovered: Type.Boolean(),
  /** The lesson went live: origin of the lesson timeline. */
  startedAt: IsoTime,
  endedAt: Type.Union([IsoTime, Type.Null()]),
  endReason: Type.Union([Type.String(), Type.Null()]),
  segmentSeconds: Type.Number(),
  /** Master playlist: main video with the instructor's voice, classroom voices as another audio rendition. */
  playlist: Type.String(),
  tracks: Type.Array(ManifestTrack),
  attendance: Type.Array(AttendanceEntry),
  events: Type.Array(LessonLogEvent),
  faults: Type.Integer({ minimum: 0 }),
  updatedAt: IsoTime,
});
export type RecordingManifest = Static<typeof RecordingManifest>;
