import type { types } from 'mediasoup';
import type { HostedLesson } from '../lessons/registry.js';
import type { LessonMedia } from '../media/lessonMedia.js';
import type { QualitySummary, UplinkQuality } from '../live/types.js';
import type { TrafficTotals } from './traffic.js';

export interface SchoolSample {
  schoolId: string;
  connected: boolean;
  quality: QualitySummary | null;
  /** Why the school counts as unreachable. */
  problem?: string;
}

export interface LessonSample {
  lessonId: string;
  schools: SchoolSample[];
  /** How this node receives each publisher (instructor, classrooms with the floor). */
  uplink: UplinkQuality[];
}

export interface TickResult {
  lessons: LessonSample[];
  /** mediasoup stats requests made. */
  requests: number;
  durationMs: number;
  /** Time since the previous tick (the interval losses are measured over). */
  intervalMs: number;
}

/** What the sampler reads of a lesson: a hosted one, or (in a cluster) another node's that this node serves as an edge. */
export interface SampledLesson {
  lesson: {
    readonly id: string;
    readonly state: HostedLesson<LessonMedia>['lesson']['state'];
    readonly participants: ReadonlyMap<string, { readonly id: string; readonly role: string; readonly connected: boolean }>;
  };
  media: LessonMedia;
}

export interface SamplerOptions {
  /** The lessons with media on this node (stats come from mediasoup's objects). */
  lessons(): Iterable<SampledLesson>;
  /** Stats requests in flight at once. */
  concurrency: number;
  /** A connected receive transport that has received nothing (no RTCP, no ICE) this long is dead. */
  silentMs: number;
  traffic: TrafficTotals;
}

interface UplinkAccumulator {
  participantId: string;
  role: UplinkQuality['role'];
  bitrate: number;
  lost: number;
  expected: number;
  jitterMs: number | null;
  score: number | null;
  streams: number;
}

interface SchoolAccumulator {
  bitrate: number;
  lost: number;
  sent: number;
  rttMs: number | null;
  jitterMs: number | null;
  score: number | null;
  streams: number;
  recvTransports: types.Transport[];
}

/**
 * One sampling tick over every lesson of this node: reads getStats() of each
 * participant's transports, consumers and producers (a few requests in flight
 * at a time, nothing per packet) and summarises, per classroom, how well it
 * receives and whether its media transport is still alive. The same reads feed
 * the node's traffic totals.
 */
export class QualitySampler {
  /** Per consumer: the counters at the previous tick (loss is measured between ticks). */
  private readonly streams = new Map<string, { lost: number; sent: number }>();
  /** Per producer stream (`<producer id>/<ssrc>`): the counters at the previous tick. */
  private readonly received = new Map<string, { lost: number; received: number }>();
  /** Per transport: bytes received and when that last changed. */
  private readonly inbound = new Map<string, { bytes: number; changedAt: number }>();
  private lastTickAt = 0;

  constructor(private readonly opts: SamplerOptions) {}

