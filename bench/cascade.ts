/**
 * The cascade bench (issue 17 §7): one origin and two edges as three lessoncast processes
 * (dist/main.js) on loopback, with a shared Redis, PostgreSQL and recordings folder.
 *
 *   1. pipe hop     the same instructor video packet at a classroom on the origin and at one on an
 *                   edge, in this process: the arrival-time difference (paired by RTP timestamp + payload)
 *   2. pipe CPU     mediasoup worker CPU of the origin and of an edge, with and without the edge's
 *                   classroom (which makes the pipe), per piped producer pair (camera + mic)
 *   3. per core     the same ladder of mute light receivers (kit/lightReceiver.ts, Chromium's
 *                   captured capabilities) on an edge and on a fourth, non-cluster node
 *   4. recovery     SIGKILL an edge, then the origin, `rounds` times; each classroom behaves as the
 *                   pages do; ms from the kill to its first camera packet
 *   5. recording    the recovery lesson is recorded: the gap on the camera track between runs, and
 *                   every segment listed before each kill still listed with the same sha256
 *
 *   npx tsx bench/cascade.ts           (or npm run bench -- --only cascade; needs npm run build)
 *     [--lease 6 --ttl 6 --heartbeat 2] [--rounds 5] [--ladder 50,100,200 | --ladder '']
 *   CASCADE_LOG_DIR=<folder>           keeps each node's output there (the recorder's faults, for one)
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import type { types } from 'mediasoup';
import type { RtpPacket } from 'werift';
import { LessonPage } from '../kit/lessonPage.js';
import { LightReceiver } from '../kit/lightReceiver.js';
import type { TransportParams } from '../kit/rtcSdp.js';
import { SignalClient } from '../kit/signalClient.js';
import { TokenService } from '../src/auth/tokens.js';
import type { RecordingManifest } from '../src/recording/manifestSchema.js';
import { runningNode } from '../test/support/lessoncast.js';
import { startPostgres } from '../test/support/postgres.js';
import { startRedis } from '../test/support/redis.js';
import { chromiumCapabilities } from './fanout/chromiumCaps.js';
import { cpuSeconds, createLesson, descendants, inBatches, percentile, pinProcess, root, saveResult, sleep, table } from './lib.js';

export interface CascadeOptions {
  /** Matched video packets for the pipe hop. */
  latencyPackets: number;
  cpuWindowSeconds: number;
  /** Receivers per step, on the edge and on the single node. */
  ladder: number[];
  /** Edge kills and origin kills, each. */
  rounds: number;
  leaseSeconds: number;
  nodeTtlSeconds: number;
  heartbeatSeconds: number;
  videoKbps: number;
  /** The CPU the measured workers of part 3 are pinned to. */
  ladderCpu: string;
}

export const defaultCascadeOptions: CascadeOptions = {
  latencyPackets: 3000,
  cpuWindowSeconds: 20,
  ladder: [50, 100, 200],
  rounds: 5,
  leaseSeconds: 4,
  nodeTtlSeconds: 3,
  heartbeatSeconds: 1,
  videoKbps: 1000,
  ladderCpu: '1',
};

type Node = Awaited<ReturnType<typeof runningNode>>;
const KEY_PREFIX = 'cascade-bench:';
/** A page waits this long for its (re)join before it reconnects. */
const GIVE_UP_MS = 15_000;
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const alive = (n: Node): boolean => n.child.exitCode === null && n.child.signalCode === null;
const round1 = (x: number): number => Math.round(x * 10) / 10;
const round2 = (x: number): number => Math.round(x * 100) / 100;

function stats(xs: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p95: percentile(s, 95), p99: percentile(s, 99), max: s.at(-1) ?? NaN };
}

function workerPids(n: Node): number[] {
  return descendants(n.child.pid!)
    .filter((d) => d.comm.startsWith('mediasoup'))
    .map((d) => d.pid);
}

/** Cores used (CPU s per s) by each group of processes over `seconds`. */
async function cpuOver(groups: Record<string, number[]>, seconds: number): Promise<Record<string, number>> {
  const sum = (pids: number[]): number => pids.reduce((a, p) => a + cpuSeconds(p), 0);
  const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, sum(pids)]));
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const wall = (performance.now() - t0) / 1000;
  return Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, (sum(pids) - before[k]!) / wall]));
}

