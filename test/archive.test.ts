import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { Archive, readAuditLog } from '../src/recording/archive.js';
import { probe } from './support/recording.js';
import { makeRecording } from './support/recordingFixture.js';
import { builtEntry } from './support/dist.js';
import { SignalClient } from '../kit/signalClient.js';
import { expectCode, startTestServer } from './support/lessoncast.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-archive-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const live = new Set<string>();
const archive = new Archive({ recordingsDir: dir, ffmpegPath: '/usr/bin/ffmpeg', log: quiet, isLive: (id) => live.has(id) });
const day = 86_400_000;

t.test('catalog: search by date range, instructor, school, subject and text; paging; newest first', async (t) => {
  const a = randomUUID();
  const b = randomUUID();
  await makeRecording(dir, {
    id: a,
    title: 'Levers',
    subject: 'physics',
    instructorId: 'teacher-1',
    schools: [{ id: 'school-1', name: 'Northside Primary' }],
    startedAt: new Date('2025-03-01T09:00:00Z'),
  });
  await makeRecording(dir, {
    id: b,
    title: 'Acids and bases',
    subject: 'chemistry',
    instructorId: 'teacher-2',
    schools: [{ id: 'school-2', name: 'Riverside' }],
    startedAt: new Date('2025-03-05T09:00:00Z'),
  });
  await writeFile(path.join(dir, 'not-a-recording.txt'), 'ignored');
  const ids = async (q: Parameters<Archive['list']>[0]): Promise<string[]> =>
    (await archive.list(q)).recordings.map((r) => r.id).filter((id) => id === a || id === b);
  t.same(await ids({}), [b, a], 'newest first');
  t.same(await ids({ from: new Date('2025-03-02T00:00:00Z') }), [b]);
  t.same(await ids({ to: new Date('2025-03-02T00:00:00Z') }), [a]);
  t.same(await ids({ instructor: 'teacher-2' }), [b]);
  t.same(await ids({ school: 'school-1' }), [a]);
  t.same(await ids({ subject: 'Chemistry' }), [b]);
  t.same(await ids({ q: 'northside' }), [a], 'text search covers school names');
  t.same(await ids({ q: 'acids' }), [b]);
  const page = await archive.list({ limit: 1, offset: 1 });
  t.equal(page.recordings.length, 1, 'limit');
  t.ok(page.total >= 2, 'total counts every match');
  t.equal((await archive.list({}, [a])).recordings.length, 1, "a scope (a token's lessons) applies");
});

t.test('verify: re-hashes everything against the manifest and names each mismatch', async (t) => {
  const id = randomUUID();
  const m = await makeRecording(dir, { id, seconds: 5 });
  const ok = await archive.verify(id);
  t.ok(ok.ok, `${ok.checkedFiles} files match`);
  t.equal(
    ok.checkedFiles,
    m.tracks.reduce((n, x) => n + x.segments.length + x.runs.length, 0),
    'segments and init segments',
  );
  const [first, second] = m.tracks.find((x) => x.id === 'camera')!.segments;
  await writeFile(path.join(dir, id, first!.uri), Buffer.concat([await readFile(path.join(dir, id, first!.uri)), Buffer.from('x')]));
  rmSync(path.join(dir, id, second!.uri));
  const bad = await archive.verify(id);
  t.notOk(bad.ok);
  t.same(
    bad.mismatches.map((x) => [x.uri, x.problem]),
    [
      [first!.uri, 'size'],
      [second!.uri, 'missing'],
    ],
  );
});

