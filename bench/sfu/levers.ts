/**
 * Levers on bare mediasoup's forwarding cost: the same fan-out (one lesson,
 * n PlainTransport outputs with SRTP to local UDP sockets, worker pinned to
 * CPU 0) at one fixed n, once per variant, each variant changing one thing
 * from the base. Reports µs of worker CPU per forwarded packet.
 *
 * Variants (base = what lessoncast runs today: the default worker build, i.e.
 * libsrtp on OpenSSL, log level 'warn', AEAD_AES_256_GCM outputs,
 * consumers negotiating video NACK/PLI and the mid + abs-send-time extensions):
 *   nss-srtp          the worker built against Debian's shared libsrtp2 (on NSS)
 *   nss-srtp-aes-cm   … with AES_CM_128_HMAC_SHA1_80 outputs (the build and suite Janus uses)
 *   aes-cm            AES_CM_128_HMAC_SHA1_80 outputs (what Janus's rtp_forward uses)
 *   no-bwe            the outputs' PlainTransports with enableBwe: false (mediasoup 3.32
 *                     runs a sender congestion controller per transport by default)
 *   log-none          logLevel 'none' and no log tags
 *   no-nack           output consumers negotiate no RTCP feedback (no retransmission buffer)
 *   no-nack-no-ext    … and no header extensions
 *   best              every setting that helped together (log none, no NACK/ext, no BWE on outputs, GCM or CM by --best-suite)
 *
 * mediasoup reads its binary at module load, so every binary runs in its own
 * child process (this file with --child); the parent interleaves rounds.
 * The worker builds come from scripts/build-worker.sh's cache, built there
 * first when missing (about 5 min each, once).
 *
 *   npx tsx bench/sfu/levers.ts [--n 400] [--rounds 2] [--warmup 2] [--measure 5] [--only base,aes-cm]
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import { startSharedFfmpegRtp } from '../../kit/ffmpegRtp.js';
import { BENCH_NICE, pinProcess, readChildResults, root, setNice, sleep, waitForNoWorkerBuild } from '../lib.js';
import { startBareTarget, type BareSettings } from './bare.js';
import { SOURCE_SETTLE_MS, SampleSocket, Sink, measureStep, median, table, waitForQuiet, type Step } from './lib.js';

/** Worker builds compared: lessoncast's default and each with one build option turned back. */
export type WorkerBuild = 'default' | 'nss-srtp';

/** scripts/build-worker.sh's environment for each build (see the script's header). */
const BUILD_ENV: Record<WorkerBuild, Record<string, string>> = {
  default: {},
  'nss-srtp': { LESSONCAST_WORKER_SRTP: 'debian' },
};

export interface LeverVariant {
  id: string;
  lever: string;
  build: WorkerBuild;
  settings: BareSettings;
}

const BASE: BareSettings = { logLevel: 'warn', srtpCryptoSuite: 'AEAD_AES_256_GCM', consumerCaps: 'full' };
const AES_CM: types.SrtpCryptoSuite = 'AES_CM_128_HMAC_SHA1_80';

export function leverVariants(bestSuite: types.SrtpCryptoSuite = 'AEAD_AES_256_GCM'): LeverVariant[] {
  return [
    { id: 'base', lever: 'base (OpenSSL libsrtp build, warn, GCM, NACK + ext)', build: 'default', settings: BASE },
    { id: 'nss-srtp', lever: "worker built on Debian's libsrtp2 (NSS)", build: 'nss-srtp', settings: BASE },
    {
      id: 'nss-srtp-aes-cm',
      lever: 'libsrtp2 on NSS and AES-CM outputs (as Janus)',
      build: 'nss-srtp',
      settings: { ...BASE, srtpCryptoSuite: AES_CM },
    },
    { id: 'aes-cm', lever: 'outputs AES_CM_128_HMAC_SHA1_80', build: 'default', settings: { ...BASE, srtpCryptoSuite: AES_CM } },
    {
      id: 'no-bwe',
      lever: 'outputs: PlainTransport enableBwe false (3.32 default: true)',
      build: 'default',
      settings: { ...BASE, outputBwe: false },
    },
    { id: 'log-none', lever: "logLevel 'none', no logTags", build: 'default', settings: { ...BASE, logLevel: 'none', logTags: [] } },
    { id: 'no-nack', lever: 'outputs negotiate no NACK/PLI', build: 'default', settings: { ...BASE, consumerCaps: 'no-nack' } },
    {
      id: 'no-nack-no-ext',
      lever: 'no NACK/PLI, no header extensions',
      build: 'default',
      settings: { ...BASE, consumerCaps: 'no-nack-no-ext' },
    },
    {
      id: 'best',
      lever: `combined: log none, no NACK/ext, no output BWE, ${bestSuite}`,
      build: 'default',
      settings: { logLevel: 'none', logTags: [], srtpCryptoSuite: bestSuite, consumerCaps: 'no-nack-no-ext', outputBwe: false },
    },
  ];
}

