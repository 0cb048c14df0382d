import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The newest file under a folder and its modification time. */
function newest(dir: string): { file: string; mtimeMs: number } {
  let best = { file: dir, mtimeMs: 0 };
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const { mtimeMs } = statSync(file);
    if (mtimeMs > best.mtimeMs) best = { file, mtimeMs };
  }
  return best;
}

/**
 * dist/<name>.js, which process tests start as production does (node dist/main.js). Refuses a
 * missing build, or one older than a source file, rather than test other code than src/ holds.
 */
export function builtEntry(name: 'main' | 'cli'): string {
  const entry = path.join(root, 'dist', `${name}.js`);
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run "npm run build" (npm test builds it)`);
  const source = newest(path.join(root, 'src'));
  if (source.mtimeMs > statSync(entry).mtimeMs) {
    throw new Error(`dist/ is older than ${path.relative(root, source.file)}: run "npm run build" (npm test builds it)`);
  }
  return entry;
}
