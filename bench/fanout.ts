/**
 * Fan-out benchmark: one lesson (H264 1280x720 ~1.5 Mbps 30 fps + Opus from
 * ffmpeg, published over WebRTC by a werift sender) forwarded to N classrooms,
 * each a PlainTransport with SRTP sending audio + video to a local UDP socket.
 * The SFU is pinned to CPU 0, everything else (this Node, ffmpeg, receivers)
 * to CPU 1, so the figures are per core.
 *
 * Two profiles of output (--profile, default both, reported side by side):
 *   minimal        a PlainTransport with SRTP per classroom (NACK, PLI, two header extensions, no
 *                  transport-cc), sent to local UDP sockets: the Janus-comparable figure
 *   browser        a classroom as Chromium receives it (issue 18): a WebRtcTransport on the
 *                  worker's WebRtcServer, DTLS-SRTP, consumed with exactly the capabilities of
 *                  bench/fixtures/chromium-rtp-capabilities.json; K real receivers send
 *                  transport-cc feedback and receiver reports (kit/lightReceiver.ts), the other
 *                  N − K are mute stand-ins (connected, never read, no feedback), and an
 *                  agreement check measures both kinds at one N
 *                  (lessoncast and bare only)
 *
 * Targets, in one run, one after the other, on the same ladder of N:
 *   lessoncast     the real server in this process; outputs through LessonMedia
 *   bare           mediasoup alone, same worker binary (bench/bare-mediasoup.ts)
 *   lessoncast-2w  two workers, the lesson spread with pipeToRouter, one worker per CPU
 *   floor          raw sendto() of each packet to each output (bench/floor/), no SRTP
 * Another SFU (e.g. Janus's rtp_forward) plugs in as a FanoutTarget (bench/fanout/target.ts).
 *
 * Per step: SFU CPU (/proc deltas), packets and Mbit/s out (the SFU's own
 * counters), loss and late packets seen by sampled plain receivers and by
 * real WebRTC classrooms, consumer scores. N climbs the ladder until loss ≥ 1 %
 * or SFU CPU ≥ 90 % (never past the N projected to fill the core), then the gap
 * is bisected.
 *
 *   npx tsx bench/fanout.ts [--targets lessoncast,bare,lessoncast-2w,floor] [--ladder 50,100,200,...]
 *                           [--refine 2] [--warmup 3] [--measure 8] [--samples 8] [--webrtc 2] [--srtp AEAD_AES_256_GCM]
 *                           [--profile both|browser|minimal] [--real 16] [--agree 100]
 */
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import path from 'node:path';
import { startBareMediasoupTarget, type BareTargetOptions } from './bare-mediasoup.js';
import { startLessoncastTarget } from './fanout/lessoncastTarget.js';
import { startFloorTarget } from './floor/floorTarget.js';
import { BrowserOutputs } from './fanout/browser.js';
import { chromiumCapabilities } from './fanout/chromiumCaps.js';
import { RtpSampleSocket, Sink, lossBetween, sumCounters, type LossProbe } from './fanout/probes.js';
import { sendRates, type FanoutTarget, type LessonSource, type SentCounters } from './fanout/target.js';
import {
  BENCH_NICE,
  allCpus,
  root,
  climbLadder,
  setNice,
  udpDrops,
  cpuSeconds,
  cpuTimes,
  pinProcess,
  saveResult,
  sleep,
  table,
} from './lib.js';

export type TargetName = 'lessoncast' | 'bare' | 'lessoncast-2w' | 'floor';
const TARGETS: TargetName[] = ['lessoncast', 'bare', 'lessoncast-2w', 'floor'];
export type ProfileName = 'minimal' | 'browser';
/** The targets with browser-classroom outputs. */
const BROWSER_TARGETS: TargetName[] = ['lessoncast', 'bare'];

export interface FanoutOptions {
  targets: TargetName[];
  ladder: number[];
  /** Per-target ladders that replace `ladder` (the floor needs one step to give its µs per packet). */
  ladders: Partial<Record<TargetName, number[]>>;
  /** Bisection steps between the last passing and the first failing N. */
  refine: number;
  warmupS: number;
  measureS: number;
  /** Outputs read and checked in Node (the first ones); the rest go to an unread sink. */
  samples: number;
  webrtc: number;
  srtp: types.SrtpCryptoSuite;
  maxLoss: number;
  maxCpu: number;
  source: LessonSource;
  /** For lessoncast-2w: small, so the lesson spills onto the second worker from the start. */
  consumersPerRouter2w: number;
  profiles: ProfileName[];
  /** Browser profile: outputs with real receivers (feedback) at each step; the rest are mute stand-ins. */
  realReceivers: number;
  /** Browser profile: N of the agreement check (all real vs realReceivers real); 0 = none. */
  agreeN: number;
  /** The worker settings the levers bench varies (bench/levers.ts); the defaults are lessoncast's. */
  worker: WorkerLevers;
}

