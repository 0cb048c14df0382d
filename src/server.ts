import { accessSync, constants, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ConfigError, type ResolvedConfig } from './config/load.js';
import { buildHttpApp, type HttpApp } from './http/app.js';
import { loadMediasoup, resolveWorkerBin } from './media/mediasoup.js';
import { WorkerPool } from './media/workerPool.js';
import { bweSettings } from './media/lessonMedia.js';
import { resolveTokenSecret } from './auth/secret.js';
import { TokenService } from './auth/tokens.js';
import { LessonRegistry } from './lessons/registry.js';
import type { ParticipantLimits } from './lessons/limits.js';
import { registerLessonRoutes } from './http/lessonRoutes.js';
import { registerWebRoutes } from './http/webRoutes.js';
import { SignallingHub } from './signalling/hub.js';
import { createLiveState, type LiveState } from './live/index.js';
import { ControlRoom } from './monitor/controlRoom.js';
import { registerLiveRoutes } from './http/liveRoutes.js';
import { registerMetricsRoutes } from './http/metricsRoutes.js';
import { locateFfmpeg } from './recording/ffmpeg.js';
import { RecordingService } from './recording/service.js';
import { registerArchiveRoutes } from './http/archiveRoutes.js';
import { AuthThrottle, clientAddress } from './http/authThrottle.js';
import { verifyToken } from './http/authGuard.js';
import { SocketAdmission } from './signalling/admission.js';
import { LiveFeed } from './signalling/liveFeed.js';

export interface Lessoncast {
  readonly config: ResolvedConfig;
  readonly app: HttpApp;
  readonly pool: WorkerPool;
  readonly registry: LessonRegistry;
  readonly tokens: TokenService;
  readonly hub: SignallingHub;
  /** Live state shared by nodes (Redis or in-process) and this node's control-room services. */
  readonly live: LiveState;
  readonly controlRoom: ControlRoom;
  /** Lesson recording (HLS) and the archive. */
  readonly recording: RecordingService;
  /** The base URL the HTTP server listens on (known after start). */
  url: string;
  start(): Promise<void>;
  /** Drain and stop everything; bounded by shutdown.timeoutSeconds. Safe to call twice. */
  stop(reason?: string): Promise<void>;
}

