import { Redis } from 'ioredis';
import { Type } from 'typebox';
import { LessoncastError } from '../errors.js';
import type { Lesson, LessonDetail } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import type { LiveState } from '../live/liveState.js';
import type { Logger } from '../logger.js';
import type { EdgeQualityPort } from '../monitor/ports.js';
import type { SchoolSample } from '../monitor/qualitySampler.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import type { Session, SessionRelay } from '../signalling/session.js';
import { ClusterChannel } from './channel.js';
import { ClusterMedia, MediaEvent } from './clusterMedia.js';
import { EdgeHost } from './edgeHost.js';
import { OriginLeases, type OriginLease, type OriginTerm } from './lease.js';
import { PipeExports, type PipeAddresses } from './pipes.js';
import { chooseOrigin, isFresh, type PlacementCandidate } from './placement.js';
import { SessionRelays, type RelayDeps } from './relay.js';

export interface ClusterOptions {
  nodeId: string;
  redisUrl: string;
  keyPrefix: string;
  secret: string;
  leaseSeconds: number;
  /** A node whose heartbeat is older than this is not given lessons. */
  nodeTtlSeconds: number;
  addresses: PipeAddresses;
  live: LiveState;
  log: Logger;
}

/** What the cluster needs of the rest of the node, bound once everything exists. */
export interface ClusterBindings {
  registry: LessonRegistry<LessonMedia>;
  /** This node's media for a lesson it serves as an edge. */
  createEdgeMedia(lessonId: string): LessonMedia;
  attachRelayed: RelayDeps['attachRelayed'];
  /**
   * Resolves once nothing of a lesson is being written here any more (its recording finished).
   * A lesson's lease is given up only then: until it is, another node would take the recording
   * for one whose writer died.
   */
  idle(lessonId: string): Promise<void>;
}

/** The longest a closed lesson's lease is kept while its recording finishes (ffmpeg's own stop is bounded well below). */
const IDLE_WAIT_MS = 60_000;
const LessonRef = Type.Object({ lessonId: Type.String({ minLength: 1, maxLength: 128 }) });
const Nullable = (t: ReturnType<typeof Type.Number>) => Type.Union([t, Type.Null()]);
/** An edge's samples of a lesson's schools (monitor/qualitySampler.ts SchoolSample). */
const EdgeQuality = Type.Object({
  lessonId: Type.String({ minLength: 1, maxLength: 128 }),
  schools: Type.Array(
    Type.Object({
      schoolId: Type.String({ minLength: 1, maxLength: 128 }),
      connected: Type.Boolean(),
      quality: Type.Union([
        Type.Object({
          bitrateKbps: Type.Number(),
          lossPct: Type.Number(),
          rttMs: Nullable(Type.Number()),
          jitterMs: Nullable(Type.Number()),
          score: Nullable(Type.Number()),
          sampledAt: Type.String({ maxLength: 40 }),
        }),
        Type.Null(),
      ]),
      problem: Type.Optional(Type.String({ maxLength: 200 })),
    }),
    { maxItems: 1000 },
  ),
});

/**
 * This node's part in the cluster (docs/cluster.md): where each lesson is hosted (placement and
 * the origin lease), the relay of sessions whose lesson lives elsewhere, the media it makes for
 * other nodes' lessons (edge), and the pipes between them.
 */
export class Cluster {
  readonly channel: ClusterChannel;
  readonly leases: OriginLeases;
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly held = new Map<string, OriginLease>();
  /** Leases taken only for a while (exclusively()), released after unless the lesson came to be hosted here. */
  private readonly borrowed = new Set<string>();
  /** Per lesson hosted here: the latest sample of each school whose media is on an edge, as that edge sent it. */
  private readonly edgeSamples = new Map<string, Map<string, SchoolSample>>();
  private b: ClusterBindings | undefined;
  private edge: EdgeHost | undefined;
  private relays: SessionRelays | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private unsubscribeLive: (() => void) | undefined;
  private health: { at: number; read: Promise<PlacementCandidate[]> } | undefined;

