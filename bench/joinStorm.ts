/**
 * The join storm (issue 18 §4): a school morning, when N classrooms join one live lesson at the
 * first bell. For each storm size (50, 100, 200 by default) all N joins start at once (or spread
 * uniformly over --spread-ms), and each join's stages are timed from just before its WebSocket is
 * opened:
 *
 *   ws open → authenticated → join answered → transport created → consume answered (audio and
 *   video, at once, paused, with Chromium's capabilities) → connectTransport answered → ICE (STUN)
 *   answered → DTLS connected → resumeConsumer answered (both) → first media RTP packet → first
 *   key frame complete
 *
 * "First decodable frame" is the arrival of the last packet of the first complete video key frame
 * (kit/keyFrame.ts: from the packet that starts it to the marker bit, no sequence gap; its
 * decoding is not counted). The receivers are kit/lightReceiver.ts: ICE + consent, DTLS-SRTP,
 * transport-cc feedback and receiver reports, as the fan-out bench's browser classroom, and NACK
 * with repair over RTX while they wait for that key frame; they keep receiving until the whole
 * storm is over, as joined classrooms do.
 *
 * The publisher is the real instructor studio page in Debian's Chromium (fake camera, 360p
 * simulcast, and microphone): it answers PLI with a key frame as a browser does, so the wait for a
 * key frame is the SFU's and the encoder's, not a test source's fixed cadence.
 *
 * CPUs: the server (Node and its mediasoup worker) on CPU 0, this process (the receivers, the
 * signalling clients) and Chromium on CPU 1.
 *
 * Arms: the same storms against differently configured servers, interleaved size by size, e.g.
 * `--arms 'after;before@/tmp/lessoncast-before;delay250:LESSONCAST_MEDIA_LINKS_KEY_FRAME_REQUEST_DELAY_MS=250'`
 * (label[@checkout whose src/main.ts runs][:ENV=value,...]).
 *
 *   npx tsx bench/joinStorm.ts [--sizes 50,100,200] [--spread-ms 0] [--rounds 1] [--arms current]
 */
import { execFileSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import type { Browser } from 'playwright-core';
import { lightClassroom } from '../kit/lightReceiver.js';
import { SignalClient } from '../kit/signalClient.js';
import { buildWeb, chromiumAvailable, launchBrowser, openPage, pollPage, type OpenedPage } from '../test/support/browser.js';
import { chromiumCapabilities } from './fanout/chromiumCaps.js';
import {
  allCpus,
  BENCH_NICE,
  cpuSeconds,
  cpuTimes,
  createLesson,
  descendants,
  percentile,
  pinProcess,
  saveResult,
  setNice,
  startServer,
  table,
  type BenchServer,
} from './lib.js';

/** The marks of one join, in order, in ms since just before its WebSocket was opened. */
const MARKS = [
  'open',
  'auth',
  'joined',
  'transport',
  'consumed',
  'connectAnswered',
  'ice',
  'dtls',
  'resumed',
  'firstRtp',
  'keyFrame',
] as const;
type Mark = (typeof MARKS)[number];
const STAGE_NAMES: Record<Mark, string> = {
  open: 'ws open',
  auth: 'authenticated',
  joined: 'join answered',
  transport: 'transport created',
  consumed: 'consume answered',
  connectAnswered: 'connectTransport answered',
  ice: 'ICE answered',
  dtls: 'DTLS connected',
  resumed: 'resume answered',
  firstRtp: 'first RTP',
  keyFrame: 'first key frame',
};

const JOIN_TIMEOUT_MS = 30_000;

interface Arm {
  label: string;
  root?: string;
  env: Record<string, string>;
}

interface StormResult {
  arm: string;
  size: number;
  round: number;
  failures: number;
  errors: string[];
  /** Per join that completed: its marks, and the video packets it asked for again before its key frame. */
  joins: Array<Record<Mark, number> & { nacked: number; videoCodec: string }>;
  wallS: number;
  /** CPU % over the storm (until the last key frame): the server's Node, its worker, this generator. */
  nodeCpu: number;
  workerCpu: number;
  generatorCpu: number;
  /** How busy each CPU was, everyone's processes included (others share this machine). */
  cpuBusy: number[];
  /** This generator's event-loop delay (p95 and max, ms): how long a ready client waited for its turn. */
  generatorLagP95: number;
  generatorLagMax: number;
  /** The publisher's video over the storm: PLIs it received and key frames it encoded (all simulcast layers). */
  publisher: { pli: number; keyFrames: number };
  load: string;
}

export function parseArms(spec: string): Arm[] {
  return spec.split(';').map((part) => {
    const [head, envs] = part.split(':', 2) as [string, string | undefined];
    const [label, root] = head.split('@', 2) as [string, string | undefined];
    const env: Record<string, string> = {};
    for (const kv of envs ? envs.split(',') : []) {
      const [k, v] = kv.split('=', 2);
      env[k!] = v ?? '';
    }
    return { label, ...(root ? { root } : {}), env };
  });
}

function uptime(): string {
  return execFileSync('uptime', { encoding: 'utf8' })
    .trim()
    .replace(/^.*load average:\s*/, 'load ');
}

/** One classroom joining as a browser would, with its marks. */
async function oneJoin(s: BenchServer, token: string, lessonId: string, capabilities: types.RtpCapabilities, keep: Array<() => void>) {
  const m: Partial<Record<Mark, number>> = {};
  const t0 = performance.now();
  const mark = (k: Mark) => (m[k] = performance.now() - t0);
  const client = await SignalClient.connect(s.wsUrl);
  keep.push(() => {
    void client.request('leave', {}).catch(() => undefined);
    client.close();
  });
  mark('open');
  await client.request('authenticate', { token });
  mark('auth');
  const joined = await client.request('join', { lessonId });
  mark('joined');
  let keyFrame!: () => void;
  const gotKeyFrame = new Promise<void>((r) => (keyFrame = r));
  const { rx, resume, consumers } = await lightClassroom(client, joined.producers, capabilities, {
    watchKeyFrame: true,
    connectTimeoutMs: JOIN_TIMEOUT_MS,
    mark,
  });
  keep.push(() => rx.close());
  rx.onKeyFrame = () => keyFrame();
  m.ice = rx.at.ice! - t0;
  m.dtls = rx.at.dtls! - t0;
  await resume();
  mark('resumed');
  if (rx.at.keyFrame === undefined) await gotKeyFrame;
  m.firstRtp = rx.at.firstRtp! - t0;
  m.keyFrame = rx.at.keyFrame! - t0;
  const videoCodec = consumers.find((c) => c.kind === 'video')?.rtpParameters.codecs[0]?.mimeType ?? '';
  return { ...(m as Record<Mark, number>), nacked: rx.nacked, videoCodec };
}

async function storm(
  s: BenchServer,
  studioPage: OpenedPage,
  lessonId: string,
  size: number,
  spreadMs: number,
  label: string,
): Promise<Omit<StormResult, 'arm' | 'round' | 'load'>> {
  const tokens = await Promise.all(Array.from({ length: size }, (_, i) => s.token('classroom', `${label}-school-${i}`, [lessonId])));
  const capabilities = chromiumCapabilities().rtpCapabilities;
  const keep: Array<() => void> = [];
  const workers = descendants(s.child.pid!)
    .filter((d) => d.comm.startsWith('mediasoup'))
    .map((d) => d.pid);
  const cpu = (pids: number[]) => pids.reduce((a, p) => a + cpuSeconds(p), 0);
  const node0 = cpuSeconds(s.child.pid!);
  const worker0 = cpu(workers);
  const gen0 = cpuSeconds(process.pid);
  const pub0 = await publisherVideo(studioPage);
  const busy0 = cpuTimes();
  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const started = performance.now();
  const results = await Promise.allSettled(
    tokens.map(async (token, i) => {
      if (spreadMs > 0) await new Promise((r) => setTimeout(r, (i * spreadMs) / size));
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        oneJoin(s, token, lessonId, capabilities, keep),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new Error(`join ${i}: no key frame in ${JOIN_TIMEOUT_MS / 1000} s`)), JOIN_TIMEOUT_MS)),
        ),
      ]).finally(() => clearTimeout(timer));
    }),
  );
  const wall = (performance.now() - started) / 1000;
  lag.disable();
  const pct = (seconds: number) => (seconds / wall) * 100;
  const nodeCpu = pct(cpuSeconds(s.child.pid!) - node0);
  const workerCpu = pct(cpu(workers) - worker0);
  const generatorCpu = pct(cpuSeconds(process.pid) - gen0);
  const cpuBusy = cpuTimes().map((c, i) => (100 * (c.busy - busy0[i]!.busy)) / Math.max(1, c.total - busy0[i]!.total));
  const pub1 = await publisherVideo(studioPage);
  for (const k of keep) k();
  const joins = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const errors = [...new Set(results.flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message ?? r.reason)] : [])))];
  // Let the server close the classrooms' transports before the next storm.
  await new Promise((r) => setTimeout(r, 3000));
  return {
    size,
    failures: size - joins.length,
    errors: errors.slice(0, 5),
    joins,
    wallS: wall,
    nodeCpu,
    workerCpu,
    generatorCpu,
    cpuBusy,
    generatorLagP95: lag.percentile(95) / 1e6,
    generatorLagMax: lag.max / 1e6,
    publisher: { pli: pub1.pli - pub0.pli, keyFrames: pub1.keyFrames - pub0.keyFrames },
  };
}

