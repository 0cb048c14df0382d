/**
 * Our worker build's send batching (scripts/worker/patches/3.32.2/0001-udp-send-batch.patch,
 * setting media.udpSendBatch): the copies of one received packet that the worker sends through its
 * WebRtcServer's UDP socket go out with one sendmmsg() instead of one sendmsg() each.
 *
 * Against a real worker, with browser-like classrooms (kit/lightReceiver.ts, consuming with the
 * Chromium fixture's capabilities) on one WebRtcServer:
 * - switched on: every classroom gets every packet, in order; its transport-cc feedback still
 *   drives the bandwidth estimate (the "packet sent" notices the estimator needs run after the
 *   batch is written); strace sees the worker write with sendmmsg();
 * - switched off: the same binary never calls sendmmsg().
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import type { types } from 'mediasoup';
import { lightClassroom, type LightClassroom } from '../kit/lightReceiver.js';
import { SignalClient } from '../kit/signalClient.js';
import { chromiumCapabilities } from '../bench/fanout/chromiumCaps.js';
import { publishingLesson } from './support/lessoncast.js';

const CLASSROOMS = 6;
const START_BPS = 300_000;

/** System calls of `pid` (all its threads) counted by strace over `ms`. */
async function countSyscalls(pid: number, names: string[], ms: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'strace-'));
  const out = path.join(dir, 'counts');
  try {
    const strace = spawn('strace', ['-f', '-c', '-o', out, '-e', `trace=${names.join(',')}`, '-p', String(pid)], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve, reject) => {
      strace.once('error', reject);
      strace.once('exit', () => resolve());
    });
    await new Promise((r) => setTimeout(r, ms));
    strace.kill('SIGINT');
    await exited;
    // strace -c's table: "% time seconds usecs/call calls [errors] syscall"
    const counts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
    for (const line of readFileSync(out, 'utf8').split('\n')) {
      const cols = line.trim().split(/\s+/);
      const name = cols[cols.length - 1]!;
      if (name in counts && cols.length >= 5) counts[name] = Number(cols[3]);
    }
    return counts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function lessonWithClassrooms(t: { teardown(fn: () => unknown): void }, udpSendBatch: boolean) {
  const { s, cleanups, lessonId, media } = await publishingLesson(t, {
    // The weak-link policy is not what this is about; a low start shows the estimate climbing.
    media: { udpSendBatch, initialOutgoingBitrate: START_BPS, links: { enabled: false } },
  });
  const { rtpCapabilities } = chromiumCapabilities();
  const classrooms: LightClassroom[] = [];
  for (let i = 0; i < CLASSROOMS; i++) {
    const { client, joined } = await SignalClient.join(s, 'classroom', `school-${i}`, lessonId);
    cleanups.push(() => client.close());
    const c = await lightClassroom(client, joined!.producers, rtpCapabilities);
    cleanups.push(() => c.rx.close());
    await c.resume();
    classrooms.push(c);
  }
  const workerPid = s.internals.pool.slots[0]!.worker.pid;
  const estimate = async (peerId: string): Promise<number> => {
    const transport = media.transportsOf(peerId).find((x) => x.direction === 'recv')!.transport as types.WebRtcTransport;
    const [stats] = (await transport.getStats()) as Array<{ availableOutgoingBitrate?: number }>;
    return stats?.availableOutgoingBitrate ?? 0;
  };
  return { classrooms, workerPid, estimate };
}

t.test('switched on: one sendmmsg() per fan-out, every packet delivered in order, the estimator still fed', async (t) => {
  const { classrooms, workerPid, estimate } = await lessonWithClassrooms(t, true);
  await new Promise((r) => setTimeout(r, 1000));
  const calls = await countSyscalls(workerPid, ['sendmmsg', 'sendmsg'], 3000);
  t.comment(`worker system calls in 3 s: ${JSON.stringify(calls)}`);
  t.ok(calls['sendmmsg']! > 100, `the worker writes with sendmmsg() (${calls['sendmmsg']} calls in 3 s)`);
  t.ok(
    calls['sendmsg']! < calls['sendmmsg']!,
    `and sends one datagram at a time less often than it batches (${calls['sendmsg']} sendmsg: RTCP from timers, STUN answers)`,
  );

  let best = 0;
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 500));
    best = Math.max(best, await estimate('school-0'));
  }
  t.ok(best > 2 * START_BPS, `transport-cc feedback drives the estimate from ${START_BPS} to ${best} bps`);

  for (const [i, c] of classrooms.entries()) {
    const n = c.rx.counters();
    t.ok(n.expected > 500 && n.received === n.expected, `classroom ${i}: every packet (${n.received}/${n.expected})`);
    t.equal(n.reordered, 0, `classroom ${i}: in order`);
  }
  const packets = classrooms.map((c) => c.rx.counters().received);
  t.ok(Math.max(...packets) - Math.min(...packets) < 0.05 * Math.max(...packets), `each classroom got the same (${packets.join(', ')})`);
});

t.test('switched off: the same worker never calls sendmmsg()', async (t) => {
  const { classrooms, workerPid } = await lessonWithClassrooms(t, false);
  await new Promise((r) => setTimeout(r, 1000));
  const calls = await countSyscalls(workerPid, ['sendmmsg', 'sendmsg'], 3000);
  t.comment(`worker system calls in 3 s: ${JSON.stringify(calls)}`);
  t.equal(calls['sendmmsg'], 0, 'no sendmmsg()');
  t.ok(calls['sendmsg']! > 100 * CLASSROOMS, `one sendmsg() per datagram (${calls['sendmsg']} in 3 s)`);
  const n = classrooms[0]!.rx.counters();
  t.ok(n.expected > 0 && n.received === n.expected, `every packet (${n.received}/${n.expected})`);
});
