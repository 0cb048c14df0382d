import type { Logger } from '../logger.js';
import { Redis, type RedisOptions } from 'ioredis';
import { assembleSnapshot, deliverToEach, isLiveEvent, schoolKey, stampEvent } from './liveState.js';
import type { LiveListener, LiveState, NodeAnnouncement } from './liveState.js';
import type { LiveEvent, LiveEventBody, LiveLesson, LiveNode, LiveSchool, LiveSnapshot, SchoolQuality } from './types.js';

export interface RedisLiveOptions {
  url: string;
  keyPrefix: string;
  nodeId: string;
  nodeTtlSeconds: number;
  log: Logger;
  /** Writes made within this window go out as one pipeline (join storms cost a few commands, not a few per join). */
  flushMs?: number;
}

/** Events kept for other nodes while Redis is away (quality samples are not kept: they are stale by then). */
const MAX_OUTBOX = 1000;

/**
 * Removes a dead node from the index only if its heartbeat key is really gone,
 * atomically, so exactly one sweeper wins and a node that just came back is not removed.
 */
const CLAIM_DEAD_NODE = `if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('ZREM', KEYS[2], ARGV[1]) else return 0 end`;

/**
 * Live state in Redis, shared by every node.
 *
 * Keys (prefix `redis.keyPrefix`):
 *   nodes                  ZSET node id → last heartbeat (ms), the index sweepers scan
 *   node:<id>              STRING node JSON, PX nodeTtl: the node is alive while it exists
 *   node:<id>:lessons      HASH lesson id → lesson JSON
 *   node:<id>:schools      HASH "<lesson id>/<school id>" → school JSON
 *   events                 pub/sub channel; each message is a JSON array of events
 *   quality                pub/sub channel of quality samples, subscribed only while this
 *                          node wants other nodes' samples (a control-room feed is open)
 * Lesson and school hashes outlive the node key (6× TTL) so the sweeper that
 * claims a dead node can say what was lost; readers skip nodes whose key is gone.
 *
 * This node keeps its own entries in memory too: writes are write-behind, and
 * after a Redis restart or outage everything is re-published from that copy.
 */
export class RedisLiveState implements LiveState {
  readonly backend = 'redis' as const;
  readonly nodeId: string;
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly k: {
    nodes: string;
    node: (id: string) => string;
    lessons: (id: string) => string;
    schools: (id: string) => string;
    channel: string;
    quality: string;
  };
  private readonly ttlMs: number;
  private readonly leftoverTtlMs: number;
  private readonly flushMs: number;

  private readonly lessons = new Map<string, LiveLesson>();
  private readonly schools = new Map<string, { lessonId: string; school: LiveSchool }>();
  private node: LiveNode | undefined;
  private readonly dirtyLessons = new Set<string>();
  private readonly dirtySchools = new Set<string>();
  private outbox: LiveEvent[] = [];
  /** Redis may have lost or missed our writes: rewrite everything on the next flush. */
  private needsFull = true;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<LiveListener>();
  private lastError: string | undefined;
  private outage = false;
  private remoteQuality = false;
  private closed = false;

