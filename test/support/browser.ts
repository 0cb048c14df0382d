/**
 * Headless Chromium (Debian's, never a downloaded one) driven by playwright-core,
 * with a fake camera and microphone, for tests of the web pages.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = path.join(root, 'test-artifacts');

export const CHROMIUM = process.env['LESSONCAST_CHROMIUM'] ?? '/usr/bin/chromium';

/** Flags known to work headless as root in this environment (see ENVIRONMENT notes). */
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  // Hidden or background tabs must keep decoding: every page here is "in the background".
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/** Builds web/dist from the current sources (about a second). */
export function buildWeb(): void {
  execFileSync(process.execPath, [path.join(root, 'scripts', 'build-web.mjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
}

/**
 * `env` replaces the browser's environment, e.g. a HOME whose NSS database trusts a test CA.
 * `executablePath` may be a wrapper that runs Chromium elsewhere (inside a network namespace);
 * `args` are flags besides the ones above.
 */
export async function launchBrowser(env?: NodeJS.ProcessEnv, options: { executablePath?: string; args?: string[] } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: options.executablePath ?? CHROMIUM,
    headless: true,
    args: [...FLAGS, ...(options.args ?? [])],
    ...(env ? { env } : {}),
  });
}

export interface OpenedPage {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors, for a failing test's log. */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A page in its own context (its own sessionStorage, as on its own machine). `prepare` runs on the
 * context before the page loads (init scripts).
 */
export async function openPage(
  browser: Browser,
  name: string,
  url: string,
  viewport = { width: 1280, height: 800 },
  prepare?: (context: BrowserContext) => Promise<void>,
): Promise<OpenedPage> {
  const context = await browser.newContext({ viewport, locale: 'en-GB' });
  await context.grantPermissions(['camera', 'microphone'], { origin: new URL(url).origin });
  await prepare?.(context);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${name} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${name} pageerror: ${e.message}`));
  await page.goto(url);
  return { name, context, page, errors, close: () => context.close() };
}

/**
 * For a test file: the web built, a server (`start`) and Chromium before its tests, and at its end
 * every page opened with `page()`, the browser and the server closed, in that order.
 */
export function pagesWithServer<S extends { close(): Promise<void> }>(
  tap: { before(fn: () => Promise<void>): void; teardown(fn: () => Promise<void>): void },
  start: () => Promise<S>,
): { server(): S; page(name: string, url: string): Promise<OpenedPage>; opened: OpenedPage[] } {
  let server: S | undefined;
  let browser: Browser | undefined;
  const opened: OpenedPage[] = [];
  tap.before(async () => {
    buildWeb();
    server = await start();
    browser = await launchBrowser();
  });
  tap.teardown(async () => {
    for (const p of opened) await p.close().catch(() => undefined);
    await browser?.close();
    await server?.close();
  });
  return {
    server: () => server!,
    page: async (name, url) => {
      const p = await openPage(browser!, name, url);
      opened.push(p);
      return p;
    },
    opened,
  };
}

export async function screenshot(p: OpenedPage | Page, file: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const target = path.join(ARTIFACTS, file);
  await ('page' in p ? p.page : p).screenshot({ path: target });
  return target;
}

/** Polls a function in the page until it returns a truthy value; resolves it, or undefined after the timeout. */
export async function pollPage<T, A = undefined>(
  page: Page,
  fn: (arg: A) => T | Promise<T>,
  timeoutMs = 20_000,
  intervalMs = 250,
  arg?: A,
): Promise<Awaited<T> | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page
      .evaluate<Awaited<T>, unknown>(fn as (a: unknown) => Awaited<T> | Promise<Awaited<T>>, arg)
      .catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Waits for a selector; true when it appeared in time. */
export async function appears(page: Page, selector: string, timeoutMs = 20_000): Promise<boolean> {
  try {
    await page.waitForSelector(selector, { state: 'visible', timeout: timeoutMs });
    return true;
  } catch {
    return false;
  }
}

/** What the pages expose on window.lessoncast (see web/src/lib/shell.ts). */
export interface InboundStat {
  producerId: string;
  participantId: string;
  source: string;
  kind: 'audio' | 'video';
  bytesReceived: number;
  framesDecoded: number;
  frameWidth: number;
}

export function inboundStats(page: Page): Promise<InboundStat[]> {
  return page.evaluate(async () => {
    const d = (window as unknown as { lessoncast?: { inboundStats?: () => Promise<InboundStat[]> } }).lessoncast;
    return d?.inboundStats ? await d.inboundStats() : [];
  });
}

export function diagnostics<T>(page: Page, name: string, ...args: unknown[]): Promise<T | undefined> {
  return page.evaluate(
    async ([n, a]) => {
      const d = (window as unknown as { lessoncast?: Record<string, (...x: unknown[]) => unknown> }).lessoncast;
      const f = d?.[n];
      return typeof f === 'function' ? ((await f(...a)) as T) : undefined;
    },
    [name, args] as const,
  );
}

/**
 * CPU seconds used so far by this process's descendants, grouped by command name
 * (chromium, mediasoup-worke[r], ffmpeg), from /proc. Exited processes are not counted,
 * so take differences over a phase during which they all run.
 */
export function descendantCpuSeconds(rootPid = process.pid): Record<string, number> {
  const ticks = 100; // USER_HZ on Linux
  const parent = new Map<number, number>();
  const info = new Map<number, { comm: string; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] = state, [1] = ppid, [11] = utime, [12] = stime
      parent.set(Number(entry), Number(fields[1]));
      info.set(Number(entry), { comm, cpu: (Number(fields[11]) + Number(fields[12])) / ticks });
    } catch {
      /* the process exited meanwhile */
    }
  }
  const isDescendant = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 64; p = parent.get(p), hops++) if (p === rootPid) return true;
    return false;
  };
  const out: Record<string, number> = {};
  for (const [pid, { comm, cpu }] of info) if (isDescendant(pid)) out[comm] = (out[comm] ?? 0) + cpu;
  return out;
}
