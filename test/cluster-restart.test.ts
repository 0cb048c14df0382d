/**
 * A node of a cluster killed and started again at once under the same id, long before the others
 * could see it gone (`redis.nodeTtlSeconds` 30 here): only its own word (`node.started`) tells
 * its edges that their relays, pipes and edge media belong to a previous life. Two processes on
 * loopback sharing Redis and PostgreSQL; the origin restarted, then an edge restarted.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { TokenService } from '../src/auth/tokens.js';
import { LessonPage } from '../kit/lessonPage.js';
import { runningNode } from './support/lessoncast.js';
import { startPostgres } from './support/postgres.js';
import { startRedis } from './support/redis.js';

const redis = await startRedis();
const pg = await startPostgres();
const tokenSecret = randomBytes(32).toString('hex');
const tokens = new TokenService(new TextEncoder().encode(tokenSecret), 3600);
const env = {
  LESSONCAST_REDIS_URL: redis.url,
  LESSONCAST_REDIS_KEY_PREFIX: 'restart-test:',
  LESSONCAST_REDIS_HEARTBEAT_SECONDS: '1',
  // Far longer than a restart takes: nobody sees the node gone.
  LESSONCAST_REDIS_NODE_TTL_SECONDS: '30',
  LESSONCAST_CATALOG_URL: await pg.database(),
  LESSONCAST_CLUSTER_ENABLED: 'true',
  LESSONCAST_CLUSTER_SECRET: randomBytes(32).toString('hex'),
  LESSONCAST_CLUSTER_LEASE_SECONDS: '30',
  LESSONCAST_AUTH_TOKEN_SECRET: tokenSecret,
  LESSONCAST_LESSONS_RECONNECT_GRACE_SECONDS: '60',
  LESSONCAST_LOG_LEVEL: 'warn',
};
type Node = Awaited<ReturnType<typeof runningNode>>;
const nodes = new Map<string, Node>();
async function start(id: string): Promise<Node> {
  const node = await runningNode(id, env, tokens);
  nodes.set(id, node);
  return node;
}
async function crash(n: Node): Promise<void> {
  n.child.kill('SIGKILL');
  await n.exited;
  n.cleanup();
}
await start('node-a');
await start('node-b');
const sockets: Array<{ close(): unknown }> = [];
const pageOptions = { onClient: (c: { close(): unknown }) => void sockets.push(c) };
t.teardown(async () => {
  for (const page of [studio, room]) await page.dropMedia();
  for (const c of sockets) c.close();
  for (const n of nodes.values()) {
    if (n.child.exitCode === null && n.child.signalCode === null) {
      n.child.kill('SIGTERM');
      await n.exited;
    }
    n.cleanup();
  }
  await redis.stop();
  await pg.close();
});
async function holder(lessonId: string): Promise<string | null> {
  const v = (await redis.cli('GET', `restart-test:origin:${lessonId}`)).trim();
  return v ? v.slice(v.indexOf(':') + 1) : null;
}

const a = nodes.get('node-a')!;
const created = await fetch(`${a.url}/api/lessons`, {
  method: 'POST',
  headers: { authorization: `Bearer ${await a.issuer.token('admin', 'admin-1')}`, 'content-type': 'application/json' },
  body: JSON.stringify({ title: 'Restarted', instructorId: 'teacher-1', record: false }),
});
const lessonId = ((await created.json()) as { lesson: { id: string } }).lesson.id;
const studio = new LessonPage<Node>('instructor', 'teacher-1', lessonId, pageOptions);
const room = new LessonPage<Node>('classroom', 'school-1', lessonId, pageOptions);
const camera = (): string => studio.sender?.producerId('video') ?? '';

t.test('the origin killed and started again at once: its edge forgets its previous life', async (t) => {
  await studio.join(a);
  await studio.client.request('goLive', {});
  await room.join(nodes.get('node-b')!);
  t.ok((await room.cameraAfter(Date.now(), camera)) >= 0, 'the classroom on node-b (an edge) receives the camera');
  room.client.notifications.length = 0;
  const killedAt = Date.now();
  await crash(a);
  const again = await start('node-a');
  t.pass(`node-a running again ${Date.now() - killedAt} ms after the kill (node TTL 30 s: nobody saw it gone)`);
  await room.client.waitFor('reconnectRequested', () => true, 15_000);
  t.pass('the edge classroom is asked to join again');
  const rejoined = room.rejoinHere();
  await studio.join(again);
  await rejoined;
  const ms = await room.cameraAfter(killedAt, camera);
  t.comment(`the edge classroom has the camera again ${ms} ms after the kill`);
  t.equal(await holder(lessonId), 'node-a', 'node-a is still the origin (the same holder took its lease back)');
});

t.test('an edge killed and started again at once: the origin forgets the sessions it relayed', async (t) => {
  const b = nodes.get('node-b')!;
  await crash(b);
  const again = await start('node-b');
  const { rejoined } = await room.join(again);
  t.equal(rejoined, true, 'the classroom reconnecting through it keeps its seat');
  t.ok((await room.cameraAfter(Date.now(), camera)) >= 0, 'and receives the camera through the restarted edge');
  const live = await fetch(`${nodes.get('node-a')!.url}/api/lessons/${lessonId}`, {
    headers: { authorization: `Bearer ${await a.issuer.token('admin', 'admin-1')}` },
  });
  const detail = (await live.json()) as { participants?: Array<{ id: string; connected: boolean }> };
  const seats = (detail.participants ?? []).filter((p) => p.id === 'school-1');
  t.equal(seats.length, 1, 'one seat for the school, not a stale one beside it');
});
