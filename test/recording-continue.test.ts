/**
 * A recorded lesson goes on across a crash of its node: the restarted node closes the recording
 * the crash left open (recovered), then records on as new runs of the same tracks, on the same
 * timeline, with the journal kept. Nothing written before the crash is changed.
 */
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { SignalClient } from '../kit/signalClient.js';
import { publish } from '../kit/peers.js';
import { TokenService } from '../src/auth/tokens.js';
import type { Role } from '../src/domain/index.js';
import type { RecordingManifest } from '../src/recording/manifest.js';
import { runningProcess } from './support/lessoncast.js';
import { freePort } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a crash mid-recording: the restarted node recovers the recording and records on as new runs', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-continue-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = randomBytes(32).toString('hex');
  const tokens = new TokenService(new TextEncoder().encode(secret), 3600);
  const env = {
    LESSONCAST_AUTH_TOKEN_SECRET: secret,
    LESSONCAST_HTTP_PORT: String(await freePort()),
    LESSONCAST_RECORDING_SEGMENT_SECONDS: '2',
  };
  const issuer = (url: string) => ({
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    token: async (role: Role, id: string, lessons: '*' | string[] = '*') => (await tokens.mint({ role, id, lessons })).token,
  });
  const manifestOf = async (lessonId: string): Promise<RecordingManifest | null> =>
    JSON.parse(
      await readFile(path.join(dir, 'recordings', lessonId, 'manifest.json'), 'utf8').catch(() => 'null'),
    ) as RecordingManifest | null;
  const until = async (what: string, probe: () => Promise<boolean>, ms = 30_000) => {
    const end = Date.now() + ms;
    while (!(await probe())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await sleep(200);
    }
  };
  const camera = (m: RecordingManifest | null) => m?.tracks.find((x) => x.id === 'camera');

  const first = await runningProcess(env, dir);
  const admin = await issuer(first.url).token('admin', 'ops');
  const created = await fetch(`${first.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'Continued', instructorId: 'teacher-1', record: true }),
  });
  const lessonId = ((await created.json()) as { lesson: { id: string } }).lesson.id;
  const { client: teacher, joined } = await SignalClient.join(issuer(first.url), 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  const sender = await publish(teacher, joined!.routerRtpCapabilities);
  await until('two camera segments before the crash', async () => (camera(await manifestOf(lessonId))?.segments.length ?? 0) >= 2);
  const before = (await manifestOf(lessonId))!;
  first.child.kill('SIGKILL');
  await first.exited;
  await sender.close();
  teacher.close();

  const second = await runningProcess(env, dir);
  t.teardown(async () => {
    second.child.kill('SIGTERM');
    await second.exited;
  });
  const again = await SignalClient.join(issuer(second.url), 'instructor', 'teacher-1', lessonId);
  t.teardown(() => again.client.close());
  const sender2 = await publish(again.client, again.joined!.routerRtpCapabilities);
  t.teardown(() => sender2.close());
  await until('camera segments of a new run after the restart', async () => {
    const m = await manifestOf(lessonId);
    return m?.state === 'recording' && (camera(m)?.segments.some((s) => s.run > 1) ?? false);
  });
  await sleep(2500);
  await again.client.request('endLesson', {});
  await until('the recording complete', async () => (await manifestOf(lessonId))?.state === 'complete');
  const after = (await manifestOf(lessonId))!;

  const cam = camera(after)!;
  t.equal(after.startedAt, before.startedAt, 'the same recording, on the same timeline');
  t.equal(after.recovered, true, 'it says it was recovered after a crash');
  t.ok(cam.runs.length >= 2, `the camera track has ${cam.runs.length} runs`);
  t.match(cam.runs[0]!.endReason, /server stopped unexpectedly/, 'the first run ended with the crash');
  t.equal(cam.runs.at(-1)!.endReason, 'ended by the instructor', 'the last one with the lesson');
  const kept = camera(before)!.segments;
  t.same(
    cam.segments.slice(0, kept.length).map((s) => [s.uri, s.sha256]),
    kept.map((s) => [s.uri, s.sha256]),
    `the ${kept.length} segments written before the crash are unchanged`,
  );
  const lastBefore = cam.segments.filter((s) => s.run === 1).at(-1)!;
  const firstAfter = cam.segments.find((s) => s.run > 1)!;
  t.ok(firstAfter.startSeconds >= lastBefore.startSeconds + lastBefore.duration, 'the new run comes after the old one on the timeline');
  const types = after.events.map((e) => e.type);
  t.ok(types.includes('recovered') && types.includes('recordingResumed'), 'the journal says it was recovered, then resumed');
  t.ok(types.indexOf('recordingResumed') > types.indexOf('recovered'));
  const playlist = await readFile(path.join(dir, 'recordings', lessonId, 'camera.m3u8'), 'utf8');
  t.match(playlist, /#EXT-X-DISCONTINUITY/, 'the camera playlist marks the discontinuity');
  t.match(playlist, /#EXT-X-ENDLIST\s*$/, 'and is closed again at the end');
  const verify = await fetch(`${second.url}/api/recordings/${lessonId}/verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}` },
  });
  t.match(await verify.json(), { ok: true, mismatches: [] }, 'every hash verifies, before and after the crash');
});
