/**
 * The web pages end to end in headless Chromium (fake camera and microphone) against a real
 * lessoncast: admin → links; instructor goes live; two classrooms watch; the control room sees
 * the lesson; a classroom speaks with the floor and the other hears it; the lesson ends; the
 * archive plays it. Screenshots go to test-artifacts/. Four pages at most run beside the server.
 */
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Browser, Page } from 'playwright-core';
import { startTestServer, type TestServer } from './support/lessoncast.js';
import {
  ARTIFACTS,
  appears,
  buildWeb,
  chromiumAvailable,
  descendantCpuSeconds,
  diagnostics,
  inboundStats,
  launchBrowser,
  openPage,
  pollPage,
  screenshot,
  type OpenedPage,
} from './support/browser.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!chromiumAvailable()) {
  t.fail('Debian chromium is not installed (apt-get install chromium; scripts/setup.sh test does it)');
} else {
  let s: TestServer;
  let browser: Browser;
  const open = new Set<OpenedPage>();
  const shots: string[] = [];
  const figures: Record<string, unknown> = {};

  t.before(async () => {
    buildWeb();
    s = await startTestServer();
    browser = await launchBrowser();
  });
  t.teardown(async () => {
    for (const p of open) await p.close().catch(() => undefined);
    await browser?.close();
    await s?.close();
    writeFileSync(path.join(ARTIFACTS, 'browser-figures.json'), JSON.stringify({ ...figures, screenshots: shots }, null, 2));
  });

  async function page(name: string, url: string, viewport?: { width: number; height: number }): Promise<OpenedPage> {
    const p = await openPage(browser, name, url, viewport);
    open.add(p);
    return p;
  }
  async function close(p: OpenedPage): Promise<void> {
    open.delete(p);
    await p.close();
  }
  async function shot(p: OpenedPage, file: string): Promise<void> {
    await screenshot(p, file);
    shots.push(file);
  }
  function dumpErrors(t: { comment(msg: string): void }, ...pages: OpenedPage[]): void {
    for (const p of pages) for (const e of p.errors) t.comment(e);
  }
  const linkOf = (p: Page, selector: string) => p.locator(`${selector} input.link-url`).inputValue();
  const videoFrames = async (p: Page, participant: string) =>
    (await inboundStats(p)).filter((x) => x.kind === 'video' && x.participantId === participant).reduce((n, x) => n + x.framesDecoded, 0);

  t.test('admin → studio → classrooms → control room → floor → end → archive', async (t) => {
    // -- admin: a lesson, its links, and staff links -------------------------------------------
    const admin = await page('admin', `${s.url}/admin#token=${await s.token('admin', 'ops')}`);
    await admin.page.fill('#lesson-form [name=title]', 'Physics: levers');
    await admin.page.fill('#lesson-form [name=subject]', 'physics');
    await admin.page.fill('#lesson-form [name=instructorId]', 'teacher-1');
    await admin.page.fill('#lesson-form [name=instructorName]', 'Aylin Məmmədova');
    await admin.page.fill('#lesson-form [name=schools]', 'school-1, School No. 1\nschool-2, School No. 2');
    await admin.page.click('#lesson-form button[type=submit]');
    t.ok(await appears(admin.page, '.link-item[data-role=classroom][data-name="School No. 2"]'), 'the admin page shows the lesson links');
    const lessonId = (await admin.page.getAttribute('#links-panel', 'data-lesson'))!;
    t.match(lessonId, /^[0-9a-f-]{36}$/, 'a lesson was created');
    const studioUrl = await linkOf(admin.page, '.link-item[data-role=instructor]');
    const classUrls = [
      await linkOf(admin.page, '.link-item[data-name="School No. 1"]'),
      await linkOf(admin.page, '.link-item[data-name="School No. 2"]'),
    ];
    t.ok(studioUrl.includes('/studio#') && !studioUrl.includes('?'), 'tokens ride in the fragment, never the query string');
    for (const [role, id] of [
      ['monitor', 'control-1'],
      ['archivist', 'archive-1'],
    ] as const) {
      await admin.page.selectOption('#staff-form [name=role]', role);
      await admin.page.fill('#staff-form [name=id]', id);
      await admin.page.click('#staff-form button[type=submit]');
      t.ok(await appears(admin.page, `#staff-links .link-item[data-role=${role}]`), `a ${role} link is minted`);
    }
    const monitorUrl = await linkOf(admin.page, '#staff-links .link-item[data-role=monitor]');
    const archiveUrl = await linkOf(admin.page, '#staff-links .link-item[data-role=archivist]');
    await admin.page.click('#refresh');
    t.ok(await appears(admin.page, `#lessons tr[data-lesson="${lessonId}"]`), 'the lesson is listed');
    await shot(admin, 'admin-1280x800.png');
    await close(admin);

    // -- instructor studio and two classrooms ------------------------------------------------------
    const studio = await page('studio', studioUrl);
    t.equal(new URL(studio.page.url()).hash, '', 'the studio moved its token out of the address bar');
    await studio.page.selectOption('#resolution-select', '360');
    t.ok(await pollPage(studio.page, () => (window as any).lessoncast?.linkState() === 'joined'), 'the studio joined the lesson');
    t.ok(
      await pollPage(studio.page, () => (document.getElementById('camera-preview') as HTMLVideoElement).videoWidth > 0),
      'the camera preview shows the fake camera',
    );
    const classrooms = [await page('classroom-1', classUrls[0]!), await page('classroom-2', classUrls[1]!, { width: 960, height: 540 })];
    for (const c of classrooms)
      t.ok(await pollPage(c.page, () => (window as any).lessoncast?.lessonState() === 'created'), `${c.name} waits for the lesson`);
    t.ok(await appears(studio.page, '#school-list li[data-participant="school-2"]'), 'the studio lists the schools that joined');
    await shot(classrooms[0]!, 'classroom-waiting-1280x800.png');

    const cpuBefore = { at: Date.now(), node: process.cpuUsage(), children: descendantCpuSeconds() };
    const goLiveAt = Date.now();
    await studio.page.click('#go-live');
    const firstFrames: number[] = [];
    for (const c of classrooms) {
      const at = await pollPage(c.page, () => (window as any).lessoncast?.timings().firstFrameAt as number | undefined, 30_000, 50);
      t.ok(at, `${c.name} shows the first frame`);
      if (at) firstFrames.push(at - goLiveAt);
    }
    figures['goLiveToFirstFrameMs'] = firstFrames;
    // Where the time goes: the studio's goLive reply and publishing, then each classroom's consume and first picture.
    const st = (await diagnostics<Record<string, number>>(studio.page, 'timings')) ?? {};
    const steps: Record<string, unknown> = { goLiveReplyMs: st['liveAt']! - goLiveAt, publishedMs: st['publishedAt']! - goLiveAt };
    for (const c of classrooms) {
      const ct = (await diagnostics<Record<string, number>>(c.page, 'timings')) ?? {};
      steps[c.name] = {
        announcedMs: ct['cameraAnnouncedAt']! - goLiveAt,
        consumedMs: ct['cameraConsumedAt']! - goLiveAt,
        firstFrameMs: ct['firstFrameAt']! - goLiveAt,
      };
    }
    figures['goLiveSteps'] = steps;
    t.comment(`go live steps (ms after the click): ${JSON.stringify(steps)}`);
    t.comment(`go live → first frame decoded in the classroom pages: ${firstFrames.map((ms) => `${ms} ms`).join(', ')}`);

    for (const c of classrooms) {
      const before = await videoFrames(c.page, 'teacher-1');
      await sleep(2000);
      const after = await videoFrames(c.page, 'teacher-1');
      const size = await diagnostics<{ width: number; height: number }>(c.page, 'videoSize', 'camera');
      t.ok(after > before && before > 0, `${c.name}: the video moves (framesDecoded ${before} → ${after})`);
      t.ok((size?.width ?? 0) > 0 && (size?.height ?? 0) > 0, `${c.name}: the video has a size (${size?.width}x${size?.height})`);
      (figures['classroomVideo'] ??= []) as unknown[];
      (figures['classroomVideo'] as unknown[]).push({ page: c.name, size, spatialLayer: await diagnostics(c.page, 'cameraLayer') });
    }
    t.ok(await appears(studio.page, '#rec'), 'the studio shows the recording indicator');
    await shot(classrooms[0]!, 'classroom-live-1280x800.png');
    await classrooms[0]!.page.setViewportSize({ width: 1920, height: 1080 });
    await sleep(500);
    await shot(classrooms[0]!, 'classroom-live-1920x1080.png');
    await classrooms[0]!.page.setViewportSize({ width: 1280, height: 800 });

    // -- the board: the instructor shares a screen, classrooms show it beside the camera ------------------
    await studio.page.click('#share-screen');
    const [viewer] = classrooms as [OpenedPage, OpenedPage];
    const boardWidth = await pollPage(viewer.page, () => (window as any).lessoncast.videoSize('screen').width, 20_000);
    t.ok(boardWidth, `the classroom shows the board (${boardWidth ?? 0} px wide)`);
    t.equal(await viewer.page.getAttribute('#stage', 'data-layout'), 'both', 'camera and board side by side');
    await shot(viewer, 'classroom-board-side-by-side-1280x800.png');
    await shot(studio, 'studio-sharing-1280x800.png');
    await viewer.page.click('[data-layout=board]');
    t.ok(
      await pollPage(viewer.page, () => document.getElementById('camera-video')!.hidden && !document.getElementById('board-video')!.hidden),
      'the board alone, by choice',
    );
    await studio.page.click('#share-screen');
    t.ok(
      await pollPage(viewer.page, () => document.getElementById('board-video')!.hidden && !document.getElementById('camera-video')!.hidden),
      'sharing stops: back to the camera',
    );

    // -- control room ------------------------------------------------------------------------------
    const control = await page('control', monitorUrl, { width: 1920, height: 1080 });
    const tile = `.tile[data-lesson="${lessonId}"]`;
    const sawBoth =
      (await appears(control.page, `${tile} li[data-school="school-1"]`, 30_000)) &&
      (await appears(control.page, `${tile} li[data-school="school-2"]`, 5000));
    t.ok(sawBoth, 'the control room shows the lesson with both schools');
    const tileMoving = await pollPage(
      control.page,
      () => document.querySelector<HTMLVideoElement>('.tile.has-picture video')?.videoWidth,
      20_000,
    );
    t.ok(tileMoving, `the control room tile shows the live picture (${tileMoving ?? 0} px wide)`);
    const lowest = await pollPage(
      control.page,
      (id: string) => (window as any).lessoncast.tile(id).then((x: { spatialLayer: number | null }) => x.spatialLayer === 0),
      20_000,
      500,
      lessonId,
    );
    t.ok(lowest, 'the tile receives the lowest simulcast layer');
    // The same camera, consumed without a preference by a classroom: mediasoup switches it up the
    // layers as the classroom's bandwidth estimate (transport-cc) grows.
    const upper = await pollPage(classrooms[0]!.page, () => (window as any).lessoncast.cameraLayer() as number | null, 30_000, 500);
    t.ok(upper, `classroom-1 switched up to simulcast layer ${upper ?? 0} while the tile stays on 0`);
    const tileInfo = await diagnostics<{
      spatialLayer: number | null;
      stats: Array<{ kind: string; framesDecoded: number; frameWidth: number }>;
    }>(control.page, 'tile', lessonId);
    figures['controlTile'] = {
      spatialLayer: tileInfo?.spatialLayer,
      video: tileInfo?.stats.filter((x) => x.kind === 'video').map((x) => ({ framesDecoded: x.framesDecoded, frameWidth: x.frameWidth })),
    };
    t.comment(`control room tile: ${JSON.stringify(figures['controlTile'])}`);
    await sleep(4000); // a quality sample or two, so the dots have colours
    await shot(control, 'control-1920x1080.png');
    if (sawBoth) {
      await control.page.click(`${tile} .tile-open`);
      t.ok(
        await appears(control.page, '#detail[open] #detail-table tr[data-school="school-1"]'),
        'a click opens the lesson detail with per-school figures',
      );
      await sleep(500);
      await shot(control, 'control-detail-1920x1080.png');
      await control.page.keyboard.press('Escape');
    }

    // -- raise hand, floor, the other classroom hears ------------------------------------------------------
    const [asker, listener] = classrooms as [OpenedPage, OpenedPage];
    await asker.page.keyboard.press('h'); // the smart board's keyboard shortcut
    const queued = `#hand-queue li[data-participant="school-1"]`;
    t.ok(await appears(studio.page, queued), 'the raised hand reaches the studio queue');
    t.ok(await appears(asker.page, '#hand[aria-pressed=true]'), 'the classroom shows its hand is up');
    await shot(studio, 'studio-hand-raised-1280x800.png');
    await studio.page.focus(`${queued} button.primary`);
    await studio.page.keyboard.press('Enter');
    t.ok(await pollPage(asker.page, () => (window as any).lessoncast?.onAir()), 'the classroom goes on air with the floor');
    t.ok(await appears(asker.page, '#on-air'), 'with the on-air sign');
    t.ok(await appears(studio.page, '#floor-list li[data-participant="school-1"]'), 'the studio shows who holds the floor');
    const voiceBytes = async () =>
      (await inboundStats(listener.page))
        .filter((x) => x.kind === 'audio' && x.participantId === 'school-1')
        .reduce((n, x) => n + x.bytesReceived, 0);
    let voice0 = 0;
    for (let i = 0; i < 40 && voice0 === 0; i++, await sleep(250)) voice0 = await voiceBytes();
    await sleep(2000);
    const voice1 = await voiceBytes();
    t.ok(voice0 > 0 && voice1 > voice0, `the other classroom receives the speaking classroom's audio (bytes ${voice0} → ${voice1})`);
    figures['floorAudioBytes'] = [voice0, voice1];
    await shot(asker, 'classroom-on-air-1280x800.png');
    await studio.page.click('[data-lang-switch] button[lang=az]');
    await shot(studio, 'studio-floor-az-1280x800.png');
    await studio.page.click('#floor-list li[data-participant="school-1"] button');
    t.ok(
      await pollPage(asker.page, () => document.getElementById('on-air')!.hidden && !(window as any).lessoncast.onAir()),
      'taking the floor back turns the classroom microphone off',
    );

    // -- every connection drops at once (a network blip): the pages recover by themselves ---------------
    for (const ws of s.internals.app.websocketServer.clients) ws.terminate();
    const bannerSeen = await pollPage(listener.page, () => !document.getElementById('banner')!.hidden, 5000, 20);
    t.ok(bannerSeen, 'the classroom shows the reconnecting banner');
    if (bannerSeen) await shot(listener, 'classroom-reconnecting-960x540.png');
    for (const c of classrooms) {
      const back = await pollPage(
        c.page,
        () => {
          const r = (window as any).lessoncast.reconnects();
          return r.joins >= 2 && !r.banner;
        },
        30_000,
      );
      t.ok(back, `${c.name} rejoined by itself and the banner is gone`);
      let frames0 = 0;
      for (let i = 0; i < 60 && frames0 === 0; i++, await sleep(250)) frames0 = await videoFrames(c.page, 'teacher-1');
      await sleep(1500);
      const frames1 = await videoFrames(c.page, 'teacher-1');
      t.ok(frames0 > 0 && frames1 > frames0, `${c.name}: the picture moves again after the drop (framesDecoded ${frames0} → ${frames1})`);
    }

    // -- the language switch ---------------------------------------------------------------------
    await listener.page.click('[data-lang-switch] button[lang=az]');
    t.equal(await listener.page.textContent('#hand'), 'Əl qaldır', 'the classroom speaks Azerbaijani after the switch');
    await shot(listener, 'classroom-az-960x540.png');

    // CPU over the live phase: the browser pages (studio, two classrooms, control room), the server's
    // node process and mediasoup worker, and ffmpeg recording.
    {
      const secs = (Date.now() - cpuBefore.at) / 1000;
      const after = descendantCpuSeconds();
      const node = process.cpuUsage(cpuBefore.node);
      const share = (cpu: number) => Math.round((cpu / secs) * 100);
      const byName: Record<string, number> = { 'node (server + test)': share((node.user + node.system) / 1e6) };
      for (const [name, cpu] of Object.entries(after))
        if (name !== 'esbuild')
          byName[name === 'mediasoup-worke' ? 'mediasoup-worker' : name] = share(cpu - (cpuBefore.children[name] ?? 0));
      figures['liveCpuPercentOfOneCore'] = { seconds: Math.round(secs), ...byName };
      t.comment(`CPU over ${Math.round(secs)} s live, % of one core: ${JSON.stringify(byName)}`);
    }

    // -- end -------------------------------------------------------------------------------------------------
    await studio.page.click('#end-lesson');
    await studio.page.keyboard.press('Tab'); // from Cancel (the safe default) to End
    await studio.page.keyboard.press('Enter');
    for (const c of classrooms)
      t.ok(await pollPage(c.page, () => (window as any).lessoncast?.lessonState() === 'ended'), `${c.name} learns the lesson ended`);
    await shot(classrooms[0]!, 'classroom-ended-1280x800.png');
    dumpErrors(t, studio, ...classrooms, control);
    for (const p of [studio, ...classrooms, control]) await close(p);

    // -- archive -------------------------------------------------------------------------------------------------
    const archive = await page('archive', archiveUrl);
    const row = `#results tr[data-recording="${lessonId}"]`;
    let listed = await appears(archive.page, row, 5000);
    for (let i = 0; i < 10 && !listed; i++) {
      await archive.page.click('#search-form button[type=submit]');
      listed = await appears(archive.page, row, 2000);
    }
    t.ok(listed, 'the archive lists the lesson');
    if (listed) {
      await archive.page.click(`${row} button`);
      const played = await pollPage(archive.page, () => (document.getElementById('player') as HTMLVideoElement).currentTime > 1.5, 30_000);
      t.ok(played, 'the recording plays (currentTime advances)');
      if (!played) t.comment(`player: ${JSON.stringify(await diagnostics(archive.page, 'player'))}`);
      t.ok(await appears(archive.page, '#timeline li[data-type=handRaised]'), 'the hand-raise is on its timeline');
      const offset = Number(await archive.page.getAttribute('#timeline li[data-type=floorGranted] button', 'data-offset'));
      await archive.page.click('#timeline li[data-type=floorGranted] button');
      const seeked = await pollPage(
        archive.page,
        (o: number) => Math.abs((document.getElementById('player') as HTMLVideoElement).currentTime - o) < 3,
        10_000,
        250,
        offset,
      );
      t.ok(seeked, `a click on the timeline seeks the player (to ${offset} s)`);
      await archive.page.click('#verify');
      t.ok(
        await appears(archive.page, '#verify-result.ok', 30_000),
        `verification passes (${await archive.page.textContent('#verify-result')})`,
      );
      const [download] = await Promise.all([archive.page.waitForEvent('download', { timeout: 60_000 }), archive.page.click('#download')]);
      const file = await download.path();
      const size = file ? statSync(file).size : 0;
      t.ok(size > 10_000, `the MP4 download arrives (${download.suggestedFilename()}, ${size} bytes)`);
      figures['mp4Bytes'] = size;
      await shot(archive, 'archive-1280x800.png');
    } else {
      await shot(archive, 'archive-1280x800.png');
    }
    dumpErrors(t, archive);
    t.comment(`screenshots in ${ARTIFACTS}: ${shots.join(', ')}`);
  });
}
