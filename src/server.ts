import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ConfigError, tlsEnabled, type ResolvedConfig } from './config/load.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import { loadMediasoup, resolveWorkerBin } from './media/mediasoup.js';
import { resolveIceTcp, WorkerPool } from './media/workerPool.js';
import { bweSettings, LessonMedia } from './media/lessonMedia.js';
import { Cluster } from './cluster/cluster.js';
import { ClusterMedia } from './cluster/clusterMedia.js';
import { resolveTokenSecret } from './auth/secret.js';
import { TokenService } from './auth/tokens.js';
import { LessonRegistry, type HostedLesson } from './lessons/registry.js';
import type { ParticipantLimits } from './lessons/limits.js';
import { registerLessonRoutes } from './http/lessonRoutes.js';
import { registerWebRoutes } from './http/webRoutes.js';
import { createLiveState, type LiveState } from './live/index.js';
import { ControlRoom } from './monitor/controlRoom.js';
import type { LessonsSource, WorkersSource } from './monitor/ports.js';
import { registerLiveRoutes } from './http/liveRoutes.js';
import { registerMetricsRoutes } from './http/metricsRoutes.js';
import { locateFfmpeg } from './recording/ffmpeg.js';
import { RecordingService } from './recording/service.js';
import { oneWayLinks, registerArchiveRoutes } from './http/archiveRoutes.js';
import { AuthThrottle } from './http/authThrottle.js';
import { registerSocketEndpoints } from './http/sockets.js';
import { CertificateKeeper, CertificateProblem, readCertificate, type ServedCertificate } from './http/tls.js';
import { startRedirectListener, type RedirectListener } from './http/redirect.js';
import { TurnIssuer } from './turn/credentials.js';
import { openCatalog, type CatalogStore } from './catalog/index.js';
import { CatalogLessonBook } from './catalog/lessonBook.js';
import { LedgerRecorder } from './lessons/ledgerRecorder.js';
import { registerLedgerRoutes } from './http/ledgerRoutes.js';
import { Devices } from './catalog/devices.js';
import type { Revocation } from './catalog/types.js';
import { RevocationList } from './auth/revocations.js';
import { registerCatalogRoutes } from './http/catalogRoutes.js';
import { registerDeviceRoutes } from './http/deviceRoutes.js';

/** A lessoncast node as whoever runs or embeds it sees it (src/main.ts). */
export interface Lessoncast {
  readonly config: ResolvedConfig;
  /** The node's structured logger (pino; tokens are redacted). */
  readonly log: HttpApp['log'];
  /** The base URL the HTTP server listens on (known after start). */
  readonly url: string;
  start(): Promise<void>;
  /**
   * Re-reads and re-checks http.tls.certFile and keyFile (SIGHUP): new connections get the new
   * certificate, open ones go on; on a problem the old one stays and the error is logged. Returns
   * whether it swapped (false too without TLS).
   */
  reloadTls(): boolean;
  /** Drain and stop everything; bounded by shutdown.timeoutSeconds. Safe to call twice. */
  stop(reason?: string): Promise<void>;
}

/**
 * The parts inside a node, for tests and benches only (createLessoncastForTests):
 * they inspect and poke what the public face hides. Nothing in src/ uses them.
 */
export interface LessoncastInternals {
  readonly app: HttpApp;
  readonly pool: WorkerPool;
  readonly registry: LessonRegistry<LessonMedia>;
  readonly tokens: TokenService;
  /** Live state shared by nodes (Redis or in-process). */
  readonly live: LiveState;
  readonly controlRoom: ControlRoom;
  /** Lesson recording (HLS) and the archive. */
  readonly recording: RecordingService;
  /** The region's catalog (SQLite or PostgreSQL) and the lessons' book in it. */
  readonly catalog: CatalogStore;
  readonly book: CatalogLessonBook;
  /** Keeps each lesson's per-school ledger in the catalog. */
  readonly ledger: LedgerRecorder;
  readonly revocations: RevocationList;
  /** This node's part in a cluster (cluster.enabled), else undefined. */
  readonly cluster: Cluster | undefined;
}

