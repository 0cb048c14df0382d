/**
 * Shared by the forwarding benches (bench/sfu/): a fan-out step measured the
 * same way for every SFU, whether it keeps packet counters (mediasoup) or not
 * (Janus's rtp_forward keeps none).
 *
 * Same method as bench/fanout.ts: the SFU is pinned to CPU 0, this Node and
 * everything it spawns to CPU 1; SFU CPU comes from /proc/<pid>/stat deltas;
 * loss and received bytes come from sampled plain UDP receivers reading the
 * RTP header, which SRTP leaves in clear. Outputs that are not sampled go to
 * one unread sink socket, so the SFU pays for every send and the load
 * generator for none.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { SeqTracker, Sink, lossBetween, type Destination, type LossCounters } from '../fanout/probes.js';
import type { FanoutTarget } from '../fanout/target.js';
import { climbLadder, cpuSeconds, cpuTimes, machine, otherBenches, sleep, table } from '../lib.js';

export { Sink } from '../fanout/probes.js';

/** A sampled output: counts packets, bytes and sequence gaps per SSRC (RTCP on the same port is skipped). */
export class SampleSocket {
  private readonly seq = new SeqTracker();
  private bytesIn = 0;

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (msg) => {
      if (msg.length < 12 || msg[0]! >> 6 !== 2) return;
      const pt = msg[1]! & 0x7f;
      if (pt >= 64 && pt <= 95) return; // RTCP (SR 200 … 207 reads as 72 … 79)
      this.bytesIn += msg.length;
      this.seq.add(msg.readUInt32BE(8), msg.readUInt16BE(2));
    });
  }

  static async open(): Promise<SampleSocket> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve();
      });
    });
    // A burst while the load generator's core is busy must not look like SFU loss.
    socket.setRecvBufferSize(2 * 1024 * 1024);
    return new SampleSocket(socket);
  }

  get destination(): Destination {
    const a = this.socket.address();
    return { ip: a.address, port: a.port };
  }

  counters(): LossCounters & { bytes: number } {
    return { ...this.seq.counters(), bytes: this.bytesIn };
  }

  close(): void {
    this.socket.close();
  }
}

/** How long a freshly started lesson source runs before the first measurement. */
export const SOURCE_SETTLE_MS = 6000;

export interface StepOptions {
  warmupS: number;
  measureS: number;
  maxLoss: number;
  maxCpu: number;
}

export interface Step {
  n: number;
  /** SFU process CPU, fraction of one core. */
  sfuCpu: number;
  /**
   * RTP packets out per second, for every SFU alike: the packets the sampled
   * receivers should have got (sequence numbers, so losses count too) × n /
   * samples, over the same window as the CPU figure.
   */
  pktPerS: number;
  /**
   * The SFU's own counters (mediasoup getStats), when it keeps any; only a
   * cross-check: reading a thousand consumers' stats from a busy worker takes
   * seconds, so the window they cover is uncertain exactly when it matters.
   */
  sfuPktPerS: number | null;
  /** SRTP bytes on the wire (UDP payload) per second, sampled bytes × n / samples. */
  mbitPerS: number;
  usPerPkt: number;
  loss: number;
  late: number;
  /** Every CPU's busy fraction over the step (all processes): shows other work on the SFU's core. */
  cpuBusy: number[];
  setupS: number;
  pass: boolean;
  why: string;
  /** Nothing reached the sampled receivers: the published lesson itself is gone (not an SFU measurement). */
  sourceLost: boolean;
  /** Another benchmark (pgrep bench/) was running when the step ended: its figures are suspect. */
  othersRunning?: boolean;
}

