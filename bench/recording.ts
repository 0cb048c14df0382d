/**
 * Recording benchmark, through lessoncast's own RecordingService (copy path:
 * H264 + Opus RTP → ffmpeg -c copy → HLS fMP4, one ffmpeg per track).
 *
 * The server runs as its own process pinned to CPU 0 (Node, mediasoup worker
 * and every ffmpeg it spawns); the instructors' werift senders run here on
 * CPU 1, all fed by one shared ffmpeg encoder (H264 1280x720 ~1.5 Mbps 30 fps
 * + Opus) so that many lessons cost the load generator little; lesson i gets
 * it (i mod 8) × 125 ms late, so that 40 lessons' key frames do not all hit
 * the server in the same instant as no real lessons would.
 *
 * 1. One lesson, not recorded, then one recorded lesson for 60 s: CPU of the
 *    server's Node, the worker and the recording ffmpegs, and their memory.
 * 2. More recorded lessons at once (ladder, then bisection) until segments
 *    fall behind real time: the newest published segment of some track ends
 *    more than 3 segment lengths before now, or the lag grows by more than one
 *    segment over the window, or a lesson's recorded video bitrate drops
 *    below 90 % of what its sender sent meanwhile (ffmpeg or the relay
 *    dropping input). If a sender itself sent less than 90 % of the single
 *    lesson's rate, the load generator is the limit, not the recorder: the
 *    step fails as "generator" and the capacity is a lower bound.
 *
 * 3. (after 1) ffmpeg deaths: the lesson's camera and voice ffmpegs are killed
 *    (SIGKILL) half-way through a segment, a few times: how long until each
 *    records again, and how many seconds of media the track's timeline lost
 *    (from the end of the dead run's published segments to the start of the
 *    next run's first one).
 *
 *   npx tsx bench/recording.ts [--solo 60] [--baseline 15] [--deaths 3] [--ladder 4,8,16,32,64] [--refine 2] [--window 12]
 *   (--ladder '' stops after the deaths)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startSharedFfmpegRtp, type SharedRtpSource } from '../kit/ffmpegRtp.js';
import { SignalClient } from '../kit/signalClient.js';
import type { RecordingManifest } from '../src/recording/manifest.js';
import { publish } from '../kit/peers.js';
import type { RtcSender } from '../kit/rtcSender.js';
import {
  BENCH_NICE,
  allCpus,
  climbLadder,
  setNice,
  udpDrops,
  cpuSeconds,
  cpuTimes,
  createLesson,
  descendants,
  inBatches,
  pinProcess,
  pssMb,
  rssMb,
  saveResult,
  sleep,
  startServer,
  table,
  type BenchServer,
} from './lib.js';

export interface RecordingBenchOptions {
  soloSeconds: number;
  baselineSeconds: number;
  ladder: number[];
  refine: number;
  windowSeconds: number;
  segmentSeconds: number;
  /** How many times the solo lesson's ffmpegs are killed (0: never). */
  deaths: number;
  source: { width: number; height: number; fps: number; videoKbps: number };
}

export const defaultRecordingOptions: RecordingBenchOptions = {
  soloSeconds: 60,
  baselineSeconds: 15,
  ladder: [8, 16, 32, 64, 128],
  refine: 2,
  windowSeconds: 12,
  segmentSeconds: 4,
  deaths: 3,
  source: { width: 1280, height: 720, fps: 30, videoKbps: 1500 },
};

interface LiveLesson {
  lessonId: string;
  teacher: SignalClient;
  sender: RtcSender;
  end(): Promise<void>;
}

async function startLesson(s: BenchServer, shared: SharedRtpSource, record: boolean, n: number): Promise<LiveLesson> {
  const teacherId = `teacher-${n}`;
  const lessonId = await createLesson(s, teacherId, record);
  const teacher = await SignalClient.connect(s.wsUrl);
  try {
    await teacher.request('authenticate', { token: await s.token('instructor', teacherId, [lessonId]) });
    const joined = await teacher.request('join', { lessonId });
    await teacher.request('goLive', {});
    // Lessons on 8 phases of the shared encoder's 1 s GOP: independent lessons' key frames do not all arrive at once.
    const sender = await publish(teacher, joined.routerRtpCapabilities, {
      audio: true,
      video: 'h264',
      sharedSource: shared.delayed((n % 8) * 125),
    });
    return {
      lessonId,
      teacher,
      sender,
      async end() {
        await teacher.request('endLesson', {}).catch(() => undefined);
        await sender.close();
        teacher.close();
      },
    };
  } catch (err) {
    teacher.close();
    throw err;
  }
}

