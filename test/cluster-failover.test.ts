/**
 * Three lessoncast processes as one cluster (shared Redis and PostgreSQL): classrooms spread over
 * the nodes, then the origin paused (SIGSTOP) for 15 s and let go on (SIGCONT), an edge killed
 * (SIGKILL), the origin killed (SIGKILL). After each, media flows again and no node keeps acting as
 * a stale origin. Clients behave as the pages do: a closed socket reconnects to another node and
 * joins again; `reconnectRequested` joins again on the same socket.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { LessonPage } from '../kit/lessonPage.js';
import { TokenService } from '../src/auth/tokens.js';
import type { LiveSnapshot } from '../src/live/types.js';
import { runningNode } from './support/lessoncast.js';
import { startPostgres } from './support/postgres.js';
import { startRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE_SECONDS = 4;
const NODE_TTL_SECONDS = 3;

const redis = await startRedis();
const pg = await startPostgres();
const tokenSecret = randomBytes(32).toString('hex');
const tokens = new TokenService(new TextEncoder().encode(tokenSecret), 3600);
const env = {
  LESSONCAST_REDIS_URL: redis.url,
  LESSONCAST_REDIS_KEY_PREFIX: 'failover-test:',
  LESSONCAST_REDIS_HEARTBEAT_SECONDS: '1',
  LESSONCAST_REDIS_NODE_TTL_SECONDS: String(NODE_TTL_SECONDS),
  LESSONCAST_CATALOG_URL: await pg.database(),
  LESSONCAST_CLUSTER_ENABLED: 'true',
  LESSONCAST_CLUSTER_SECRET: randomBytes(32).toString('hex'),
  LESSONCAST_CLUSTER_LEASE_SECONDS: String(LEASE_SECONDS),
  LESSONCAST_AUTH_TOKEN_SECRET: tokenSecret,
  LESSONCAST_LESSONS_RECONNECT_GRACE_SECONDS: '60',
  LESSONCAST_LOG_LEVEL: 'warn',
};
type Node = Awaited<ReturnType<typeof runningNode>>;
const nodes: Node[] = [];
for (const id of ['node-1', 'node-2', 'node-3']) nodes.push(await runningNode(id, env, tokens));
const byId = (id: string): Node => nodes.find((n) => n.id === id)!;
const clients: Array<{ close(): unknown }> = [];
t.teardown(async () => {
  for (const c of clients.reverse()) await c.close();
  for (const n of nodes) {
    if (n.child.exitCode === null && n.child.signalCode === null) {
      n.child.kill('SIGCONT');
      n.child.kill('SIGTERM');
      await n.exited;
    }
    n.cleanup();
  }
  await redis.stop();
  await pg.close();
});

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

const admin = await nodes[0]!.issuer.token('admin', 'admin-1');
const created = await fetch(`${nodes[0]!.url}/api/lessons`, {
  method: 'POST',
  headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
  body: JSON.stringify({ title: 'Failover', instructorId: 'teacher-1', record: false }),
});
const lessonId = ((await created.json()) as { lesson: { id: string } }).lesson.id;
const pageOptions = { onClient: (c: { close(): unknown }) => void clients.push(c) };
const teacher = new LessonPage<Node>('instructor', 'teacher-1', lessonId, pageOptions);
const schools = ['school-1', 'school-2', 'school-3'].map((id) => new LessonPage<Node>('classroom', id, lessonId, pageOptions));
clients.push(teacher, ...schools);
/** The instructor's camera now ('' while the studio is rejoining). */
const camera = (): string => teacher.sender?.producerId('video') ?? '';

t.test('classrooms spread over three nodes receive the instructor', async (t) => {
  t.equal(await holder(lessonId), 'node-1', 'node-1 created the lesson and is its origin');
  await teacher.join(byId('node-1'));
  await teacher.client.request('goLive', {});
  await schools[0]!.join(byId('node-1'));
  await schools[1]!.join(byId('node-2'));
  await schools[2]!.join(byId('node-3'));
  for (const s of schools) t.ok((await s.cameraAfter(Date.now(), camera)) >= 0, `${s.id} (on ${s.node.id}) receives the camera`);
  await schools[1]!.client.request('raiseHand', {});
});

t.test('the origin paused 15 s (SIGSTOP), then let go on: a new origin, and the old one steps down', async (t) => {
  const origin = byId('node-1');
  forgetNotifications();
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
  const edge = nodes.find((n) => n !== origin && schools.some((s) => s.node === n))!;
  const victim = schools.find((s) => s.node === edge)!;
  const bystander = schools.find((s) => s.node !== edge && s !== victim)!;
  const before = bystander.watcher!.packets(camera());
  const killedAt = Date.now();
  edge.child.kill('SIGKILL');
  await edge.exited;
  const to = nodes.find((n) => n !== edge && n.child.exitCode === null && n.child.signalCode === null)!;
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
  const survivor = nodes.find((n) => n !== origin && n.child.exitCode === null && n.child.signalCode === null)!;
  forgetNotifications();
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
});