export interface WorkerLevers {
  /** Our worker build's sendmmsg() batching (media.udpSendBatch), for every target. */
  sendBatch: boolean;
  /** mediasoup's bandwidth estimation on the browser outputs' transports (media.enableBwe). */
  classroomBwe: boolean;
}

export const defaultFanoutOptions: FanoutOptions = {
  targets: ['lessoncast', 'bare', 'lessoncast-2w', 'floor'],
  ladder: [50, 100, 200, 400, 800, 1600, 3200],
  ladders: { 'lessoncast-2w': [100, 200, 400, 800, 1600, 3200], floor: [800] },
  refine: 2,
  warmupS: 3,
  measureS: 8,
  samples: 8,
  webrtc: 2,
  srtp: 'AEAD_AES_256_GCM',
  maxLoss: 0.01,
  maxCpu: 0.9,
  source: { width: 1280, height: 720, fps: 30, videoKbps: 1500 },
  consumersPerRouter2w: 2,
  profiles: ['minimal', 'browser'],
  realReceivers: 16,
  agreeN: 100,
  worker: { sendBatch: true, classroomBwe: true },
};

export interface StepResult {
  n: number;
  streams: number;
  /** Per SFU process, fraction of one CPU. */
  sfuCpu: number[];
  pktPerS: number;
  mbitPerS: number;
  usPerPkt: number;
  loss: number;
  webrtcLoss: number;
  late: number;
  score: { mean: number; min: number } | undefined;
  /** This Node + helpers (ffmpeg), fraction of one CPU. */
  generatorCpu: number;
  /** The busiest SFU core's load from our processes (see coreLoad): what the 90 % rule applies to. */
  coreLoad: number;
  /** Datagrams dropped by full receive buffers in the window: at the SFU's sockets (its input), at this Node's (samples, WebRTC classrooms). */
  udpDrops: { sfu: number; gen: number };
  /** Every CPU's busy fraction, all processes of the machine (shows other load on the SFU's core). */
  cpuBusy: number[];
  setupS: number;
  pass: boolean;
  why: string;
  /** Nothing reached the sampled receivers: the published lesson itself is gone. */
  sourceLost: boolean;
  /** The step could not be measured (see `why`); its figures are empty. */
  noData?: boolean;
  /** Browser profile: outputs with real receivers, their transports' estimates (kbit/s) and the feedback they sent in the window. */
  browser?: {
    real: number;
    estimateKbps: { min: number; median: number };
    /** The stand-ins' estimates: without feedback, mediasoup backs them off towards 5 kbit/s. */
    standInEstimateKbps: { min: number; median: number };
    feedbackPerS: number;
    reportsPerS: number;
  };
}

/** The outputs of one profile on one target, at n. */
export interface OutputSet {
  readonly profile: ProfileName;
  set(n: number): Promise<void>;
  /** Receivers that count loss: the first sampled plain outputs, or the real browser receivers. */
  probes(): LossProbe[];
  browser?: BrowserOutputs;
  close(): void;
}

export function minimalOutputs(target: FanoutTarget, samples: RtpSampleSocket[], sink: Sink): OutputSet {
  let n = 0;
  return {
    profile: 'minimal',
    set: async (count) => {
      await target.setOutputs(count, (i) => (i < samples.length ? samples[i]!.destination : sink.destination));
      n = count;
    },
    probes: () => samples.slice(0, n),
    close: () => undefined,
  };
}

/** Browser outputs, the first `real()` of them with real receivers. */
export function browserOutputs(target: FanoutTarget, real: () => number): OutputSet {
  const b = new BrowserOutputs(target, chromiumCapabilities().rtpCapabilities);
  return { profile: 'browser', set: (n) => b.set(n, real()), probes: () => b.probes(), browser: b, close: () => b.close() };
}

