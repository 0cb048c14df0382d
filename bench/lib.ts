import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { TokenService } from '../src/auth/tokens.js';

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
  const cols = Object.keys(rows[0]!);
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
  wsUrl: string;
  child: ChildProcess;
  tokens: TokenService;
  token(role: 'admin' | 'instructor' | 'classroom' | 'monitor', id: string, lessons?: '*' | string[]): Promise<string>;
  stop(): Promise<void>;
}

/** Starts lessoncast as its own process (src/main.ts), so the load generator does not share its event loop. */
export async function startServer(env: Record<string, string> = {}): Promise<BenchServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-bench-'));
  const secret = randomBytes(32).toString('hex');
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src', 'main.ts')], {
    cwd: dir,
    env: {
      ...process.env,
      LESSONCAST_CONFIG_DIR: path.join(root, 'config'),
      LESSONCAST_HTTP_PORT: '0',
      LESSONCAST_MEDIA_WEB_RTC_SERVER_PORT: '0',
      LESSONCAST_LOG_LEVEL: 'warn',
      LESSONCAST_RECORDING_DIR: path.join(dir, 'recordings'),
      LESSONCAST_AUTH_TOKEN_SECRET: secret,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 30000);
    child.stdout!.on('data', () => {
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
    wsUrl: url.replace(/^http/, 'ws') + '/ws',
    child,
    tokens,
    token: async (role, id, lessons = '*') => (await tokens.mint({ role, id, lessons })).token,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

export async function createLesson(s: BenchServer, instructorId = 'teacher-1'): Promise<string> {
  const res = await fetch(`${s.url}/api/lessons`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await s.token('admin', 'bench')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: 'bench', instructorId, record: false }),
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