t.test('export: one MP4 with the video copied; the CLI lists, verifies and exports', async (t) => {
  const id = randomUUID();
  await makeRecording(dir, { id, seconds: 5, title: 'Exported lesson' });
  const out = path.join(dir, 'export.mp4');
  const env = { ...process.env, LESSONCAST_CONFIG_DIR: path.resolve('config'), LESSONCAST_RECORDING_DIR: dir };
  // Through the `lessoncast` bin, which runs dist/cli.js (checked first: missing or stale fails here).
  builtEntry('cli');
  const cli = (...args: string[]) => run(process.execPath, [path.resolve('scripts/lessoncast.mjs'), 'recordings', ...args], { env });
  const listed = JSON.parse((await cli('list', '--json', '--q', 'exported')).stdout) as { recordings: Array<{ id: string }> };
  t.same(
    listed.recordings.map((r) => r.id),
    [id],
    'recordings list',
  );
  t.match((await cli('verify', id)).stdout, new RegExp(`ok +${id}`), 'recordings verify');
  await cli('export', id, '--out', out);
  const probed = await probe(out);
  t.same(
    probed.streams.map((s) => `${s.codec_type}:${s.codec_name}`),
    ['video:h264', 'audio:opus'],
    'recordings export: H264 and Opus, copied',
  );
  t.ok(Math.abs((probed.durations['video'] ?? 0) - 5) < 0.5, `5 s of video (${probed.durations['video']?.toFixed(2)} s)`);
  const other = randomUUID();
  await makeRecording(dir, { id: other, seconds: 3 });
  rmSync(path.join(dir, other, 'voice', 'r001-00000.m4s'));
  const failed = await cli('verify', other).then(
    () => null,
    (err: { code: number; stdout: string }) => err,
  );
  t.equal(failed?.code, 1, 'verify exits 1 on a mismatch');
  t.match(failed?.stdout, /voice\/r001-00000\.m4s: missing/);
  const usage = await cli('frobnicate').then(
    () => null,
    (err: { code: number; stderr: string }) => err,
  );
  t.equal(usage?.code, 64, 'a usage error exits 64');
});

t.test('pinning, deletion and retention are audited; live and pinned recordings are kept', async (t) => {
  const now = new Date('2025-06-01T00:00:00Z');
  const old = randomUUID();
  const oldPinned = randomUUID();
  const oldLive = randomUUID();
  const oldOpen = randomUUID();
  const recent = randomUUID();
  for (const id of [old, oldPinned, oldLive]) await makeRecording(dir, { id, startedAt: new Date(now.getTime() - 40 * day) });
  await makeRecording(dir, { id: oldOpen, startedAt: new Date(now.getTime() - 40 * day), state: 'recording' });
  await makeRecording(dir, { id: recent, startedAt: new Date(now.getTime() - 5 * day) });
  await archive.setPinned(oldPinned, true, { id: 'archivist-1', role: 'archivist' });
  live.add(oldLive);
  await t.rejects(
    archive.delete(oldLive, { id: 'admin-1', role: 'admin' }),
    { code: 'RECORDING_BUSY' },
    'a recording still being made cannot be deleted',
  );
  const deleted = await archive.applyRetention(30, now);
  t.ok(deleted.includes(old), 'an old, unpinned, finished recording is deleted');
  for (const kept of [oldPinned, oldLive, oldOpen, recent])
    t.notOk(
      deleted.includes(kept),
      `kept: ${kept === oldPinned ? 'pinned' : kept === oldLive ? 'live' : kept === oldOpen ? 'unfinished' : 'recent'}`,
    );
  t.notOk(existsSync(path.join(dir, old)), 'its folder is gone');
  t.same(await archive.applyRetention(0, now), [], 'retention 0 keeps everything');
  await archive.delete(recent, { id: 'admin-1', role: 'admin' }, 'requested by the school');
  const audit = await readAuditLog(dir);
  t.ok(
    audit.some((a) => a['action'] === 'pin' && a['recordingId'] === oldPinned),
    'pin audited',
  );
  t.ok(
    audit.some((a) => a['action'] === 'retention-delete' && a['recordingId'] === old && a['by'] === 'retention'),
    'retention audited',
  );
  t.ok(
    audit.some((a) => a['action'] === 'delete' && a['recordingId'] === recent && a['reason'] === 'requested by the school'),
    'deletion audited with its reason',
  );
  await t.rejects(archive.manifest('../etc'), { code: 'INVALID_REQUEST' }, 'ids are checked before touching the disk');
  await t.rejects(archive.file(oldPinned, 'camera/../../x'), { code: 'INVALID_REQUEST' });
});

