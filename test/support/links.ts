/**
 * The weak-link world, shared by test/links.test.ts and bench/links.ts: the reachability world
 * (test/support/reach.ts: lessoncast in the data centre namespace, the instructor's Chromium in the
 * STEAM centre) with the instructor publishing a 720p camera (three simulcast layers) and the
 * microphone, classroom pages in school A (whose downlink the test shapes, netns.ts
 * `shapeDownlink`) and in the STEAM centre (unconstrained: the control for collateral damage), and
 * readers of what each page receives (getStats) and of what the server says (live view, history,
 * the recording's journal).
 */
import type { Page } from 'playwright-core';
import { diagnostics, pollPage, type OpenedPage } from './browser.js';
import type { LinkShape, SchoolSite, Site } from './netns.js';
import { goLive, ORIGIN, startReachWorld, type ReachWorld, type ReachWorldOptions } from './reach.js';
import type { LinkLayer } from '../../src/domain/index.js';
import type { LiveEvent, LiveSnapshot } from '../../src/live/types.js';

/** What one page receives (sums over its inbound streams) and, for the studio, what it encodes. */
export interface Reception {
  framesDecoded: number;
  freezeCount: number;
  totalFreezesDuration: number;
  frameWidth: number;
  videoPacketsReceived: number;
  videoPacketsLost: number;
  retransmittedPacketsReceived: number;
  audioSamplesReceived: number;
  audioConcealedSamples: number;
  audioPacketsReceived: number;
  audioPacketsLost: number;
  keyFramesEncoded: number;
}

/** In-page code as text (the test runs under tsx, whose helpers do not exist in the page). */
const RECEPTION_SCRIPT = `(async () => {
  const r = { framesDecoded: 0, freezeCount: 0, totalFreezesDuration: 0, frameWidth: 0, videoPacketsReceived: 0,
    videoPacketsLost: 0, retransmittedPacketsReceived: 0, audioSamplesReceived: 0, audioConcealedSamples: 0,
    audioPacketsReceived: 0, audioPacketsLost: 0, keyFramesEncoded: 0 };
  for (const pc of window.__lcPeerConnections || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        r.framesDecoded += s.framesDecoded || 0;
        r.freezeCount += s.freezeCount || 0;
        r.totalFreezesDuration += s.totalFreezesDuration || 0;
        r.frameWidth = Math.max(r.frameWidth, s.frameWidth || 0);
        r.videoPacketsReceived += s.packetsReceived || 0;
        r.videoPacketsLost += s.packetsLost || 0;
        r.retransmittedPacketsReceived += s.retransmittedPacketsReceived || 0;
      }
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        r.audioSamplesReceived += s.totalSamplesReceived || 0;
        r.audioConcealedSamples += s.concealedSamples || 0;
        r.audioPacketsReceived += s.packetsReceived || 0;
        r.audioPacketsLost += s.packetsLost || 0;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'video') r.keyFramesEncoded += s.keyFramesEncoded || 0;
    });
  }
  return r;
})()`;

export function reception(page: Page): Promise<Reception> {
  return page.evaluate<Reception>(RECEPTION_SCRIPT);
}

/** What changed between two readings (counters only; frameWidth is the later one's). */
export function receptionDelta(a: Reception, b: Reception): Reception {
  const out = { ...b };
  for (const k of Object.keys(b) as Array<keyof Reception>) if (k !== 'frameWidth') out[k] = b[k] - a[k];
  return out;
}

/** One simulcast layer as the instructor's encoder sends it. */
export interface EncodedLayer {
  rid: string;
  frameWidth: number;
  bytesSent: number;
  framesEncoded: number;
  qualityLimitationReason: string;
}

const ENCODER_SCRIPT = `(async () => {
  const out = [];
  for (const pc of window.__lcPeerConnections || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video')
        out.push({ rid: s.rid || '', frameWidth: s.frameWidth || 0, bytesSent: s.bytesSent || 0,
          framesEncoded: s.framesEncoded || 0, qualityLimitationReason: s.qualityLimitationReason || '' });
    });
  }
  return out.sort((a, b) => a.rid.localeCompare(b.rid));
})()`;

