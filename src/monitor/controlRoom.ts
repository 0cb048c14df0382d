import { LiveAgent } from '../live/liveAgent.js';
import type { LiveState } from '../live/liveState.js';
import type { LiveEvent, NodeLoad } from '../live/types.js';
import type { Logger } from '../logger.js';
import { AlertRules, type AlertOutcome, type AlertThresholds } from './alerts.js';
import { LessonHistory } from './history.js';
import { Metrics } from './metrics.js';
import type { LessonsSource, WorkersSource } from './ports.js';
import { QualitySampler, type LessonSample, type SampledLesson } from './qualitySampler.js';
import { TrafficTotals } from './traffic.js';

export interface MonitorConfig {
  sampleSeconds: number;
  statsConcurrency: number;
  silentSeconds: number;
  alerts: AlertThresholds;
}

/** Who this node is and how the control room runs on it (from the configuration). */
export interface ControlRoomSettings {
  nodeId: string;
  /** Base URL of this node, as announced in the live state (known once it listens). */
  address(): string;
  heartbeatSeconds: number;
  monitor: MonitorConfig;
  /** Per-lesson history files go into the lesson's folder here. */
  recordingsDir: string;
}

export interface ControlRoomDeps {
  settings: ControlRoomSettings;
  /** The control room's live feed (a WebSocket endpoint, owned by the composition root): its counts for the metrics. */
  feed: { readonly clientCount: number; readonly droppedCount: number };
  live: LiveState;
  lessons: LessonsSource;
  workers: WorkersSource;
  log: Logger;
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
  /** Calls that stop what the control room subscribed to, run by close(). */
  private readonly unsubscribe: Array<() => void> = [];
  private sampleTimer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** The lessons this node served as an edge at the last tick's start, with their origins: what that tick's samples are sent to. */
  private edgeOrigins = new Map<string, string>();
  /** Who else reads each tick (the ledger). */
  private readonly sampleListeners: Array<(lessons: LessonSample[]) => void> = [];

  constructor(private readonly deps: ControlRoomDeps) {
    const { settings, live, lessons, workers, log } = deps;
    this.agent = new LiveAgent(live, {
      nodeId: settings.nodeId,
      address: settings.address,
      heartbeatSeconds: settings.heartbeatSeconds,
      load: () => this.nodeLoad(),
      ...(lessons.edgesOf ? { edgesOf: (id: string) => lessons.edgesOf!(id) } : {}),
      log,
    });
    this.sampler = new QualitySampler({
      lessons: () => [...lessons.list(), ...this.servedAsEdge()],
      concurrency: settings.monitor.statsConcurrency,
      silentMs: settings.monitor.silentSeconds * 1000,
      traffic: this.traffic,
    });
    this.alerts = new AlertRules(settings.monitor.alerts);
    this.history = new LessonHistory(settings.recordingsDir, settings.nodeId, log);
    this.metrics = new Metrics({
      workers,
      lessons: () => [...lessons.list()].map((h) => h.lesson),
      traffic: this.traffic,
      recordingsActive: () => this.agent.recordingsActive(),
      liveStateUp: () => live.problem() === undefined,
      feedClients: () => deps.feed.clientCount,
      feedDropped: () => deps.feed.droppedCount,
    });
    this.unsubscribe.push(
      live.subscribe((e) => this.onEvent(e)),
      // Every lesson of this node goes into the live state from its creation on.
      lessons.onCreated((lesson) => this.agent.attach(lesson)),
    );
  }

  /** Once the workers run: metrics follow them, heartbeats and sampling begin. */
  start(): void {
    this.unsubscribe.push(this.metrics.observeWorkers());
    this.agent.start();
    this.scheduleSample();
  }

  // -- hooks for the recording service ------------------------------------------

  /** A recorder failed (ffmpeg died, disk full…): live entry, `recordingFault` event, alert, metric. */
  onRecordingFault(lessonId: string, message: string, detail?: Record<string, unknown>): void {
    this.agent.recordingFault(lessonId, message, detail);
  }

  /** Joins counted where signalling handles `join`. */
  countJoin(ok: boolean, code?: string): void {
    this.metrics.countJoin(ok, code);
  }

  nodeLoad(): NodeLoad {
    let lessons = 0;
    let schools = 0;
    let consumers = 0;
    for (const { lesson: l, media } of this.deps.lessons.list()) {
      if (l.state === 'ended') continue;
      lessons++;
      consumers += media.consumerCount();
      for (const p of l.participants.values()) if (p.role === 'classroom' && p.connected) schools++;
    }
    return { workers: this.deps.workers.aliveCount(), lessons, schools, consumers };
  }

  /** Hands each sampling tick's per-lesson results to `listener` too; returns the call that stops it. */
  onSampled(listener: (lessons: LessonSample[]) => void): () => void {
    this.sampleListeners.push(listener);
    return () => {
      const i = this.sampleListeners.indexOf(listener);
      if (i >= 0) this.sampleListeners.splice(i, 1);
    };
  }