/** Adds outputs up to n, waits, then measures one window. */
export async function measureStep(target: FanoutTarget, n: number, samples: SampleSocket[], sink: Sink, opts: StepOptions): Promise<Step> {
  const t0 = performance.now();
  await target.setOutputs(n, (i) => (i < samples.length ? samples[i]!.destination : sink.destination));
  const setupS = (performance.now() - t0) / 1000;
  await sleep(opts.warmupS * 1000);
  const sampled = samples.slice(0, n);
  const sfuPid = target.sfu[0]!.pid;
  const timedSent = async () => {
    const a = performance.now();
    const v = await target.sent();
    return { v, at: (a + performance.now()) / 2 };
  };
  const snap = () => {
    const c = sampled.map((s) => s.counters());
    return {
      at: performance.now(),
      cpu: cpuSeconds(sfuPid),
      busy: cpuTimes(),
      counters: c.reduce(
        (a, x) => ({ received: a.received + x.received, expected: a.expected + x.expected, reordered: a.reordered + x.reordered }),
        {
          received: 0,
          expected: 0,
          reordered: 0,
        },
      ),
      bytes: c.reduce((a, x) => a + x.bytes, 0),
    };
  };
  const sentA = await timedSent();
  const a = snap();
  await sleep(opts.measureS * 1000);
  const b = snap();
  const sentB = await timedSent();

  const wall = (b.at - a.at) / 1000;
  const sfuCpu = (b.cpu - a.cpu) / wall;
  const l = lossBetween(a.counters, b.counters);
  const perOutput = n / Math.max(1, sampled.length);
  const pktPerS = (l.expected * perOutput) / wall;
  const sentS = (sentB.at - sentA.at) / 1000;
  const sfuPktPerS = sentA.v && sentB.v ? (sentB.v.packets - sentA.v.packets) / sentS : null;
  const cpuBusy = b.busy.map((x, i) => (x.busy - a.busy[i]!.busy) / Math.max(1, x.total - a.busy[i]!.total));
  const why: string[] = [];
  if (!(l.loss < opts.maxLoss)) why.push(`loss ${(l.loss * 100).toFixed(2)} %`);
  if (sfuCpu >= opts.maxCpu) why.push(`cpu ${(sfuCpu * 100).toFixed(0)} %`);
  return {
    n,
    sfuCpu,
    pktPerS,
    sfuPktPerS,
    mbitPerS: ((b.bytes - a.bytes) * perOutput * 8) / wall / 1e6,
    usPerPkt: (sfuCpu * 1e6) / pktPerS,
    loss: l.loss,
    late: l.reordered,
    cpuBusy,
    setupS,
    pass: why.length === 0,
    why: why.join(', '),
    sourceLost: sampled.length > 0 && l.received === 0,
  };
}

export function stepRow(s: Step): Record<string, string | number> {
  return {
    N: s.n,
    'SFU CPU %': (s.sfuCpu * 100).toFixed(1),
    'pkt/s out': Math.round(s.pktPerS),
    'Mbit/s out': s.mbitPerS.toFixed(0),
    'µs/pkt': s.usPerPkt.toFixed(2),
    'loss %': Number.isFinite(s.loss) ? (s.loss * 100).toFixed(2) : '–',
    late: s.late,
    'cpu busy % (0/1)': s.cpuBusy.map((x) => (x * 100).toFixed(0)).join('/'),
    ok: (s.pass ? 'yes' : `no (${s.why})`) + (s.othersRunning ? ' [other bench running]' : ''),
  };
}

export interface LadderResult {
  target: string;
  steps: Step[];
  /** Largest N measured with loss < maxLoss and CPU < maxCpu (null: none passed). */
  capacity: number | null;
  /** False when no step failed: capacity is a lower bound. */
  bounded: boolean;
  /** µs/pkt: the median over the passing steps at ≥ 25 % CPU (or all passing steps), steadier than one step. */
  usPerPkt: number | null;
  /** Outputs one core would carry at maxCpu, from usPerPkt and the per-output packet rate. */
  projected: number | null;
  /** Packets per second one output carries (audio + video), measured. */
  pktPerOutput: number | null;
}

/**
 * Runs a ladder of N on one target: each rung adds outputs to the running
 * target; stops at the first failing rung (never going past the N projected
 * to fill the core by more than a little), then bisects `refine` times.
 */