export async function runCascadeBench(opts: CascadeOptions = defaultCascadeOptions) {
  process.chdir(root); // runningProcess finds config/ from the working directory
  const redis = await startRedis();
  const pg = await startPostgres();
  const recordings = mkdtempSync(path.join(tmpdir(), 'lessoncast-cascade-rec-'));
  const tokenSecret = randomBytes(32).toString('hex');
  const tokens = new TokenService(new TextEncoder().encode(tokenSecret), 3600);
  const common = {
    LESSONCAST_AUTH_TOKEN_SECRET: tokenSecret,
    LESSONCAST_LOG_LEVEL: 'warn',
    // Every bench client comes from 127.0.0.1.
    LESSONCAST_HTTP_MAX_UNAUTHENTICATED_PER_ADDRESS: '100000',
    LESSONCAST_LESSONS_RECONNECT_GRACE_SECONDS: '60',
  };
  const env = {
    ...common,
    LESSONCAST_REDIS_URL: redis.url,
    LESSONCAST_REDIS_KEY_PREFIX: KEY_PREFIX,
    LESSONCAST_REDIS_HEARTBEAT_SECONDS: String(opts.heartbeatSeconds),
    LESSONCAST_REDIS_NODE_TTL_SECONDS: String(opts.nodeTtlSeconds),
    LESSONCAST_CATALOG_URL: await pg.database(),
    LESSONCAST_CLUSTER_ENABLED: 'true',
    LESSONCAST_CLUSTER_SECRET: randomBytes(32).toString('hex'),
    LESSONCAST_CLUSTER_LEASE_SECONDS: String(opts.leaseSeconds),
    LESSONCAST_RECORDING_DIR: recordings,
  };
  const nodes: Node[] = [];
  let nextNode = 1;
  const startNode = async (): Promise<Node> => {
    const n = await runningNode(`node-${nextNode++}`, env, tokens);
    nodes.push(n);
    return n;
  };
  const closers: Array<() => unknown> = [];
  const onClient = (c: SignalClient): void => void closers.push(() => c.close());
  const errors: string[] = [];
  const result: Record<string, unknown> = {
    options: opts,
    settings: {
      leaseSeconds: opts.leaseSeconds,
      nodeTtlSeconds: opts.nodeTtlSeconds,
      heartbeatSeconds: opts.heartbeatSeconds,
      defaults: { leaseSeconds: 10, nodeTtlSeconds: 10, heartbeatSeconds: 2 },
    },
    loadBefore: load(),
    errors,
  };
  const part = async (name: string, fn: () => Promise<unknown>): Promise<void> => {
    console.log(`-- ${name} (load ${load()})`);
    try {
      result[name] = await fn();
    } catch (err) {
      errors.push(`${name}: ${(err as Error).stack ?? String(err)}`);
      console.log(`${name} failed: ${(err as Error).message}`);
    }
  };
  let solo: Node | undefined;
  try {
    for (let i = 0; i < 3; i++) await startNode();
    const [origin, edge] = nodes as [Node, Node, Node];
    const lessonOf = (n: Node, record: boolean): Promise<string> =>
      createLesson({ url: n.url, token: (role, id) => n.issuer.token(role, id) }, 'teacher-1', record);

    // -- 1 and 2: one lesson, the instructor on the origin; a classroom there, then one on an edge.
    const hopLesson = await lessonOf(origin, false);
    const publishOpts = { publish: { audio: true, video: 'h264' as const, videoBitrateKbps: opts.videoKbps }, onClient };
    const teacher = new LessonPage<Node>('instructor', 'teacher-1', hopLesson, publishOpts);
    await teacher.join(origin);
    await teacher.client.request('goLive', {});
    closers.push(() => teacher.close());
    const camera = (): string => teacher.sender?.producerId('video') ?? '';
    const atOrigin = new LessonPage<Node>('classroom', 'probe-origin', hopLesson, { onClient });
    const atEdge = new LessonPage<Node>('classroom', 'probe-edge', hopLesson, { onClient });
    closers.push(
      () => atOrigin.close(),
      () => atEdge.close(),
    );
    const packetsAt = (p: LessonPage<Node>): number => Object.values(p.watcher!.rtc.allStats()).reduce((a, x) => a + x.packets, 0);
    const pct = (s: Record<string, number>) => ({ 'origin %': round2(s.origin! * 100), 'edge %': round2(s.edge! * 100) });
    let pipeStates:
      | {
          groups: Record<string, number[]>;
          s0: Record<string, number>;
          s1: Record<string, number>;
          s2: Record<string, number>;
          rate: number;
          classroom: number;
        }
      | undefined;

    await part('pipe', async () => {
      await sleep(3000);
      const groups = { origin: workerPids(origin), edge: workerPids(edge) };
      const s0 = await cpuOver(groups, opts.cpuWindowSeconds);
      await atOrigin.join(origin);
      await atOrigin.cameraAfter(Date.now(), camera);
      let before = packetsAt(atOrigin);
      let t0 = performance.now();
      const s1 = await cpuOver(groups, opts.cpuWindowSeconds);
      const rate1 = (packetsAt(atOrigin) - before) / ((performance.now() - t0) / 1000);
      await atEdge.join(edge);
      await atEdge.cameraAfter(Date.now(), camera);
      await sleep(2000);
      before = packetsAt(atOrigin);
      t0 = performance.now();
      const s2 = await cpuOver(groups, opts.cpuWindowSeconds);
      const rate = (packetsAt(atOrigin) - before) / ((performance.now() - t0) / 1000);
      // One classroom's consumers cost at the origin: what the edge pays for its classroom besides the pipe.
      const classroom = s1.origin! - s0.origin!;
      pipeStates = { groups, s0, s1, s2, rate, classroom };
      const rows = [
        { state: 'instructor only', ...pct(s0) },
        { state: '+ classroom on origin', ...pct(s1) },
        { state: '+ classroom on edge (pipe)', ...pct(s2) },
      ];
      console.log(table(rows));
      return { load: load(), packetsPerSecond: round1(rate), packetsPerSecondOneClassroom: round1(rate1), rows };
    });

    await part('hop', async () => {
      if (!atEdge.watcher) {
        await atOrigin.join(origin);
        await atEdge.join(edge);
      }
      const cam = camera();
      // Two ways to pair packets: RTP timestamp + payload (if mediasoup keeps timestamps through the
      // pipe and the consumers), or payload alone, first arrival only (the test pattern repeats payloads).
      const keys = {
        timestamp: (pk: RtpPacket) => `${pk.header.timestamp}:${pk.payload.length}:${crc32(pk.payload)}`,
        payload: (pk: RtpPacket) => `${pk.payload.length}:${crc32(pk.payload)}`,
      };
      const pairing = Object.fromEntries(
        Object.keys(keys).map((k) => [k, { arrivals: [new Map<string, number>(), new Map<string, number>()], diffs: [] as number[] }]),
      );
      const observe = (p: LessonPage<Node>, side: 0 | 1): void => {
        const consumerId = p.watcher!.consumerOf.get(cam);
        p.watcher!.rtc.onPacket = (id, packet, at) => {
          if (id !== consumerId) return;
          for (const [name, keyOf] of Object.entries(keys)) {
            const { arrivals, diffs } = pairing[name]!;
            const key = keyOf(packet);
            const mine = arrivals[side]!;
            if (mine.has(key)) continue; // a retransmission, or a repeated payload
            mine.set(key, at);
            const other = arrivals[1 - side]!.get(key);
            if (other !== undefined) diffs.push(side === 1 ? at - other : other - at);
          }
        };
      };
      observe(atOrigin, 0);
      observe(atEdge, 1);
      const deadline = Date.now() + 120_000;
      const best = (): string => (pairing['timestamp']!.diffs.length >= pairing['payload']!.diffs.length ? 'timestamp' : 'payload');
      while (pairing[best()]!.diffs.length < opts.latencyPackets && Date.now() < deadline) await sleep(500);
      atOrigin.watcher!.rtc.onPacket = undefined;
      atEdge.watcher!.rtc.onPacket = undefined;
      const key = best();
      const { arrivals, diffs } = pairing[key]!;
      const s = stats(diffs);
      const out = {
        load: load(),
        matched: s.n,
        pairedBy: key,
        pairedByOther: pairing[key === 'timestamp' ? 'payload' : 'timestamp']!.diffs.length,
        seenAtOrigin: arrivals[0]!.size,
        seenAtEdge: arrivals[1]!.size,
        p50Ms: round2(s.p50),
        p95Ms: round2(s.p95),
        p99Ms: round2(s.p99),
        maxMs: round2(s.max),
      };
      console.log(
        `one pipe hop (edge − origin arrival, ${s.n} video packets): p50 ${out.p50Ms} ms, p95 ${out.p95Ms} ms, p99 ${out.p99Ms} ms`,
      );
      return out;
    });

    // The edge's classroom leaves; the pipe stays while the lesson is there: its cost alone, on both sides.
    await part('pipeCost', async () => {
      if (!pipeStates) throw new Error('no states measured');
      const { groups, s0, s1, s2, classroom } = pipeStates;
      await atEdge.close();
      await sleep(3000);
      const before = packetsAt(atOrigin);
      const t0 = performance.now();
      const s3 = await cpuOver(groups, opts.cpuWindowSeconds);
      const rate = (packetsAt(atOrigin) - before) / ((performance.now() - t0) / 1000);
      const us = (cores: number): number => round2((cores / rate) * 1e6);
      const originPipe = s3.origin! - s1.origin!;
      const edgePipe = s3.edge! - s1.edge!;
      // Cross-check from the state with the edge's classroom: less one classroom's consumers (measured at the origin).
      const edgePipeFromS2 = s2.edge! - s1.edge! - classroom;
      const out = {
        load: load(),
        packetsPerSecond: round1(rate),
        s3,
        originPipePct: round2(originPipe * 100),
        originUsPerPacket: us(originPipe),
        edgePipePct: round2(edgePipe * 100),
        edgeUsPerPacket: us(edgePipe),
        originPipeFromS2Pct: round2((s2.origin! - s1.origin!) * 100),
        edgePipeFromS2Pct: round2(edgePipeFromS2 * 100),
        classroomPct: round2(classroom * 100),
        idleEdgePct: round2(s0.edge! * 100),
      };
      console.log(table([{ state: 'edge classroom gone, pipe kept', ...pct(s3) }]));
      console.log(
        `pipe of camera + mic (${out.packetsPerSecond} pkt/s): origin ${out.originPipePct} % of a core (${out.originUsPerPacket} µs/pkt), ` +
          `edge ${out.edgePipePct} % (${out.edgeUsPerPacket} µs/pkt); from the state with the edge's classroom: origin ` +
          `${out.originPipeFromS2Pct} %, edge ${out.edgePipeFromS2Pct} % (one classroom ${out.classroomPct} %)`,
      );
      return out;
    });

    // -- 3: the same ladder on the edge (the lesson above) and on a single node with no cluster.
    await part('perCore', async () => {
      solo = await runningNode('solo', common, tokens);
      const soloLesson = await lessonOf(solo, false);
      const soloTeacher = new LessonPage<Node>('instructor', 'teacher-1', soloLesson, publishOpts);
      await soloTeacher.join(solo);
      await soloTeacher.client.request('goLive', {});
      const soloProbe = new LessonPage<Node>('classroom', 'probe-solo', soloLesson, { onClient });
      closers.push(
        () => soloTeacher.close(),
        () => soloProbe.close(),
      );
      await soloProbe.join(solo);
      await soloProbe.cameraAfter(Date.now(), () => soloTeacher.sender?.producerId('video') ?? '');
      const caps = chromiumCapabilities().rtpCapabilities;
      const rows: Array<Record<string, string | number>> = [];
      const sides = [
        { side: 'edge', node: edge, lessonId: hopLesson },
        { side: 'single node', node: solo, lessonId: soloLesson },
      ];
      const steps: Array<{ side: string; outputs: number; cores: number; load: string }> = [];
      for (const { side, node, lessonId } of sides) {
        const workers = workerPids(node);
        for (const pid of workers) pinProcess(pid, opts.ladderCpu);
        const open: Array<() => void> = [];
        const base = (await cpuOver({ w: workers }, opts.cpuWindowSeconds)).w!;
        steps.push({ side, outputs: 0, cores: base, load: load() });
        for (const n of opts.ladder) {
          const fresh = Array.from({ length: n - open.length }, (_, k) => open.length + k);
          await inBatches(fresh, 8, async (i) => {
            open.push(await openOutput(node, lessonId, `out-${side.replace(' ', '-')}-${i}`, caps));
          });
          await sleep(3000);
          const cores = (await cpuOver({ w: workers }, opts.cpuWindowSeconds)).w!;
          steps.push({ side, outputs: n, cores, load: load() });
          const perOutput = (cores - base) / n;
          rows.push({
            side,
            outputs: n,
            'worker %': round2(cores * 100),
            'idle %': round2(base * 100),
            'µs/s per output': round1((cores / n) * 1e6),
            'outputs per core': Math.round(n / cores),
            'marginal per core': Math.round(1 / perOutput),
            load: load(),
          });
        }
        for (const close of open) close();
        for (const pid of workers) pinProcess(pid, '0-1');
      }
      console.log(table(rows));
      const ratios = opts.ladder.map((n) => {
        const e = rows.find((r) => r.side === 'edge' && r.outputs === n);
        const s = rows.find((r) => r.side === 'single node' && r.outputs === n);
        return {
          outputs: n,
          ratio: e && s ? round2(Number(e['outputs per core']) / Number(s['outputs per core'])) : NaN,
          marginalRatio: e && s ? round2(Number(e['marginal per core']) / Number(s['marginal per core'])) : NaN,
        };
      });
      console.log(
        `edge ÷ single node, outputs per core: ${ratios.map((r) => `${r.outputs}: ${r.ratio} (marginal ${r.marginalRatio})`).join(', ')}`,
      );
      await soloProbe.close();
      await soloTeacher.close();
      return { receivers: 'mute light receivers, Chromium captured capabilities', pinnedTo: opts.ladderCpu, rows, steps, ratios };
    });
    if (solo) {
      solo.child.kill('SIGTERM');
      await solo.exited;
      solo.cleanup();
    }
    await atEdge.close();
    await atOrigin.close();
    await teacher.close();

    await part('recovery', () => recoveryRounds({ opts, nodes, startNode, redis, recordings, lessonOf, onClient, closers }));
  } catch (err) {
    errors.push((err as Error).stack ?? String(err));
    console.log(`cascade bench failed: ${(err as Error).message}`);
  } finally {
    for (const c of closers.reverse()) await Promise.resolve(c()).catch(() => undefined);
    for (const n of [...nodes, ...(solo ? [solo] : [])]) {
      if (alive(n)) {
        n.child.kill('SIGTERM');
        await n.exited;
      }
      // CASCADE_LOG_DIR=<folder>: each node's output (warnings and errors) kept for reading afterwards.
      const logDir = process.env['CASCADE_LOG_DIR'];
      if (logDir) writeFileSync(path.join(logDir, `${n.id}.log`), n.output());
      n.cleanup();
    }
    await redis.stop();
    await pg.close();
    rmSync(recordings, { recursive: true, force: true });
  }
  result['loadAfter'] = load();
  const file = saveResult('cascade', result);
  console.log(`saved ${file}`);
  return { file, result };
}