  constructor(private readonly opts: ClusterOptions) {
    const redisOptions = { maxRetriesPerRequest: 2, lazyConnect: true };
    this.redis = new Redis(opts.redisUrl, redisOptions);
    this.subscriber = new Redis(opts.redisUrl, redisOptions);
    for (const r of [this.redis, this.subscriber]) r.on('error', () => undefined); // reconnects by itself; requests time out meanwhile
    this.channel = new ClusterChannel({
      redis: this.redis,
      subscriber: this.subscriber,
      keyPrefix: opts.keyPrefix,
      nodeId: opts.nodeId,
      secret: opts.secret,
      log: opts.log,
    });
    this.leases = new OriginLeases({ redis: this.redis, keyPrefix: opts.keyPrefix, nodeId: opts.nodeId, ttlMs: opts.leaseSeconds * 1000 });
  }

  get nodeId(): string {
    return this.opts.nodeId;
  }

  bind(b: ClusterBindings): void {
    this.b = b;
    const { channel, opts } = this;
    this.edge = new EdgeHost({
      channel,
      addresses: opts.addresses,
      createMedia: b.createEdgeMedia,
      originOf: async (lessonId) => (await this.leases.holder(lessonId))?.node ?? null,
      log: opts.log,
    });
    this.relays = new SessionRelays({ channel, log: opts.log, attachRelayed: b.attachRelayed });
    new PipeExports({
      channel,
      addresses: opts.addresses,
      routerOf: (lessonId) => {
        const media = b.registry.mediaOf(lessonId) ?? this.edge?.mediaOf(lessonId);
        try {
          return media?.producerRouter;
        } catch {
          return undefined; // its routers are being re-created
        }
      },
      log: opts.log,
    });
    // A node that started (again, perhaps under the same id within a lease, before anyone saw it
    // gone): what others held for its previous life (relayed sessions, pipes, edge media) is stale.
    channel.onNotice('node.started', Type.Object({}), (_body, from) =>
      this.forget(from, 'a node of the cluster started; forgetting what it held before'),
    );
    channel.onNotice('quality.edge', EdgeQuality, (body, from) => {
      // Only from an edge of a lesson hosted here, and only for the schools whose media is there.
      const media = b.registry.mediaOf(body.lessonId);
      if (!(media instanceof ClusterMedia)) return;
      let schools = this.edgeSamples.get(body.lessonId);
      if (!schools) this.edgeSamples.set(body.lessonId, (schools = new Map<string, SchoolSample>()));
      for (const s of body.schools) if (media.nodeOf(s.schoolId) === from) schools.set(s.schoolId, s);
    });
    channel.onNotice('media.event', MediaEvent, (body, from) => {
      const media = b.registry.mediaOf(body.lessonId);
      if (media instanceof ClusterMedia) media.deliver(from, body.event, body.args);
    });
    // GET /api/lessons/:id asked of another node: the origin answers with what it holds.
    channel.handle('lesson.detail', LessonRef, async ({ lessonId }) => (await b.registry.resolve(lessonId)).detail());
    // Another node chose this one as a lesson's origin: host it (and hold its lease).
    channel.handle('lesson.place', LessonRef, async ({ lessonId }) => {
      await b.registry.resolve(lessonId);
      return { origin: this.nodeId };
    });
    b.registry.on('created', ({ lesson }) =>
      lesson.once('closed', () => {
        this.edgeSamples.delete(lesson.id);
        const idle = Promise.race([b.idle(lesson.id), new Promise((r) => setTimeout(r, IDLE_WAIT_MS).unref())]);
        void idle.catch(() => undefined).then(() => this.release(lesson.id));
      }),
    );
  }

  private get bindings(): ClusterBindings {
    if (!this.b) throw new Error('cluster used before bind()');
    return this.b;
  }

  async start(): Promise<void> {
    await Promise.all([this.redis.connect(), this.subscriber.connect()]);
    await this.channel.start();
    await this.channel.notify('*', 'node.started', {}).catch(() => undefined);
    const period = Math.max(500, (this.opts.leaseSeconds * 1000) / 3);
    this.renewTimer = setInterval(() => void this.renewAll(), period);
    this.renewTimer.unref();
    this.unsubscribeLive = this.opts.live.subscribe((e) => {
      if (e.type === 'nodeLost' && e.lostNode !== this.nodeId) this.forget(e.lostNode, 'a node of the cluster is gone');
    });
  }

