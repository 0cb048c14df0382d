/**
 * kit/lightReceiver.ts: the fan-out bench's browser-like classroom (issue 18).
 *
 * - Pure parts: the STUN binding request as RFC 8489 reads it (integrity, fingerprint), the
 *   transport-wide sequence number from one-byte and two-byte header extensions.
 * - Against a real mediasoup worker through lessoncast's own signalling, consuming with the
 *   Chromium fixture's capabilities: a receiver with feedback connects (ICE, DTLS-SRTP), reads
 *   every packet, and its transport-cc feedback and receiver reports are decrypted and used by
 *   mediasoup (the estimate climbs, the consumer gets a round-trip time); a mute one connects,
 *   reads nothing, and is still sent everything.
 */
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import t from 'tap';
import type { types } from 'mediasoup';
import { lightClassroom, stunBindingRequest, transportWideSeq } from '../kit/lightReceiver.js';
import { SignalClient } from '../kit/signalClient.js';
import { chromiumCapabilities } from '../bench/fanout/chromiumCaps.js';
import { publishingLesson } from './support/lessoncast.js';

t.test('a STUN binding request carries integrity and fingerprint as RFC 8489 checks them', async (t) => {
  const msg = stunBindingRequest({ username: 'srv:cli', password: 'secret-password', tieBreaker: Buffer.alloc(8, 7), nominate: true });
  t.equal(msg.readUInt16BE(0), 0x0001, 'binding request');
  t.equal(msg.readUInt16BE(2), msg.length - 20, 'length counts every attribute');
  t.equal(msg.readUInt32BE(4), 0x2112a442, 'magic cookie');
  const attrs = new Map<number, { at: number; value: Buffer }>();
  for (let at = 20; at < msg.length;) {
    const type = msg.readUInt16BE(at);
    const len = msg.readUInt16BE(at + 2);
    attrs.set(type, { at, value: msg.subarray(at + 4, at + 4 + len) });
    at += 4 + len + ((4 - (len % 4)) % 4);
  }
  t.equal(attrs.get(0x0006)?.value.toString(), 'srv:cli', 'USERNAME');
  t.ok(attrs.has(0x0025), 'USE-CANDIDATE');
  t.same(attrs.get(0x802a)?.value, Buffer.alloc(8, 7), 'ICE-CONTROLLING with the tie breaker');
  const mi = attrs.get(0x0008)!;
  const signed = Buffer.from(msg.subarray(0, mi.at));
  signed.writeUInt16BE(mi.at + 24 - 20, 2); // the length as if MESSAGE-INTEGRITY ended the message
  t.same(mi.value, createHmac('sha1', 'secret-password').update(signed).digest(), 'MESSAGE-INTEGRITY');
  const fp = attrs.get(0x8028)!;
  t.equal(fp.at, msg.length - 8, 'FINGERPRINT last');
  t.equal(fp.value.readUInt32BE(0), (crc32(msg.subarray(0, fp.at)) ^ 0x5354554e) >>> 0, 'FINGERPRINT');
});

t.test('the transport-wide sequence number is read from either extension form', async (t) => {
  // One-byte form (0xBEDE): id 1 (mid, 2 bytes), padding, id 5 (2 bytes) = 0x1234.
  const one = Buffer.from([0xbe, 0xde, 0x00, 0x02, 0x11, 0x61, 0x62, 0x00, 0x51, 0x12, 0x34, 0x00]);
  t.equal(transportWideSeq(one, 0, 5), 0x1234, 'one-byte form');
  t.equal(transportWideSeq(one, 0, 3), undefined, 'an id that is absent');
  // Two-byte form (0x100x): id 5, length 2.
  const two = Buffer.from([0x10, 0x00, 0x00, 0x02, 0x01, 0x01, 0xaa, 0x05, 0x02, 0xbe, 0xef, 0x00]);
  t.equal(transportWideSeq(two, 0, 5), 0xbeef, 'two-byte form');
  t.equal(transportWideSeq(Buffer.from([0xbe, 0xde, 0x00, 0x09, 0x51]), 0, 5), undefined, 'a truncated block');
});