/** A classroom's output as a browser makes it (join, recv transport, consume each producer), on a mute light receiver. */
async function openOutput(node: Node, lessonId: string, id: string, caps: types.RtpCapabilities): Promise<() => void> {
  const client = await SignalClient.connect(node.issuer.wsUrl);
  try {
    await client.request('authenticate', { token: await node.issuer.token('classroom', id, [lessonId]) });
    const joined = await client.request('join', { lessonId });
    const t = await client.request('createTransport', { direction: 'recv' });
    const consumers = [];
    for (const p of joined.producers)
      consumers.push(
        await client.request('consume', { transportId: t.transportId, producerId: p.producerId, rtpCapabilities: structuredClone(caps) }),
      );
    const rx = await LightReceiver.connect({
      transport: t as unknown as TransportParams,
      connect: async (dtlsParameters) => {
        await client.request('connectTransport', { transportId: t.transportId, dtlsParameters });
      },
      consumers: consumers.map((c) => ({ kind: c.kind, rtpParameters: c.rtpParameters as unknown as types.RtpParameters })),
      mute: true,
      connectTimeoutMs: 20_000,
    });
    for (const c of consumers) await client.request('resumeConsumer', { consumerId: c.consumerId });
    return () => {
      rx.close();
      client.close();
    };
  } catch (err) {
    client.close();
    throw err;
  }
}

