import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { renderMasterPlaylist } from '../../src/recording/hls.js';
import type { ManifestTrack, RecordingManifest } from '../../src/recording/manifest.js';
import { RecordedTrack } from '../../src/recording/track.js';

const run = promisify(execFile);

export interface FixtureOptions {
  id: string;
  title?: string;
  subject?: string;
  instructorId?: string;
  schools?: Array<{ id: string; name: string }>;
  startedAt?: Date;
  /** Seconds of media (0 = a manifest without media). */
  seconds?: number;
  state?: RecordingManifest['state'];
  /**
   * `frameNumber`: every video frame shows its number N (from 0) in binary, 16 columns of 20 px
   * (least significant bit on the left, white = 1); it is shown at
   * 0.5 + N / 25 s on the lesson timeline. Default: ffmpeg's test pattern.
   */
  picture?: 'testsrc' | 'frameNumber';
}

/** Frames per second of the fixture's video. */
export const FIXTURE_FPS = 25;
/** Where the fixture's media starts on the lesson timeline (seconds). */
export const FIXTURE_OFFSET = 0.5;

/**
 * A recording made without a live lesson: ffmpeg encodes a test pattern and a
 * tone straight into the track folders the way a run does, and the segments
 * are published with the real RecordedTrack (hashes, playlists) into a manifest.
 */
export async function makeRecording(recordingsDir: string, opts: FixtureOptions): Promise<RecordingManifest> {
  const dir = path.join(recordingsDir, opts.id);
  const startedAt = opts.startedAt ?? new Date();
  const seconds = opts.seconds ?? 0;
  await mkdir(dir, { recursive: true });
  const tracks: ManifestTrack[] = [];
  if (seconds > 0) {
    const camera = track('camera', 'video', 'camera', 'H264', 'avc1.42c01e');
    const voice = track('voice', 'audio', 'microphone', 'Opus', 'opus');
    await mkdir(path.join(dir, 'camera'), { recursive: true });
    await mkdir(path.join(dir, 'voice'), { recursive: true });
    const hls = (t: string) => [
      '-f',
      'hls',
      '-hls_time',
      '2',
      '-hls_list_size',
      '0',
      '-hls_playlist_type',
      'event',
      '-hls_segment_type',
      'fmp4',
      '-hls_fmp4_init_filename',
      'r001-init.mp4',
      '-hls_segment_filename',
      path.join(dir, t, 'r001-%05d.m4s'),
      path.join(dir, t, '.r001.m3u8'),
    ];
    await run('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      opts.picture === 'frameNumber'
        ? `color=c=black:size=16x2:rate=25:duration=${seconds},format=gray,geq=lum='255*mod(floor(N/pow(2,X)),2)',scale=320:240:flags=neighbor,setsar=1,format=yuv420p`
        : `testsrc=size=320x240:rate=25:duration=${seconds}`,
      '-f',
      'lavfi',
      '-i',
      `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
      '-map',
      '0:v',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      '-profile:v',
      'baseline',
      '-pix_fmt',
      'yuv420p',
      '-g',
      '25',
      '-output_ts_offset',
      '0.5',
      ...hls('camera'),
      '-map',
      '1:a',
      '-c:a',
      'libopus',
      '-b:a',
      '32k',
      '-output_ts_offset',
      '0.5',
      ...hls('voice'),
    ]);
    for (const data of [camera, voice]) {
      const t = new RecordedTrack(
        {
          recordingDir: dir,
          origin: startedAt,
          segmentSeconds: 2,
          onStorageError: (err) => {
            throw err;
          },
          onChange: () => undefined,
        },
        data,
      );
      const r = t.beginRun({
        producerId: `producer-${data.id}`,
        participantId: opts.instructorId ?? 'teacher-1',
        sourceCodec: data.codec,
        transcoded: false,
        startedAt: startedAt.toISOString(),
        offsetSeconds: 0.5,
      });
      await t.publishFrom(r.index);
      t.endRun(r.index, 'lesson ended', new Date(startedAt.getTime() + (seconds + 0.5) * 1000));
      await t.close();
      await t.removePrivateFiles();
      tracks.push(data);
    }
    await writeFile(path.join(dir, 'index.m3u8'), renderMasterPlaylist(tracks));
  }
  const endedAt = new Date(startedAt.getTime() + (seconds + 1) * 1000);
  const manifest: RecordingManifest = {
    format: 'lessoncast-recording',
    version: 1,
    lessonId: opts.id,
    title: opts.title ?? 'Fixture lesson',
    subject: opts.subject ?? 'physics',
    instructorId: opts.instructorId ?? 'teacher-1',
    invitedSchools: (opts.schools ?? []).map((s) => s.id),
    state: opts.state ?? 'complete',
    recovered: false,
    startedAt: startedAt.toISOString(),
    endedAt: (opts.state ?? 'complete') === 'complete' ? endedAt.toISOString() : null,
    endReason: (opts.state ?? 'complete') === 'complete' ? 'ended by the instructor' : null,
    segmentSeconds: 2,
    playlist: 'index.m3u8',
    tracks,
    attendance: (opts.schools ?? []).map((s) => ({
      participantId: s.id,
      role: 'classroom',
      name: s.name,
      intervals: [{ joinedAt: startedAt.toISOString(), leftAt: endedAt.toISOString() }],
    })),
    events: [],
    faults: 0,
    updatedAt: endedAt.toISOString(),
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return manifest;
}

function track(
  id: string,
  kind: 'audio' | 'video',
  source: ManifestTrack['source'],
  codec: ManifestTrack['codec'],
  codecs: string,
): ManifestTrack {
  return { id, kind, role: 'instructor', source, playlist: `${id}.m3u8`, codec, codecs, container: 'fmp4', runs: [], segments: [] };
}
