/**
 * Weak school links (issue 15, docs/links.md): how a classroom fares when its link narrows or loses
 * packets, in the namespace world of test/links.test.ts (test/support/links.ts: lessoncast in the
 * data centre, the instructor's Chromium publishing a 720p simulcast camera and the microphone, a
 * classroom Chromium page in school A whose downlink is shaped with tc tbf and nftables random loss,
 * and an unconstrained classroom page in the STEAM centre). Figures come from the pages' getStats
 * (framesDecoded, freezeCount, totalFreezesDuration, concealedSamples / totalSamplesReceived,
 * retransmittedPacketsReceived) and from the server (consumerLayersChanged as the page hears it,
 * the weak-link words and alerts of the control room).
 *
 *   a  8 → 1 Mbit/s step: time until the layer drops; frozen time around the step
 *   b  1 → 8 Mbit/s: time back to the top layer
 *   c  2 %, 5 %, 10 % random loss at 4 Mbit/s: freezes per minute, audio concealment, RTX share
 *   d  300 kbit/s: audio-first pause (time, audio loss while paused), the page's notice, the
 *      control room's word and alert, the journal; back by itself, lowest layer first
 *   e  collateral: the keyframes the instructor's encoder makes with and without five lossy
 *      classrooms (500 kbit/s each, 5 % loss), and whether the unconstrained classroom keeps the
 *      top layer with no extra freezes
 *
 *   npm run bench -- --only links      (root: it makes network namespaces)
 *   LINKS_MEASURE_SECONDS=60 (default) is the length of each measuring window of c and e.
 *   LINKS_SCENARIOS=abcde (default) picks scenarios; LINKS_KEYFRAME_COMPARE=0 skips e's second world
 *   (keyFrameRequestDelayMs 0); LINKS_CAMERA=motion gives the instructor a high-motion camera.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { saveResult, sleep, table } from './lib.js';
import type { FarmConfig, FarmStats } from './linksFarm.js';
import { diagnostics, type OpenedPage } from '../test/support/browser.js';
import { ADDR } from '../test/support/netns.js';
import { HOST, type ReachWorldOptions } from '../test/support/reach.js';
import {
  classroomState,
  encoderLayers,
  reception,
  receptionDelta,
  startLinksWorld,
  waitFor,
  type LinksWorld,
  type Reception,
} from '../test/support/links.js';

const TARGETS = { switchMs: 3000, frozenMs: 1000, freezesPerMinuteAt5: 1, concealPctAt5: 2 };

export interface LinksResult {
  arrangement: string;
  measureSeconds: number;
  /** The instructor's layers as encoded at the start, and during scenario e's lossy phase. */
  encoder: { start: Awaited<ReturnType<typeof encoderLayers>>; duringE: Awaited<ReturnType<typeof encoderLayers>> };
  a: { switchMs: number | null; frozenMs: number; freezes: number; layerAfter20s: number | null } | null;
  b: { topMs: number | null; frozenMs: number } | null;
  c: Array<{
    lossPct: number;
    freezesPerMinute: number;
    frozenMs: number;
    concealPct: number;
    audioLossPct: number;
    rtxPct: number;
    layer: number | null;
  }>;
  d: {
    pauseMs: number | null;
    noticeShown: boolean;
    audioLossPct: number;
    concealPct: number;
    framesWhilePaused: number;
    controlRoomAudioOnly: boolean;
    alertRaised: boolean;
    resumeMs: number | null;
    firstLayerAfter: string | null;
    topAgainMs: number | null;
    journal: string[];
  } | null;
  e: Collateral | null;
  /** e again in a world whose keyFrameRequestDelayMs is 0 (LINKS_KEYFRAME_COMPARE=0 skips it). */
  eNoDelay?: Collateral | null;
  errors: string[];
}

/** What the receivers that are not lossy went through over one measuring window. */
export interface FarmWindow {
  receivers: number;
  /** Receivers on the top layer at the end of the window. */
  atTopAtEnd: number;
  /** Freezes (Chromium's rule, from frame arrival times) summed over the receivers, and how many had any. */
  freezes: number;
  frozenMs: number;
  receiversWithFreezes: number;
  /** Camera frames per second, the median receiver's. */
  medianFps: number;
}

