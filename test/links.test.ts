/**
 * Weak school links (issue 15, docs/links.md) on real links: lessoncast in a data-centre namespace,
 * the instructor's Chromium publishing a 720p simulcast camera (three layers) and the microphone,
 * a classroom page in school A whose downlink is shaped with tc tbf (test/support/netns.ts), and an
 * unconstrained classroom page in the STEAM centre.
 *
 * Asserted (pass/fail; how fast is bench/links.ts's job, bounds here are generous):
 * - on a 600 kbit/s link school A's camera layer drops below the top one, and its video goes on;
 * - at 200 kbit/s the server pauses school A's video while its sound keeps coming: the page says so,
 *   the control room's live view says audio-only and the alert is raised, and when the link opens
 *   again video comes back by itself, the lowest layer first; the recording's journal keeps both
 *   moments;
 * - the unconstrained classroom is never paused, decodes video while school A is paused, and ends
 *   on the top layer.
 *
 * Needs root for `ip netns` (CI runs as root). Where namespaces cannot be made, it fails when
 * CI=true and is skipped with the reason otherwise.
 */
import t from 'tap';
import type { OpenedPage } from './support/browser.js';
import { classroomState, reception, receptionDelta, startLinksWorld, waitFor, type LinksWorld } from './support/links.js';
import { siteBrowsersMissing } from './support/siteBrowser.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!siteBrowsersMissing(t, 'weak links across network namespaces')) {
  let lw: LinksWorld | undefined;
  t.teardown(async () => {
    await lw?.close();
  });
  let schoolA: OpenedPage;
  let control: OpenedPage;
  /** When both pages were on the top layer (the unconstrained page's words are read from then on). */
  let bothTopAt = '';
  /** Frames the unconstrained page decoded in the 3 s school A was measured paused. */
  let controlFramesDuringPause = 0;

  t.test('both classrooms reach the top layer on open links', async (t) => {
    lw = await startLinksWorld('Weak links');
    schoolA = await lw.classroom('school-a', 'school-a');
    control = await lw.classroom('steam', 'school-e');
    const top = await waitFor(
      async () => (await classroomState(schoolA.page)).cameraLayer === 2 && (await classroomState(control.page)).cameraLayer === 2,
      60_000,
    );
    t.ok(top.value, `both receive the top camera layer (after ${top.ms} ms)`);
    bothTopAt = new Date().toISOString();
  });

  // The fake camera's top layer needs only ~510 kbit/s (docs/links.md): 600 kbit/s cannot carry it with the sound.
  t.test('on a 600 kbit/s link the school’s camera layer drops, and video goes on', async (t) => {
    lw!.shape('school-a', { rateKbit: 600 });
    const dropped = await waitFor(async () => {
      const s = await classroomState(schoolA.page);
      return s.cameraLayer !== null && s.cameraLayer < 2 ? s : undefined;
    }, 30_000);
    t.ok(dropped.value, `school A's layer dropped (after ${dropped.ms} ms, to ${dropped.value?.cameraLayer})`);
    t.not(dropped.value?.layer, 'audio-only', 'not paused: 600 kbit/s carries the lowest layer');
  });

  // 200, not the bench's 300 kbit/s: an estimate of a 300 kbit/s link was once seen to stay above
  // pauseBelowKbps (350) for 45 s, which is the bench's figure to report, not this test's to judge.
  t.test('at 200 kbit/s video is paused and sound kept; it comes back by itself, lowest layer first', async (t) => {
    lw!.shape('school-a', { rateKbit: 200 });
    const paused = await waitFor(async () => {
      const s = await classroomState(schoolA.page);
      return s.layer === 'audio-only' && s.notice;
    }, 45_000);
    t.ok(paused.value, `the page says video is paused for a weak connection (after ${paused.ms} ms)`);
    // What was queued on the link when the pause came may still arrive for a moment.
    await sleep(1000);
    const [before, controlBefore] = [await reception(schoolA.page), await reception(control.page)];
    await sleep(3000);
    const during = receptionDelta(before, await reception(schoolA.page));
    controlFramesDuringPause = receptionDelta(controlBefore, await reception(control.page)).framesDecoded;
    t.ok(during.audioSamplesReceived > 0, `sound keeps coming while video is paused (${during.audioSamplesReceived} samples in 3 s)`);
    // A flowing camera decodes about 60 frames in 3 s (20 fps): a few late ones at most while paused.
    t.ok(during.framesDecoded < 5, `video stopped (${during.framesDecoded} frames decoded in 3 s)`);
    t.equal(
      (await waitFor(() => lw!.liveLayer('school-a').then((l) => l === 'audio-only'), 15_000)).value,
      true,
      'the control room shows audio-only',
    );

    lw!.shape('school-a', {});
    const back = await waitFor(async () => {
      const s = await classroomState(schoolA.page);
      return s.layer !== null && s.layer !== 'audio-only' && !s.notice;
    }, 90_000);
    t.ok(back.value, `video came back by itself (after ${back.ms} ms)`);
    const frames = await reception(schoolA.page);
    await sleep(2000);
    t.ok(receptionDelta(frames, await reception(schoolA.page)).framesDecoded > 0, 'frames are decoded again');

    const events = await lw!.history();
    const links = events
      .filter((e) => e.type === 'schoolLink' && e.schoolId === 'school-a')
      .map((e) => (e.type === 'schoolLink' ? e.layer : ''));
    const pausedAt = links.lastIndexOf('audio-only');
    t.equal(links[pausedAt + 1], 'low', `after the pause the lowest layer first (school A's words: ${links.join(' → ')})`);
    t.match(
      events.filter((e) => e.type === 'alert' && e.rule === 'audioOnly'),
      [
        { rule: 'audioOnly', state: 'raised', schoolId: 'school-a' },
        { rule: 'audioOnly', state: 'cleared', schoolId: 'school-a' },
      ],
      'the alert is raised, then cleared',
    );
    const journal = await waitFor(async () => {
      const moments = (await lw!.journal()).filter((e) => e.participantId === 'school-a' && e.type.endsWith('ForLink'));
      return moments.length >= 2 ? moments : undefined;
    }, 20_000);
    t.match(journal.value, [{ type: 'videoPausedForLink' }, { type: 'videoResumedForLink' }], 'the lesson’s journal keeps both moments');
  });

  t.test('no collateral damage: the unconstrained classroom keeps its video and ends on the top layer', async (t) => {
    const events = await lw!.history();
    const words = events.flatMap((e) => (e.type === 'schoolLink' && e.schoolId === 'school-e' && e.at > bothTopAt ? [e.layer] : []));
    // Its layer may move with this shared machine's load (the estimate follows CPU delays too); it is never paused.
    t.notOk(
      words.includes('audio-only'),
      `never on audio only while school A narrowed, paused and recovered (words: ${words.join(' → ') || 'high throughout'})`,
    );
    t.ok(controlFramesDuringPause > 0, `it decoded video while school A was paused (${controlFramesDuringPause} frames in 3 s)`);
    const top = await waitFor(async () => (await classroomState(control.page)).cameraLayer === 2, 30_000);
    t.ok(top.value, 'on the top layer at the end');
  });
}
