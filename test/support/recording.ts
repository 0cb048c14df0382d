import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls until `check` returns a truthy value (which is returned) or the time is up. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
}

/** ffprobe's streams and the media duration (first to last packet) of a file or playlist. */
export async function probe(
  file: string,
): Promise<{ streams: ProbedStream[]; durations: Record<string, number>; packets: Record<string, number>; firstVideoIsKey: boolean }> {
  const ffprobe = (demuxerOptions: string[]) =>
    run(
      'ffprobe',
      [
        '-v',
        'error',
        ...demuxerOptions,
        '-show_entries',
        'stream=index,codec_type,codec_name,width,height:packet=stream_index,pts_time,duration_time,flags',
        '-of',
        'json',
        file,
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
  const { stdout } = await ffprobe(['-allowed_extensions', 'ALL']).catch(async (err: { stderr?: string; message: string }) => {
    // -allowed_extensions is an HLS-demuxer option; plain files reject it.
    if (!/allowed_extensions/.test(err.stderr ?? err.message)) throw err;
    return ffprobe([]);
  });
  const data = JSON.parse(stdout) as {
    streams: Array<ProbedStream & { index: number }>;
    packets: Array<{ stream_index: number; pts_time?: string; duration_time?: string; flags?: string }>;
  };
  const durations: Record<string, number> = {};
  const packets: Record<string, number> = {};
  for (const s of data.streams) {
    const own = data.packets.filter((p) => p.stream_index === s.index && p.pts_time !== undefined);
    packets[s.codec_type] = (packets[s.codec_type] ?? 0) + own.length;
    if (!own.length) continue;
    const times = own.map((p) => Number(p.pts_time));
    const last = own.at(-1)!;
    durations[s.codec_type] = Math.max(...times) - Math.min(...times) + Number(last.duration_time ?? 0);
  }
  const videoIndex = data.streams.find((s) => s.codec_type === 'video')?.index;
  const firstVideo = data.packets.find((p) => p.stream_index === videoIndex);
  return { streams: data.streams, durations, packets, firstVideoIsKey: Boolean(firstVideo?.flags?.startsWith('K')) };
}

export async function readText(file: string): Promise<string> {
  return readFile(file, 'utf8');
}

/** Segment URIs listed in a media playlist. */
export function playlistSegments(text: string): string[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#'));
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15)
  return ticks / 100; // USER_HZ is 100 on Linux
}