/** Scenario e: 40 receivers, 5 of them lossy; keyframes and the others' reception without and with the lossy ones. */
export interface Collateral {
  farmReceivers: number;
  farmFailed: string[];
  lossyPages: number;
  keyFramesPerMinuteWithout: number;
  keyFramesPerMinuteWith: number;
  controlFreezesWithout: number;
  controlFreezesWith: number;
  controlLayerWords: string[];
  controlTopAtEnd: boolean;
  farmWithout: FarmWindow;
  farmWith: FarmWindow;
  lossyLayers: Array<number | null>;
  encoderDuringLossy: Awaited<ReturnType<typeof encoderLayers>>;
}

/** Receivers that behave like browsers towards the sender, in one process (bench/linksFarm.ts) inside a site's namespace. */
interface Farm {
  ready: number;
  failed: string[];
  stats(): Promise<FarmStats[]>;
  close(): Promise<void>;
}

async function startFarm(lw: LinksWorld, count: number): Promise<Farm> {
  const classrooms: FarmConfig['classrooms'] = [];
  for (let i = 1; i <= count; i++) classrooms.push({ id: `farm-${i}`, token: await lw.classroomToken(`farm-${i}`) });
  const config: FarmConfig = {
    wsUrl: `wss://${ADDR.lessoncast}/ws`,
    host: HOST,
    caFile: lw.world.caFile,
    localAddress: ADDR.steam,
    lessonId: lw.lessonId,
    classrooms,
  };
  const child: ChildProcess = lw.world.topo.spawn('steam', process.execPath, ['--import', 'tsx', 'bench/linksFarm.ts'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async <T>(timeoutMs: number): Promise<T> => {
    const timer = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the receiver farm did not answer')), timeoutMs).unref(),
    );
    const line = await Promise.race([lines.next(), timer]);
    if (line.done) throw new Error('the receiver farm exited');
    return JSON.parse(line.value) as T;
  };
  child.stdin!.write(`${JSON.stringify(config)}\n`);
  const { ready, failed } = await next<{ ready: number; failed: string[] }>(180_000);
  return {
    ready,
    failed,
    stats: async () => {
      child.stdin!.write('stats\n');
      return (await next<{ stats: FarmStats[] }>(30_000)).stats;
    },
    close: async () => {
      child.stdin!.write('quit\n');
      await new Promise((r) => child.once('exit', r).once('error', r));
    },
  };
}

function farmWindow(before: FarmStats[], after: FarmStats[], seconds: number): FarmWindow {
  const deltas = after.map((a) => {
    const b = before.find((x) => x.id === a.id);
    return {
      layer: a.layer,
      freezes: a.freezeCount - (b?.freezeCount ?? 0),
      frozenMs: a.totalFreezesMs - (b?.totalFreezesMs ?? 0),
      frames: a.frames - (b?.frames ?? 0),
    };
  });
  const fps = deltas.map((d) => d.frames / seconds).sort((x, y) => x - y);
  return {
    receivers: deltas.length,
    atTopAtEnd: deltas.filter((d) => d.layer === 2).length,
    freezes: deltas.reduce((n, d) => n + d.freezes, 0),
    frozenMs: deltas.reduce((n, d) => n + d.frozenMs, 0),
    receiversWithFreezes: deltas.filter((d) => d.freezes > 0).length,
    medianFps: Math.round((fps[Math.floor(fps.length / 2)] ?? 0) * 10) / 10,
  };
}

/** Receivers in scenario e: 40 in all, 5 of them lossy (Chromium pages), one unconstrained page, the rest in the farm. */
const E_RECEIVERS = 40;
const E_LOSSY = 5;

/**
 * Scenario e in a world: the farm and the unconstrained page for one window; then five lossy
 * classroom pages behind school A (5 × 500 kbit/s, 5 % loss) for another. Keyframes come from the
 * instructor's encoder (outbound-rtp keyFramesEncoded over its three layers).
 */
async function collateral(lw: LinksWorld, control: OpenedPage, S: number): Promise<Collateral> {
  const farm = await startFarm(lw, E_RECEIVERS - E_LOSSY - 1);
  console.log(`e: ${farm.ready} farm receivers joined${farm.failed.length ? `; failed: ${farm.failed.join('; ')}` : ''}`);
  try {
    await layerWithin(control, (l) => l === 2, 60_000);
    await sleep(10_000); // the farm's estimates past their start
    const keyFrames = async (): Promise<number> => (await reception(lw.studio.page)).keyFramesEncoded;
    let k0 = await keyFrames();
    let f0 = await farm.stats();
    const [quiet] = await measure([control], S);
    const keyFramesWithout = (await keyFrames()) - k0;
    const farmWithout = farmWindow(f0, await farm.stats(), S);
    lw.shape('school-a', { rateKbit: 500 * E_LOSSY, lossPct: 5 });
    const lossy: OpenedPage[] = [];
    for (let i = 1; i <= E_LOSSY; i++) lossy.push(await lw.classroom('school-a', `school-lossy-${i}`));
    await sleep(5000);
    k0 = await keyFrames();
    f0 = await farm.stats();
    const [busy] = await measure([control], S);
    const encoderDuringLossy = await encoderLayers(lw.studio.page);
    const keyFramesWith = (await keyFrames()) - k0;
    const farmWith = farmWindow(f0, await farm.stats(), S);
    const events = await lw.history();
    const controlTopAtEnd = (await layerWithin(control, (l) => l === 2, 10_000)) !== null;
    const lossyLayers = await Promise.all(lossy.map(async (p) => (await diagnostics<number | null>(p.page, 'cameraLayer')) ?? null));
    for (const p of lossy) await p.close();
    lw.shape('school-a', {});
    return {
      farmReceivers: farm.ready,
      farmFailed: farm.failed,
      lossyPages: lossy.length,
      keyFramesPerMinuteWithout: Math.round((keyFramesWithout / S) * 60 * 10) / 10,
      keyFramesPerMinuteWith: Math.round((keyFramesWith / S) * 60 * 10) / 10,
      controlFreezesWithout: quiet!.freezeCount,
      controlFreezesWith: busy!.freezeCount,
      controlLayerWords: events.flatMap((e) => (e.type === 'schoolLink' && e.schoolId === 'school-e' ? [e.layer] : [])),
      controlTopAtEnd,
      farmWithout,
      farmWith,
      lossyLayers,
      encoderDuringLossy,
    };
  } finally {
    await farm.close();
  }
}

/**
 * A high-motion camera for the instructor (LINKS_CAMERA=motion): 720p at 20 fps of moving test
 * pattern under temporal noise, so the top layer costs what its 1.5 Mbit/s cap allows (Chromium's
 * own fake camera compresses to ~510 kbit/s). Made once with ffmpeg, kept in /var/tmp.
 */
function motionCamera(): string {
  const file = '/var/tmp/lessoncast-links-motion-720p20.y4m';
  if (existsSync(file) && statSync(file).size > 0) return file;
  const filter = 'testsrc2=size=1280x720:rate=20,noise=alls=25:allf=t';
  execFileSync('ffmpeg', ['-loglevel', 'error', '-y', '-f', 'lavfi', '-i', filter].concat(['-t', '6', '-pix_fmt', 'yuv420p', file]));
  return file;
}

const pct = (part: number, whole: number): number => (whole > 0 ? Math.round((1000 * part) / whole) / 10 : 0);

/** Polls the page's camera layer every 100 ms until `ok`; ms from the call, or null after the timeout. */
async function layerWithin(page: OpenedPage, ok: (layer: number | null) => boolean, timeoutMs: number): Promise<number | null> {
  const r = await waitFor(async () => ok((await classroomState(page.page)).cameraLayer), timeoutMs, 100);
  return r.value ? r.ms : null;
}

async function measure(pages: OpenedPage[], seconds: number): Promise<Reception[]> {
  const before = await Promise.all(pages.map((p) => reception(p.page)));
  await sleep(seconds * 1000);
  const after = await Promise.all(pages.map((p) => reception(p.page)));
  return after.map((a, i) => receptionDelta(before[i]!, a));
}

export async function runLinksBench(
  opts: { measureSeconds: number } = { measureSeconds: Number(process.env['LINKS_MEASURE_SECONDS'] ?? 60) },
): Promise<{
  result: LinksResult;
  file: string;
}> {
  const S = opts.measureSeconds;
  const result: LinksResult = {
    arrangement:
      'network namespaces on one machine (2 cores, shared with other work; no added delay: veth + bridge + NAT); lessoncast (1 worker) in the ' +
      'data-centre namespace with default media.links settings; instructor Chromium 156 (fake camera 1280x720 at 20 fps, simulcast 320x180/' +
      '640x360/1280x720 at 150/500/1500 kbit/s, VP8, + microphone) in the STEAM namespace; school A: one classroom Chromium page behind its ' +
      "router, whose lan0 egress (the school's downlink) is shaped by tc tbf (20 ms bucket, 150 ms queue) and nftables random UDP loss; " +
      'control: one classroom page in the STEAM namespace, unconstrained',
    measureSeconds: S,
    encoder: { start: [], duringE: [] },
    a: null,
    b: null,
    c: [],
    d: null,
    e: null,
    errors: [],
  };
  /** LINKS_SCENARIOS=ce runs c and e only (all by default). */
  const want = (scenario: string): boolean => (process.env['LINKS_SCENARIOS'] ?? 'abcde').includes(scenario);
  const motion = process.env['LINKS_CAMERA'] === 'motion';
  const world: ReachWorldOptions = motion ? { fakeVideoFile: motionCamera() } : {};
  if (motion)
    result.arrangement = result.arrangement.replace(
      'fake camera 1280x720 at 20 fps',
      'a high-motion camera (Y4M: testsrc2 under temporal noise, 1280x720 at 20 fps)',
    );
  let lw: LinksWorld | undefined;
  try {
    lw = await startLinksWorld('Links bench', world);
    const a = await lw.classroom('school-a', 'school-a');
    const control = await lw.classroom('steam', 'school-e');
    const top = await layerWithin(a, (l) => l === 2, 120_000);
    if (top === null) {
      const layers = JSON.stringify(await encoderLayers(lw.studio.page));
      throw new Error(`school A never reached the top layer on an open link (the instructor's layers: ${layers})`);
    }
    lw.shape('school-a', { rateKbit: 8000 });
    await sleep(5000);
    result.encoder.start = await encoderLayers(lw.studio.page);
    console.log(`instructor's layers: ${JSON.stringify(result.encoder.start)}`);

    // -- a: 8 → 1 Mbit/s ---------------------------------------------------------------------------
    if (want('a')) {
      const before = await reception(a.page);
      lw.shape('school-a', { rateKbit: 1000 });
      const switchMs = await layerWithin(a, (l) => l !== null && l < 2, 20_000);
      await sleep(Math.max(0, 20_000 - (switchMs ?? 20_000)));
      const d = receptionDelta(before, await reception(a.page));
      const layerAfter20s = (await classroomState(a.page)).cameraLayer;
      result.a = { switchMs, frozenMs: Math.round(d.totalFreezesDuration * 1000), freezes: d.freezeCount, layerAfter20s };
      console.log(
        `a: layer dropped after ${switchMs ?? '–'} ms; 20 s from the step: ${d.freezeCount} freezes, ${result.a.frozenMs} ms frozen, layer ${layerAfter20s}`,
      );
    }

    // -- b: 1 → 8 Mbit/s ---------------------------------------------------------------------------
    if (want('b')) {
      const before = await reception(a.page);
      lw.shape('school-a', { rateKbit: 8000 });
      const topMs = await layerWithin(a, (l) => l === 2, 90_000);
      const d = receptionDelta(before, await reception(a.page));
      result.b = { topMs, frozenMs: Math.round(d.totalFreezesDuration * 1000) };
      console.log(`b: top layer again after ${topMs ?? '–'} ms (${result.b.frozenMs} ms frozen meanwhile)`);
    }

    // -- c: random loss at 4 Mbit/s ---------------------------------------------------------------
    for (const lossPct of want('c') ? [2, 5, 10] : []) {
      lw.shape('school-a', { rateKbit: 4000, lossPct });
      await sleep(5000);
      const [d] = await measure([a], S);
      const row = {
        lossPct,
        freezesPerMinute: Math.round((d!.freezeCount / S) * 60 * 10) / 10,
        frozenMs: Math.round(d!.totalFreezesDuration * 1000),
        concealPct: pct(d!.audioConcealedSamples, d!.audioSamplesReceived),
        audioLossPct: pct(d!.audioPacketsLost, d!.audioPacketsReceived + d!.audioPacketsLost),
        rtxPct: pct(d!.retransmittedPacketsReceived, d!.videoPacketsReceived),
        layer: (await classroomState(a.page)).cameraLayer,
      };
      result.c.push(row);
      console.log(`c: ${lossPct} % loss: ${JSON.stringify(row)}`);
    }

    // -- d: 300 kbit/s: audio first ---------------------------------------------------------------
    if (want('d')) {
      lw.shape('school-a', { rateKbit: 8000 });
      await layerWithin(a, (l) => l === 2, 60_000);
      lw.shape('school-a', { rateKbit: 300 });
      const paused = await waitFor(async () => {
        const s = await classroomState(a.page);
        return s.layer === 'audio-only' && s.notice;
      }, 60_000);
      const pauseMs = paused.value ? paused.ms : null;
      await sleep(2000);
      const [d] = await measure([a], 15);
      const controlRoomAudioOnly = (await waitFor(async () => (await lw!.liveLayer('school-a')) === 'audio-only', 10_000)).value;
      lw.shape('school-a', { rateKbit: 8000 });
      const back = await waitFor(async () => {
        const s = await classroomState(a.page);
        return s.layer !== null && s.layer !== 'audio-only';
      }, 120_000);
      const resumeMs = back.value ? back.ms : null;
      const topAgainMs = await layerWithin(a, (l) => l === 2, 90_000);
      const events = await lw.history();
      const words = events.flatMap((e) => (e.type === 'schoolLink' && e.schoolId === 'school-a' ? [e.layer] : []));
      const journal = await waitFor(async () => {
        const moments = (await lw!.journal()).filter((e) => e.participantId === 'school-a' && e.type.endsWith('ForLink'));
        return moments.length >= 2 ? moments.map((m) => `${m.type}@${m.t}s`) : undefined;
      }, 20_000);
      result.d = {
        pauseMs,
        noticeShown: Boolean(paused.value),
        audioLossPct: pct(d!.audioPacketsLost, d!.audioPacketsReceived + d!.audioPacketsLost),
        concealPct: pct(d!.audioConcealedSamples, d!.audioSamplesReceived),
        framesWhilePaused: d!.framesDecoded,
        controlRoomAudioOnly: Boolean(controlRoomAudioOnly),
        alertRaised: events.some((e) => e.type === 'alert' && e.rule === 'audioOnly' && e.state === 'raised' && e.schoolId === 'school-a'),
        resumeMs,
        firstLayerAfter: words[words.lastIndexOf('audio-only') + 1] ?? null,
        topAgainMs: topAgainMs === null ? null : (resumeMs ?? 0) + topAgainMs,
        journal: journal.value ?? [],
      };
      console.log(`d: ${JSON.stringify(result.d)}`);
    }

    // -- e: collateral: 40 receivers, 5 of them on lossy links ----------------------------------------
    lw.shape('school-a', {});
    await a.close();
    if (want('e')) {
      result.e = await collateral(lw, control, S);
      console.log(`e: ${JSON.stringify(result.e)}`);
      result.encoder.duringE = result.e.encoderDuringLossy;
    }
    await lw.close();
    lw = undefined;

    // -- e again with keyFrameRequestDelayMs 0: what mediasoup's coalescing is worth -------------------
    if (want('e') && process.env['LINKS_KEYFRAME_COMPARE'] !== '0') {
      lw = await startLinksWorld('Links bench (no keyframe request delay)', { ...world, media: { links: { keyFrameRequestDelayMs: 0 } } });
      const control0 = await lw.classroom('steam', 'school-e');
      result.eNoDelay = await collateral(lw, control0, S);
      console.log(`e without keyFrameRequestDelay: ${JSON.stringify(result.eNoDelay)}`);
    }
  } catch (err) {
    result.errors.push((err as Error).message);
    console.log(`links bench stopped: ${(err as Error).message}`);
  } finally {
    await lw?.close();
  }
  printLinks(result);
  const file = saveResult('links', result);
  console.log(`saved ${file}`);
  return { result, file };
}

const ms = (x: number | null | undefined): string | number => (x === null || x === undefined ? '–' : x);
const verdict = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'met' : 'missed');

