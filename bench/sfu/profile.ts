/**
 * Where an SFU's CPU goes while it forwards: `perf record` with the software
 * cpu-clock event (this VM exposes no hardware counters, so `perf stat -e
 * instructions` says "not supported", but timer sampling works) on the SFU
 * process under a fixed fan-out load, then the share of samples per shared
 * object (kernel, libsrtp2/NSS/libcrypto crypto, the SFU itself, libc …) and
 * per symbol.
 *
 *   npx tsx bench/sfu/profile.ts [--target bare|janus] [--n 400] [--seconds 8]
 *
 * With --split (issue 18): where one forwarded packet's worker CPU goes, the minimal profile and
 * the browser classroom side by side (bench/fanout.ts's outputs and targets: lessoncast or bare
 * mediasoup): worker CPU per packet from a window without perf, then `perf record --call-graph
 * dwarf` split into BWE and pacing, RTCP, SRTP, send syscall, stats and the rest
 * (bench/sfu/packetSplit.ts), each in µs per packet out.
 *
 *   npx tsx bench/sfu/profile.ts --split [--target lessoncast|bare] [--n 200] [--real 16] [--seconds 8]
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { FanoutTarget } from '../fanout/target.js';
import {
  browserOutputs,
  defaultFanoutOptions,
  minimalOutputs,
  readSent,
  startTarget,
  type ProfileName,
  type TargetName,
} from '../fanout.js';
import { RtpSampleSocket, Sink as FanoutSink } from '../fanout/probes.js';
import { sendRates } from '../fanout/target.js';
import { BENCH_NICE, cpuSeconds, pinProcess, saveResult, setNice, sleep } from '../lib.js';
import { parsePerfScript, splitShares, type SplitKind } from './packetSplit.js';
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
  /** Samples in hash-table code, by implementation (see hashTableShares); a floor, since inlined lookups count as their caller's. */
  hashTables: ProfileShare[];
  /**
   * With `sourceFiles` and a binary with debug info: samples by the source file of the sampled
   * instruction, so code inlined from a header counts as that header's (top 40), and the
   * hash-table headers' share (see hashTableSourceShares): inlined lookups included.
   */
  bySourceFile?: ProfileShare[];
  hashTablesInlined?: ProfileShare[];
  /** With `sourceFiles`: samples in bandwidth-estimation sources (see bweSourceShare), inlined code included. */
  bweInlined?: number;
}

