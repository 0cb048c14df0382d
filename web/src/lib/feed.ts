/**
 * The control room's live feed (WebSocket /api/live/feed): authenticate as in
 * the signalling protocol, then receive `live` notifications; reconnects by itself.
 */
import type { LiveEvent } from '../../../src/live/types.js';
import { Emitter } from './emitter.js';

export type FeedState = 'connecting' | 'open' | 'reconnecting' | 'refused';

const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

/** The browser end of the control-room feed (the server end is src/signalling/liveFeed.ts). */
export class LiveFeedClient extends Emitter<{ event: [LiveEvent]; state: [FeedState]; opened: [] }> {
  state: FeedState = 'connecting';
  private ws?: WebSocket;
  private attempt = 0;
  private timer?: number;
  private stopped = false;

  constructor(private readonly token: string) {
    super();
  }

  start(): void {
    if (this.stopped) return;
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/live/feed`);
    this.ws = ws;
    ws.addEventListener('open', () =>
      ws.send(JSON.stringify({ kind: 'request', id: 1, method: 'authenticate', data: { token: this.token } })),
    );
    ws.addEventListener('message', (ev) => {
      let msg: { kind?: string; id?: unknown; ok?: boolean; event?: string; data?: unknown };
      try {
        msg = JSON.parse(String(ev.data)) as typeof msg;
      } catch {
        return;
      }
      if (msg.kind === 'response' && msg.id === 1) {
        if (msg.ok) {
          this.attempt = 0;
          this.setState('open');
          this.emit('opened');
        } else {
          this.stop('refused');
          ws.close();
        }
      } else if (msg.kind === 'notification' && msg.event === 'live' && msg.data && typeof msg.data === 'object') {
        this.emit('event', msg.data as LiveEvent);
      }
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws || this.stopped) return;
      this.setState('reconnecting');
      const delay = BACKOFF_MS[Math.min(this.attempt++, BACKOFF_MS.length - 1)]!;
      this.timer = window.setTimeout(() => this.start(), delay);
    });
  }

  close(): void {
    this.stop(this.state);
    this.ws?.close();
  }

  private stop(final: FeedState): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.setState(final);
  }

  private setState(s: FeedState): void {
    if (s === this.state) return;
    this.state = s;
    this.emit('state', s);
  }
}