interface Segment {
  programDateTime: string;
  duration: number;
  size: number;
}
interface TrackState {
  id: string;
  kind: string;
  segments: Segment[];
}

function readTracks(s: BenchServer, lessonId: string): TrackState[] {
  try {
    const m = JSON.parse(readFileSync(path.join(s.recordingsDir, lessonId, 'manifest.json'), 'utf8')) as { tracks: TrackState[] };
    return m.tracks;
  } catch {
    return []; // not written yet (or being replaced)
  }
}

/** Seconds between now and the end of the newest published segment, worst track of the lesson. */
function lagSeconds(tracks: TrackState[], now: number, since: number): number {
  if (tracks.length < 2) return (now - since) / 1000; // camera and voice both expected
  return Math.max(
    ...tracks.map((t) => {
      const last = t.segments.at(-1);
      return last ? (now - Date.parse(last.programDateTime)) / 1000 - last.duration : (now - since) / 1000;
    }),
  );
}

/** Video RTP bytes a lesson's sender has written so far. */
const sentVideoBytes = (l: LiveLesson): number => l.sender.stats().video?.bytesWritten ?? 0;

/** Recorded video bitrate (kbit/s of media time) over segments that start after `from`. */
function videoKbps(tracks: TrackState[], from: number): number {
  const segs = tracks.filter((t) => t.kind === 'video').flatMap((t) => t.segments.filter((x) => Date.parse(x.programDateTime) >= from));
  const dur = segs.reduce((a, x) => a + x.duration, 0);
  return dur > 0 ? (segs.reduce((a, x) => a + x.size, 0) * 8) / dur / 1000 : NaN;
}

interface ServerSnapshot {
  /** pid → kind and CPU seconds so far, for the server's Node, its worker(s) and its ffmpegs. */
  procs: Map<number, { kind: 'node' | 'worker' | 'ffmpeg' | 'other'; cpu: number }>;
  ffmpegCount: number;
  ffmpegPssMb: number;
  nodeRssMb: number;
}

function serverSnapshot(s: BenchServer): ServerSnapshot {
  const serverPid = s.child.pid!;
  const procs: ServerSnapshot['procs'] = new Map([[serverPid, { kind: 'node', cpu: cpuOf(serverPid) }]]);
  let ffmpegCount = 0;
  let ffmpegPssMb = 0;
  for (const p of descendants(serverPid)) {
    const kind = p.comm.startsWith('mediasoup-work') ? 'worker' : p.comm === 'ffmpeg' ? 'ffmpeg' : 'other';
    procs.set(p.pid, { kind, cpu: cpuOf(p.pid) });
    if (kind === 'ffmpeg') {
      ffmpegCount++;
      ffmpegPssMb += safe(() => pssMb(p.pid));
    }
  }
  return { procs, ffmpegCount, ffmpegPssMb, nodeRssMb: rssMb(serverPid) };
}

/** CPU seconds used between two snapshots by kind, counting processes alive at both (an ffmpeg run may restart meanwhile). */
function cpuDelta(a: ServerSnapshot, b: ServerSnapshot): { node: number; worker: number; ffmpeg: number } {
  const out = { node: 0, worker: 0, ffmpeg: 0 };
  for (const [pid, pb] of b.procs) {
    const pa = a.procs.get(pid);
    if (pa && pb.kind !== 'other') out[pb.kind] += pb.cpu - pa.cpu;
  }
  return out;
}

/** Receive-buffer drops on the sockets of the server's worker, its Node (the recording relay) and its ffmpegs. */
function socketDrops(s: BenchServer, snap: ServerSnapshot): Record<string, number> {
  const owners = [...snap.procs].flatMap(([pid, p]) => (p.kind === 'other' ? [] : [{ pid, label: p.kind }]));
  return udpDrops(owners);
}

const safe = (f: () => number): number => {
  try {
    return f();
  } catch {
    return 0;
  }
};
const cpuOf = (pid: number): number => safe(() => cpuSeconds(pid));

async function waitForSegments(s: BenchServer, lessons: LiveLesson[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (lessons.every((l) => readTracks(s, l.lessonId).filter((t) => t.segments.length > 0).length >= 2)) return;
    await sleep(500);
  }
}

