import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Lesson } from '../lessons/lesson.js';
import { MediaCounts } from './mediaCounts.js';
import type { WorkersSource } from './ports.js';
import type { TrafficTotals } from './traffic.js';

export interface MetricsDeps {
  workers: WorkersSource;
  lessons(): Iterable<Lesson>;
  traffic: TrafficTotals;
  recordingsActive(): number;
  liveStateUp(): boolean;
  feedClients(): number;
  /** Live-feed notifications not sent to clients that lagged behind, so far. */
  feedDropped(): number;
}

/**
 * Prometheus metrics of this node, in a registry of its own. Labels are
 * node-level only (worker index, media kind, transport type, error code):
 * never lesson or school ids. Values are read when scraped, from counts kept
 * as things happen; the only requests a scrape makes are one
 * getResourceUsage() per worker.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly media = new MediaCounts();
  private readonly joins: Counter;
  private readonly joinFailures: Counter<'code'>;
  private readonly clientErrors: Counter<'code'>;
  private readonly recordingFaults: Counter;
  private readonly sampleSeconds: Gauge;
  private readonly statsRequests: Counter;
  private readonly limitRefusals: Counter<'limit'>;

  constructor(private readonly deps: MetricsDeps) {
    const registers = [this.registry];
    const { workers, traffic } = deps;
    const media = this.media;
    collectDefaultMetrics({ register: this.registry, prefix: 'lessoncast_' });

    new Gauge({
      name: 'lessoncast_mediasoup_workers',
      help: 'mediasoup workers by state',
      labelNames: ['state'],
      registers,
      collect() {
        const alive = workers.aliveCount();
        this.set({ state: 'alive' }, alive);
        this.set({ state: 'dead' }, workers.slots().length - alive);
      },
    });
    new Gauge({
      name: 'lessoncast_mediasoup_routers',
      help: 'mediasoup routers',
      registers,
      collect() {
        this.set(media.routers);
      },
    });
    const perKey = (name: string, help: string, label: string, map: Map<string, number>, keys: string[]) =>
      new Gauge({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          for (const k of new Set([...keys, ...map.keys()])) this.set({ [label]: k }, map.get(k) ?? 0);
        },
      });
    perKey('lessoncast_mediasoup_transports', 'mediasoup transports by type', 'type', media.transports, ['webrtc', 'plain', 'pipe']);
    perKey('lessoncast_mediasoup_producers', 'mediasoup producers by kind', 'kind', media.producers, ['audio', 'video']);
    perKey('lessoncast_mediasoup_consumers', 'mediasoup consumers by kind', 'kind', media.consumers, ['audio', 'video']);

    const total = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    // Traffic as of the last sampling tick (the sampler reads every transport's stats).
    const trafficTotals: Array<[name: string, help: string, key: keyof ReturnType<TrafficTotals['totals']>]> = [
      ['lessoncast_received_bytes_total', "Bytes received on participants' transports (RTP, RTCP, ICE, DTLS)", 'bytesIn'],
      ['lessoncast_sent_bytes_total', "Bytes sent on participants' transports", 'bytesOut'],
      ['lessoncast_rtp_received_packets_total', 'RTP packets received from publishers', 'packetsIn'],
      ['lessoncast_rtp_sent_packets_total', 'RTP packets sent to participants', 'packetsOut'],
    ];
    for (const [name, help, key] of trafficTotals) total(name, `${help} (as of the last sampling tick)`, () => traffic.totals()[key]);

    new Counter({
      name: 'lessoncast_worker_cpu_seconds_total',
      help: 'CPU time of each mediasoup worker (getResourceUsage)',
      labelNames: ['worker', 'mode'],
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          workers.slots().map(async (slot) => {
            if (!slot.alive) return;
            const ru = await slot.worker.getResourceUsage().catch(() => undefined);
            if (!ru) return;
            this.inc({ worker: String(slot.index), mode: 'user' }, ru.ru_utime / 1000);
            this.inc({ worker: String(slot.index), mode: 'system' }, ru.ru_stime / 1000);
          }),
        );
      },
    });

    this.joins = new Counter({ name: 'lessoncast_joins_total', help: 'Successful joins', registers });
    this.joinFailures = new Counter({
      name: 'lessoncast_join_failures_total',
      help: 'Refused or failed joins, by error code',
      labelNames: ['code'],
      registers,
    });
    this.clientErrors = new Counter({
      name: 'lessoncast_client_errors_total',
      help: "HTTP requests and WebSocket frames refused as the client's mistake (4xx, protocol errors), by error code",
      labelNames: ['code'],
      registers,
    });

    new Gauge({
      name: 'lessoncast_live_lessons',
      help: 'Lessons live on this node',
      registers,
      collect() {
        let n = 0;
        for (const l of deps.lessons()) if (l.state === 'live') n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'lessoncast_connected_schools',
      help: 'Classrooms connected to lessons on this node',
      registers,
      collect() {
        let n = 0;
        for (const l of deps.lessons()) {
          if (l.state === 'ended') continue;
          for (const p of l.participants.values()) if (p.role === 'classroom' && p.connected) n++;
        }
        this.set(n);
      },
    });
    new Gauge({
      name: 'lessoncast_recordings_active',
      help: 'Recordings being written on this node',
      registers,
      collect() {
        this.set(deps.recordingsActive());
      },
    });
    this.recordingFaults = new Counter({ name: 'lessoncast_recording_faults_total', help: 'Recording faults', registers });
    new Gauge({
      name: 'lessoncast_live_state_up',
      help: '1 when the shared live state (Redis) is reachable, or in-process',
      registers,
      collect() {
        this.set(deps.liveStateUp() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'lessoncast_live_feed_clients',
      help: 'Control-room feed connections',
      registers,
      collect() {
        this.set(deps.feedClients());
      },
    });
    total('lessoncast_live_feed_dropped_total', 'Live-feed notifications dropped for feed clients lagging more than 4 MiB behind', () =>
      deps.feedDropped(),
    );
    this.sampleSeconds = new Gauge({
      name: 'lessoncast_quality_sample_seconds',
      help: 'Duration of the last quality sampling tick',
      registers,
    });
    this.statsRequests = new Counter({
      name: 'lessoncast_quality_stats_requests_total',
      help: 'mediasoup getStats() requests made by quality sampling',
      registers,
    });
    this.limitRefusals = new Counter({
      name: 'lessoncast_limit_refusals_total',
      help: 'Requests and connections refused by a limit (RATE_LIMITED, LIMIT_REACHED, close 4429), by limit',
      labelNames: ['limit'],
      registers,
    });
  }

  /** Follows this node's workers, including replacements of dead ones; returns the call that stops following. Call once the workers run. */
  observeWorkers(): () => void {
    for (const slot of this.deps.workers.slots()) this.media.attach(slot.worker);
    return this.deps.workers.onReplaced((slot) => this.media.attach(slot.worker));
  }

  countJoin(ok: boolean, code?: string): void {
    if (ok) this.joins.inc();
    else this.joinFailures.inc({ code: code ?? 'INTERNAL' });
  }

  countClientError(code: string): void {
    this.clientErrors.inc({ code });
  }

  countRecordingFault(): void {
    this.recordingFaults.inc();
  }

  /** A limit refused something: authFailures, unauthenticatedSockets, lessonActions, transports, producers, consumers. */
  countLimitRefusal(limit: string): void {
    this.limitRefusals.inc({ limit });
  }

  /** With HTTPS on: the served certificate's notAfter, read at each scrape (so a reload shows at once). Call once. */
  watchCertificate(notAfter: () => Date): void {
    new Gauge({
      name: 'lessoncast_tls_certificate_expiry_timestamp_seconds',
      help: 'When the TLS certificate being served expires (notAfter, Unix seconds); absent on plain HTTP',
      registers: [this.registry],
      collect() {
        this.set(notAfter().getTime() / 1000);
      },
    });
  }

  sampled(durationMs: number, requests: number): void {
    this.sampleSeconds.set(durationMs / 1000);
    this.statsRequests.inc(requests);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