t.test("?access= takes only a capability from POST …/access: for that recording's files, ten minutes, and nothing else", async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const id = randomUUID();
  const other = randomUUID();
  await makeRecording(s.server.config.recording.dir, { id, seconds: 3 });
  await makeRecording(s.server.config.recording.dir, { id: other, seconds: 1 });
  const api = `${s.url}/api/recordings`;
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const admin = await s.token('admin', 'ops');
  const archivist = await s.token('archivist', 'arch-1');

  // Bearer tokens are never taken from a URL.
  t.equal((await fetch(`${api}/${id}/files/index.m3u8?access=${admin}`)).status, 401, 'an admin token in ?access= is refused');
  t.equal((await fetch(`${api}/${id}/files/index.m3u8?access=${archivist}`)).status, 401, 'an archivist token in ?access= is refused');
  t.equal((await fetch(`${api}/${id}/download.mp4?access=${archivist}`)).status, 401, 'also for the MP4');

  const granted = await fetch(`${api}/${id}/access`, { method: 'POST', headers: bearer(archivist) });
  const { access, expiresAt } = (await granted.json()) as { access: string; expiresAt: string };
  const lifetime = (Date.parse(expiresAt) - Date.now()) / 1000;
  t.ok(lifetime > 590 && lifetime <= 600, `the capability lives ten minutes (${lifetime.toFixed(0)} s)`);
  const playlist = await fetch(`${api}/${id}/files/index.m3u8?access=${access}`);
  t.equal(playlist.status, 200, "it opens the recording's playlist");
  t.match(await playlist.text(), `camera.m3u8?access=${access}`, 'and is passed on to what the playlist lists');
  t.equal((await fetch(`${api}/${id}/files/camera/r001-init.mp4?access=${access}`)).status, 200, 'and its files');
  const mp4 = await fetch(`${api}/${id}/download.mp4?access=${access}`);
  t.equal(mp4.status, 200, 'and its MP4');
  await mp4.body?.cancel();

  t.equal((await fetch(`${api}/${other}/files/index.m3u8?access=${access}`)).status, 403, 'not another recording');
  t.equal((await fetch(`${api}/${id}?access=${access}`)).status, 401, "not the recording's details");
  for (const [method, url] of [
    ['GET', `${api}/${id}`],
    ['GET', api],
    ['POST', `${api}/${id}/verify`],
    ['POST', `${api}/${id}/access`],
    ['GET', `${api}/${id}/files/index.m3u8`],
  ] as const) {
    t.equal(
      (await fetch(url, { method, headers: bearer(access) })).status,
      401,
      `not a bearer token: ${method} ${url.slice(s.url.length)}`,
    );
  }
  t.equal((await fetch(`${s.url}/api/lessons`, { headers: bearer(access) })).status, 401, 'not for lessons');
  const c = await SignalClient.connect(s.wsUrl);
  t.teardown(() => c.close());
  t.ok(await expectCode(c.request('authenticate', { token: access }), 'UNAUTHENTICATED'), 'not on /ws');
});

