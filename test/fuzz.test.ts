import t from 'tap';
import WebSocket from 'ws';
import { SignalClient } from '../kit/signalClient.js';
import { createLesson, startTestServer } from './support/lessoncast.js';
import { METHODS } from '../src/signalling/protocol.js';
import { readableId } from '../src/signalling/frames.js';

/** Small deterministic PRNG so a failure can be replayed. */
function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const junkValues = (r: () => number): unknown[] => [
  null,
  42,
  -1,
  'x'.repeat(Math.floor(r() * 300)),
  [],
  [1, 2],
  { a: { b: {} } },
  true,
  1.5,
  '',
];

/** One malformed or out-of-place message (never a valid, permitted request). */
function badMessage(r: () => number, i: number, tooBig: number): { payload: string | Buffer; binary?: boolean } {
  const pick = <T>(xs: T[]): T => xs[Math.floor(r() * xs.length)]!;
  switch (i % 10) {
    case 0:
      return { payload: Buffer.from(Array.from({ length: 1 + Math.floor(r() * 200) }, () => Math.floor(r() * 256))).toString('latin1') };
    case 1:
      return { payload: JSON.stringify(pick(junkValues(r))) };
    case 2:
      return { payload: JSON.stringify({ kind: 'request', id: i, method: `nope${i}`, data: {} }) };
    case 3:
      return { payload: JSON.stringify({ kind: pick(['response', 'notification', 'req', 7]), id: i, method: 'join', data: {} }) };
    case 4: {
      // A real method with data of the wrong shape.
      const method = pick(METHODS);
      return {
        payload: JSON.stringify({
          kind: 'request',
          id: i,
          method,
          data: { transportId: pick(junkValues(r)), lessonId: 5, direction: 'sideways', token: 12, participantId: [], spatialLayer: 9 },
        }),
      };
    }
    case 5:
      return {
        payload: JSON.stringify({
          kind: 'request',
          id: i,
          method: 'consume',
          data: { transportId: `t${i}`, producerId: `p${i}`, rtpCapabilities: {} },
        }),
      };
    case 6:
      return {
        payload: JSON.stringify({
          kind: 'request',
          id: i,
          method: 'connectTransport',
          data: { transportId: `t${i}`, dtlsParameters: { role: 'client', fingerprints: 'x' } },
        }),
      };
    case 7:
      return { payload: JSON.stringify({ kind: 'request', id: { nested: i }, method: 'join' }) };
    case 8:
      return { payload: Buffer.from([0, 1, 2, 3, i & 255]), binary: true };
    default:
      return i % 500 === 9
        ? { payload: JSON.stringify({ kind: 'request', id: i, method: 'raiseHand', data: { pad: 'x'.repeat(tooBig) } }) }
        : { payload: `{"kind":"request","id":${i},"method":"join","data":{"lessonId":"${'a'.repeat(200)}"}}` };
  }
}

