/**
 * Three lessoncast processes as one cluster, each in its own network namespace on one bridge
 * (test/support/netns.ts buildRack: 198.19.0.11–13; this process, its Redis, WebRTC clients and
 * Chromium at 198.19.0.1; PostgreSQL over its Unix socket), sharing one recordings folder.
 * Classrooms (werift, and one Chromium page) spread over the nodes; then the origin paused
 * (SIGSTOP) for 15 s and let go on (SIGCONT), an edge killed (SIGKILL), the origin killed
 * (SIGKILL). After each, media flows again and no node keeps acting as a stale origin; the
 * recording keeps every segment written before and after. Then the archive on every node: a
 * recording whose origin died with nobody rejoining is closed by one survivor, exactly once.
 * Clients behave as the pages do: a closed socket reconnects to another node and joins again;
 * `reconnectRequested` joins again on the same socket.
 *
 * Needs root for `ip netns` (CI runs as root); fails, saying why, where namespaces cannot be made.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TokenService } from '../src/auth/tokens.js';
import type { LiveSnapshot } from '../src/live/types.js';
import type { RecordingManifest } from '../src/recording/manifest.js';
import { buildWeb, chromiumAvailable, inboundStats, launchBrowser, openPage, type OpenedPage } from './support/browser.js';
import { LessonPage } from '../kit/lessonPage.js';
import { runningNode } from './support/lessoncast.js';
import { buildRack, namespaceSupport, removeStaleTopologies } from './support/netns.js';
import { startPostgres } from './support/postgres.js';
import { startRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_SECONDS = 4;
const NODE_TTL_SECONDS = 3;

const support = namespaceSupport();
if (!support.ok) {
  t.fail(`three nodes in network namespaces cannot run here: ${support.reason}`);
  process.exit(1);
}
if (!chromiumAvailable()) {
  t.fail('Debian chromium is missing (apt-get install chromium): the cluster test opens one classroom page in it');
  process.exit(1);
}
removeStaleTopologies();
buildWeb();
const shared = mkdtempSync(path.join(tmpdir(), 'lessoncast-cluster-'));
const recordingsDir = path.join(shared, 'recordings');
const rack = buildRack(3, shared);
const redis = await startRedis(rack.host);
const pg = await startPostgres();
const tokenSecret = randomBytes(32).toString('hex');
const tokens = new TokenService(new TextEncoder().encode(tokenSecret), 3600);
// PostgreSQL over its Unix socket: a file, the same from every namespace.
const catalogUrl = `${(await pg.database()).replace('@127.0.0.1:', '@localhost:')}?host=${encodeURIComponent(pg.socketDir)}`;
const env = {
  LESSONCAST_REDIS_URL: redis.url,
  LESSONCAST_REDIS_KEY_PREFIX: 'failover-test:',
  LESSONCAST_REDIS_HEARTBEAT_SECONDS: '1',
  LESSONCAST_REDIS_NODE_TTL_SECONDS: String(NODE_TTL_SECONDS),
  LESSONCAST_CATALOG_URL: catalogUrl,
  LESSONCAST_CLUSTER_ENABLED: 'true',
  LESSONCAST_CLUSTER_SECRET: randomBytes(32).toString('hex'),
  LESSONCAST_CLUSTER_LEASE_SECONDS: String(LEASE_SECONDS),
  LESSONCAST_AUTH_TOKEN_SECRET: tokenSecret,
  LESSONCAST_LESSONS_RECONNECT_GRACE_SECONDS: '60',
  LESSONCAST_RECORDING_DIR: recordingsDir,
  LESSONCAST_RECORDING_SEGMENT_SECONDS: '2',
  LESSONCAST_LOG_LEVEL: 'warn',
};
type Node = Awaited<ReturnType<typeof runningNode>>;
const nodes: Node[] = [];
/** Node i (1-based) started in its namespace, listening (HTTP, media, pipes) on its rack address only. */
async function startNode(i: number): Promise<Node> {
  const { ns, address } = rack.node(i);
  const id = `node-${i}`;
  const node = await runningNode(id, { ...env, LESSONCAST_HTTP_HOST: address, LESSONCAST_MEDIA_LISTEN_IP: address }, tokens, {
    dir: mkdtempSync(path.join(shared, `${id}-`)),
    netns: ns,
  });
  const at = nodes.findIndex((n) => n.id === id);
  if (at >= 0) nodes[at] = node;
  else nodes.push(node);
  return node;
}
for (const i of [1, 2, 3]) await startNode(i);
const byId = (id: string): Node => nodes.find((n) => n.id === id)!;
const alive = (n: Node): boolean => n.child.exitCode === null && n.child.signalCode === null;
const clients: Array<{ close(): unknown }> = [];
/** Every socket a page opens is closed at the end (a page reconnecting elsewhere opens another). */
const pageOptions = { onClient: (c: { close(): unknown }) => void clients.push(c) };
t.teardown(async () => {
  for (const c of clients.reverse()) await c.close();
  for (const n of nodes) {
    if (alive(n)) {
      n.child.kill('SIGCONT');
      n.child.kill('SIGTERM');
      await n.exited;
    }
    n.cleanup();
  }
  await redis.stop();
  await pg.close();
  rack.destroy();
  rmSync(shared, { recursive: true, force: true });
});

