/**
 * One-way mode in Debian's Chromium: a classroom in a school whose network lets nothing through
 * but TCP to the web server's port (a network namespace this test makes, nftables output policy
 * drop) cannot connect WebRTC, falls back to the lesson's live HLS, plays it through capability
 * renewals, still raises its hand, cannot take the floor; a lesson that is not recorded says why
 * there is nothing to fall back to; when the firewall opens, the page returns to live media.
 * It also reports (does not assert) the glass-to-glass delay of one-way mode: a publisher whose
 * picture flips black/white at known instants, sampled in the classroom's HLS <video>.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startFlashSource, type FlashSource } from '../kit/flashSource.js';
import { publish } from '../kit/peers.js';
import type { ParticipantView } from '../src/domain/index.js';
import { SignalClient } from '../kit/signalClient.js';
import { createFirewalledSchool, type FirewalledSchool } from './support/firewalledSchool.js';
import { cleanupStack, createLesson, startTestServer, type TestServer } from './support/lessoncast.js';
import { sleep, until } from './support/recording.js';

const ACCESS_SECONDS = 20; // renewed every 10 s: several renewals, and expired capabilities, within the test
const FLASHES = 6; // black→white and white→black transitions measured
const FLASH_EVERY_MS = 5000;

const dir = mkdtempSync(path.join(tmpdir(), 'lessoncast-oneway-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let school: FirewalledSchool | undefined;
try {
  school = await createFirewalledSchool(dir);
} catch (err) {
  // CI runs as root: a namespace that cannot be made is a failure there, never a silent pass.
  t.fail(`no network namespace for the firewalled school: ${(err as Error).message}`);
}

interface OneWayDiagnostics {
  mode: string;
  reason: string | null;
  playing: boolean;
  currentTime: number;
  videoWidth: number;
  framesDecoded: number;
  delaySeconds: number | null;
  renewals: number;
  starts: number;
  capabilitiesUsed: number;
  errors: string[];
}

if (school) {
  const net = school;
  t.teardown(() => net.close());

  t.test('a classroom that can reach only the web server watches the lesson one way', async (t) => {
    const s: TestServer = await startTestServer({
      http: { host: net.hostIp },
      media: { listenIp: net.hostIp },
      recording: { oneWayAccessSeconds: ACCESS_SECONDS },
    });
    const cleanups = cleanupStack(t);
    cleanups.push(() => s.close());
    await net.allowOnly(Number(new URL(s.url).port));
    // The classroom's Chromium runs inside the school: set before the browser support reads it.
    process.env['LESSONCAST_CHROMIUM'] = net.chromium(s.url);
    const { appears, buildWeb, diagnostics, inboundStats, launchBrowser, openPage, pollPage, screenshot, ARTIFACTS } =
      await import('./support/browser.js');
    buildWeb();

    const recorded = await createLesson(s, { record: true, title: 'Levers, one way', schools: ['school-1'] });
    const unrecorded = await createLesson(s, { record: false, title: 'Not recorded', schools: ['school-2'] });
    const flash: FlashSource = await startFlashSource();
    cleanups.push(() => flash.source.close());
    const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', recorded);
    const { client: teacher2, joined: joined2 } = await SignalClient.join(s, 'instructor', 'teacher-1', unrecorded);
    cleanups.push(
      () => teacher.close(),
      () => teacher2.close(),
    );
    await teacher.request('goLive', {});
    await teacher2.request('goLive', {});
    const sender = await publish(teacher, joined!.routerRtpCapabilities, { sharedSource: flash });
    const sender2 = await publish(teacher2, joined2!.routerRtpCapabilities, { sharedSource: flash, audio: false });
    cleanups.push(
      () => sender.close(),
      () => sender2.close(),
    );

    const browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const classroomUrl = async (lessonId: string, id: string) =>
      `${s.url}/classroom#lesson=${lessonId}&token=${await s.token('classroom', id, [lessonId])}`;
    const openedAt = Date.now();
    const room = await openPage(browser, 'classroom', await classroomUrl(recorded, 'school-1'));
    const room2 = await openPage(browser, 'classroom-2', await classroomUrl(unrecorded, 'school-2'), { width: 960, height: 540 });
    cleanups.push(
      () => room.close(),
      () => room2.close(),
    );
    const oneWay = (page = room.page) => diagnostics<OneWayDiagnostics>(page, 'oneWay');

    // -- one-way mode ------------------------------------------------------------------
    if (!(await appears(room.page, '#stage[data-mode="one-way"]', 40_000))) {
      t.fail('the stage switches to one-way mode');
      t.comment(
        JSON.stringify({
          oneWay: await oneWay(),
          inbound: await inboundStats(room.page),
          link: await diagnostics(room.page, 'linkState'),
          lesson: await diagnostics(room.page, 'lessonState'),
          errors: room.errors,
          notice: await room.page.textContent('#notice'),
          stage: await room.page.innerHTML('#main'),
        }),
      );
      return;
    }
    const switchedMs = Date.now() - openedAt;
    t.ok(await appears(room.page, '#one-way-video[data-state="playing"]', 30_000), 'the live recording plays in #one-way-video');
    const playingMs = Date.now() - openedAt;
    t.comment(`one-way mode after ${(switchedMs / 1000).toFixed(1)} s, HLS playing after ${(playingMs / 1000).toFixed(1)} s`);
    t.ok(switchedMs >= 15_000, 'not before the ICE timeout (15 s)');
    const toldOneWay = await teacher
      .waitFor('participantUpdated', (p) => p.id === 'school-1' && p.mediaMode === 'one-way', 10_000)
      .catch(() => undefined);
    t.ok(toldOneWay, "the page reports it (reportMediaMode): the instructor sees the school's mediaMode 'one-way'");
    const toldSoFar = teacher.notifications.length;
    const webrtc = (await inboundStats(room.page)).filter((x) => x.kind === 'video');
    const cameraSize = await diagnostics<{ width: number }>(room.page, 'videoSize', 'camera');
    t.ok(webrtc.every((x) => x.framesDecoded === 0) && cameraSize?.width === 0, 'WebRTC decoded nothing: the firewall holds');
    const first = (await oneWay())!;
    await sleep(3000);
    const later = (await oneWay())!;
    t.ok(
      later.currentTime > first.currentTime + 2,
      `currentTime advances (${first.currentTime.toFixed(1)} → ${later.currentTime.toFixed(1)} s)`,
    );
    t.ok(later.framesDecoded > first.framesDecoded + 30, `frames are decoded (${first.framesDecoded} → ${later.framesDecoded})`);
    t.equal(later.videoWidth, 320, 'at the size published');
    const bannerText = await room.page.textContent('#one-way');
    t.match(
      bannerText,
      /^One-way mode: your network blocks live media; you see and hear the lesson with a delay of about \d+ s\.$/,
      'the notice says so',
    );
    t.ok(await room.page.isHidden('#banner'), 'no "reconnecting" banner on top of it');

    // Raise hand works; speaking does not.
    await room.page.click('#hand');
    const raised = await teacher.waitFor('handRaised', (d) => d.participantId === 'school-1');
    t.ok(raised, 'the hand reaches the instructor');
    t.ok(await room.page.isVisible('#speak'), 'the Speak button shows');
    t.ok(await room.page.isDisabled('#speak'), 'disabled');
    t.equal(
      await room.page.textContent('#speak-reason'),
      'Speaking is off in one-way mode: this network cannot carry your voice live.',
      'with the reason',
    );
    await teacher.request('grantFloor', { participantId: 'school-1' });
    const handedBack = await teacher.waitFor('floorRevoked', (d) => d.participantId === 'school-1');
    t.ok(handedBack, 'a floor granted anyway is handed straight back');
    t.match(await room.page.textContent('#notice'), /in one-way mode your voice cannot reach the lesson/, 'and the page says why');
    t.equal((await oneWay())!.mode, 'one-way', 'still in one-way mode');
    await screenshot(room, 'classroom-one-way-1280x800.png');

    // -- no fallback --------------------------------------------------------------------
    t.ok(await appears(room2.page, '#stage[data-mode="no-fallback"]', 40_000), 'the unrecorded lesson ends in no-fallback');
    t.match(await room2.page.textContent('#one-way'), /this lesson is not being recorded, so there is no one-way stream/, 'and says why');
    t.equal((await oneWay(room2.page))!.reason, 'notRecorded');
    await screenshot(room2, 'classroom-no-fallback-960x540.png');
    await room2.close();

    // -- glass to glass ----------------------------------------------------------------
    // Every frame the HLS <video> presents, shrunk into a canvas: its mean brightness, and the wall-clock
    // time it is displayed at when that flips. (A string: the test's compiler would name the closures.)
    await room.page.evaluate(`(() => {
      const v = document.getElementById('one-way-video');
      const canvas = document.createElement('canvas');
      canvas.width = 16;
      canvas.height = 9;
      const g = canvas.getContext('2d', { willReadFrequently: true });
      const seen = (window.flashes = { events: [], last: null });
      const tick = (now, meta) => {
        g.drawImage(v, 0, 0, 16, 9);
        const px = g.getImageData(0, 0, 16, 9).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += px[i];
        const white = sum / (px.length / 4) > 128;
        if (seen.last !== null && white !== seen.last) seen.events.push({ white, at: performance.timeOrigin + meta.expectedDisplayTime });
        seen.last = white;
        v.requestVideoFrameCallback(tick);
      };
      v.requestVideoFrameCallback(tick);
    })()`);
    const sent: Array<{ white: boolean; at: number }> = [];
    for (let i = 0; i < FLASHES; i++) {
      const white = i % 2 === 0;
      sent.push({ white, at: await flash.set(white) });
      await sleep(FLASH_EVERY_MS);
    }
    const shown = async () =>
      (await room.page.evaluate(
        () => (window as unknown as { flashes: { events: Array<{ white: boolean; at: number }> } }).flashes.events,
      )) ?? [];
    const deadline = Date.now() + 40_000;
    while ((await shown()).length < FLASHES && Date.now() < deadline) await sleep(500);
    const displayed = await shown();
    // Each transition with the first one of the same colour shown after it (and after the previous match).
    const delays: number[] = [];
    let from = 0;
    for (const f of sent) {
      const j = displayed.findIndex((d, k) => k >= from && d.white === f.white && d.at > f.at);
      if (j < 0) continue;
      delays.push((displayed[j]!.at - f.at) / 1000);
      from = j + 1;
    }
    const sorted = [...delays].sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor((sorted.length - 1) / 2)]! : null;
    const measured = (await oneWay())!;
    t.comment(
      `glass to glass in one-way mode (segments of ${s.server.config.recording.segmentSeconds} s): median ${median?.toFixed(2)} s over ${delays.length} transitions [${delays.map((d) => d.toFixed(2)).join(', ')}]; the page shows ${measured.delaySeconds} s`,
    );
    t.ok(delays.length >= FLASHES - 1, `the flashes were seen (${delays.length} of ${FLASHES}; reported, not judged)`);

    // -- renewals --------------------------------------------------------------------------
    const renewed = (await oneWay())!;
    const sinceStart = (Date.now() - openedAt) / 1000 - playingMs / 1000;
    t.ok(
      renewed.renewals >= 2,
      `the capability was renewed ${renewed.renewals} times in ${sinceStart.toFixed(0)} s (life ${ACCESS_SECONDS} s)`,
    );
    t.ok(renewed.capabilitiesUsed >= 2, `requests carried ${renewed.capabilitiesUsed} capabilities in turn`);
    t.equal(renewed.starts, 1, `the player never had to start again (errors: ${renewed.errors.join(', ') || 'none'})`);
    await sleep(2000);
    t.ok((await oneWay())!.currentTime > renewed.currentTime + 1, 'and plays on, long after the first capability expired');

    // -- back to live ----------------------------------------------------------------------
    await net.openUp();
    const openedUpAt = Date.now();
    t.ok(
      await appears(room.page, '#stage[data-mode="live"]', 90_000),
      'when the network opens, WebRTC connects and the page goes back to live media',
    );
    const backToLiveMs = Date.now() - openedUpAt;
    // Only what came after the one-way report counts (an earlier view said 'live' too).
    const toldLive = await until(
      "the instructor told mediaMode 'live'",
      () =>
        teacher.notifications
          .slice(toldSoFar)
          .some(
            (n) =>
              n.event === 'participantUpdated' &&
              (n.data as ParticipantView).id === 'school-1' &&
              (n.data as ParticipantView).mediaMode === 'live',
          ) || undefined,
      10_000,
    ).catch(() => false);
    t.ok(toldLive, "and back: the instructor sees mediaMode 'live' again");
    t.comment(`back to live media ${(backToLiveMs / 1000).toFixed(1)} s after the firewall opened`);
    const live = await pollPage(
      room.page,
      async () => {
        const st = await (
          window as unknown as { lessoncast: { inboundStats(): Promise<Array<{ kind: string; framesDecoded: number }>> } }
        ).lessoncast.inboundStats();
        return st.some((x) => x.kind === 'video' && x.framesDecoded > 10);
      },
      20_000,
    );
    t.ok(live, 'decoding WebRTC video');
    t.ok(await room.page.isHidden('#one-way'), 'the one-way notice is gone');
    t.ok(await room.page.isHidden('#speak'), 'and so is the disabled Speak button');

    writeFileSync(
      path.join(ARTIFACTS, 'one-way-figures.json'),
      JSON.stringify(
        {
          segmentSeconds: s.server.config.recording.segmentSeconds,
          switchedToOneWayMs: switchedMs,
          hlsPlayingMs: playingMs,
          glassToGlassSeconds: { median, all: delays },
          pageDelaySeconds: measured.delaySeconds,
          renewals: renewed.renewals,
          backToLiveMs,
        },
        null,
        2,
      ),
    );
    t.same(
      room.errors.filter((e) => !/Failed to load resource/.test(e)),
      [],
      'no page errors',
    );
  });
}