t.test('5,000+ malformed messages over several connections: each answered, server healthy, nothing leaks', async (t) => {
  const s = await startTestServer();
  t.teardown(() => s.close());
  const lessonId = await createLesson(s);
  const { client: teacher } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  await teacher.request('goLive', {});
  await teacher.request('createTransport', { direction: 'send' });

  const connections = 6;
  const perConnection = 900;
  const r = prng(20261129);
  let errors = 0;
  const codes = new Map<string, number>();
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      const ws = new WebSocket(s.wsUrl);
      await new Promise((res) => ws.once('open', res));
      // Half the connections are authenticated and in the lesson, half are not.
      if (c % 2 === 0) {
        const auth = {
          kind: 'request',
          id: 'auth',
          method: 'authenticate',
          data: { token: await s.token('classroom', `fuzz-${c}`, [lessonId]) },
        };
        ws.send(JSON.stringify(auth));
        ws.send(JSON.stringify({ kind: 'request', id: 'join', method: 'join', data: { lessonId } }));
      }
      let mine = 0;
      const expected = perConnection + (c % 2 === 0 ? 2 : 0);
      const done = new Promise<void>((resolve) => {
        ws.on('message', (raw: Buffer) => {
          const msg = JSON.parse(raw.toString()) as { kind: string; ok?: boolean; id?: unknown; error?: { code: string } };
          if (msg.kind !== 'response') return;
          mine++;
          if (msg.id !== 'auth' && msg.id !== 'join') {
            if (!msg.ok) errors++;
            codes.set(msg.error?.code ?? 'OK', (codes.get(msg.error?.code ?? 'OK') ?? 0) + 1);
          }
          if (mine === expected) resolve();
        });
      });
      for (let i = 0; i < perConnection; i++) {
        const m = badMessage(r, c * perConnection + i, 70_000);
        ws.send(m.payload, { binary: m.binary ?? false });
        if (i % 50 === 0) await new Promise((res) => setImmediate(res));
      }
      await Promise.race([
        done,
        new Promise((_r, rej) => setTimeout(() => rej(new Error(`connection ${c}: ${mine}/${expected} answers`)), 60000)),
      ]);
      t.equal(ws.readyState, WebSocket.OPEN, `connection ${c} still open`);
      ws.close();
    }),
  );
  const total = connections * perConnection;
  t.ok(total >= 5000, `${total} malformed messages sent`);
  t.equal(errors, total, 'every malformed message got an error reply');
  t.ok(!codes.has('INTERNAL'), `no internal errors (codes: ${JSON.stringify(Object.fromEntries(codes))})`);
  t.ok(codes.has('MESSAGE_TOO_LARGE') && codes.has('INVALID_MESSAGE') && codes.has('INVALID_REQUEST'), 'typed codes');

  // The lesson and the instructor's connection go on.
  t.equal((await fetch(`${s.url}/healthz`)).status, 200, 'healthy');
  t.equal((await teacher.request('createTransport', { direction: 'recv' })).transportId.length > 0, true, 'the instructor can still work');

  // Nothing leaks: ending the lesson leaves no router, transport or consumer on the worker.
  const worker = s.internals.pool.slots[0]!.worker;
  t.equal((await worker.dump()).routerIds.length, 1, 'one router while the lesson runs');
  await teacher.request('endLesson', {});
  teacher.close();
  t.same((await worker.dump()).routerIds, [], 'no router left after the lesson ends');
  t.equal(s.internals.pool.slots[0]!.consumers, 0, 'no consumers counted');
});

t.test('the id of a rejected frame is read from its first 512 bytes only, and only when complete there', async (t) => {
  const pad = 'x'.repeat(70_000);
  const frame = (text: string) => Buffer.from(text);
  t.equal(
    readableId(frame(`{"kind":"request","id":"big-1","method":"raiseHand","data":{"pad":"${pad}"}}`), 65536),
    'big-1',
    'a string id before the padding',
  );
  t.equal(readableId(frame(`{"kind":"request","id":42,"data":{"pad":"${pad}"}}`), 65536), 42, 'a number id');
  t.equal(readableId(frame(`{"data":{"id":5,"pad":"${pad}"},"id":7}`), 65536), null, 'not a nested id, nor one past the first bytes');
  t.equal(readableId(frame(`{"kind":"id","id":"a\\"b","data":{"pad":"${pad}"}}`), 65536), 'a"b', 'strings are skipped, escapes read');
  t.equal(readableId(frame('{"kind":"request","id":12'), 65536), null, 'a number cut off at the end is not read');
  t.equal(readableId(frame('{"kind":"request","id":9,"method":'), 65536), 9, 'a frame that is not JSON still gives its id');
  t.equal(
    readableId(frame(`{"kind":"request","data":{"pad":"${'y'.repeat(600)}"},"id":3}`), 400),
    null,
    'an id after the first 512 bytes of a large frame is not looked for',
  );
});