interface RecoveryContext {
  opts: CascadeOptions;
  nodes: Node[];
  startNode: () => Promise<Node>;
  redis: Awaited<ReturnType<typeof startRedis>>;
  recordings: string;
  lessonOf: (n: Node, record: boolean) => Promise<string>;
  onClient: (c: SignalClient) => void;
  closers: Array<() => unknown>;
}

/** Part 4 and 5: a recorded lesson, two classrooms per node; an edge killed, then the origin, `rounds` times. */
async function recoveryRounds(ctx: RecoveryContext) {
  const { opts, nodes, startNode, redis, recordings, onClient } = ctx;
  const live = (): Node[] => nodes.filter(alive);
  const lessonId = await ctx.lessonOf(live()[0]!, true);
  const holder = async (): Promise<Node | undefined> => {
    const v = (await redis.cli('GET', `${KEY_PREFIX}origin:${lessonId}`)).trim();
    return v ? nodes.find((n) => n.id === v.slice(v.indexOf(':') + 1)) : undefined;
  };
  const teacher = new LessonPage<Node>('instructor', 'teacher-1', lessonId, {
    publish: { audio: true, video: 'h264', videoBitrateKbps: opts.videoKbps },
    onClient,
  });
  const schools = Array.from({ length: 6 }, (_, i) => new LessonPage<Node>('classroom', `school-${i + 1}`, lessonId, { onClient }));
  ctx.closers.push(() => teacher.close(), ...schools.map((s) => () => s.close()));
  const camera = (): string => teacher.sender?.producerId('video') ?? '';
  await teacher.join(live()[0]!);
  await teacher.client.request('goLive', {});
  for (const [i, s] of schools.entries()) await s.join(live()[i % 3]!);
  await Promise.all(schools.map((s) => s.cameraAfter(Date.now(), camera)));
  const manifestFile = path.join(recordings, lessonId, 'manifest.json');
  const manifest = (): RecordingManifest | undefined =>
    existsSync(manifestFile) ? (JSON.parse(readFileSync(manifestFile, 'utf8')) as RecordingManifest) : undefined;
  const cameraSegments = (m: RecordingManifest | undefined) => m?.tracks.find((t) => t.id === 'camera')?.segments ?? [];
  const forget = (): void => {
    for (const p of [teacher, ...schools]) p.client.notifications.length = 0;
  };
  /** The dead node's place taken by a new one; a classroom moved there from the busiest node. */
  const replace = async (): Promise<void> => {
    const fresh = await startNode();
    const busiest = live()
      .map((n) => ({ n, on: schools.filter((s) => s.node === n) }))
      .sort((a, b) => b.on.length - a.on.length)[0]!;
    const moved = busiest.on[0]!;
    moved.client.close();
    await moved.join(fresh);
    await moved.cameraAfter(Date.now(), camera);
  };
  const edgeKills: Array<{ ms: number[]; rejoined: boolean[]; bystandersInterrupted: number; studioThere: boolean; load: string }> = [];
  const originKills: Array<{
    at: string;
    ms: number[];
    newOrigin: string;
    stuck: Array<{ who: string; step: string; afterMs: number }>;
    load: string;
  }> = [];
  const snapshots: Array<Array<{ uri: string; sha256: string }>> = [];
  await sleep(6000); // a few segments before the first kill

  for (let round = 1; round <= opts.rounds; round++) {
    // An edge with classrooms on it, preferably not the one the studio reconnected through.
    const originNode = await holder();
    const edges = live().filter((n) => n !== originNode && schools.some((s) => s.node === n));
    const edge = edges.find((n) => n !== teacher.node) ?? edges[0];
    if (edge) {
      forget();
      const victims = schools.filter((s) => s.node === edge);
      const bystanders = schools.filter((s) => s.node !== edge);
      const before = bystanders.map((b) => b.watcher!.packets(camera()));
      const killedAt = Date.now();
      edge.child.kill('SIGKILL');
      await edge.exited;
      const others = live();
      // The pages reconnect at once, to any node: here the surviving nodes in turn (the studio too, if it was there).
      const studioThere = teacher.node === edge;
      const studio = studioThere ? teacher.join(others[0]!) : Promise.resolve();
      const back = await Promise.all(
        victims.map(async (v, i) => {
          const { rejoined } = await v.join(others[i % others.length]!);
          return { ms: await v.cameraAfter(killedAt, camera), rejoined };
        }),
      );
      await studio;
      const interrupted = bystanders.filter((b, i) => b.watcher!.packets(camera()) <= before[i]!).length;
      edgeKills.push({
        ms: back.map((b) => b.ms),
        rejoined: back.map((b) => b.rejoined),
        bystandersInterrupted: interrupted,
        studioThere,
        load: load(),
      });
      console.log(`round ${round}: edge ${edge.id} killed; its classrooms back after ${back.map((b) => b.ms).join(', ')} ms`);
      await replace();
    }
    await sleep(2000);

    const origin = await holder();
    if (!origin) throw new Error('no origin holds the lesson');
    snapshots.push(cameraSegments(manifest()).map((s) => ({ uri: s.uri, sha256: s.sha256 })));
    forget();
    const stuck: Array<{ who: string; step: string; afterMs: number }> = [];
    const killedAt = Date.now();
    origin.child.kill('SIGKILL');
    await origin.exited;
    const survivors = live();
    // Its own clients reconnect to a survivor; the edges' are asked to join again; the studio reconnects at once.
    const firstTry = async (p: LessonPage<Node>, i: number): Promise<void> => {
      if (p.node === origin) await p.join(survivors[i % survivors.length]!);
      else {
        p.step = `waiting for reconnectRequested at ${p.node.id}`;
        await p.client.waitFor('reconnectRequested', () => true, 30_000);
        await p.rejoinHere();
      }
    };
    // A page whose join gets no answer gives up on the socket and connects again (to another node).
    const rejoin = async (p: LessonPage<Node>, i: number): Promise<void> => {
      for (let attempt = 0; ; attempt++) {
        const done = firstTry(p, i + attempt);
        done.catch(() => undefined);
        const ok = await Promise.race([done.then(() => true), sleep(GIVE_UP_MS).then(() => false)]);
        if (ok) return;
        stuck.push({ who: p.id, step: p.step, afterMs: Date.now() - killedAt });
        console.log(`${p.id}: no answer ${GIVE_UP_MS} ms into "${p.step}"; reconnecting`);
        if (attempt >= 2) throw new Error(`${p.id}: stuck in "${p.step}"`);
        p.client.close();
        await p.dropMedia();
        p.node = origin; // what firstTry reads as "its socket is gone"
      }
    };
    const studio = rejoin(teacher, 0);
    studio.catch(() => undefined); // awaited below, after the classrooms
    const ms = await Promise.all(
      schools.map(async (s, i) => {
        await rejoin(s, i);
        return s.cameraAfter(killedAt, camera);
      }),
    );
    await studio;
    const newOrigin = (await holder())?.id ?? 'none';
    originKills.push({ at: new Date(killedAt).toISOString(), ms, newOrigin, stuck, load: load() });
    console.log(`round ${round}: origin ${origin.id} killed; the lesson back on ${newOrigin}; classrooms after ${ms.join(', ')} ms`);
    await replace();
    await sleep(8000); // segments of the new run before the next kill
  }

  // -- 5: the recording across the origin kills.
  await teacher.client.request('endLesson', {});
  const deadline = Date.now() + 30_000;
  while (manifest()?.state !== 'complete' && Date.now() < deadline) await sleep(500);
  const final = manifest();
  const finalSegments = new Map(cameraSegments(final).map((s) => [s.uri, s.sha256]));
  const lostOrChanged = snapshots.flatMap((snap) => snap.filter((s) => finalSegments.get(s.uri) !== s.sha256).map((s) => s.uri));
  const segs = [...cameraSegments(final)].sort((a, b) => a.startSeconds - b.startSeconds);
  const gaps: Array<{ fromRun: number; toRun: number; timelineSeconds: number; wallSeconds: number }> = [];
  for (let i = 1; i < segs.length; i++) {
    const a = segs[i - 1]!;
    const b = segs[i]!;
    if (a.run === b.run) continue;
    gaps.push({
      fromRun: a.run,
      toRun: b.run,
      timelineSeconds: round2(b.startSeconds - (a.startSeconds + a.duration)),
      wallSeconds: round2((Date.parse(b.programDateTime) - Date.parse(a.programDateTime)) / 1000 - a.duration),
    });
  }
  // Per origin kill: the camera's last segment that began before it and the first after it.
  const perKill = originKills.map((k) => {
    const at = Date.parse(k.at);
    const before = segs.filter((x) => Date.parse(x.programDateTime) < at).at(-1);
    const after = segs.find((x) => Date.parse(x.programDateTime) >= at);
    return {
      at: k.at,
      lostSeconds: before && after ? round2(after.startSeconds - (before.startSeconds + before.duration)) : null,
      runs: before && after ? `${before.run}→${after.run}` : null,
    };
  });
  const runs = (final?.tracks.find((t) => t.id === 'camera')?.runs ?? []).map((r) => ({
    index: r.index,
    startedAt: r.startedAt,
    endedAt: r.endedAt,
    endReason: r.endReason,
    producerId: r.producerId,
  }));
  // Runs not ended by a kill or the lesson's end: ffmpeg stopped under a live origin (see docs/cluster.md, Cascade bench).
  const restarts = gaps.filter((g) => runs.find((r) => r.index === g.fromRun)?.endReason?.startsWith('ffmpeg exited'));
  const anyNode = live()[0]!;
  const verifyRes = await fetch(`${anyNode.url}/api/recordings/${lessonId}/verify`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await anyNode.issuer.token('admin', 'bench')}` },
  });
  const verify = (await verifyRes.json()) as { ok?: boolean; mismatches?: unknown[] };
  const edgeMs = stats(edgeKills.flatMap((k) => k.ms));
  const originMs = stats(originKills.flatMap((k) => k.ms));
  const originWorst = stats(originKills.map((k) => Math.max(...k.ms)));
  console.log(
    table([
      {
        event: 'edge killed',
        kills: edgeKills.length,
        classrooms: edgeMs.n,
        'p50 ms': edgeMs.p50,
        'p95 ms': edgeMs.p95,
        'max ms': edgeMs.max,
      },
      {
        event: 'origin killed',
        kills: originKills.length,
        classrooms: originMs.n,
        'p50 ms': originMs.p50,
        'p95 ms': originMs.p95,
        'max ms': originMs.max,
      },
    ]),
  );
  console.log(
    `recording: ${final?.state ?? 'no manifest'}, ${segs.length} camera segments in ${new Set(segs.map((s) => s.run)).size} runs; ` +
      `gaps between runs ${gaps.map((g) => `${g.fromRun}→${g.toRun}: ${g.timelineSeconds} s`).join(', ')}; ` +
      `across each origin kill ${perKill.map((k) => `${k.lostSeconds} s (${k.runs})`).join(', ')}; ` +
      `ffmpeg restarts under a live origin ${restarts.length} (${restarts.map((g) => `${g.timelineSeconds} s`).join(', ')}); ` +
      `segments listed before a kill and lost or changed since: ${lostOrChanged.length}; verify ${verifyRes.status} ok=${verify.ok}`,
  );
  return {
    lessonId,
    edge: { ...edgeMs, kills: edgeKills },
    origin: { ...originMs, worstPerKill: originWorst, kills: originKills },
    recording: {
      state: final?.state,
      recovered: final?.recovered,
      segments: segs.length,
      runCount: new Set(segs.map((s) => s.run)).size,
      gaps,
      perKill,
      ffmpegRestarts: restarts,
      runs,
      segmentsBeforeKills: snapshots.map((s) => s.length),
      lostOrChanged,
      verify: { status: verifyRes.status, ok: verify.ok, mismatches: verify.mismatches?.length ?? null },
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // The cluster's timing can be the production defaults (--lease 6 --ttl 6 --heartbeat 2) instead of the short test ones.
  const { values } = parseArgs({
    options: {
      lease: { type: 'string' },
      ttl: { type: 'string' },
      heartbeat: { type: 'string' },
      rounds: { type: 'string' },
      ladder: { type: 'string' },
    },
  });
  const num = (v: string | undefined, fallback: number): number => (v === undefined ? fallback : Number(v));
  await runCascadeBench({
    ...defaultCascadeOptions,
    leaseSeconds: num(values.lease, defaultCascadeOptions.leaseSeconds),
    nodeTtlSeconds: num(values.ttl, defaultCascadeOptions.nodeTtlSeconds),
    heartbeatSeconds: num(values.heartbeat, defaultCascadeOptions.heartbeatSeconds),
    rounds: num(values.rounds, defaultCascadeOptions.rounds),
    ladder: values.ladder === undefined ? defaultCascadeOptions.ladder : values.ladder.split(',').filter(Boolean).map(Number),
  });
  process.exit(0);
}
