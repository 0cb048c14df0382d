/**
 * Old against new: lessoncast on the previous mediasoup release (3.19.3, its
 * Node package and its worker) and on the release in package.json, side by
 * side in one run. Each version runs in its own child process (mediasoup
 * reads MEDIASOUP_WORKER_BIN when its module loads, and its worker refuses a
 * Node package of another version); the children of one part run back to
 * back, the order alternating from part to part so that drift on the machine
 * favours neither.
 *
 *   fanout     the fan-out ladder on the lessoncast target (bench/fanout.ts): classrooms per core
 *   fixed      N outputs (default 300), 3 rounds per version in ABBAAB order: worker CPU and µs per
 *              packet counted at the receivers (no getStats in the window), then a perf profile of
 *              the worker (hash-table symbols)
 *   hashtables the same load on each version's debug-info twin (the same recipe built with
 *              CXXFLAGS=-g into <cache>/bench/debug-info; its .text is checked to be identical),
 *              profiled by source file: the share of worker samples in hash-table code, inlined
 *              lookups included (std::unordered_* under our unordered_dense header vs abseil)
 *   browser    browser classrooms (bench/fanout.ts's browser profile) on bare mediasoup at N = 200,
 *              fixed-rounds per version in ABBA order: µs of worker CPU per packet out; the new side
 *              twice, without and with our worker build's sendmmsg() batching (the old one has none)
 *   join       WebSocket open → first RTP, waves of 1, 10, 50 (bench/join.ts)
 *   recording  one recorded lesson's cost, then 8, 16, 32 lessons at once (bench/recording.ts)
 *
 * The old side needs nothing in package.json: its Node package is installed on
 * demand into ${LESSONCAST_CACHE_DIR:-~/.cache/lessoncast}/bench/mediasoup-<old>/
 * (npm install --ignore-scripts: no prebuilt download) and loaded in place of
 * node_modules' by bench/mediasoup-release.mjs (BENCH_MEDIASOUP_DIR); its worker is built
 * by scripts/build-worker.sh --mediasoup-version <old> (6–10 min once, cached).
 * The new side runs MEDIASOUP_WORKER_BIN when set (as lessoncast would), else the
 * cached build of the checkout's recipe. BENCH_WORKER_OLD,
 * BENCH_WORKER_OLD_DEBUG and BENCH_WORKER_NEW_DEBUG give
 * the other binaries instead of the build cache.
 *
 *   npx tsx bench/versions.ts [--old 3.19.3] [--parts fanout,fixed,join,recording] [--quick]
 *                             [--fixed-n 300] [--fixed-rounds 3] [--profile-seconds 6]
 *   npm run bench -- --only versions
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mediasoupVersion } from '../src/media/mediasoup.js';
import { readChildResults, root, saveResult, sleep, table, waitForNoWorkerBuild } from './lib.js';
import type { Profile } from './sfu/profile.js';

export const PARTS = ['fanout', 'fixed', 'browser', 'hashtables', 'join', 'recording'] as const;
export type Part = (typeof PARTS)[number];

export interface VersionsOptions {
  old: string;
  parts: Part[];
  quick: boolean;
  fixedN: number;
  /** Fixed-N measurements per version (ABBA… order). */
  fixedRounds: number;
  profileSeconds: number;
}

// 300 outputs: 25–60 % of a core on the machines measured so far, well clear of saturation (where a
// worker drops its input instead of costing more per packet), as the forwarding bench's profiles.
export const defaultVersionsOptions: VersionsOptions = {
  old: '3.19.3',
  parts: [...PARTS],
  quick: false,
  fixedN: 300,
  fixedRounds: 3,
  profileSeconds: 6,
};

/** What every fan-out output is, on both sides (printed with the results). */
export const ARRANGEMENT =
  'one lesson (H264 1280x720 30 fps ~1.5 Mbit/s + Opus, werift publisher over /ws); N plain classrooms, each a PlainTransport ' +
  '(SRTP AEAD_AES_256_GCM, rtcpMux, comedia off) made by createPlainReceiver (kit/plainReceiver.ts, placed by LessonMedia.addRecvTransport) + consume + resumeConsumer with the bench ' +
  "receivers' capabilities (video NACK + PLI, mid + abs-send-time extensions; no transport-cc or goog-remb feedback: 3.19.3 runs no " +
  "bandwidth estimation on such an output, 3.32.2's createPlainTransport defaults to enableBwe: true and runs its sender congestion " +
  'controller on every output packet anyway), plus 2 werift WebRTC classrooms joined over /ws; 1 worker pinned to CPU 0, the load ' +
  'generator on CPU 1; lessoncast config defaults (media.enableBwe and the *Bitrate settings go to createWebRtcTransport; 3.19.3 has no ' +
  'such options and ignores them)';

