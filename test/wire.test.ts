/**
 * The wire shared by /ws and /api/live/feed (src/signalling/socket.ts), on a stand-in socket:
 * typed refusals, size limits, the send cap and ping liveness, without a server.
 */
import { EventEmitter } from 'node:events';
import t from 'tap';
import type { WebSocket } from 'ws';
import type { LessoncastError } from '../src/errors.js';
import { Liveness, WireSocket, type WireSocketOptions } from '../src/signalling/socket.js';

/** Just what WireSocket and Liveness touch of a ws socket. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readonly CONNECTING = 0;
  readyState = 1;
  bufferedAmount = 0;
  sent: string[] = [];
  closed?: { code: number; reason: string };
  pings = 0;
  terminated = false;
  send(msg: string): void {
    this.sent.push(msg);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
    this.readyState = 3;
  }
  ping(): void {
    this.pings++;
  }
  terminate(): void {
    this.terminated = true;
    this.readyState = 3;
    this.emit('close');
  }
  last(): Record<string, unknown> {
    return JSON.parse(this.sent.at(-1)!) as Record<string, unknown>;
  }
}

const quiet = { debug: () => undefined, error: () => undefined };
const timers: Liveness[] = [];
t.teardown(() => timers.forEach((l) => l.stop()));

function wire(over: Partial<WireSocketOptions> = {}): { socket: FakeSocket; wire: WireSocket; requests: unknown[]; liveness: Liveness } {
  const socket = new FakeSocket();
  const requests: unknown[] = [];
  const liveness = new Liveness(3600);
  timers.push(liveness);
  const w = new WireSocket(socket as unknown as WebSocket, {
    maxMessageBytes: 100,
    log: quiet,
    liveness,
    onRequest: (r) => requests.push(r),
    ...over,
  });
  return { socket, wire: w, requests, liveness };
}

const frame = (socket: FakeSocket, text: string | Buffer, binary = false): boolean => socket.emit('message', Buffer.from(text), binary);

t.test('requests pass; everything else is answered with a typed error and the request id when it can be read', async (t) => {
  const { socket, requests } = wire();
  frame(socket, JSON.stringify({ kind: 'request', id: 1, method: 'leave', data: {} }));
  t.same(requests, [{ id: 1, method: 'leave', data: {} }], 'a request');
  t.equal(socket.sent.length, 0, 'nothing answered for it by the wire');
  frame(socket, '{nope');
  t.match(socket.last(), { kind: 'response', id: null, ok: false, error: { code: 'INVALID_MESSAGE' } }, 'not JSON');
  frame(socket, JSON.stringify({ kind: 'request', id: 7, method: 'join', data: { lessonId: 5 } }));
  t.match(socket.last(), { id: 7, error: { code: 'INVALID_REQUEST' } }, 'bad data, with its id');
  frame(socket, '{"kind":"request"}', true);
  t.match(socket.last(), { id: null, error: { code: 'INVALID_MESSAGE', message: 'binary frames are not part of the protocol' } }, 'binary');
  t.equal(requests.length, 1);
});

t.test('size: MESSAGE_TOO_LARGE up to 4× the limit (counted, with the id), closed with 1009 beyond', async (t) => {
  const counted: string[] = [];
  const refused: LessoncastError[] = [];
  const { socket } = wire({ countFrame: (code) => counted.push(code), onRefused: (e) => refused.push(e) });
  frame(socket, `{"kind":"request","id":"big","method":"authenticate","data":{"token":"${'x'.repeat(200)}"}}`);
  t.match(socket.last(), { id: 'big', ok: false, error: { code: 'MESSAGE_TOO_LARGE' } });
  t.same(counted, ['MESSAGE_TOO_LARGE']);
  t.same(
    refused.map((e) => e.code),
    ['MESSAGE_TOO_LARGE'],
    'the owner hears of the refusal after the answer',
  );
  t.notOk(socket.closed, 'the connection goes on');
  frame(socket, 'x'.repeat(401));
  t.same(socket.closed, { code: 1009, reason: 'message too big' });
  t.equal(counted.length, 2);
});

t.test('send: nothing to a closed socket; past maxBufferedBytes messages are dropped and counted', async (t) => {
  let dropped = 0;
  const { socket, wire: w } = wire({ maxBufferedBytes: 10, onDropped: () => dropped++ });
  t.ok(w.send({ a: 1 }));
  t.equal(socket.sent[0], '{"a":1}');
  t.ok(w.send('"already json"'), 'strings go as they are');
  socket.bufferedAmount = 11;
  t.notOk(w.send({ a: 2 }), 'a lagging reader');
  t.equal(dropped, 1);
  socket.bufferedAmount = 0;
  socket.readyState = 3;
  t.notOk(w.send({ a: 3 }), 'closed');
  t.equal(dropped, 1, 'a closed socket is not a dropped message');
  t.equal(socket.sent.length, 2);
});

t.test('liveness: a socket that misses a pong is terminated; one that answers stays', async (t) => {
  const liveness = new Liveness(0.02);
  t.teardown(() => liveness.stop());
  const quietOne = new FakeSocket();
  const answering = new FakeSocket();
  answering.ping = function (this: FakeSocket) {
    this.pings++;
    queueMicrotask(() => this.emit('pong'));
  };
  liveness.watch(quietOne as unknown as WebSocket);
  liveness.watch(answering as unknown as WebSocket);
  await new Promise((r) => setTimeout(r, 150));
  t.ok(quietOne.terminated, 'no pong: terminated');
  t.equal(quietOne.pings, 1, 'after one unanswered ping');
  t.notOk(answering.terminated, 'answered every ping');
  t.ok(answering.pings >= 3, `pinged ${answering.pings} times`);
});