async function api<T>(n: Node, route: string, init: RequestInit = {}): Promise<{ status: number; body: T }> {
  const res = await fetch(`${n.url}${route}`, {
    ...init,
    headers: {
      authorization: `Bearer ${await n.issuer.token('admin', 'admin-1')}`,
      ...(init.body ? { 'content-type': 'application/json' } : {}),
    },
  });
  return { status: res.status, body: (await res.json().catch(() => null)) as T };
}
const manifestOf = (id: string): RecordingManifest =>
  JSON.parse(readFileSync(path.join(recordingsDir, id, 'manifest.json'), 'utf8')) as RecordingManifest;
/** Every segment of the recording written so far: uri → sha256. */
const segmentsOf = (id: string): Map<string, string> =>
  new Map(manifestOf(id).tracks.flatMap((tr) => tr.segments.map((sg) => [sg.uri, sg.sha256] as const)));
async function untilSegments(id: string, more: number, since = segmentsOf(id).size): Promise<Map<string, string>> {
  for (let i = 0; i < 200; i++) {
    try {
      const now = segmentsOf(id);
      if (now.size >= since + more) return now;
    } catch {
      // no manifest yet
    }
    await sleep(100);
  }
  throw new Error(`recording ${id}: fewer than ${more} new segments in 20 s`);
}

async function live(n: Node): Promise<LiveSnapshot> {
  const res = await fetch(`${n.url}/api/live`, { headers: { authorization: `Bearer ${await n.issuer.token('monitor', 'control-room')}` } });
  return (await res.json()) as LiveSnapshot;
}
async function holder(lessonId: string): Promise<string | null> {
  const v = (await redis.cli('GET', `failover-test:origin:${lessonId}`)).trim();
  return v ? v.slice(v.indexOf(':') + 1) : null;
}

/** Forgets the notifications received so far (each scenario waits for its own). */
function forgetNotifications(): void {
  for (const p of [teacher, ...schools]) if (p.client) p.client.notifications.length = 0;
}

const created = await api<{ lesson: { id: string } }>(byId('node-1'), '/api/lessons', {
  method: 'POST',
  body: JSON.stringify({ title: 'Failover', instructorId: 'teacher-1', record: true }),
});
const lessonId = created.body.lesson.id;
const teacher = new LessonPage<Node>('instructor', 'teacher-1', lessonId, pageOptions);
const schools = ['school-1', 'school-2', 'school-3'].map((id) => new LessonPage<Node>('classroom', id, lessonId, pageOptions));
clients.push(teacher, ...schools);
/** The instructor's camera now ('' while the studio is rejoining). */
const camera = (): string => teacher.sender?.producerId('video') ?? '';