/**
 * The worker binary of each build, from scripts/build-worker.sh's cache
 * (same version and recipe as `npm test` uses). With `build`, a missing one
 * is built first (about 5 min of ninja on 2 cores); otherwise it is left out.
 * BENCH_WORKER_<DEFAULT|NSS_SRTP> override a path.
 */
export function workerBuilds(
  opts: { build?: boolean; log?: (l: string) => void; env?: NodeJS.ProcessEnv } = {},
): Partial<Record<WorkerBuild, string>> {
  const env = opts.env ?? process.env;
  const script = path.join(root, 'scripts', 'build-worker.sh');
  const out: Partial<Record<WorkerBuild, string>> = {};
  for (const build of Object.keys(BUILD_ENV) as WorkerBuild[]) {
    const override = env[`BENCH_WORKER_${build.toUpperCase().replace(/-/g, '_')}`];
    if (override) {
      out[build] = override;
      continue;
    }
    const buildEnv = { ...env, ...BUILD_ENV[build] };
    const bin = execFileSync('bash', [script, '--print-path'], { env: buildEnv, encoding: 'utf8' }).trim().split('\n').pop()!;
    if (!existsSync(bin) && opts.build) waitForNoWorkerBuild(opts.log);
    if (!existsSync(bin) && opts.build) {
      opts.log?.(`building the '${build}' worker (${JSON.stringify(BUILD_ENV[build])}), about 5 min once`);
      execFileSync('bash', [script], { env: buildEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    }
    if (existsSync(bin)) out[build] = bin;
  }
  return out;
}

export interface LeverMeasurement {
  variant: string;
  round: number;
  step: Step;
}

export interface LeverSummary {
  variant: string;
  lever: string;
  build: WorkerBuild;
  /** Median over rounds. */
  usPerPkt: number | null;
  /** Spread over rounds (min–max). */
  usMin: number | null;
  usMax: number | null;
  /** Median over rounds of (variant / base of the same round): below 1 is faster. */
  vsBase: number | null;
  maxLoss: number;
  cpu: number | null;
}

export interface LeversOptions {
  n: number;
  rounds: number;
  warmupS: number;
  measureS: number;
  samples: number;
  bestSuite: types.SrtpCryptoSuite;
  only?: string[];
  /** The worker builds to compare (a variant whose build is missing is skipped); default: workerBuilds(), building what is missing. */
  builds?: Partial<Record<WorkerBuild, string>>;
  log?: (line: string) => void;
}

// 250 outputs keep the slowest variant (Debian's NSS libsrtp with AES-CM outputs, ~300 per core) under 90 % of the core.
export const defaultLeversOptions: LeversOptions = {
  n: 250,
  rounds: 2,
  warmupS: 2,
  measureS: 5,
  samples: 4,
  bestSuite: 'AEAD_AES_256_GCM',
};

/** Runs every variant `rounds` times at n outputs; each round starts one child per worker build. */
export async function runLevers(
  opts: LeversOptions = defaultLeversOptions,
): Promise<{ measurements: LeverMeasurement[]; summary: LeverSummary[]; builds: Partial<Record<WorkerBuild, string>>; skipped: string[] }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const builds = opts.builds ?? workerBuilds({ build: true, log });
  const all = leverVariants(opts.bestSuite).filter((v) => !opts.only || opts.only.includes(v.id));
  const skipped = all.filter((v) => !builds[v.build]).map((v) => `${v.id} (no ${v.build} worker build in the cache)`);
  const variants = all.filter((v) => builds[v.build]);
  const measurements: LeverMeasurement[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate the order of builds and of variants each round, so slow drift on the machine does not favour one.
    const forward: WorkerBuild[] = ['default', 'nss-srtp'];
    const order = round % 2 ? [...forward].reverse() : forward;
    for (const build of order) {
      let mine = variants.filter((v) => v.build === build);
      if (round % 2) mine = [...mine].reverse();
      if (mine.length === 0) continue;
      const got = await runChild(builds[build]!, mine, round, opts, log);
      measurements.push(...got);
    }
  }
  const summary = variants.map((v): LeverSummary => {
    const mine = measurements.filter((m) => m.variant === v.id && !m.step.sourceLost && Number.isFinite(m.step.usPerPkt));
    const us = mine.map((m) => m.step.usPerPkt);
    const ratios = mine
      .map((m) => {
        const base = measurements.find(
          (b) => b.variant === 'base' && b.round === m.round && !b.step.sourceLost && Number.isFinite(b.step.usPerPkt),
        );
        return base ? m.step.usPerPkt / base.step.usPerPkt : NaN;
      })
      .filter(Number.isFinite);
    return {
      variant: v.id,
      lever: v.lever,
      build: v.build,
      usPerPkt: median(us),
      usMin: us.length ? Math.min(...us) : null,
      usMax: us.length ? Math.max(...us) : null,
      vsBase: median(ratios),
      maxLoss: Math.max(0, ...mine.map((m) => (Number.isFinite(m.step.loss) ? m.step.loss : 1))),
      cpu: median(mine.map((m) => m.step.sfuCpu)),
    };
  });
  return { measurements, summary, builds, skipped };
}

export function leverRow(s: LeverSummary): Record<string, string | number> {
  const f = (x: number | null, d = 2) => (x === null ? '–' : x.toFixed(d));
  return {
    variant: s.variant,
    lever: s.lever,
    'µs/pkt (median)': f(s.usPerPkt),
    'min–max': `${f(s.usMin)}–${f(s.usMax)}`,
    '× base': f(s.vsBase),
    'worker CPU %': s.cpu === null ? '–' : (s.cpu * 100).toFixed(0),
    'max loss %': (s.maxLoss * 100).toFixed(2),
  };
}

function runChild(
  bin: string,
  variants: LeverVariant[],
  round: number,
  opts: LeversOptions,
  log: (l: string) => void,
): Promise<LeverMeasurement[]> {
  const spec = JSON.stringify({ variants, round, n: opts.n, warmupS: opts.warmupS, measureS: opts.measureS, samples: opts.samples });
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL(import.meta.url).pathname, '--child', spec], {
    env: { ...process.env, MEDIASOUP_WORKER_BIN: bin },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const results: LeverMeasurement[] = [];
  readChildResults<LeverMeasurement>(
    child.stdout,
    (m) => {
      results.push(m);
      const s = m.step;
      log(
        `[levers] round ${round + 1} ${m.variant.padEnd(17)} N=${s.n} CPU ${(s.sfuCpu * 100).toFixed(1)} % ` +
          // usPerPkt is Infinity (null in JSON) when nothing was forwarded: the worker lost the lesson.
          `${Math.round(s.pktPerS)} pkt/s ${Number.isFinite(s.usPerPkt) ? s.usPerPkt.toFixed(2) : '–'} µs/pkt loss ${(s.loss * 100).toFixed(2)} % ` +
          `(cpu busy ${s.cpuBusy.map((x) => (x * 100).toFixed(0)).join('/')} %)`,
      );
    },
    (line) => line.trim() && log(`[levers child] ${line}`),
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(results) : reject(new Error(`levers child (${bin}) exited with ${code}`))));
  });
}

