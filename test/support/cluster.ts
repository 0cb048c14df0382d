import { Redis } from 'ioredis';
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