/**
 * How full the busiest SFU core is with our work: the SFU process, plus —
 * when a worker sits on every core — the load generator's share (it then has
 * no core of its own). Other people's load on the machine is not counted.
 */
function coreLoad(sfuCpu: number[], generatorCpu: number): number {
  const shared = sfuCpu.length > 1 ? generatorCpu / sfuCpu.length : 0;
  return Math.max(...sfuCpu.map((x) => (Number.isFinite(x) ? x : 0)), 0.01) + shared;
}

/** A step that could not be measured. */
function unmeasured(n: number, why: string): StepResult {
  return {
    n,
    streams: n * 2,
    sfuCpu: [NaN],
    pktPerS: NaN,
    mbitPerS: NaN,
    usPerPkt: NaN,
    loss: NaN,
    webrtcLoss: NaN,
    late: 0,
    score: undefined,
    generatorCpu: NaN,
    coreLoad: NaN,
    udpDrops: { sfu: 0, gen: 0 },
    cpuBusy: [],
    setupS: NaN,
    pass: false,
    why,
    sourceLost: false,
    noData: true,
  };
}

/** A step that takes longer than this is abandoned: a saturated worker serves its channel only between packet bursts. */
const STEP_TIMEOUT_MS = 60_000;

export interface TargetResult {
  target: string;
  profile: ProfileName;
  /** Browser profile: the agreement check run before the ladder. */
  agreement?: Agreement;
  sfu: Array<{ label: string; cpu: number }>;
  steps: StepResult[];
  /** Largest N measured with loss < maxLoss and the busiest SFU core's load (coreLoad) < maxCpu. */
  capacity: number | null;
  /** False when no step failed: the capacity is only a lower bound. */
  bounded: boolean;
  /** N at which the busiest SFU process alone would reach maxCpu (no load generator beside it), from the largest passing step (CPU ∝ N). */
  projected: number | null;
  usPerPkt: number | null;
}

async function measureStep(target: FanoutTarget, n: number, opts: FanoutOptions, outputs: OutputSet): Promise<StepResult> {
  const t0 = performance.now();
  await outputs.set(n);
  const setupS = (performance.now() - t0) / 1000;
  const probes = outputs.probes();
  await sleep(opts.warmupS * 1000);

  const generatorPids = [process.pid, ...target.helperPids];
  const dropOwners = [...target.sfu.map((p) => ({ pid: p.pid, label: 'sfu' })), { pid: process.pid, label: 'gen' }];
  const snapshot = () => ({
    at: performance.now(),
    drops: udpDrops(dropOwners),
    sfu: target.sfu.map((p) => cpuSeconds(p.pid)),
    gen: generatorPids.reduce((a, pid) => a + safeCpu(pid), 0),
    busy: cpuTimes(),
    plain: sumCounters(probes.map((s) => s.counters())),
    webrtc: sumCounters(target.webrtcProbes.map((p) => p.counters())),
    feedback: outputs.browser?.sentFeedback(),
  });

  const sentA = await readSent(target);
  const a = snapshot();
  await sleep(opts.measureS * 1000);
  const b = snapshot();
  const sentB = await readSent(target);

  const wall = (b.at - a.at) / 1000;
  const sfuCpu = b.sfu.map((x, i) => (x - a.sfu[i]!) / wall);
  const rates = sentA && sentB ? sendRates(sentA, sentB) : { pktPerS: NaN, bitPerS: NaN };
  const pktPerS = rates.pktPerS;
  const mbitPerS = rates.bitPerS / 1e6;
  const plain = lossBetween(a.plain, b.plain);
  const webrtc = lossBetween(a.webrtc, b.webrtc);
  const cpuBusy = b.busy.map((x, i) => (x.busy - a.busy[i]!.busy) / Math.max(1, x.total - a.busy[i]!.total));
  const generatorCpu = (b.gen - a.gen) / wall;
  const load = coreLoad(sfuCpu, generatorCpu);
  const browser = outputs.browser ? await browserFigures(outputs.browser, probes.length, a.feedback, b.feedback, wall) : undefined;
  // Pass/fail is the SFU's own output (plain samples) and CPU. The WebRTC
  // classrooms are JavaScript in the load generator: their loss is reported
  // as a check, not used, since a busy generator core loses packets by itself.
  const sourceLost = n > 0 && probes.length > 0 && plain.received === 0;
  const why: string[] = [];
  if (sourceLost) why.push('the published lesson stopped (SFU overloaded)');
  else if (!(plain.loss < opts.maxLoss)) why.push(`loss ${(plain.loss * 100).toFixed(2)} %`);
  if (load >= opts.maxCpu) why.push(`cpu ${(load * 100).toFixed(0)} %`);
  return {
    n,
    streams: n * 2,
    sfuCpu,
    pktPerS,
    mbitPerS,
    usPerPkt: (sfuCpu.reduce((x, y) => x + y, 0) * 1e6) / pktPerS,
    loss: plain.loss,
    webrtcLoss: webrtc.loss,
    late: plain.reordered + webrtc.reordered,
    score: target.scores(),
    generatorCpu,
    coreLoad: load,
    udpDrops: { sfu: (b.drops['sfu'] ?? 0) - (a.drops['sfu'] ?? 0), gen: (b.drops['gen'] ?? 0) - (a.drops['gen'] ?? 0) },
    cpuBusy,
    setupS,
    pass: why.length === 0,
    why: why.join(', '),
    sourceLost,
    ...(browser ? { browser } : {}),
  };
}