/** The table of docs/links.md: each figure against its target (verdict null: no target). */
export function printLinks(r: LinksResult): void {
  const rows: Array<Record<string, string | number>> = [];
  const add = (scenario: string, figure: string, value: string | number, target: string, ok: boolean | null): void => {
    rows.push({ scenario, figure, value, target, verdict: verdict(ok) });
  };
  if (r.a) {
    add(
      'a 8→1 Mbit/s',
      'layer switch (ms)',
      ms(r.a.switchMs),
      `≤ ${TARGETS.switchMs}`,
      r.a.switchMs !== null && r.a.switchMs <= TARGETS.switchMs,
    );
    add('a 8→1 Mbit/s', 'frozen in the 20 s from the step (ms)', r.a.frozenMs, `< ${TARGETS.frozenMs}`, r.a.frozenMs < TARGETS.frozenMs);
    add('a 8→1 Mbit/s', 'camera layer 20 s after the step', ms(r.a.layerAfter20s), '–', null);
  }
  if (r.b) add('b 1→8 Mbit/s', 'back to the top layer (ms)', ms(r.b.topMs), '–', null);
  for (const c of r.c) {
    const scenario = `c ${c.lossPct} % loss, 4 Mbit/s`;
    /** A figure whose target applies at 5 % loss only. */
    const at5 = (figure: string, value: number, target: number): void =>
      add(scenario, figure, value, c.lossPct === 5 ? `≤ ${target}` : '–', c.lossPct === 5 ? value <= target : null);
    at5('freezes per minute', c.freezesPerMinute, TARGETS.freezesPerMinuteAt5);
    at5('audio concealment %', c.concealPct, TARGETS.concealPctAt5);
    add(scenario, 'RTX share of video packets %', c.rtxPct, '–', null);
  }
  if (r.d) {
    const d = r.d;
    const shown = [d.noticeShown, d.controlRoomAudioOnly, d.alertRaised, d.journal.length >= 2];
    add('d 300 kbit/s', 'video paused after (ms)', ms(d.pauseMs), '–', null);
    add('d 300 kbit/s', 'audio loss while paused %', d.audioLossPct, '< 1', d.audioLossPct < 1);
    add(
      'd 300 kbit/s',
      'notice / control room / alert / journal',
      shown.map((x) => (x ? 'yes' : 'no')).join(' / '),
      'all yes',
      shown.every(Boolean),
    );
    add(
      'd back to 8 Mbit/s',
      'video back after (ms), first layer',
      `${ms(d.resumeMs)}, ${d.firstLayerAfter ?? '–'}`,
      'by itself, low first',
      d.resumeMs !== null && d.firstLayerAfter === 'low',
    );
    add('d back to 8 Mbit/s', 'top layer again after (ms)', ms(d.topAgainMs), '–', null);
  }
  const collateralRows = (label: string, e: Collateral): void => {
    add(
      label,
      'instructor keyframes per minute without / with lossy pages',
      `${e.keyFramesPerMinuteWithout} / ${e.keyFramesPerMinuteWith}`,
      'bounded',
      null,
    );
    const w = e.farmWithout;
    const x = e.farmWith;
    add(
      label,
      `${w.receivers} browser-profile receivers: on the top layer at the end, without / with`,
      `${w.atTopAtEnd} / ${x.atTopAtEnd}`,
      'all / all',
      x.atTopAtEnd === x.receivers && x.receivers > 0,
    );
    add(
      label,
      'their freezes without / with (receivers with any); median fps',
      `${w.freezes} (${w.receiversWithFreezes}) / ${x.freezes} (${x.receiversWithFreezes}); ${w.medianFps} / ${x.medianFps}`,
      'no extra',
      x.freezes <= w.freezes,
    );
    add(
      label,
      'unconstrained page: freezes without / with, top layer at end',
      `${e.controlFreezesWithout} / ${e.controlFreezesWith}, ${e.controlTopAtEnd ? 'yes' : 'no'}`,
      'no extra freezes, top',
      e.controlFreezesWith <= e.controlFreezesWithout && e.controlTopAtEnd,
    );
    add(label, 'lossy pages: camera layers at the end', e.lossyLayers.map((l) => l ?? '–').join(', '), '–', null);
  };
  if (r.e) collateralRows('e collateral', r.e);
  if (r.eNoDelay) collateralRows('e, keyFrameRequestDelayMs 0', r.eNoDelay);
  console.log(table(rows));
  if (r.errors.length) console.log(`errors: ${r.errors.join('; ')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runLinksBench();
  process.exit(0);
}
