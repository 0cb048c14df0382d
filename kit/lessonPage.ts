/**
 * A participant that behaves as the pages do in a cluster: joins through a node, joins again on
 * the same socket when told (`reconnectRequested`), and is reconnected to another node by its
 * caller when its socket closes. Shared by test/cluster-failover.test.ts and bench/cascade.ts.
 */
import type { Role } from '../src/domain/index.js';
import type { ResponseData } from '../src/signalling/protocol.js';
import { Watcher, publish } from './peers.js';
import type { RtcSender } from './rtcSender.js';
import { SignalClient, type TokenIssuer } from './signalClient.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface PageNode {
  id: string;
  issuer: TokenIssuer;
}

export interface LessonPageOptions {
  /** Told of every socket opened (for teardown). */
  onClient?: (client: SignalClient) => void;
  /** The instructor's publish options (kit/peers.ts). */
  publish?: Parameters<typeof publish>[2];
}

export class LessonPage<N extends PageNode = PageNode> {
  client!: SignalClient;
  watcher?: Watcher;
  sender?: RtcSender;
  node!: N;
  /** Where its (re)join is now: for a bench to say where one got stuck. */
  step = 'idle';
  constructor(
    readonly role: Role,
    readonly id: string,
    readonly lessonId: string,
    private readonly opts: LessonPageOptions = {},
  ) {}

  async join(node: N): Promise<{ rejoined: boolean }> {
    this.node = node;
    this.step = `connect to ${node.id}`;
    this.client = await SignalClient.connect(node.issuer.wsUrl);
    this.opts.onClient?.(this.client);
    this.step = `authenticate at ${node.id}`;
    await this.client.request('authenticate', { token: await node.issuer.token(this.role, this.id, [this.lessonId]) });
    return this.rejoinHere();
  }

  /** `reconnectRequested` on the same socket: close media, join again (and again, a few times, as the pages do). */
  async rejoinHere(): Promise<{ rejoined: boolean }> {
    await this.dropMedia();
    for (let attempt = 0; ; attempt++) {
      try {
        this.step = `join at ${this.node.id} (attempt ${attempt + 1})`;
        const joined = await this.client.request('join', { lessonId: this.lessonId });
        this.step = `media at ${this.node.id}`;
        await this.media(joined);
        this.step = `ready at ${this.node.id}`;
        return { rejoined: joined.rejoined };
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  }

  private async media(joined: ResponseData['join']) {
    if (this.role === 'instructor') this.sender = await publish(this.client, joined.routerRtpCapabilities, this.opts.publish);
    else this.watcher = await Watcher.start(this.client, joined.producers, { connectTimeoutMs: 20_000 });
  }

  async dropMedia() {
    await this.watcher?.close();
    await this.sender?.close();
    this.watcher = undefined;
    this.sender = undefined;
  }

  async close() {
    await this.dropMedia();
    this.client.close();
  }

  /**
   * Ms from `since` (a Date.now() time) until the first RTP of the instructor's camera arrived
   * here: the packet's own arrival time, however late this is asked (0 if it came before `since`).
   */
  async cameraAfter(since: number, camera: () => string, timeoutMs = 40_000): Promise<number> {
    for (;;) {
      const id = camera();
      const watcher = this.watcher;
      if (watcher && id) {
        try {
          const sinceCreated = await watcher.firstPacket(id, 1000);
          const arrived = Date.now() - (performance.now() - (watcher.rtc.createdAt + sinceCreated));
          return Math.max(0, arrived - since);
        } catch {
          // not yet (consumed when newProducer arrives)
        }
      }
      if (Date.now() - since > timeoutMs)
        throw new Error(`${this.id}: no camera ${timeoutMs / 1000} s after ${new Date(since).toISOString()}`);
      await sleep(100);
    }
  }
}
