/**
 * Measures what recording costs (not a test: run it by hand).
 *
 *   npx tsx test/support/recordingMeasure.ts [seconds=60]
 *
 * Starts lessoncast as its own process (src/main.ts, one worker), publishes
 * the werift test source (H264 640x360@30 600 kb/s + Opus 32 kb/s) into a
 * lesson without recording, then into one with recording (copy path), and
 * reports over the same window: CPU of the recording ffmpeg processes, of
 * the mediasoup worker and of the server's Node process (from /proc), and the
 * time from goLive to the first playable segment.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TokenService } from '../../src/auth/tokens.js';
import { SignalClient, createLesson, spawnLessoncastProcess, type TestServer } from './lessoncast.js';
import { publish } from './peers.js';
import { cpuSeconds, playlistSegments, readText, sleep, until } from './recording.js';

const seconds = Number(process.argv[2] ?? 60);
const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-measure-'));
const recordings = path.join(dir, 'recordings');
const secret = randomBytes(32).toString('hex');
const tokens = new TokenService(new TextEncoder().encode(secret), 3600);

/** Direct children of a process with a given command name. */
function childrenNamed(ppid: number, comm: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === ppid && name.startsWith(comm)) found.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return found;
}

async function cpuOf(pids: number[]): Promise<number> {
  let total = 0;
  for (const p of pids) total += await cpuSeconds(p).catch(() => 0);
  return total;
}

async function main(): Promise<void> {
  const profile = process.env['MEASURE_PROFILE'] ? ['--cpu-prof', `--cpu-prof-dir=${process.env['MEASURE_PROFILE']}`] : [];
  const child = spawnLessoncastProcess(dir, { LESSONCAST_LOG_LEVEL: 'warn', LESSONCAST_AUTH_TOKEN_SECRET: secret }, profile);
  child.stderr.pipe(process.stderr);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const url = await until('the server', () => /health\s+(http:\/\/\S+)\/healthz/.exec(out)?.[1], 40000, 100);
    const server = { url, wsUrl: url.replace(/^http/, 'ws') + '/ws', dir, token: async (role, id, lessons = '*') => (await tokens.mint({ role, id, name: id, lessons })).token } as TestServer;
    const worker = await until('the mediasoup worker', () => childrenNamed(child.pid!, 'mediasoup-work')[0]);

    const phase = async (record: boolean): Promise<Record<string, number>> => {
      const lessonId = await createLesson(server, { record, title: record ? 'recorded' : 'not recorded' });
      const { client, joined } = await SignalClient.join(server, 'instructor', 'teacher-1', lessonId);
      const liveAt = Date.now();
      await client.request('goLive', {});
      const sender = await publish(client, joined!.routerRtpCapabilities);
      const publishedAt = Date.now();
      const result: Record<string, number> = {};
      if (record) {
        const camera = path.join(recordings, lessonId, 'camera.m3u8');
        await until('the first segment', async () => existsSync(camera) && playlistSegments(await readText(camera)).length > 0, 30000, 20);
        result['firstSegmentAfterGoLiveMs'] = Date.now() - liveAt;
        result['firstSegmentAfterPublishMs'] = Date.now() - publishedAt;
      }
      await sleep(3000);
      const ffmpegs = childrenNamed(child.pid!, 'ffmpeg');
      const before = { node: await cpuSeconds(child.pid!), worker: await cpuSeconds(worker), ffmpeg: await cpuOf(ffmpegs) };
      const t0 = Date.now();
      await sleep(seconds * 1000);
      const wall = (Date.now() - t0) / 1000;
      const after = { node: await cpuSeconds(child.pid!), worker: await cpuSeconds(worker), ffmpeg: await cpuOf(ffmpegs) };
      result['ffmpegProcesses'] = ffmpegs.length;
      result['ffmpegCorePercent'] = (100 * (after.ffmpeg - before.ffmpeg)) / wall;
      result['workerCorePercent'] = (100 * (after.worker - before.worker)) / wall;
      result['nodeCorePercent'] = (100 * (after.node - before.node)) / wall;
      await client.request('endLesson', {});
      await sender.close();
      client.close();
      await sleep(1500);
      return result;
    };

    const plain = await phase(false);
    const recorded = await phase(true);
    const fmt = (n: number | undefined): string => (n === undefined ? '-' : n.toFixed(2));
    process.stdout.write(`\nover ${seconds} s, one lesson, H264 640x360@30 600 kb/s + Opus 32 kb/s, share of one core (%):\n`);
    process.stdout.write(`                     not recorded   recorded   delta\n`);
    for (const k of ['ffmpegCorePercent', 'workerCorePercent', 'nodeCorePercent']) {
      process.stdout.write(`  ${k.padEnd(18)} ${fmt(plain[k]).padStart(12)} ${fmt(recorded[k]).padStart(10)} ${fmt((recorded[k] ?? 0) - (plain[k] ?? 0)).padStart(7)}\n`);
    }
    process.stdout.write(`  recording ffmpeg processes: ${recorded['ffmpegProcesses']}\n`);
    process.stdout.write(`  first playable segment: ${recorded['firstSegmentAfterGoLiveMs']} ms after goLive, ${recorded['firstSegmentAfterPublishMs']} ms after publish returned (segments of 4 s)\n`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
