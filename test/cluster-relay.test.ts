/**
 * The edge's half of a relayed session (src/cluster/relay.ts) over a real Redis channel, against
 * an "origin" that is only a channel: every relayed request is answered once — by the origin, or
 * with an error when the origin does not answer in time or is gone — so a client never waits on
 * a request nobody will answer.
 */
import t from 'tap';
import { Type } from 'typebox';
import { SessionRelays } from '../src/cluster/relay.js';
import type { Session } from '../src/signalling/session.js';
import { clusterRig, quietLog } from './support/cluster.js';

const rig = await clusterRig('relay');
t.teardown(() => rig.close());
const edgeChannel = rig.channel('edge');
const originChannel = rig.channel('origin');
await Promise.all([edgeChannel.start(), originChannel.start()]);
const relays = new SessionRelays({
  channel: edgeChannel,
  log: quietLog,
  attachRelayed: () => {
    throw new Error('no sessions come from the origin here');
  },
  answerTimeoutMs: 400,
});

/** What the origin received, and how to answer it as a real origin does (text of a response). */
const received: Array<{ sessionId: string; request: { id: number | string; method: string } }> = [];
originChannel.handle('session.open', Type.Object({}, { additionalProperties: true }), () => ({}));
originChannel.onNotice('session.request', Type.Object({}, { additionalProperties: true }), (body) => void received.push(body as never));
const answer = (sessionId: string, id: number | string) =>
  originChannel.notify('edge', 'session.message', { sessionId, message: JSON.stringify({ kind: 'response', id, ok: true, data: {} }) });

/** A session as the relay sees it: what reached its client. */
function fakeSession(id: string) {
  const seen = { delivered: [] as string[], errors: [] as Array<{ id: number | string; code: string }>, notified: [] as string[] };
  const session = {
    id,
    principal: { id: 'school-1', role: 'classroom', name: 'School 1' },
    deliver: (text: string) => seen.delivered.push(text),
    replyTo: (rid: number | string, err: { code: string }) => seen.errors.push({ id: rid, code: err.code }),
    unrelay: () => undefined,
    notify: (event: string) => seen.notified.push(event),
  };
  return { session: session as unknown as Session, seen };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const request = (id: number, method = 'join') => ({ id, method, data: {} }) as never;

t.test('an answered request is delivered once; a late duplicate is dropped', async (t) => {
  const { session, seen } = fakeSession('s1');
  const relay = await relays.relay(session, 'origin');
  relay.forward(request(1));
  while (received.length === 0) await sleep(10);
  await answer('s1', 1);
  await answer('s1', 1);
  await sleep(200);
  t.equal(seen.delivered.length, 1, 'the answer reached the client once');
  await sleep(400);
  t.same(seen.errors, [], 'and no timeout followed it');
  relay.closed();
});

t.test('a request the origin never answers gets CLUSTER_TIMEOUT in time; its late answer is dropped', async (t) => {
  const { session, seen } = fakeSession('s2');
  const relay = await relays.relay(session, 'origin');
  relay.forward(request(7));
  await sleep(700);
  t.same(seen.errors, [{ id: 7, code: 'CLUSTER_TIMEOUT' }], 'answered with an error after the wait');
  await answer('s2', 7);
  await sleep(200);
  t.same(seen.delivered, [], 'the late answer does not reach the client as a second answer');
  relay.closed();
});

t.test('requests waiting on an origin that is gone are answered UNAVAILABLE, and the client is asked to join again', async (t) => {
  const { session, seen } = fakeSession('s3');
  const relay = await relays.relay(session, 'origin');
  relay.forward(request(1, 'consume'));
  relay.forward(request(2, 'consume'));
  await sleep(50);
  relays.nodeLost('origin');
  t.same(
    seen.errors.map((e) => [e.id, e.code]),
    [
      [1, 'UNAVAILABLE'],
      [2, 'UNAVAILABLE'],
    ],
    'each waiting request answered',
  );
  t.same(seen.notified, ['reconnectRequested']);
  await sleep(600);
  t.equal(seen.errors.length, 2, 'no timeout fires after that');
});
