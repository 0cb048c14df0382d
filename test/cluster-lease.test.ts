/**
 * The origin lease against a real Redis: one holder at a time, a higher epoch for every new term,
 * and a holder that stops counting itself origin on its own clock (a paused node wakes up
 * knowing its term is over), whatever Redis still says.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { OriginLeases, type OriginLease } from '../src/cluster/lease.js';
import { testRedis } from './support/redis.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('origin lease: exclusive terms, rising epochs, fenced renewals', async (t) => {
  const server = await testRedis();
  const redis = new Redis(server.url, { lazyConnect: false });
  t.teardown(async () => {
    redis.disconnect();
    await server.close();
  });
  const keyPrefix = `lease-test-${process.pid}-${Date.now()}:`;
  let clockA = 0;
  const a = new OriginLeases({ redis, keyPrefix, nodeId: 'node-a', ttlMs: 400, now: () => clockA });
  const b = new OriginLeases({ redis, keyPrefix, nodeId: 'node-b', ttlMs: 400 });

  const first = await a.acquire('L1');
  t.ok('lease' in first, 'a free lesson: node-a becomes origin');
  const leaseA = (first as { lease: OriginLease }).lease;
  t.equal(leaseA.epoch, 1, 'the first term has epoch 1');
  t.same(await b.acquire('L1'), { heldBy: { node: 'node-a', epoch: 1 } }, 'node-b is told who holds it');
  t.same(await a.holder('L1'), { node: 'node-a', epoch: 1 }, 'holder() reads the term');
  const again = await a.acquire('L1');
  t.equal('lease' in again && again.lease.epoch, 1, "the holder asking again keeps its term's epoch");

  // The holder renews within its term: Redis extends it.
  clockA = 200;
  t.equal(await leaseA.renew(), true, 'renewed within the term');

  // node-a is paused past its TTL (its clock jumps; Redis expires the key meanwhile).
  await sleep(500);
  clockA = 200 + 450;
  t.equal(leaseA.valid, false, 'after a pause longer than the TTL the holder knows, by its own clock, that its term may be over');
  t.equal(await leaseA.renew(), false, 'and does not renew it');

  const taken = await b.acquire('L1');
  t.ok('lease' in taken, 'node-b takes the expired lease');
  const leaseB = (taken as { lease: OriginLease }).lease;
  t.equal(leaseB.epoch, 2, 'a new term has a higher epoch (the fencing token)');

  // A stale holder's calls cannot touch the new term.
  await leaseA.release();
  t.same(await b.holder('L1'), { node: 'node-b', epoch: 2 }, "the old holder's release does not remove the new term");
  const stale = await a.renewTerm('L1', { node: 'node-a', epoch: 1 });
  t.equal(stale.ok, false, "a renewal with the old term's token is refused by Redis itself");
  const wrongEpoch = await a.renewTerm('L1', { node: 'node-b', epoch: 1 });
  t.equal(wrongEpoch.ok, false, 'a renewal must name the exact term (node and epoch)');

  t.equal(await leaseB.renew(), true, 'the new holder renews');
  await leaseB.release();
  t.equal(await b.holder('L1'), null, 'a clean release frees the lesson at once');
  const third = await a.acquire('L1');
  t.equal('lease' in third && third.lease.epoch, 3, 'the next term continues the epochs');
  if ('lease' in third) await third.lease.release();

  // Two nodes racing for a free lesson: exactly one wins.
  const results = await Promise.all([a.acquire('L2'), b.acquire('L2'), a.acquire('L2'), b.acquire('L2')]);
  const winners = new Set(results.filter((r) => 'lease' in r).map((r) => r.lease.term.node));
  t.equal(winners.size, 1, `one node wins a race for the lease (${[...winners].join()})`);
});