async function browserFigures(
  b: BrowserOutputs,
  real: number,
  fa: { feedback: number; reports: number } | undefined,
  fb: { feedback: number; reports: number } | undefined,
  wall: number,
): Promise<NonNullable<StepResult['browser']>> {
  const kbps = (est: number[]) => ({ min: (est[0] ?? NaN) / 1000, median: (est[Math.floor(est.length / 2)] ?? NaN) / 1000 });
  return {
    real,
    estimateKbps: kbps(await b.estimates()),
    standInEstimateKbps: kbps(await b.estimates(true)),
    feedbackPerS: fa && fb ? (fb.feedback - fa.feedback) / wall : NaN,
    reportsPerS: fa && fb ? (fb.reports - fa.reports) / wall : NaN,
  };
}

/**
 * The browser profile's agreement check: the same N outputs measured with every receiver real
 * (twice, before and after) and with only K real, the rest mute stand-ins, beside a step with no output.
 * Marginal SFU CPU per output of each kind = (CPU − CPU with no output) / outputs; if they
 * agree, a ladder of mostly stand-ins measures what real browsers would cost.
 */
export interface Agreement {
  n: number;
  k: number;
  base: StepResult;
  allReal: StepResult[];
  mixed: StepResult;
  /** Marginal SFU CPU per output, in µs of CPU per second (= per-mille of a core × 1000). */
  perRealUs: number;
  perStandInUs: number;
  /** perStandIn ÷ perReal. */
  ratio: number;
  /** The two all-real steps' difference ÷ their mean: the noise to read `ratio` against. */
  repeatSpread: number;
  /** Load-generator CPU (fraction of a core) per real receiver and per stand-in, and how many real receivers one core of it sustains. */
  genPerReal: number;
  genPerStandIn: number;
  realPerCore: number;
}

const totalCpu = (r: StepResult): number => r.sfuCpu.reduce((a, x) => a + x, 0);
const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;

export function agreementOf(base: StepResult, allReal: StepResult[], mixed: StepResult, k: number): Agreement {
  const n = mixed.n;
  const all = allReal.map(totalCpu);
  const perReal = (mean(all) - totalCpu(base)) / n;
  const perStandIn = (totalCpu(mixed) - totalCpu(base) - k * perReal) / (n - k);
  // The generator's CPU beyond the step without outputs (its encoder, sender and, for lessoncast, the server's Node).
  const genPerReal = (mean(allReal.map((r) => r.generatorCpu)) - base.generatorCpu) / n;
  const genPerStandIn = (mixed.generatorCpu - base.generatorCpu - k * genPerReal) / (n - k);
  return {
    n,
    k,
    base,
    allReal,
    mixed,
    perRealUs: perReal * 1e6,
    perStandInUs: perStandIn * 1e6,
    ratio: perStandIn / perReal,
    repeatSpread: all.length > 1 ? Math.abs(all[0]! - all[1]!) / mean(all) : NaN,
    genPerReal,
    genPerStandIn,
    realPerCore: genPerReal > 0 ? Math.floor(1 / genPerReal) : NaN,
  };
}