  /**
   * The registry's admission: this node may host a lesson only while it holds the lesson's
   * origin lease. Throws LESSON_ELSEWHERE (with the holder) when another node is the origin.
   */
  async admit(lessonId: string): Promise<void> {
    const current = this.held.get(lessonId);
    this.borrowed.delete(lessonId); // hosting it now: kept beyond a recovery that took it
    if (current?.valid) return;
    const r = await this.leases.acquire(lessonId);
    if ('heldBy' in r) {
      throw new LessoncastError('LESSON_ELSEWHERE', `lesson ${lessonId} is hosted by node ${r.heldBy.node}`, { node: r.heldBy.node });
    }
    this.held.set(lessonId, r.lease);
    this.opts.log.info({ lessonId, epoch: r.lease.epoch }, 'origin of the lesson');
  }

  /**
   * Runs `fn` while this node holds the lesson's origin lease, taking the lease for the while if
   * nobody holds it (and keeping it if the lesson came to be hosted here meanwhile). False,
   * without running `fn`, when another node holds it. What lets one node, and only one, close a
   * recording whose writer died (docs/cluster.md, "The archive on every node").
   */
  async exclusively(lessonId: string, fn: () => Promise<void>): Promise<boolean> {
    if (!this.held.get(lessonId)?.valid) {
      const r = await this.leases.acquire(lessonId);
      if ('heldBy' in r) return false;
      this.held.set(lessonId, r.lease);
      this.borrowed.add(lessonId);
    }
    try {
      await fn();
    } finally {
      // Hosted here by now (a join came while it ran): the registry keeps the lease.
      if (this.borrowed.delete(lessonId) && !this.bindings.registry.find(lessonId)) await this.release(lessonId);
    }
    return true;
  }

  /** True on exactly one node of the cluster per `seconds` for `task` (a Redis key set if absent, expiring). */
  async takeTurn(task: string, seconds: number): Promise<boolean> {
    const key = `${this.opts.keyPrefix}turn:${task}`;
    return (await this.redis.set(key, this.nodeId, 'EX', Math.max(1, Math.round(seconds)), 'NX')) === 'OK';
  }

  /** The control room's view of the schools connected through edges (docs/cluster.md, "The control room"). */
  readonly edgeQuality: EdgeQualityPort = {
    served: () => this.edge?.served() ?? [],
    send: (origin, lessonId, schools) => void this.channel.notify(origin, 'quality.edge', { lessonId, schools }).catch(() => undefined),
    received: (lessonId) => this.edgeSamples.get(lessonId) ?? new Map(),
  };

  /** The origin lease of a lesson hosted here (its epoch is the fencing token of this node's writes). */
  leaseOf(lessonId: string): OriginLease | undefined {
    return this.held.get(lessonId);
  }

  /**
   * Where a session's lesson is (the hub's `locate`): null when this node hosts it or is to, else
   * a relay to its origin. A lesson with no origin yet is placed on the least-loaded healthy node.
   */
  async locate(lessonId: string, session: Session): Promise<SessionRelay | null> {
    // An origin that died a moment ago still looks alive until its heartbeat is missed: its
    // silence is then the first sign, and the next round sees it gone and waits out its lease.
    const deadline = Date.now() + (this.opts.leaseSeconds + this.opts.nodeTtlSeconds) * 1000 + 3000;
    for (;;) {
      try {
        return await this.locateOnce(lessonId, session);
      } catch (err) {
        if ((err as LessoncastError).code !== 'CLUSTER_TIMEOUT' || Date.now() > deadline) throw err;
        this.opts.log.warn(
          { lessonId, node: (err as LessoncastError).details?.['node'] },
          "the lesson's node did not answer; looking again",
        );
      }
    }
  }

  private async locateOnce(lessonId: string, session: Session): Promise<SessionRelay | null> {
    const { registry } = this.bindings;
    if (registry.find(lessonId) && this.held.get(lessonId)?.valid) return null;
    const holder = await this.liveHolder(lessonId);
    if (holder) return holder.node === this.nodeId ? null : this.relayTo(session, holder.node);
    const origin = await this.place(lessonId);
    return origin === this.nodeId ? null : this.relayTo(session, origin);
  }