export async function runLadder(
  start: () => Promise<FanoutTarget>,
  opts: StepOptions & { ladder: number[]; refine: number; samples: number; log?: (line: string) => void },
): Promise<LadderResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const samples = await Promise.all(Array.from({ length: opts.samples }, () => SampleSocket.open()));
  const sink = await Sink.open();
  let target: FanoutTarget | undefined;
  const steps: Step[] = [];
  try {
    target = await start();
    // The encoder's rate settles in the first seconds; measuring before would see fewer, smaller packets.
    await sleep(SOURCE_SETTLE_MS);
    let printed = false;
    await climbLadder({
      ladder: opts.ladder,
      refine: opts.refine,
      quantum: 5,
      run: async (n) => {
        if (otherBenches().length > 0) {
          // Another benchmark shares the cores: stop loading them and wait, rather than measure both at once.
          await target!.setOutputs(0, () => sink.destination);
          await waitForQuiet(log);
        }
        let s = await measureStep(target!, n, samples, sink, opts);
        if (s.sourceLost) {
          // A worker driven past saturation can lose the publisher's connection: the lesson is gone, not slow.
          log(`[${target!.name}] N=${n}: nothing reached the sampled receivers; starting the target again`);
          await target!.close();
          target = undefined;
          target = await start();
          await sleep(SOURCE_SETTLE_MS);
          s = await measureStep(target, n, samples, sink, opts);
        }
        s.othersRunning = otherBenches().length > 0;
        steps.push(s);
        const lines = table([stepRow(s)]).split('\n');
        log(`[${target!.name}] ${(printed ? lines.slice(2) : lines).join(`\n[${target!.name}] `)}`);
        printed = true;
        return s;
      },
      // Never step past what would need 93 % of the core: enough to cross the 90 % line, and a
      // saturated SFU can drop the publisher's connection too.
      limit: (last) => (last.n * 0.93) / Math.max(0.01, last.sfuCpu),
    });
  } finally {
    for (const s of samples) s.close();
    sink.close();
    await target?.close();
  }
  return summarize(target?.name ?? 'target', steps, opts.maxCpu);
}

export function summarize(name: string, steps: Step[], maxCpu: number): LadderResult {
  const sorted = [...steps].sort((a, b) => a.n - b.n);
  const passing = sorted.filter((s) => s.pass && !s.sourceLost);
  const best = passing.at(-1);
  const loaded = passing.filter((s) => s.sfuCpu >= 0.25);
  const us = median((loaded.length ? loaded : passing).map((s) => s.usPerPkt));
  const perOutput = best ? best.pktPerS / best.n : null;
  return {
    target: name,
    steps: sorted,
    capacity: best?.n ?? null,
    bounded: sorted.some((s) => !s.pass),
    usPerPkt: us,
    pktPerOutput: perOutput,
    projected: us !== null && perOutput ? Math.floor((maxCpu * 1e6) / (us * perOutput)) : null,
  };
}

export function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** A TCP port free on loopback right now (for servers that must be told their port). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Machine facts for the JSON: CPU model, cores, memory, kernel, and what else was running. */
export function machineInfo(): Record<string, unknown> {
  const m = machine();
  const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8').trim() : undefined);
  let kernel = 'unknown';
  try {
    kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  } catch {
    // keep unknown
  }
  const flags = /flags\s*:\s*(.*)/.exec(read('/proc/cpuinfo') ?? '')?.[1]?.split(' ') ?? [];
  return {
    ...m,
    cpuMHz: cpus()[0]?.speed,
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    aesni: flags.includes('aes'),
    vaes: flags.includes('vaes'),
    loadavg: read('/proc/loadavg'),
  };
}

/** Waits (polling every 15 s, at most maxS) until no other benchmark runs; returns the seconds waited. */
export async function waitForQuiet(log: (line: string) => void, maxS = 15 * 60): Promise<number> {
  const t0 = performance.now();
  for (let others = otherBenches(); others.length > 0; others = otherBenches()) {
    const waited = Math.round((performance.now() - t0) / 1000);
    if (waited >= maxS) {
      log(`other benchmarks still running after ${waited} s; measuring anyway`);
      break;
    }
    log(`waiting for other benchmarks (${waited} s): ${others.at(-1)!.line}`);
    await sleep(15_000);
  }
  return (performance.now() - t0) / 1000;
}

export { table };