  async tick(): Promise<TickResult> {
    const started = performance.now();
    const now = Date.now();
    const intervalMs = this.lastTickAt ? now - this.lastTickAt : 0;
    this.lastTickAt = now;
    const jobs: Array<() => Promise<void>> = [];
    const lessons: Array<{
      lessonId: string;
      schools: Array<{ schoolId: string; signalling: boolean; acc: SchoolAccumulator }>;
      uplink: Map<string, UplinkAccumulator>;
    }> = [];
    const seen = new Set<string>();
    const { traffic } = this.opts;
    traffic.beginTick();

    for (const { lesson, media } of this.opts.lessons()) {
      if (lesson.state === 'ended') continue;
      const entry = {
        lessonId: lesson.id,
        schools: [] as Array<{ schoolId: string; signalling: boolean; acc: SchoolAccumulator }>,
        uplink: new Map<string, UplinkAccumulator>(),
      };
      const schoolAcc = new Map<string, SchoolAccumulator>();
      for (const p of lesson.participants.values()) {
        if (p.role !== 'classroom') continue;
        const acc: SchoolAccumulator = {
          bitrate: 0,
          lost: 0,
          sent: 0,
          rttMs: null,
          jitterMs: null,
          score: null,
          streams: 0,
          recvTransports: [],
        };
        entry.schools.push({ schoolId: p.id, signalling: p.connected, acc });
        schoolAcc.set(p.id, acc);
      }
      // Every peer with media counts for traffic (instructor, monitors, plain receivers); classrooms also for quality.
      for (const peerId of media.peerIds()) {
        const acc = schoolAcc.get(peerId);
        for (const { transport, direction } of media.transportsOf(peerId)) {
          seen.add(transport.id);
          if (acc && direction === 'recv') acc.recvTransports.push(transport);
          jobs.push(async () => {
            const [stats] = (await transport.getStats()) as types.BaseTransportStats[];
            if (!stats) return;
            traffic.record(transport.id, { bytesIn: stats.bytesReceived, bytesOut: stats.bytesSent });
            const prev = this.inbound.get(transport.id);
            if (!prev || prev.bytes !== stats.bytesReceived) this.inbound.set(transport.id, { bytes: stats.bytesReceived, changedAt: now });
          });
        }
        for (const consumer of media.consumersOf(peerId)) {
          seen.add(consumer.id);
          jobs.push(async () => this.foldConsumer(consumer, await consumer.getStats(), acc));
        }
      }
      for (const info of media.listProducers()) {
        const producer = media.producer(info.producerId);
        if (!producer) continue;
        const role = lesson.participants.get(info.peerId)?.role;
        let up: UplinkAccumulator | undefined;
        if (role === 'instructor' || role === 'classroom') {
          up = entry.uplink.get(info.peerId) ?? {
            participantId: info.peerId,
            role,
            bitrate: 0,
            lost: 0,
            expected: 0,
            jitterMs: null,
            score: null,
            streams: 0,
          };
          entry.uplink.set(info.peerId, up);
        }
        jobs.push(async () => this.foldProducer(producer, await producer.getStats(), up, seen));
      }
      lessons.push(entry);
    }

    await runBounded(jobs, this.opts.concurrency);
    traffic.endTick();
    for (const id of this.streams.keys()) if (!seen.has(id)) this.streams.delete(id);
    for (const id of this.inbound.keys()) if (!seen.has(id)) this.inbound.delete(id);
    for (const id of this.received.keys()) if (!seen.has(id)) this.received.delete(id);

    const sampledAt = new Date().toISOString();
    const result: LessonSample[] = lessons.map(({ lessonId, schools, uplink }) => ({
      lessonId,
      schools: schools.map(({ schoolId, signalling, acc }) => {
        const problem = signalling ? this.transportProblem(acc.recvTransports, now) : 'signalling connection lost';
        return { schoolId, connected: problem === undefined, quality: summarise(acc, sampledAt), ...(problem ? { problem } : {}) };
      }),
      uplink: [...uplink.values()].filter((u) => u.streams > 0).map((u) => summariseUplink(u, sampledAt)),
    }));
    return { lessons: result, requests: jobs.length, durationMs: performance.now() - started, intervalMs };
  }

  private foldConsumer(
    consumer: types.Consumer,
    stats: Array<types.ConsumerStat | types.ProducerStat>,
    acc: SchoolAccumulator | undefined,
  ): void {
    const out = stats.find((s): s is types.ConsumerStat => s.type === 'outbound-rtp');
    if (!out) return;
    this.opts.traffic.record(consumer.id, { packetsOut: out.packetCount });
    const prev = this.streams.get(consumer.id);
    this.streams.set(consumer.id, { lost: out.packetsLost, sent: out.packetCount });
    if (!acc) return;
    acc.streams++;
    acc.bitrate += out.bitrate;
    // Loss over the interval: the receiver's cumulative lost count against what we sent meanwhile.
    if (prev) {
      acc.sent += Math.max(0, out.packetCount - prev.sent);
      acc.lost += Math.max(0, out.packetsLost - prev.lost);
    } else if (out.packetCount > 0) {
      // First look at this stream: the last receiver report's fraction (of 256) is all there is.
      acc.sent += 256;
      acc.lost += out.fractionLost;
    }
    if (out.roundTripTime) acc.rttMs = Math.max(acc.rttMs ?? 0, out.roundTripTime);
    acc.score = Math.min(acc.score ?? 10, out.score);
    // mediasoup drops the jitter of the school's receiver reports; the source stream's jitter is what it has.
    const clockRate = consumer.rtpParameters.codecs[0]?.clockRate ?? 90000;
    for (const s of stats) {
      if (s.type !== 'inbound-rtp') continue;
      acc.jitterMs = Math.max(acc.jitterMs ?? 0, ((s as types.ProducerStat).jitter / clockRate) * 1000);
    }
  }

