/**
 * The admin page's catalog and a school board, in headless Chromium against a real lessoncast:
 * the admin adds two schools and an instructor, schedules a weekly lesson (one week left out) and
 * sees it in the week view, is told in words that a clashing lesson double-books the instructor,
 * enrols a board (link and QR code). The board, opened with its link, lists today's lessons, joins
 * the lesson by itself and shows the instructor's picture once the studio goes live; revoking it on
 * the admin page closes it with a message. Both languages are switched to on the way. Screenshots
 * go to test-artifacts/.
 */
import t from 'tap';
import type { Page } from 'playwright-core';
import { startTestServer } from './support/lessoncast.js';
import { appears, chromiumAvailable, diagnostics, inboundStats, pagesWithServer, pollPage, screenshot } from './support/browser.js';
import az from '../web/src/i18n/az.json' with { type: 'json' };

if (!chromiumAvailable()) {
  t.fail('Debian chromium is not installed (apt-get install chromium; scripts/setup.sh test does it)');
} else {
  const { server, page, opened } = pagesWithServer(t, () => startTestServer());
  const noticeText = (p: Page) => p.locator('#notice').innerText();
  /** Today's date and a slot around now (local time of the browser, inside today). */
  // A string, not a function: tsx would name the inner helpers with a __name the page lacks.
  const slotNow = (p: Page) =>
    p.evaluate<{ date: string; start: string; end: string; nextWeek: string; inTwoWeeks: string }>(`(() => {
      const now = new Date();
      const midnight = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
      const start = new Date(Math.max(midnight, Math.floor(now.getTime() / 60000) * 60000 - 120000));
      const end = new Date(Math.min(midnight + 86340000, start.getTime() + 3600000));
      const two = (n) => String(n).padStart(2, '0');
      const day = (d) => d.getFullYear() + '-' + two(d.getMonth() + 1) + '-' + two(d.getDate());
      const plus = (days) => day(new Date(now.getFullYear(), now.getMonth(), now.getDate() + days));
      return {
        date: day(now),
        start: two(start.getHours()) + ':' + two(start.getMinutes()),
        end: two(end.getHours()) + ':' + two(end.getMinutes()),
        nextWeek: plus(7),
        inTwoWeeks: plus(14),
      };
    })()`);

  t.test('admin: schools, people, a weekly lesson, a conflict, a board; the board joins by itself and is revoked', async (t) => {
    const startedAt = Date.now();
    const s = server();
    const admin = await page('admin', `${s.url}/admin#token=${await s.token('admin', 'ops')}`);
    const a = admin.page;
    a.on('dialog', (d) => void d.accept());

    // -- schools and people ------------------------------------------------------------------------
    await a.click('#tab-schools');
    for (const [id, name] of [
      ['school-1', 'School No. 1'],
      ['school-2', 'School No. 2'],
    ]) {
      await a.fill('#school-form [name=id]', id!);
      await a.fill('#school-form [name=name]', name!);
      await a.fill('#school-form [name=district]', 'Yasamal');
      await a.click('#school-form button[type=submit]');
      t.ok(await appears(a, `#schools-table tr[data-id="${id}"]`), `${id} is listed`);
    }
    // Edit: the form takes the row's values; saving replaces.
    await a.click('#schools-table tr[data-id="school-2"] [data-action=edit]');
    t.equal(await a.inputValue('#school-form [name=id]'), 'school-2', 'Edit fills the form');
    await a.fill('#school-form [name=boards]', '3');
    await a.click('#school-form button[type=submit]');
    t.ok(await appears(a, '#schools-table tr[data-id="school-2"] td:nth-child(4):text("3")'), 'the edit is saved');

    await a.click('#tab-people');
    for (const [id, name, role] of [
      ['teacher-1', 'Aylin Məmmədova', 'instructor'],
      ['watcher-1', 'Control room', 'monitor'],
    ]) {
      await a.fill('#person-form [name=id]', id!);
      await a.fill('#person-form [name=name]', name!);
      await a.selectOption('#person-form [name=role]', role!);
      await a.click('#person-form button[type=submit]');
      t.ok(await appears(a, `#people-table tr[data-id="${id}"]`), `${id} is listed`);
    }
    await a.click('#people-table tr[data-id="watcher-1"] [data-action=revoke]');
    t.match(await pollPage(a, () => document.getElementById('notice')?.textContent), /Control room/, "a person's tokens are revoked");
    await a.click('#people-table tr[data-id="watcher-1"] [data-action=delete]');
    t.ok(await pollPage(a, () => !document.querySelector('#people-table tr[data-id="watcher-1"]')), 'a deleted person leaves the list');

    // -- the timetable -------------------------------------------------------------------------------
    await a.click('#tab-timetable');
    await a.fill('#subject-form [name=id]', 'physics');
    await a.fill('#subject-form [name=name]', 'Physics');
    await a.click('#subject-form button[type=submit]');
    t.ok(
      await pollPage(a, () => document.querySelector('#timetable-form [name=subjectId] option[value=physics]')),
      'the subject is offered',
    );
    const slot = await slotNow(a);
    await a.fill('#timetable-form [name=title]', 'Levers');
    await a.selectOption('#timetable-form [name=instructorId]', 'teacher-1');
    await a.fill('#timetable-form [name=date]', slot.date);
    await a.fill('#timetable-form [name=start]', slot.start);
    await a.fill('#timetable-form [name=end]', slot.end);
    await a.check('#tt-schools input[value="school-1"]');
    await a.check('#timetable-form [name=weekly]');
    await a.fill('#timetable-form [name=until]', slot.inTwoWeeks);
    await a.fill('#timetable-form [name=except]', slot.nextWeek);
    await a.uncheck('#timetable-form [name=record]');
    await a.click('#timetable-form button[type=submit]');
    t.ok(await appears(a, '.week-lesson:has-text("Levers")'), 'the lesson shows in the week view');
    const week = (await diagnostics<Array<{ id: string; title: string; state: string }>>(a, 'week')) ?? [];
    const lessonId = week.find((l) => l.title === 'Levers')?.id;
    t.ok(lessonId, 'this week holds the lesson');
    t.match(await noticeText(a), /2 lessons/, 'two lessons: this week and in two weeks (next week left out)');
    await a.click('#week-next');
    t.ok(await pollPage(a, () => !document.querySelector('.week-lesson')), 'next week was left out');
    await a.click('#week-next');
    t.ok(await appears(a, '.week-lesson[data-state=created]:has-text("Levers")'), 'the week after holds the next one');
    await a.click('#week-today');
    t.ok(await appears(a, '.week-lesson:has-text("Levers")'), 'back to this week');
    await screenshot(admin, 'admin-timetable-1280x800.png');

    // A clash: the same instructor at the same time, for the other school.
    await a.fill('#timetable-form [name=title]', 'Clash');
    await a.uncheck('#timetable-form [name=weekly]');
    await a.uncheck('#tt-schools input[value="school-1"]');
    await a.check('#tt-schools input[value="school-2"]');
    await a.click('#timetable-form button[type=submit]');
    t.ok(await appears(a, '#notice[data-code=INSTRUCTOR_BUSY]'), 'the conflict comes back coded');
    t.match(await noticeText(a), /The instructor teacher-1 already teaches another lesson then/, 'and is told in words');

    // -- boards --------------------------------------------------------------------------------------
    await a.click('#tab-boards');
    t.ok(await pollPage(a, () => document.querySelector('#device-school option[value="school-1"]')), 'schools are offered');
    await a.selectOption('#device-school', 'school-1');
    await a.fill('#device-form [name=name]', 'Board, room 12');
    await a.click('#device-form button[type=submit]');
    t.ok(await appears(a, '#enrolled img.qr'), 'a QR code is shown');
    const boardUrl = await a.locator('#enrolled input.link-url').inputValue();
    t.match(boardUrl, new RegExp(`^${s.url}/classroom#device=lcd1\\.`), 'with the link, its credential in the fragment');
    t.ok(
      await a.evaluate(() => (document.querySelector('#enrolled img.qr') as HTMLImageElement).naturalWidth > 100),
      'the QR image decodes',
    );
    t.ok(await appears(a, '#devices-table tr[data-revoked=false]'), 'the board is listed');
    await screenshot(admin, 'admin-boards-1280x800.png');

    // Azerbaijani: the tab names follow.
    await a.click('.lang-btn[lang=az]');
    t.equal(await a.locator('#tab-boards').innerText(), az['admin.tabBoards'], 'the admin page speaks Azerbaijani');
    await a.click('.lang-btn[lang=en]');

    // -- the board -------------------------------------------------------------------------------------
    const board = await page('board', boardUrl);
    const b = board.page;
    t.equal(new URL(b.url()).hash, '', 'the board moved its credential out of the address bar');
    t.ok(await appears(b, `#board-lessons li[data-lesson="${lessonId}"]`), "the board lists today's lesson");
    const joined = await pollPage(b, () => (window as any).lessoncast?.board?.().joined as string | undefined);
    t.equal(joined, lessonId, 'and joins it by itself');
    t.ok(await pollPage(b, () => (window as any).lessoncast?.lessonState?.() === 'created'), 'waiting for the instructor');

    const studio = await page(
      'studio',
      `${s.url}/studio#lesson=${lessonId}&token=${await s.token('instructor', 'teacher-1', [lessonId!])}`,
    );
    t.ok(await pollPage(studio.page, () => (window as any).lessoncast?.linkState() === 'joined'), 'the studio joined');
    t.ok(await appears(studio.page, '#school-list li[data-participant="school-1"]'), "the studio sees the board's school");
    await studio.page.click('#go-live');
    const frames = async () => (await inboundStats(b)).filter((x) => x.kind === 'video').reduce((n, x) => n + x.framesDecoded, 0);
    let framed = 0;
    for (let i = 0; i < 120 && framed === 0; i++) {
      framed = await frames();
      if (!framed) await new Promise((r) => setTimeout(r, 250));
    }
    t.ok(framed > 0, 'the board shows the live lesson');
    await screenshot(board, 'board-live-1280x800.png');

    // Board text in Azerbaijani too.
    await b.click('.lang-btn[lang=az]');
    t.equal(await b.locator('#board-h').innerText(), az['board.today'], 'the board speaks Azerbaijani');
    await b.click('.lang-btn[lang=en]');

    // -- revoke the board ------------------------------------------------------------------------------
    await a.click('#devices-table tr[data-revoked=false] [data-action=revoke]');
    const revokedAt = Date.now();
    t.ok(await appears(b, '#board-status[data-state=revoked]', 10_000), 'the board says it was revoked');
    t.comment(`the board knew ${Date.now() - revokedAt} ms after Revoke was clicked`);
    t.match(await b.locator('#board-status').innerText(), /This board was revoked/);
    t.ok(
      await pollPage(b, () => (document.getElementById('camera-video') as HTMLVideoElement).srcObject === null),
      'and leaves the lesson (its picture gone)',
    );
    t.equal(await b.evaluate(() => localStorage.getItem('lessoncast.classroom.device')), null, 'it forgets its credential');
    t.ok(await appears(a, '#devices-table tr[data-revoked=true]'), 'the admin page lists it as revoked');
    await screenshot(board, 'board-revoked-1280x800.png');

    for (const p of opened) for (const e of p.errors) t.comment(e);
    t.comment(`whole flow ${Date.now() - startedAt} ms`);
  });
}
