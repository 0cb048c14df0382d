/**
 * The node-to-node channel over a real Redis: requests answered, errors carried with their code,
 * bodies validated, and nothing accepted without the cluster secret, twice, too old, or too big.
 */
import t from 'tap';
import { Type } from 'typebox';
import { type ClusterChannel } from '../src/cluster/channel.js';
import { LessoncastError } from '../src/errors.js';
import { clusterRig } from './support/cluster.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('cluster channel', async (t) => {
  const rig = await clusterRig('channel-test');
  const { keyPrefix, connect } = rig;
  const node = (nodeId: string, secret?: string, now?: () => number): ClusterChannel =>
    rig.channel(nodeId, { ...(secret ? { secret } : {}), ...(now ? { now } : {}) });
  const a = node('node-a');
  const b = node('node-b');
  const forger = node('node-f', 'another-secret-that-is-long-enough-to-pass');
  const skewed = node('node-s', undefined, () => Date.now() - 60_000);
  t.teardown(() => rig.close());
  await Promise.all([a, b, forger, skewed].map((c) => c.start()));
  t.throws(() => node('x', 'short'), /at least 32 bytes/, 'a short secret is refused at start');

  // A request and its answer; the answer knows who asked.
  b.handle('echo', Type.Object({ text: Type.String({ maxLength: 100 }) }, { additionalProperties: false }), (body, from) => ({
    text: body.text,
    from,
  }));
  b.handle('fails', Type.Object({}), () => {
    throw new LessoncastError('LESSON_NOT_FOUND', 'no such lesson', { lessonId: 'L9' });
  });
  t.same(await a.request('node-b', 'echo', { text: 'hello' }), { text: 'hello', from: 'node-a' }, 'a request is answered');

  const err = (await a.request('node-b', 'fails', {}).catch((e: unknown) => e)) as LessoncastError;
  t.equal(err.code, 'LESSON_NOT_FOUND', "the handler's error comes back with its code");
  t.same(err.details, { lessonId: 'L9', node: 'node-b' }, 'and its details, with the node that answered');

  const invalid = (await a.request('node-b', 'echo', { text: 1 }).catch((e: unknown) => e)) as LessoncastError;
  t.equal(invalid.code, 'INVALID_REQUEST', 'a body that does not match the schema: INVALID_REQUEST');
  const unknown = (await a.request('node-b', 'nothing', {}).catch((e: unknown) => e)) as LessoncastError;
  t.equal(unknown.code, 'INVALID_REQUEST', 'an unknown kind: INVALID_REQUEST');

  const started = Date.now();
  const timeout = (await a.request('node-gone', 'echo', { text: 'x' }, 300).catch((e: unknown) => e)) as LessoncastError;
  t.equal(timeout.code, 'CLUSTER_TIMEOUT', 'a node that does not answer: CLUSTER_TIMEOUT');
  t.ok(Date.now() - started < 1000, 'after the timeout asked for');

  // Without the secret: nothing is answered, and the refusal is counted.
  const forged = (await forger.request('node-b', 'echo', { text: 'let me in' }, 500).catch((e: unknown) => e)) as LessoncastError;
  t.equal(forged.code, 'CLUSTER_TIMEOUT', 'a node with another secret gets no answer');
  t.equal(b.refused().signature, 1, 'node-b counted one bad signature');

  // An envelope from 60 s ago: refused as stale.
  await skewed.request('node-b', 'echo', { text: 'old' }, 500).catch(() => undefined);
  t.equal(b.refused().stale, 1, 'an envelope older than the skew window is refused');

  // A captured envelope published again: refused as a replay; a tampered one fails its signature.
  const spy = connect();
  const captured: string[] = [];
  spy.on('message', (_c: string, m: string) => captured.push(m));
  await spy.subscribe(`${keyPrefix}cluster:node-b`);
  let calls = 0;
  b.handle('count', Type.Object({ n: Type.Integer() }), () => ++calls);
  await a.request('node-b', 'count', { n: 1 });
  await sleep(50);
  t.equal(captured.length, 1, 'the spy saw the request');
  const pub = connect();
  await pub.publish(`${keyPrefix}cluster:node-b`, captured[0]!);
  const tampered = JSON.parse(captured[0]!) as { id: string; body: { n: number } };
  tampered.id = 'fresh-id';
  tampered.body.n = 2;
  await pub.publish(`${keyPrefix}cluster:node-b`, JSON.stringify(tampered));
  await pub.publish(`${keyPrefix}cluster:node-b`, 'not json');
  await pub.publish(`${keyPrefix}cluster:node-b`, 'x'.repeat((1 << 20) + 1));
  await sleep(200);
  t.equal(calls, 1, 'the handler ran once');
  t.match(b.refused(), { replayed: 1, signature: 2, malformed: 1, oversize: 1 }, 'replay, tampering, garbage and size are each refused');

  // Notices to every node.
  const heard: string[] = [];
  for (const [c, name] of [
    [a, 'a'],
    [b, 'b'],
  ] as const)
    c.onNotice('hello', Type.Object({ from: Type.String() }), (body, from) => heard.push(`${name}<-${from}:${body.from}`));
  await b.notify('*', 'hello', { from: 'b' });
  await a.notify('node-b', 'hello', { from: 'a' });
  await sleep(200);
  t.same(heard.sort(), ['a<-node-b:b', 'b<-node-a:a'], 'a broadcast reaches the others (not its sender); a direct notice its addressee');
});
