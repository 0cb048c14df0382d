/**
 * Levers on bare mediasoup's forwarding cost: the same fan-out (one lesson,
 * n PlainTransport outputs with SRTP to local UDP sockets, worker pinned to
 * CPU 0) at one fixed n, once per variant, each variant changing one thing
 * from the base. Reports µs of worker CPU per forwarded packet.
 *
 * Variants (base = what lessoncast runs today: liburing build, log level
 * 'warn', AEAD_AES_256_GCM outputs, consumers negotiating video NACK/PLI and
 * the mid + abs-send-time extensions):
 *   no-liburing-bin   the worker built without liburing (sendto per packet)
 *   disable-liburing  the liburing build with mediasoup's disableLiburing setting
 *   aes-cm            AES_CM_128_HMAC_SHA1_80 outputs (what Janus's rtp_forward uses)
 *   log-none          logLevel 'none' and no log tags
 *   no-nack           output consumers negotiate no RTCP feedback (no retransmission buffer)
 *   no-nack-no-ext    … and no header extensions
 *   best              every setting that helped together (log none, no NACK/ext, GCM or CM by --best-suite)
 *
 * mediasoup reads its binary at module load, so every binary runs in its own
 * child process (this file with --child); the parent interleaves rounds.
 *
 *   npx tsx bench/sfu/levers.ts [--n 400] [--rounds 2] [--warmup 2] [--measure 5]
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import { startSharedFfmpegRtp } from '../../test/support/ffmpegRtp.js';
import { BENCH_NICE, pinProcess, root, setNice, sleep } from '../lib.js';
import { startBareTarget, type BareSettings } from './bare.js';
import { SOURCE_SETTLE_MS, SampleSocket, Sink, measureStep, median, table, waitForQuiet, type Step } from './lib.js';

export type WorkerBuild = 'liburing' | 'no-liburing';

export interface LeverVariant {
  id: string;
  lever: string;
  build: WorkerBuild;
  settings: BareSettings;
}

const BASE: BareSettings = { logLevel: 'warn', srtpCryptoSuite: 'AEAD_AES_256_GCM', consumerCaps: 'full' };

export function leverVariants(bestSuite: types.SrtpCryptoSuite = 'AEAD_AES_256_GCM'): LeverVariant[] {
  return [
    { id: 'base', lever: 'base (liburing build, warn, GCM, NACK + ext)', build: 'liburing', settings: BASE },
    { id: 'no-liburing-bin', lever: 'worker built without liburing', build: 'no-liburing', settings: BASE },
    { id: 'disable-liburing', lever: 'disableLiburing: true (same binary)', build: 'liburing', settings: { ...BASE, disableLiburing: true } },
    { id: 'aes-cm', lever: 'outputs AES_CM_128_HMAC_SHA1_80', build: 'liburing', settings: { ...BASE, srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80' } },
    { id: 'log-none', lever: "logLevel 'none', no logTags", build: 'liburing', settings: { ...BASE, logLevel: 'none', logTags: [] } },
    { id: 'no-nack', lever: 'outputs negotiate no NACK/PLI', build: 'liburing', settings: { ...BASE, consumerCaps: 'no-nack' } },
    { id: 'no-nack-no-ext', lever: 'no NACK/PLI, no header extensions', build: 'liburing', settings: { ...BASE, consumerCaps: 'no-nack-no-ext' } },
    {
      id: 'best',
      lever: `combined: log none, no NACK/ext, ${bestSuite}`,
      build: 'liburing',
      settings: { logLevel: 'none', logTags: [], srtpCryptoSuite: bestSuite, consumerCaps: 'no-nack-no-ext' },
    },
  ];
}

/**
 * The two worker builds from the offline build cache
 * ($LESSONCAST_CACHE_DIR or ~/.cache/lessoncast/mediasoup-worker/<version>-<recipe>/),
 * told apart by their BUILDINFO; the newest of each. Overridable with
 * LESSONCAST_BENCH_WORKER_LIBURING / LESSONCAST_BENCH_WORKER_NO_LIBURING.
 */
