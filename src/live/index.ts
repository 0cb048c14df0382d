import type { Logger } from '../logger.js';
import type { LiveState } from './liveState.js';
import { MemoryLiveHub } from './memoryLiveState.js';
import { RedisLiveState } from './redisLiveState.js';

export type { LiveState } from './liveState.js';
export type * from './types.js';

export interface LiveStateConfig {
  /** redis:// URL; empty = in-process. */
  url: string;
  keyPrefix: string;
  nodeTtlSeconds: number;
}

/** Redis when a URL is configured (several nodes share it); otherwise the in-process store. */
export function createLiveState(config: LiveStateConfig, nodeId: string, log: Logger): LiveState {
  if (!config.url) return new MemoryLiveHub(config.nodeTtlSeconds * 1000, log).state(nodeId);
  return new RedisLiveState({ url: config.url, keyPrefix: config.keyPrefix, nodeId, nodeTtlSeconds: config.nodeTtlSeconds, log });
}