/** Builds a node from the configuration; start() it to serve. */
export async function createLessoncast(config: ResolvedConfig): Promise<Lessoncast> {
  return (await assemble(config)).server;
}

/** For tests and benches only: the node, plus a handle on its internals. */
export function createLessoncastForTests(config: ResolvedConfig): Promise<{ server: Lessoncast; internals: LessoncastInternals }> {
  return assemble(config);
}

/** Composition: builds every part from the configuration, wires them, and owns their shutdown order. */
async function assemble(config: ResolvedConfig): Promise<{ server: Lessoncast; internals: LessoncastInternals }> {
  const recordingsDir = recordingsFolder(config.recording.dir);
  // Before anything starts: a certificate that cannot be served stops the start like a bad setting.
  const certificate = tlsEnabled(config.http) ? servedCertificate(config.http.tls) : undefined;

  let draining = false;
  let url = config.publicUrl;
  const workerBin = resolveWorkerBin(config.media.workerBin);
  const ms = await loadMediasoup(workerBin.path);

  const app = await buildHttpApp({
    logLevel: config.log.level,
    maxMessageBytes: config.http.maxMessageBytes,
    isDraining: () => draining,
    ...(certificate
      ? { https: { cert: certificate.cert, key: certificate.key, hstsMaxAgeSeconds: config.http.tls.hstsMaxAgeSeconds } }
      : {}),
    trustProxy: config.http.trustProxy,
    version: packageVersion(),
    onClientError: (code) => controlRoom.metrics.countClientError(code),
    readiness: [
      {
        name: 'workers',
        check: async () =>
          pool.aliveCount === pool.slots.length && pool.slots.length > 0
            ? undefined
            : `${pool.aliveCount}/${pool.slots.length} workers alive`,
      },
      {
        name: 'recordings',
        check: async () => {
          try {
            accessSync(recordingsDir, constants.W_OK);
            return undefined;
          } catch {
            return `${recordingsDir} is not writable`;
          }
        },
      },
      // Without Redis the node still serves its lessons: degraded, not unready.
      ...(config.redis.url ? [{ name: 'redis', degraded: true, check: async () => live.problem() }] : []),
      // Nor without the catalog: lesson changes wait and are written once it is back.
      {
        name: 'catalog',
        degraded: true,
        check: async () =>
          book.problem() ??
          ledger.problem() ??
          (await catalog.ping().then(
            () => undefined,
            () => `the catalog database (${catalog.where}) does not answer`,
          )),
      },
    ],
  });
  const log = app.log;
  // Before anything starts: a catalog that cannot be opened or migrated stops the start (CatalogStartError).
  let catalog: CatalogStore;
  try {
    catalog = await openCatalog(config.catalog, log);
  } catch (err) {
    await app.close();
    throw err;
  }
  const book = new CatalogLessonBook(catalog, { retrySeconds: config.catalog.retrySeconds, log });
  const ledger = new LedgerRecorder({
    ledger: catalog.ledger,
    writeSeconds: config.catalog.ledgerWriteSeconds,
    retrySeconds: config.catalog.retrySeconds,
    log,
    // In a cluster, only the lesson's origin writes its rows (the cluster is made below; writes come after start).
    ...(config.cluster.enabled ? { holds: (lessonId: string) => cluster?.leaseOf(lessonId)?.valid ?? false } : {}),
  });
  const revocations = new RevocationList();
  const keeper = certificate && new CertificateKeeper({ files: config.http.tls, log, initial: certificate, server: app.server });
  let redirect: RedirectListener | undefined;
  log.info(
    { workerBin: workerBin.path, source: workerBin.source, mediasoup: ms.version, node: process.version },
    'mediasoup worker binary',
  );

  const pool = new WorkerPool(
    ms,
    {
      workers: config.media.workers || availableParallelism(),
      listenIp: config.media.listenIp,
      announcedAddress: config.announcedAddress,
      webRtcServerPort: config.media.webRtcServerPort,
      iceTcp: resolveIceTcp(config.media, config.announcedAddress),
      rtcMinPort: config.media.rtcMinPort,
      rtcMaxPort: config.media.rtcMaxPort,
      logLevel: config.media.workerLogLevel,
      udpRecvBufferBytes: config.media.udpRecvBufferBytes,
      udpSendBatch: config.media.udpSendBatch,
    },
    log,
  );

  const tokens = new TokenService(
    resolveTokenSecret(config.auth.tokenSecret, config.auth.secretFile),
    config.auth.tokenTtlSeconds,
    config.auth.maxTokenTtlSeconds,
    revocations,
  );
  // Refusals, joins and frames are counted once the metrics exist (the control room, made below).
  const refused = (limit: string): void => controlRoom.metrics.countLimitRefusal(limit);
  const mediaOptions = { consumersPerRouter: config.media.consumersPerRouter, bwe: bweSettings(config.media), links: config.media.links };
  const live = createLiveState(config.redis, config.nodeId, log);
  // Many nodes (docs/cluster.md): lessons hosted under an origin lease, any node a way in.
  const pipeAddresses = { listenIp: config.media.listenIp, announcedAddress: config.cluster.pipeAddress || config.announcedAddress };
  const cluster = config.cluster.enabled
    ? new Cluster({
        nodeId: config.nodeId,
        redisUrl: config.redis.url,
        keyPrefix: config.redis.keyPrefix,
        secret: config.cluster.secret,
        leaseSeconds: config.cluster.leaseSeconds,
        nodeTtlSeconds: config.redis.nodeTtlSeconds,
        addresses: pipeAddresses,
        live,
        log,
      })
    : undefined;
  const registry = new LessonRegistry<LessonMedia>({
    createMedia: (lessonId) =>
      cluster
        ? new ClusterMedia(pool, lessonId, mediaOptions, {
            channel: cluster.channel,
            addresses: pipeAddresses,
            log,
          })
        : new LessonMedia(pool, lessonId, mediaOptions),
    ...(cluster
      ? { admit: (lessonId: string) => cluster.admit(lessonId), holds: (lessonId: string) => cluster.leaseOf(lessonId)?.valid ?? false }
      : {}),
    lessonOptions: {
      reconnectGraceMs: config.lessons.reconnectGraceSeconds * 1000,
      maxFloorHolders: config.lessons.maxFloorHolders,
      limits: participantLimits(config.lessons),
      onRefused: refused,
    },
    recordByDefault: config.recording.enabledByDefault,
    book,
    abandonAfterMs: config.lessons.abandonAfterMinutes * 60_000,
  });
  const turn = new TurnIssuer(config.turn);
  if (turn.enabled)
    log.info({ turnUrls: config.turn.urls, relaySchools: config.turn.relaySchools.length }, 'TURN credentials for every join');
  await AuthThrottle.register(app, {
    maxFailures: config.auth.maxFailuresPerAddress,
    windowSeconds: config.auth.failureWindowSeconds,
    onRefused: () => refused('authFailures'),
  });
  const sockets = registerSocketEndpoints(app, {
    registry,
    live,
    tokens,
    log,
    maxMessageBytes: config.http.maxMessageBytes,
    authTimeoutSeconds: config.http.authTimeoutSeconds,
    maxUnauthenticatedPerAddress: config.http.maxUnauthenticatedPerAddress,
    iceFor: (participant) => turn.iceFor(participant),
    countRefusal: refused,
    countJoin: (ok, code) => controlRoom.countJoin(ok, code),
    countFrame: (code) => controlRoom.metrics.countClientError(code),
    // A classroom that cannot receive WebRTC watches the live recording (made below) instead.
    oneWay: oneWayLinks({
      tokens,
      isRecording: (id) => recording.isRecording(id),
      ttlSeconds: config.recording.oneWayAccessSeconds,
      segmentSeconds: config.recording.segmentSeconds,
    }),
    ...(cluster
      ? {
          cluster: {
            locate: (lessonId, session) => cluster.locate(lessonId, session),
            placeMedia: (session, lesson) => cluster.placeMedia(session, lesson),
          },
        }
      : {}),
  });
  cluster?.bind({
    registry,
    createEdgeMedia: (lessonId) => new LessonMedia(pool, lessonId, mediaOptions),
    attachRelayed: sockets.attachRelayed,
    // The recording service is made below; lessons close only once the node runs.
    idle: (lessonId) => recording.idle(lessonId),
  });
  const controlRoom = new ControlRoom({
    settings: {
      nodeId: config.nodeId,
      address: () => url,
      heartbeatSeconds: config.redis.heartbeatSeconds,
      monitor: config.monitor,
      recordingsDir,
    },
    feed: sockets.feed,
    live,
    lessons: { ...lessonsSource(registry), ...(cluster ? { edgeQuality: cluster.edgeQuality } : {}) },
    workers: workersSource(pool),
    log,
  });
  registerLessonRoutes(app, {
    registry,
    tokens,
    ...(cluster ? { detailElsewhere: (lessonId: string, node: string) => cluster.detail(lessonId, node) } : {}),
  });
  // A revocation is stored, then told to every node (this one included) over the live bus.
  const revoke = async (r: Revocation): Promise<void> => {
    await catalog.addRevocation(r);
    live.publish({ type: 'revoked', kind: r.kind, subject: r.subject, revokedAt: r.at });
  };
  const unsubscribeRevocations = live.subscribe((e) => {
    if (e.type !== 'revoked') return;
    revocations.add({ kind: e.kind, subject: e.subject, at: e.revokedAt });
    const closed = sockets.revoke((p) => revocations.refusing(p) !== undefined);
    log.info({ kind: e.kind, subject: e.subject, from: e.node, closed }, 'revocation applied');
  });
  // The bus may lose a message (Redis away): the catalog's list is read again now and then.
  const reloadRevocations = async (): Promise<void> => {
    const before = revocations.size;
    for (const r of await catalog.listRevocations()) revocations.add(r);
    if (revocations.size !== before) sockets.revoke((p) => revocations.refusing(p) !== undefined);
  };
  const revocationTimer = setInterval(
    () => void reloadRevocations().catch(() => undefined),
    Math.max(30, config.catalog.retrySeconds) * 1000,
  );
  revocationTimer.unref();
  registerCatalogRoutes(app, { catalog, tokens, registry, revoke, defaultLessonRecord: config.recording.enabledByDefault });
  registerDeviceRoutes(app, {
    catalog,
    devices: new Devices(catalog),
    tokens,
    publicUrl: () => url,
    sessionTtlSeconds: config.auth.deviceSessionTtlSeconds,
    revoke,
  });
  await registerWebRoutes(app, { publicUrl: () => url });
  registerLiveRoutes(app, { tokens, live, history: controlRoom.history });
  if (keeper) controlRoom.metrics.watchCertificate(() => keeper.current.notAfter);
  registerMetricsRoutes(app, { metrics: controlRoom.metrics, token: config.metrics.token });
  const ffmpeg = await locateFfmpeg(config.recording.ffmpegPath);
  log[ffmpeg.skipped.length ? 'warn' : 'info'](
    { ffmpeg: ffmpeg.path, source: ffmpeg.source, version: ffmpeg.version, skipped: ffmpeg.skipped },
    'ffmpeg for recordings',
  );
  const recording = new RecordingService({
    recordingsDir,
    ffmpegPath: ffmpeg.path,
    segmentSeconds: config.recording.segmentSeconds,
    retentionDays: config.recording.retentionDays,
    listenIp: config.media.listenIp,
    log,
    nodeId: config.nodeId,
    ...(cluster
      ? {
          shared: {
            exclusively: (lessonId: string, close: () => Promise<void>) => cluster.exclusively(lessonId, close),
            takeTurn: (task: string, seconds: number) => cluster.takeTurn(task, seconds),
            sweepSeconds: config.cluster.leaseSeconds,
          },
        }
      : {}),
  });
  registry.on('created', (hosted) => recording.attach(hosted));
  registry.on('created', ({ lesson }) => ledger.attach(lesson));
  const unsubscribeLedger = controlRoom.onSampled((lessons) => ledger.sampled(lessons));
  // Each fault in detail for the control room. The recording's state (recording, fault, recording again, stopped) is
  // the recorder's to tell the lesson (LessonRecorder → lesson.setRecording), which tells its participants and the live state.
  recording.on('fault', (f) =>
    controlRoom.onRecordingFault(f.lessonId, f.message, { kind: f.kind, code: f.code, trackId: f.trackId, recovering: f.recovering }),
  );
  await registerArchiveRoutes(app, { archive: recording.archive, tokens });
  registerLedgerRoutes(app, { ledger: catalog.ledger, catalog, tokens });

  let stopping: Promise<void> | undefined;
  const server: Lessoncast = {
    config,
    log,
    get url() {
      return url;
    },
    async start() {
      // Opened a moment ago; should it be gone already, the timer reads the list again later.
      await reloadRevocations().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'revocations not read from the catalog'));
      await pool.start();
      await cluster?.start();
      // The archive's index in the catalog, brought in line with the folder once at start (minutes
      // for a region's archive; searches read the manifests until it is). In a cluster it is where
      // the recordings still open are found, so that pass comes first; otherwise in the background.
      recording.archive.useIndex(catalog.archiveIndex);
      const reconcileIndex = (): Promise<void> =>
        recording.archive.reconcile().then(
          (r) => log.info(r, 'archive index reconciled with the recordings folder'),
          (err: Error) => log.warn({ err: err.message }, 'archive index not reconciled at start; searches read the manifests until it is'),
        );
      if (cluster) await reconcileIndex();
      // Recordings a crash left open are closed first: a lesson resumed below must find its
      // recording finished (recovered), not still "recording". In a cluster, only those whose
      // lesson no live node hosts, and then again whenever a node is gone (the sweep).
      await recording.recoverUnfinished();
      const restored = await registry.restore().catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'lessons not resumed from the catalog; they resume as participants rejoin');
        return 0;
      });
      if (restored) log.info({ lessons: restored }, 'lessons resumed from the catalog');
      recording.startRetention();
      recording.startSweeping();
      if (!cluster) void reconcileIndex();
      recording.archive.startIndexing(config.recording.indexScanSeconds);
      await app.listen({ host: config.http.host, port: config.http.port });
      const addr = app.server.address();
      if (addr && typeof addr === 'object') {
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        const scheme = keeper ? 'https' : 'http';
        url = config.http.publicUrl ? config.publicUrl : `${scheme}://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
      }
      keeper?.start();
      if (config.http.redirectPort) {
        redirect = await startRedirectListener({ host: config.http.host, port: config.http.redirectPort, target: () => url, log });
      }
      controlRoom.start();
      ledger.start();
      log.info({ url, node: config.nodeId, workers: pool.slots.length }, 'lessoncast ready');
    },
    reloadTls() {
      if (keeper) return keeper.reload();
      log.info({}, 'TLS reload asked, but lessoncast serves plain HTTP (http.tls not set): nothing to reload');
      return false;
    },
    stop(reason = 'stop') {
      stopping ??= (async () => {
        draining = true;
        log.info({ reason }, 'lessoncast stopping');
        const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.shutdown.timeoutSeconds * 1000).unref());
        const orderly = (async () => {
          // In a cluster the lessons go on elsewhere: their participants are asked to join again
          // (reaching another node) before the sockets close, and the leases are given up.
          if (cluster) registry.handOverAll(`server ${reason}: join again`);
          sockets.drain(reason);
          // Before the lessons end: their ledger rows are written as they stand (the next start adds to them).
          unsubscribeLedger();
          await ledger.stop();
          registry.endAll(`server ${reason}`);
          registry.close();
          clearInterval(revocationTimer);
          unsubscribeRevocations();
          await book.close();
          recording.archive.stopIndexing();
          await recording.stopAll(); // ffmpeg stopped, last segments, ENDLIST, manifests — before workers go
          // Leases go only now: a lesson's next origin continues a recording this node has closed.
          await cluster?.close();
          await controlRoom.close();
          sockets.close();
          await live.close();
          keeper?.close();
          await redirect?.close();
          await app.close();
          await pool.close();
          await catalog.close();
        })();
        if ((await Promise.race([orderly.then(() => 'ok' as const), deadline])) === 'timeout') {
          log.error({ timeoutSeconds: config.shutdown.timeoutSeconds }, 'shutdown timed out; closing workers now');
          await pool.close();
        }
        log.info({ reason }, 'lessoncast stopped');
      })();
      return stopping;
    },
  };
  return { server, internals: { app, pool, registry, tokens, live, controlRoom, recording, catalog, book, ledger, revocations, cluster } };
}

/**
 * The recordings folder, created when missing. A path that cannot be one (under a regular file,
 * on a read-only mount) is a configuration error and names its key, like every other one.
 */
function recordingsFolder(dir: string): string {
  const resolved = path.resolve(dir);
  try {
    mkdirSync(resolved, { recursive: true });
  } catch (err) {
    throw new ConfigError([
      `recording.dir: ${JSON.stringify(dir)} is not allowed (${(err as Error).message}); allowed: a folder lessoncast can create and write`,
    ]);
  }
  return resolved;
}

/** The certificate http.tls names, checked; a problem with either file is a configuration error naming it. */
function servedCertificate(files: ResolvedConfig['http']['tls']): ServedCertificate {
  try {
    return readCertificate(files);
  } catch (err) {
    if (err instanceof CertificateProblem) throw new ConfigError([err.message], { cause: err });
    throw err;
  }
}

/** The registry as the control room reads it. */
function lessonsSource(registry: LessonRegistry<LessonMedia>): LessonsSource {
  return {
    list: () => registry.hosted(),
    edgesOf: (id) => {
      const media = registry.mediaOf(id);
      return media instanceof ClusterMedia ? media.edges() : [];
    },
    onCreated(listener) {
      const created = ({ lesson }: HostedLesson<LessonMedia>): void => listener(lesson);
      registry.on('created', created);
      return () => registry.off('created', created);
    },
  };
}

/** The worker pool as the control room reads it. */
function workersSource(pool: WorkerPool): WorkersSource {
  return {
    slots: () => pool.slots,
    aliveCount: () => pool.aliveCount,
    onReplaced(listener) {
      const replaced = (index: number): void => {
        const slot = pool.slots[index];
        if (slot) listener(slot);
      };
      pool.on('workerReplaced', replaced);
      return () => pool.off('workerReplaced', replaced);
    },
  };
}

function participantLimits(l: ResolvedConfig['lessons']): ParticipantLimits {
  return {
    transports: l.maxTransportsPerParticipant,
    producers: l.maxProducersPerParticipant,
    consumers: l.maxConsumersPerParticipant,
    actionBurst: l.actionBurst,
    actionsPerSecond: l.actionsPerSecond,
  };
}

/** The version in package.json (one level above src/ and dist/ alike), for the OpenAPI document. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}
