import { Redis } from 'ioredis';
import { Watcher, publish } from '../../kit/peers.js';
import type { RtcSender } from '../../kit/rtcSender.js';
import { SignalClient, type TokenIssuer } from '../../kit/signalClient.js';
import type { Role } from '../../src/domain/index.js';
import type { ResponseData } from '../../src/signalling/protocol.js';
import { ClusterChannel } from '../../src/cluster/channel.js';
import { testRedis } from './redis.js';

export const CLUSTER_SECRET = 'a-cluster-secret-of-at-least-32-characters';
export const quietLog = { info() {}, warn() {}, error() {}, debug() {} } as never;

/** A real Redis and the channels of "nodes" on it, each with its own two connections; close() ends them all. */
export async function clusterRig(name: string) {
  const server = await testRedis();
  const connections: Redis[] = [];
  const channels: ClusterChannel[] = [];
  const connect = (): Redis => {
    const r = new Redis(server.url);
    connections.push(r);
    return r;
  };
  const keyPrefix = `${name}-${process.pid}-${Date.now()}:`;
  return {
    keyPrefix,
    connect,
    /** A node's channel (not started). */
    channel(nodeId: string, opts: { secret?: string; now?: () => number } = {}): ClusterChannel {
      const c = new ClusterChannel({
        redis: connect(),
        subscriber: connect(),
        keyPrefix,
        nodeId,
        secret: opts.secret ?? CLUSTER_SECRET,
        log: quietLog,
        ...(opts.now ? { now: opts.now } : {}),
      });
      channels.push(c);
      return c;
    },
    async close(): Promise<void> {
      for (const c of channels) c.close();
      for (const r of connections) r.disconnect();
      await server.close();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node of a test cluster as clients see it: its id and how to reach it with a token. */
export interface ClusterNode {
  id: string;
  issuer: TokenIssuer;
}

/** A participant as the pages behave: joins through `node`, and joins again when told or cut off. */
export class ClusterPage {
  client!: SignalClient;
  watcher?: Watcher;
  sender?: RtcSender;
  node!: ClusterNode;
  /** Every socket it opened (a rejoin elsewhere opens another): close() ends them all. */
  private readonly sockets: SignalClient[] = [];
  constructor(
    readonly role: Role,
    readonly id: string,
    readonly lessonId: string,
  ) {}

  async join(node: ClusterNode): Promise<{ rejoined: boolean }> {
    this.node = node;
    this.client = await SignalClient.connect(node.issuer.wsUrl);
    this.sockets.push(this.client);
    await this.client.request('authenticate', { token: await node.issuer.token(this.role, this.id, [this.lessonId]) });
    return this.rejoinHere();
  }

  /** `reconnectRequested` on the same socket: close media, join again (and again, a few times, as the pages do). */
  async rejoinHere(): Promise<{ rejoined: boolean }> {
    await this.dropMedia();
    for (let attempt = 0; ; attempt++) {
      try {
        const joined = await this.client.request('join', { lessonId: this.lessonId });
        await this.media(joined);
        return { rejoined: joined.rejoined };
      } catch (err) {
        if (attempt >= 5) throw err;
        await sleep(500);
      }
    }
  }

  private async media(joined: ResponseData['join']) {
    if (this.role === 'instructor') this.sender = await publish(this.client, joined.routerRtpCapabilities);
    else this.watcher = await Watcher.start(this.client, joined.producers, { connectTimeoutMs: 20_000 });
  }

  private async dropMedia() {
    await this.watcher?.close();
    await this.sender?.close();
    this.watcher = undefined;
    this.sender = undefined;
  }

  async close() {
    await this.dropMedia();
    for (const c of this.sockets) c.close();
  }

  /** Ms from `since` until RTP of the instructor's camera arrives here. */
  async cameraAfter(since: number, camera: () => string): Promise<number> {
    for (;;) {
      const id = camera();
      if (this.watcher && id) {
        try {
          await this.watcher.firstPacket(id, 1000);
          return Date.now() - since;
        } catch {
          // not yet (consumed when newProducer arrives)
        }
      }
      if (Date.now() - since > 40_000) throw new Error(`${this.id}: no camera 40 s after ${new Date(since).toISOString()}`);
      await sleep(100);
    }
  }
}