  constructor(private readonly opts: RedisLiveOptions) {
    this.nodeId = opts.nodeId;
    const p = opts.keyPrefix;
    this.k = {
      nodes: `${p}nodes`,
      node: (id) => `${p}node:${id}`,
      lessons: (id) => `${p}node:${id}:lessons`,
      schools: (id) => `${p}node:${id}:schools`,
      channel: `${p}events`,
      quality: `${p}quality`,
    };
    this.ttlMs = opts.nodeTtlSeconds * 1000;
    this.leftoverTtlMs = this.ttlMs * 6;
    this.flushMs = opts.flushMs ?? 50;
    const common: RedisOptions = {
      connectionName: `lessoncast:${opts.nodeId}`,
      connectTimeout: 3000,
      // Reconnect for ever, at most every 2 s: the node serves its lessons meanwhile.
      retryStrategy: (times) => Math.min(100 * times, 2000),
    };
    // Commands fail at once while disconnected: the in-memory copy is re-published on reconnect instead of queued.
    this.redis = new Redis(opts.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    this.sub = new Redis(opts.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.redis.on('ready', () => this.onReady());
    this.redis.on('error', (err: Error) => this.onError(err));
    this.redis.on('close', () => this.onError(new Error('connection closed')));
    this.sub.on('error', (err: Error) => (this.lastError = err.message));
    this.sub.on('message', (_channel: string, message: string) => this.onMessage(message));
    this.sub.subscribe(this.k.channel).catch((err: Error) => opts.log.warn({ err: err.message }, 'live state: subscribe failed'));
  }

  // -- writes (this node's own entries) ---------------------------------------

  async heartbeat(announcement: NodeAnnouncement): Promise<void> {
    if (this.closed) return;
    this.node = { ...announcement, id: this.nodeId, heartbeatAt: new Date().toISOString() };
    if (this.redis.status !== 'ready') return;
    try {
      const res = await this.redis
        .pipeline()
        .set(this.k.node(this.nodeId), JSON.stringify(this.node), 'PX', this.ttlMs)
        .zadd(this.k.nodes, Date.now(), this.nodeId)
        .pexpire(this.k.lessons(this.nodeId), this.leftoverTtlMs)
        .pexpire(this.k.schools(this.nodeId), this.leftoverTtlMs)
        .exec();
      if (res?.some(([err]) => err)) throw res.find(([err]) => err)![0]!;
      // Newly added to the index: Redis restarted, or a sweeper declared us dead. Re-publish all.
      if (res?.[1]?.[1] === 1) this.needsFull = true;
      if (this.needsFull) this.schedule(0);
    } catch (err) {
      this.lastError = (err as Error).message;
      this.needsFull = true;
    }
  }

  putLesson(lesson: LiveLesson): void {
    this.lessons.set(lesson.id, structuredClone(lesson));
    this.dirtyLessons.add(lesson.id);
    this.schedule();
  }

  removeLesson(lessonId: string): void {
    this.lessons.delete(lessonId);
    this.dirtyLessons.add(lessonId);
    for (const [k, v] of this.schools) {
      if (v.lessonId !== lessonId) continue;
      this.schools.delete(k);
      this.dirtySchools.add(k);
    }
    this.schedule();
  }

  putSchool(lessonId: string, school: LiveSchool): void {
    const key = schoolKey(lessonId, school.schoolId);
    this.schools.set(key, { lessonId, school: structuredClone(school) });
    this.dirtySchools.add(key);
    this.schedule();
  }

  removeSchool(lessonId: string, schoolId: string): void {
    const key = schoolKey(lessonId, schoolId);
    if (this.schools.delete(key)) this.dirtySchools.add(key);
    this.schedule();
  }

  setQuality(lessonId: string, entries: SchoolQuality[]): void {
    for (const e of entries) {
      const key = schoolKey(lessonId, e.schoolId);
      const rec = this.schools.get(key);
      if (!rec) continue;
      rec.school = { ...rec.school, connected: e.connected, quality: e.quality };
      this.dirtySchools.add(key);
    }
    this.schedule();
  }

  // -- event bus -----------------------------------------------------------------

  publish(body: LiveEventBody): LiveEvent {
    const event = stampEvent(body, this.nodeId);
    this.deliver(event);
    if (this.closed) return event;
    if (this.redis.status !== 'ready' && event.type === 'quality') return event;
    this.outbox.push(event);
    if (this.outbox.length > MAX_OUTBOX) this.outbox.splice(0, this.outbox.length - MAX_OUTBOX);
    this.schedule();
    return event;
  }

  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setRemoteQuality(on: boolean): void {
    if (on === this.remoteQuality || this.closed) return;
    this.remoteQuality = on;
    const op = on ? this.sub.subscribe(this.k.quality) : this.sub.unsubscribe(this.k.quality);
    op.catch((err: Error) => this.opts.log.warn({ err: err.message }, 'live state: quality (un)subscribe failed'));
  }

  private deliver(event: LiveEvent): void {
    deliverToEach(this.listeners, event, this.opts.log);
  }

  private onMessage(message: string): void {
    let events: unknown;
    try {
      events = JSON.parse(message);
    } catch {
      return;
    }
    if (!Array.isArray(events)) return;
    // Our own events were delivered locally when published.
    for (const e of events) if (isLiveEvent(e) && e.node !== this.nodeId) this.deliver(e);
  }

  // -- reads -------------------------------------------------------------------------

  async snapshot(): Promise<LiveSnapshot> {
    const problem = this.problem();
    if (problem) return this.localSnapshot(problem);
    try {
      const ids = await this.redis.zrange(this.k.nodes, 0, -1);
      const pipe = this.redis.pipeline();
      for (const id of ids) pipe.get(this.k.node(id)).hgetall(this.k.lessons(id)).hgetall(this.k.schools(id));
      const res = (await pipe.exec()) ?? [];
      const nodes = [];
      for (let i = 0; i < ids.length; i++) {
        const node = parseJson<LiveNode>(res[i * 3]?.[1]);
        if (!node) continue; // heartbeat expired: dead, whatever is left of it
        const lessons = Object.values((res[i * 3 + 1]?.[1] ?? {}) as Record<string, string>)
          .map((v) => parseJson<LiveLesson>(v))
          .filter((l): l is LiveLesson => !!l);
        const schools = Object.entries((res[i * 3 + 2]?.[1] ?? {}) as Record<string, string>)
          .map(([field, v]) => ({ lessonId: field.slice(0, field.indexOf('/')), school: parseJson<LiveSchool>(v) }))
          .filter((s): s is { lessonId: string; school: LiveSchool } => !!s.school);
        nodes.push({ node, lessons, schools });
      }
      return assembleSnapshot(nodes);
    } catch (err) {
      return this.localSnapshot(`redis: ${(err as Error).message}`);
    }
  }

  private localSnapshot(problem: string): LiveSnapshot {
    const own = this.node
      ? [
          {
            node: structuredClone(this.node),
            lessons: structuredClone([...this.lessons.values()]),
            schools: structuredClone([...this.schools.values()]),
          },
        ]
      : [];
    return { ...assembleSnapshot(own), degraded: `${problem}; showing this node only` };
  }

  async sweep(): Promise<void> {
    if (this.closed || this.redis.status !== 'ready') return;
    try {
      const stale = await this.redis.zrangebyscore(this.k.nodes, '-inf', `(${Date.now() - this.ttlMs}`);
      for (const id of stale) {
        if (id === this.nodeId) continue;
        const claimed = await this.redis.eval(CLAIM_DEAD_NODE, 2, this.k.node(id), this.k.nodes, id);
        if (claimed !== 1) continue;
        const res =
          (await this.redis
            .pipeline()
            .hgetall(this.k.lessons(id))
            .hgetall(this.k.schools(id))
            .del(this.k.lessons(id), this.k.schools(id))
            .exec()) ?? [];
        const lessons = Object.values((res[0]?.[1] ?? {}) as Record<string, string>)
          .map((v) => parseJson<LiveLesson>(v))
          .filter((l): l is LiveLesson => !!l);
        const schoolFields = Object.keys(res[1]?.[1] ?? {});
        this.publish({
          type: 'nodeLost',
          lostNode: id,
          lessons: lessons.map((l) => ({ id: l.id, title: l.title, schools: schoolFields.filter((f) => f.startsWith(`${l.id}/`)).length })),
        });
      }
    } catch (err) {
      this.lastError = (err as Error).message;
    }
  }

  problem(): string | undefined {
    if (this.closed) return 'live state closed';
    if (this.redis.status === 'ready' && this.sub.status === 'ready') return undefined;
    const status = this.redis.status === 'ready' ? `subscriber ${this.sub.status}` : this.redis.status;
    return `redis ${status}${this.lastError ? ` (${this.lastError})` : ''}`;
  }

  // -- writing out --------------------------------------------------------------

  private schedule(delayMs = this.flushMs): void {
    if (this.closed) return;
    if (this.flushTimer && delayMs > 0) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, delayMs);
  }

  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const run = this.flushing.then(() => this.writeOut());
    this.flushing = run.catch(() => undefined);
    return this.flushing;
  }

