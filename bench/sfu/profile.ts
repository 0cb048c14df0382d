/**
 * Where an SFU's CPU goes while it forwards: `perf record` with the software
 * cpu-clock event (this VM exposes no hardware counters, so `perf stat -e
 * instructions` says "not supported", but timer sampling works) on the SFU
 * process under a fixed fan-out load, then the share of samples per shared
 * object (kernel, libsrtp2/NSS/libcrypto crypto, the SFU itself, libc …) and
 * per symbol.
 *
 *   npx tsx bench/sfu/profile.ts [--target bare|janus] [--n 400] [--seconds 8]
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { FanoutTarget } from '../fanout/target.js';
import { BENCH_NICE, pinProcess, setNice, sleep } from '../lib.js';
import { startBareTarget } from './bare.js';
import { startJanusTarget } from './janus.js';
import { SampleSocket, Sink, table } from './lib.js';

export interface ProfileShare {
  name: string;
  percent: number;
}

export interface Profile {
  samples: number;
  seconds: number;
  byDso: ProfileShare[];
  bySymbol: ProfileShare[];
  /** Samples grouped into kinds of work: kernel (syscalls, UDP/IP stack), crypto, the SFU's own code, libc/allocator, other. */
  byKind: ProfileShare[];
}

export function perfWorks(): boolean {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Samples a running process for `seconds` and summarizes; undefined if perf is missing or records nothing. */
export async function profilePid(pid: number, seconds: number): Promise<Profile | undefined> {
  if (!perfWorks()) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-perf-'));
  const data = path.join(dir, 'perf.data');
  try {
    const rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-p', String(pid), '-o', data, '--', 'sleep', String(seconds)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    rec.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => rec.once('exit', r));
    if (code !== 0 || !existsSync(data)) {
      console.log(`perf record failed (${code}): ${err.trim()}`);
      return undefined;
    }
    const report = (sort: string, limit = '0'): ProfileShare[] =>
      execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort, '--percent-limit', limit], {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'ignore'],
      })
        .split('\n')
        .filter((l) => /^\s+[\d.]+%/.test(l))
        .map((l) => {
          const m = /^\s+([\d.]+)%\s+(.*)$/.exec(l)!;
          return { percent: Number(m[1]), name: m[2]!.replace(/\s+/g, ' ').trim() };
        });
    const counted = execFileSync('perf', ['report', '-i', data, '--stdio', '-n', '--sort', 'pid'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const samples = counted
      .split('\n')
      .map((l) => /^\s+[\d.]+%\s+(\d+)/.exec(l)?.[1])
      .reduce((a, x) => a + (x ? Number(x) : 0), 0);
    const symbols = report('dso,sym');
    return { samples, seconds, byDso: report('dso', '0.3'), bySymbol: symbols.slice(0, 30), byKind: kinds(symbols) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function kinds(rows: ProfileShare[]): ProfileShare[] {
  const kindOf = (name: string): string => {
    const dso = name.split(' ')[0] ?? '';
    if (dso.includes('kernel') || name.includes('[k]')) return 'kernel (syscalls, UDP/IP, scheduler)';
    // libsrtp linked statically into mediasoup-worker shows as srtp_* symbols of the worker.
    if (/libsrtp|libnss|libfreebl|libsoftokn|libcrypto|libssl|libnspr|aes|gcm|\bsrtp_|sha1/i.test(name)) return 'SRTP crypto (libsrtp2 → NSS / OpenSSL)';
    if (/mediasoup-worker|janus/i.test(dso)) return 'SFU code';
    if (/libc\.so|libstdc\+\+|ld-linux|libm\.so|libglib|libgobject|libnice|libuv|liburing/i.test(dso)) return 'libc, C++ runtime, event loop libraries';
    return 'other';
  };
  const sums = new Map<string, number>();
  for (const r of rows) sums.set(kindOf(r.name), (sums.get(kindOf(r.name)) ?? 0) + r.percent);
  return [...sums].map(([name, percent]) => ({ name, percent })).sort((a, b) => b.percent - a.percent);
}

export function printProfile(label: string, p: Profile): void {
  console.log(`\nprofile: ${label} (${p.samples} samples over ${p.seconds} s, cpu-clock)`);
  console.log(table(p.byKind.map((k) => ({ 'kind of work': k.name, '% of SFU samples': k.percent.toFixed(1) }))));
  console.log(table(p.bySymbol.slice(0, 15).map((s) => ({ '%': s.percent.toFixed(1), 'shared object / symbol': s.name }))));
}

/** Starts a target at n outputs, waits, profiles its SFU process, closes it. */
export async function profileTarget(start: () => Promise<FanoutTarget>, n: number, seconds: number): Promise<Profile | undefined> {
  const samples = await Promise.all(Array.from({ length: 2 }, () => SampleSocket.open()));
  const sink = await Sink.open();
  const target = await start();
  try {
    await target.setOutputs(n, (i) => (i < samples.length ? samples[i]!.destination : sink.destination));
    await sleep(3000);
    return await profilePid(target.sfu[0]!.pid, seconds);
  } finally {
    await target.close();
    for (const s of samples) s.close();
    sink.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { target: { type: 'string', default: 'bare' }, n: { type: 'string', default: '400' }, seconds: { type: 'string', default: '8' } },
  });
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1');
  const source = { width: 1280, height: 720, fps: 30, videoKbps: 1500 };
  const start =
    values.target === 'janus'
      ? () => startJanusTarget({ cpu: 0, source })
      : () => startBareTarget({ cpu: 0, source, settings: { logLevel: 'warn', srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80', consumerCaps: 'full' } });
  const p = await profileTarget(start, Number(values.n), Number(values.seconds));
  if (p) printProfile(`${values.target} at N=${values.n}`, p);
  else console.log('no profile (perf missing or not permitted)');
  process.exit(0);
}
