import t from 'tap';
import { chooseOrigin, isFresh, loadPerCore, LESSON_WEIGHT } from '../src/cluster/placement.js';
import type { LiveNode } from '../src/live/types.js';

const node = (id: string, load: Partial<LiveNode['load']>, heartbeatAt = '2026-12-07T08:00:00.000Z'): LiveNode => ({
  id,
  address: `https://${id}.example`,
  startedAt: '2026-12-07T07:00:00.000Z',
  heartbeatAt,
  load: { workers: 2, lessons: 0, schools: 0, consumers: 0, ...load },
});

t.test('load per core counts consumers and lessons, per worker', async (t) => {
  t.equal(loadPerCore(node('a', { workers: 2, consumers: 100, lessons: 1 })), (100 + LESSON_WEIGHT) / 2);
  t.equal(loadPerCore(node('a', { workers: 0, consumers: 10 })), 10, 'no workers counts as one (never divides by zero)');
});

t.test('the origin is the healthy node with the least load per core', async (t) => {
  const busy = node('a', { consumers: 400, lessons: 4 });
  const idleBig = node('b', { workers: 8, consumers: 400, lessons: 4 });
  const idle = node('c', { consumers: 10 });
  t.equal(chooseOrigin([busy, idleBig, idle].map((n) => ({ node: n, healthy: true }))), 'c');
  t.equal(chooseOrigin([busy, idleBig].map((n) => ({ node: n, healthy: true }))), 'b', 'more cores carry more');
  t.equal(
    chooseOrigin([
      { node: idle, healthy: false },
      { node: busy, healthy: true },
    ]),
    'a',
    'an unhealthy node is never chosen',
  );
  t.equal(chooseOrigin([{ node: node('d', { workers: 0 }), healthy: true }]), null, 'a node without workers cannot host media');
  t.equal(chooseOrigin([]), null, 'nobody: null');
  t.equal(
    chooseOrigin([node('z', {}), node('m', {}), node('q', {})].map((n) => ({ node: n, healthy: true }))),
    'm',
    'ties go to the lowest id, so two nodes placing at once agree',
  );
});

t.test('freshness of a heartbeat', async (t) => {
  const now = Date.parse('2026-12-07T08:00:05.000Z');
  t.equal(isFresh(node('a', {}), now, 10_000), true);
  t.equal(isFresh(node('a', {}), now, 4000), false);
  t.equal(isFresh(node('a', {}, 'garbage'), now, 10_000), false, 'an unreadable heartbeat is not fresh');
});
