import type { types } from 'mediasoup';
import type { RecordedCodec } from './rtp.js';

/** The one codec a recording consumer carries, as ffmpeg must be told about it. */
export interface RtpStreamDescription {
  kind: 'audio' | 'video';
  codec: RecordedCodec;
  payloadType: number;
  clockRate: number;
  channels?: number;
  /** fmtp parameters (e.g. packetization-mode, profile-level-id). */
  parameters: Record<string, unknown>;
}

const MIME_TO_CODEC: Record<string, RecordedCodec> = { 'video/h264': 'H264', 'video/vp8': 'VP8', 'audio/opus': 'Opus' };

/** The media codec of a consumer's rtpParameters (RTX and other helper codecs skipped), or null if we cannot record it. */
export function describeConsumerStream(kind: 'audio' | 'video', rtp: types.RtpParameters): RtpStreamDescription | null {
  for (const c of rtp.codecs) {
    const codec = MIME_TO_CODEC[c.mimeType.toLowerCase()];
    if (!codec) continue;
    return {
      kind,
      codec,
      payloadType: c.payloadType,
      clockRate: c.clockRate,
      ...(c.channels !== undefined ? { channels: c.channels } : {}),
      parameters: { ...(c.parameters ?? {}) },
    };
  }
  return null;
}

/** The rtpCapabilities a recording consumer offers: the router's media codecs only (no RTX, no feedback, no header extensions). */
export function recorderRtpCapabilities(router: types.RtpCapabilities): types.RtpCapabilities {
  return {
    codecs: (router.codecs ?? [])
      .filter((c) => MIME_TO_CODEC[c.mimeType.toLowerCase()] !== undefined)
      .map((c) => ({ ...c, rtcpFeedback: [] })),
    headerExtensions: [],
  };
}

/** RFC 6381 codec string for HLS CODECS attributes. */
export function rfc6381(codec: 'H264' | 'Opus', parameters: Record<string, unknown> = {}): string {
  if (codec === 'Opus') return 'opus';
  const given = parameters['profile-level-id'];
  const pli = (typeof given === 'string' || typeof given === 'number' ? String(given) : '42e01f').toLowerCase();
  return /^[0-9a-f]{6}$/.test(pli) ? `avc1.${pli}` : 'avc1.42e01f';
}
