/**
 * Levers on a browser classroom's cost (issue 18 §3), each measured side by side in one run: the
 * fan-out bench's browser profile (bench/fanout.ts: WebRtcTransports on the worker's WebRtcServer,
 * Chromium's capabilities, K real receivers with transport-cc feedback + mute stand-ins) held at
 * one N, once per variant, variants interleaved round by round so that drift on the machine falls
 * on all of them alike. Each variant changes one worker setting from lessoncast's defaults:
 *
 *   send-batch     our worker build's sendmmsg() batching (media.udpSendBatch,
 *                  scripts/worker/patches/3.32.2/0001-udp-send-batch.patch): on (the default) or off
 *   classroom-bwe  mediasoup 3.32's bandwidth estimation on the classrooms' transports
 *                  (media.enableBwe; 3.32 has no finer per-transport BWE setting): on or off
 *
 * on bare mediasoup (same worker binary, no lessoncast code) and on lessoncast, plus the minimal
 * profile (a PlainTransport per output, so one socket each) with batching on and off, where it
 * has nothing to batch. And one check of the method: N = 100 with every receiver real against
 * 16 real + 84 mute stand-ins (which send no feedback). Reports µs of worker CPU per packet out and outputs per core at 90 %.
 *
 *   npx tsx bench/levers.ts [--n 200] [--rounds 2] [--warmup 3] [--measure 8] [--real 16] [--only id,id]
 */
import { parseArgs } from 'node:util';
import { fixedStep, type ProfileName, type TargetName, type WorkerLevers } from './fanout.js';
import { BENCH_NICE, allCpus, pinProcess, saveResult, setNice, sleep, table } from './lib.js';

export interface Variant {
  id: string;
  target: TargetName;
  profile: ProfileName;
  worker: WorkerLevers;
  /** The variant this one is read against (same target and profile, one setting changed). */
  base?: string;
  /** Outputs and real receivers of this variant instead of the run's. */
  n?: number;
  real?: number;
}

const ON: WorkerLevers = { sendBatch: true, classroomBwe: true };

export const VARIANTS: Variant[] = [
  { id: 'bare', target: 'bare', profile: 'browser', worker: ON },
  { id: 'bare-no-batch', target: 'bare', profile: 'browser', worker: { ...ON, sendBatch: false }, base: 'bare' },
  { id: 'bare-no-bwe', target: 'bare', profile: 'browser', worker: { ...ON, classroomBwe: false }, base: 'bare' },
  { id: 'lessoncast', target: 'lessoncast', profile: 'browser', worker: ON },
  { id: 'lessoncast-no-batch', target: 'lessoncast', profile: 'browser', worker: { ...ON, sendBatch: false }, base: 'lessoncast' },
  // Stand-ins send no feedback, so mediasoup keeps their sent-packet history for its whole 60 s
  // window, where a browser's feedback empties it every 100 ms: every receiver real, against K real.
  { id: 'bare-100-real', target: 'bare', profile: 'browser', worker: ON, n: 100, real: 100 },
  { id: 'bare-100-stand-ins', target: 'bare', profile: 'browser', worker: ON, n: 100, base: 'bare-100-real' },
  { id: 'bare-minimal', target: 'bare', profile: 'minimal', worker: ON },
  { id: 'bare-minimal-no-batch', target: 'bare', profile: 'minimal', worker: { ...ON, sendBatch: false }, base: 'bare-minimal' },
];

export interface LeversOptions {
  n: number;
  rounds: number;
  warmupS: number;
  measureS: number;
  realReceivers: number;
  only?: string[];
}

export const defaultLeversOptions: LeversOptions = { n: 200, rounds: 2, warmupS: 3, measureS: 8, realReceivers: 16 };

export interface LeverMeasurement {
  id: string;
  round: number;
  usPerPkt: number;
  sfuCpu: number;
  pktPerS: number;
  loss: number;
  estimateKbps?: number;
  pass: boolean;
  why: string;
}

export interface LeverSummary {
  id: string;
  n: number;
  target: string;
  profile: ProfileName;
  sendBatch: boolean;
  classroomBwe: boolean;
  usPerPkt: number;
  perCore: number;
  /** This variant's µs per packet ÷ its base's: > 1 = the changed setting saves CPU when on. */
  vsBase?: number;
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2 : NaN;
};

