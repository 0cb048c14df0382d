import { createSocket } from 'node:dgram';
import t from 'tap';
import { SignalClient, cleanupStack, createLesson, startTestServer } from './support/lessoncast.js';
import { publish } from './support/peers.js';
import { receiverRtpCapabilities } from './support/rtcReceiver.js';

t.test('a plain RTP receiver (SRTP) is placed and fed like a classroom', async (t) => {
  const s = await startTestServer();
  const cleanups = cleanupStack(t);
  cleanups.push(() => s.close());
  const lessonId = await createLesson(s);
  const { client: teacher, joined } = await SignalClient.join(s, 'instructor', 'teacher-1', lessonId);
  cleanups.push(() => teacher.close());
  const sender = await publish(teacher, joined!.routerRtpCapabilities, { audio: true, video: false });
  cleanups.push(() => sender.close());

  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => sock.close());
  const seqs: number[] = [];
  sock.on('message', (msg) => {
    const pt = msg[1]! & 0x7f;
    if (pt < 64 || pt > 95) seqs.push(msg.readUInt16BE(2)); // RTP, not RTCP: the header stays clear under SRTP
  });

  const media = s.server.registry.get(lessonId).media;
  const plain = await media.createPlainReceiver('decoder-1', { ip: '127.0.0.1', port: sock.address().port }, { listenIp: '127.0.0.1', srtpCryptoSuite: 'AEAD_AES_256_GCM' });
  t.ok(plain.srtpParameters?.keyBase64, 'SRTP keys handed out for the receiver');
  const c = await media.consume('decoder-1', plain.transportId, sender.producerId('audio'), receiverRtpCapabilities);
  await media.resumeConsumer('decoder-1', c.consumerId);
  const deadline = Date.now() + 10000;
  while (seqs.length < 50 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.ok(seqs.length >= 50, `received ${seqs.length} RTP packets`);
  const inOrder = seqs.every((q, i) => i === 0 || ((q - seqs[i - 1]! + 65536) % 65536) === 1);
  t.ok(inOrder, 'consecutive sequence numbers on loopback');
  media.closePeer('decoder-1');
  t.equal(media.consumerCount(), 0, 'closing the peer closes its consumer');
});