  /** One sampling tick now (tests; the timer calls it every monitor.sampleSeconds). */
  sampleNow(): Promise<void> {
    this.sampling ??= (async () => {
      try {
        const result = await this.sampler.tick();
        this.metrics.sampled(result.durationMs, result.requests);
        result.lessons = this.withEdges(result.lessons);
        for (const listener of this.sampleListeners) {
          try {
            listener(result.lessons);
          } catch (err) {
            this.deps.log.warn({ err: (err as Error).message }, 'a reader of quality samples failed');
          }
        }
        const now = Date.now();
        for (const lesson of result.lessons) {
          if (lesson.schools.length === 0 && lesson.uplink.length === 0) continue;
          this.agent.reportQuality(
            lesson.lessonId,
            lesson.schools.map(({ schoolId, connected, quality }) => ({ schoolId, connected, quality })),
            lesson.uplink,
          );
          for (const s of lesson.schools) {
            const outcomes = this.alerts.observe(now, lesson.lessonId, s.schoolId, {
              connected: s.connected,
              lossPct: s.quality && s.quality.bitrateKbps > 0 ? s.quality.lossPct : null,
              intervalMs: result.intervalMs || this.deps.settings.monitor.sampleSeconds * 1000,
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

  /**
   * Other nodes' lessons whose schools connect here, as the sampler reads a lesson: every
   * participant with media here counts as a school (the origin keeps only its classrooms).
   */
  private servedAsEdge(): SampledLesson[] {
    const port = this.deps.lessons.edgeQuality;
    if (!port) return [];
    const served = [...port.served()];
    this.edgeOrigins = new Map(served.map((e) => [e.lessonId, e.origin]));
    return served.map(({ lessonId, media, peerIds }) => ({
      lesson: {
        id: lessonId,
        state: 'live' as const,
        participants: new Map([...peerIds()].map((id) => [id, { id, role: 'classroom', connected: true }])),
      },
      media,
    }));
  }

  /**
   * A tick's lessons as this node reports them. An edge's own samples go to each lesson's origin
   * (nothing of them is reported here). A lesson hosted here takes what its edges sent for the
   * schools whose media is there, where its own sampler saw none; a sample older than three
   * ticks is not taken (its edge has stopped sending).
   */
  private withEdges(lessons: LessonSample[]): LessonSample[] {
    const port = this.deps.lessons.edgeQuality;
    if (!port) return lessons;
    const freshMs = 3 * this.deps.settings.monitor.sampleSeconds * 1000;
    const mine: LessonSample[] = [];
    for (const lesson of lessons) {
      const origin = this.edgeOrigins.get(lesson.lessonId);
      if (origin !== undefined) {
        port.send(origin, lesson.lessonId, lesson.schools);
        continue;
      }
      const remote = port.received(lesson.lessonId);
      mine.push({
        ...lesson,
        schools: lesson.schools.map((s) => {
          const r = remote.get(s.schoolId);
          if (s.quality !== null || !r?.quality || Date.now() - Date.parse(r.quality.sampledAt) > freshMs) return s;
          const connected = s.connected && r.connected;
          return { ...s, connected, quality: r.quality, ...(r.problem && s.connected ? { problem: r.problem } : {}) };
        }),
      });
    }
    return mine;
  }

  private scheduleSample(): void {
    if (this.closing) return;
    this.sampleTimer = setTimeout(async () => {
      await this.sampleNow();
      this.scheduleSample();
    }, this.deps.settings.monitor.sampleSeconds * 1000);
    this.sampleTimer.unref();
  }

  /** Reacts to this node's own events: alerts for disconnections and recording faults, forgetting schools that left. */
  private onEvent(e: LiveEvent): void {
    this.history.record(e);
    // Deferred: every listener hears the event itself before the alerts it causes.
    if (e.node === this.deps.settings.nodeId) queueMicrotask(() => this.react(e));
  }

  private react(e: LiveEvent): void {
    switch (e.type) {
      case 'schoolDisconnected':
        this.raise(
          this.alerts.observe(Date.now(), e.lessonId, e.schoolId, {
            connected: false,
            lossPct: null,
            intervalMs: 0,
            problem: 'signalling connection lost',
          }),
        );
        break;
      case 'schoolJoined':
        if (e.rejoined)
          this.raise(this.alerts.observe(Date.now(), e.lessonId, e.schoolId, { connected: true, lossPct: null, intervalMs: 0 }));
        break;
      case 'schoolLink':
        this.raise(this.alerts.link(e.lessonId, e.schoolId, e.layer === 'audio-only', e.availableKbps));
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
        if (e.recording.state === 'recording') this.raise(this.alerts.recordingRecovered(e.lessonId));
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

  /** Stops sampling and heartbeats, closes history files. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.sampleTimer);
      await this.sampling;
      await this.agent.stopHeartbeat();
      for (const off of this.unsubscribe.splice(0)) off();
      await this.history.close();
    })();
    return this.closing;
  }
}