export async function runLeversBench(opts: LeversOptions = defaultLeversOptions): Promise<{
  measurements: LeverMeasurement[];
  summary: LeverSummary[];
}> {
  const variants = VARIANTS.filter((v) => !opts.only || opts.only.includes(v.id));
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1'); // the worker gets CPU 0 alone; everything started from here inherits CPU 1
  const measurements: LeverMeasurement[] = [];
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const v of variants) {
        const step = await fixedStep(v.target, v.profile, v.n ?? opts.n, {
          warmupS: opts.warmupS,
          measureS: opts.measureS,
          realReceivers: v.real ?? opts.realReceivers,
          worker: v.worker,
        });
        measurements.push({
          id: v.id,
          round,
          usPerPkt: step.usPerPkt,
          sfuCpu: step.sfuCpu[0] ?? NaN,
          pktPerS: step.pktPerS,
          loss: step.loss,
          ...(step.browser ? { estimateKbps: step.browser.estimateKbps.median } : {}),
          pass: step.pass,
          why: step.why,
        });
        console.log(
          `[levers] round ${round} ${v.id}: ${step.usPerPkt.toFixed(2)} µs/pkt, worker ${(100 * (step.sfuCpu[0] ?? NaN)).toFixed(0)} %, ` +
            `${step.pktPerS.toFixed(0)} pkt/s out${step.pass ? '' : ` (${step.why})`}`,
        );
        await sleep(1000);
      }
    }
  } finally {
    pinProcess(process.pid, allCpus());
  }

  // An output carries audio + video, ≈ 187 packets/s (the fan-out bench's source).
  const pktPerOutput = (v: Variant): number => median(measurements.filter((m) => m.id === v.id).map((m) => m.pktPerS / (v.n ?? opts.n)));
  const us = (id: string): number => median(measurements.filter((m) => m.id === id).map((m) => m.usPerPkt));
  const summary: LeverSummary[] = variants.map((v) => ({
    id: v.id,
    n: v.n ?? opts.n,
    target: v.target === 'bare' ? 'bare mediasoup' : v.target,
    profile: v.profile,
    sendBatch: v.worker.sendBatch,
    classroomBwe: v.worker.classroomBwe,
    usPerPkt: us(v.id),
    perCore: Math.floor(0.9 / ((us(v.id) / 1e6) * pktPerOutput(v))),
    ...(v.base && variants.some((b) => b.id === v.base) ? { vsBase: us(v.id) / us(v.base) } : {}),
  }));
  console.log(`\nlevers (${opts.rounds} rounds, median; worker on CPU 0, load generator on CPU 1):`);
  console.log(table(leverRows(summary)));
  const file = saveResult('levers', { opts, measurements, summary });
  console.log(`saved ${file}`);
  return { measurements, summary };
}

/** The summary as a printed table. */
export function leverRows(summary: LeverSummary[]): Array<Record<string, string | number>> {
  return summary.map((s) => ({
    variant: s.id,
    N: s.n,
    target: s.target,
    profile: s.profile === 'browser' ? 'browser classroom' : 'minimal RTP output',
    'send batch': s.sendBatch ? 'on' : 'off',
    'classroom BWE': s.classroomBwe ? 'on' : 'off',
    'µs/pkt': s.usPerPkt.toFixed(2),
    'per core @90%': s.perCore,
    '× its base (µs ÷ µs)': s.vsBase?.toFixed(2) ?? '–',
  }));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const d = defaultLeversOptions;
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: String(d.n) },
      rounds: { type: 'string', default: String(d.rounds) },
      warmup: { type: 'string', default: String(d.warmupS) },
      measure: { type: 'string', default: String(d.measureS) },
      real: { type: 'string', default: String(d.realReceivers) },
      only: { type: 'string' },
    },
  });
  const only = values.only?.split(',');
  for (const id of only ?? []) if (!VARIANTS.some((v) => v.id === id)) throw new Error(`--only: unknown variant '${id}'`);
  await runLeversBench({
    n: Number(values.n),
    rounds: Number(values.rounds),
    warmupS: Number(values.warmup),
    measureS: Number(values.measure),
    realReceivers: Number(values.real),
    ...(only ? { only } : {}),
  });
  process.exit(0);
}
