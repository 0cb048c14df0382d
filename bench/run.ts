/**
 * `npm run bench`: fan-out, join and recording benchmarks in sequence on this
 * machine (about 12–14 minutes on 2 cores). Each prints its tables and writes
 * JSON under bench/results/; this prints a short summary and the total time.
 */
import { runFanoutBench, defaultFanoutOptions } from './fanout.js';
import { runJoinBench } from './join.js';
import { machine, saveResult, table, waitForEarlierBenches } from './lib.js';
import { defaultRecordingOptions, runRecordingBench } from './recording.js';

// Another benchmark pinning an SFU to the same core would spoil both runs' figures.
await waitForEarlierBenches(Number(process.env['LESSONCAST_BENCH_WAIT_MINUTES'] ?? 20));
const started = performance.now();
const minutes = (): string => ((performance.now() - started) / 60000).toFixed(1);
const m = machine();
console.log(`lessoncast benchmarks on ${m.cpuModel}, ${m.cores} cores, Node ${m.node}, ${new Date().toISOString()}\n`);

console.log('== fan-out ==');
const fanout = await runFanoutBench(defaultFanoutOptions);
console.log(`(fan-out done at ${minutes()} min)\n`);

console.log('== join ==');
const join = await runJoinBench({ joins: 200, waves: [1, 10, 50] });
console.log(`(join done at ${minutes()} min)\n`);

console.log('== recording ==');
const recording = await runRecordingBench(defaultRecordingOptions);
console.log(`(recording done at ${minutes()} min)\n`);

console.log('== summary ==');
console.log(table(fanout.summary));
console.log();
console.log(table(join.results));
console.log();
console.log(
  `recording: one lesson alone costs ${(recording.solo.costCpu * 100).toFixed(1)} % of a core and ${recording.solo.recorded.ffmpegPssMb.toFixed(0)} MB (ffmpeg PSS); ` +
    (recording.perLesson !== null ? `at scale ${(recording.perLesson * 100).toFixed(2)} % per lesson; ` : '') +
    `one core records ${recording.lowerBound ? '≥ ' : ''}${recording.capacity ?? 'no'} lessons at once without falling behind` +
    (recording.projected !== null ? ` (projected ${recording.projected} at 90 % of the core)` : ''),
);
console.log(`total ${minutes()} min`);
saveResult('bench', { totalMinutes: Number(minutes()), fanout: fanout.summary, join: join.results, recording: { solo: recording.solo, capacity: recording.capacity, lowerBound: recording.lowerBound, perLesson: recording.perLesson, projected: recording.projected } });
process.exit(0);
