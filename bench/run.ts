/**
 * `npm run bench`: every benchmark in sequence on this machine (about 40
 * minutes on 2 cores, plus one-off worker builds: the forwarding levers' NSS
 * variant and the previous mediasoup release's worker).
 * Each prints its tables and writes JSON under bench/results/; this prints a
 * short summary, writes bench-<time>.json and the total time.
 *
 *   fan-out      classrooms per core, lessoncast vs bare mediasoup, minimal and browser-classroom outputs (bench/fanout.ts)
 *   join         WebSocket open -> first RTP, in waves (bench/join.ts); the join storm: 50, 100
 *                and 200 browser-profile classrooms at once, WebSocket open -> first key frame,
 *                with each join's stages (bench/joinStorm.ts)
 *   recording    recorded lessons per core (bench/recording.ts)
 *   forwarding   lessoncast, bare mediasoup and Janus side by side, the raw
 *                sendto floor, each lever's effect, profiles (bench/sfu/run.ts)
 *   versions     old against new: fan-out, a fixed load with a profile, join and
 *                recording on mediasoup 3.19.3 and on package.json's release,
 *                each in its own child process (bench/versions.ts)
 *   reach        page load → first frame per school network (bench/reach.ts)
 *   links        weak school links: narrow, lossy and very thin links, collateral
 *                damage (bench/links.ts, docs/links.md)
 *   archive      200,000 recordings indexed in SQLite and PostgreSQL: reindex time,
 *                search p50/p95 (bench/archive.ts, docs/recording.md)
 *   levers       a browser classroom's cost with each worker lever on and off, side by side at one N:
 *                sendmmsg() batching, classroom BWE; bare mediasoup and lessoncast (bench/levers.ts)
 *   cascade      1 origin + 2 edges: one pipe hop's latency and CPU, an edge's outputs per core
 *                against a single node's, recovery after an edge or origin kill, the recording
 *                across origin kills (bench/cascade.ts, docs/cluster.md)
 *
 *   npm run bench [-- --only fanout,levers,join,recording,forwarding,versions,reach,links,archive,cascade]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runFanoutBench, defaultFanoutOptions } from './fanout.js';
import { runJoinBench } from './join.js';
import { leverRows, runLeversBench } from './levers.js';
import { runJoinStormBench } from './joinStorm.js';
import { mediasoupVersion } from '../src/media/mediasoup.js';
import { machine, root, saveResult, table, waitForEarlierBenches } from './lib.js';
import { defaultRecordingOptions, runRecordingBench } from './recording.js';
import { defaultVersionsOptions, prepareVersions, runVersionsBench } from './versions.js';
import { runReachBench } from './reach.js';
import { printLinks, runLinksBench } from './links.js';
import { runArchiveBench } from './archive.js';
import { runCascadeBench } from './cascade.js';

const ALL = ['fanout', 'levers', 'join', 'recording', 'forwarding', 'versions', 'reach', 'links', 'archive', 'cascade'] as const;
const { values } = parseArgs({ options: { only: { type: 'string', default: ALL.join(',') } } });
const only = new Set(values.only.split(','));
for (const name of only)
  if (!(ALL as readonly string[]).includes(name)) throw new Error(`--only: unknown benchmark '${name}' (${ALL.join(', ')})`);

// Another benchmark pinning an SFU to the same core would spoil both runs' figures.
await waitForEarlierBenches(Number(process.env['BENCH_WAIT_MINUTES'] ?? 20));
const started = performance.now();
const minutes = (): string => ((performance.now() - started) / 60000).toFixed(1);
const m = machine();
console.log(
  `lessoncast benchmarks on ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, mediasoup ${mediasoupVersion()}, ${new Date().toISOString()}\n`,
);

// The old release's package and worker (built once, 6–10 min) before any measurement, so no build runs between them.
const versionSides = only.has('versions') ? await prepareVersions(defaultVersionsOptions) : undefined;
if (versionSides) console.log(`(old-vs-new prepared at ${minutes()} min)\n`);

let fanout: Awaited<ReturnType<typeof runFanoutBench>> | undefined;
if (only.has('fanout')) {
  console.log('== fan-out ==');
  fanout = await runFanoutBench(defaultFanoutOptions);
  console.log(`(fan-out done at ${minutes()} min)\n`);
}

let levers: Awaited<ReturnType<typeof runLeversBench>> | undefined;
if (only.has('levers')) {
  console.log('== levers (browser classrooms) ==');
  levers = await runLeversBench();
  console.log(`(levers done at ${minutes()} min)\n`);
}

let join: Awaited<ReturnType<typeof runJoinBench>> | undefined;
let joinStorm: Awaited<ReturnType<typeof runJoinStormBench>> | undefined;
if (only.has('join')) {
  console.log('== join ==');
  join = await runJoinBench({ joins: 200, waves: [1, 10, 50] });
  console.log('\n== join storm ==');
  joinStorm = await runJoinStormBench({ sizes: [50, 100, 200], spreadMs: 0, rounds: 1, arms: [{ label: 'current', env: {} }] });
  console.log(`(join done at ${minutes()} min)\n`);
}

let recording: Awaited<ReturnType<typeof runRecordingBench>> | undefined;
if (only.has('recording')) {
  console.log('== recording ==');
  recording = await runRecordingBench(defaultRecordingOptions);
  console.log(`(recording done at ${minutes()} min)\n`);
}

interface ForwardingResult {
  data: {
    summary: Array<Record<string, string | number>>;
    levers?: { n: number; summary: Array<{ variant: string; lever: string; usPerPkt: number | null; vsBase: number | null }> };
  };
}
let forwarding: { file: string; result: ForwardingResult } | undefined;
if (only.has('forwarding')) {
  console.log('== forwarding (side by side with Janus) ==');
  forwarding = await runForwardingBench();
  console.log(`(forwarding done at ${minutes()} min)\n`);
}

let versions: Awaited<ReturnType<typeof runVersionsBench>> | undefined;
if (only.has('versions')) {
  console.log(`== old vs new: mediasoup ${defaultVersionsOptions.old} against ${mediasoupVersion()} ==`);
  versions = await runVersionsBench(defaultVersionsOptions, versionSides);
  console.log(`(old vs new done at ${minutes()} min)\n`);
}

let reach: Awaited<ReturnType<typeof runReachBench>> | undefined;
if (only.has('reach')) {
  console.log('== reach (network namespaces) ==');
  reach = await runReachBench();
  console.log(`(reach done at ${minutes()} min)\n`);
}

let links: Awaited<ReturnType<typeof runLinksBench>> | undefined;
if (only.has('links')) {
  console.log('== links (network namespaces) ==');
  links = await runLinksBench();
  console.log(`(links done at ${minutes()} min)\n`);
}

let archive: Awaited<ReturnType<typeof runArchiveBench>> | undefined;
if (only.has('archive')) {
  console.log('== archive (200,000 recordings, SQLite and PostgreSQL) ==');
  archive = await runArchiveBench();
  console.log(`(archive done at ${minutes()} min)\n`);
}

let cascade: Awaited<ReturnType<typeof runCascadeBench>> | undefined;
if (only.has('cascade')) {
  console.log('== cascade (1 origin + 2 edges) ==');
  cascade = await runCascadeBench();
  console.log(`(cascade done at ${minutes()} min)\n`);
}

console.log('== summary ==');
if (fanout) console.log(`${table(fanout.summary)}\n`);
if (levers) console.log(`levers on browser classrooms (median of rounds):\n${table(leverRows(levers.summary))}\n`);
if (join) console.log(`${table(join.results)}\n`);
if (joinStorm)
  console.log(`join storm (${joinStorm.file}): WebSocket open → first RTP and → first key frame, ms\n${table(joinStorm.summary)}\n`);
if (recording) {
  console.log(
    `recording: one lesson alone costs ${(recording.solo.costCpu * 100).toFixed(1)} % of a core and ${recording.solo.recorded.ffmpegPssMb.toFixed(0)} MB (ffmpeg PSS); ` +
      (recording.perLesson !== null ? `at scale ${(recording.perLesson * 100).toFixed(2)} % per lesson; ` : '') +
      `one core records ${recording.lowerBound ? '≥ ' : ''}${recording.capacity ?? 'no'} lessons at once without falling behind` +
      (recording.projected !== null ? ` (projected ${recording.projected} at 90 % of the core)` : '') +
      '\n',
  );
  if (recording.deaths.length)
    console.log(
      `recording: a killed ffmpeg records again after ${Math.max(...recording.deaths.map((x) => x.restartMs))} ms at most and loses ` +
        `${Math.max(...recording.deaths.map((x) => x.lostSeconds)).toFixed(3)} s at most (${recording.deaths.length} deaths)\n`,
    );
}
if (forwarding) {
  console.log(`forwarding side by side (${forwarding.file}):`);
  console.log(table(forwarding.result.data.summary));
  const levers = forwarding.result.data.levers;
  if (levers) {
    console.log(`\nlevers on bare mediasoup at N=${levers.n}:`);
    console.log(
      table(
        levers.summary.map((l) => ({
          variant: l.variant,
          lever: l.lever,
          'µs/pkt': l.usPerPkt?.toFixed(2) ?? '–',
          '× base': l.vsBase?.toFixed(2) ?? '–',
        })),
      ),
    );
  }
  console.log();
}
if (versions) {
  console.log(`old vs new (${versions.file}): mediasoup ${versions.old.version} → ${versions.new.version}; ratio = new ÷ old`);
  console.log(`arrangement: ${versions.arrangement}`);
  console.log(table(versions.rows));
  if (versions.errors.length) console.log(`errors: ${versions.errors.join('; ')}`);
  console.log();
}
if (reach) {
  console.log(`reach (${reach.file}): navigation start → first frame, median of ${reach.rows[0]?.loads.length ?? 0} loads`);
  console.log(table(reach.rows.map((r) => ({ variant: r.variant, 'median ms': r.medianMs ?? 'failed', candidate: r.candidateType }))));
  console.log();
}
if (links) {
  console.log(`links (${links.file}):`);
  printLinks(links.result);
  console.log();
}
console.log(`total ${minutes()} min`);
saveResult('bench', {
  totalMinutes: Number(minutes()),
  fanout: fanout?.summary,
  levers: levers?.summary,
  join: join?.results,
  joinStorm: joinStorm && { file: joinStorm.file, summary: joinStorm.summary },
  recording: recording && {
    solo: recording.solo,
    deaths: recording.deaths,
    capacity: recording.capacity,
    lowerBound: recording.lowerBound,
    perLesson: recording.perLesson,
    projected: recording.projected,
  },
  forwarding: forwarding && {
    file: forwarding.file,
    summary: forwarding.result.data.summary,
    levers: forwarding.result.data.levers?.summary,
  },
  versions: versions && {
    file: versions.file,
    old: versions.old,
    new: versions.new,
    rows: versions.rows,
    errors: versions.errors,
    minutes: versions.minutes,
  },
  links: links && { file: links.file, result: links.result },
  archive: archive && { file: archive.file, engines: archive.engines, scanS: archive.scanS },
  cascade: cascade && { file: cascade.file },
  reach: reach && {
    file: reach.file,
    rows: reach.rows.map((r) => ({ variant: r.variant, medianMs: r.medianMs, candidateType: r.candidateType })),
  },
});
process.exit(0);

/**
 * bench/sfu/run.ts in its own process: it pins itself and the SFUs to CPUs
 * and reads each worker build at module load. Its output passes through; its
 * JSON is read back for the summary.
 */
function runForwardingBench(): Promise<{ file: string; result: ForwardingResult }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), `${root}/bench/sfu/run.ts`, '--no-wait'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let file: string | undefined;
  let tail = '';
  child.stdout.on('data', (d: Buffer) => {
    process.stdout.write(d);
    tail = (tail + d.toString()).slice(-4096);
    file ??= /^saved (\S+\.json)/m.exec(tail)?.[1];
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0 || !file) reject(new Error(`bench/sfu/run.ts exited with ${code}${file ? '' : ' without saving a result'}`));
      else resolve({ file, result: JSON.parse(readFileSync(file, 'utf8')) as ForwardingResult });
    });
  });
}
