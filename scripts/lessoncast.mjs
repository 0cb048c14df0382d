#!/usr/bin/env node
// `npx lessoncast <command>`: the operator CLI. Runs the compiled dist/cli.js when built
// (npm start builds it), else src/cli.ts through tsx (development checkouts).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = path.join(root, 'dist', 'cli.js');
const args = existsSync(built)
  ? [built]
  : [createRequire(import.meta.url).resolve('tsx/cli'), path.join(root, 'src', 'cli.ts')];
const r = spawnSync(process.execPath, [...args, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