export interface DeathResult {
  track: string;
  /** From the kill to the manifest naming the next run's ffmpeg. */
  restartMs: number;
  /** Timeline between the dead run's last published segment and the next run's first (negative: overlap). */
  lostSeconds: number;
}

function readManifest(s: BenchServer, lessonId: string): RecordingManifest | null {
  try {
    return JSON.parse(readFileSync(path.join(s.recordingsDir, lessonId, 'manifest.json'), 'utf8')) as RecordingManifest;
  } catch {
    return null; // being replaced
  }
}

async function pollFor<T>(what: string, timeoutMs: number, f: () => T | null | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== null && v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Kills every running recording ffmpeg of a lesson half-way through a segment, `times` times; see the file comment. */
async function ffmpegDeaths(s: BenchServer, lessonId: string, times: number, segmentSeconds: number): Promise<DeathResult[]> {
  const out: DeathResult[] = [];
  for (let i = 0; i < times; i++) {
    const published = (): number => Math.max(0, ...(readManifest(s, lessonId)?.tracks ?? []).map((t) => t.segments.length));
    const before = published();
    await pollFor('a new segment', segmentSeconds * 3000, () => (published() > before ? true : null));
    await sleep(segmentSeconds * 500);
    const m = await pollFor('the manifest', 2000, () => readManifest(s, lessonId));
    const victims = m.tracks.flatMap((t) => {
      const run = t.runs.at(-1);
      return run?.pid ? [{ id: t.id, run: run.index, pid: run.pid }] : [];
    });
    const killedAt = Date.now();
    for (const v of victims) process.kill(v.pid, 'SIGKILL');
    const restarted = new Map<string, number>();
    await pollFor('every ffmpeg to run again', 20000, () => {
      for (const t of readManifest(s, lessonId)?.tracks ?? []) {
        const v = victims.find((x) => x.id === t.id);
        if (v && !restarted.has(t.id) && t.runs.some((r) => r.index > v.run && r.pid)) restarted.set(t.id, Date.now() - killedAt);
      }
      return restarted.size === victims.length ? true : null;
    });
    const after = await pollFor('a segment of every restarted run', segmentSeconds * 4000, () => {
      const now = readManifest(s, lessonId);
      const ok = victims.every((v) => now?.tracks.find((t) => t.id === v.id)?.segments.some((x) => x.run > v.run));
      return ok ? now : null;
    });
    for (const v of victims) {
      const t = after.tracks.find((x) => x.id === v.id)!;
      const dead = t.segments.filter((x) => x.run === v.run).at(-1);
      const next = t.segments.find((x) => x.run > v.run)!;
      const end = dead ? dead.startSeconds + dead.duration : t.runs.find((r) => r.index === v.run)!.offsetSeconds;
      out.push({ track: v.id, restartMs: restarted.get(v.id)!, lostSeconds: next.startSeconds - end });
    }
  }
  return out;
}

export interface SoloResult {
  baseline: { nodeCpu: number; workerCpu: number };
  recorded: {
    nodeCpu: number;
    workerCpu: number;
    ffmpegCpu: number;
    ffmpegProcesses: number;
    ffmpegPssMb: number;
    nodeRssMb: number;
    nodeRssMbBefore: number;
    videoKbps: number;
    sentKbps: number;
    lagS: number;
  };
  costCpu: number;
}

export interface StepResult {
  lessons: number;
  serverCpu: number;
  nodeCpu: number;
  workerCpu: number;
  ffmpegCpu: number;
  cpu0Busy: number;
  /** UDP datagrams dropped by full receive buffers in the window, by owner: where a loss happened. */
  drops: Record<string, number>;
  ffmpegPssMb: number;
  nodeRssMb: number;
  maxLagS: number;
  lagGrowthS: number;
  /** Recorded ÷ sent video bitrate, worst lesson. */
  minKbpsRatio: number;
  /** Sent video bitrate ÷ the single lesson's, worst lesson (below 0.9: the load generator is the limit). */
  minSentRatio: number;
  generatorCpu: number;
  pass: boolean;
  why: string;
}

export async function runRecordingBench(opts: RecordingBenchOptions = defaultRecordingOptions): Promise<{
  solo: SoloResult;
  steps: StepResult[];
  deaths: DeathResult[];
  capacity: number | null;
  lowerBound: boolean;
  perLesson: number | null;
  projected: number | null;
}> {
  setNice(process.pid, BENCH_NICE); // inherited by everything started from here (server, workers, ffmpeg)
  pinProcess(process.pid, '1');
  const s = await startServer(
    { LESSONCAST_MEDIA_WORKERS: '1', LESSONCAST_RECORDING_SEGMENT_SECONDS: String(opts.segmentSeconds) },
    { cpus: '0' },
  );
  const shared = await startSharedFfmpegRtp({
    video: { codec: 'h264', payloadType: 102, ...opts.source, bitrateKbps: opts.source.videoKbps },
    audio: { payloadType: 100 },
  });
  const lessons: LiveLesson[] = [];
  try {
    // -- 1. one lesson: not recorded, then recorded ------------------------------------
    const plain = await startLesson(s, shared, false, 0);
    await sleep(3000);
    let a = serverSnapshot(s);
    await sleep(opts.baselineSeconds * 1000);
    let b = serverSnapshot(s);
    let d = cpuDelta(a, b);
    const baseline = { nodeCpu: d.node / opts.baselineSeconds, workerCpu: d.worker / opts.baselineSeconds };
    await plain.end();
    await sleep(1000);

    const nodeRssMbBefore = rssMb(s.child.pid!);
    const first = await startLesson(s, shared, true, 1);
    lessons.push(first);
    await waitForSegments(s, lessons, 20000);
    a = serverSnapshot(s);
    const soloFrom = Date.now();
    const soloSentA = sentVideoBytes(first);
    await sleep(opts.soloSeconds * 1000);
    b = serverSnapshot(s);
    const sentKbps = ((sentVideoBytes(first) - soloSentA) * 8) / (Date.now() - soloFrom);
    d = cpuDelta(a, b);
    const tracks = readTracks(s, first.lessonId);
    const recorded = {
      nodeCpu: d.node / opts.soloSeconds,
      workerCpu: d.worker / opts.soloSeconds,
      ffmpegCpu: d.ffmpeg / opts.soloSeconds,
      ffmpegProcesses: b.ffmpegCount,
      ffmpegPssMb: b.ffmpegPssMb,
      nodeRssMb: b.nodeRssMb,
      nodeRssMbBefore,
      videoKbps: videoKbps(tracks, soloFrom - opts.segmentSeconds * 1000),
      sentKbps,
      lagS: lagSeconds(tracks, Date.now(), soloFrom),
    };
    const solo: SoloResult = {
      baseline,
      recorded,
      costCpu: recorded.ffmpegCpu + Math.max(0, recorded.nodeCpu - baseline.nodeCpu) + Math.max(0, recorded.workerCpu - baseline.workerCpu),
    };
    const pct = (x: number) => (x * 100).toFixed(1);
    console.log('\nrecording: one lesson (H264 1280x720 ~1.5 Mbps + Opus, copy path), server pinned to CPU 0');
    console.log(
      table([
        {
          what: 'lesson, not recorded',
          'node CPU %': pct(baseline.nodeCpu),
          'worker CPU %': pct(baseline.workerCpu),
          'ffmpeg CPU %': '–',
          'ffmpeg PSS MB': '–',
          s: opts.baselineSeconds,
        },
        {
          what: 'lesson, recorded',
          'node CPU %': pct(recorded.nodeCpu),
          'worker CPU %': pct(recorded.workerCpu),
          'ffmpeg CPU %': `${pct(recorded.ffmpegCpu)} (${recorded.ffmpegProcesses} procs)`,
          'ffmpeg PSS MB': recorded.ffmpegPssMb.toFixed(0),
          s: opts.soloSeconds,
        },
      ]),
    );
    console.log(
      `recording cost per lesson ≈ ${pct(solo.costCpu)} % of a core (ffmpeg + extra node relay + extra worker), ` +
        `${recorded.ffmpegPssMb.toFixed(0)} MB ffmpeg PSS (server Node RSS ${nodeRssMbBefore.toFixed(0)} → ${recorded.nodeRssMb.toFixed(0)} MB); ` +
        `video sent ${recorded.sentKbps.toFixed(0)} kbit/s, recorded ${recorded.videoKbps.toFixed(0)} kbit/s, newest segment ${recorded.lagS.toFixed(1)} s behind`,
    );
    const soloSentKbps = recorded.sentKbps;

    // -- 3. ffmpeg deaths -----------------------------------------------------------------
    const deaths = await ffmpegDeaths(s, first.lessonId, opts.deaths, opts.segmentSeconds);
    if (deaths.length) {
      console.log(`\nrecording: ffmpeg killed (SIGKILL) mid-segment, ${opts.deaths} times (${opts.segmentSeconds} s segments)`);
      console.log(
        table(deaths.map((x) => ({ track: x.track, 'running again after ms': x.restartMs, 'seconds lost': x.lostSeconds.toFixed(3) }))),
      );
    }
    if (opts.ladder.length === 0) {
      const file = saveResult('recording', { opts, solo, deaths });
      console.log(`saved ${file}`);
      return { solo, steps: [], deaths, capacity: null, lowerBound: true, perLesson: null, projected: null };
    }

    // -- 2. how many at once --------------------------------------------------------------
    const steps: StepResult[] = [];
    const measure = async (n: number): Promise<StepResult> => {
      while (lessons.length > n) await lessons.pop()!.end();
      const fresh: number[] = [];
      for (let i = lessons.length; i < n; i++) fresh.push(i + 1);
      const added: LiveLesson[] = [];
      await inBatches(fresh, 4, async (i) => {
        added.push(await startLesson(s, shared, true, i));
      });
      lessons.push(...added);
      await waitForSegments(s, lessons, 15000);
      await sleep(1000);
      const t0 = Date.now();
      const pa = serverSnapshot(s);
      const busyA = cpuTimes();
      const dropsA = socketDrops(s, pa);
      const genA = cpuOf(process.pid) + cpuOf(shared.source.process.pid ?? 0);
      const sentA = lessons.map(sentVideoBytes);
      const lagA = lessons.map((l) => lagSeconds(readTracks(s, l.lessonId), t0, t0 - 10_000));
      await sleep(opts.windowSeconds * 1000);
      const t1 = Date.now();
      const pb = serverSnapshot(s);
      const busyB = cpuTimes();
      const dropsB = socketDrops(s, pb);
      const genB = cpuOf(process.pid) + cpuOf(shared.source.process.pid ?? 0);
      const wall = (t1 - t0) / 1000;
      const dd = cpuDelta(pa, pb);
      const tracksNow = lessons.map((l) => readTracks(s, l.lessonId));
      const lagB = tracksNow.map((t) => lagSeconds(t, t1, t0 - 10_000));
      const sentKbpsNow = lessons.map((l, i) => ((sentVideoBytes(l) - sentA[i]!) * 8) / (t1 - t0));
      const recordedRatios = tracksNow.map((t, i) => videoKbps(t, t0 - opts.segmentSeconds * 1000) / sentKbpsNow[i]!);
      const maxLag = Math.max(...lagB);
      const growth = Math.max(...lagB.map((x, i) => x - lagA[i]!));
      const minRatio = Math.min(...recordedRatios.map((r) => (Number.isFinite(r) ? r : 0)));
      const minSent = Math.min(...sentKbpsNow) / soloSentKbps;
      const why: string[] = [];
      if (minSent < 0.9) why.push(`generator: a sender sent ${(minSent * 100).toFixed(0)} % of 1 lesson's rate`);
      if (maxLag > 3 * opts.segmentSeconds) why.push(`lag ${maxLag.toFixed(1)} s`);
      if (growth > opts.segmentSeconds) why.push(`lag +${growth.toFixed(1)} s`);
      if (minRatio < 0.9) why.push(`recorded ${(minRatio * 100).toFixed(0)} % of sent video`);
      const r: StepResult = {
        lessons: n,
        serverCpu: (dd.node + dd.worker + dd.ffmpeg) / wall,
        nodeCpu: dd.node / wall,
        workerCpu: dd.worker / wall,
        ffmpegCpu: dd.ffmpeg / wall,
        drops: Object.fromEntries(Object.entries(dropsB).map(([k, v]) => [k, Math.max(0, v - (dropsA[k] ?? 0))])),
        cpu0Busy: (busyB[0]!.busy - busyA[0]!.busy) / Math.max(1, busyB[0]!.total - busyA[0]!.total),
        ffmpegPssMb: pb.ffmpegPssMb,
        nodeRssMb: pb.nodeRssMb,
        maxLagS: maxLag,
        lagGrowthS: growth,
        minKbpsRatio: minRatio,
        minSentRatio: minSent,
        generatorCpu: (genB - genA) / wall,
        pass: why.length === 0,
        why: why.join(', '),
      };
      steps.push(r);
      console.log(table([stepRow(r)]));
      return r;
    };
    await climbLadder({
      ladder: opts.ladder,
      refine: opts.refine,
      quantum: 1,
      run: measure,
      // The whole server is on CPU 0: never jump far past the load projected to fill it.
      limit: (last, n) => (n * 1.1) / Math.max(0.01, last.serverCpu),
    });
    const capacity = steps.filter((x) => x.pass).reduce<number | null>((m, x) => Math.max(m ?? 0, x.lessons), null);
    // Failures that were all the load generator's say only that the recorder did at least this much.
    const lowerBound = steps.filter((x) => !x.pass).every((x) => x.minSentRatio < 0.9);
    steps.sort((x, y) => x.lessons - y.lessons);
    console.log(`\nrecording: lessons recorded at once, whole server (node + worker + ffmpeg) on CPU 0, ${opts.windowSeconds} s windows`);
    console.log(table(steps.map(stepRow)));
    const note = !lowerBound ? '' : steps.some((x) => !x.pass) ? ' (the load generator gave out first)' : ' (top of the ladder)';
    console.log(`lessons one core records at once without falling behind: ${lowerBound ? '≥ ' : ''}${capacity ?? 'none'}${note}`);
    // At scale the fixed costs (the monitor's ticks, the server's idle work) spread out: the slope is the marginal cost.
    const best = steps.find((x) => x.lessons === capacity);
    const perLesson = best ? best.serverCpu / best.lessons : null;
    const projected = best ? Math.floor((best.lessons * 0.9) / best.serverCpu) : null;
    if (best) {
      console.log(
        `at ${best.lessons} lessons: ${(perLesson! * 100).toFixed(2)} % of a core per recorded lesson (server Node + worker + ffmpeg), ` +
          `${(best.ffmpegPssMb / best.lessons).toFixed(0)} MB ffmpeg PSS per lesson; projected ${projected} lessons at 90 % of the core`,
      );
    }
    const file = saveResult('recording', { opts, solo, deaths, steps, capacity, lowerBound, perLesson, projected });
    console.log(`saved ${file}`);
    return { solo, steps, deaths, capacity, lowerBound, perLesson, projected };
  } finally {
    await Promise.allSettled(lessons.map((l) => l.end()));
    await shared.source.close();
    await s.stop();
    pinProcess(process.pid, allCpus());
  }
}

function stepRow(r: StepResult): Record<string, string | number> {
  const pct = (x: number) => (x * 100).toFixed(0);
  return {
    lessons: r.lessons,
    'server CPU %': pct(r.serverCpu),
    'node %': pct(r.nodeCpu),
    'worker %': pct(r.workerCpu),
    'ffmpeg %': pct(r.ffmpegCpu),
    'cpu0 busy %': pct(r.cpu0Busy),
    'UDP drops w/n/f': ['worker', 'node', 'ffmpeg'].map((k) => r.drops[k] ?? 0).join('/'),
    'ffmpeg PSS MB': r.ffmpegPssMb.toFixed(0),
    'node RSS MB': r.nodeRssMb.toFixed(0),
    'max lag s': r.maxLagS.toFixed(1),
    'lag growth s': r.lagGrowthS.toFixed(1),
    'recorded/sent': r.minKbpsRatio.toFixed(2),
    'sent/solo': r.minSentRatio.toFixed(2),
    'gen CPU %': pct(r.generatorCpu),
    ok: r.pass ? 'yes' : `no (${r.why})`,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const d = defaultRecordingOptions;
  const { values } = parseArgs({
    options: {
      solo: { type: 'string', default: String(d.soloSeconds) },
      baseline: { type: 'string', default: String(d.baselineSeconds) },
      ladder: { type: 'string', default: d.ladder.join(',') },
      refine: { type: 'string', default: String(d.refine) },
      window: { type: 'string', default: String(d.windowSeconds) },
      deaths: { type: 'string', default: String(d.deaths) },
    },
  });
  await runRecordingBench({
    ...d,
    soloSeconds: Number(values.solo),
    baselineSeconds: Number(values.baseline),
    ladder: values.ladder ? values.ladder.split(',').map(Number) : [],
    deaths: Number(values.deaths),
    refine: Number(values.refine),
    windowSeconds: Number(values.window),
  });
  process.exit(0);
}
