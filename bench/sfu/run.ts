/**
 * Forwarding speed side by side, in one run (issue 8): the same lesson and
 * the same ladder of N against Janus's VideoRoom rtp_forward, bare mediasoup
 * and lessoncast, all with AES_CM_128_HMAC_SHA1_80 outputs (the suite all
 * three can use), Janus once more on the OpenSSL libsrtp our worker links, and lessoncast again with AEAD_AES_256_GCM outputs (what
 * browsers negotiate; Janus's rtp_forward has no GCM); the raw sendto floor (bench/floor/); the levers on bare
 * mediasoup at a fixed N; a perf profile of each SFU under load, and where one packet's CPU goes
 * in lessoncast's worker with minimal and with browser-classroom outputs (profile.ts --split). Prints
 * tables and writes bench/results/sfu-<time>.json with machine info.
 * About 9–10 minutes on 2 cores.
 *
 *   npx tsx bench/sfu/run.ts [--quick] [--no-wait] [--targets janus,janus-openssl,bare,lessoncast,lessoncast-gcm,floor]
 *                            [--ladder 50,100,200,400,800,1600] [--levers-n auto|400] [--rounds 2] [--no-levers] [--no-profile]
 *
 * The machine is shared: before it starts, and again before every step, it
 * waits (up to 15 min, polling every 15 s) while another benchmark
 * (`pgrep -af bench/`) is running, with its own outputs removed meanwhile.
 */
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import { defaultFanoutOptions } from '../fanout.js';
import { startLessoncastTarget } from '../fanout/lessoncastTarget.js';
import type { FanoutTarget, LessonSource } from '../fanout/target.js';
import { startFloorTarget } from '../floor/floorTarget.js';
import { mediasoupVersion } from '../../src/media/mediasoup.js';
import { BENCH_NICE, allCpus, descendants, pinProcess, saveResult, setNice } from '../lib.js';
import { startBareTarget } from './bare.js';
import { ensureJanus, janusVersion, opensslLibsrtpForJanus, startJanusTarget } from './janus.js';
import { defaultLeversOptions, leverRow, runLevers, workerBuilds } from './levers.js';
import { machineInfo, runLadder, stepRow, table, waitForQuiet, type LadderResult } from './lib.js';
import { packetSplit, printProfile, profileTarget, splitTable, type PacketSplit, type Profile } from './profile.js';

type TargetName = 'janus' | 'janus-openssl' | 'bare' | 'lessoncast' | 'lessoncast-gcm' | 'floor';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'no-wait': { type: 'boolean', default: false },
    targets: { type: 'string', default: 'janus,janus-openssl,bare,lessoncast,lessoncast-gcm,floor' },
    ladder: { type: 'string' },
    refine: { type: 'string', default: '2' },
    warmup: { type: 'string' },
    measure: { type: 'string' },
    'levers-n': { type: 'string', default: 'auto' },
    rounds: { type: 'string' },
    'no-levers': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const SUITE: types.SrtpCryptoSuite = 'AES_CM_128_HMAC_SHA1_80';
const source: LessonSource = { width: 1280, height: 720, fps: 30, videoKbps: 1500 };
const ladder = (values.ladder ?? (quick ? '20,40' : '50,100,200,400,800,1600')).split(',').map(Number);
const step = {
  warmupS: Number(values.warmup ?? 2),
  measureS: Number(values.measure ?? (quick ? 3 : 5)),
  maxLoss: 0.01,
  maxCpu: 0.9,
};
const targets = values.targets.split(',') as TargetName[];

// Interrupted (Ctrl-C, timeout): end what this run started (Janus, workers, ffmpeg, the sink), each by its pid.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const d of descendants(process.pid).reverse()) {
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.exit(130);
  });
}

const started = performance.now();
const minutes = (): string => ((performance.now() - started) / 60000).toFixed(1);

// The machine is shared: wait for other benchmarks to finish.
// (Each ladder step and lever measurement checks again, and pauses its load while another runs.)
if (!values['no-wait']) await waitForQuiet((l) => console.log(l));

