/**
 * A receive-only plain RTP output (no ICE/DTLS) of a lesson, sending to a fixed address: the
 * stand-in for hardware decoders and gateways that cannot speak WebRTC, and the benches' load.
 * Placed by LessonMedia like any classroom (same spill rules); consumed with its consume().
 */
import type { types } from 'mediasoup';
import type { LessonMedia } from '../src/media/lessonMedia.js';

export async function createPlainReceiver(
  media: Pick<LessonMedia, 'addRecvTransport'>,
  peerId: string,
  remote: { ip: string; port: number },
  opts: { listenIp: string; srtpCryptoSuite?: types.SrtpCryptoSuite },
): Promise<{ transportId: string; srtpParameters?: types.SrtpParameters }> {
  const transport = await media.addRecvTransport(peerId, (router) =>
    router.createPlainTransport({
      listenInfo: { protocol: 'udp', ip: opts.listenIp },
      rtcpMux: true,
      comedia: false,
      // A plain receiver sends no transport-cc or REMB: mediasoup's estimator would have nothing to go on.
      enableBwe: false,
      enableSrtp: Boolean(opts.srtpCryptoSuite),
      ...(opts.srtpCryptoSuite ? { srtpCryptoSuite: opts.srtpCryptoSuite } : {}),
      appData: { peerId, direction: 'recv' },
    }),
  );
  // Receive-only: the remote never sends, so its SRTP key is only a formality; reuse ours.
  await transport.connect({
    ip: remote.ip,
    port: remote.port,
    ...(transport.srtpParameters ? { srtpParameters: transport.srtpParameters } : {}),
  });
  return { transportId: transport.id, ...(transport.srtpParameters ? { srtpParameters: transport.srtpParameters } : {}) };
}
