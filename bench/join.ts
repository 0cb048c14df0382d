/**
 * Join benchmark: classrooms joining one live lesson through /ws — token,
 * authenticate, join, receive transport, DTLS, consume camera + mic — in waves
 * of 1, 10 and 50 at once. Reports p50/p95/p99 from opening the WebSocket to
 * the first RTP packet received (and to the first video packet), and failures.
 *
 * A wave starts once every join of the previous wave has its first RTP
 * packet; joins then finish (video, leave) in the background, as classrooms
 * that have joined keep receiving while others join. (Waiting for each join's
 * video as well would lock the joins to the test source's 1 s key-frame
 * cadence: every video time would read ~1 s and wave 1 alone would take 200 s.)
 *
 *   npx tsx bench/join.ts [--joins 200] [--waves 1,10,50]
 */
import { parseArgs } from 'node:util';
import { SignalClient } from '../kit/signalClient.js';
import { Watcher, publish } from '../kit/peers.js';
import { BENCH_NICE, createLesson, percentile, saveResult, setNice, startServer, table, type BenchServer } from './lib.js';

interface JoinSample {
  audioMs: number;
  videoMs: number;
}

/** One classroom joining; `firstRtp` settles at its first RTP packet (or failure), `result` once it has had video and left. */
function oneJoin(s: BenchServer, lessonId: string, schoolId: string): { firstRtp: Promise<void>; result: Promise<JoinSample> } {
  let markFirst!: () => void;
  const firstRtp = new Promise<void>((resolve) => (markFirst = resolve));
  const result = (async (): Promise<JoinSample> => {
    const t0 = performance.now();
    const client = await SignalClient.connect(s.wsUrl);
    try {
      await client.request('authenticate', { token: await s.token('classroom', schoolId, [lessonId]) });
      const joined = await client.request('join', { lessonId });
      const watcher = await Watcher.start(client, joined.producers);
      try {
        const audio = joined.producers.find((p) => p.kind === 'audio')!.producerId;
        const video = joined.producers.find((p) => p.kind === 'video')!.producerId;
        const a = watcher.firstPacket(audio, 20000);
        const v = watcher.firstPacket(video, 20000);
        void Promise.any([a, v]).then(markFirst, markFirst);
        const [am, vm] = await Promise.all([a, v]);
        // firstPacket() is relative to the receiver's creation; add the signalling time before it.
        const offset = watcher.rtc.createdAt - t0;
        return { audioMs: am + offset, videoMs: vm + offset };
      } finally {
        await watcher.close();
      }
    } finally {
      markFirst();
      await client.request('leave', {}).catch(() => undefined);
      client.close();
    }
  })();
  // A join stuck on a signalling answer that never comes (e.g. a socket the server closed before
  // the request went out) counts as a failure instead of holding its wave for ever.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`join of ${schoolId} still pending after ${JOIN_TIMEOUT_MS / 1000} s`)), JOIN_TIMEOUT_MS);
  });
  const bounded = Promise.race([result, timedOut]).finally(() => clearTimeout(timer));
  bounded.catch(() => markFirst());
  return { firstRtp, result: bounded };
}

/** Longer than any join seen (first video ≈ 1.5 s at 50 at once) by far: only a stuck join reaches it. */
const JOIN_TIMEOUT_MS = 60_000;

export async function runJoinBench(opts: { joins: number; waves: number[] }): Promise<{ results: Array<Record<string, string | number>> }> {
  setNice(process.pid, BENCH_NICE); // inherited by everything started from here (server, workers, ffmpeg)
  const s = await startServer({ LESSONCAST_MEDIA_WORKERS: '1' });
  const teacher = await SignalClient.connect(s.wsUrl);
  const results: Array<Record<string, string | number>> = [];
  try {
    const lessonId = await createLesson(s);
    await teacher.request('authenticate', { token: await s.token('instructor', 'teacher-1', [lessonId]) });
    const joined = await teacher.request('join', { lessonId });
    await teacher.request('goLive', {});
    // The same instructor stream as the fan-out bench: H264 1280x720 ~1.5 Mbps 30 fps + Opus.
    const sender = await publish(teacher, joined.routerRtpCapabilities, {
      audio: true,
      video: 'h264',
      videoBitrateKbps: 1500,
      videoSize: { width: 1280, height: 720, fps: 30 },
    });
    try {
      for (const wave of opts.waves) {
        const first: number[] = [];
        const video: number[] = [];
        let failures = 0;
        const started = performance.now();
        const running: Array<Promise<JoinSample>> = [];
        for (let done = 0; done < opts.joins; done += wave) {
          const n = Math.min(wave, opts.joins - done);
          const joins = Array.from({ length: n }, (_, i) => oneJoin(s, lessonId, `school-${wave}-${done + i}`));
          running.push(...joins.map((j) => j.result));
          await Promise.all(joins.map((j) => j.firstRtp));
        }
        for (const r of await Promise.allSettled(running)) {
          if (r.status === 'fulfilled') {
            first.push(Math.min(r.value.audioMs, r.value.videoMs));
            video.push(r.value.videoMs);
          } else failures++;
        }
        first.sort((a, b) => a - b);
        video.sort((a, b) => a - b);
        const f = (x: number) => x.toFixed(0);
        results.push({
          wave,
          joins: opts.joins,
          failures,
          'first RTP p50 ms': f(percentile(first, 50)),
          'first RTP p95 ms': f(percentile(first, 95)),
          'first RTP p99 ms': f(percentile(first, 99)),
          'video p50 ms': f(percentile(video, 50)),
          'video p95 ms': f(percentile(video, 95)),
          'video p99 ms': f(percentile(video, 99)),
          'wall s': ((performance.now() - started) / 1000).toFixed(1),
        });
        console.log(table(results.slice(-1)));
      }
    } finally {
      await sender.close();
    }
  } finally {
    teacher.close();
    await s.stop();
  }
  console.log(
    '\njoin: socket open → first RTP packet of the lesson (audio, in practice); video waits for a key frame, which the ffmpeg test source makes once a second (it cannot answer PLI)',
  );
  console.log(table(results));
  const file = saveResult('join', { opts, results });
  console.log(`saved ${file}`);
  return { results };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { joins: { type: 'string', default: '200' }, waves: { type: 'string', default: '1,10,50' } } });
  await runJoinBench({ joins: Number(values.joins), waves: values.waves.split(',').map(Number) });
  process.exit(0);
}