/** Keeps the studio's peer connections reachable (window.__pcs) for publisherVideo(). */
const KEEP_PEER_CONNECTIONS = `{
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
}`;

/** PLIs received and key frames encoded so far by the publisher's video, summed over its simulcast layers. */
async function publisherVideo(p: OpenedPage): Promise<{ pli: number; keyFrames: number }> {
  return p.page.evaluate(async () => {
    let pli = 0;
    let keyFrames = 0;
    for (const pc of (window as unknown as { __pcs: RTCPeerConnection[] }).__pcs) {
      (await pc.getStats()).forEach((r: Record<string, unknown>) => {
        if (r['type'] !== 'outbound-rtp' || r['kind'] !== 'video') return;
        pli += Number(r['pliCount'] ?? 0);
        keyFrames += Number(r['keyFramesEncoded'] ?? 0);
      });
    }
    return { pli, keyFrames };
  });
}

/** The instructor: the studio page in Chromium, live with its fake camera and microphone. */
async function studio(browser: Browser, s: BenchServer, lessonId: string): Promise<OpenedPage> {
  const token = await s.token('instructor', 'teacher-1', [lessonId]);
  const page = await openPage(browser, 'studio', `${s.url}/studio#lesson=${lessonId}&token=${token}`, undefined, async (context) => {
    await context.addInitScript(KEEP_PEER_CONNECTIONS);
  });
  await page.page.selectOption('#resolution-select', '360');
  const joined = await pollPage(
    page.page,
    () => (window as unknown as { lessoncast?: { linkState(): string } }).lessoncast?.linkState() === 'joined',
  );
  if (!joined) throw new Error(`the studio did not join: ${page.errors.join('; ')}`);
  await page.page.click('#go-live');
  const publishing = await pollPage(
    page.page,
    () => (window as unknown as { lessoncast: { publishing(): string[] } }).lessoncast.publishing().join(',') === 'camera,microphone',
    30_000,
  );
  if (!publishing) throw new Error(`the studio did not publish: ${page.errors.join('; ')}`);
  // Let the encoder ramp its simulcast layers up before the first bell.
  await new Promise((r) => setTimeout(r, 5000));
  return page;
}

export function stageRows(r: StormResult): Array<Record<string, string | number>> {
  const f = (x: number) => x.toFixed(0);
  return MARKS.map((k, i) => {
    const stage = r.joins.map((j) => j[k] - (i === 0 ? 0 : j[MARKS[i - 1]!])).sort((a, b) => a - b);
    const total = r.joins.map((j) => j[k]).sort((a, b) => a - b);
    return {
      stage: `${i === 0 ? 'start' : STAGE_NAMES[MARKS[i - 1]!]} → ${STAGE_NAMES[k]}`,
      'p50 ms': f(percentile(stage, 50)),
      'p95 ms': f(percentile(stage, 95)),
      'since start p50': f(percentile(total, 50)),
      'since start p95': f(percentile(total, 95)),
    };
  });
}