const machine = machineInfo();
// Every worker build the levers compare, built first if missing (so no build runs between measurements).
const builds = workerBuilds({ build: !values['no-levers'], log: (l) => console.log(l) });
// bare and lessoncast run in this process: make them use lessoncast's default build explicitly.
if (builds.default && !process.env['MEDIASOUP_WORKER_BIN']) process.env['MEDIASOUP_WORKER_BIN'] = builds.default;
if (targets.some((t) => t.startsWith('janus'))) ensureJanus();
let janusSrtpDir: string | undefined;
const janusOpensslSrtp = (): string => (janusSrtpDir ??= opensslLibsrtpForJanus());
if (targets.includes('janus-openssl')) janusOpensslSrtp(); // built before any measurement
console.log(
  `forwarding bench on ${String(machine['cpuModel'])}, ${String(machine['cores'])} cores, kernel ${String(machine['kernel'])}, ` +
    `Janus ${janusVersion()}, mediasoup ${mediasoupVersion()}, worker ${process.env['MEDIASOUP_WORKER_BIN'] ?? '(default)'}; load before: ${String(machine['loadavg'])}`,
);

setNice(process.pid, BENCH_NICE); // inherited by everything started from here
pinProcess(process.pid, '1'); // the SFU gets CPU 0; this Node, ffmpeg and the receivers CPU 1

const results: Array<LadderResult & { name: TargetName }> = [];
const profiles: Record<string, Profile> = {};
/** Where a packet's worker CPU goes, lessoncast's minimal and browser-classroom outputs side by side (issue 18). */
const splits: PacketSplit[] = [];
const starters: Record<TargetName, () => Promise<FanoutTarget>> = {
  janus: () => startJanusTarget({ cpu: 0, source }),
  // Janus on the same libsrtp our worker links (OpenSSL backend, from Debian's source): how much of the gap is the crypto library.
  'janus-openssl': () => startJanusTarget({ cpu: 0, source, libsrtpDir: janusOpensslSrtp(), name: 'Janus on OpenSSL libsrtp' }),
  bare: () => startBareTarget({ cpu: 0, source, settings: { logLevel: 'warn', srtpCryptoSuite: SUITE, consumerCaps: 'full' } }),
  lessoncast: () =>
    startLessoncastTarget({
      name: 'lessoncast',
      workers: 1,
      consumersPerRouter: 1_000_000,
      workerCpus: [0],
      srtpCryptoSuite: SUITE,
      webrtcClassrooms: 0,
      source,
      worker: defaultFanoutOptions.worker,
    }),
  // What real classrooms get: browsers negotiate AEAD_AES_256_GCM over DTLS-SRTP (Janus's rtp_forward cannot use it).
  'lessoncast-gcm': () =>
    startLessoncastTarget({
      name: 'lessoncast (GCM outputs)',
      workers: 1,
      consumersPerRouter: 1_000_000,
      workerCpus: [0],
      srtpCryptoSuite: 'AEAD_AES_256_GCM',
      webrtcClassrooms: 0,
      source,
      worker: defaultFanoutOptions.worker,
    }),
  floor: () => startFloorTarget({ cpu: 0, source }),
};