t.test('against mediasoup: feedback and reports are used; a mute receiver is served but reads nothing', async (t) => {
  const START = 300_000;
  // The weak-link policy would pause the mute receiver's video below 350 kbit/s: this test is about the receiver alone.
  const { s, cleanups, lessonId, media } = await publishingLesson(t, {
    media: { initialOutgoingBitrate: START, links: { enabled: false } },
  });
  const { rtpCapabilities } = chromiumCapabilities();

  const classroom = async (id: string, mute: boolean) => {
    const { client, joined: j } = await SignalClient.join(s, 'classroom', id, lessonId);
    cleanups.push(() => client.close());
    const c = await lightClassroom(client, j!.producers, rtpCapabilities, { mute });
    cleanups.push(() => c.rx.close());
    await c.resume();
    return c;
  };
  const fb = await classroom('school-fb', false);
  const mute = await classroom('school-mute', true);
  t.ok(
    fb.consumers.every((c) => c.rtpParameters.codecs[0]?.rtcpFeedback?.some((f) => f.type === 'transport-cc')),
    'consumed with transport-cc, as Chromium asks',
  );

  const transportOf = (peerId: string) =>
    media.transportsOf(peerId).find((x) => x.direction === 'recv')!.transport as types.WebRtcTransport;
  const estimate = async (peerId: string): Promise<number> => {
    const [stats] = (await transportOf(peerId).getStats()) as Array<{ availableOutgoingBitrate?: number }>;
    return stats?.availableOutgoingBitrate ?? 0;
  };
  let fbBest = 0;
  let muteBest = 0;
  for (let i = 0; i < 16; i++) {
    await new Promise((r) => setTimeout(r, 500));
    fbBest = Math.max(fbBest, await estimate('school-fb'));
    muteBest = Math.max(muteBest, await estimate('school-mute'));
  }
  t.comment(`highest estimates in 8 s: with feedback ${fbBest}, mute ${muteBest} (start ${START})`);
  t.ok(fbBest > 2 * START, `the feedback is decrypted and drives the estimate (${fbBest} bps)`);
  t.ok(muteBest < 1.5 * START, `a mute receiver's estimate stays near its start (${muteBest} bps)`);
  t.ok(fb.rx.packets > 200, `every packet read (${fb.rx.packets})`);
  t.ok(fb.rx.feedbackMessages > 30, `feedback sent (${fb.rx.feedbackMessages})`);
  t.ok(fb.rx.reports >= 5, `receiver reports sent (${fb.rx.reports})`);
  const c = fb.rx.counters();
  t.ok(c.expected > 0 && c.received / c.expected > 0.99, `no loss on loopback (${c.received}/${c.expected})`);

  const outbound = async (peerId: string, kind: types.MediaKind) => {
    const consumer = media.consumersOf(peerId).find((x) => x.kind === kind)!;
    const stats = (await consumer.getStats()) as Array<{
      type: string;
      packetCount: number;
      roundTripTime?: number;
      fractionLost?: number;
    }>;
    return stats.find((x) => x.type === 'outbound-rtp')!;
  };
  const fbVideo = await outbound('school-fb', 'video');
  t.ok((fbVideo.roundTripTime ?? 0) > 0, `the receiver reports' LSR/DLSR give a round-trip time (${fbVideo.roundTripTime} ms)`);
  t.equal(fbVideo.fractionLost ?? 0, 0, 'and report no loss');
  t.equal(mute.rx.packets, 0, 'a mute receiver reads nothing');
  const muteVideo = await outbound('school-mute', 'video');
  t.ok(
    muteVideo.packetCount > 0.9 * fbVideo.packetCount,
    `but mediasoup sends it everything (${muteVideo.packetCount} video packets, ${fbVideo.packetCount} to the other)`,
  );
  const mt = transportOf('school-mute');
  t.match({ ice: mt.iceState, dtls: mt.dtlsState }, { ice: /connected|completed/, dtls: 'connected' }, 'its transport stays connected');
});
