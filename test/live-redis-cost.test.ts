/**
 * What live state costs Redis: one busy node (default heartbeat and sampling
 * settings) against a redis-server of its own, counted with INFO commandstats
 * during a join storm and in steady state. Prints the numbers (docs/monitoring.md
 * uses them); asserts only that the live view holds what the node has.
 */
import t from 'tap';
import type { LiveSnapshot } from '../src/live/types.js';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, startTestServer } from './support/lessoncast.js';
import { startRedis, type TestRedis } from './support/redis.js';

const LESSONS = 4;
const SCHOOLS_PER_LESSON = 50;
const STEADY_SECONDS = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Commands Redis executed since the last reset, without our own INFO/CONFIG calls. */
async function counts(redis: TestRedis): Promise<{ total: number; byCommand: Record<string, number>; inputBytes: number }> {
  const stats = await redis.cli('info', 'commandstats');
  const byCommand: Record<string, number> = {};
  for (const m of stats.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) {
    if (m[1] === 'info' || m[1]!.startsWith('config')) continue;
    byCommand[m[1]!] = Number(m[2]);
  }
  const info = await redis.cli('info', 'stats');
  const inputBytes = Number(/^total_net_input_bytes:(\d+)/m.exec(info)?.[1] ?? 0);
  return { total: Object.values(byCommand).reduce((a, b) => a + b, 0), byCommand, inputBytes };
}

const reset = (redis: TestRedis) => redis.cli('config', 'resetstat');

const redis = await startRedis();
t.teardown(() => redis.stop());
// Default live-state and sampling settings: heartbeat 2 s, TTL 10 s, sampling every 5 s.
const s = await startTestServer({ nodeId: 'busy-node', redis: { url: redis.url } });
const clients: SignalClient[] = [];
t.teardown(async () => {
  for (const c of clients) c.close();
  await s.close();
});

t.test('Redis commands of one busy node: join storm and steady state', async (t) => {
  const lessons: string[] = [];
  for (let i = 0; i < LESSONS; i++) {
    const id = await createLesson(s, { title: `Lesson ${i}`, instructorId: `teacher-${i}` });
    const { client } = await SignalClient.join(s, 'instructor', `teacher-${i}`, id);
    await client.request('goLive', {});
    clients.push(client);
    lessons.push(id);
  }
  await sleep(500);

  await reset(redis);
  const stormStart = performance.now();
  await Promise.all(
    lessons.map(async (lessonId, li) => {
      for (let k = 0; k < SCHOOLS_PER_LESSON; k += 10) {
        const wave = await Promise.all(
          Array.from({ length: 10 }, (_, j) => SignalClient.join(s, 'classroom', `school-${li}-${k + j}`, lessonId)),
        );
        clients.push(...wave.map((w) => w.client));
      }
    }),
  );
  await s.internals.live.flush();
  const stormMs = performance.now() - stormStart;
  const storm = await counts(redis);
  const joins = LESSONS * SCHOOLS_PER_LESSON;
  t.comment(`join storm: ${joins} classrooms joined in ${stormMs.toFixed(0)} ms (${((joins * 1000) / stormMs).toFixed(0)} joins/s)`);
  t.comment(
    `  Redis commands: ${storm.total} (${((storm.total * 1000) / stormMs).toFixed(1)}/s, ${(storm.total / joins).toFixed(3)} per join), ${storm.inputBytes} bytes in: ${JSON.stringify(storm.byCommand)}`,
  );

  const view = (await (
    await fetch(`${s.url}/api/live`, { headers: { authorization: `Bearer ${await s.token('monitor', 'cr')}` } })
  ).json()) as LiveSnapshot;
  t.equal(
    view.lessons.reduce((n, l) => n + l.schools.length, 0),
    joins,
    'the live view in Redis holds every school',
  );

  await sleep(1000);
  await reset(redis);
  await sleep(STEADY_SECONDS * 1000);
  const steady = await counts(redis);
  t.comment(
    `steady state (${joins} schools, ${LESSONS} lessons, heartbeat ${s.server.config.redis.heartbeatSeconds} s, sampling ${s.server.config.monitor.sampleSeconds} s), ${STEADY_SECONDS} s:`,
  );
  t.comment(
    `  Redis commands: ${steady.total} (${(steady.total / STEADY_SECONDS).toFixed(2)}/s), ${(steady.inputBytes / STEADY_SECONDS / 1024).toFixed(1)} KiB/s in: ${JSON.stringify(steady.byCommand)}`,
  );
  t.ok(steady.total > 0, 'the node keeps its entries alive');
});