export function summaryRow(r: StormResult): Record<string, string | number> {
  const f = (x: number) => x.toFixed(0);
  const first = r.joins.map((j) => j.firstRtp).sort((a, b) => a - b);
  const key = r.joins.map((j) => j.keyFrame).sort((a, b) => a - b);
  return {
    arm: r.arm,
    joins: r.size,
    round: r.round,
    failures: r.failures,
    'first RTP p50': f(percentile(first, 50)),
    p95: f(percentile(first, 95)),
    'first frame p50': f(percentile(key, 50)),
    'p95 ': f(percentile(key, 95)),
    'max ': f(key.at(-1) ?? NaN),
    'wall s': r.wallS.toFixed(1),
    'CPU % node/worker/gen': `${r.nodeCpu.toFixed(0)}/${r.workerCpu.toFixed(0)}/${r.generatorCpu.toFixed(0)}`,
    'CPU 0/1 busy %': r.cpuBusy.map((b) => b.toFixed(0)).join('/'),
    'gen lag p95/max ms': `${r.generatorLagP95.toFixed(0)}/${r.generatorLagMax.toFixed(0)}`,
    'PLI/key frames at publisher': `${r.publisher.pli}/${r.publisher.keyFrames}`,
    'joins with loss': r.joins.filter((j) => j.nacked > 0).length,
    video: [...new Set(r.joins.map((j) => j.videoCodec))].join(','),
    load: r.load,
  };
}

export async function runJoinStormBench(opts: { sizes: number[]; spreadMs: number; rounds: number; arms: Arm[] }) {
  if (!chromiumAvailable()) {
    console.log('join storm: skipped (no Chromium for the instructor studio)');
    return { summary: [], file: '' };
  }
  setNice(process.pid, BENCH_NICE);
  // The clients (and Chromium, started below) on CPU 1; each server on CPU 0.
  pinProcess(process.pid, '1');
  buildWeb();
  const browser = await launchBrowser();
  const results: StormResult[] = [];
  const loadAtStart = uptime();
  try {
    for (let round = 1; round <= opts.rounds; round++)
      for (const size of opts.sizes)
        for (const arm of opts.arms) {
          const s = await startServer(
            { LESSONCAST_MEDIA_WORKERS: '1', ...arm.env },
            { cpus: '0', ...(arm.root ? { root: arm.root } : {}) },
          );
          let page: OpenedPage | undefined;
          try {
            const lessonId = await createLesson(s);
            page = await studio(browser, s, lessonId);
            const load = uptime();
            const r = { arm: arm.label, round, load, ...(await storm(s, page, lessonId, size, opts.spreadMs, `${arm.label}-${round}`)) };
            results.push(r);
            console.log(table([summaryRow(r)]));
            console.log(table(stageRows(r)));
            if (r.errors.length) console.log(`errors: ${r.errors.join('; ')}`);
            console.log();
          } finally {
            await page?.close();
            await s.stop();
          }
        }
  } finally {
    await browser.close();
    pinProcess(process.pid, allCpus()); // `npm run bench` goes on in this process
  }
  const summary = results.map(summaryRow);
  console.log(
    `join storm: ${opts.spreadMs > 0 ? `joins spread uniformly over ${opts.spreadMs} ms` : 'all joins of a storm at once'}; WebSocket open → ` +
      'first RTP and → first key frame complete (ms); server on CPU 0, clients and the Chromium publisher on CPU 1',
  );
  console.log(table(summary));
  const file = saveResult('joinStorm', {
    opts,
    loadAtStart,
    loadAtEnd: uptime(),
    summary,
    stages: results.map((r) => ({ arm: r.arm, size: r.size, round: r.round, rows: stageRows(r) })),
    errors: results.map((r) => ({ arm: r.arm, size: r.size, errors: r.errors })),
  });
  console.log(`saved ${file}`);
  return { summary, file };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string', default: '50,100,200' },
      'spread-ms': { type: 'string', default: '0' },
      rounds: { type: 'string', default: '1' },
      arms: { type: 'string', default: 'current' },
    },
  });
  await runJoinStormBench({
    sizes: values.sizes.split(',').map(Number),
    spreadMs: Number(values['spread-ms']),
    rounds: Number(values.rounds),
    arms: parseArms(values.arms),
  });
  process.exit(0);
}
