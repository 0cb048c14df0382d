/**
 * A participant's place in one lesson that survives network trouble: it
 * connects, authenticates, joins, and after a drop connects and joins again
 * (the server keeps the seat, hand and floor for its grace period), until the
 * lesson ends or the token stops being accepted.
 */
import type { NotificationData, NotificationEvent, ResponseData } from '../../../src/signalling/protocol.js';
import { Emitter } from './emitter.js';
import { FATAL_CODES, SignalConnection, SignalError, type NotificationEvents } from './signal.js';

export type JoinInfo = ResponseData['join'];
export type AuthInfo = ResponseData['authenticate'];

export type LinkState = 'connecting' | 'joined' | 'reconnecting' | 'ended' | 'failed' | 'closed';

type LinkEvents = NotificationEvents & {
  /** A (re)join succeeded: set media up afresh on this client. */
  joined: [info: JoinInfo, client: SignalConnection, auth: AuthInfo];
  /** The link is down; media on the old client is gone. A reconnect follows by itself. */
  down: [reason: string];
  state: [state: LinkState];
  /** The link will not come back (token refused, lesson gone, replaced by another tab). */
  failed: [error: SignalError];
};

/** Closed with this code when another connection took over the same participant. */
const REPLACED_CLOSE_CODE = 4001;
/** Closed with this code when the token (its device, person or school) was revoked. */
const REVOKED_CLOSE_CODE = 4401;
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];

export class LessonLink extends Emitter<LinkEvents> {
  state: LinkState = 'connecting';
  client?: SignalConnection;
  private attempt = 0;
  private auth?: AuthInfo;
  private retryTimer?: number;
  private stopped = false;

  constructor(
    private token: string,
    readonly lessonId: string,
  ) {
    super();
  }

  /** A fresh token for the next reconnect (a board re-trades its credential before the session expires). */
  setToken(token: string): void {
    this.token = token;
  }

  start(): void {
    void this.connect();
  }

  /** The open connection, for a request now; throws DISCONNECTED while the link is down. */
  connected(): SignalConnection {
    if (!this.client?.open) throw new SignalError('DISCONNECTED', 'not connected');
    return this.client;
  }

  /** Leave for good (gives up the seat at once) and close. */
  async leave(): Promise<void> {
    const client = this.client;
    this.stop('closed');
    if (client?.open) await client.request('leave', {}).catch(() => undefined);
    client?.close();
  }

  /** Close without leaving (the seat waits out the grace period). */
  close(): void {
    this.stop('closed');
    this.client?.close();
  }

  /** The lesson asked for media to be set up again (a worker died): join again on this connection. */
  async rejoin(): Promise<void> {
    const client = this.client;
    if (!client?.open) return;
    this.emit('down', 'media lost');
    try {
      const info = await client.request('join', { lessonId: this.lessonId });
      this.emit('joined', info, client, this.auth!);
    } catch {
      client.close(); // the close handler schedules a fresh connection
    }
  }

  private setState(s: LinkState): void {
    if (this.state === s) return;
    this.state = s;
    this.emit('state', s);
  }

  private stop(final: LinkState): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.setState(final);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let client: SignalConnection | undefined;
    try {
      client = await SignalConnection.connect();
      if (this.stopped) return client.close();
      this.client = client;
      client.on('notification', (event, data) => this.forward(event, data));
      client.on('close', (code) => this.onClose(client!, code));
      this.auth = await client.request('authenticate', { token: this.token });
      const info = await client.request('join', { lessonId: this.lessonId });
      this.attempt = 0;
      this.setState(info.lesson.state === 'ended' ? 'ended' : 'joined');
      this.emit('joined', info, client, this.auth);
    } catch (err) {
      const e = err instanceof SignalError ? err : new SignalError('INTERNAL', String(err));
      if (FATAL_CODES.has(e.code)) {
        if (e.code === 'LESSON_ENDED') this.stop('ended');
        else this.stop('failed');
        this.emit('failed', e);
        client?.close();
        return;
      }
      // Unreachable, or the server was restarting: try again shortly.
      client?.close();
      if (!client || this.client !== client) this.scheduleRetry();
    }
  }

  private forward(event: NotificationEvent, data: unknown): void {
    if (event === 'lessonEnded') this.stop('ended');
    (this.emit as (e: string, d: unknown) => void)(event, data);
    if (event === 'reconnectRequested') void this.rejoin();
    // The server has let go of this lesson's sessions: nothing more will come on this socket.
    if (event === 'lessonEnded') this.client?.close();
  }

  private onClose(client: SignalConnection, code: number): void {
    if (this.client !== client) return;
    this.client = undefined;
    if (this.stopped) return;
    if (code === REPLACED_CLOSE_CODE) {
      this.stop('failed');
      this.emit('failed', new SignalError('REPLACED', 'this lesson was opened in another window'));
      return;
    }
    if (code === REVOKED_CLOSE_CODE) {
      this.stop('failed');
      this.emit('failed', new SignalError('TOKEN_REVOKED', 'this access was revoked'));
      return;
    }
    this.emit('down', 'connection lost');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    this.setState('reconnecting');
    const delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)]!;
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => void this.connect(), delay);
  }
}

export type { NotificationData };
