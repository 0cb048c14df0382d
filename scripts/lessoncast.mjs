#!/usr/bin/env node
// `npx lessoncast <command>`: the operator CLI. Runs the compiled dist/cli.js (npm run build,
// which npm start runs), as the server runs dist/main.js: no compiler at run time.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
if (!existsSync(built)) {
  console.error(`lessoncast is not built (${built} is missing): run "npm run build" in ${root} (npm start does it too)`);
  process.exit(1);
}
const r = spawnSync(process.execPath, [built, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
