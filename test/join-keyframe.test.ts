/**
 * Key frames for joining classrooms (issue 18 §4), against a real mediasoup worker through
 * lessoncast's signalling, with light receivers consuming with Chromium's capabilities:
 *
 * - a lone classroom's join asks the publisher for one key frame, not two: resuming a video
 *   consumer makes the worker ask by itself, and lessoncast no longer asks again (which, with the
 *   producer's keyFrameRequestDelay, made the publisher send a second, useless key frame a
 *   delay later, for every join);
 * - many classrooms resumed at once cost the publisher one request, plus at most one at the end
 *   of the delay;
 * - every classroom gets a complete key frame (kit/keyFrame.ts on the decrypted VP8 packets).
 *
 * The publisher is werift with ffmpeg's VP8 (a key frame a second; it counts the PLIs it gets).
 */
import t from 'tap';
import { KeyFrameWatch } from '../kit/keyFrame.js';
import { lightClassroom } from '../kit/lightReceiver.js';
import { SignalClient } from '../kit/signalClient.js';
import { chromiumCapabilities } from '../bench/fanout/chromiumCaps.js';
import { publishingLesson, until } from './support/lessoncast.js';

/** Longer than the producer's keyFrameRequestDelay (1000 ms by default), so a delayed request would be seen. */
const WINDOW_MS = 2500;

t.test('a complete key frame is told from its RTP packets (VP8 and H264)', async (t) => {
  const rtp = (seq: number, ts: number, marker: boolean, payload: number[]) => {
    const h = Buffer.alloc(12);
    h[0] = 0x80;
    h[1] = (marker ? 0x80 : 0) | 96;
    h.writeUInt16BE(seq, 2);
    h.writeUInt32BE(ts, 4);
    return Buffer.concat([h, Buffer.from(payload)]);
  };
  // VP8: descriptor with X and a 15-bit picture id, then the payload header (P = 0: key frame).
  const vp8 = new KeyFrameWatch('vp8');
  t.notOk(vp8.packet(rtp(10, 1000, false, [0x90, 0x80, 0x81, 0x02, 0x00, 0x9d]), 1), 'first packet of a key frame');
  t.notOk(vp8.packet(rtp(12, 1000, true, [0x80, 0x80, 0x81, 0x02, 0xaa]), 2), 'its last packet, with one missing in between');
  t.ok(vp8.packet(rtp(11, 1000, false, [0x80, 0x80, 0x81, 0x02, 0xaa]), 3), 'complete once the gap is filled');
  t.equal(vp8.completeAt, 3, 'at the arrival that completed it');
  const delta = new KeyFrameWatch('vp8');
  t.notOk(delta.packet(rtp(1, 5, true, [0x10, 0x01]), 1), 'a complete delta frame (P = 1) is not a key frame');
  // H264: STAP-A with SPS and PPS, then an IDR in two FU-A fragments.
  const h264 = new KeyFrameWatch('h264');
  t.notOk(h264.packet(rtp(100, 9, false, [0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce]), 1), 'SPS + PPS');
  t.notOk(h264.packet(rtp(101, 9, false, [0x7c, 0x85, 0x01]), 2), 'IDR, first fragment');
  t.ok(h264.packet(rtp(102, 9, true, [0x7c, 0x45, 0x02]), 3), 'IDR, last fragment with the marker');
  const p = new KeyFrameWatch('h264');
  t.notOk(p.packet(rtp(7, 3, true, [0x41, 0x9a]), 1), 'a P slice is not a key frame');
});

t.test('joining classrooms: one key-frame request per join, coalesced across a storm, and a key frame each', async (t) => {
  const { s, cleanups, lessonId, sender } = await publishingLesson(t);
  const { rtpCapabilities } = chromiumCapabilities();
  const plis = () => sender.stats().video?.pliReceived ?? 0;

  /** A classroom consumed and connected, its consumers still paused. */
  const classroom = async (id: string) => {
    const { client, joined } = await SignalClient.join(s, 'classroom', id, lessonId);
    cleanups.push(() => client.close());
    const c = await lightClassroom(client, joined!.producers, rtpCapabilities, { watchKeyFrame: true });
    cleanups.push(() => c.rx.close());
    return c;
  };

  // The publisher's own start-up requests (a new stream) are over before we count.
  await until(async () => (sender.stats().video?.packetsWritten ?? 0) > 30, 'the publisher sends video');
  await new Promise((r) => setTimeout(r, WINDOW_MS));

  const lone = await classroom('school-lone');
  const before = plis();
  await lone.resume();
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  t.equal(
    plis() - before,
    1,
    "a lone join: one PLI reaches the publisher (two while lessoncast asked again after the worker's own request)",
  );
  t.ok(lone.rx.at.keyFrame, 'the lone classroom has a complete key frame');

  const storm = await Promise.all(Array.from({ length: 8 }, (_, i) => classroom(`school-${i}`)));
  const beforeStorm = plis();
  await Promise.all(storm.map((c) => c.resume()));
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const stormPlis = plis() - beforeStorm;
  t.ok(
    stormPlis >= 1 && stormPlis <= 2,
    `8 classrooms resumed at once: ${stormPlis} PLI(s) reach the publisher (one, and one at the end of the delay)`,
  );
  t.equal(storm.filter((c) => c.rx.at.keyFrame !== undefined).length, 8, 'every classroom has a complete key frame');
});