export function perfWorks(): boolean {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `perf record -e cpu-clock` (with `args`) on a process for `seconds` into a temporary file,
 * hands the file to `read`, then removes it; undefined if perf is missing or fails.
 */
async function withPerfRecord<T>(pid: number, seconds: number, args: string[], read: (data: string) => T): Promise<T | undefined> {
  if (!perfWorks()) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-perf-'));
  const data = path.join(dir, 'perf.data');
  try {
    const rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', ...args, '-p', String(pid), '-o', data, '--', 'sleep', String(seconds)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    rec.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => rec.once('exit', r));
    if (code !== 0 || !existsSync(data)) {
      console.log(`perf record failed (${code}): ${err.trim()}`);
      return undefined;
    }
    return read(data);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Samples a running process for `seconds` and summarizes; undefined if perf is missing or records nothing. */
export function profilePid(pid: number, seconds: number, opts: { sourceFiles?: boolean } = {}): Promise<Profile | undefined> {
  return withPerfRecord(pid, seconds, ['-F', '1999'], (data) => {
    const report = (sort: string, limit = '0', extra: string[] = []): ProfileShare[] =>
      execFileSync('perf', ['report', '-i', data, '--stdio', '--no-children', '--sort', sort, '--percent-limit', limit, ...extra], {
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
    const counted = execFileSync('perf', ['report', '-i', data, '--stdio', '-n', '--sort', 'pid'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const samples = counted
      .split('\n')
      .map((l) => /^\s+[\d.]+%\s+(\d+)/.exec(l)?.[1])
      .reduce((a, x) => a + (x ? Number(x) : 0), 0);
    const symbols = report('dso,sym');
    const profile: Profile = {
      samples,
      seconds,
      byDso: report('dso', '0.3'),
      bySymbol: symbols.slice(0, 40),
      byKind: kinds(symbols),
      hashTables: hashTableShares(symbols),
    };
    if (opts.sourceFiles) {
      // perf resolves each sampled address with addr2line: the file of the innermost inlined function.
      const files = report('srcfile', '0', ['--full-source-path']);
      profile.bySourceFile = files.slice(0, 40);
      profile.hashTablesInlined = hashTableSourceShares(files, symbols);
      profile.bweInlined = bweSourceShare(files);
    }
    return profile;
  });
}

function kinds(rows: ProfileShare[]): ProfileShare[] {
  const kindOf = (name: string): string => {
    const dso = name.split(' ')[0] ?? '';
    if (dso.includes('kernel') || name.includes('[k]')) return 'kernel (syscalls, UDP/IP, scheduler)';
    // libsrtp linked statically into mediasoup-worker shows as srtp_* symbols of the worker.
    if (/libsrtp|libnss|libfreebl|libsoftokn|libcrypto|libssl|libnspr|aes|gcm|\bsrtp_|sha1/i.test(name))
      return 'SRTP crypto (libsrtp2 → NSS / OpenSSL)';
    if (/mediasoup-worker|janus/i.test(dso)) return 'SFU code';
    if (/libc\.so|libstdc\+\+|ld-linux|libm\.so|libglib|libgobject|libnice|libuv|libabsl/i.test(dso))
      return 'libc, C++ runtime, event loop libraries';
    return 'other';
  };
  const sums = new Map<string, number>();
  for (const r of rows) sums.set(kindOf(r.name), (sums.get(kindOf(r.name)) ?? 0) + r.percent);
  return [...sums].map(([name, percent]) => ({ name, percent })).sort((a, b) => b.percent - a.percent);
}

/**
 * Hash-table code by implementation, as a share of all samples:
 * - libstdc++'s std::unordered_map/set (std::_Hashtable and its helpers, std::_Hash_bytes for
 *   string keys): mediasoup ≤ 3.19's own std maps, and every ankerl::unordered_dense map of
 *   mediasoup ≥ 3.20 in our build, whose compatibility header
 *   (scripts/worker/unordered-dense/include/ankerl/unordered_dense.h) maps it onto them;
 * - that header's own hash (ankerl::unordered_dense::hash, detail::Mix), when not inlined;
 * - abseil's flat_hash_map/set and absl::Hash (mediasoup ≤ 3.19, Debian's libabsl).
 * Lookups and iterations inlined into their callers are counted as the caller's samples
 * (perf attributes by symbol), so this is a floor of what hash tables cost.
 */
export function hashTableShares(rows: ProfileShare[]): ProfileShare[] {
  // By the function's own name (template arguments aside), so each symbol counts in one group:
  // std::_Hashtable<…, ankerl::unordered_dense::hash<…>> is libstdc++'s table, not our hash.
  const fn = (r: ProfileShare): string => r.name.replace(/^.*?\[[.k]\]\s*/, '');
  const groups: Array<[string, (r: ProfileShare) => boolean]> = [
    [
      'std::unordered_map/set (libstdc++ std::_Hashtable, std::_Hash_bytes)',
      (r) =>
        /^std::(_Hashtable|__detail::_(Map_base|Hashtable|Hash|Insert|Rehash|Prime_rehash|Mod_range|Node|Local_iterator|Equality)|unordered_(map|set|multimap|multiset)|_Hash_bytes|_Hash_impl)/.test(
          fn(r),
        ),
    ],
    ['ankerl::unordered_dense compat hash (our header)', (r) => /^ankerl::unordered_dense/.test(fn(r))],
    ['abseil flat_hash_map/set, absl::Hash', (r) => /^absl::/.test(fn(r)) || r.name.startsWith('libabsl')],
  ];
  const out = groups.map(([name, match]) => ({ name, percent: rows.filter(match).reduce((a, r) => a + r.percent, 0) }));
  return [...out, { name: 'all hash-table code above', percent: out.reduce((a, r) => a + r.percent, 0) }];
}

/**
 * The same groups as hashTableShares, by the source file of each sampled instruction (needs
 * the profiled binary's debug info): libstdc++'s bits/hashtable.h, hashtable_policy.h,
 * unordered_map.h, unordered_set.h and functional_hash.h; our compatibility header
 * ankerl/unordered_dense.h; abseil's absl/container and absl/hash headers. Inlined code counts
 * here, not as its caller's. The shared libraries' own hash-table functions (libstdc++'s
 * rehash policy and string hash, Debian's libabsl_*.so), which carry no line tables, are added
 * by symbol and shared object.
 */
export function hashTableSourceShares(files: ProfileShare[], symbols: ProfileShare[]): ProfileShare[] {
  const groups: Array<[string, RegExp, (sym: ProfileShare) => boolean]> = [
    [
      'std::unordered_map/set (bits/hashtable*.h, unordered_*.h, functional_hash.h; libstdc++.so)',
      /bits\/(hashtable|hashtable_policy|unordered_map|unordered_set|functional_hash)\.h/,
      (r) => r.name.startsWith('libstdc++') && /_Hashtable|_Prime_rehash|_Hash_bytes|_Hash_impl/.test(r.name),
    ],
    ['ankerl::unordered_dense compat header (our unordered_dense.h)', /ankerl\/unordered_dense\.h/, () => false],
    ['abseil (absl/container, absl/hash headers; libabsl_*.so)', /absl\/(container|hash)\//, (r) => r.name.startsWith('libabsl')],
  ];
  const sum = (rows: ProfileShare[]) => rows.reduce((a, r) => a + r.percent, 0);
  const out = groups.map(([name, re, lib]) => ({ name, percent: sum(files.filter((r) => re.test(r.name))) + sum(symbols.filter(lib)) }));
  return [...out, { name: 'all hash-table code above', percent: sum(out) }];
}

/**
 * Samples in mediasoup's bandwidth estimation, by source file: 3.32's worker/{src,include}/RTC/BWE/
 * (the sender congestion controller every transport runs with enableBwe, its packet history,
 * pacing and estimators); 3.19's TransportCongestionControlClient/Server.cpp and the libwebrtc
 * code under worker/deps/libwebrtc/.
 */
export function bweSourceShare(files: ProfileShare[]): number {
  return files
    .filter((r) => /\/RTC\/BWE\/|TransportCongestionControl(Client|Server)\.[ch]pp|\/deps\/libwebrtc\//.test(r.name))
    .reduce((a, r) => a + r.percent, 0);
}

/** Whether an ELF file carries DWARF line tables (perf can then attribute samples to source files). */
export function hasDebugInfo(file: string): boolean {
  try {
    return /\.debug_line\b/.test(execFileSync('readelf', ['-S', '-W', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  } catch {
    return false;
  }
}

export function printProfile(label: string, p: Profile): void {
  console.log(`\nprofile: ${label} (${p.samples} samples over ${p.seconds} s, cpu-clock)`);
  console.log(table(p.byKind.map((k) => ({ 'kind of work': k.name, '% of SFU samples': k.percent.toFixed(1) }))));
  console.log(table(p.hashTables.map((k) => ({ 'hash tables (out-of-line symbols)': k.name, '% of SFU samples': k.percent.toFixed(2) }))));
  console.log(table(p.bySymbol.slice(0, 15).map((s) => ({ '%': s.percent.toFixed(1), 'shared object / symbol': s.name }))));
  if (p.hashTablesInlined) {
    console.log(
      table(
        p.hashTablesInlined.map((k) => ({
          'hash tables (by source file, inlined included)': k.name,
          '% of SFU samples': k.percent.toFixed(2),
        })),
      ),
    );
    console.log(table((p.bySourceFile ?? []).slice(0, 12).map((s) => ({ '%': s.percent.toFixed(1), 'source file': s.name }))));
  }
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

/** Samples a process with call chains (DWARF unwinding: the worker keeps .eh_frame) and returns each sample's frames. */
export function perfStacks(pid: number, seconds: number): Promise<string[][] | undefined> {
  return withPerfRecord(pid, seconds, ['-F', '999', '--call-graph', 'dwarf,8192'], (data) =>
    parsePerfScript(
      execFileSync('perf', ['script', '-i', data, '-F', 'comm,ip,sym,dso'], {
        encoding: 'utf8',
        maxBuffer: 1024 * 1024 * 1024,
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ),
  );
}

export interface PacketSplit {
  target: string;
  profile: ProfileName;
  n: number;
  real: number;
  /** Worker CPU (fraction of a core) and packets out per second, in a window without perf. */
  cpu: number;
  pktPerS: number;
  usPerPkt: number;
  samples: number;
  split: Array<{ kind: SplitKind; share: number; usPerPkt: number; top: Array<{ frame: string; share: number }> }>;
}

/** Starts a fan-out target with n outputs of one profile, measures its worker's CPU per packet, then splits it with perf. */
export async function packetSplit(
  name: TargetName,
  profile: ProfileName,
  n: number,
  real: number,
  seconds: number,
): Promise<PacketSplit | undefined> {
  const opts = { ...defaultFanoutOptions, realReceivers: real };
  const samples = await Promise.all(Array.from({ length: opts.samples }, (_, i) => RtpSampleSocket.open(`plain-${i}`)));
  const sink = await FanoutSink.open();
  const target = await startTarget(name, opts, profile);
  const outputs = profile === 'browser' ? browserOutputs(target, () => real) : minimalOutputs(target, samples, sink);
  try {
    await outputs.set(n);
    await sleep(4000);
    const pid = target.sfu[0]!.pid;
    const sentA = await readSent(target);
    const cpuA = cpuSeconds(pid);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const cpu = (cpuSeconds(pid) - cpuA) / ((performance.now() - t0) / 1000);
    const sentB = await readSent(target);
    const pktPerS = sentA && sentB ? sendRates(sentA, sentB).pktPerS : NaN;
    if (!(pktPerS > 0)) {
      // On a starved load-generator core the publisher can stop: there is then no packet to divide by.
      console.log(`${target.name}, ${profile}: no packet went out (the published lesson stopped); no split`);
      return undefined;
    }
    const stacks = await perfStacks(pid, seconds);
    if (!stacks) return undefined;
    const usPerPkt = (cpu * 1e6) / pktPerS;
    return {
      target: target.name,
      profile,
      n,
      real: profile === 'browser' ? Math.min(real, n) : 0,
      cpu,
      pktPerS,
      usPerPkt,
      samples: stacks.length,
      split: splitShares(stacks).map((k) => ({ ...k, usPerPkt: k.share * usPerPkt })),
    };
  } finally {
    outputs.close();
    await target.close();
    for (const s of samples) s.close();
    sink.close();
  }
}

/** The splits side by side: a row per kind of work, µs per packet out and share, one column pair per profile. */
export function splitTable(splits: PacketSplit[]): string {
  const rows: Array<Record<string, string>> = (splits[0]?.split ?? []).map((k, i) => ({
    'kind of work': k.kind,
    ...Object.fromEntries(
      splits.flatMap((s) => [
        [`${s.profile} µs/pkt`, s.split[i]!.usPerPkt.toFixed(2)],
        [`${s.profile} %`, (s.split[i]!.share * 100).toFixed(1)],
      ]),
    ),
  }));
  rows.push({
    'kind of work': 'all (worker CPU ÷ packets out)',
    ...Object.fromEntries(
      splits.flatMap((s) => [
        [`${s.profile} µs/pkt`, s.usPerPkt.toFixed(2)],
        [`${s.profile} %`, `N=${s.n}${s.real ? ` (${s.real} real)` : ''}, ${(s.cpu * 100).toFixed(0)} % CPU, ${s.samples} samples`],
      ]),
    ),
  });
  return table(rows);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      target: { type: 'string' },
      n: { type: 'string' },
      seconds: { type: 'string', default: '8' },
      split: { type: 'boolean', default: false },
      real: { type: 'string', default: String(defaultFanoutOptions.realReceivers) },
    },
  });
  setNice(process.pid, BENCH_NICE);
  pinProcess(process.pid, '1');
  if (values.split) {
    const name = (values.target ?? 'lessoncast') as TargetName;
    if (name !== 'lessoncast' && name !== 'bare') throw new Error('--split profiles lessoncast or bare');
    const n = Number(values.n ?? 200);
    const splits: PacketSplit[] = [];
    for (const profile of ['minimal', 'browser'] as const) {
      const s = await packetSplit(name, profile, n, Number(values.real), Number(values.seconds));
      if (!s) {
        console.log('no profile (perf missing or not permitted, or no packet went out)');
        process.exit(1);
      }
      splits.push(s);
    }
    console.log(`\nwhere a packet's worker CPU goes: ${splits[0]!.target}, N=${n}\n${splitTable(splits)}`);
    for (const sp of splits)
      for (const k of sp.split.filter((x) => x.share >= 0.05))
        console.log(`${sp.profile}, ${k.kind}: ${k.top.map((f) => `${f.frame} ${(f.share * 100).toFixed(1)} %`).join('; ')}`);
    console.log(`saved ${saveResult('profile-split', { splits })}`);
    process.exit(0);
  }
  values.target ??= 'bare';
  values.n ??= '400';
  const source = { width: 1280, height: 720, fps: 30, videoKbps: 1500 };
  const start =
    values.target === 'janus'
      ? () => startJanusTarget({ cpu: 0, source })
      : () =>
          startBareTarget({
            cpu: 0,
            source,
            settings: { logLevel: 'warn', srtpCryptoSuite: 'AES_CM_128_HMAC_SHA1_80', consumerCaps: 'full' },
          });
  const p = await profileTarget(start, Number(values.n), Number(values.seconds));
  if (p) printProfile(`${values.target} at N=${values.n}`, p);
  else console.log('no profile (perf missing or not permitted)');
  process.exit(0);
}
