/**
 * Join benchmark: classrooms joining one live lesson through /ws — token,
 * authenticate, join, receive transport, DTLS, consume camera + mic — in waves
 * of 1, 10 and 50 at once. Reports p50/p95/p99 from socket open to the first
 * RTP packet received (audio and video), and failures.
 *
 *   npx tsx bench/join.ts [--joins 200] [--waves 1,10,50]
 */
import { parseArgs } from 'node:util';
import { SignalClient } from '../test/support/lessoncast.js';
import { Watcher, publish } from '../test/support/peers.js';
import { createLesson, percentile, saveResult, startServer, table, type BenchServer } from './lib.js';

interface JoinSample {
  audioMs: number;
  videoMs: number;
}

async function oneJoin(s: BenchServer, lessonId: string, schoolId: string): Promise<JoinSample> {
  const t0 = performance.now();
  const client = await SignalClient.connect(s.wsUrl);
  try {
    await client.request('authenticate', { token: await s.token('classroom', schoolId, [lessonId]) });
    const joined = await client.request('join', { lessonId });
    const watcher = await Watcher.start(client, joined.producers);
    try {
      const audio = joined.producers.find((p) => p.kind === 'audio')!.producerId;
      const video = joined.producers.find((p) => p.kind === 'video')!.producerId;
      const [a, v] = await Promise.all([watcher.firstPacket(audio, 20000), watcher.firstPacket(video, 20000)]);
      // firstPacket() is relative to the receiver's creation; add the signalling time before it.
      const offset = watcher.rtc.createdAt - t0;
      return { audioMs: a + offset, videoMs: v + offset };
    } finally {
      await watcher.close();
    }
  } finally {
    await client.request('leave', {}).catch(() => undefined);
    client.close();
  }
}

export async function runJoinBench(opts: { joins: number; waves: number[] }): Promise<Record<string, unknown>> {
  const s = await startServer({ LESSONCAST_MEDIA_WORKERS: '1' });
  const teacher = await SignalClient.connect(s.wsUrl);
  const results: Array<Record<string, string | number>> = [];
  try {
    const lessonId = await createLesson(s);
    await teacher.request('authenticate', { token: await s.token('instructor', 'teacher-1', [lessonId]) });
    const joined = await teacher.request('join', { lessonId });
    await teacher.request('goLive', {});
    const sender = await publish(teacher, joined.routerRtpCapabilities, { audio: true, video: 'h264' });
    try {
      for (const wave of opts.waves) {
        const audio: number[] = [];
        const video: number[] = [];
        let failures = 0;
        const started = performance.now();
        for (let done = 0; done < opts.joins; done += wave) {
          const n = Math.min(wave, opts.joins - done);
          const samples = await Promise.allSettled(Array.from({ length: n }, (_, i) => oneJoin(s, lessonId, `school-${wave}-${done + i}`)));
          for (const r of samples) {
            if (r.status === 'fulfilled') {
              audio.push(r.value.audioMs);
              video.push(r.value.videoMs);
            } else failures++;
          }
        }
        audio.sort((a, b) => a - b);
        video.sort((a, b) => a - b);
        const f = (x: number) => x.toFixed(0);
        results.push({
          wave,
          joins: opts.joins,
          failures,
          'audio p50 ms': f(percentile(audio, 50)),
          'audio p95 ms': f(percentile(audio, 95)),
          'audio p99 ms': f(percentile(audio, 99)),
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
  console.log('\njoin: socket open → first RTP packet (video waits for a key frame; the test source sends one every second)');
  console.log(table(results));
  const file = saveResult('join', { opts, results });
  console.log(`saved ${file}`);
  return { results };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { joins: { type: 'string', default: '200' }, waves: { type: 'string', default: '1,10,50' } } });
  await runJoinBench({ joins: Number(values.joins), waves: values.waves!.split(',').map(Number) });
  process.exit(0);
}