function agreementRows(a: Agreement): Array<Record<string, string | number>> {
  const row = (what: string, r: StepResult) => ({
    step: what,
    'SFU CPU %': (totalCpu(r) * 100).toFixed(1),
    'µs/pkt': Number.isFinite(r.usPerPkt) ? r.usPerPkt.toFixed(2) : '–',
    'gen CPU %': (r.generatorCpu * 100).toFixed(1),
    'estimate kbit/s min/med':
      r.browser && r.browser.real > 0 ? `${r.browser.estimateKbps.min.toFixed(0)}/${r.browser.estimateKbps.median.toFixed(0)}` : '–',
  });
  return [
    row('no output', a.base),
    ...a.allReal.map((r, i) => row(`${a.n} real${a.allReal.length > 1 ? ` (${i + 1})` : ''}`, r)),
    row(`${a.k} real + ${a.n - a.k} stand-ins`, a.mixed),
    {
      step: 'per output (marginal)',
      'SFU CPU %': `real ${(a.perRealUs / 1e4).toFixed(3)}, stand-in ${(a.perStandInUs / 1e4).toFixed(3)}: stand-in ÷ real ${a.ratio.toFixed(2)} (repeat spread ${(a.repeatSpread * 100).toFixed(1)} %)`,
      'gen CPU %': `${(a.genPerReal * 100).toFixed(2)} per real receiver (${a.realPerCore} per core), ${(a.genPerStandIn * 100).toFixed(3)} per stand-in`,
    },
  ];
}

/** Counters read per step (sampled where the target can; see FanoutTarget.sentSample). */
const SENT_SAMPLE = 100;

/** Send counters, sampled (and weighed) and timed one by one where the target can; else its total, timed at the middle of the read. */
export async function readSent(target: FanoutTarget): Promise<SentCounters | undefined> {
  if (target.sentSample) return target.sentSample(SENT_SAMPLE);
  const started = performance.now();
  const total = await target.sent();
  return total && new Map([['total', { ...total, at: (started + performance.now()) / 2 }]]);
}

function safeCpu(pid: number): number {
  try {
    return cpuSeconds(pid);
  } catch {
    return 0; // a helper that has exited
  }
}

function stepRow(r: StepResult): Record<string, string | number> {
  const pct = (x: number) => (Number.isFinite(x) ? (x * 100).toFixed(1) : '–');
  if (r.sourceLost || r.noData) return { N: r.n, ok: `no (${r.why})` }; // nothing to show: the other figures mean nothing
  return {
    N: r.n,
    'SFU CPU %': r.sfuCpu.map((x) => (x * 100).toFixed(0)).join('+'),
    'core load %': (r.coreLoad * 100).toFixed(0),
    'pkt/s out': Math.round(r.pktPerS),
    'Mbit/s out': r.mbitPerS.toFixed(0),
    'µs/pkt': r.usPerPkt.toFixed(1),
    'loss %': pct(r.loss),
    'webrtc loss %': pct(r.webrtcLoss),
    late: r.late,
    'score mean/min': r.score === undefined ? '–' : `${r.score.mean.toFixed(1)}/${r.score.min}`,
    'gen CPU %': (r.generatorCpu * 100).toFixed(0),
    ...(r.browser
      ? {
          'real rx': r.browser.real,
          'estimate kbit/s min/med': `${r.browser.estimateKbps.min.toFixed(0)}/${r.browser.estimateKbps.median.toFixed(0)}`,
          'stand-ins kbit/s min/med': `${r.browser.standInEstimateKbps.min.toFixed(0)}/${r.browser.standInEstimateKbps.median.toFixed(0)}`,
          'twcc fb/s': r.browser.feedbackPerS.toFixed(0),
        }
      : {}),
    'UDP drops sfu/gen': `${r.udpDrops.sfu}/${r.udpDrops.gen}`,
    'cpu busy %': r.cpuBusy.map((x) => (x * 100).toFixed(0)).join('/'),
    'setup s': r.setupS.toFixed(1),
    ok: r.pass ? 'yes' : `no (${r.why})`,
  };
}

/**
 * Runs the ladder on one target. A step never goes far past the N projected
 * (from the last passing step, CPU ∝ N) to fill the core: a worker deep in
 * saturation drops the publisher's ICE checks too (the lesson dies instead of
 * showing loss) and serves its channel only between packet bursts. If the
 * source died anyway, or a step outlasts STEP_TIMEOUT_MS, the target is
 * started again.
 */
