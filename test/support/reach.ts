/**
 * The reachability world, shared by test/reachability.test.ts and bench/reach.ts: the namespace
 * topology of test/support/netns.ts with, in the data centre, lessoncast (dist/main.js, TLS on
 * 198.18.0.10:443, media on the same address: UDP and ICE-TCP) and a coturn of our own (UDP/TCP
 * 3478 and TURN/TLS 443 on 198.18.0.11), a test CA from scripts/make-ca.sh, and a Chromium per
 * site that trusts that CA. Pages are opened at https://lessoncast.test (mapped to 198.18.0.10 in
 * each browser). Everything lives under one temporary folder and the `lcr<pid>-*` namespaces;
 * close() removes both, also after a failure half-way.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { openPage, pollPage, type OpenedPage } from './browser.js';
import { builtEntry } from './dist.js';
import { ADDR, buildTopology, processAlive, removeStaleTopologies, type SchoolSite, type Site, type Topology } from './netns.js';
import { instrumentPage, launchSiteBrowser } from './siteBrowser.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const HOST = 'lessoncast.test';
export const ORIGIN = `https://${HOST}`;
/** ICE-TCP apart from UDP (media.iceTcp.port): a port schools with TCP but no UDP reach. */
export const MEDIA_UDP_PORT = 44000;
export const ICE_TCP_PORT = 44001;
export const TURN_REALM = HOST;
/** The TURN URLs lessoncast hands out: UDP and TCP on 3478, TLS on 443 (coturn's own address). */
export const TURN_URLS = [
  `turn:${ADDR.coturn}:3478?transport=udp`,
  `turn:${ADDR.coturn}:3478?transport=tcp`,
  `turns:${ADDR.coturn}:443?transport=tcp`,
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A long-running process inside a namespace whose output goes to a log file. */
interface Daemon {
  name: string;
  child: ChildProcess;
  logFile: string;
  log(): string;
  stop(): Promise<void>;
}

function daemon(topo: Topology, site: Site, name: string, dir: string, cmd: string, args: string[], env: NodeJS.ProcessEnv): Daemon {
  const logFile = path.join(dir, `${name}.log`);
  const out = createWriteStream(logFile);
  const child = topo.spawn(site, cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return {
    name,
    child,
    logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const done = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!done) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Resolves once `host:port` accepts TCP from inside `site` (polled by a node inside the namespace). */
function waitForTcp(topo: Topology, site: Site, host: string, port: number, what: Daemon, timeoutMs: number): Promise<void> {
  const probe = `const s=require('net').connect(${port},'${host}');s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))`;
  const deadline = Date.now() + timeoutMs;
  return (async () => {
    for (;;) {
      if (what.child.exitCode !== null) throw new Error(`${what.name} exited (${what.child.exitCode}):\n${what.log().slice(-3000)}`);
      try {
        topo.exec(site, process.execPath, ['-e', probe]);
        return;
      } catch {
        if (Date.now() > deadline)
          throw new Error(`${what.name} does not listen on ${host}:${port} after ${timeoutMs} ms:\n${what.log().slice(-3000)}`);
        await sleep(200);
      }
    }
  })();
}

/** coturn's configuration for this world, from lessoncast's own generator (`lessoncast coturn-config`). */
function coturnConfig(dir: string, tls: { cert: string; key: string }): string {
  return execFileSync(
    process.execPath,
    [
      builtEntry('cli'),
      'coturn-config',
      '--listening-ip',
      ADDR.coturn,
      '--relay-ip',
      ADDR.coturn,
      '--tls-listening-port',
      '443',
      '--cert',
      tls.cert,
      '--pkey',
      tls.key,
      '--allowed-peer-ip',
      ADDR.lessoncast,
      '--log',
      'stdout',
    ],
    { encoding: 'utf8', env: { ...process.env, ...lessoncastEnv(dir) } },
  ).concat(
    // Run files of this world only (coturn's defaults are under /var).
    `pidfile=${path.join(dir, 'turnserver.pid')}\nuserdb=${path.join(dir, 'turndb')}\n`,
  );
}

/** The environment that points lessoncast (server and CLI) at this world's configuration. */
function lessoncastEnv(dir: string): NodeJS.ProcessEnv {
  return { LESSONCAST_CONFIG_DIR: path.join(dir, 'config'), NODE_ENV: 'reach' };
}

export interface SchoolLinks {
  lessonId: string;
  studio: string;
  classroom: Record<SchoolSite, string>;
}

export interface ReachWorld {
  topo: Topology;
  dir: string;
  caFile: string;
  lessoncast: Daemon;
  coturn: Daemon;
  /** The browser of a site (launched on first use). */
  browser(site: Site): Promise<Browser>;
  /** A page in its own context of the site's browser, with its RTCPeerConnections kept for getStats. */
  open(site: Site, name: string, url: string): Promise<OpenedPage>;
  /** REST as an admin, from the STEAM centre's browser (the test's own namespace has no route here). */
  api<T>(method: string, route: string, body?: unknown): Promise<T>;
  /** A lesson and its links: the instructor and one classroom per school. */
  createLesson(title: string, record: boolean): Promise<SchoolLinks>;
  close(): Promise<void>;
}

/** The run folders (`$TMPDIR/lcr<pid>-*`) of runs whose process is gone. */
function removeStaleFolders(): void {
  for (const entry of readdirSync(tmpdir())) {
    const pid = /^lcr(\d+)-/.exec(entry)?.[1];
    if (pid && Number(pid) !== process.pid && !processAlive(Number(pid)))
      rmSync(path.join(tmpdir(), entry), { recursive: true, force: true });
  }
}

export interface ReachWorldOptions {
  /** Settings under `media` on top of the world's own (e.g. `links`: a bench's comparison). */
  media?: Record<string, unknown>;
  /** A Y4M file the sites' browsers show as their camera (Chromium's fake camera otherwise). */
  fakeVideoFile?: string;
}

/** Builds the topology and starts coturn and lessoncast in the data centre. */
export async function startReachWorld(opts: ReachWorldOptions = {}): Promise<ReachWorld> {
  removeStaleTopologies();
  removeStaleFolders();
  const dir = mkdtempSync(path.join(tmpdir(), `lcr${process.pid}-`));
  const browsers = new Map<Site, Promise<Browser>>();
  const pages = new Set<OpenedPage>();
  const daemons: Daemon[] = [];
  let topo: Topology | undefined;
  const close = async (): Promise<void> => {
    for (const p of pages) await p.close().catch(() => undefined);
    for (const b of browsers.values()) await (await b.catch(() => undefined))?.close().catch(() => undefined);
    browsers.clear();
    for (const d of daemons.reverse()) await d.stop().catch(() => undefined);
    daemons.length = 0;
    topo?.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    topo = buildTopology(dir);
    const t = topo;

    // -- certificates: one server certificate for lessoncast's name and both data-centre addresses --
    const tlsDir = path.join(dir, 'tls');
    execFileSync('bash', [path.join(root, 'scripts', 'make-ca.sh'), tlsDir, HOST, ADDR.lessoncast, ADDR.coturn], { stdio: 'pipe' });
    const tls = { cert: path.join(tlsDir, 'server.crt'), key: path.join(tlsDir, 'server.key') };
    const caFile = path.join(tlsDir, 'ca.crt');

    // -- lessoncast's configuration: the repository's defaults plus this world's file -------------
    const turnSecret = randomBytes(32).toString('hex');
    mkdirSync(path.join(dir, 'config'));
    writeFileSync(path.join(dir, 'config', 'default.json'), readFileSync(path.join(root, 'config', 'default.json')));
    writeFileSync(
      path.join(dir, 'config', 'reach.json'),
      JSON.stringify(
        {
          log: { level: 'info' },
          http: {
            host: ADDR.lessoncast,
            port: 443,
            publicUrl: ORIGIN,
            tls: { certFile: tls.cert, keyFile: tls.key },
          },
          media: {
            workers: 1,
            listenIp: ADDR.lessoncast,
            webRtcServerPort: MEDIA_UDP_PORT,
            iceTcp: { listenIp: ADDR.lessoncast, port: ICE_TCP_PORT },
            ...opts.media,
          },
          turn: { urls: TURN_URLS, secret: turnSecret, realm: TURN_REALM },
          recording: { dir: path.join(dir, 'recordings'), segmentSeconds: 2 },
          auth: { secretFile: path.join(dir, 'token-secret') },
        },
        null,
        2,
      ),
    );

    // -- coturn, then lessoncast, in the data centre -------------------------------------------------
    const turnConf = path.join(dir, 'turnserver.conf');
    writeFileSync(turnConf, coturnConfig(dir, tls));
    const coturn = daemon(t, 'datacentre', 'coturn', dir, 'turnserver', ['-c', turnConf], process.env);
    daemons.push(coturn);
    const lessoncast = daemon(t, 'datacentre', 'lessoncast', dir, process.execPath, [builtEntry('main')], {
      ...process.env,
      ...lessoncastEnv(dir),
    });
    daemons.push(lessoncast);
    await waitForTcp(t, 'datacentre', ADDR.coturn, 443, coturn, 15_000);
    await waitForTcp(t, 'datacentre', ADDR.lessoncast, 443, lessoncast, 40_000);
    const adminToken = execFileSync(process.execPath, [builtEntry('cli'), 'token', '--role', 'admin', '--id', 'reach-ops'], {
      encoding: 'utf8',
      env: { ...process.env, ...lessoncastEnv(dir) },
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();

    const browser = (site: Site): Promise<Browser> => {
      let b = browsers.get(site);
      if (!b) {
        b = launchSiteBrowser(t, site, {
          dir,
          caFile,
          hosts: { [HOST]: ADDR.lessoncast },
          ...(opts.fakeVideoFile ? { fakeVideoFile: opts.fakeVideoFile } : {}),
        });
        browsers.set(site, b);
      }
      return b;
    };
    const open = async (site: Site, name: string, url: string): Promise<OpenedPage> => {
      const p = await openPage(await browser(site), name, url, { width: 1280, height: 720 }, instrumentPage);
      pages.add(p);
      const closePage = p.close;
      p.close = async () => {
        pages.delete(p);
        await closePage();
      };
      return p;
    };
    let apiPage: Page | undefined;
    const api = async <T>(method: string, route: string, body?: unknown): Promise<T> => {
      apiPage ??= (await open('steam', 'admin-rest', `${ORIGIN}/`)).page;
      const res = await apiPage.evaluate(
        async ([m, r, b, token]) => {
          const init: RequestInit = { method: m, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } };
          if (b !== undefined) init.body = JSON.stringify(b);
          const answer = await fetch(r, init);
          return { status: answer.status, text: await answer.text() };
        },
        [method, route, body, adminToken] as const,
      );
      if (res.status >= 300) throw new Error(`${method} ${route}: ${res.status} ${res.text}`);
      return JSON.parse(res.text) as T;
    };
    const createLesson = async (title: string, record: boolean): Promise<SchoolLinks> => {
      const schools: SchoolSite[] = ['school-a', 'school-b', 'school-c', 'school-d'];
      const { lesson } = await api<{ lesson: { id: string } }>('POST', '/api/lessons', {
        title,
        subject: 'physics',
        instructorId: 'teacher-1',
        schools,
        record,
      });
      const mint = async (role: string, id: string, name: string) =>
        (await api<{ token: string }>('POST', '/api/tokens', { role, id, name, lessons: [lesson.id] })).token;
      const link = (page: string, token: string) => `${ORIGIN}/${page}#lesson=${lesson.id}&token=${token}`;
      const classroom = {} as Record<SchoolSite, string>;
      for (const s of schools) classroom[s] = link('classroom', await mint('classroom', s, `School ${s.slice(-1).toUpperCase()}`));
      return { lessonId: lesson.id, studio: link('studio', await mint('instructor', 'teacher-1', 'Aylin Məmmədova')), classroom };
    };
    return { topo: t, dir, caFile, lessoncast, coturn, browser, open, api, createLesson, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The instructor in the STEAM centre opens the studio and goes live with camera (360p unless told:
 * '720' sends all three simulcast layers) and microphone.
 */
export async function goLive(
  world: ReachWorld,
  studioUrl: string,
  resolution: '360' | '720' = '360',
): Promise<{ studio: OpenedPage; secureContext: boolean; joined: boolean; publishing: boolean }> {
  const studio = await world.open('steam', 'studio', studioUrl);
  const secureContext = await studio.page.evaluate(() => window.isSecureContext);
  await studio.page.selectOption('#resolution-select', resolution);
  const joined = Boolean(
    await pollPage(studio.page, () => (window as unknown as { lessoncast?: { linkState(): string } }).lessoncast?.linkState() === 'joined'),
  );
  await studio.page.click('#go-live');
  const publishing = Boolean(
    await pollPage(
      studio.page,
      () => (window as unknown as { lessoncast: { publishing(): string[] } }).lessoncast.publishing().join(',') === 'camera,microphone',
      30_000,
    ),
  );
  return { studio, secureContext, joined, publishing };
}
