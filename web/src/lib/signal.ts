/**
 * The signalling protocol over one WebSocket (docs/protocol.md), typed and
 * checked with the very schemas the server validates against.
 */
// The schema checker alone: typebox/value would bundle every value operation (~70 KB more).
import { Check } from 'typebox/schema';
import {
  RequestSchemas,
  type Method,
  type NotificationData,
  type NotificationEvent,
  type RequestData,
  type ResponseData,
  type ServerMessage,
} from '../../../src/signalling/protocol.js';
import { Emitter } from './emitter.js';

/** An error reply from the server (or a local failure) with its protocol code. */
export class SignalError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'SignalError';
  }
}

/** Codes after which trying again with the same token cannot help. */
export const FATAL_CODES = new Set(['UNAUTHENTICATED', 'TOKEN_EXPIRED', 'TOKEN_REVOKED', 'FORBIDDEN', 'LESSON_NOT_FOUND', 'LESSON_ENDED']);

export type NotificationEvents = { [E in NotificationEvent]: [NotificationData[E]] };
type SignalEvents = NotificationEvents & {
  /** Every notification, for those who forward them all. */
  notification: [event: NotificationEvent, data: unknown];
  close: [code: number, reason: string];
};

const REQUEST_TIMEOUT_MS = 15_000;

export function signallingUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** One WebSocket to /ws: requests with their replies, and the server's notifications as events. */
export class SignalConnection extends Emitter<SignalEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: number }>();
  private closedByUs = false;

  private constructor(private readonly ws: WebSocket) {
    super();
    ws.addEventListener('message', (ev) => this.onMessage(String(ev.data)));
    ws.addEventListener('close', (ev) => {
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new SignalError('DISCONNECTED', 'connection closed'));
      }
      this.pending.clear();
      this.emit('close', ev.code, ev.reason);
    });
  }

  static connect(url = signallingUrl(), timeoutMs = 10_000): Promise<SignalConnection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new SignalError('DISCONNECTED', 'could not reach the server'));
      }, timeoutMs);
      ws.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(new SignalConnection(ws));
      });
      ws.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new SignalError('DISCONNECTED', 'could not reach the server'));
      });
    });
  }

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get closedByClient(): boolean {
    return this.closedByUs;
  }

  request<M extends Method>(method: M, data: RequestData<M>): Promise<ResponseData[M]> {
    // Same schema as the server: a malformed request is a bug here, caught before it travels.
    if (!Check(RequestSchemas[method], data)) {
      return Promise.reject(new SignalError('INVALID_REQUEST', `bad data for ${method}`));
    }
    if (!this.open) return Promise.reject(new SignalError('DISCONNECTED', 'not connected'));
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ kind: 'request', id, method, data }));
    return new Promise((resolve, reject) => {
      const timer = window.setTimeout(() => {
        this.pending.delete(id);
        reject(new SignalError('TIMEOUT', `${method} got no answer`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    });
  }

  close(): void {
    this.closedByUs = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }

  private onMessage(text: string): void {
    let msg: ServerMessage;
    try {
      msg = JSON.parse(text) as ServerMessage;
    } catch {
      return;
    }
    if (msg.kind === 'response') {
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id as number);
      clearTimeout(p.timer);
      if (msg.ok) p.resolve(msg.data);
      else p.reject(new SignalError(msg.error.code, msg.error.message, msg.error.details));
      return;
    }
    if (msg.kind === 'notification') {
      (this.emit as (e: string, d: unknown) => void)(msg.event, msg.data);
      this.emit('notification', msg.event, msg.data);
    }
  }
}