try {
  for (const name of targets) {
    console.log(`\n== ${name} (${minutes()} min) ==`);
    const r = await runLadder(starters[name], {
      ...step,
      ladder: name === 'floor' ? [quick ? 40 : 800] : ladder,
      refine: name === 'floor' ? 0 : Number(values.refine),
      samples: quick ? 4 : 8,
    });
    results.push({ ...r, name });
  }

  let leversResult: Awaited<ReturnType<typeof runLevers>> | undefined;
  let leversN: number | undefined;
  if (!values['no-levers']) {
    leversN = values['levers-n'] !== 'auto' ? Number(values['levers-n']) : quick ? 40 : defaultLeversOptions.n;
    console.log(`\n== levers at N=${leversN} (${minutes()} min) ==`);
    leversResult = await runLevers({
      ...defaultLeversOptions,
      n: leversN,
      rounds: Number(values.rounds ?? (quick ? 1 : 2)),
      warmupS: quick ? 1 : defaultLeversOptions.warmupS,
      measureS: quick ? 2 : defaultLeversOptions.measureS,
      builds,
    });
  }

  if (!values['no-profile']) {
    const n = quick ? 40 : 300;
    const profiled: Record<string, () => Promise<FanoutTarget>> = {
      'janus (AES-CM)': starters.janus,
      'bare mediasoup (AES-CM)': starters.bare,
      'bare mediasoup (GCM)': () =>
        startBareTarget({ cpu: 0, source, settings: { logLevel: 'warn', srtpCryptoSuite: 'AEAD_AES_256_GCM', consumerCaps: 'full' } }),
    };
    for (const [label, start] of Object.entries(profiled)) {
      if (label.startsWith('janus') && !targets.includes('janus')) continue;
      console.log(`\n== profile ${label} at N=${n} (${minutes()} min) ==`);
      const p = await profileTarget(start, n, quick ? 3 : 6);
      if (p) {
        profiles[label] = p;
        printProfile(`${label} at N=${n}`, p);
      } else console.log('no profile: perf missing or not permitted');
    }
    const splitN = quick ? 40 : 200;
    for (const profile of ['minimal', 'browser'] as const) {
      console.log(`\n== where a packet's CPU goes: lessoncast, ${profile} outputs, N=${splitN} (${minutes()} min) ==`);
      const sp = await packetSplit('lessoncast', profile, splitN, 16, quick ? 3 : 6);
      if (sp) splits.push(sp);
    }
    if (splits.length) console.log(splitTable(splits));
  }

  // ---- report ----
  for (const r of results) {
    console.log(`\n${r.target}`);
    console.log(table(r.steps.map(stepRow)));
  }
  const janus = results.find((r) => r.name === 'janus');
  const janusOpenssl = results.find((r) => r.name === 'janus-openssl');
  const floor = results.find((r) => r.name === 'floor');
  const bare = results.find((r) => r.name === 'bare');
  const ratio = (x: number | null | undefined, y: number | null | undefined) => (x && y ? (x / y).toFixed(2) : '–');
  const summary = results.map((r) => ({
    target: r.target,
    'outputs per core (loss<1%, CPU<90%)': r.capacity === null ? `< ${r.steps[0]?.n ?? '?'}` : `${r.bounded ? '' : '≥ '}${r.capacity}`,
    'projected @90% CPU': r.projected ?? '–',
    'µs/pkt': r.usPerPkt?.toFixed(2) ?? '–',
    'pkt/s per output': r.pktPerOutput?.toFixed(0) ?? '–',
    '× Janus (measured)': r.name === 'floor' ? '–' : ratio(r.capacity, janus?.capacity),
    '× Janus (projected)': r.name === 'floor' ? '–' : ratio(r.projected, janus?.projected),
    '× Janus on OpenSSL libsrtp (projected)': r.name === 'floor' ? '–' : ratio(r.projected, janusOpenssl?.projected),
    '× bare (projected)': r.name.startsWith('lessoncast') ? ratio(r.projected, bare?.projected) : '–',
    '× floor µs/pkt': ratio(r.usPerPkt, floor?.usPerPkt),
  }));
  console.log(
    `\nforwarding side by side: one lesson H264 ${source.width}x${source.height}@${source.fps} ${source.videoKbps} kbps + Opus; each output = audio + video over SRTP (${SUITE}; the floor: plain UDP)`,
  );
  console.log(table(summary));
  if (leversResult) {
    console.log(`\nlevers on bare mediasoup at N=${leversN} (µs of worker CPU per forwarded packet; × base < 1 is faster)`);
    console.log(table(leversResult.summary.map(leverRow)));
    if (leversResult.skipped.length) console.log(`skipped: ${leversResult.skipped.join(', ')}`);
  }
  const file = saveResult('sfu', {
    machine,
    janusVersion: janusVersion(),
    mediasoupVersion: mediasoupVersion(),
    workerBin: process.env['MEDIASOUP_WORKER_BIN'],
    workerBuilds: builds,
    suite: SUITE,
    source,
    step,
    ladder,
    results,
    summary,
    levers: leversResult && { n: leversN, ...leversResult },
    profiles,
    packetSplit: splits,
    loadAfter: machineInfo()['loadavg'],
    totalMinutes: Number(minutes()),
  });
  console.log(`\nsaved ${file} (total ${minutes()} min)`);
} finally {
  pinProcess(process.pid, allCpus());
}
process.exit(0);
