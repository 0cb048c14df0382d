#!/usr/bin/env node
// `npx lessoncast <command>`: the operator CLI. Runs the compiled dist/cli.js when built
// (npm start builds it), else src/cli.ts through tsx (development checkouts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// mediasoup 3.32 needs Node >= 22. `npx` runs this on the system node, which may be older: say
// how to get the right one rather than fail later with an engine or syntax error.
if (Number(process.versions.node.split('.')[0]) < 22) {
  const useNode = path.join(root, 'scripts', 'use-node.sh');
  console.error(`lessoncast needs Node.js >= 22; this is ${process.version}. Run it on the Node lessoncast pins ` +
    `(fetched on first use): ${useNode} npx lessoncast ${process.argv.slice(2).join(' ')}`.trimEnd());
  process.exit(1);
}
const built = path.join(root, 'dist', 'cli.js');
const args = existsSync(built)
  ? [built]
  : [createRequire(import.meta.url).resolve('tsx/cli'), path.join(root, 'src', 'cli.ts')];
const r = spawnSync(process.execPath, [...args, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
