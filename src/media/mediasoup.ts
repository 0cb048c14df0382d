import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as mediasoupModule from 'mediasoup';

export type Mediasoup = typeof mediasoupModule;

/** The checkout this module belongs to (src/media/ and dist/media/ both sit two levels down). */
const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Where setup (scripts/setup.sh, run by npm start, npm test and npm run setup) records the
 * worker it built, so that a starting server only reads a file and never runs the build script.
 */
export const provisionedWorkerFile = path.join(packageRoot, '.lessoncast', 'worker-bin');

/**
 * Where the mediasoup-worker binary comes from, in order: the config's
 * `media.workerBin`, `MEDIASOUP_WORKER_BIN`, the worker setup recorded in
 * `.lessoncast/worker-bin` (the offline build), then mediasoup's own
 * (prebuilt download).
 */
export function resolveWorkerBin(
  configured: string,
  env: NodeJS.ProcessEnv = process.env,
  provisioned: string = provisionedWorkerFile,
): { path: string; source: string } {
  if (configured) return { path: path.resolve(configured), source: 'config media.workerBin' };
  if (env['MEDIASOUP_WORKER_BIN']) return { path: env['MEDIASOUP_WORKER_BIN'], source: 'MEDIASOUP_WORKER_BIN' };
  const recorded = existsSync(provisioned) ? readFileSync(provisioned, 'utf8').trim() : '';
  if (recorded) return { path: recorded, source: provisioned };
  return { path: path.join(mediasoupDir(), 'worker', 'out', 'Release', 'mediasoup-worker'), source: 'mediasoup package' };
}

/** mediasoup's package folder (its package.json is not exported; its main is node/lib/index.js). */
function mediasoupDir(): string {
  return path.resolve(path.dirname(createRequire(import.meta.url).resolve('mediasoup')), '..', '..');
}

export function mediasoupVersion(): string {
  return (JSON.parse(readFileSync(path.join(mediasoupDir(), 'package.json'), 'utf8')) as { version: string }).version;
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
        `mediasoup-worker not found at ${workerBin}; run "npm run setup" (builds it offline and records it in .lessoncast/worker-bin), ` +
          'set MEDIASOUP_WORKER_BIN, or use LESSONCAST_WORKER=prebuilt npm run setup with internet access',
      );
    }
    process.env['MEDIASOUP_WORKER_BIN'] = workerBin;
    loaded = import('mediasoup');
  }
  return loaded;
}
