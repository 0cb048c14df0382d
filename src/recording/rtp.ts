/**
 * Just enough RTP parsing for the recording relay: tell RTCP from RTP (they
 * share one port with rtcp-mux) and find where a decodable picture starts, so
 * a recording (and every restart of it) begins with a keyframe.
 */

export type RecordedCodec = 'H264' | 'VP8' | 'Opus';

/** RFC 5761: RTCP packet types 192–223 occupy the second byte where RTP has M+PT. */
export function isRtcp(packet: Buffer): boolean {
  if (packet.length < 2) return false;
  const pt = packet[1]!;
  return pt >= 192 && pt <= 223;
}

/**
 * An RTCP BYE (RFC 3550 6.6): ends ffmpeg's RTP input cleanly (EOF), so it
 * completes its last segment even when no media flows any more. It names two
 * SSRCs only to reach 12 bytes: ffmpeg drops shorter RTP/RTCP datagrams.
 */
export function rtcpByePacket(): Buffer {
  return Buffer.from([0x82, 203, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 2]);
}

/** The RTP payload (after CSRCs, header extension and before padding), or null if malformed. */
export function rtpPayload(packet: Buffer): Buffer | null {
  if (packet.length < 12 || packet[0]! >> 6 !== 2) return null;
  const csrcCount = packet[0]! & 0x0f;
  const hasExtension = (packet[0]! & 0x10) !== 0;
  const hasPadding = (packet[0]! & 0x20) !== 0;
  let offset = 12 + csrcCount * 4;
  if (hasExtension) {
    if (packet.length < offset + 4) return null;
    offset += 4 + packet.readUInt16BE(offset + 2) * 4;
  }
  let end = packet.length;
  if (hasPadding) end -= packet[packet.length - 1]!;
  if (offset > end) return null;
  return packet.subarray(offset, end);
}

/**
 * Does this packet start a keyframe? H264: a packet carrying an SPS (single
 * NAL, STAP-A, or the first FU-A fragment) — ffmpeg needs the SPS to know the
 * picture size, and WebRTC senders put SPS+PPS before every IDR. VP8: the
 * first packet of a frame whose payload header says "key frame". Audio: any.
 */
export function startsKeyframe(codec: RecordedCodec, packet: Buffer): boolean {
  if (codec === 'Opus') return true;
  const payload = rtpPayload(packet);
  if (!payload || payload.length < 1) return false;
  return codec === 'H264' ? h264HasSps(payload) : vp8IsKeyframeStart(payload);
}

const SPS = 7;

function h264HasSps(payload: Buffer): boolean {
  const type = payload[0]! & 0x1f;
  if (type >= 1 && type <= 23) return type === SPS;
  if (type === 24) {
    // STAP-A: [hdr][size16][nal]...
    let offset = 1;
    while (offset + 2 < payload.length) {
      const size = payload.readUInt16BE(offset);
      if (size === 0 || offset + 2 + size > payload.length) return false;
      if ((payload[offset + 2]! & 0x1f) === SPS) return true;
      offset += 2 + size;
    }
    return false;
  }
  if (type === 28 && payload.length >= 2) {
    // FU-A: start bit set and the fragmented NAL is an SPS.
    return (payload[1]! & 0x80) !== 0 && (payload[1]! & 0x1f) === SPS;
  }
  return false;
}

function vp8IsKeyframeStart(payload: Buffer): boolean {
  // RFC 7741 payload descriptor.
  const first = payload[0]!;
  const extended = (first & 0x80) !== 0;
  const startOfPartition = (first & 0x10) !== 0;
  const partitionId = first & 0x07;
  if (!startOfPartition || partitionId !== 0) return false;
  let offset = 1;
  if (extended) {
    if (payload.length < 2) return false;
    const x = payload[1]!;
    offset = 2;
    if (x & 0x80) offset += payload.length > offset && payload[offset]! & 0x80 ? 2 : 1; // PictureID, 7 or 15 bits
    if (x & 0x40) offset += 1; // TL0PICIDX
    if (x & 0x30) offset += 1; // TID/KEYIDX
  }
  if (payload.length <= offset) return false;
  // VP8 payload header: P bit (inverse key frame flag) is bit 0.
  return (payload[offset]! & 0x01) === 0;
}