/** The Chromium classroom page (on node-3, the node never killed here) and its decoded camera frames. */
let browserPage: OpenedPage | undefined;
async function pageFrames(): Promise<number> {
  const stats = await inboundStats(browserPage!.page);
  return stats.filter((x) => x.kind === 'video' && x.source === 'camera').reduce((n, x) => n + x.framesDecoded, 0);
}
/** Waits until the page has decoded more camera frames than `than`; resolves with how many. */
async function pageDecodesMore(than: number, timeoutMs = 60_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const n = await pageFrames().catch(() => 0);
    if (n > than) return n;
    if (Date.now() > until) {
      const shown = await browserPage!.page.evaluate(() => document.body.innerText.replace(/\s+/g, ' ').slice(0, 300)).catch(() => '');
      throw new Error(
        `the Chromium classroom decoded no new camera frame in ${timeoutMs / 1000} s (errors: ${browserPage!.errors.join('; ')}; page: ${shown})`,
      );
    }
    await sleep(250);
  }
}
/** The recording's segments when each disruption began: all must still be there, unchanged, at the end. */
const before: Array<Map<string, string>> = [];

t.test('classrooms spread over three nodes receive the instructor', async (t) => {
  t.equal(await holder(lessonId), 'node-1', 'node-1 created the lesson and is its origin');
  await teacher.join(byId('node-1'));
  await teacher.client.request('goLive', {});
  await schools[0]!.join(byId('node-1'));
  await schools[1]!.join(byId('node-2'));
  await schools[2]!.join(byId('node-3'));
  for (const s of schools) t.ok((await s.cameraAfter(Date.now(), camera)) >= 0, `${s.id} (on ${s.node.id}) receives the camera`);
  await schools[1]!.client.request('raiseHand', {});
  const node3 = byId('node-3');
  const browser = await launchBrowser(undefined, { args: [`--unsafely-treat-insecure-origin-as-secure=${node3.url}`] });
  clients.push({ close: () => browser.close() });
  const token = await node3.issuer.token('classroom', 'school-4', [lessonId]);
  browserPage = await openPage(browser, 'classroom', `${node3.url}/classroom#lesson=${lessonId}&token=${token}`);
  t.ok((await pageDecodesMore(0)) > 0, 'the Chromium classroom on node-3 (an edge) decodes the camera');
  await untilSegments(lessonId, 2, 0);
  t.pass('the origin records the lesson into the shared folder');
});

t.test('the origin paused 15 s (SIGSTOP), then let go on: a new origin, and the old one steps down', async (t) => {
  const origin = byId('node-1');
  forgetNotifications();
  before.push(segmentsOf(lessonId));
  const framesBefore = await pageFrames();
  const stoppedAt = Date.now();
  origin.child.kill('SIGSTOP');
  // Its edges' classrooms are asked to join again; they reach a new origin once the lease runs out.
  const edgeSchools = schools.filter((s) => s.node !== origin);
  await Promise.all(edgeSchools.map((s) => s.client.waitFor('reconnectRequested', () => true, 20_000)));
  t.pass(`edge classrooms told to join again ${Date.now() - stoppedAt} ms after the pause`);
  await Promise.all(edgeSchools.map((s) => s.rejoinHere()));
  // The instructor's socket is frozen with node-1: the studio gives up on it and connects elsewhere.
  teacher.client.close();
  await teacher.join(byId('node-2'));
  const newOrigin = await holder(lessonId);
  t.ok(newOrigin === 'node-2' || newOrigin === 'node-3', `a new origin: ${newOrigin}`);
  const back = await Promise.all(edgeSchools.map((s) => s.cameraAfter(stoppedAt, camera)));
  t.comment(
    `media back at the edge classrooms ${back.join(', ')} ms after the pause (lease ${LEASE_SECONDS} s, node TTL ${NODE_TTL_SECONDS} s)`,
  );
  t.ok(Math.max(...back) < 15_000, 'while the old origin is still paused');
  t.ok((await pageDecodesMore(framesBefore)) > framesBefore, 'the Chromium classroom decodes the camera from the new origin');
  await untilSegments(lessonId, 2, before.at(-1)!.size);
  t.pass('the new origin goes on recording while the old one is paused');

  await sleep(Math.max(0, stoppedAt + 15_000 - Date.now()));
  origin.child.kill('SIGCONT');
  await sleep(LEASE_SECONDS * 1000);
  t.equal(await holder(lessonId), newOrigin, 'the old origin did not take the lease back');
  const view = await live(origin);
  t.notOk(
    view.lessons.some((l) => l.id === lessonId && l.node === 'node-1'),
    'nobody (not even node-1 itself) sees node-1 hosting the lesson any more',
  );
  // The classroom that was on node-1 itself is told to join again by node-1, and reaches the new origin.
  const local = schools[0]!;
  await local.client.waitFor('reconnectRequested', () => true, 10_000);
  await local.rejoinHere();
  const ms = await local.cameraAfter(Date.now(), camera);
  t.pass(`the classroom on the resumed node joins the new origin through it (camera after ${ms} ms)`);
});

