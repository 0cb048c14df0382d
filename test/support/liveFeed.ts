import WebSocket from 'ws';
import type { LiveEvent, LiveSnapshot } from '../../src/live/types.js';

export interface FeedReply {
  ok: boolean;
  id: number | string | null;
  data?: { participantId: string; role: string; live: LiveSnapshot };
  error?: { code: string; message: string };
}

/** A control-room client of /api/live/feed: authenticates in the first message, then collects `live` notifications. */
export class FeedClient {
  readonly events: LiveEvent[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiters = new Set<{ pred: (e: LiveEvent) => boolean; resolve: (e: LiveEvent) => void }>();
  private replyResolve?: (r: FeedReply) => void;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (raw: Buffer) => {
      const msg = JSON.parse(raw.toString()) as {
        kind: string;
        id?: FeedReply['id'];
        event?: string;
        data?: unknown;
        ok?: boolean;
        error?: FeedReply['error'];
      };
      if (msg.kind === 'response') {
        this.replyResolve?.({
          ok: Boolean(msg.ok),
          id: msg.id ?? null,
          ...(msg.data ? { data: msg.data as FeedReply['data'] } : {}),
          ...(msg.error ? { error: msg.error } : {}),
        });
        return;
      }
      if (msg.kind !== 'notification' || msg.event !== 'live') return;
      const e = msg.data as LiveEvent;
      this.events.push(e);
      for (const w of [...this.waiters]) {
        if (w.pred(e)) {
          this.waiters.delete(w);
          w.resolve(e);
        }
      }
    });
  }

  static async connect(httpUrl: string): Promise<FeedClient> {
    const ws = new WebSocket(httpUrl.replace(/^http/, 'ws') + '/api/live/feed');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new FeedClient(ws);
  }

  /** Sends one raw frame and resolves with the next response. */
  send(frame: string): Promise<FeedReply> {
    const reply = new Promise<FeedReply>((resolve) => (this.replyResolve = resolve));
    this.ws.send(frame);
    return reply;
  }

  authenticate(token: string): Promise<FeedReply> {
    return this.send(JSON.stringify({ kind: 'request', id: 1, method: 'authenticate', data: { token } }));
  }

  static async open(httpUrl: string, token: string): Promise<{ feed: FeedClient; live: LiveSnapshot }> {
    const feed = await FeedClient.connect(httpUrl);
    const reply = await feed.authenticate(token);
    if (!reply.ok || !reply.data) throw new Error(`feed refused: ${JSON.stringify(reply.error)}`);
    return { feed, live: reply.data.live };
  }

  /** The first event (already received or still to come) matching the predicate. */
  waitFor(pred: (e: LiveEvent) => boolean, timeoutMs = 15000, what = 'live event'): Promise<LiveEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.waiters.add(w);
      setTimeout(() => {
        if (this.waiters.delete(w)) reject(new Error(`timed out waiting for ${what}`));
      }, timeoutMs).unref();
    });
  }

  close(): void {
    this.ws.close();
  }
}
