import type { types } from 'mediasoup';

/** Retransmission, key-frame requests and both bandwidth estimators for every video codec. */
const videoFeedback: types.RtcpFeedback[] = [
  { type: 'nack' },
  { type: 'nack', parameter: 'pli' },
  { type: 'ccm', parameter: 'fir' },
  { type: 'goog-remb' },
  { type: 'transport-cc' },
];

/**
 * The codecs every lesson router offers. H264 comes before VP8 so that
 * browsers pick it and lessons can be recorded into HLS without re-encoding;
 * VP8 stays as the fallback for publishers without H264.
 */
export const lessonMediaCodecs: types.RouterRtpCodecCapability[] = [
  {
    kind: 'audio',
    mimeType: 'audio/opus',
    clockRate: 48000,
    channels: 2,
  },
  {
    kind: 'video',
    mimeType: 'video/H264',
    clockRate: 90000,
    parameters: {
      'packetization-mode': 1,
      'profile-level-id': '42e01f',
      'level-asymmetry-allowed': 1,
    },
    rtcpFeedback: videoFeedback,
  },
  {
    kind: 'video',
    mimeType: 'video/VP8',
    clockRate: 90000,
    rtcpFeedback: videoFeedback,
  },
];