export function workerBuilds(env: NodeJS.ProcessEnv = process.env): Partial<Record<WorkerBuild, string>> {
  const out: Partial<Record<WorkerBuild, string>> = {};
  if (env['LESSONCAST_BENCH_WORKER_LIBURING']) out.liburing = env['LESSONCAST_BENCH_WORKER_LIBURING'];
  if (env['LESSONCAST_BENCH_WORKER_NO_LIBURING']) out['no-liburing'] = env['LESSONCAST_BENCH_WORKER_NO_LIBURING'];
  const dir = path.join(env['LESSONCAST_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'lessoncast'), 'mediasoup-worker');
  if (!existsSync(dir)) return out;
  const version = (JSON.parse(readFileSync(path.join(root, 'node_modules', 'mediasoup', 'package.json'), 'utf8')) as { version: string }).version;
  const builds = readdirSync(dir)
    .filter((d) => d.startsWith(`${version}-`))
    .map((d) => ({ bin: path.join(dir, d, 'mediasoup-worker'), info: path.join(dir, d, 'BUILDINFO') }))
    .filter((b) => existsSync(b.bin) && existsSync(b.info))
    .map((b) => ({ ...b, mtime: statSync(b.bin).mtimeMs, text: readFileSync(b.info, 'utf8') }))
    // Same run-time libraries as the liburing build (Debian's libsrtp2 on NSS), so only io_uring differs.
    .filter((b) => b.text.includes('libnss3'))
    .sort((a, b) => b.mtime - a.mtime);
  out.liburing ??= builds.find((b) => /ms_disable_liburing=false/.test(b.text))?.bin;
  out['no-liburing'] ??= builds.find((b) => /ms_disable_liburing=true/.test(b.text))?.bin;
  return out;
}

export interface LeverMeasurement {
  variant: string;
  round: number;
  step: Step;
  liburingInUse: boolean | undefined;
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
  liburingInUse: boolean | undefined;
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
  log?: (line: string) => void;
}

export const defaultLeversOptions: LeversOptions = { n: 400, rounds: 2, warmupS: 2, measureS: 5, samples: 4, bestSuite: 'AEAD_AES_256_GCM' };

/** Runs every variant `rounds` times at n outputs; each round starts one child per worker build. */
export async function runLevers(opts: LeversOptions = defaultLeversOptions): Promise<{ measurements: LeverMeasurement[]; summary: LeverSummary[]; builds: Partial<Record<WorkerBuild, string>>; skipped: string[] }> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const builds = workerBuilds();
  const all = leverVariants(opts.bestSuite).filter((v) => !opts.only || opts.only.includes(v.id));
  const skipped = all.filter((v) => !builds[v.build]).map((v) => `${v.id} (no ${v.build} worker build in the cache)`);
  const variants = all.filter((v) => builds[v.build]);
  const measurements: LeverMeasurement[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    // Alternate the order of builds and of variants each round, so slow drift on the machine does not favour one.
    const order: WorkerBuild[] = round % 2 ? ['no-liburing', 'liburing'] : ['liburing', 'no-liburing'];
    for (const build of order) {
      let mine = variants.filter((v) => v.build === build);
      if (round % 2) mine = [...mine].reverse();
      if (mine.length === 0) continue;
      const got = await runChild(builds[build]!, mine, round, opts, log);
      measurements.push(...got);
    }
  }
  const summary = variants.map((v): LeverSummary => {
    const mine = measurements.filter((m) => m.variant === v.id && !m.step.sourceLost);
    const us = mine.map((m) => m.step.usPerPkt);
    const ratios = mine
      .map((m) => {
        const base = measurements.find((b) => b.variant === 'base' && b.round === m.round && !b.step.sourceLost);
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
      liburingInUse: mine[0]?.liburingInUse,
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
    io_uring: s.liburingInUse === undefined ? '?' : s.liburingInUse ? 'yes' : 'no',
    'max loss %': (s.maxLoss * 100).toFixed(2),
  };
}

function runChild(bin: string, variants: LeverVariant[], round: number, opts: LeversOptions, log: (l: string) => void): Promise<LeverMeasurement[]> {
  const spec = JSON.stringify({ variants, round, n: opts.n, warmupS: opts.warmupS, measureS: opts.measureS, samples: opts.samples });
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), new URL(import.meta.url).pathname, '--child', spec], {
    env: { ...process.env, MEDIASOUP_WORKER_BIN: bin },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const results: LeverMeasurement[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('RESULT ')) {
        const m = JSON.parse(line.slice(7)) as LeverMeasurement;
        results.push(m);
        const s = m.step;
        log(
          `[levers] round ${round + 1} ${m.variant.padEnd(17)} N=${s.n} CPU ${(s.sfuCpu * 100).toFixed(1)} % ` +
            `${Math.round(s.pktPerS)} pkt/s ${s.usPerPkt.toFixed(2)} µs/pkt loss ${(s.loss * 100).toFixed(2)} % io_uring ${m.liburingInUse ? 'yes' : 'no'} ` +
            `(cpu busy ${s.cpuBusy.map((x) => (x * 100).toFixed(0)).join('/')} %)`,
        );
      } else if (line.trim()) log(`[levers child] ${line}`);
    }
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(results) : reject(new Error(`levers child (${bin}) exited with ${code}`))));
  });
}

/** In the child: one binary (MEDIASOUP_WORKER_BIN), each variant measured once at n, one shared ffmpeg. */
async function childMain(spec: { variants: LeverVariant[]; round: number; n: number; warmupS: number; measureS: number; samples: number }): Promise<void> {
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
          const step = await measureStep(target, spec.n, samples, sink, { warmupS: spec.warmupS, measureS: spec.measureS, maxLoss: 0.01, maxCpu: 0.9 });
          if (step.sourceLost && attempt === 0) continue;
          const liburingInUse = await target.liburingInUse();
          const m: LeverMeasurement = { variant: v.id, round: spec.round, step, liburingInUse };
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
