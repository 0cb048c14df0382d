import type { Lesson } from '../lessons/lesson.js';
import type { LessonRegistry } from '../lessons/registry.js';
import { LiveAgent } from '../live/liveAgent.js';
import type { LiveState } from '../live/liveState.js';
import type { LiveEvent, LiveLogger, NodeLoad } from '../live/types.js';
import type { WorkerPool } from '../media/workerPool.js';
import { AlertRules, type AlertOutcome, type AlertThresholds } from './alerts.js';
import { LessonHistory } from './history.js';
import { Metrics } from './metrics.js';
import { QualitySampler } from './qualitySampler.js';
import { TrafficTotals } from './traffic.js';

export interface MonitorConfig {
  sampleSeconds: number;
  statsConcurrency: number;
  silentSeconds: number;
  alerts: AlertThresholds;
}

export interface ControlRoomDeps {
  nodeId: string;
  /** Base URL of this node, as announced in the live state. */
  address(): string;
  heartbeatSeconds: number;
  monitor: MonitorConfig;
  recordingsDir: string;
  /** The control room's live feed (a WebSocket endpoint, owned by the composition root): its counts for the metrics. */
  feed: { readonly clientCount: number; readonly droppedCount: number };
  live: LiveState;
  registry: LessonRegistry;
  pool: WorkerPool;
  log: LiveLogger;
}

/**
 * Everything the control room needs from this node: the live agent (lessons →
 * live state, heartbeats), the quality sampler and its alert rules, the
 * per-lesson history and the Prometheus metrics. It owns their
 * timers and files; the LiveState it is given is closed by its creator.
 */