t.test('an edge killed (SIGKILL): its classroom reconnects to another node, its seat kept', async (t) => {
  forgetNotifications();
  const origin = byId((await holder(lessonId))!);
  // An edge with a werift classroom, not node-3 (the Chromium page's node).
  const edge = nodes.find((n) => n !== origin && n.id !== 'node-3' && schools.some((s) => s.node === n))!;
  const victim = schools.find((s) => s.node === edge)!;
  const bystander = schools.find((s) => s.node !== edge && s !== victim)!;
  const before = bystander.watcher!.packets(camera());
  const killedAt = Date.now();
  edge.child.kill('SIGKILL');
  await edge.exited;
  const to = nodes.find((n) => n !== edge && alive(n))!;
  const { rejoined } = await victim.join(to);
  const ms = await victim.cameraAfter(killedAt, camera);
  t.comment(`${victim.id}: media again ${ms} ms after its node was killed (reconnected to ${to.id})`);
  t.ok(ms < 5000, 'within 5 s');
  t.equal(rejoined, true, 'its seat was kept');
  await sleep(500);
  t.ok(bystander.watcher!.packets(camera()) > before, 'a classroom on another node was not interrupted');
});

t.test('the origin killed (SIGKILL): the lesson comes back on a surviving node', async (t) => {
  const origin = byId((await holder(lessonId))!);
  t.not(origin.id, 'node-3', 'the origin is not node-3 (the test keeps the Chromium page there)');
  const survivor = byId('node-3');
  forgetNotifications();
  before.push(segmentsOf(lessonId));
  const framesBefore = await pageFrames();
  const killedAt = Date.now();
  origin.child.kill('SIGKILL');
  await origin.exited;
  // Clients on the dead node reconnect to the survivor; those on the survivor are asked to join again.
  const rejoins = schools.map(async (s) => {
    if (s.node === origin) return s.join(survivor);
    await s.client.waitFor('reconnectRequested', () => true, 20_000);
    return s.rejoinHere();
  });
  if (teacher.node === origin) await teacher.join(survivor);
  else {
    await teacher.client.waitFor('reconnectRequested', () => true, 20_000);
    await teacher.rejoinHere();
  }
  await Promise.all(rejoins);
  t.equal(await holder(lessonId), survivor.id, 'the survivor is the origin');
  const back = await Promise.all(schools.map((s) => s.cameraAfter(killedAt, camera)));
  t.comment(`the lesson back at every classroom ${back.join(', ')} ms after the origin was killed`);
  t.ok(Math.max(...back) < 15_000, 'within 15 s on this machine');
  const view = await live(survivor);
  t.match(
    view.lessons.find((l) => l.id === lessonId),
    { node: survivor.id, state: 'live' },
    'the lesson is live on the survivor in the control room',
  );
  t.ok((await pageDecodesMore(framesBefore)) > framesBefore, 'the Chromium classroom decodes the camera from the survivor');
  await untilSegments(lessonId, 2, before.at(-1)!.size);
  t.pass('the survivor goes on recording');
});