  private async writeOut(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    if (this.needsFull) return this.republish();
    if (this.dirtyLessons.size === 0 && this.dirtySchools.size === 0 && this.outbox.length === 0) return;
    const id = this.nodeId;
    const lessonSet: Record<string, string> = {};
    const lessonDel: string[] = [];
    for (const lid of this.dirtyLessons) {
      const l = this.lessons.get(lid);
      if (l) lessonSet[lid] = JSON.stringify(l);
      else lessonDel.push(lid);
    }
    const schoolSet: Record<string, string> = {};
    const schoolDel: string[] = [];
    for (const key of this.dirtySchools) {
      const s = this.schools.get(key);
      if (s) schoolSet[key] = JSON.stringify(s.school);
      else schoolDel.push(key);
    }
    this.dirtyLessons.clear();
    this.dirtySchools.clear();
    const events = this.outbox;
    this.outbox = [];
    const pipe = this.redis.pipeline();
    if (lessonDel.length) pipe.hdel(this.k.lessons(id), ...lessonDel);
    if (Object.keys(lessonSet).length) pipe.hset(this.k.lessons(id), lessonSet).pexpire(this.k.lessons(id), this.leftoverTtlMs);
    if (schoolDel.length) pipe.hdel(this.k.schools(id), ...schoolDel);
    if (Object.keys(schoolSet).length) pipe.hset(this.k.schools(id), schoolSet).pexpire(this.k.schools(id), this.leftoverTtlMs);
    publishBatch(pipe, this.k, events);
    await this.run(pipe, events);
  }

