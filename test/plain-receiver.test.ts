import { createSocket } from 'node:dgram';
import type { types } from 'mediasoup';
import t from 'tap';
import { ProtectionProfileAeadAes128Gcm, ProtectionProfileAes128CmHmacSha1_80, SrtpSession } from 'werift';
import { SignalClient } from '../kit/signalClient.js';
import { cleanupStack, createLesson, startTestServer } from './support/lessoncast.js';
import { publish } from '../kit/peers.js';
import { createPlainReceiver } from '../kit/plainReceiver.js';
import { receiverRtpCapabilities } from '../kit/rtcReceiver.js';

/** A server with one lesson whose instructor publishes audio (werift + ffmpeg). */
async function audioLesson(t: { teardown(fn: () => unknown): void }) {
  const s = await startTestServer();
  const cleanups = cleanupStack(t);
  cleanups.push(() => s.close());
  const lessonId = await createLesson(s);
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  const sender = await publish(teacher, joined!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => sender.close());
  return { media: s.internals.registry.mediaOf(lessonId)!, sender, cleanups };
}

t.test('a plain RTP receiver (SRTP) is placed and fed like a classroom', async (t) => {
  const { media, sender, cleanups } = await audioLesson(t);

  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => sock.close());
  const seqs: number[] = [];
  sock.on('message', (msg) => {
    const pt = msg[1]! & 0x7f;
    if (pt < 64 || pt > 95) seqs.push(msg.readUInt16BE(2)); // RTP, not RTCP: the header stays clear under SRTP
  });

  const plain = await createPlainReceiver(
    media,
    'decoder-1',
    { ip: '127.0.0.1', port: sock.address().port },
    { listenIp: '127.0.0.1', srtpCryptoSuite: 'AEAD_AES_256_GCM' },
  );
  t.ok(plain.srtpParameters?.keyBase64, 'SRTP keys handed out for the receiver');
  const c = await media.consume('decoder-1', plain.transportId, sender.producerId('audio'), receiverRtpCapabilities);
  await media.resumeConsumer('decoder-1', c.consumerId);
  const deadline = Date.now() + 10000;
  while (seqs.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(seqs.length >= 50, `received ${seqs.length} RTP packets`);
  const inOrder = seqs.every((q, i) => i === 0 || (q - seqs[i - 1]! + 65536) % 65536 === 1);
  t.ok(inOrder, 'consecutive sequence numbers on loopback');
  media.closePeer('decoder-1');
  t.equal(media.consumerCount(), 0, 'closing the peer closes its consumer');
});

// The worker's SRTP (libsrtp, by default built on OpenSSL by scripts/build-worker.sh) checked
// against an independent implementation: werift's SRTP in Node authenticates and decrypts
// what the worker sends, and the payloads are those of a clear (no SRTP) copy of the stream.
for (const [suite, profile] of [
  ['AES_CM_128_HMAC_SHA1_80', ProtectionProfileAes128CmHmacSha1_80],
  ['AEAD_AES_128_GCM', ProtectionProfileAeadAes128Gcm],
] as const) {
  t.test(`SRTP ${suite} from the worker decrypts and authenticates outside it`, async (t) => {
    const { media, sender, cleanups } = await audioLesson(t);

    const receive = async (peerId: string, srtpCryptoSuite?: types.SrtpCryptoSuite) => {
      const sock = createSocket('udp4');
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      cleanups.push(() => sock.close());
      const packets: Buffer[] = [];
      sock.on('message', (msg) => {
        const pt = msg[1]! & 0x7f;
        if (pt < 64 || pt > 95) packets.push(msg);
      });
      const plain = await createPlainReceiver(
        media,
        peerId,
        { ip: '127.0.0.1', port: sock.address().port },
        { listenIp: '127.0.0.1', ...(srtpCryptoSuite ? { srtpCryptoSuite } : {}) },
      );
      const c = await media.consume(peerId, plain.transportId, sender.producerId('audio'), receiverRtpCapabilities);
      await media.resumeConsumer(peerId, c.consumerId);
      return { packets, srtp: plain.srtpParameters };
    };
    const clear = await receive('clear-copy');
    const secured = await receive('srtp-copy', suite);
    t.equal(secured.srtp?.cryptoSuite, suite, 'the transport uses the suite asked for');
    const deadline = Date.now() + 10000;
    while (secured.packets.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.ok(secured.packets.length >= 60, `received ${secured.packets.length} SRTP packets`);

    const keying = Buffer.from(secured.srtp!.keyBase64, 'base64');
    const keyLength = 16; // both suites here use a 128-bit master key; the rest is the salt
    const session = new SrtpSession({
      profile,
      keys: {
        localMasterKey: keying.subarray(0, keyLength),
        localMasterSalt: keying.subarray(keyLength),
        remoteMasterKey: keying.subarray(0, keyLength),
        remoteMasterSalt: keying.subarray(keyLength),
      },
    });
    // Each consumer numbers its packets itself, so the copies are matched by payload.
    const payload = (p: Buffer) => p.subarray(rtpHeaderLength(p)).toString('hex');
    const clearPayloads = new Set(clear.packets.map(payload));
    let decrypted = 0;
    let matched = 0;
    for (const p of secured.packets) {
      const plainPacket = session.decrypt(p); // throws when the authentication tag is wrong
      decrypted++;
      if (clearPayloads.has(payload(plainPacket))) matched++;
    }
    t.equal(decrypted, secured.packets.length, 'every packet authenticates and decrypts');
    // The clear copy started a moment earlier; a few packets at the end may have reached only one.
    t.ok(matched >= secured.packets.length - 5, `${matched} of ${secured.packets.length} decrypted payloads found in the clear copy`);
  });
}

/** Bytes before the payload: fixed header, CSRCs and the header extension. */
function rtpHeaderLength(p: Buffer): number {
  let n = 12 + 4 * (p[0]! & 0x0f);
  if (p[0]! & 0x10) n += 4 + 4 * p.readUInt16BE(n + 2);
  return n;
}