/** Composition: builds every part from the configuration, wires them, and owns their shutdown order. */
export async function createLessoncast(config: ResolvedConfig): Promise<Lessoncast> {
  const recordingsDir = recordingsFolder(config.recording.dir);

  let draining = false;
  const workerBin = resolveWorkerBin(config.media.workerBin);
  const ms = await loadMediasoup(workerBin.path);

  const app = await buildHttpApp({
    logLevel: config.log.level,
    maxMessageBytes: config.http.maxMessageBytes,
    isDraining: () => draining,
    onClientError: (code) => controlRoom.metrics.countClientError(code),
    readiness: [
      { name: 'workers', check: async () => (pool.aliveCount === pool.slots.length && pool.slots.length > 0 ? undefined : `${pool.aliveCount}/${pool.slots.length} workers alive`) },
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
    ],
  });
  const log = app.log;
  log.info({ workerBin: workerBin.path, source: workerBin.source, mediasoup: ms.version, node: process.version }, 'mediasoup worker binary');

  const pool = new WorkerPool(
    ms,
    {
      workers: config.media.workers || availableParallelism(),
      listenIp: config.media.listenIp,
      announcedAddress: config.announcedAddress,
      webRtcServerPort: config.media.webRtcServerPort,
      rtcMinPort: config.media.rtcMinPort,
      rtcMaxPort: config.media.rtcMaxPort,
      logLevel: config.media.workerLogLevel,
      udpRecvBufferBytes: config.media.udpRecvBufferBytes,
    },
    log,
  );

  const tokens = new TokenService(resolveTokenSecret(config.auth.tokenSecret, config.auth.secretFile), config.auth.tokenTtlSeconds, config.auth.maxTokenTtlSeconds);
  // Refusals by a limit are counted once the metrics exist (they are made just below).
  const refused = (limit: string): void => controlRoom.metrics.countLimitRefusal(limit);
  const registry = new LessonRegistry(
    pool,
    { consumersPerRouter: config.media.consumersPerRouter, bwe: bweSettings(config.media) },
    { reconnectGraceMs: config.lessons.reconnectGraceSeconds * 1000, maxFloorHolders: config.lessons.maxFloorHolders, limits: participantLimits(config.lessons), onRefused: refused },
    config.recording.enabledByDefault,
  );
  const live = createLiveState(config.redis, config.nodeId, log);
  const feed = new LiveFeed({ live, log, maxMessageBytes: config.http.maxMessageBytes, countFrame: (code) => controlRoom.metrics.countClientError(code) });
  const controlRoom = new ControlRoom({
    nodeId: config.nodeId, address: () => server.url, heartbeatSeconds: config.redis.heartbeatSeconds, monitor: config.monitor,
    recordingsDir, feed, live, registry, pool, log,
  });
  registry.on('created', (lesson) => controlRoom.attach(lesson));
  await AuthThrottle.register(app, { maxFailures: config.auth.maxFailuresPerAddress, windowSeconds: config.auth.failureWindowSeconds, onRefused: () => refused('authFailures') });
  const admission = new SocketAdmission({
    authTimeoutMs: config.http.authTimeoutSeconds * 1000,
    maxUnauthenticatedPerAddress: config.http.maxUnauthenticatedPerAddress,
    addressOf: clientAddress,
    verify: (req, token) => verifyToken(req, tokens, token),
    onRefused: () => refused('unauthenticatedSockets'),
  });
  const hub = new SignallingHub({
    admission, registry, log, maxMessageBytes: config.http.maxMessageBytes,
    onJoinOutcome: (ok, code) => controlRoom.countJoin(ok, code),
    countFrame: (code) => controlRoom.metrics.countClientError(code),
  });
  hub.register(app);
  feed.register(app, admission);
  registerLessonRoutes(app, { registry, tokens });
  await registerWebRoutes(app, { publicUrl: () => server.url });
  registerLiveRoutes(app, { tokens, live, history: controlRoom.history });
  registerMetricsRoutes(app, { metrics: controlRoom.metrics, token: config.metrics.token });
  const ffmpeg = await locateFfmpeg(config.recording.ffmpegPath);
  log[ffmpeg.skipped.length ? 'warn' : 'info']({ ffmpeg: ffmpeg.path, source: ffmpeg.source, version: ffmpeg.version, skipped: ffmpeg.skipped }, 'ffmpeg for recordings');
  const recording = new RecordingService({ recordingsDir, ffmpegPath: ffmpeg.path, segmentSeconds: config.recording.segmentSeconds, retentionDays: config.recording.retentionDays, listenIp: config.media.listenIp, log });
  registry.on('created', (lesson) => recording.attach(lesson));
  // Recording state goes to the control room (alerts, live view) and to the lesson's participants (studio badge).
  const now = (): string => new Date().toISOString();
  recording.on('fault', (f) => {
    controlRoom.onRecordingFault(f.lessonId, f.message, { kind: f.kind, code: f.code, trackId: f.trackId, recovering: f.recovering });
    hub.setRecordingState(f.lessonId, { state: 'fault', at: f.at, message: f.message, recovering: f.recovering });
  });
  recording.on('recordingStarted', (id) => {
    controlRoom.onRecordingState(id, true);
    hub.setRecordingState(id, { state: 'recording', at: now() });
  });
  recording.on('recordingFinished', (id) => {
    controlRoom.onRecordingState(id, false);
    hub.setRecordingState(id, { state: 'stopped', at: now() });
  });
  await registerArchiveRoutes(app, { archive: recording.archive, tokens });

  let stopping: Promise<void> | undefined;
  const server: Lessoncast = {
    config,
    app,
    pool,
    registry,
    tokens,
    hub,
    live,
    controlRoom,
    recording,
    url: config.publicUrl,
    async start() {
      await pool.start();
      await recording.recoverUnfinished();
      recording.startRetention();
      await app.listen({ host: config.http.host, port: config.http.port });
      const addr = app.server.address();
      if (addr && typeof addr === 'object') {
        const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        server.url = config.http.publicUrl ? config.publicUrl : `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${addr.port}`;
      }
      controlRoom.start();
      log.info({ url: server.url, node: config.nodeId, workers: pool.slots.length }, 'lessoncast ready');
    },
    stop(reason = 'stop') {
      stopping ??= (async () => {
        draining = true;
        log.info({ reason }, 'lessoncast stopping');
        const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), config.shutdown.timeoutSeconds * 1000).unref());
        const orderly = (async () => {
          hub.drain(reason);
          registry.endAll(`server ${reason}`);
          await recording.stopAll(); // ffmpeg stopped, last segments, ENDLIST, manifests — before workers go
          await controlRoom.close();
          feed.close();
          await live.close();
          await app.close();
          await pool.close();
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
  return server;
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
    throw new ConfigError([`recording.dir: ${JSON.stringify(dir)} is not allowed (${(err as Error).message}); allowed: a folder lessoncast can create and write`]);
  }
  return resolved;
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