/** The instructor's simulcast layers over `seconds`: width, kbit/s, fps and what limits the encoder. */
export async function encoderLayers(
  page: Page,
  seconds = 5,
): Promise<Array<{ rid: string; width: number; kbps: number; fps: number; limitedBy: string }>> {
  const a = await page.evaluate<EncodedLayer[]>(ENCODER_SCRIPT);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const b = await page.evaluate<EncodedLayer[]>(ENCODER_SCRIPT);
  return b.map((l) => {
    const before = a.find((x) => x.rid === l.rid);
    return {
      rid: l.rid,
      width: l.frameWidth,
      kbps: Math.round(((l.bytesSent - (before?.bytesSent ?? 0)) * 8) / seconds / 1000),
      fps: Math.round((l.framesEncoded - (before?.framesEncoded ?? 0)) / seconds),
      limitedBy: l.qualityLimitationReason,
    };
  });
}

export interface LinksWorld {
  world: ReachWorld;
  lessonId: string;
  studio: OpenedPage;
  /** Opens a classroom page (token for `schoolId`) in a site's browser. */
  classroom(site: Site, schoolId: string): Promise<OpenedPage>;
  /** A classroom token of the lesson, for a client that is not a page (bench/linksFarm.ts). */
  classroomToken(schoolId: string): Promise<string>;
  shape(site: SchoolSite, shape: LinkShape): void;
  /** The school's layer word in the control room's live view (null: not judged yet or unknown). */
  liveLayer(schoolId: string): Promise<LinkLayer | null>;
  /** The lesson's live history (bus events kept with the recording). */
  history(): Promise<LiveEvent[]>;
  /** The recording's journal (the archive's timeline of the lesson). */
  journal(): Promise<Array<{ type: string; participantId?: string; t: number }>>;
  close(): Promise<void>;
}

/** The page's camera layer from consumerLayersChanged (null: no video flowing), and its link notice. */
export async function classroomState(page: Page): Promise<{ cameraLayer: number | null; layer: LinkLayer | null; notice: boolean }> {
  const cameraLayer = (await diagnostics<number | null>(page, 'cameraLayer')) ?? null;
  const link = (await diagnostics<{ layer: LinkLayer | null; notice: boolean }>(page, 'link')) ?? { layer: null, notice: false };
  return { cameraLayer, ...link };
}

/** Polls `fn` (in this process) until truthy or the timeout; returns the value and the ms it took. */
export async function waitFor<T>(fn: () => Promise<T>, timeoutMs: number, intervalMs = 250): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  for (;;) {
    const value = await fn().catch(() => undefined as T);
    if (value || Date.now() - started > timeoutMs) return { value, ms: Date.now() - started };
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Starts the world, the lesson (recorded: its journal is the archive's timeline) and the instructor at 720p. */
export async function startLinksWorld(title: string, opts: ReachWorldOptions = {}): Promise<LinksWorld> {
  const world = await startReachWorld(opts);
  try {
    const links = await world.createLesson(title, true);
    const live = await goLive(world, links.studio, '720');
    if (!live.publishing) throw new Error('the instructor does not publish camera and microphone');
    const classroomToken = async (schoolId: string): Promise<string> =>
      (
        await world.api<{ token: string }>('POST', '/api/tokens', {
          role: 'classroom',
          id: schoolId,
          name: `School ${schoolId}`,
          lessons: [links.lessonId],
        })
      ).token;
    const classroom = async (site: Site, schoolId: string): Promise<OpenedPage> => {
      const token = await classroomToken(schoolId);
      const p = await world.open(site, `classroom-${schoolId}`, `${ORIGIN}/classroom#lesson=${links.lessonId}&token=${token}`);
      await pollPage(p.page, () => (window as unknown as { lessoncast?: { linkState(): string } }).lessoncast?.linkState() === 'joined');
      return p;
    };
    return {
      world,
      lessonId: links.lessonId,
      studio: live.studio,
      classroom,
      classroomToken,
      shape: (site, shape) => world.topo.shapeDownlink(site, shape),
      liveLayer: async (schoolId) => {
        const snap = await world.api<LiveSnapshot>('GET', '/api/live');
        return snap.lessons.find((l) => l.id === links.lessonId)?.schools.find((s) => s.schoolId === schoolId)?.link ?? null;
      },
      history: async () => (await world.api<{ events: LiveEvent[] }>('GET', `/api/live/lessons/${links.lessonId}/history`)).events,
      journal: async () =>
        (
          await world.api<{ manifest: { events: Array<{ type: string; participantId?: string; t: number }> } }>(
            'GET',
            `/api/recordings/${links.lessonId}`,
          )
        ).manifest.events,
      close: () => world.close(),
    };
  } catch (err) {
    await world.close();
    throw err;
  }
}
