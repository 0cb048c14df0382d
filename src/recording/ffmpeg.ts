import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

/** Where the ffmpeg binary was found, and through which setting. */
export interface FfmpegLocation {
  path: string;
  source: 'config recording.ffmpegPath' | 'FFMPEG_PATH' | 'ffmpeg-static' | 'PATH';
  /** First line of `ffmpeg -version`. */
  version: string;
  /** Configured candidates (config, FFMPEG_PATH) that did not work: worth a warning. */
  skipped: Array<{ source: string; detail: string }>;
}

export class FfmpegNotFoundError extends Error {
  constructor(readonly tried: Array<{ source: string; detail: string }>) {
    super(
      'no working ffmpeg found; tried, in order:\n' +
        tried.map((t) => `  - ${t.source}: ${t.detail}`).join('\n') +
        '\nSet recording.ffmpegPath (LESSONCAST_RECORDING_FFMPEG_PATH) or FFMPEG_PATH, or install ffmpeg (apt-get install ffmpeg).',
    );
    this.name = 'FfmpegNotFoundError';
  }
}

export interface LocateOptions {
  env?: NodeJS.ProcessEnv;
  /** Loads the optional `ffmpeg-static` package; injectable for tests. Resolves to its binary path or null. */
  loadFfmpegStatic?: () => Promise<string | null>;
  /** Checks a candidate; resolves to its version line or rejects. Injectable for tests. */
  probe?: (binary: string) => Promise<string>;
}

/**
 * Resolves the ffmpeg binary in order: config `recording.ffmpegPath`, env
 * `FFMPEG_PATH`, the optional `ffmpeg-static` package (often absent: its
 * install downloads from GitHub), then `ffmpeg` on PATH. Each candidate must
 * actually run (`-version`); the error names every place that was tried.
 */
export async function locateFfmpeg(configured: string, opts: LocateOptions = {}): Promise<FfmpegLocation> {
  const env = opts.env ?? process.env;
  const probe = opts.probe ?? probeFfmpeg;
  const tried: Array<{ source: string; detail: string }> = [];
  const attempt = async (
    source: FfmpegLocation['source'],
    binary: string | null | undefined,
    missing: string,
  ): Promise<FfmpegLocation | undefined> => {
    if (!binary) {
      tried.push({ source, detail: missing });
      return undefined;
    }
    try {
      return {
        path: binary,
        source,
        version: await probe(binary),
        skipped: tried.filter((t) => (t.source === 'config recording.ffmpegPath' || t.source === 'FFMPEG_PATH') && t.detail !== 'not set'),
      };
    } catch (err) {
      tried.push({ source, detail: `${binary}: ${(err as Error).message}` });
      return undefined;
    }
  };

  const found =
    (await attempt('config recording.ffmpegPath', configured ? path.resolve(configured) : null, 'not set')) ??
    (await attempt('FFMPEG_PATH', env['FFMPEG_PATH'] || null, 'not set')) ??
    (await attempt('ffmpeg-static', await (opts.loadFfmpegStatic ?? loadFfmpegStatic)(), 'package not installed or has no binary')) ??
    (await attempt('PATH', findOnPath('ffmpeg', env), `no ffmpeg in PATH (${env['PATH'] ?? ''})`));
  if (!found) throw new FfmpegNotFoundError(tried);
  return found;
}

/** `ffmpeg-static` is an optional dependency: import it only if present, and only trust a binary that exists. */
async function loadFfmpegStatic(): Promise<string | null> {
  try {
    const pkg = 'ffmpeg-static';
    const mod = (await import(pkg)) as { default?: unknown };
    const binary = typeof mod.default === 'string' ? mod.default : null;
    return binary && existsSync(binary) ? binary : null;
  } catch {
    return null;
  }
}

export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

function probeFfmpeg(binary: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, ['-hide_banner', '-version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (out += d));
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const first = out.split('\n')[0] ?? '';
      if (code === 0 && /ffmpeg version/i.test(first)) resolve(first.trim());
      else reject(new Error(`"-version" failed (${signal ?? `exit ${code}`})`));
    });
  });
}
