// Loaded with --import (through NODE_OPTIONS) in bench/versions.ts's children: the specifier
// 'mediasoup' resolves to BENCH_MEDIASOUP_DIR, another release's package folder, so lessoncast's
// own code runs on that release unchanged, in the child and in any server it spawns (they
// inherit NODE_OPTIONS). Plain JavaScript: it must load before tsx does.
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const dir = process.env.BENCH_MEDIASOUP_DIR;
if (dir) {
  const { main } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const url = pathToFileURL(path.resolve(dir, main)).href;
  registerHooks({
    resolve: (specifier, context, nextResolve) => (specifier === 'mediasoup' ? { url, shortCircuit: true } : nextResolve(specifier, context)),
  });
}
