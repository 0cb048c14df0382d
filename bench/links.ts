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
 */
import { saveResult, sleep, table } from './lib.js';
import { diagnostics, type OpenedPage } from '../test/support/browser.js';
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
  e: {
    lossyPages: number;
    keyFramesPerMinuteWithout: number;
    keyFramesPerMinuteWith: number;
    controlFreezesWithout: number;
    controlFreezesWith: number;
    controlLayerWords: string[];
    controlTopAtEnd: boolean;
  } | null;
  errors: string[];
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
  let lw: LinksWorld | undefined;
  try {
    lw = await startLinksWorld('Links bench');
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
    {
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
    {
      const before = await reception(a.page);
      lw.shape('school-a', { rateKbit: 8000 });
      const topMs = await layerWithin(a, (l) => l === 2, 90_000);
      const d = receptionDelta(before, await reception(a.page));
      result.b = { topMs, frozenMs: Math.round(d.totalFreezesDuration * 1000) };
      console.log(`b: top layer again after ${topMs ?? '–'} ms (${result.b.frozenMs} ms frozen meanwhile)`);
    }

    // -- c: random loss at 4 Mbit/s ---------------------------------------------------------------
    for (const lossPct of [2, 5, 10]) {
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
    {
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

    // -- e: collateral: keyframes and the unconstrained classroom -----------------------------------
    {
      lw.shape('school-a', {});
      await a.close();
      await layerWithin(control, (l) => l === 2, 60_000);
      const keyFrames = async (): Promise<number> => (await reception(lw!.studio.page)).keyFramesEncoded;
      let k0 = await keyFrames();
      const [quiet] = await measure([control], S);
      const keyFramesWithout = (await keyFrames()) - k0;
      // Five lossy classrooms behind school A's router: 5 × 500 kbit/s shared, 5 % loss.
      lw.shape('school-a', { rateKbit: 2500, lossPct: 5 });
      const lossy: OpenedPage[] = [];
      for (let i = 1; i <= 5; i++) lossy.push(await lw.classroom('school-a', `school-lossy-${i}`));
      await sleep(5000);
      k0 = await keyFrames();
      const [busy] = await measure([control], S);
      result.encoder.duringE = await encoderLayers(lw.studio.page);
      const keyFramesWith = (await keyFrames()) - k0;
      const events = await lw.history();
      const controlTopAtEnd = (await layerWithin(control, (l) => l === 2, 10_000)) !== null;
      result.e = {
        lossyPages: lossy.length,
        keyFramesPerMinuteWithout: Math.round((keyFramesWithout / S) * 60 * 10) / 10,
        keyFramesPerMinuteWith: Math.round((keyFramesWith / S) * 60 * 10) / 10,
        controlFreezesWithout: quiet!.freezeCount,
        controlFreezesWith: busy!.freezeCount,
        controlLayerWords: events.flatMap((e) => (e.type === 'schoolLink' && e.schoolId === 'school-e' ? [e.layer] : [])),
        controlTopAtEnd,
      };
      const lossyLayers = await Promise.all(lossy.map((p) => diagnostics<number | null>(p.page, 'cameraLayer')));
      console.log(`e: ${JSON.stringify(result.e)}; lossy pages' camera layers: ${lossyLayers.join(', ')}`);
      for (const p of lossy) await p.close();
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
  if (r.e) {
    const e = r.e;
    add(
      'e collateral',
      'instructor keyframes per minute without / with lossy pages',
      `${e.keyFramesPerMinuteWithout} / ${e.keyFramesPerMinuteWith}`,
      'bounded',
      null,
    );
    add(
      'e collateral',
      'unconstrained page: freezes without / with, top layer at end',
      `${e.controlFreezesWithout} / ${e.controlFreezesWith}, ${e.controlTopAtEnd ? 'yes' : 'no'}`,
      'no extra freezes, top',
      e.controlFreezesWith <= e.controlFreezesWithout && e.controlTopAtEnd,
    );
  }
  console.log(table(rows));
  if (r.errors.length) console.log(`errors: ${r.errors.join('; ')}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await runLinksBench();
  process.exit(0);
}