export async function runLadder(name: TargetName, profile: ProfileName, opts: FanoutOptions): Promise<TargetResult> {
  const samples = await Promise.all(Array.from({ length: opts.samples }, (_, i) => RtpSampleSocket.open(`plain-${i}`)));
  const sink = await Sink.open();
  let target = await startTarget(name, opts, profile);
  let real = opts.realReceivers;
  const outputsOf = (t: FanoutTarget): OutputSet =>
    profile === 'browser' ? browserOutputs(t, () => real) : minimalOutputs(t, samples, sink);
  let outputs = outputsOf(target);
  const steps: StepResult[] = [];
  const label = `${name}, ${profile}`;
  const restart = async (): Promise<void> => {
    outputs.close();
    await target.close().catch(() => undefined);
    target = await startTarget(name, opts, profile);
    outputs = outputsOf(target);
  };
  // A browser output's setup is an ICE and DTLS handshake: a step that adds hundreds takes longer.
  const timeoutMs = profile === 'browser' ? 2 * STEP_TIMEOUT_MS : STEP_TIMEOUT_MS;
  const measure = async (n: number): Promise<StepResult | undefined> => {
    const step = measureStep(target, n, opts, outputs);
    step.catch(() => undefined); // an abandoned step fails when its target closes
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    try {
      return await Promise.race([step, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  const run = async (n: number): Promise<StepResult> => {
    let r = await measure(n);
    if (r?.sourceLost) {
      console.log(`[${label}] N=${n}: no packets reached the sampled receivers; starting the target again`);
      await restart();
      r = await measure(n);
    }
    if (!r) {
      console.log(`[${label}] N=${n}: not measured within ${timeoutMs / 1000} s (SFU saturated); starting the target again`);
      await restart();
      r = unmeasured(n, 'SFU too saturated to answer in time');
    }
    steps.push(r);
    console.log(
      `[${label}] ${table([stepRow(r)])
        .split('\n')
        .slice(steps.length === 1 ? 0 : 2)
        .join('\n')}`,
    );
    return r;
  };
  let agreement: Agreement | undefined;
  try {
    if (profile === 'browser' && opts.agreeN > opts.realReceivers) {
      const at = async (n: number, k: number): Promise<StepResult> => {
        real = k;
        const r = await measure(n);
        if (!r) throw new Error(`[${label}] agreement step N=${n} K=${k} not measured in time`);
        console.log(`[${label}] agreement check, N=${n}, ${Math.min(n, k)} real: ${table([stepRow(r)])}`);
        return r;
      };
      const base = await at(0, 0);
      const allReal = [await at(opts.agreeN, opts.agreeN)];
      const mixed = await at(opts.agreeN, opts.realReceivers);
      allReal.push(await at(opts.agreeN, opts.agreeN));
      agreement = agreementOf(base, allReal, mixed, opts.realReceivers);
      console.log(`[${label}] agreement:\n${table(agreementRows(agreement))}`);
      real = opts.realReceivers;
    }
    await climbLadder({
      ladder: opts.ladders[name] ?? opts.ladder,
      refine: opts.refine,
      quantum: 5,
      run,
      // Never aim at saturation: a saturated worker drops the publisher's packets and ICE checks
      // (the lesson may die) and answers its channel only slowly.
      // Aim at 80 %: the cost per packet grows with N (cache), so a linear projection runs short.
      limit: (last) => (last.n * 0.8) / last.coreLoad,
    });
  } finally {
    outputs.close();
    for (const s of samples) s.close();
    sink.close();
    await target.close();
  }
  const passing = steps.filter((s) => s.pass).sort((a, b) => b.n - a.n)[0];
  return {
    target: target.name,
    profile,
    ...(agreement ? { agreement } : {}),
    sfu: target.sfu.map(({ label, cpu }) => ({ label, cpu })),
    steps: [...steps].sort((a, b) => a.n - b.n),
    capacity: passing?.n ?? null,
    bounded: steps.some((s) => !s.pass),
    projected: passing ? Math.floor((passing.n * opts.maxCpu) / Math.max(...passing.sfuCpu)) : null,
    usPerPkt: passing?.usPerPkt ?? null,
  };
}

/**
 * One step at a fixed n on a fresh target (no ladder, no agreement check, no WebRTC classrooms
 * beside the outputs): what the levers and old-against-new benches compare. `overrides` change the
 * default fan-out options (the worker settings, the window, the real receivers).
 */
export async function fixedStep(
  name: TargetName,
  profile: ProfileName,
  n: number,
  overrides: Partial<Pick<FanoutOptions, 'worker' | 'warmupS' | 'measureS' | 'realReceivers'>> = {},
): Promise<StepResult> {
  const r = await runLadder(name, profile, {
    ...defaultFanoutOptions,
    targets: [name],
    ladder: [n],
    ladders: {},
    refine: 0,
    webrtc: 0,
    profiles: [profile],
    agreeN: 0,
    ...overrides,
  });
  const step = r.steps[0];
  if (!step) throw new Error(`${name}, ${profile}, N=${n}: no step measured`);
  return step;
}

/** lessoncast's receive-transport options for a classroom (its configuration's defaults), which bare mediasoup's browser outputs copy. */
async function classroomTransportOptions(): Promise<BareTargetOptions['browserTransport']> {
  // Loaded late, like every src/ module of the benches (see bench/lib.ts).
  const { loadConfig } = await import('../src/config/load.js');
  const { bweSettings, bweTransportOptions } = await import('../src/media/lessonMedia.js');
  return bweTransportOptions(bweSettings(loadConfig({ env: {}, configDir: path.join(root, 'config') }).media), 'recv');
}

/**
 * lessoncast's weak-link policy for the browser profile: still reading every receive transport's
 * estimate each second (its cost stays in the figure), but acting on none. Its actions follow the
 * estimate, and a mute stand-in's estimate is backed off to 5 kbit/s by mediasoup for want of
 * feedback: the policy would pause the stand-ins' video, which no browser on a good link sees.
 */
const BROWSER_PROFILE_LINKS = { floorBelowKbps: 0, pauseBelowKbps: 0 };

export async function startTarget(name: TargetName, opts: FanoutOptions, profile: ProfileName = 'minimal'): Promise<FanoutTarget> {
  const common = { srtpCryptoSuite: opts.srtp, webrtcClassrooms: opts.webrtc, source: opts.source };
  switch (name) {
    case 'lessoncast':
      return startLessoncastTarget({
        ...common,
        name: 'lessoncast',
        workers: 1,
        consumersPerRouter: 1_000_000,
        workerCpus: [0],
        ...(profile === 'browser' ? { links: BROWSER_PROFILE_LINKS } : {}),
        worker: opts.worker,
      });
    case 'bare':
      return startBareMediasoupTarget({
        ...common,
        cpu: 0,
        sendBatch: opts.worker.sendBatch,
        browserTransport: { ...(await classroomTransportOptions()), enableBwe: opts.worker.classroomBwe },
      });
    case 'lessoncast-2w':
      return startLessoncastTarget({
        ...common,
        name: 'lessoncast, 2 workers',
        workers: 2,
        consumersPerRouter: opts.consumersPerRouter2w,
        workerCpus: [0, 1],
        worker: opts.worker,
      });
    case 'floor':
      return startFloorTarget({ cpu: 0, source: opts.source });
  }
}

export async function runFanoutBench(
  opts: FanoutOptions = defaultFanoutOptions,
): Promise<{ results: TargetResult[]; summary: Array<Record<string, string | number>> }> {
  if (cpus().length < 2) throw new Error('the fan-out bench needs 2 CPUs (SFU on one, load generator on the other)');
  setNice(process.pid, BENCH_NICE); // inherited by everything started from here (server, workers, ffmpeg)
  const results: TargetResult[] = [];
  try {
    for (const name of opts.targets) {
      // One worker: the SFU gets CPU 0 alone and everything we spawn inherits CPU 1.
      // Two workers: one per CPU; the load generator floats.
      pinProcess(process.pid, name === 'lessoncast-2w' ? allCpus() : '1');
      for (const profile of opts.profiles) {
        if (profile === 'browser' && !BROWSER_TARGETS.includes(name)) continue;
        results.push(await runLadder(name, profile, opts));
        await sleep(1000);
      }
    }
  } finally {
    pinProcess(process.pid, allCpus());
  }

  const bareOf = (profile: ProfileName) => results.find((r) => r.target === 'bare mediasoup' && r.profile === profile);
  /** Bare mediasoup's µs per packet ÷ the target's (same profile), averaged over the N both passed: > 1 = cheaper per packet than bare. */
  const perPacketVsBare = (r: TargetResult): string => {
    const bare = bareOf(r.profile);
    if (!bare) return '–';
    const ratios = r.steps.flatMap((x) => {
      const b = bare.steps.find((y) => y.n === x.n && y.pass);
      return x.pass && b ? [b.usPerPkt / x.usPerPkt] : [];
    });
    return ratios.length ? `${(ratios.reduce((a, y) => a + y, 0) / ratios.length).toFixed(2)} (${ratios.length} N)` : '–';
  };
  const summary = results.map((r) => {
    const vsBare = (x: number | null, y: number | null) => (x !== null && y ? (x / y).toFixed(2) : '–');
    const oneCore = r.sfu.length === 1;
    const bare = bareOf(r.profile);
    return {
      target: r.target,
      profile: r.profile === 'browser' ? 'browser classroom' : 'minimal RTP output',
      'SFU cores': r.sfu.length,
      'classrooms (loss<1%, CPU<90%)': r.capacity === null ? `< ${r.steps[0]?.n ?? '?'}` : `${r.bounded ? '' : '≥ '}${r.capacity}`,
      'per core': r.capacity === null ? '–' : `${r.bounded ? '' : '≥ '}${Math.floor(r.capacity / r.sfu.length)}`,
      'projected @90% SFU CPU': r.projected ?? '–',
      'µs/pkt': r.usPerPkt?.toFixed(1) ?? '–',
      '× bare (measured)': oneCore && bare ? vsBare(r.capacity, bare.capacity) : '–',
      '× bare (projected)': oneCore && bare ? vsBare(r.projected, bare.projected) : '–',
      'per-packet × bare': oneCore ? perPacketVsBare(r) : '–',
    };
  });
  for (const r of results) {
    console.log(`\nfan-out: ${r.target}, ${r.profile} profile (${r.sfu.map((p) => `${p.label} on CPU ${p.cpu}`).join(', ')})`);
    if (r.agreement) console.log(`agreement check:\n${table(agreementRows(r.agreement))}`);
    console.log(table(r.steps.map(stepRow)));
  }
  console.log(
    `\nfan-out summary: one lesson H264 ${opts.source.width}x${opts.source.height}@${opts.source.fps} ${opts.source.videoKbps} kbps + Opus; ` +
      `each classroom = audio + video; minimal: PlainTransport, SRTP ${opts.srtp}, ${opts.samples} sampled + ${opts.webrtc} WebRTC classrooms; ` +
      `browser: WebRtcTransport, DTLS-SRTP, Chromium's capabilities, ${opts.realReceivers} real receivers with feedback + mute stand-ins`,
  );
  console.log(table(summary));
  const file = saveResult('fanout', { opts, results, summary });
  console.log(`saved ${file}`);
  return { results, summary };
}

export async function runFanoutCli(argv: string[]): Promise<void> {
  const d = defaultFanoutOptions;
  const { values } = parseArgs({
    args: argv,
    options: {
      targets: { type: 'string', default: d.targets.join(',') },
      ladder: { type: 'string' },
      refine: { type: 'string', default: String(d.refine) },
      warmup: { type: 'string', default: String(d.warmupS) },
      measure: { type: 'string', default: String(d.measureS) },
      samples: { type: 'string', default: String(d.samples) },
      webrtc: { type: 'string', default: String(d.webrtc) },
      srtp: { type: 'string', default: d.srtp },
      profile: { type: 'string', default: 'both' },
      real: { type: 'string', default: String(d.realReceivers) },
      agree: { type: 'string', default: String(d.agreeN) },
    },
  });
  const profiles: ProfileName[] =
    values.profile === 'both'
      ? ['minimal', 'browser']
      : values.profile === 'minimal' || values.profile === 'browser'
        ? [values.profile]
        : [];
  if (profiles.length === 0) throw new Error(`unknown profile ${values.profile}; known: both, browser, minimal`);
  const targets = values.targets.split(',') as TargetName[];
  for (const t of targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; known: ${TARGETS.join(', ')}`);
  await runFanoutBench({
    ...d,
    targets,
    // An explicit --ladder applies to every target.
    ...(values.ladder ? { ladder: values.ladder.split(',').map(Number), ladders: {} } : {}),
    refine: Number(values.refine),
    warmupS: Number(values.warmup),
    measureS: Number(values.measure),
    samples: Number(values.samples),
    webrtc: Number(values.webrtc),
    srtp: values.srtp as types.SrtpCryptoSuite,
    profiles,
    realReceivers: Number(values.real),
    agreeN: Number(values.agree),
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runFanoutCli(process.argv.slice(2));
  process.exit(0);
}
