import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export type Mediasoup = typeof import('mediasoup');

/**
 * Where the mediasoup-worker binary comes from, in order: the config's
 * `media.workerBin`, `MEDIASOUP_WORKER_BIN`, our offline build cache
 * (scripts/build-worker.sh: the build of the checkout's current recipe, else
 * the newest of this mediasoup version), then mediasoup's own (prebuilt
 * download).
 */
export function resolveWorkerBin(configured: string, env: NodeJS.ProcessEnv = process.env): { path: string; source: string } {
  if (configured) return { path: path.resolve(configured), source: 'config media.workerBin' };
  if (env['MEDIASOUP_WORKER_BIN']) return { path: env['MEDIASOUP_WORKER_BIN'], source: 'MEDIASOUP_WORKER_BIN' };
  const cached = currentRecipeWorker(env) ?? newestCachedWorker(mediasoupVersion(), env);
  if (cached) return { path: cached, source: 'offline build cache' };
  return { path: path.join(mediasoupDir(), 'worker', 'out', 'Release', 'mediasoup-worker'), source: 'mediasoup package' };
}

/** Bench only (bench/versions.ts): LESSONCAST_BENCH_MEDIASOUP_DIR = another mediasoup package folder to load instead of node_modules' (e.g. the previous release). */
const benchMediasoupDir = (): string | undefined => process.env['LESSONCAST_BENCH_MEDIASOUP_DIR'] || undefined;

/** mediasoup's package folder (its package.json is not exported; its main is node/lib/index.js). */
function mediasoupDir(): string {
  const bench = benchMediasoupDir();
  if (bench) return path.resolve(bench);
  return path.resolve(path.dirname(createRequire(import.meta.url).resolve('mediasoup')), '..', '..');
}

export function mediasoupVersion(): string {
  return (JSON.parse(readFileSync(path.join(mediasoupDir(), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The binary scripts/build-worker.sh builds for this checkout, if it is in the
 * cache. The benches also cache variant builds (e.g. on Debian's NSS libsrtp),
 * so "newest" alone could pick one of those.
 */
function currentRecipeWorker(env: NodeJS.ProcessEnv): string | undefined {
  const script = path.join(mediasoupDir(), '..', '..', 'scripts', 'build-worker.sh');
  if (!existsSync(script)) return undefined;
  // The variant switches must not leak in from the environment: this asks for the default build.
  const { LESSONCAST_WORKER_SRTP: _srtp, ...rest } = env;
  const result = spawnSync('bash', [script, '--print-path'], { env: rest, encoding: 'utf8', timeout: 10_000 });
  const bin = result.status === 0 ? result.stdout.trim().split('\n').pop() : undefined;
  return bin && existsSync(bin) ? bin : undefined;
}

/** The build cache holds `<version>-<recipe hash>/mediasoup-worker`; take the newest of this version. */
function newestCachedWorker(version: string, env: NodeJS.ProcessEnv): string | undefined {
  const root = path.join(env['LESSONCAST_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'lessoncast'), 'mediasoup-worker');
  if (!existsSync(root)) return undefined;
  const candidates = readdirSync(root)
    .filter((d) => d === version || d.startsWith(`${version}-`))
    .map((d) => path.join(root, d, 'mediasoup-worker'))
    .filter((f) => existsSync(f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return candidates[0];
}

let loaded: Promise<Mediasoup> | undefined;

/**
 * mediasoup reads MEDIASOUP_WORKER_BIN once, when its module is first loaded,
 * so the binary is chosen here and mediasoup is imported only afterwards.
 */
export function loadMediasoup(workerBin: string): Promise<Mediasoup> {
  if (!loaded) {
    if (!existsSync(workerBin)) {
      throw new Error(
        `mediasoup-worker not found at ${workerBin}; run "bash scripts/build-worker.sh" (offline build) or "npm ci" with internet access`,
      );
    }
    process.env['MEDIASOUP_WORKER_BIN'] = workerBin;
    const bench = benchMediasoupDir();
    const main = bench && (JSON.parse(readFileSync(path.join(mediasoupDir(), 'package.json'), 'utf8')) as { main: string }).main;
    loaded = main ? (import(pathToFileURL(path.join(mediasoupDir(), main)).href) as Promise<Mediasoup>) : import('mediasoup');
  }
  return loaded;
}