export class ControlRoom {
  readonly agent: LiveAgent;
  readonly sampler: QualitySampler;
  readonly alerts: AlertRules;
  readonly history: LessonHistory;
  readonly metrics: Metrics;
  readonly traffic = new TrafficTotals();
  private readonly unsubscribe: () => void;
  private sampleTimer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: ControlRoomDeps) {
    const { live, registry, pool, log } = deps;
    this.agent = new LiveAgent(live, { nodeId: deps.nodeId, address: deps.address, heartbeatSeconds: deps.heartbeatSeconds, load: () => this.nodeLoad(), log });
    this.sampler = new QualitySampler({
      lessons: () => registry.list(),
      concurrency: deps.monitor.statsConcurrency,
      silentMs: deps.monitor.silentSeconds * 1000,
      traffic: this.traffic,
    });
    this.alerts = new AlertRules(deps.monitor.alerts);
    this.history = new LessonHistory(deps.recordingsDir, deps.nodeId, log);
    this.metrics = new Metrics({
      pool,
      lessons: () => registry.list(),
      traffic: this.traffic,
      recordingsActive: () => this.agent.recordingsActive(),
      liveStateUp: () => live.problem() === undefined,
      feedClients: () => deps.feed.clientCount,
      feedDropped: () => deps.feed.droppedCount,
    });
    this.unsubscribe = live.subscribe((e) => this.onEvent(e));
  }

  /** Follows a lesson of this node (registry 'created'). */
  attach(lesson: Lesson): void {
    this.agent.attach(lesson);
  }

  /** Once the worker pool runs: metrics follow the workers, heartbeats and sampling begin. */
  start(): void {
    this.metrics.observePool();
    this.agent.start();
    this.scheduleSample();
  }

  // -- hooks for the recording service ------------------------------------------

  /** A recorder failed (ffmpeg died, disk full…): live entry, `recordingFault` event, alert, metric. */
  onRecordingFault(lessonId: string, message: string, detail?: Record<string, unknown>): void {
    this.agent.recordingFault(lessonId, message, detail);
  }

  /** A recorder started (active) or stopped writing. */
  onRecordingState(lessonId: string, active: boolean): void {
    this.agent.setRecording(lessonId, { active });
  }

  /** Joins counted where signalling handles `join`. */
  countJoin(ok: boolean, code?: string): void {
    this.metrics.countJoin(ok, code);
  }

  nodeLoad(): NodeLoad {
    let lessons = 0;
    let schools = 0;
    let consumers = 0;
    for (const l of this.deps.registry.list()) {
      if (l.state === 'ended') continue;
      lessons++;
      consumers += l.media.consumerCount();
      for (const p of l.participants.values()) if (p.role === 'classroom' && p.connected) schools++;
    }
    return { workers: this.deps.pool.aliveCount, lessons, schools, consumers };
  }

  /** One sampling tick now (tests; the timer calls it every monitor.sampleSeconds). */
  sampleNow(): Promise<void> {
    this.sampling ??= (async () => {
      try {
        const result = await this.sampler.tick();
        this.metrics.sampled(result.durationMs, result.requests);
        const now = Date.now();
        for (const lesson of result.lessons) {
          if (lesson.schools.length === 0 && lesson.uplink.length === 0) continue;
          this.agent.reportQuality(lesson.lessonId, lesson.schools.map(({ schoolId, connected, quality }) => ({ schoolId, connected, quality })), lesson.uplink);
          for (const s of lesson.schools) {
            const outcomes = this.alerts.observe(now, lesson.lessonId, s.schoolId, {
              connected: s.connected,
              lossPct: s.quality && s.quality.bitrateKbps > 0 ? s.quality.lossPct : null,
              intervalMs: result.intervalMs || this.deps.monitor.sampleSeconds * 1000,
              ...(s.problem ? { problem: s.problem } : {}),
            });
            this.raise(outcomes);
          }
        }
      } catch (err) {
        this.deps.log.warn({ err: (err as Error).message }, 'quality sampling failed');
      } finally {
        this.sampling = undefined;
      }
    })();
    return this.sampling;
  }

  private scheduleSample(): void {
    if (this.stopped) return;
    this.sampleTimer = setTimeout(async () => {
      await this.sampleNow();
      this.scheduleSample();
    }, this.deps.monitor.sampleSeconds * 1000);
    this.sampleTimer.unref();
  }

  /** Reacts to this node's own events: alerts for disconnections and recording faults, forgetting schools that left. */
  private onEvent(e: LiveEvent): void {
    this.history.record(e);
    // Deferred: every listener hears the event itself before the alerts it causes.
    if (e.node === this.deps.nodeId) queueMicrotask(() => this.react(e));
  }

  private react(e: LiveEvent): void {
    switch (e.type) {
      case 'schoolDisconnected':
        this.raise(this.alerts.observe(Date.now(), e.lessonId, e.schoolId, { connected: false, lossPct: null, intervalMs: 0, problem: 'signalling connection lost' }));
        break;
      case 'schoolJoined':
        if (e.rejoined) this.raise(this.alerts.observe(Date.now(), e.lessonId, e.schoolId, { connected: true, lossPct: null, intervalMs: 0 }));
        break;
      case 'schoolLeft':
        this.raise(this.alerts.forget(e.lessonId, e.schoolId));
        break;
      case 'lessonEnded':
        this.raise(this.alerts.forget(e.lessonId));
        break;
      case 'recordingFault':
        this.metrics.countRecordingFault();
        this.raise(this.alerts.recordingFault(e.lessonId, e.message));
        break;
      case 'recordingChanged':
        if (e.recording.active) this.raise(this.alerts.recordingRecovered(e.lessonId));
        break;
      default:
        break;
    }
  }

  private raise(outcomes: AlertOutcome[]): void {
    for (const o of outcomes) {
      this.deps.live.publish({ type: 'alert', ...o });
      if (o.state === 'raised') this.deps.log.warn({ lesson: o.lessonId, school: o.schoolId, rule: o.rule }, o.message);
    }
  }

  /** Stops sampling and heartbeats, closes history files. */
  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.sampleTimer);
    await this.sampling;
    await this.agent.stopHeartbeat();
    this.unsubscribe();
    await this.history.close();
  }
}
