/**
 * Captures the RTP capabilities a classroom in Debian's Chromium sends with `consume`: what
 * mediasoup-client's Device makes of this Chromium and lessoncast's router (codecs with their
 * RTCP feedback, header extensions). The fan-out bench's "browser classroom" consumes with exactly
 * these (issue 18), so that mediasoup forwards to it what it forwards to a real board.
 *
 *   npx tsx bench/captureChromiumCaps.ts      → bench/fixtures/chromium-rtp-capabilities.json
 *
 * A lesson on a test server, an instructor publishing through werift, and the real classroom page
 * in Chromium; the first `consume` request the page sends over its WebSocket is kept.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { publish } from '../kit/peers.js';
import { SignalClient } from '../kit/signalClient.js';
import { buildWeb, CHROMIUM, launchBrowser, openPage } from '../test/support/browser.js';
import { createLesson, startTestServer } from '../test/support/lessoncast.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM_CAPS_FIXTURE = path.join(here, 'fixtures', 'chromium-rtp-capabilities.json');

export interface CapturedCapabilities {
  capturedAt: string;
  chromium: string;
  mediasoupClient: string;
  rtpCapabilities: unknown;
}

async function capture(): Promise<CapturedCapabilities> {
  buildWeb();
  const s = await startTestServer();
  const browser = await launchBrowser();
  try {
    const lessonId = await createLesson(s, { schools: ['school-caps'] });
    const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
    const sender = await publish(teacher, joined!.routerRtpCapabilities, { audio: true, video: 'vp8' });
    const token = await s.token('classroom', 'school-caps', [lessonId]);
    let found: ((caps: unknown) => void) | undefined;
    const consumed = new Promise<unknown>((resolve) => (found = resolve));
    const page = await openPage(browser, 'caps', `${s.url}/`);
    page.page.on('websocket', (ws) =>
      ws.on('framesent', (frame) => {
        const text = typeof frame.payload === 'string' ? frame.payload : frame.payload.toString();
        const msg = JSON.parse(text) as { method?: string; data?: { rtpCapabilities?: unknown } };
        if (msg.method === 'consume' && msg.data?.rtpCapabilities) found?.(msg.data.rtpCapabilities);
      }),
    );
    await page.page.goto(`${s.url}/classroom#lesson=${lessonId}&token=${token}`);
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the page sent no consume in 30 s')), 30_000));
    const rtpCapabilities = await Promise.race([consumed, timeout]);
    await page.close();
    await sender.close();
    teacher.close();
    const pkg = (name: string) =>
      (
        JSON.parse(execFileSync('npm', ['ls', name, '--json'], { encoding: 'utf8' })) as {
          dependencies?: Record<string, { version: string }>;
        }
      ).dependencies?.[name]?.version ?? '?';
    return {
      capturedAt: new Date().toISOString(),
      chromium: execFileSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).trim(),
      mediasoupClient: pkg('mediasoup-client'),
      rtpCapabilities,
    };
  } finally {
    await browser.close();
    await s.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const caps = await capture();
  writeFileSync(CHROMIUM_CAPS_FIXTURE, `${JSON.stringify(caps, null, 2)}\n`);
  console.log(`wrote ${CHROMIUM_CAPS_FIXTURE} (${caps.chromium}, mediasoup-client ${caps.mediasoupClient})`);
  process.exit(0);
}
