import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from './files.js';
import { renderMasterPlaylist } from './hls.js';
import { MANIFEST_NAME, MASTER_PLAYLIST, readManifest } from './manifest.js';
import { RecordedTrack, type RunFiles } from './track.js';

export interface RecoveryResult {
  lessonId: string;
  /** Segments ffmpeg had finished that the crashed server had not published yet. */
  segmentsAdded: number;
  /** ffmpeg processes the crashed server left running, stopped now. */
  orphansStopped: number;
  endedAt: string;
  problems: string[];
}

const REASON = 'server stopped unexpectedly; closed at the next start';

/**
 * Closes a recording a crash left open (manifest state `recording`): stops
 * the orphaned ffmpeg processes (so that their last segment is completed),
 * publishes every segment ffmpeg had finished, closes the playlists (ENDLIST)
 * and finalizes the manifest. Returns null for a recording that is not open. `by` (the node
 * closing it) goes into the manifest's `recovered` event.
 */
export async function recoverRecording(dir: string, by?: string): Promise<RecoveryResult | null> {
  const manifest = await readManifest(dir);
  if (manifest.state !== 'recording') return null;
  const problems: string[] = [];
  const origin = new Date(manifest.startedAt);
  const tracks = manifest.tracks.map(
    (t) =>
      new RecordedTrack(
        {
          recordingDir: dir,
          origin,
          segmentSeconds: manifest.segmentSeconds,
          onStorageError: (err, what) => problems.push(`${what}: ${err.message}`),
          onChange: () => undefined,
        },
        t,
      ),
  );

  let orphansStopped = 0;
  for (const track of tracks) {
    for (const run of track.data.runs) {
      if (run.pid && !run.endedAt && (await stopOrphan(run.pid, track.runFiles(run.index)))) orphansStopped++;
    }
  }

  let segmentsAdded = 0;
  let lastEnd = 0;
  for (const track of tracks) {
    for (const run of track.data.runs) {
      if (run.endedAt) continue;
      segmentsAdded += await track.publishFrom(run.index);
      await track.cleanRun(run.index);
      const last = track.data.segments.filter((s) => s.run === run.index).at(-1);
      track.endRun(run.index, REASON, new Date(origin.getTime() + (last ? last.startSeconds + last.duration : run.offsetSeconds) * 1000));
    }
    for (const s of track.data.segments) lastEnd = Math.max(lastEnd, s.startSeconds + s.duration);
    await track.close();
    await track.removePrivateFiles();
  }

  const lastEvent = manifest.events.at(-1);
  const endedAtMs = Math.max(origin.getTime() + lastEnd * 1000, lastEvent ? Date.parse(lastEvent.at) : 0, origin.getTime());
  const endedAt = new Date(endedAtMs).toISOString();
  for (const a of manifest.attendance) for (const i of a.intervals) i.leftAt ??= endedAt;
  manifest.events.push({
    at: new Date().toISOString(),
    t: Math.round(Date.now() - origin.getTime()) / 1000,
    type: 'recovered',
    detail: { segmentsAdded, orphansStopped, endedAt, ...(by ? { by } : {}) },
  });
  manifest.state = 'complete';
  manifest.recovered = true;
  manifest.endedAt = endedAt;
  manifest.endReason = REASON;
  manifest.updatedAt = new Date().toISOString();
  await writeFileAtomic(path.join(dir, MASTER_PLAYLIST), renderMasterPlaylist(manifest.tracks));
  await writeFileAtomic(path.join(dir, MANIFEST_NAME), JSON.stringify(manifest, null, 1), { fsync: true });
  return { lessonId: manifest.lessonId, segmentsAdded, orphansStopped, endedAt, problems };
}

/**
 * Stops a leftover ffmpeg of ours (identified by its output path, never by
 * pid alone). Its input was a pipe from the process that died, so it has
 * already seen the end of its input and is completing its last segment: it
 * gets 3 s for that, then SIGINT, then SIGKILL.
 */
async function stopOrphan(pid: number, files: RunFiles): Promise<boolean> {
  const { ffmpegPlaylist } = files;
  if (!(await isRunning(pid, ffmpegPlaylist))) return false;
  try {
    for (let waited = 0; waited < 6000; waited += 100) {
      if (waited === 3000) process.kill(pid, 'SIGINT');
      await new Promise((r) => setTimeout(r, 100));
      if (!(await isRunning(pid, ffmpegPlaylist))) return true;
    }
  } catch {
    return !(await isRunning(pid, ffmpegPlaylist));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  await new Promise((r) => setTimeout(r, 300));
  return true;
}

async function isRunning(pid: number, ffmpegPlaylist: string): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').includes(ffmpegPlaylist);
  } catch {
    return false;
  }
}