  /**
   * A publisher's producer, as this node receives it. Since mediasoup 3.29 a consumer's loss is
   * only the downlink to its school, so what the instructor's own link loses shows here, on the
   * producer (packets missing on arrival, after retransmissions), and nowhere else.
   */
  private foldProducer(producer: types.Producer, stats: types.ProducerStat[], up: UplinkAccumulator | undefined, seen: Set<string>): void {
    let packets = 0;
    const clockRate = producer.rtpParameters.codecs[0]?.clockRate ?? 90000;
    for (const s of stats) {
      packets += s.packetCount;
      if (!up) continue;
      const key = `${producer.id}/${s.ssrc}`;
      seen.add(key);
      const prev = this.received.get(key);
      this.received.set(key, { lost: s.packetsLost, received: s.packetCount });
      up.streams++;
      up.bitrate += s.bitrate;
      if (prev) {
        const lost = Math.max(0, s.packetsLost - prev.lost);
        up.lost += lost;
        up.expected += Math.max(0, s.packetCount - prev.received) + lost;
      } else if (s.packetCount > 0) {
        // First look at this stream: the fraction (of 256) lost in the last report interval.
        up.expected += 256;
        up.lost += s.fractionLost;
      }
      up.jitterMs = Math.max(up.jitterMs ?? 0, (s.jitter / clockRate) * 1000);
      up.score = Math.min(up.score ?? 10, s.score);
    }
    this.opts.traffic.record(producer.id, { packetsIn: packets });
  }

  /** Why a school's media is gone: its receive transport closed, failed, or went silent (the peer vanished). */
  private transportProblem(transports: types.Transport[], now: number): string | undefined {
    for (const transport of transports) {
      if (transport.closed) return 'media transport closed';
      if (transport.type !== 'webrtc') continue;
      const t = transport as types.WebRtcTransport;
      if (t.dtlsState === 'failed' || t.dtlsState === 'closed') return `media transport DTLS ${t.dtlsState}`;
      if (t.iceState === 'disconnected' || t.iceState === 'closed') return `media transport ICE ${t.iceState}`;
      const inbound = this.inbound.get(t.id);
      if (t.dtlsState === 'connected' && inbound && now - inbound.changedAt >= this.opts.silentMs) {
        return `media transport silent for ${Math.round((now - inbound.changedAt) / 1000)} s`;
      }
    }
    return undefined;
  }
}

function summarise(acc: SchoolAccumulator, sampledAt: string): QualitySummary | null {
  if (acc.streams === 0) return null;
  return {
    bitrateKbps: Math.round(acc.bitrate / 100) / 10,
    lossPct: acc.sent > 0 ? Math.min(100, Math.round((1000 * acc.lost) / acc.sent) / 10) : 0,
    rttMs: acc.rttMs === null ? null : Math.round(acc.rttMs * 10) / 10,
    jitterMs: acc.jitterMs === null ? null : Math.round(acc.jitterMs * 10) / 10,
    score: acc.score,
    sampledAt,
  };
}

function summariseUplink(u: UplinkAccumulator, sampledAt: string): UplinkQuality {
  return {
    participantId: u.participantId,
    role: u.role,
    bitrateKbps: Math.round(u.bitrate / 100) / 10,
    lossPct: u.expected > 0 ? Math.min(100, Math.round((1000 * u.lost) / u.expected) / 10) : 0,
    jitterMs: u.jitterMs === null ? null : Math.round(u.jitterMs * 10) / 10,
    score: u.score,
    sampledAt,
  };
}

/** Runs jobs with at most `limit` in flight; a failing job (its object closed meanwhile) is skipped. */
async function runBounded(jobs: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < jobs.length) {
      const job = jobs[next++]!;
      await job().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), jobs.length) }, lane));
}