/** In the child: one binary (MEDIASOUP_WORKER_BIN), each variant measured once at n, one shared ffmpeg. */
async function childMain(spec: {
  variants: LeverVariant[];
  round: number;
  n: number;
  warmupS: number;
  measureS: number;
  samples: number;
}): Promise<void> {
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1');
  const source = { width: 1280, height: 720, fps: 30, videoKbps: 1500 };
  const shared = await startSharedFfmpegRtp({
    video: { codec: 'h264', payloadType: 102, width: source.width, height: source.height, fps: source.fps, bitrateKbps: source.videoKbps },
    audio: { payloadType: 100 },
  });
  const samples = await Promise.all(Array.from({ length: spec.samples }, () => SampleSocket.open()));
  const sink = await Sink.open();
  // The first variant of each child would otherwise run while x264's rate still ramps up (fewer, smaller packets).
  await sleep(SOURCE_SETTLE_MS);
  try {
    for (const v of spec.variants) {
      // Once more if the lesson itself was lost (nothing reached the receivers): that is no measurement.
      for (let attempt = 0; attempt < 2; attempt++) {
        await waitForQuiet((l) => process.stdout.write(`${l}\n`));
        const target = await startBareTarget({ cpu: 0, source, settings: v.settings, sharedSource: shared, name: v.id });
        try {
          const step = await measureStep(target, spec.n, samples, sink, {
            warmupS: spec.warmupS,
            measureS: spec.measureS,
            maxLoss: 0.01,
            maxCpu: 0.9,
          });
          if (step.sourceLost && attempt === 0) continue;
          const m: LeverMeasurement = { variant: v.id, round: spec.round, step };
          process.stdout.write(`RESULT ${JSON.stringify(m)}\n`);
          break;
        } finally {
          await target.close();
          await sleep(300);
        }
      }
    }
  } finally {
    for (const s of samples) s.close();
    sink.close();
    await shared.source.close();
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain && process.argv[2] === '--child') {
  await childMain(JSON.parse(process.argv[3]!));
  process.exit(0);
} else if (isMain) {
  const d = defaultLeversOptions;
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: String(d.n) },
      rounds: { type: 'string', default: String(d.rounds) },
      warmup: { type: 'string', default: String(d.warmupS) },
      measure: { type: 'string', default: String(d.measureS) },
      samples: { type: 'string', default: String(d.samples) },
      'best-suite': { type: 'string', default: d.bestSuite },
      only: { type: 'string' },
    },
  });
  setNice(process.pid, BENCH_NICE);
  const r = await runLevers({
    n: Number(values.n),
    rounds: Number(values.rounds),
    warmupS: Number(values.warmup),
    measureS: Number(values.measure),
    samples: Number(values.samples),
    bestSuite: values['best-suite'] as types.SrtpCryptoSuite,
    ...(values.only ? { only: values.only.split(',') } : {}),
  });
  console.log(`\nworker builds: ${JSON.stringify(r.builds)}${r.skipped.length ? `; skipped: ${r.skipped.join(', ')}` : ''}`);
  console.log(table(r.summary.map(leverRow)));
  process.exit(0);
}