export interface Side {
  label: 'old' | 'new';
  version: string;
  workerBin: string;
  /** The package folder loaded in place of node_modules' (old side only; bench/mediasoup-release.mjs). */
  packageDir?: string;
  /** The same recipe built with debug info (part 'hashtables'), and whether its code is byte-identical to workerBin's. */
  debugWorkerBin?: string;
  debugTextIdentical?: boolean;
  /** The worker's BUILDINFO (scripts/build-worker.sh), when it has one. */
  buildInfo?: string;
}

function buildInfo(bin: string): string | undefined {
  try {
    return readFileSync(path.join(path.dirname(bin), 'BUILDINFO'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

const cacheDir = (): string => process.env['LESSONCAST_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'lessoncast');

/**
 * The cached worker of a mediasoup version (the checkout's default recipe), built first when
 * missing. With `debugInfo`: the same recipe compiled with CXXFLAGS=-g (meson adds it to -O3;
 * GCC generates the same code with or without -g) in a cache of its own.
 */
function workerFor(version: string | undefined, log: (l: string) => void, debugInfo = false): string {
  const script = path.join(root, 'scripts', 'build-worker.sh');
  // The variant switch must not leak in from the environment: both sides run the default recipe.
  const { LESSONCAST_WORKER_SRTP: _srtp, MEDIASOUP_WORKER_BIN: _bin, CXXFLAGS: _cxx, ...rest } = process.env;
  const env: NodeJS.ProcessEnv = debugInfo
    ? { ...rest, CXXFLAGS: '-g', LESSONCAST_CACHE_DIR: path.join(cacheDir(), 'bench', 'debug-info') }
    : rest;
  const args = version ? ['--mediasoup-version', version] : [];
  const bin = execFileSync('bash', [script, '--print-path', ...args], { env, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop()!;
  if (existsSync(bin)) return bin;
  waitForNoWorkerBuild(log);
  if (existsSync(bin)) return bin;
  log(
    `building the mediasoup ${version ?? mediasoupVersion()} worker${debugInfo ? ' with debug info' : ''} (scripts/build-worker.sh ${args.join(' ')}; 6–15 min once, cached)`,
  );
  const t0 = performance.now();
  execFileSync('bash', [script, ...args], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  if (!existsSync(bin)) throw new Error(`scripts/build-worker.sh ${args.join(' ')} did not produce ${bin}`);
  log(`built in ${((performance.now() - t0) / 60000).toFixed(1)} min: ${bin}`);
  return bin;
}

/** mediasoup <version>'s Node package in the bench cache, installed on demand (no postinstall: the worker is ours). */
function oldPackage(version: string, log: (l: string) => void): string {
  const prefix = path.join(cacheDir(), 'bench', `mediasoup-${version}`);
  const dir = path.join(prefix, 'node_modules', 'mediasoup');
  const installed = (): string | undefined => {
    try {
      return (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return undefined;
    }
  };
  if (installed() !== version) {
    log(`installing mediasoup ${version}'s Node package into ${prefix} (npm, --ignore-scripts)`);
    execFileSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--ignore-scripts', `mediasoup@${version}`], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (installed() !== version) throw new Error(`npm did not install mediasoup ${version} into ${prefix}`);
  }
  return dir;
}

/** The .text sections of two ELF files are byte for byte the same (so a profile of one holds for the other). */
function sameText(a: string, b: string): boolean {
  const text = (f: string): string => {
    const out = path.join(tmpdir(), `lessoncast-text-${process.pid}-${path.basename(path.dirname(f))}`);
    try {
      execFileSync('objcopy', ['-O', 'binary', '--only-section=.text', f, out], { stdio: 'ignore' });
      return createHash('sha256').update(readFileSync(out)).digest('hex');
    } finally {
      rmSync(out, { force: true });
    }
  };
  try {
    return text(a) === text(b);
  } catch {
    return false;
  }
}

/** Both sides ready to run: the old package installed, both workers (and their debug-info twins for 'hashtables') built. Run before any measurement. */
export async function prepareVersions(
  opts: Pick<VersionsOptions, 'old' | 'parts'>,
  log: (l: string) => void = (l) => console.log(l),
): Promise<{ old: Side; new: Side }> {
  const packageDir = oldPackage(opts.old, log);
  const given = (name: string): string | undefined => {
    const bin = process.env[name];
    if (bin && !existsSync(bin)) throw new Error(`${name}=${bin} does not exist`);
    return bin || undefined;
  };
  const sides: { old: Side; new: Side } = {
    old: { label: 'old', version: opts.old, workerBin: given('BENCH_WORKER_OLD') ?? workerFor(opts.old, log), packageDir },
    new: { label: 'new', version: mediasoupVersion(), workerBin: given('MEDIASOUP_WORKER_BIN') ?? workerFor(undefined, log) },
  };
  for (const side of [sides.old, sides.new]) {
    const info = buildInfo(side.workerBin);
    if (info) side.buildInfo = info;
  }
  if (opts.parts.includes('hashtables')) {
    for (const side of [sides.old, sides.new]) {
      side.debugWorkerBin =
        given(`BENCH_WORKER_${side.label.toUpperCase()}_DEBUG`) ?? workerFor(side === sides.old ? opts.old : undefined, log, true);
      side.debugTextIdentical = sameText(side.workerBin, side.debugWorkerBin);
      log(
        `mediasoup ${side.version} debug-info twin ${side.debugWorkerBin}: .text ${side.debugTextIdentical ? 'identical to' : 'DIFFERS from'} the measured build's`,
      );
    }
  }
  return sides;
}

// ---------------------------------------------------------------------------
// The child: one part on one version.

interface ChildSpec {
  part: Part;
  side: Side;
  opts: VersionsOptions;
}

interface FanoutOut {
  capacity: number | null;
  bounded: boolean;
  projected: number | null;
  usPerPktAtCapacity: number | null;
  /** Median µs/pkt over passing steps at ≥ 25 % CPU (consumer counters). */
  usPerPktMedian: number | null;
  steps: Array<{ n: number; cpu: number; usPerPkt: number; loss: number; pass: boolean }>;
  file?: string;
}
interface FixedOut {
  n: number;
  cpu: number;
  usPerPkt: number;
  pktPerS: number;
  loss: number;
  cpuBusy: number[];
  profile?: Profile;
}
interface JoinOut {
  results: Array<Record<string, string | number>>;
}
interface RecordingOut {
  soloCost: number;
  soloPssMb: number;
  soloWorkerCpu: number;
  soloNodeCpu: number;
  soloFfmpegCpu: number;
  capacity: number | null;
  lowerBound: boolean;
  perLesson: number | null;
  /** Per ladder step that passed: server and worker CPU (fractions of a core). */
  steps: Array<{ lessons: number; serverCpu: number; workerCpu: number; pass: boolean }>;
}
/** Browser classrooms at a fixed N, per worker setting measured (the old side has no send batching). */
interface BrowserOut {
  n: number;
  runs: Array<{ sendBatch: boolean; usPerPkt: number; cpu: number; pktPerS: number; estimateKbps: number | null; pass: boolean }>;
}
type PartOut = FanoutOut | FixedOut | BrowserOut | JoinOut | RecordingOut;

/** N of the browser part: as the levers bench (bench/levers.ts), clear of saturation on both versions. */
const BROWSER_N = 200;
/** Packets per second of one output (audio + video) of the fan-out's lesson, for outputs per core. */
const BROWSER_PKT_PER_OUTPUT = 187;

async function childMain(spec: ChildSpec): Promise<void> {
  const { part, opts } = spec;
  const { mediasoupVersion: loadedVersion } = await import('../src/media/mediasoup.js');
  if (loadedVersion() !== spec.side.version)
    throw new Error(`child for mediasoup ${spec.side.version} sees ${loadedVersion()} (BENCH_MEDIASOUP_DIR, bench/mediasoup-release.mjs?)`);
  console.log(`mediasoup ${loadedVersion()}, worker ${process.env['MEDIASOUP_WORKER_BIN']}`);
  let out: PartOut;
  if (part === 'fanout') {
    const { defaultFanoutOptions, runFanoutBench } = await import('./fanout.js');
    const r = await runFanoutBench({
      ...defaultFanoutOptions,
      targets: ['lessoncast'],
      profiles: ['minimal'], // old against new compares the minimal profile (see docs/performance.md)
      ...(opts.quick ? { ladder: [20, 40, 80], ladders: {}, refine: 0, warmupS: 1, measureS: 3, samples: 4 } : {}),
    });
    const t = r.results[0]!;
    const us = t.steps
      .filter((s) => s.pass && Math.max(...s.sfuCpu) >= 0.25 && Number.isFinite(s.usPerPkt))
      .map((s) => s.usPerPkt)
      .sort((a, b) => a - b);
    out = {
      capacity: t.capacity,
      bounded: t.bounded,
      projected: t.projected,
      usPerPktAtCapacity: t.usPerPkt,
      usPerPktMedian: us.length ? us[Math.floor(us.length / 2)]! : null,
      steps: t.steps.map((s) => ({ n: s.n, cpu: Math.max(...s.sfuCpu), usPerPkt: s.usPerPkt, loss: s.loss, pass: s.pass })),
    } satisfies FanoutOut;
  } else if (part === 'fixed') {
    out = await fixedLoad(opts, false);
  } else if (part === 'browser') {
    const { defaultFanoutOptions, fixedStep } = await import('./fanout.js');
    const { pinProcess, allCpus } = await import('./lib.js');
    const n = opts.quick ? 40 : BROWSER_N;
    const runs: BrowserOut['runs'] = [];
    pinProcess(process.pid, '1');
    for (const sendBatch of spec.side.label === 'new' ? [false, true] : [false]) {
      const step = await fixedStep('bare', 'browser', n, {
        ...(opts.quick ? { warmupS: 1, measureS: 3 } : {}),
        worker: { ...defaultFanoutOptions.worker, sendBatch },
      });
      runs.push({
        sendBatch,
        usPerPkt: step.usPerPkt,
        cpu: step.sfuCpu[0] ?? NaN,
        pktPerS: step.pktPerS,
        estimateKbps: step.browser?.estimateKbps.median ?? null,
        pass: step.pass,
      });
    }
    pinProcess(process.pid, allCpus());
    out = { n, runs } satisfies BrowserOut;
  } else if (part === 'hashtables') {
    out = await fixedLoad(opts, true);
  } else if (part === 'join') {
    const { runJoinBench } = await import('./join.js');
    const r = await runJoinBench(opts.quick ? { joins: 10, waves: [1, 5] } : { joins: 200, waves: [1, 10, 50] });
    out = { results: r.results } satisfies JoinOut;
  } else {
    const { defaultRecordingOptions, runRecordingBench } = await import('./recording.js');
    // 8, 16, 32 without bisection: the cost per lesson at 32 on both sides; the capacity itself is the
    // recording part's (past ~50 lessons the load generator on the other core is what gives out).
    const r = await runRecordingBench({
      ...defaultRecordingOptions,
      ladder: opts.quick ? [2, 4] : [8, 16, 32],
      refine: 0,
      ...(opts.quick ? { soloSeconds: 10, baselineSeconds: 5, windowSeconds: 8 } : {}),
    });
    out = {
      soloCost: r.solo.costCpu,
      soloPssMb: r.solo.recorded.ffmpegPssMb,
      soloWorkerCpu: r.solo.recorded.workerCpu,
      soloNodeCpu: r.solo.recorded.nodeCpu,
      soloFfmpegCpu: r.solo.recorded.ffmpegCpu,
      capacity: r.capacity,
      lowerBound: r.lowerBound,
      perLesson: r.perLesson,
      steps: r.steps.map((s) => ({ lessons: s.lessons, serverCpu: s.serverCpu, workerCpu: s.workerCpu, pass: s.pass })),
    } satisfies RecordingOut;
  }
  process.stdout.write(`RESULT ${JSON.stringify(out)}\n`);
}

/** The fan-out's lessoncast target held at a fixed N: one measurement (packets counted at the receivers), then a profile of the worker. */
async function fixedLoad(opts: VersionsOptions, sourceFiles: boolean): Promise<FixedOut> {
  const { defaultFanoutOptions, startTarget } = await import('./fanout.js');
  const { SampleSocket, Sink, measureStep, SOURCE_SETTLE_MS } = await import('./sfu/lib.js');
  const { hasDebugInfo, profilePid } = await import('./sfu/profile.js');
  if (sourceFiles && !hasDebugInfo(process.env['MEDIASOUP_WORKER_BIN'] ?? ''))
    throw new Error(`${process.env['MEDIASOUP_WORKER_BIN']} has no debug info`);
  const { BENCH_NICE, allCpus, pinProcess, setNice } = await import('./lib.js');
  const n = opts.quick ? 40 : opts.fixedN;
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1');
  const samples = await Promise.all(Array.from({ length: opts.quick ? 4 : 8 }, () => SampleSocket.open()));
  const sink = await Sink.open();
  const target = await startTarget('lessoncast', defaultFanoutOptions);
  try {
    await sleep(SOURCE_SETTLE_MS); // x264's rate ramps up over the first seconds
    // Packets are counted at the receivers; reading a thousand consumers' getStats around the window
    // (measureStep's cross-check) would load the worker inside it.
    const quiet: typeof target = { ...target, sent: async () => undefined };
    const step = await measureStep(quiet, n, samples, sink, {
      warmupS: opts.quick ? 1 : 3,
      measureS: opts.quick ? 3 : 8,
      maxLoss: 0.01,
      maxCpu: 0.9,
    });
    const profile =
      opts.profileSeconds > 0 || sourceFiles
        ? await profilePid(target.sfu[0]!.pid, opts.quick ? 2 : Math.max(opts.profileSeconds, 1), { sourceFiles })
        : undefined;
    console.log(
      `N=${n}: worker CPU ${(step.sfuCpu * 100).toFixed(1)} %, ${Math.round(step.pktPerS)} pkt/s, ${step.usPerPkt.toFixed(2)} µs/pkt, loss ${(step.loss * 100).toFixed(2)} %`,
    );
    return {
      n,
      cpu: step.sfuCpu,
      usPerPkt: step.usPerPkt,
      pktPerS: step.pktPerS,
      loss: step.loss,
      cpuBusy: step.cpuBusy,
      ...(profile ? { profile } : {}),
    };
  } finally {
    await target.close();
    for (const s of samples) s.close();
    sink.close();
    pinProcess(process.pid, allCpus());
  }
}

// ---------------------------------------------------------------------------
// The parent: children in alternating order, then the side-by-side table.

function runChild(spec: ChildSpec, log: (l: string) => void): Promise<PartOut> {
  const { BENCH_MEDIASOUP_DIR: _dir, ...base } = process.env;
  const bin = spec.part === 'hashtables' ? spec.side.debugWorkerBin : spec.side.workerBin;
  if (!bin)
    return Promise.reject(new Error(`no ${spec.part === 'hashtables' ? 'debug-info ' : ''}worker for mediasoup ${spec.side.version}`));
  // The other release's package replaces node_modules' for the child and the servers it starts.
  const release = (dir: string): NodeJS.ProcessEnv => ({
    BENCH_MEDIASOUP_DIR: dir,
    NODE_OPTIONS: [base['NODE_OPTIONS'], `--import=${new URL('./mediasoup-release.mjs', import.meta.url).href}`].filter(Boolean).join(' '),
  });
  const env: NodeJS.ProcessEnv = { ...base, MEDIASOUP_WORKER_BIN: bin, ...(spec.side.packageDir ? release(spec.side.packageDir) : {}) };
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), new URL(import.meta.url).pathname, '--child', JSON.stringify(spec)],
    { env, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let result: PartOut | undefined;
  readChildResults<PartOut>(
    child.stdout,
    (r) => (result = r),
    (line) => log(`[${spec.side.version} ${spec.part}] ${line}`),
  );
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 && result
        ? resolve(result)
        : reject(new Error(`${spec.part} on mediasoup ${spec.side.version} exited with ${code}${result ? '' : ' without a result'}`)),
    );
  });
}

export interface VersionsResult {
  old: Side;
  new: Side;
  arrangement: string;
  /** Per part, per side (fixed: one entry per round). */
  raw: Partial<Record<Part, { old: PartOut[]; new: PartOut[]; order: string[] }>>;
  rows: Array<Record<string, string | number>>;
  errors: string[];
  minutes: number;
  file: string;
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function runVersionsBench(
  opts: VersionsOptions = defaultVersionsOptions,
  prepared?: { old: Side; new: Side },
  log: (l: string) => void = (l) => console.log(l),
): Promise<VersionsResult> {
  const t0 = performance.now();
  const sides = prepared ?? (await prepareVersions(opts, log));
  const recipe = (side: Side) => /^recipe (\S+)/m.exec(side.buildInfo ?? '')?.[1] ?? '?';
  log(`old: mediasoup ${sides.old.version} (${sides.old.packageDir}), worker ${sides.old.workerBin} (recipe ${recipe(sides.old)})`);
  log(`new: mediasoup ${sides.new.version} (node_modules), worker ${sides.new.workerBin} (recipe ${recipe(sides.new)})`);
  log(`arrangement: ${ARRANGEMENT}`);
  const raw: VersionsResult['raw'] = {};
  const errors: string[] = [];
  let flip = false;
  for (const part of opts.parts) {
    // Alternate which version goes first; fixed-N rounds go A B B A A B …
    const rounds = part === 'fixed' || part === 'browser' ? opts.fixedRounds : 1;
    const order: Side[] = [];
    for (let r = 0; r < rounds; r++) order.push(...((r % 2 === 0) !== flip ? [sides.old, sides.new] : [sides.new, sides.old]));
    flip = !flip;
    const got = { old: [] as PartOut[], new: [] as PartOut[], order: order.map((s) => s.version) };
    for (const side of order) {
      log(`\n== ${part} on mediasoup ${side.version} (${((performance.now() - t0) / 60000).toFixed(1)} min) ==`);
      try {
        got[side.label].push(await runChild({ part, side, opts }, log));
      } catch (err) {
        errors.push((err as Error).message);
        log(`failed: ${(err as Error).message}`);
      }
    }
    raw[part] = got;
  }
  const rows = compare(raw, sides.old.version, sides.new.version);
  const minutes = (performance.now() - t0) / 60000;
  log(
    `\nold vs new: mediasoup ${sides.old.version} → ${sides.new.version}, same lessoncast code; ratio = new ÷ old; "worse"/"better" when beyond ±5 %`,
  );
  log(`arrangement (fan-out, fixed N): ${ARRANGEMENT}`);
  log(table(rows));
  if (errors.length) log(`errors: ${errors.join('; ')}`);
  const file = saveResult('versions', { opts, old: sides.old, new: sides.new, arrangement: ARRANGEMENT, raw, rows, errors, minutes });
  log(`saved ${file} (${minutes.toFixed(1)} min)`);
  return { old: sides.old, new: sides.new, arrangement: ARRANGEMENT, raw, rows, errors, minutes, file };
}

/** The side-by-side rows: metric | old | new | ratio | verdict. */
function compare(raw: VersionsResult['raw'], oldLabel: string, newLabel: string): Array<Record<string, string | number>> {
  const rows: Array<Record<string, string | number>> = [];
  const add = (
    metric: string,
    o: number | null | undefined,
    n: number | null | undefined,
    digits: number,
    better: 'higher' | 'lower' | 'none',
    fmt?: (x: number) => string,
  ): void => {
    const f = (x: number | null | undefined) =>
      x === null || x === undefined || !Number.isFinite(x) ? '–' : fmt ? fmt(x) : x.toFixed(digits);
    const ratio = o && n && Number.isFinite(o) && Number.isFinite(n) ? n / o : NaN;
    let verdict = '';
    if (Number.isFinite(ratio) && better !== 'none') {
      const worse = better === 'higher' ? ratio < 0.95 : ratio > 1.05;
      const improved = better === 'higher' ? ratio > 1.05 : ratio < 0.95;
      verdict = worse ? 'worse' : improved ? 'better' : '≈';
    }
    rows.push({ metric, [oldLabel]: f(o), [newLabel]: f(n), 'new ÷ old': Number.isFinite(ratio) ? ratio.toFixed(2) : '–', '': verdict });
  };
  const fan = raw.fanout;
  if (fan) {
    const o = fan.old[0] as FanoutOut | undefined;
    const n = fan.new[0] as FanoutOut | undefined;
    const cap = (x?: FanoutOut) => x?.capacity ?? null;
    add(
      `fan-out: classrooms per core (loss < 1 %, CPU < 90 %)${o && !o.bounded ? ' [old: top of ladder]' : ''}${n && !n.bounded ? ' [new: top of ladder]' : ''}`,
      cap(o),
      cap(n),
      0,
      'higher',
    );
    add('fan-out: projected @90 % worker CPU', o?.projected, n?.projected, 0, 'higher');
    add('fan-out: µs worker CPU/pkt, median of passing steps ≥ 25 % CPU', o?.usPerPktMedian, n?.usPerPktMedian, 2, 'lower');
  }
  const fixed = raw.fixed;
  if (fixed) {
    const o = fixed.old as FixedOut[];
    const n = fixed.new as FixedOut[];
    const N = o[0]?.n ?? n[0]?.n;
    add(
      `fixed N=${N}: worker CPU % (median of ${o.length}/${n.length} rounds)`,
      median(o.map((x) => x.cpu * 100)),
      median(n.map((x) => x.cpu * 100)),
      1,
      'lower',
    );
    add(
      `fixed N=${N}: µs worker CPU/pkt (receiver-counted)`,
      median(o.map((x) => x.usPerPkt)),
      median(n.map((x) => x.usPerPkt)),
      2,
      'lower',
    );
    add(
      `fixed N=${N}: loss % (worst round)`,
      Math.max(0, ...o.map((x) => x.loss * 100)),
      Math.max(0, ...n.map((x) => x.loss * 100)),
      2,
      'none',
    );
    const share = (xs: FixedOut[], re: RegExp) =>
      median(
        xs.flatMap((x) => (x.profile ? [x.profile.hashTables.filter((h) => re.test(h.name)).reduce((a, h) => a + h.percent, 0)] : [])),
      );
    add('profile: % of worker samples in std::_Hashtable/std::unordered_* (libstdc++)', share(o, /^std::/), share(n, /^std::/), 2, 'none');
    add('profile: % in our unordered_dense compat hash (not inlined)', share(o, /^ankerl/), share(n, /^ankerl/), 2, 'none');
    add('profile: % in abseil (flat_hash_map/set, absl::Hash)', share(o, /^abseil/), share(n, /^abseil/), 2, 'none');
    add('profile: % in all hash-table code (out-of-line symbols)', share(o, /^all/), share(n, /^all/), 2, 'none');
  }
  const ht = raw.hashtables;
  if (ht) {
    const o = ht.old as FixedOut[];
    const n = ht.new as FixedOut[];
    const N = o[0]?.n ?? n[0]?.n;
    const share = (xs: FixedOut[], re: RegExp) =>
      median(
        xs.flatMap((x) =>
          x.profile?.hashTablesInlined
            ? [x.profile.hashTablesInlined.filter((h) => re.test(h.name)).reduce((a, h) => a + h.percent, 0)]
            : [],
        ),
      );
    add(`debug-info twins, N=${N}: worker CPU %`, median(o.map((x) => x.cpu * 100)), median(n.map((x) => x.cpu * 100)), 1, 'lower');
    add(`debug-info twins, N=${N}: µs worker CPU/pkt`, median(o.map((x) => x.usPerPkt)), median(n.map((x) => x.usPerPkt)), 2, 'lower');
    add('inlined included: % of worker samples in std::unordered_* headers (libstdc++)', share(o, /^std::/), share(n, /^std::/), 2, 'none');
    add('inlined included: % in our unordered_dense.h', share(o, /^ankerl/), share(n, /^ankerl/), 2, 'none');
    add('inlined included: % in abseil headers', share(o, /^abseil/), share(n, /^abseil/), 2, 'none');
    add('inlined included: % in all hash-table code', share(o, /^all/), share(n, /^all/), 2, 'none');
    const bwe = (xs: FixedOut[]) => median(xs.flatMap((x) => (x.profile?.bweInlined === undefined ? [] : [x.profile.bweInlined])));
    add('inlined included: % in bandwidth estimation (3.32 RTC/BWE; 3.19 TCC client/server, libwebrtc)', bwe(o), bwe(n), 2, 'none');
  }
  const browser = raw.browser;
  if (browser) {
    const o = browser.old as BrowserOut[];
    const n = browser.new as BrowserOut[];
    const N = o[0]?.n ?? n[0]?.n;
    const us = (xs: BrowserOut[], sendBatch: boolean) =>
      median(xs.flatMap((x) => x.runs.filter((r) => r.sendBatch === sendBatch && Number.isFinite(r.usPerPkt)).map((r) => r.usPerPkt)));
    const perCore = (usPerPkt: number) => Math.floor(0.9 / ((usPerPkt / 1e6) * BROWSER_PKT_PER_OUTPUT));
    const label = `browser classrooms on bare mediasoup, N=${N} (median of ${o.length}/${n.length} rounds)`;
    add(`${label}: µs worker CPU/pkt`, us(o, false), us(n, false), 2, 'lower');
    add(`${label}: outputs per core @90 %`, perCore(us(o, false)), perCore(us(n, false)), 0, 'higher');
    add(`${label}, new with sendmmsg() batching: µs worker CPU/pkt`, us(o, false), us(n, true), 2, 'lower');
    add(`${label}, new with sendmmsg() batching: outputs per core @90 %`, perCore(us(o, false)), perCore(us(n, true)), 0, 'higher');
  }
  const join = raw.join;
  if (join) {
    const o = (join.old[0] as JoinOut | undefined)?.results ?? [];
    const n = (join.new[0] as JoinOut | undefined)?.results ?? [];
    for (const w of o) {
      const m = n.find((x) => x['wave'] === w['wave']);
      add(`join, ${w['wave']} at once: first RTP p50 ms`, Number(w['first RTP p50 ms']), Number(m?.['first RTP p50 ms']), 0, 'lower');
      add(`join, ${w['wave']} at once: first RTP p95 ms`, Number(w['first RTP p95 ms']), Number(m?.['first RTP p95 ms']), 0, 'lower');
      add(`join, ${w['wave']} at once: failures of ${w['joins']}`, Number(w['failures']), Number(m?.['failures']), 0, 'none');
    }
  }
  const rec = raw.recording;
  if (rec) {
    const o = rec.old[0] as RecordingOut | undefined;
    const n = rec.new[0] as RecordingOut | undefined;
    const pct = (x: number) => (x * 100).toFixed(2);
    add('recording one lesson: % of a core (ffmpeg + extra Node + extra worker)', o?.soloCost, n?.soloCost, 2, 'lower', pct);
    add('recording one lesson: worker CPU % (recorded lesson)', o?.soloWorkerCpu, n?.soloWorkerCpu, 2, 'lower', pct);
    add('recording one lesson: ffmpeg PSS MB', o?.soloPssMb, n?.soloPssMb, 0, 'lower');
    // The largest ladder step both passed: the marginal cost where fixed costs are spread out.
    const both = (o?.steps ?? []).filter((s) => s.pass && n?.steps.some((t) => t.lessons === s.lessons && t.pass)).map((s) => s.lessons);
    const at = both.length ? Math.max(...both) : undefined;
    if (at !== undefined) {
      const so = o!.steps.find((s) => s.lessons === at)!;
      const sn = n!.steps.find((s) => s.lessons === at)!;
      add(
        `recording ${at} lessons: server CPU % per lesson (Node + worker + ffmpeg)`,
        so.serverCpu / at,
        sn.serverCpu / at,
        2,
        'lower',
        pct,
      );
      add(`recording ${at} lessons: worker CPU %`, so.workerCpu, sn.workerCpu, 1, 'lower', (x) => (x * 100).toFixed(1));
    }
    add(
      `recording: lessons per core${o?.lowerBound || n?.lowerBound ? ' (≥: top of the 8, 16, 32 ladder)' : ''}`,
      o?.capacity,
      n?.capacity,
      0,
      'higher',
    );
  }
  return rows;
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain && process.argv[2] === '--child') {
  await childMain(JSON.parse(process.argv[3]!) as ChildSpec);
  process.exit(0);
} else if (isMain) {
  const d = defaultVersionsOptions;
  const { values } = parseArgs({
    options: {
      old: { type: 'string', default: d.old },
      parts: { type: 'string', default: d.parts.join(',') },
      quick: { type: 'boolean', default: false },
      'fixed-n': { type: 'string', default: String(d.fixedN) },
      'fixed-rounds': { type: 'string', default: String(d.fixedRounds) },
      'profile-seconds': { type: 'string', default: String(d.profileSeconds) },
    },
  });
  const parts = values.parts.split(',') as Part[];
  for (const p of parts)
    if (!(PARTS as readonly string[]).includes(p)) throw new Error(`--parts: unknown part '${p}' (${PARTS.join(', ')})`);
  const r = await runVersionsBench({
    old: values.old,
    parts,
    quick: values.quick,
    fixedN: Number(values['fixed-n']),
    fixedRounds: Number(values['fixed-rounds']),
    profileSeconds: Number(values['profile-seconds']),
  });
  process.exit(r.errors.length ? 1 : 0);
}