  /**
   * The lesson's origin, if it has one that is alive. A holder whose node is gone keeps its lease
   * until the lease runs out (nobody may take it sooner: the holder might only be paused): wait
   * for that, up to one lease period, rather than relay to nobody.
   */
  private async liveHolder(lessonId: string): Promise<OriginTerm | null> {
    const deadline = Date.now() + this.opts.leaseSeconds * 1000 + 1000;
    for (;;) {
      const holder = await this.leases.holder(lessonId);
      if (!holder || holder.node === this.nodeId || (await this.isAlive(holder.node)) || Date.now() > deadline) return holder;
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async isAlive(node: string): Promise<boolean> {
    return (await this.nodeHealth()).some((c) => c.node.id === node && c.healthy);
  }

  /**
   * Every node with whether its heartbeat is fresh. The live snapshot reads every lesson and
   * school too, and after a node dies all its classrooms join again at once, each asking while it
   * waits: one read serves every caller for a quarter of a second.
   */
  private nodeHealth(): Promise<PlacementCandidate[]> {
    const now = Date.now();
    if (!this.health || now - this.health.at > 250) {
      const read = this.opts.live
        .snapshot()
        .then(({ nodes }) => nodes.map((node) => ({ node, healthy: isFresh(node, Date.now(), this.opts.nodeTtlSeconds * 1000) })));
      this.health = { at: now, read };
      read.catch(() => {
        if (this.health?.read === read) this.health = undefined;
      });
    }
    return this.health.read;
  }

  private relayTo(session: Session, origin: string): Promise<SessionRelay> {
    if (!this.relays) throw new Error('cluster used before bind()');
    return this.relays.relay(session, origin);
  }

  /** Chooses a lesson's origin and has it host the lesson; resolves to the origin's id. */
  private async place(lessonId: string): Promise<string> {
    const chosen = chooseOrigin(await this.nodeHealth());
    if (chosen && chosen !== this.nodeId) {
      try {
        const answer = (await this.channel.request(chosen, 'lesson.place', { lessonId }, 3000)) as { origin: string };
        this.opts.log.info({ lessonId, origin: answer.origin }, 'lesson placed on another node');
        return answer.origin;
      } catch (err) {
        const e = err as LessoncastError;
        if (e.code === 'LESSON_ELSEWHERE' && typeof e.details?.['node'] === 'string') return e.details['node'];
        if (e.code !== 'CLUSTER_TIMEOUT' && e.code !== 'UNAVAILABLE') throw err;
        this.opts.log.warn({ lessonId, chosen }, 'the chosen node did not answer; hosting the lesson here');
      }
    }
    try {
      await this.admit(lessonId);
      return this.nodeId;
    } catch (err) {
      const e = err as LessoncastError;
      if (e.code === 'LESSON_ELSEWHERE' && typeof e.details?.['node'] === 'string') return e.details['node'];
      throw err;
    }
  }

  /** A lesson's detail from its origin (GET /api/lessons/:id on another node). */
  async detail(lessonId: string, node: string): Promise<LessonDetail> {
    return (await this.channel.request(node, 'lesson.detail', { lessonId })) as LessonDetail;
  }

  /** The hub's `placeMedia`: a relayed session's media is made on the node its client is connected to. */
  placeMedia(session: Session, lesson: Lesson): void {
    const media = this.bindings.registry.mediaOf(lesson.id);
    if (!(media instanceof ClusterMedia) || !session.participant) return;
    media.placePeer(session.participant.id, this.relays?.nodeOf(session.id) ?? null);
  }

  private async renewAll(): Promise<void> {
    for (const [lessonId, lease] of [...this.held]) {
      const ok = await lease.renew().catch(() => lease.valid);
      if (ok) continue;
      this.held.delete(lessonId);
      // Another node may be origin now (this one was paused, or cut off from Redis): stop acting as one.
      this.opts.log.error({ lessonId, epoch: lease.epoch }, 'origin lease lost; handing the lesson over');
      this.bindings.registry.handOver(lessonId, 'the server hosting the lesson changed; join again');
    }
  }

  private async release(lessonId: string): Promise<void> {
    const lease = this.held.get(lessonId);
    this.held.delete(lessonId);
    await lease?.release().catch(() => undefined);
  }

  private forget(node: string, why: string): void {
    this.opts.log.warn({ node }, why);
    this.relays?.nodeLost(node);
    this.edge?.originLost(node);
    for (const { media } of this.bindings.registry.hosted()) if (media instanceof ClusterMedia) media.nodeLost(node);
  }

  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    this.unsubscribeLive?.();
    this.edge?.close();
    await Promise.all([...this.held.keys()].map((id) => this.release(id)));
    this.channel.close();
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}