  /** Rewrites all of this node's entries in one transaction (after a reconnect, a restart, or a failed write). */
  private async republish(): Promise<void> {
    const id = this.nodeId;
    this.needsFull = false;
    this.dirtyLessons.clear();
    this.dirtySchools.clear();
    const events = this.outbox;
    this.outbox = [];
    const multi = this.redis.multi().del(this.k.lessons(id), this.k.schools(id));
    if (this.lessons.size) {
      multi.hset(this.k.lessons(id), Object.fromEntries([...this.lessons].map(([lid, l]) => [lid, JSON.stringify(l)])));
      multi.pexpire(this.k.lessons(id), this.leftoverTtlMs);
    }
    if (this.schools.size) {
      multi.hset(this.k.schools(id), Object.fromEntries([...this.schools].map(([key, s]) => [key, JSON.stringify(s.school)])));
      multi.pexpire(this.k.schools(id), this.leftoverTtlMs);
    }
    if (this.node) {
      this.node = { ...this.node, heartbeatAt: new Date().toISOString() };
      multi.set(this.k.node(id), JSON.stringify(this.node), 'PX', this.ttlMs).zadd(this.k.nodes, Date.now(), id);
    }
    publishBatch(multi, this.k, events);
    await this.run(multi, events);
  }

  private async run(batch: ReturnType<Redis['pipeline']>, events: LiveEvent[]): Promise<void> {
    try {
      const res = await batch.exec();
      const failed = !res || res.some(([err]) => err);
      if (failed) throw res?.find(([err]) => err)?.[0] ?? new Error('transaction aborted');
    } catch (err) {
      this.lastError = (err as Error).message;
      this.needsFull = true;
      // Keep the events for other nodes (bounded); state is rewritten whole next time.
      this.outbox = [...events.filter((e) => e.type !== 'quality'), ...this.outbox].slice(-MAX_OUTBOX);
    }
  }

  // -- connection ------------------------------------------------------------------

  private onReady(): void {
    if (this.outage) this.opts.log.info({ node: this.nodeId }, 'live state: redis reachable again; re-publishing this node');
    this.outage = false;
    this.lastError = undefined;
    this.needsFull = true;
    this.schedule(0);
  }

  private onError(err: Error): void {
    this.lastError = err.message;
    if (this.closed || this.outage) return;
    this.outage = true;
    this.needsFull = true;
    this.opts.log.warn(
      { node: this.nodeId, err: err.message },
      'live state: redis unreachable; lessons go on, state is re-published on reconnect',
    );
  }

  async close(opts: { keepEntries?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    await bounded(this.flush(), 2000);
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.listeners.clear();
    if (this.redis.status === 'ready' && !opts.keepEntries) {
      const id = this.nodeId;
      await bounded(
        this.redis.pipeline().del(this.k.node(id), this.k.lessons(id), this.k.schools(id)).zrem(this.k.nodes, id).exec(),
        2000,
      ).catch(() => undefined);
    }
    for (const c of [this.sub, this.redis]) {
      if (c.status === 'ready') await bounded(c.quit(), 1000).catch(() => undefined);
      c.disconnect();
    }
  }
}

/** Samples go to their own channel, which only nodes showing them to a control room subscribe to. */
function publishBatch(batch: ReturnType<Redis['pipeline']>, k: { channel: string; quality: string }, events: LiveEvent[]): void {
  const quality = events.filter((e) => e.type === 'quality');
  const others = quality.length ? events.filter((e) => e.type !== 'quality') : events;
  if (others.length) batch.publish(k.channel, JSON.stringify(others));
  if (quality.length) batch.publish(k.quality, JSON.stringify(quality));
}

function parseJson<T>(value: unknown): T | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    return JSON.parse(value) as T;
  } catch {
    return undefined;
  }
}

function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}
