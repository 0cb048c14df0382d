import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { TokenService } from '../src/auth/tokens.js';
import { Archive } from '../src/recording/archive.js';
import type { RecordingManifest } from '../src/recording/manifest.js';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, spawnLessoncastProcess, type TestServer } from './support/lessoncast.js';
import { publish } from '../kit/peers.js';
import { playlistSegments, probe, readText, sleep, until } from './support/recording.js';

/** lessoncast as its own process (dist/main.js), as an operator runs it. */
interface Child {
  process: ChildProcess;
  server: TestServer;
  log(): string;
  exited: Promise<number | null>;
}

const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-rec-proc-'));
const recordings = path.join(dir, 'recordings');
const secret = randomBytes(32).toString('hex');
const tokens = new TokenService(new TextEncoder().encode(secret), 3600);
const children: ChildProcess[] = [];
t.teardown(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startChild(): Promise<Child> {
  const child = spawnLessoncastProcess(dir, { LESSONCAST_LOG_LEVEL: 'info', LESSONCAST_AUTH_TOKEN_SECRET: secret });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await until('the server to print its URL', () => /health\s+(http:\/\/\S+)\/healthz/.exec(out)?.[1], 40000, 100);
  const server = {
    url,
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    dir,
    token: async (role, id, lessons = '*') => (await tokens.mint({ role, id, name: `${role} ${id}`, lessons })).token,
  } as TestServer;
  return { process: child, server, log: () => out, exited };
}

const manifestOf = async (lessonId: string): Promise<RecordingManifest> =>
  JSON.parse(await readFile(path.join(recordings, lessonId, 'manifest.json'), 'utf8')) as RecordingManifest;
/** A live process (not a zombie waiting to be reaped). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function recordSomething(server: TestServer, title: string): Promise<{ lessonId: string; close(): Promise<void> }> {
  const lessonId = await createLesson(server, { record: true, title });
  const { client, joined } = await SignalClient.join(server, 'instructor', 'teacher-1', lessonId);
  await client.request('goLive', {});
  const sender = await publish(client, joined!.routerRtpCapabilities);
  const camera = path.join(recordings, lessonId, 'camera.m3u8');
  await until('a camera segment', async () => existsSync(camera) && playlistSegments(await readText(camera)).length >= 1, 30000);
  return {
    lessonId,
    close: async () => {
      await sender.close();
      client.close();
    },
  };
}

t.test('SIGKILL mid-lesson, then restart: the unfinished recording is found and closed, then goes on', async (t) => {
  const first = await startChild();
  const lesson = await recordSomething(first.server, 'Crash course');
  await sleep(1500);
  const before = await manifestOf(lesson.lessonId);
  t.equal(before.state, 'recording');
  const pids = before.tracks.flatMap((x) => x.runs.map((r) => r.pid)).filter((p): p is number => p !== null);
  t.ok(pids.length >= 2, `the manifest knows its ffmpeg processes (${pids.join(', ')})`);
  first.process.kill('SIGKILL');
  await first.exited;
  await lesson.close();
  // ffmpeg read its media from a pipe of the server: the pipe closed with it, so ffmpeg completes its last segment and ends.
  await until('the orphaned ffmpeg processes to finish on their own', () => !pids.some(alive), 10000, 100);
  t.pass('ffmpeg finished its last segments after the server died');

  const second = await startChild();
  t.teardown(async () => {
    if (second.process.exitCode === null) {
      second.process.kill('SIGTERM');
      await second.exited;
    }
  });
  // The lesson is still live after the restart: its recording is closed (recovered), then goes on.
  let after = await manifestOf(lesson.lessonId);
  for (let i = 0; i < 100 && !after.events.some((e) => e.type === 'recordingResumed'); i++) {
    await sleep(100);
    after = await manifestOf(lesson.lessonId);
  }
  t.equal(after.recovered, true, 'marked as recovered');
  const recovered = after.events.find((e) => e.type === 'recovered');
  t.ok(recovered, 'and an event saying so');
  t.ok(
    after.events.findIndex((e) => e.type === 'recordingResumed') > after.events.indexOf(recovered!),
    'closed at the next start, then recorded on as the lesson goes on (recordingResumed after recovered)',
  );
  t.equal(after.state, 'recording', 'the same recording, recording again');
  for (const track of after.tracks)
    for (const run of track.runs)
      t.match(
        run,
        { endReason: /server stopped unexpectedly/, endedAt: /^\d{4}-/ },
        `${track.id} run ${run.index} ended at the crash, with an end time`,
      );
  t.ok(
    Number(recovered?.detail?.['segmentsAdded']) >= after.tracks.length,
    `segments finished by the orphans were added (${String(recovered?.detail?.['segmentsAdded'])})`,
  );
  t.notOk(pids.some(alive), 'no ffmpeg process is left over');
  for (const track of after.tracks) {
    const text = await readText(path.join(recordings, lesson.lessonId, track.playlist));
    t.ok(
      track.segments.every((x) => text.includes(x.uri)),
      `${track.id} playlist lists every segment kept (${track.segments.length})`,
    );
  }
  const archive = new Archive({ recordingsDir: recordings, ffmpegPath: 'ffmpeg', log: console, isLive: () => false });
  t.ok((await archive.verify(lesson.lessonId)).ok, 'what was kept verifies');
  t.match(second.log(), /closed a recording its writer left open/, 'logged');

  t.test('SIGTERM mid-lesson: last segment complete, playlists closed; a blocked folder is a logged fault', async (t) => {
    const blockedId = await createLesson(second.server, { record: true, title: 'Nowhere to write' });
    await writeFile(path.join(recordings, blockedId), 'in the way');
    const { client: other } = await SignalClient.join(second.server, 'instructor', 'teacher-1', blockedId);
    await other.request('goLive', {});
    const lesson = await recordSomething(second.server, 'Stopped politely');
    await sleep(2500);
    const stoppedAt = Date.now();
    second.process.kill('SIGTERM');
    t.equal(await second.exited, 0, 'exit code 0');
    t.comment(`stopped in ${Date.now() - stoppedAt} ms`);
    await lesson.close();
    other.close();

    const m = await manifestOf(lesson.lessonId);
    t.equal(m.state, 'complete', 'manifest finalized');
    t.equal(m.recovered, false, 'by the orderly stop, not by recovery');
    const camera = m.tracks.find((x) => x.id === 'camera')!;
    const cameraText = await readText(path.join(recordings, lesson.lessonId, 'camera.m3u8'));
    t.match(cameraText, /#EXT-X-ENDLIST\n$/, 'camera playlist closed');
    const last = camera.segments.at(-1)!;
    t.ok(cameraText.includes(last.uri), 'the last segment is listed');
    // The last segment, with its init segment, is a complete and decodable piece of video.
    const init = camera.runs.find((r) => r.index === last.run)!.init!;
    const joined = path.join(dir, 'last.mp4');
    await writeFile(
      joined,
      Buffer.concat([
        await readFile(path.join(recordings, lesson.lessonId, init.uri)),
        await readFile(path.join(recordings, lesson.lessonId, last.uri)),
      ]),
    );
    const probed = await probe(joined);
    t.ok(
      Math.abs((probed.durations['video'] ?? 0) - last.duration) < 0.2,
      `last segment: ${probed.durations['video']?.toFixed(2)} s decodable, ${last.duration} s listed`,
    );
    t.ok((await archive.verify(lesson.lessonId)).ok, 'hashes match');
    t.notOk(existsSync(path.join(recordings, lesson.lessonId, 'camera', '.r001.m3u8')), "ffmpeg's private playlists are tidied away");
    t.match(second.log(), new RegExp(`"lesson":"${blockedId}".*recording fault`), 'the unwritable folder is in the logs');
  });
});
