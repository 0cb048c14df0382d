/**
 * download.mp4 as Chromium plays it from a plain <video src> (how docs/recording.md suggests
 * opening it): the duration is known at `loadedmetadata`, and a seek to the middle shows the frame
 * of that moment. The recording's picture carries its frame number (recordingFixture
 * `frameNumber`), read back from the <video> through a canvas.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { chromiumAvailable, launchBrowser, openPage } from './support/browser.js';
import { startTestServer } from './support/lessoncast.js';
import { FIXTURE_FPS, FIXTURE_OFFSET, makeRecording } from './support/recordingFixture.js';

const SECONDS = 90;
/** The fixture's segments: the duration must be right within one. */
const SEGMENT = 2;
const SEEK_TO = 45;

interface Seen {
  duration: number;
  seekableEnd: number;
  currentTime: number;
  frame: number;
  width?: number;
  /** canPlayType of H264 in MP4. */
  h264?: string;
  error?: string;
}

if (!chromiumAvailable()) {
  t.fail('Chromium (/usr/bin/chromium) is needed: npm run setup installs it');
} else {
  t.test('download.mp4 in Chromium: the duration at once, and a seek lands where asked', async (t) => {
    const s = await startTestServer();
    t.teardown(() => s.close());
    const id = randomUUID();
    await makeRecording(s.server.config.recording.dir, { id, seconds: SECONDS, picture: 'frameNumber' });
    const token = await s.token('archivist', 'arch-1');
    const { access } = (await (
      await fetch(`${s.url}/api/recordings/${id}/access`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    ).json()) as { access: string };

    const browser = await launchBrowser();
    t.teardown(() => browser.close());
    const opened = await openPage(browser, 'download', `${s.url}/`);
    // A script of plain JavaScript: the test's own compiler would wrap functions in helpers the page does not have.
    const src = `/api/recordings/${id}/download.mp4?access=${access}`;
    const seen = await opened.page.evaluate<Seen>(`(async () => {
      const video = document.createElement('video');
      video.muted = true;
      video.preload = 'metadata';
      document.body.append(video);
      const once = (event) => new Promise((resolve, reject) => {
        video.addEventListener(event, () => resolve(), { once: true });
        video.addEventListener('error', () => reject(new Error('media error ' + video.error?.code + ': ' + video.error?.message)), { once: true });
      });
      try {
        const meta = once('loadedmetadata');
        video.src = ${JSON.stringify(src)};
        await meta;
        const duration = video.duration;
        const seekableEnd = video.seekable.length ? video.seekable.end(video.seekable.length - 1) : 0;
        const seeked = once('seeked');
        video.currentTime = ${SEEK_TO};
        await seeked;
        if (video.readyState < 2) await once('loadeddata');
        // The frame on show: its number in binary, 16 columns, white = 1.
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const g = canvas.getContext('2d');
        g.drawImage(video, 0, 0);
        let frame = 0;
        for (let bit = 0; bit < 16; bit++) if (g.getImageData(Math.floor(((bit + 0.5) * canvas.width) / 16), canvas.height >> 1, 1, 1).data[0] > 128) frame |= 1 << bit;
        return { duration, seekableEnd, currentTime: video.currentTime, frame, width: video.videoWidth, h264: video.canPlayType('video/mp4; codecs="avc1.42c01e"') };
      } catch (err) {
        return { duration: video.duration, seekableEnd: 0, currentTime: video.currentTime, frame: -1, error: err.message };
      }
    })()`);
    const end = FIXTURE_OFFSET + SECONDS;
    t.comment(`Chromium: ${JSON.stringify(seen)} (the media ends at ${end} s on the lesson timeline)`);
    t.notOk(seen.error, 'the video loads and seeks');
    t.ok(Math.abs(seen.duration - SECONDS) <= SEGMENT, `duration at loadedmetadata: ${seen.duration} s (${SECONDS} s of media)`);
    t.ok(seen.seekableEnd >= end - SEGMENT, `seekable to ${seen.seekableEnd} s`);
    t.ok(Math.abs(seen.currentTime - SEEK_TO) <= 0.5, `a seek to ${SEEK_TO} s lands at ${seen.currentTime} s`);
    // The file keeps the lesson's timeline (each track at its true offset, by edit lists): the frame
    // on show at `currentTime` is the one recorded at that moment of the lesson.
    const shownAt = FIXTURE_OFFSET + seen.frame / FIXTURE_FPS;
    t.ok(
      Math.abs(shownAt - SEEK_TO) <= 0.5 && Math.abs(shownAt - seen.currentTime) <= 0.5,
      `and shows frame ${seen.frame}, the one of ${shownAt.toFixed(3)} s of the lesson`,
    );
    t.same(opened.errors, [], 'no page errors');
  });
}
