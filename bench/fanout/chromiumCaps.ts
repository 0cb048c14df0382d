/**
 * The RTP capabilities a classroom in Debian's Chromium sends with `consume`
 * (bench/fixtures/chromium-rtp-capabilities.json, made by bench/captureChromiumCaps.ts): the
 * browser-classroom profile consumes with exactly these.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { types } from 'mediasoup';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'chromium-rtp-capabilities.json');

export interface ChromiumCapabilities {
  chromium: string;
  mediasoupClient: string;
  rtpCapabilities: types.RtpCapabilities;
}

/** A fresh copy each call: mediasoup normalises capabilities in place. */
export function chromiumCapabilities(): ChromiumCapabilities {
  return JSON.parse(readFileSync(FIXTURE, 'utf8')) as ChromiumCapabilities;
}
