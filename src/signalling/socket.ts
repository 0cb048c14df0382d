import type { RawData, WebSocket } from 'ws';
import { asLessoncastError, LessoncastError, type ErrorCode } from '../errors.js';
import { CLOSE_FACTOR, frameBuffer, readableId, tooLarge } from './frames.js';
import { parseRequest, type ParsedRequest } from './validate.js';

export interface WireSocketOptions {
  maxMessageBytes: number;
  log: { debug(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Added to this socket's log lines (e.g. the session id). */
  logFields?: object;
  /** A frame was refused for its size, by error code (metrics). */
  countFrame?(code: ErrorCode): void;
  /** Watches this socket: dropped when it misses a pong. */
  liveness: Liveness;
  /**
   * Past this many bytes not yet written to the peer, messages are dropped instead of queued: a
   * client that lags behind must not grow our memory. Unset: no cap (every reply matters).
   */
  maxBufferedBytes?: number;
  /** A message was dropped for maxBufferedBytes (metrics). */
  onDropped?(): void;
  /** A frame that is a well-formed request (its data matches its method's schema). */
  onRequest(request: ParsedRequest): void;
  /** A frame was refused and its error already answered; the connection goes on unless this closes it. */
  onRefused?(error: LessoncastError): void;
}

/**
 * One WebSocket of the protocol, whichever endpoint it came through (/ws, /api/live/feed): turns
 * frames into requests or typed error replies (with the request's id when it can be read), keeps
 * the size limits (MESSAGE_TOO_LARGE up to CLOSE_FACTOR × the limit, close 1009 beyond) and sends
 * the server's messages.
 */
export class WireSocket {
  constructor(
    private readonly socket: WebSocket,
    private readonly opts: WireSocketOptions,
  ) {
    socket.on('message', (raw, isBinary) => this.onMessage(raw, isBinary));
    // The app's WebSocket error handler logs and counts protocol errors (1007, 1009) once; this adds the socket's fields for debugging.
    socket.on('error', (err) => opts.log.debug({ ...opts.logFields, err: err.message }, 'websocket error'));
    opts.liveness.watch(socket);
  }

  /** Sends one message (an object, or JSON serialised once for many sockets). False when it was not sent: closed, or dropped behind the cap. */
  send(msg: object | string): boolean {
    if (this.socket.readyState !== this.socket.OPEN) return false;
    if (this.opts.maxBufferedBytes !== undefined && this.socket.bufferedAmount > this.opts.maxBufferedBytes) {
      this.opts.onDropped?.();
      return false;
    }
    this.socket.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
    return true;
  }

  /** Answers request `id` with an error; an INTERNAL one keeps its cause for the log, not the client. */
  replyError(id: number | string | null, err: unknown): LessoncastError {
    const e = asLessoncastError(err);
    if (e.code === 'INTERNAL') this.opts.log.error({ ...this.opts.logFields, err: e.details?.['cause'] }, 'request failed');
    const details = e.code === 'INTERNAL' ? undefined : e.details;
    this.send({ kind: 'response', id, ok: false, error: { code: e.code, message: e.message, ...(details ? { details } : {}) } });
    return e;
  }

  close(code = 1000, reason = ''): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) this.socket.close(code, reason);
  }

  private onMessage(raw: RawData, isBinary: boolean): void {
    const frame = frameBuffer(raw);
    const max = this.opts.maxMessageBytes;
    if (frame.length > max) return this.oversize(frame);
    if (isBinary) return this.refuse(null, new LessoncastError('INVALID_MESSAGE', 'binary frames are not part of the protocol'));
    let request: ParsedRequest;
    try {
      request = parseRequest(frame.toString('utf8'));
    } catch (err) {
      return this.refuse(readableId(frame, max), err);
    }
    this.opts.onRequest(request);
  }

  /** Above the limit: a typed answer (with the id from the frame's start); above CLOSE_FACTOR × it: closed (1009). */
  private oversize(frame: Buffer): void {
    const max = this.opts.maxMessageBytes;
    const closing = frame.length > max * CLOSE_FACTOR;
    this.opts.countFrame?.('MESSAGE_TOO_LARGE');
    this.opts.log.debug(
      { ...this.opts.logFields, bytes: frame.length, max },
      closing ? 'frame far too large; socket closed' : 'frame too large',
    );
    if (closing) return this.close(1009, 'message too big');
    this.refuse(readableId(frame, max), tooLarge(frame.length, max));
  }

  private refuse(id: number | string | null, err: unknown): void {
    const e = this.replyError(id, err); // not inside `onRefused?.(…)`: an absent hook would skip the reply too
    this.opts.onRefused?.(e);
  }
}

/**
 * Pings an endpoint's sockets every interval and terminates those that did not answer the previous
 * ping: a peer gone without a close (a closed laptop, a dropped NAT mapping) would otherwise hold
 * its seat, its buffers and its place in every broadcast for ever.
 */
export class Liveness {
  /** Open sockets and whether each answered the last ping. */
  private readonly answered = new Map<WebSocket, boolean>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalSeconds: number) {
    this.timer = setInterval(() => this.tick(), intervalSeconds * 1000);
    this.timer.unref();
  }

  watch(socket: WebSocket): void {
    this.answered.set(socket, true);
    socket.on('pong', () => {
      if (this.answered.has(socket)) this.answered.set(socket, true);
    });
    socket.once('close', () => this.answered.delete(socket));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    for (const [socket, answered] of this.answered) {
      if (!answered) {
        socket.terminate();
        continue;
      }
      this.answered.set(socket, false);
      socket.ping();
    }
  }
}