t.test('files over HTTP: single ranges (206, 416), ETag and 304, types and caching as docs/recording.md says', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const id = randomUUID();
  const m = await makeRecording(s.server.config.recording.dir, { id, seconds: 3 });
  const files = `${s.url}/api/recordings/${id}/files`;
  const auth = { authorization: `Bearer ${await s.token('archivist', 'arch-1')}` };
  const segUri = m.tracks.find((x) => x.id === 'camera')!.segments[0]!.uri;
  const whole = await readFile(path.join(s.server.config.recording.dir, id, segUri));
  const size = whole.length;

  const full = await fetch(`${files}/${segUri}`, { headers: auth });
  t.equal(full.status, 200);
  t.same(Buffer.from(await full.arrayBuffer()), whole, 'the whole file');
  t.equal(full.headers.get('content-type'), 'video/iso.segment');
  t.equal(full.headers.get('cache-control'), 'private, max-age=31536000, immutable', 'segments never change once listed');
  t.equal(full.headers.get('accept-ranges'), 'bytes');
  t.equal(full.headers.get('content-length'), String(size));
  t.ok(full.headers.get('last-modified'), 'last-modified');
  t.equal(full.headers.get('x-content-type-options'), 'nosniff');
  const etag = full.headers.get('etag');
  t.match(etag, /^(W\/)?"[0-9a-f]+-[0-9a-f]+"$/, 'an ETag');

  const range = async (value: string): Promise<Response> => fetch(`${files}/${segUri}`, { headers: { ...auth, range: value } });
  const part = await range('bytes=100-1099');
  t.equal(part.status, 206);
  t.equal(part.headers.get('content-range'), `bytes 100-1099/${size}`);
  t.equal(part.headers.get('content-length'), '1000');
  t.same(Buffer.from(await part.arrayBuffer()), whole.subarray(100, 1100), 'the right bytes');
  const tail = await range('bytes=-10');
  t.equal(tail.headers.get('content-range'), `bytes ${size - 10}-${size - 1}/${size}`, 'a suffix range');
  t.same(Buffer.from(await tail.arrayBuffer()), whole.subarray(size - 10));
  const open = await range(`bytes=${size - 5}-`);
  t.equal(open.headers.get('content-range'), `bytes ${size - 5}-${size - 1}/${size}`, 'an open-ended range');
  await open.arrayBuffer();
  const clamped = await range(`bytes=${size - 5}-${size + 500}`);
  t.equal(clamped.headers.get('content-range'), `bytes ${size - 5}-${size - 1}/${size}`, 'clamped to the end');
  await clamped.arrayBuffer();
  const many = await range('bytes=0-1,5-6');
  t.equal(many.status, 200, 'multiple ranges: the whole file');
  t.equal((await many.arrayBuffer()).byteLength, size);
  const other = await range('items=0-1');
  t.equal(other.status, 200, 'not a byte range: the whole file');
  await other.arrayBuffer();
  for (const past of [`bytes=${size}-`, `bytes=${size + 10}-`, 'bytes=-0']) {
    const refused = await range(past);
    t.equal(refused.status, 416, `${past}: 416`);
    t.equal(refused.headers.get('content-range'), `bytes */${size}`, `${past}: says the size`);
    t.match(refused.headers.get('content-type'), /^application\/problem\+json/);
    t.match(await refused.json(), { code: 'RANGE_NOT_SATISFIABLE', status: 416 });
  }

  // A browser revalidating its cache sends no `Cache-Control: no-cache`; fetch() adds one to any conditional request unless told otherwise.
  const again = await fetch(`${files}/${segUri}`, { headers: { ...auth, 'if-none-match': etag!, 'cache-control': 'max-age=0' } });
  t.equal(again.status, 304, 'If-None-Match: 304');
  t.equal(again.headers.get('etag'), etag);
  const reload = await fetch(`${files}/${segUri}`, { headers: { ...auth, 'if-none-match': etag!, 'cache-control': 'no-cache' } });
  t.equal(reload.status, 200, 'an end-to-end reload (Cache-Control: no-cache) gets the file');
  await reload.arrayBuffer();
  const stale = await fetch(`${files}/${segUri}`, { headers: { ...auth, 'if-match': '"nope"' } });
  t.equal(stale.status, 412, 'If-Match that does not hold: 412');
  t.match(await stale.json(), { code: 'PRECONDITION_FAILED' });
  const head = await fetch(`${files}/${segUri}`, { method: 'HEAD', headers: auth });
  t.equal(head.status, 200);
  t.equal(head.headers.get('content-length'), String(size), 'HEAD: the length, no body');

  const playlist = await fetch(`${files}/camera.m3u8`, { headers: auth });
  t.equal(playlist.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  t.equal(playlist.headers.get('cache-control'), 'no-cache', 'playlists grow while the lesson is live');
  t.match(await playlist.text(), /^#EXTM3U/);
  const init = await fetch(`${files}/camera/r001-init.mp4`, { headers: auth });
  t.equal(init.headers.get('content-type'), 'video/mp4');
  await init.arrayBuffer();
  t.equal((await fetch(`${files}/camera/r999-init.mp4`, { headers: auth })).status, 404, 'a missing file: 404');
  t.equal((await fetch(`${files}/${segUri}`)).status, 401, 'no token, no file');
});
