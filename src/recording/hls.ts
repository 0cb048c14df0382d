import path from 'node:path';
import type { ManifestRun, ManifestSegment, ManifestTrack } from './manifest.js';

/** A segment as ffmpeg lists it in its own (private) playlist: listed = fully written. */
export interface WrittenSegment {
  name: string;
  duration: number;
}

/** Reads ffmpeg's playlist of one run: its segments in order and whether ffmpeg closed it. */
export function parseFfmpegPlaylist(text: string): { segments: WrittenSegment[]; ended: boolean } {
  const segments: WrittenSegment[] = [];
  let duration: number | null = null;
  let ended = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#EXTINF:')) {
      const value = Number.parseFloat(line.slice(8).split(',')[0] ?? '');
      duration = Number.isFinite(value) && value >= 0 ? value : null;
    } else if (line === '#EXT-X-ENDLIST') {
      ended = true;
    } else if (!line.startsWith('#')) {
      if (duration !== null) segments.push({ name: path.basename(line), duration });
      duration = null;
    }
  }
  return { segments, ended };
}

/** EXT-X-TARGETDURATION may never change in a live playlist: fixed at twice the segment length (a late keyframe stretches a segment). */
export const targetDuration = (segmentSeconds: number): number => Math.max(1, Math.ceil(segmentSeconds * 2));

/**
 * One track's media playlist: an EVENT playlist while live, closed with
 * ENDLIST at the end. Every run (ffmpeg process) starts with its own init
 * segment after a DISCONTINUITY; every segment carries its wall-clock time,
 * which is how players line up tracks that start at different moments.
 */
export function renderMediaPlaylist(
  track: Pick<ManifestTrack, 'runs' | 'segments' | 'kind'>,
  opts: { segmentSeconds: number; ended: boolean; uri?: (rel: string) => string; vod?: boolean },
): string {
  const uri = opts.uri ?? ((rel: string) => rel);
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${targetDuration(opts.segmentSeconds)}`,
    '#EXT-X-MEDIA-SEQUENCE:0',
    `#EXT-X-PLAYLIST-TYPE:${opts.vod ? 'VOD' : 'EVENT'}`,
  ];
  if (track.kind === 'video') lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  const runs = new Map<number, ManifestRun>(track.runs.map((r) => [r.index, r]));
  let currentRun: number | null = null;
  let expectedStart: number | null = null;
  for (const seg of track.segments) {
    if (seg.run !== currentRun) {
      const init = runs.get(seg.run)?.init;
      if (currentRun !== null) lines.push('#EXT-X-DISCONTINUITY');
      if (init) lines.push(`#EXT-X-MAP:URI="${uri(init.uri)}"`);
      currentRun = seg.run;
      expectedStart = null;
    }
    // A date at each run start, and again wherever the timeline jumps.
    if (expectedStart === null || Math.abs(seg.startSeconds - expectedStart) > 0.5)
      lines.push(`#EXT-X-PROGRAM-DATE-TIME:${seg.programDateTime}`);
    lines.push(`#EXTINF:${seg.duration.toFixed(6)},`, uri(seg.uri));
    expectedStart = seg.startSeconds + seg.duration;
  }
  if (opts.ended) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

/** Peak bit rate over the segments listed (HLS BANDWIDTH), with a floor for tracks that have none yet. */
export function peakBandwidth(segments: ManifestSegment[], fallback: number): number {
  let peak = 0;
  for (const s of segments) if (s.duration > 0.5) peak = Math.max(peak, Math.round((s.size * 8) / s.duration));
  return peak || fallback;
}

/**
 * The master playlist: the main picture (the instructor's camera, else the
 * board) with the instructor's voice as the default audio rendition, and
 * classroom voices as a second, non-default rendition of the same group.
 */
export function renderMasterPlaylist(tracks: ManifestTrack[]): string {
  const videos = tracks.filter((t) => t.kind === 'video' && t.role === 'instructor');
  const main = videos.find((t) => t.source === 'camera') ?? videos[0];
  const audios = [
    ...tracks.filter((t) => t.kind === 'audio' && t.role === 'instructor'),
    ...tracks.filter((t) => t.kind === 'audio' && t.role === 'classroom'),
  ];
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  const names: Record<string, string> = { voice: 'Instructor', classrooms: 'Classrooms' };
  audios.forEach((a, i) => {
    const name = names[a.id] ?? a.id;
    const isDefault = i === 0 ? 'YES' : 'NO';
    lines.push(
      `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="${name}",LANGUAGE="und",DEFAULT=${isDefault},AUTOSELECT=${isDefault},URI="${a.playlist}"`,
    );
  });
  const audioBandwidth = audios[0] ? peakBandwidth(audios[0].segments, 64_000) : 0;
  if (main) {
    const codecs = [main.codecs, ...(audios[0] ? [audios[0].codecs] : [])].join(',');
    const bandwidth = peakBandwidth(main.segments, 1_500_000) + audioBandwidth;
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${bandwidth},CODECS="${codecs}"${audios.length ? ',AUDIO="audio"' : ''}`, main.playlist);
  } else if (audios[0]) {
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${audioBandwidth},CODECS="${audios[0].codecs}"`, audios[0].playlist);
  }
  return lines.join('\n') + '\n';
}