t.test('the recording holds every segment written before and after each failover', async (t) => {
  await teacher.client.request('endLesson', {});
  let m = manifestOf(lessonId);
  for (let i = 0; i < 100 && m.state !== 'complete'; i++) {
    await sleep(200);
    m = manifestOf(lessonId);
  }
  t.equal(m.state, 'complete', 'finished when the lesson ended');
  const now = segmentsOf(lessonId);
  for (const [i, snapshot] of before.entries()) {
    const kept = [...snapshot].filter(([uri, sha]) => now.get(uri) === sha).length;
    t.equal(kept, snapshot.size, `all ${snapshot.size} segments written before failover ${i + 1} are still there, unchanged`);
  }
  const cameraTrack = m.tracks.find((tr) => tr.id === 'camera')!;
  t.ok(cameraTrack.runs.length >= 3, `the camera track has a run per origin (${cameraTrack.runs.length} runs)`);
  t.ok(m.events.filter((e) => e.type === 'recordingResumed').length >= 2, 'the journal says where the recording was resumed');
  const playlist = readFileSync(path.join(recordingsDir, lessonId, cameraTrack.playlist), 'utf8');
  t.ok(
    playlist.includes('#EXT-X-DISCONTINUITY') && playlist.trimEnd().endsWith('#EXT-X-ENDLIST'),
    'the playlist marks the breaks and ends',
  );
  const verify = await api<{ ok: boolean; checkedFiles: number; mismatches: unknown[] }>(
    byId('node-3'),
    `/api/recordings/${lessonId}/verify`,
    {
      method: 'POST',
      body: '{}',
    },
  );
  t.match(verify.body, { ok: true, mismatches: [] }, `verify: ${verify.body.checkedFiles} files, every hash as written`);
});

t.test('the archive on every node: a recording whose origin died is closed by one survivor, exactly once', async (t) => {
  for (const i of [1, 2, 3]) if (!alive(byId(`node-${i}`))) await startNode(i);
  t.pass('the killed nodes started again under their ids');
  const origin = byId('node-1');
  const { body } = await api<{ lesson: { id: string } }>(origin, '/api/lessons', {
    method: 'POST',
    body: JSON.stringify({ title: 'Orphaned', instructorId: 'teacher-2', record: true }),
  });
  const orphanId = body.lesson.id;
  const studio = new LessonPage<Node>('instructor', 'teacher-2', orphanId, pageOptions);
  clients.push(studio);
  await studio.join(origin);
  await studio.client.request('goLive', {});
  const written = await untilSegments(orphanId, 3, 0);
  // Another node finds it in the shared index, still being written, and will not delete it.
  let found: { state: string } | undefined;
  for (let i = 0; i < 50 && !found; i++) {
    const page = await api<{ recordings: Array<{ id: string; state: string }> }>(byId('node-2'), '/api/recordings?q=Orphaned');
    found = page.body.recordings.find((r) => r.id === orphanId);
    if (!found) await sleep(200);
  }
  t.match(found, { state: 'recording' }, "node-2's archive lists node-1's recording as it is written");
  const del = await api<{ code: string }>(byId('node-3'), `/api/recordings/${orphanId}`, { method: 'DELETE' });
  t.match({ status: del.status, code: del.body.code }, { status: 409, code: 'RECORDING_BUSY' }, 'node-3 will not delete it');

  const killedAt = Date.now();
  origin.child.kill('SIGKILL');
  await origin.exited;
  studio.client.close();
  let m = manifestOf(orphanId);
  while (m.state !== 'complete' && Date.now() - killedAt < 30_000) {
    await sleep(250);
    m = manifestOf(orphanId);
  }
  t.equal(
    m.state,
    'complete',
    `closed ${Date.now() - killedAt} ms after its origin was killed, nobody rejoining (lease ${LEASE_SECONDS} s)`,
  );
  await sleep(LEASE_SECONDS * 2000); // two more sweeps on each survivor
  m = manifestOf(orphanId);
  const recovered = m.events.filter((e) => e.type === 'recovered');
  t.equal(recovered.length, 1, 'closed exactly once');
  t.ok(['node-2', 'node-3'].includes(String(recovered[0]?.detail?.['by'])), `by a survivor (${String(recovered[0]?.detail?.['by'])})`);
  const now = segmentsOf(orphanId);
  t.equal([...written].filter(([uri, sha]) => now.get(uri) === sha).length, written.size, 'every segment written before the kill is kept');
  const verify = await api<{ ok: boolean }>(byId('node-2'), `/api/recordings/${orphanId}/verify`, { method: 'POST', body: '{}' });
  t.equal(verify.body.ok, true, 'verified from node-2');
  const list = await fetch(`${byId('node-3').url}/api/recordings/${orphanId}/files/index.m3u8`, {
    headers: { authorization: `Bearer ${await byId('node-3').issuer.token('admin', 'admin-1')}` },
  });
  t.equal(list.status, 200, 'node-3 serves its playback');
});
