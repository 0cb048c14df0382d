import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { TokenService } from '../src/auth/tokens.js';
// Types only (erased): the modules themselves load late, once the worker binary is chosen.
import type { Config, DeepPartial } from '../src/config/load.js';
import type { Lessoncast, LessoncastInternals } from '../src/server.js';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export function machine(): { cpuModel: string; cores: number; node: string } {
  return { cpuModel: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
}

/** Writes bench/results/<name>-<timestamp>.json with the machine description. */
export function saveResult(name: string, data: unknown): string {
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ name, at: new Date().toISOString(), machine: machine(), data }, null, 2));
  return file;
}

export function table(rows: Array<Record<string, string | number>>): string {
  if (rows.length === 0) return '(no rows)';
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(width[i]!)).join('  ');
  return [line(cols), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? ''))))].join('\n');
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface BenchServer {
  url: string;
  /** Where this server records lessons. */
  recordingsDir: string;
  wsUrl: string;
  child: ChildProcess;
  tokens: TokenService;
  token(role: 'admin' | 'instructor' | 'classroom' | 'monitor', id: string, lessons?: '*' | string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Starts lessoncast as its own process (src/main.ts), so the load generator does not share its event loop. */
/** `opts.root`: another checkout whose src/main.ts to run (e.g. the code before a change, for a side-by-side run). */
export async function startServer(env: Record<string, string> = {}, opts: { cpus?: string; root?: string } = {}): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-bench-'));
  const secret = randomBytes(32).toString('hex');
  const nodeArgs = ['--import', import.meta.resolve('tsx'), path.join(opts.root ?? root, 'src', 'main.ts')];
  // taskset execs node in place (same pid); everything the server spawns inherits the CPUs.
  const [cmd, args] = opts.cpus ? ['taskset', ['-c', opts.cpus, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, {
    cwd: dir,
    env: {
      ...process.env,
      LESSONCAST_CONFIG_DIR: path.join(root, 'config'),
      LESSONCAST_HTTP_PORT: '0',
      LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT: '0',
      LESSONCAST_LOG_LEVEL: 'warn',
      LESSONCAST_RECORDING_DIR: path.join(dir, 'recordings'),
      LESSONCAST_AUTH_TOKEN_SECRET: secret,
      // Every bench client comes from 127.0.0.1: the per-address door (meant for one abuser's
      // address) would turn away a wave of 50 joins as 30 sockets too many.
      LESSONCAST_HTTP_MAX_UNAUTHENTICATED_PER_ADDRESS: '100000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The server's last output, for error messages (bounded: a long bench logs a lot).
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-65536);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30000);
    child.stdout.on('data', () => {
      const m = /health\s+(http:\/\/\S+)\/healthz/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}):\n${out}`)));
  });
  const tokens = new TokenService(new TextEncoder().encode(secret), 3600);
  return {
    url,
    recordingsDir: path.join(dir, 'recordings'),
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    child,
    tokens,
    token: async (role, id, lessons = '*') => (await tokens.mint({ role, id, lessons })).token,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createLesson(s: Pick<BenchServer, 'url' | 'token'>, instructorId = 'teacher-1', record = false): Promise<string> {
  const res = await fetch(`${s.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('admin', 'bench')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'bench', instructorId, record }),
  });
  if (res.status !== 201) throw new Error(`create lesson: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { lesson: { id: string } }).lesson.id;
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// -- in-process server, CPU pinning and CPU accounting (fan-out, recording) --

export interface InProcessServer {
  server: Lessoncast;
  /** The server's parts (LessonMedia, the worker pool…) for the bench to drive. */
  internals: LessoncastInternals;
  url: string;
  wsUrl: string;
  token(role: 'admin' | 'instructor' | 'classroom' | 'monitor', id: string, lessons?: '*' | string[]): Promise<string>;
  stop(): Promise<void>;
}

/**
 * lessoncast in this process (createLessoncastForTests), so a bench can reach
 * LessonMedia directly; its mediasoup workers are separate processes anyway.
 */
export async function startInProcess(overrides: DeepPartial<Config> = {}): Promise<InProcessServer> {
  const { deepMerge, loadConfig } = await import('../src/config/load.js');
  const { createLessoncastForTests } = await import('../src/server.js');
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-bench-'));
  const base = {
    log: { level: 'error' }, // the control room's loss alerts under overload would drown the tables
    http: { port: 0 },
    media: { webRtcServerPort: 0 },
    recording: { dir: path.join(dir, 'recordings') },
    auth: { tokenSecret: randomBytes(32).toString('hex'), secretFile: path.join(dir, 'secret') },
    shutdown: { timeoutSeconds: 10 },
  };
  const config = loadConfig({ env: {}, configDir: path.join(root, 'config'), overrides: deepMerge(base, overrides) as typeof overrides });
  const { server, internals } = await createLessoncastForTests(config);
  await server.start();
  return {
    server,
    internals,
    url: server.url,
    wsUrl: server.url.replace(/^http/, 'ws') + '/ws',
    token: async (role, id, lessons = '*') => (await internals.tokens.mint({ role, id, lessons })).token,
    stop: async () => {
      await server.stop('bench done');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pins every thread of a process to the given CPUs (taskset list syntax, e.g. "0" or "0-1"). */
export function pinProcess(pid: number, cpuList: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
}

/**
 * Sets the nice value of every thread of a process (Linux niceness is per
 * thread). Benches raise their own priority so that other work on a shared
 * machine disturbs the measured processes less; threads and processes started
 * later inherit it.
 */
export function setNice(pid: number, nice: number): void {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return;
  }
  for (const tid of tids) {
    try {
      execFileSync('renice', ['-n', String(nice), '-p', tid], { stdio: 'ignore' });
    } catch {
      // not permitted (not root) or gone: run at normal priority
    }
  }
}

/** The priority benches give to the SFU and the load generator (root only; 0 = leave as is). */
export const BENCH_NICE = Number(process.env['BENCH_NICE'] ?? -10);

export function allCpus(): string {
  return `0-${cpus().length - 1}`;
}

/** Per-CPU busy and total jiffies from /proc/stat (busy = everything but idle and iowait). */
export function cpuTimes(): Array<{ busy: number; total: number }> {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const total = v.reduce((a, b) => a + b, 0);
      return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total };
    });
}

/** Resident memory of a process in MB, from /proc. */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Live descendants of a process (children, grandchildren…), from /proc. */
export function descendants(pid: number): Array<{ pid: number; comm: string }> {
  const parentOf = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(name), { ppid, comm });
    } catch {
      // gone meanwhile
    }
  }
  const out: Array<{ pid: number; comm: string }> = [];
  const wanted = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, { ppid, comm }] of parentOf) {
      if (wanted.has(ppid) && !wanted.has(p)) {
        wanted.add(p);
        out.push({ pid: p, comm });
        grew = true;
      }
    }
  }
  return out;
}

/** Proportional set size in MB (shared libraries split between the processes mapping them), from /proc. */
export function pssMb(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Steps a load up a ladder until a step fails, then bisects between the last
 * pass and the first failure. `limit(last)` may hold a rung back (e.g. to the
 * load projected to fill the core), so a step overshoots by a little instead
 * of by double; the rung is then approached again. Returns every step run, in
 * the order run.
 */
export async function climbLadder<R extends { pass: boolean }>(opts: {
  ladder: number[];
  refine: number;
  /** Loads are multiples of this. */
  quantum: number;
  run: (n: number) => Promise<R>;
  limit?: (last: R, lastN: number) => number;
}): Promise<Array<{ n: number; result: R }>> {
  const q = (x: number): number => Math.max(opts.quantum, Math.round(x / opts.quantum) * opts.quantum);
  const steps: Array<{ n: number; result: R }> = [];
  let lo = 0;
  let hi: number | undefined;
  // A rung held back by `limit` is climbed towards again until reached or failed (always by at least one quantum).
  for (let i = 0; i < opts.ladder.length && steps.length < 16;) {
    const rung = opts.ladder[i]!;
    const last = steps.at(-1);
    // Held back, but always a real step up (8 %, at least one quantum): past the aim point it must still end in a failure.
    const n = last && opts.limit ? Math.min(rung, Math.max(q(opts.limit(last.result, last.n)), q(lo * 1.08), lo + opts.quantum)) : rung;
    const result = await opts.run(n);
    steps.push({ n, result });
    if (!result.pass) {
      hi = n;
      break;
    }
    lo = n;
    if (n >= rung) i++;
  }
  for (let k = 0; k < opts.refine && hi !== undefined; k++) {
    const mid = q((lo + hi) / 2);
    if (mid <= lo || mid >= hi) break;
    const result = await opts.run(mid);
    steps.push({ n: mid, result });
    if (result.pass) lo = mid;
    else hi = mid;
  }
  return steps;
}

/** Runs tasks with at most `limit` in flight. */
export async function inBatches<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(runners);
}

/** Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22). */
function startTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
}

function parentPid(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * Other benchmark runs on this machine (a command line mentioning bench/):
 * every process but this one's ancestors and descendants, with its pid and
 * command line.
 */
export function otherBenches(): Array<{ pid: number; line: string }> {
  let out: string;
  try {
    out = execFileSync('pgrep', ['-af', 'bench/'], { encoding: 'utf8' });
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
  const mine = new Set<number>();
  for (let p: number | undefined = process.pid; p && p > 1; p = parentPid(p)) mine.add(p);
  for (const d of descendants(process.pid)) mine.add(d.pid);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => ({ pid: Number(line.split(' ')[0]), line }))
    .filter((b) => !mine.has(b.pid));
}

/**
 * The other benchmark runs that started before this process. Two benches
 * pinning SFUs to the same core spoil each other's figures; the later one
 * waits (so two never wait for each other).
 */
export function earlierBenches(): string[] {
  const myStart = startTicks(process.pid);
  return otherBenches()
    .filter((b) => {
      try {
        return startTicks(b.pid) < myStart;
      } catch {
        return false; // gone
      }
    })
    .map((b) => b.line);
}

/** Waits (up to maxMinutes, then goes on with a warning) until no earlier benchmark is running. */
export async function waitForEarlierBenches(maxMinutes = 20): Promise<void> {
  const deadline = Date.now() + maxMinutes * 60_000;
  let told = false;
  for (let others = earlierBenches(); others.length; others = earlierBenches()) {
    if (Date.now() > deadline) {
      console.warn(`still running, measuring anyway (figures will be disturbed):\n  ${others.join('\n  ')}`);
      return;
    }
    if (!told) console.log(`waiting for another benchmark to finish:\n  ${others.join('\n  ')}`);
    told = true;
    await sleep(5000);
  }
}

/**
 * Blocks while a worker build (ninja, ours or anyone's) is running: on 2 cores
 * a second build alongside would slow both, and measurements taken meanwhile
 * would be spoilt. Synchronous, for the callers that build synchronously.
 */
export function waitForNoWorkerBuild(log: (line: string) => void = (l) => console.log(l), maxMinutes = 60): void {
  const deadline = Date.now() + maxMinutes * 60_000;
  let told = false;
  for (;;) {
    let pids: string;
    try {
      pids = execFileSync('pgrep', ['-x', 'ninja'], { encoding: 'utf8' }).trim();
    } catch {
      return; // pgrep exits 1 when nothing matches
    }
    if (Date.now() > deadline) {
      log(`a worker build (ninja ${pids.split('\n').join(', ')}) still runs after ${maxMinutes} min; going on`);
      return;
    }
    if (!told) log(`waiting for a running worker build (ninja ${pids.split('\n').join(', ')}) to finish`);
    told = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 15_000);
  }
}

/**
 * UDP datagrams the kernel dropped (receive buffer full) on sockets owned by
 * the given processes, summed per label: tells where a loss happened.
 */
export function udpDrops(owners: Array<{ pid: number; label: string }>): Record<string, number> {
  const dropsByInode = new Map<string, number>();
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 13) dropsByInode.set(f[9]!, Number(f[12]));
    }
  }
  const out: Record<string, number> = {};
  for (const { pid, label } of owners) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const m = /^socket:\[(\d+)\]$/.exec(target);
      const drops = m ? dropsByInode.get(m[1]!) : undefined;
      if (drops !== undefined) out[label] = (out[label] ?? 0) + drops;
    }
  }
  return out;
}

/**
 * A bench child's stdout, line by line: `RESULT <json>` lines are its measurements (handed to
 * `onResult`), anything else is its log (handed to `onLine`).
 */
export function readChildResults<T>(stdout: NodeJS.ReadableStream, onResult: (result: T) => void, onLine: (line: string) => void): void {
  let buf = '';
  stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.startsWith('RESULT ')) onResult(JSON.parse(line.slice(7)) as T);
      else onLine(line);
    }
  });
}
