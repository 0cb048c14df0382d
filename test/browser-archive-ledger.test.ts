/**
 * The archive page's attendance table in Chromium: a recording (the fixture) whose lesson has
 * ledger rows (a school present, one absent) shows them under the player, in English and in
 * Azerbaijani. How the rows are recorded is test/ledger.test.ts's; here only how they are shown.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { emptyTally } from '../src/lessons/ledgerTally.js';
import { appears, chromiumAvailable, launchBrowser, openPage, pollPage, screenshot } from './support/browser.js';
import { startTestServer } from './support/lessoncast.js';
import { makeRecording } from './support/recordingFixture.js';

if (!chromiumAvailable()) {
  t.fail('Chromium (/usr/bin/chromium) is needed: npm run setup installs it');
} else {
  t.test('a recording shows its lesson’s ledger: who came, for how long, how well', async (t) => {
    const s = await startTestServer();
    t.teardown(() => s.close());
    const id = randomUUID();
    const startedAt = new Date(Date.now() - 3600_000);
    await makeRecording(s.server.config.recording.dir, {
      id,
      title: 'Fizika: rıçaqlar',
      seconds: 4,
      startedAt,
      schools: [
        { id: 'school-1', name: 'Şəki 1 nömrəli məktəb' },
        { id: 'school-2', name: 'School 2' },
      ],
    });
    await s.internals.recording.archive.reconcile();
    await s.internals.catalog.schools.put('school-1', { name: 'Şəki 1 nömrəli məktəb', district: 'Şəki', boards: 2 });
    const at = startedAt.getTime();
    const present = { ...emptyTally('school-1', true), firstJoinedAt: at, lastLeftAt: at + 45 * 60_000, connectedMs: 43.5 * 60_000 };
    present.audioOnlyMs = 90_000;
    present.hands = 2;
    present.floorMs = 95_000;
    present.loss = { sum: 3, count: 3, counts: [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0] };
    await s.internals.catalog.ledger.put(id, at, [present, emptyTally('school-2', true)], true);

    const token = await s.token('archivist', 'arch-1');
    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    for (const lang of ['en', 'az'] as const) {
      const opened = await openPage(browser, `archive-${lang}`, `${s.url}/archive#token=${token}`, undefined, async (context) => {
        await context.addInitScript(`localStorage.setItem('lessoncast.lang', '${lang}')`);
      });
      const row = `#results tr[data-recording="${id}"] button`;
      t.ok(await appears(opened.page, row), `${lang}: the archive lists the recording`);
      await opened.page.click(row);
      t.ok(await appears(opened.page, '#ledger tbody tr[data-school="school-2"]'), `${lang}: the attendance table appears`);
      const cells = await pollPage(opened.page, () =>
        [...document.querySelectorAll('#ledger tbody tr')].map((tr) => [...tr.children].map((c) => c.textContent?.trim() ?? '')),
      );
      const heading = await opened.page.textContent('#ledger-h');
      t.comment(`${lang}: ${heading}: ${JSON.stringify(cells)}`);
      const [first, second] = cells ?? [];
      t.equal(first?.[0], 'Şəki 1 nömrəli məktəb', `${lang}: the school by name`);
      t.same(first?.slice(4), ['43.5', '1.5', '1.0 / 1.0', '–', '2', '95'], `${lang}: minutes, audio only, loss, RTT, hands, floor`);
      t.equal(second?.[0], 'school-2', `${lang}: a school not in the catalog by its id`);
      t.same(second?.slice(4, 6), ['0.0', '0.0'], `${lang}: the absent school's zeros`);
      if (lang === 'en') {
        t.equal(heading, 'Attendance');
        t.same([first?.[1], second?.[1]], ['present', 'absent']);
      } else {
        t.equal(heading, 'Davamiyyət');
        t.same([first?.[1], second?.[1]], ['iştirak edib', 'iştirak etməyib']);
      }
      await opened.page.locator('#ledger').scrollIntoViewIfNeeded();
      await screenshot(opened, `archive-ledger-${lang}-1280x800.png`);
      t.same(opened.errors, [], `${lang}: no page errors`);
      await opened.close();
    }
  });
}
