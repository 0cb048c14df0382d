#!/usr/bin/env node
// Builds the browser pages: one esbuild bundle per page (shared code split into chunks), each
// page's HTML (web/head.html around its body from web/static/) and the static CSS/icon, into
// web/dist/ (git-ignored; served by src/http/webRoutes.ts). Safe to run again at any time: it
// builds into a fresh folder and swaps it in. Takes about a second.
import { build } from 'esbuild';
import { cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const web = path.join(root, 'web');
const dist = path.join(web, 'dist');
const staging = path.join(web, `.dist-${process.pid}`);
/**
 * What differs between pages: the HTML file (the body in web/static/, the whole page in web/dist/),
 * the script (web/src/pages/<script>.ts) and the string that titles the browser tab.
 */
const PAGES = [
  { html: 'index.html', script: 'home', title: 'home.title' },
  { html: 'studio.html', script: 'studio', title: 'studio.title' },
  { html: 'classroom.html', script: 'classroom', title: 'classroom.title' },
  { html: 'control.html', script: 'control', title: 'control.title' },
  { html: 'archive.html', script: 'archive', title: 'archive.title' },
  { html: 'admin.html', script: 'admin', title: 'admin.title' },
];

const started = Date.now();
await rm(staging, { recursive: true, force: true });
await mkdir(path.join(staging, 'assets'), { recursive: true });
try {
  const result = await build({
    absWorkingDir: root,
    entryPoints: PAGES.map((p) => path.join(web, 'src', 'pages', `${p.script}.ts`)),
    outdir: path.join(staging, 'assets'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    // Browsers a school or ministry machine plausibly runs; all have WebRTC unified plan and MSE.
    target: ['chrome109', 'edge109', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: 'linked',
    chunkNames: 'chunk-[hash]',
    define: { 'process.env.NODE_ENV': '"production"' },
    legalComments: 'external',
    metafile: true,
    logLevel: 'warning',
  });
  await writePages(staging);
  for (const f of await readdir(path.join(web, 'static'))) {
    if (!f.endsWith('.html')) await cp(path.join(web, 'static', f), path.join(staging, 'assets', f));
  }
  await precompress(staging);
  // Swap in by renames so a running server sees either the old build or the new one.
  const old = path.join(web, `.dist-old-${process.pid}`);
  await rename(dist, old).catch(() => undefined);
  try {
    await rename(staging, dist);
  } catch (err) {
    // Another build swapped in at the same moment: theirs is as good as ours.
    if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    await rm(staging, { recursive: true, force: true });
  }
  await rm(old, { recursive: true, force: true });
  const sizes = await Promise.all(
    PAGES.map(async ({ script }) => {
      const own = (await stat(path.join(dist, 'assets', `${script}.js`))).size;
      return `${script} ${(own / 1024).toFixed(0)} KB`;
    }),
  );
  const total = Object.values(result.metafile.outputs).reduce((n, o) => n + (o.bytes ?? 0), 0);
  console.error(`[lessoncast] web pages built into web/dist in ${Date.now() - started} ms (${sizes.join(', ')}; all JS ${(total / 1024).toFixed(0)} KB)`);
} catch (err) {
  await rm(staging, { recursive: true, force: true });
  console.error('[lessoncast] web build failed');
  throw err;
}

/** Each page: the one shared head (web/head.html) with the page's title, script and body filled in. */
async function writePages(dir) {
  const head = await readFile(path.join(web, 'head.html'), 'utf8');
  const strings = JSON.parse(await readFile(path.join(web, 'src', 'i18n', 'en.json'), 'utf8'));
  for (const page of PAGES) {
    // A wrong key would show the raw key as the tab's title: fail the build instead.
    if (!(page.title in strings)) throw new Error(`${page.html}: no string ${page.title} in web/src/i18n/en.json`);
    const body = (await readFile(path.join(web, 'static', page.html), 'utf8')).trimEnd();
    const slots = { title: page.title, script: page.script, body };
    // A function, not a string, as replacement: a body's "$&" or "$1" stays as written.
    await writeFile(path.join(dir, page.html), head.replace(/\{\{(title|script|body)\}\}/g, (_m, slot) => slots[slot]));
  }
}

/** .br and .gz beside each text asset, served by @fastify/static's preCompressed option. */
async function precompress(dir) {
  const brotli = promisify(zlib.brotliCompress);
  const gzip = promisify(zlib.gzip);
  const files = (await readdir(dir, { recursive: true })).filter((f) => /\.(js|css|svg)$/.test(f));
  await Promise.all(
    files.map(async (f) => {
      const data = await readFile(path.join(dir, f));
      await writeFile(path.join(dir, `${f}.br`), await brotli(data, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 9 } }));
      await writeFile(path.join(dir, `${f}.gz`), await gzip(data, { level: 9 }));
    }),
  );
}
